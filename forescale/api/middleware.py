"""Plain ASGI middleware: :class:`BodyLimit` (413 for a declared body above the limit).

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which re-streams every
response and cost most of the throughput of large forecast responses. The Host check
(:class:`~forescale.api.security.HostCheck`) is a security rule and lives with the token
checks in :mod:`forescale.api.security`.
"""

from __future__ import annotations

from typing import Any

from forescale.api.errors import error_response


class BodyLimit:
    """Refuse a declared body above ``limit`` bytes (or an unreadable
    ``Content-Length``) with 413."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for key, value in scope["headers"]:
                if key == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                    response = error_response(
                        413, "PayloadTooLarge", f"request body above {self.limit} bytes"
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
