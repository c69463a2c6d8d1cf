"""The one error shape, ``{"error": {"type": ..., "message": ...}}``, and how the
forescale exception tree maps to HTTP statuses (:data:`STATUS`).

The handlers that use these are registered in :mod:`forescale.api.app`; the middleware
and the routes answer in the same shape through :func:`error_response` or by raising
:class:`ApiError`.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from forescale.errors import (
    ConfigError,
    DataError,
    ForescaleError,
    PlanError,
    StoreError,
    TfvarsError,
)

# Most specific first; the first match wins.
STATUS: tuple[tuple[type[ForescaleError], int], ...] = (
    (ConfigError, 404),  # unknown service (the only ConfigError a request can cause)
    (DataError, 409),
    (TfvarsError, 409),
    (PlanError, 422),
    (StoreError, 503),
    (ForescaleError, 400),
)


class ApiError(Exception):
    """An HTTP error raised by the API itself (auth, missing data)."""

    def __init__(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = headers


def status_of(exc: ForescaleError) -> int:
    """The HTTP status a forescale error answers with (:data:`STATUS`)."""
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def error_response(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A response in the one error shape: ``{"error": {"type": kind, "message": ...}}``."""
    return JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )
