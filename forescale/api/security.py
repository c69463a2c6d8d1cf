"""Who may ask: the bearer token (:func:`require_write`, :func:`require_read`) and the
``Host`` check against DNS rebinding (:class:`HostCheck`, a plain ASGI middleware).

Mutations always need the token; with ``ApiConfig.protect_reads`` every read does too,
``/docs``, ``/redoc`` and ``/openapi.json`` included. ``/healthz`` and ``/readyz`` stay
open for probes.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, Request

from forescale.api.contract import ApiConfig
from forescale.api.deps import get_config
from forescale.api.errors import ApiError, error_response


def _check_token(request: Request, config: ApiConfig) -> None:
    """403 when no token is configured; 401 (with a Bearer challenge) when the request's
    bearer token is missing or wrong (compared in constant time)."""
    if config.token is None:
        raise ApiError(403, "Forbidden", "no API token is configured; mutations are disabled")
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    challenge = {"WWW-Authenticate": "Bearer"}
    if scheme.lower() != "bearer" or not given:
        raise ApiError(401, "Unauthorized", "missing bearer token", challenge)
    if not hmac.compare_digest(given.strip().encode(), config.token.encode()):
        raise ApiError(401, "Unauthorized", "invalid bearer token", challenge)


async def require_write(
    request: Request, config: Annotated[ApiConfig, Depends(get_config)]
) -> None:
    """Mutations: the bearer token, always."""
    _check_token(request, config)


async def require_read(request: Request, config: Annotated[ApiConfig, Depends(get_config)]) -> None:
    """Reads: the bearer token when ``protect_reads`` is on."""
    if config.protect_reads:
        _check_token(request, config)


def host_of(header: str) -> str | None:
    """The host part of a ``Host`` header value, normalised for comparison: lowercase, one
    trailing dot dropped, an IPv6 literal compressed and in brackets, the port dropped.
    None when the value is not ``host[:port]`` (empty, bad port, unbracketed IPv6, ...)."""
    value = header.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        literal, rest = value[1:end], value[end + 1 :]
        try:
            host = f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError:
            return None
    else:
        name, colon, port = value.partition(":")
        host, rest = name.lower(), colon + port
        host = host[:-1] if host.endswith(".") else host
        if not host or not all(c.isalnum() or c in "-._" for c in host) or not host.isascii():
            return None
    if rest and not (rest.startswith(":") and rest[1:].isdigit() and rest[1:].isascii()):
        return None
    return host


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
    except ValueError:
        return False
    return True


def _allowed_entry(entry: str) -> str:
    """A configured host name in :func:`host_of`'s form (``::1`` and ``[::1]`` alike)."""
    entry = entry.strip().lower()
    try:
        return f"[{ipaddress.IPv6Address(entry.strip('[]')).compressed}]"
    except ValueError:
        return entry[:-1] if entry.endswith(".") else entry


class HostCheck:
    """Serve only requests whose ``Host`` names an allowed host; others get 400.

    A DNS-rebinding page (its own name, re-resolved to 127.0.0.1) makes the browser send
    that name as ``Host``. So: allowed names (exact, ``*.suffix`` or ``*``) pass; IP
    literals pass (a page can only rebind a name it controls, and kubelet probes and
    Prometheus address pods by IP); a request without ``Host`` passes (only HTTP/1.0
    allows that, and browsers always send one); two ``Host`` headers are refused. A plain
    ASGI middleware, like :class:`~forescale.api.middleware.BodyLimit`.
    """

    def __init__(self, app: Any, allowed: Iterable[str]) -> None:
        self.app = app
        entries = {_allowed_entry(e) for e in allowed if e.strip()}
        self.any = "*" in entries
        self.suffixes = tuple(e[1:] for e in entries if e.startswith("*."))
        self.names = frozenset(e for e in entries if not e.startswith("*"))

    def allows(self, host: str) -> bool:
        return (
            self.any
            or host in self.names
            or _is_ip_literal(host)
            or any(host.endswith(suffix) for suffix in self.suffixes)
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            values = [v for k, v in scope["headers"] if k == b"host"]
            if values:
                text = values[0].decode("latin-1")
                host = host_of(text) if len(values) == 1 else None
                if host is None or not self.allows(host):
                    shown = text if len(values) == 1 else f"{len(values)} Host headers"
                    response = error_response(
                        400,
                        "InvalidHost",
                        f"Host {shown[:100]!r} is not served here; add the name to "
                        "api.allowed_hosts if this server should answer to it",
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
