"""Build the API: :func:`create_app` makes the FastAPI app, puts the injected parts on
``app.state`` (read by :mod:`forescale.api.deps`), adds the middleware and includes the
routers of :mod:`forescale.api.routes`.

The exception handlers here (:data:`EXCEPTION_HANDLERS`) answer every error in the one
shape of :mod:`forescale.api.errors`: the forescale exception tree by its status table
(``errors.STATUS``), :class:`~forescale.api.errors.ApiError` as raised, Starlette's HTTP
errors as ``HTTPError``, validation errors as 422 ``ValidationError`` (with ``details``)
and a bug as a bare 500 ``InternalError``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException

from forescale.api.cache import ResponseCache
from forescale.api.contract import ApiConfig, RefreshQueue, ServerStatus, api_only
from forescale.api.errors import ApiError, error_response, status_of
from forescale.api.middleware import BodyLimit
from forescale.api.routes import ROUTERS, pages
from forescale.api.schemas import ERROR_RESPONSES
from forescale.api.security import HostCheck
from forescale.config.settings import Settings
from forescale.errors import ForescaleError
from forescale.store import Store


def create_app(
    *,
    settings: Settings,
    store: Store,
    config: ApiConfig,
    registry: CollectorRegistry,
    refresh: RefreshQueue | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    status: Callable[[], ServerStatus] | None = None,
) -> FastAPI:
    """The API app. ``refresh`` queues refits of a service as pollable refresh runs (None:
    ``POST .../refresh`` answers 503); ``clock`` returns UTC now; ``status`` says what
    ``/readyz`` reports about the serving process (default: ``api-only``, bound at once)."""
    # The docs and the schema are routes of our own (routes/docs.py), so they follow
    # protect_reads.
    app = FastAPI(
        title="forescale",
        version="1",
        responses=ERROR_RESPONSES,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.settings = settings
    app.state.forecast_cache = ResponseCache(max(512, 4 * len(settings.services)))
    app.state.store = store
    app.state.api_config = config
    app.state.registry = registry
    app.state.refresh = refresh
    app.state.clock = clock
    app.state.status = status or api_only
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    app.add_middleware(HostCheck, allowed=config.allowed_hosts)  # added last: runs first
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(pages.router)  # the read-only web page (HTML, not in the schema)
    return app


# -- exception handlers ------------------------------------------------------------------
async def _forescale_error(request: Request, exc: ForescaleError) -> Response:
    return error_response(status_of(exc), type(exc).__name__, str(exc))


async def _api_error(request: Request, exc: ApiError) -> Response:
    return error_response(exc.status, exc.kind, exc.message, exc.headers)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, "HTTPError", str(exc.detail), headers)


async def _bug(request: Request, exc: Exception) -> Response:
    # A bug: answer in the error shape without details (Starlette re-raises it after
    # this, so the server logs the traceback).
    return error_response(500, "InternalError", "internal error (logged by the server)")


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    # The default handler 500s when an error holds NaN/inf (fastapi#4589): keep
    # everything JSON-safe, and say where and what in the message.
    details = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        details.append(
            {
                "loc": loc,
                "msg": str(err.get("msg", "")),
                "input": _jsonable(err.get("input")),
                "ctx": _jsonable(err.get("ctx") or {}),
            }
        )
    message = "; ".join(f"{d['loc']}: {d['msg']}" for d in details) or "invalid request"
    return JSONResponse(
        {"error": {"type": "ValidationError", "message": message, "details": details}},
        status_code=422,
    )


def _jsonable(value: Any) -> Any:
    """A validation error's values made JSON-safe (NaN/inf, bytes, exceptions...)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return repr(value)


# By exception type; Starlette picks the handler of the nearest class in the MRO (the
# Exception one becomes the 500 handler of its ServerErrorMiddleware). Ours replace
# FastAPI's defaults for HTTPException and RequestValidationError.
EXCEPTION_HANDLERS: dict[
    int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]
] = {
    ForescaleError: _forescale_error,
    ApiError: _api_error,
    StarletteHTTPException: _http_error,
    Exception: _bug,
    RequestValidationError: _validation_error,
}
