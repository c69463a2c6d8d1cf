"""What the API takes from the process that serves it, and the ids it hands out.

:class:`ApiConfig` (token, hosts, body limit), :class:`ServerStatus` (what ``/readyz``
reports), the :class:`RefreshQueue` that ``POST /v1/services/{name}/refresh`` submits to
(``forescale.service.Refresher`` implements it) with its :class:`Submitted` and
:class:`RefreshRefused`, and :func:`refresh_id`, the API id of a refresh run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from forescale.records import RefreshRun

REFRESH_PREFIX = "refresh-"  # refresh run ids: refresh-<n>; change records: <n>
# Hosts served by default: loopback names (service.build_app adds the bind address).
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiConfig:
    """API settings not (yet) in :class:`~forescale.config.settings.Settings`.

    ``token``: bearer token for mutating endpoints (None: mutations are refused with
    403); ``protect_reads``: reads need the token too (the docs and the schema included);
    ``max_body_bytes``: larger request bodies get 413; ``allowed_hosts``: the names a
    ``Host`` header may carry (port ignored, case-insensitive; ``*.example.com`` matches
    subdomains, ``*`` anything; IP literals are always served, see
    :class:`~forescale.api.security.HostCheck`).
    """

    token: str | None = None
    protect_reads: bool = False
    max_body_bytes: int = 64 * 1024
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerStatus:
    """What ``/readyz`` reports about the serving process.

    ``role``: ``leader`` (holds the store's leader lock and runs the jobs), ``standby``
    (waits for the lock; serves reads from the shared store: ready), ``stopping`` (not
    ready: 503) or ``api-only`` (``forescale serve``: no scheduler). ``bind_retries``:
    failed attempts to bind the API port before it listened (0: bound at start).
    """

    role: str
    bind_retries: int = 0


def api_only() -> ServerStatus:
    """The status of a process that only serves the API (``forescale serve``)."""
    return ServerStatus(role="api-only")


@dataclass(frozen=True, kw_only=True, slots=True)
class Submitted:
    """A refresh the queue took: ``run`` as it stands now; ``coalesced``: it was already
    queued or running for that service (no new run was made)."""

    run: RefreshRun
    coalesced: bool


class RefreshQueue(Protocol):
    """What ``POST /v1/services/{name}/refresh`` needs (``forescale.service.Refresher``)."""

    def submit(self, service: str) -> Submitted:
        """Queue a refit of ``service`` or join its queued/running one; raises
        :class:`RefreshRefused` when the queue is full or closed."""
        ...


class RefreshRefused(Exception):
    """The refresh queue did not take a refresh: full (``status`` 429) or closed (503);
    ask again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, status: int, retry_after: int) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def refresh_id(number: int) -> str:
    """The API id of refresh run ``number``: ``refresh-<number>``."""
    return f"{REFRESH_PREFIX}{number}"
