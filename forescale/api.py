"""The REST API: read the stored state, ask for a refresh, expose metrics.

Build it with :func:`create_app`; settings, store, API config, metrics registry, the
refresher and the clock are injected (reached by routes through ``Depends`` on
``app.state``, so tests can override them). Nothing is fitted on a request: forecasts are
read from the store, and the schedule is recomputed by the pure capacity planner.

Errors have one shape, ``{"error": {"type": ..., "message": ...}}``; one handler maps the
forescale exception tree to HTTP statuses (:data:`_STATUS`). Datetimes are ISO 8601 UTC
with ``Z``; floats are finite (NaN/inf are sent as ``null``).

Rules every request meets, in order:

1. Host (DNS rebinding): a request whose ``Host`` names a host not in
   ``ApiConfig.allowed_hosts`` gets 400 ``InvalidHost`` (:class:`HostCheck`). IP literals
   are always accepted (a rebinding page can only send a DNS name it controls; kubelet
   probes and Prometheus use the pod IP), and so is a request without ``Host`` (HTTP/1.0:
   browsers always send one).
2. Body: a declared body above ``max_body_bytes`` gets 413 (:class:`BodyLimit`).
3. Token: mutations always need the bearer token; with ``protect_reads`` every read does
   too, ``/docs``, ``/redoc`` and ``/openapi.json`` included. ``/healthz`` and ``/readyz``
   stay open for probes.

Runs: ``/v1/runs/{id}`` serves change records (integer ids, ``kind: "change"``, as
before) and refresh runs (ids ``refresh-<n>``, ``kind: "refresh"``), the ones
``POST /v1/services/{name}/refresh`` answers with.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import datetime as dt
import hmac
import io
import ipaddress
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import pandas as pd
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from config.settings import Settings
from forescale.errors import (
    ConfigError,
    DataError,
    ForescaleError,
    PlanError,
    StoreError,
    TfvarsError,
)
from forescale.store import ChangeRecord, RefreshRun, Store

MAX_RUNS_SCANNED = 10_000  # /v1/runs pages no deeper than this many records
MAX_ID = 2**63 - 1  # the largest id a store holds (a signed 64-bit integer)
REFRESH_PREFIX = "refresh-"  # refresh run ids: refresh-<n>; change records: <n>
# Hosts served by default: loopback names (service.build_app adds the bind address).
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]")

# Most specific first; the first match wins.
_STATUS: tuple[tuple[type[ForescaleError], int], ...] = (
    (ConfigError, 404),  # unknown service (the only ConfigError a request can cause)
    (DataError, 409),
    (TfvarsError, 409),
    (PlanError, 422),
    (StoreError, 503),
    (ForescaleError, 400),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiConfig:
    """API settings not (yet) in :class:`~config.settings.Settings`.

    ``token``: bearer token for mutating endpoints (None: mutations are refused with
    403); ``protect_reads``: reads need the token too (the docs and the schema included);
    ``max_body_bytes``: larger request bodies get 413; ``allowed_hosts``: the names a
    ``Host`` header may carry (port ignored, case-insensitive; ``*.example.com`` matches
    subdomains, ``*`` anything; IP literals are always served, see :class:`HostCheck`).
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


def _api_only() -> ServerStatus:
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


# -- response models -------------------------------------------------------------------
class CollectOut(BaseModel):
    at: dt.datetime
    written: int
    coverage: float | None
    last_sample: dt.datetime | None
    error: str | None


class ServiceOut(BaseModel):
    name: str
    mode: str
    source: str
    last_collect: CollectOut | None
    coverage: float | None  # share of grid slots with a sample over the last 7 days
    last_sample: dt.datetime | None
    last_forecast_run_id: int | None
    last_forecast_as_of: dt.datetime | None
    last_change_id: int | None
    last_change_status: str | None


class ServicesOut(BaseModel):
    services: list[ServiceOut]


class PointOut(BaseModel):
    ds: dt.datetime
    yhat: float | None
    yhat_lower: float | None
    yhat_upper: float | None
    components: dict[str, float | None]


class EvidenceOut(BaseModel):
    model: str
    steps: int
    smape: float | None
    under_share: float | None
    basis: str
    factor: float | None
    under_share_widened: float | None
    provisioned_ratio: float | None


class ChoiceOut(BaseModel):
    """Which candidate model plans capacity, with how much headroom, and why."""

    model: str
    basis: str
    factor: float | None
    reason: str
    evidence: list[EvidenceOut]


class LiveOut(BaseModel):
    """How the previous forecast did against what was collected since (at this refit)."""

    run_id: int
    steps: int
    error_ratio: float | None
    under_share: float | None
    refit_due: bool
    reason: str


class ForecastOut(BaseModel):
    service: str
    run_id: int
    created_at: dt.datetime
    as_of: dt.datetime
    history_end: dt.datetime
    model: str
    resolution_seconds: int
    components: list[str]
    notes: list[str]
    choice: ChoiceOut | None = None
    live: LiveOut | None = None
    points: list[PointOut]


class StepOut(BaseModel):
    at: dt.datetime
    units: int
    from_units: int
    direction: str
    reason: str
    serves_at: dt.datetime
    demand: float | None
    constraints: list[str]


class DesiredOut(BaseModel):
    ds: dt.datetime
    units: int


class ScheduleOut(BaseModel):
    service: str
    now: dt.datetime
    forecast_run_id: int
    current_units: int
    steps: list[StepOut]
    desired: list[DesiredOut]
    notes: list[str]


class RunOut(BaseModel):
    """A change record: a planned, applied or committed capacity change."""

    kind: Literal["change"] = "change"
    id: int
    service: str
    created_at: dt.datetime | None
    forecast_run_id: int | None
    due_at: dt.datetime
    var_file: str
    address: str
    from_units: int
    to_units: int
    direction: str
    reason: str
    mode: str
    status: str
    diff: str
    trigger: str
    plan_summary: str
    guard_reasons: list[str]
    exit_code: int | None
    output_tail: str
    commit_sha: str | None
    finished_at: dt.datetime | None


class PlanOut(BaseModel):
    service: str
    pending: bool  # the change did not finish; the next apply resumes it
    change: RunOut


RefreshStatus = Literal["queued", "running", "succeeded", "failed"]


class RefreshRunOut(BaseModel):
    """A refresh run: a refit asked for with ``POST /v1/services/{name}/refresh``."""

    kind: Literal["refresh"] = "refresh"
    id: str  # refresh-<n>
    service: str
    status: RefreshStatus
    requested_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None  # failed: what went wrong
    forecast_run_id: int | None  # succeeded: the forecast the refit stored


AnyRunOut = Annotated[RunOut | RefreshRunOut, Field(discriminator="kind")]


class RunsOut(BaseModel):
    items: list[AnyRunOut]
    limit: int
    offset: int
    next_offset: int | None


class RefreshOut(BaseModel):
    service: str
    run_id: str  # refresh-<n>: poll GET /v1/runs/{run_id} (``url``)
    status: RefreshStatus
    coalesced: bool  # a refresh of this service was already queued or running: that run
    url: str


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    role: str  # leader | standby | api-only
    bind_retries: int  # failed attempts to bind the API port before it listened


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


# -- dependencies (overridable) ----------------------------------------------------------
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_config(request: Request) -> ApiConfig:
    config: ApiConfig = request.app.state.api_config
    return config


async def get_registry(request: Request) -> CollectorRegistry:
    registry: CollectorRegistry = request.app.state.registry
    return registry


async def get_refresh(request: Request) -> RefreshQueue | None:
    refresh: RefreshQueue | None = request.app.state.refresh
    return refresh


async def get_clock(request: Request) -> Callable[[], dt.datetime]:
    clock: Callable[[], dt.datetime] = request.app.state.clock
    return clock


async def get_status(request: Request) -> Callable[[], ServerStatus]:
    status: Callable[[], ServerStatus] = request.app.state.status
    return status


def _check_token(request: Request, config: ApiConfig) -> None:
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
    _check_token(request, config)


async def require_read(request: Request, config: Annotated[ApiConfig, Depends(get_config)]) -> None:
    if config.protect_reads:
        _check_token(request, config)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
ServiceName = Annotated[str, Path(min_length=1, max_length=64)]


# -- helpers ---------------------------------------------------------------------------
def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _utc(value: Any) -> dt.datetime:
    return pd.Timestamp(value).tz_convert("UTC").to_pydatetime()


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _run_out(record: ChangeRecord) -> RunOut:
    # RunOut mirrors ChangeRecord field for field; only the id and the tuple differ.
    fields = dataclasses.asdict(record)
    fields.update(id=record.id or 0, guard_reasons=list(record.guard_reasons))
    return RunOut(**fields)


def refresh_id(number: int) -> str:
    """The API id of refresh run ``number``: ``refresh-<number>``."""
    return f"{REFRESH_PREFIX}{number}"


def _refresh_out(run: RefreshRun) -> RefreshRunOut:
    return RefreshRunOut(
        id=refresh_id(run.id),
        service=run.service,
        status=run.status,  # type: ignore[arg-type]  # pydantic checks the literal
        requested_at=run.requested_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        error=run.error,
        forecast_run_id=run.forecast_run_id,
    )


def _parse_run_id(text: str) -> tuple[Literal["change", "refresh"], int]:
    """``"12"`` -> (change, 12); ``"refresh-12"`` -> (refresh, 12); 422 outside 1..2^63-1
    (the path pattern has already refused anything else)."""
    kind: Literal["change", "refresh"] = "change"
    if text.startswith(REFRESH_PREFIX):
        kind, text = "refresh", text[len(REFRESH_PREFIX) :]
    number = int(text)
    if not 1 <= number <= MAX_ID:
        raise ApiError(422, "ValidationError", f"run_id: the number must be 1 to {MAX_ID}")
    return kind, number


# -- Host header (DNS rebinding) --------------------------------------------------------
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
    ASGI middleware, like :class:`BodyLimit`.
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
                    response = _error(
                        400,
                        "InvalidHost",
                        f"Host {shown[:100]!r} is not served here; add the name to "
                        "api.allowed_hosts if this server should answer to it",
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse a declared body above ``limit`` bytes with 413. A plain ASGI middleware:
    Starlette's ``BaseHTTPMiddleware`` re-streams every response and cost most of the
    throughput of large forecast responses."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for key, value in scope["headers"]:
                if key == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                    response = _error(
                        413, "PayloadTooLarge", f"request body above {self.limit} bytes"
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class ResponseCache:
    """A small LRU of rendered responses, keyed by (service, run id, query)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self.items: collections.OrderedDict[Any, tuple[bytes, str, dict[str, str]]] = (
            collections.OrderedDict()
        )
        self.lock = threading.Lock()

    def get(self, key: Any) -> tuple[bytes, str, dict[str, str]] | None:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: Any, value: tuple[bytes, str, dict[str, str]]) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


def _latest(store: Store, name: str) -> tuple[dict[str, Any], pd.DataFrame]:
    latest = store.latest_forecast(name)
    if latest is None:
        raise ApiError(404, "NotFound", f"no stored forecast for {name!r}; run a plan first")
    return latest


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


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Any:
    return JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}
RUN_ID = Annotated[
    str,
    Path(
        pattern=r"^(refresh-)?[0-9]{1,19}$",
        description="a change record's number, or refresh-<n> for a refresh run",
    ),
]


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
    # The docs and the schema are routes of our own below, so they follow protect_reads.
    app = FastAPI(
        title="forescale",
        version="1",
        responses=_ERRORS,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.forecast_cache = ResponseCache(max(512, 4 * len(settings.services)))
    app.state.store = store
    app.state.api_config = config
    app.state.registry = registry
    app.state.refresh = refresh
    app.state.clock = clock
    app.state.status = status or _api_only

    @app.exception_handler(ForescaleError)
    async def _forescale_error(request: Request, exc: ForescaleError) -> Any:
        status = next(code for kind, code in _STATUS if isinstance(exc, kind))
        return _error(status, type(exc).__name__, str(exc))

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Any:
        return _error(exc.status, exc.kind, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        headers = dict(exc.headers) if exc.headers else None
        return _error(exc.status_code, "HTTPError", str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Any:
        # A bug: answer in the error shape without details (Starlette re-raises it after
        # this, so the server logs the traceback).
        return _error(500, "InternalError", "internal error (logged by the server)")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Any:
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

    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    app.add_middleware(HostCheck, allowed=config.allowed_hosts)  # added last: runs first

    reads = [Depends(require_read)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=reads)
    def openapi_schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=reads)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="forescale API")

    @app.get("/redoc", include_in_schema=False, dependencies=reads)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="forescale API")

    @app.get("/healthz", response_model=HealthOut)
    def healthz() -> HealthOut:
        return HealthOut(status="ok")

    @app.get("/readyz", response_model=ReadyOut)
    def readyz(
        store: StoreDep, status: Annotated[Callable[[], ServerStatus], Depends(get_status)]
    ) -> Any:
        # A standby is ready: it serves reads from the shared store and queues refreshes
        # like the leader (and a Deployment's rolling update waits for every pod to be
        # ready). Only a stopping process or an unreachable store is not.
        now = status()
        if now.role == "stopping":
            return _error(503, "Stopping", "this process is shutting down")
        try:
            with store.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            return _error(503, "StoreError", f"store unreachable: {type(exc).__name__}")
        return ReadyOut(status="ready", role=now.role, bind_retries=now.bind_retries)

    @app.get(
        "/metrics",
        dependencies=reads,
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def metrics(registry: Annotated[CollectorRegistry, Depends(get_registry)]) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/services", response_model=ServicesOut, dependencies=reads)
    def services(settings: SettingsDep, store: StoreDep) -> ServicesOut:
        from forescale.pipeline import store_coverage

        out = []
        for name in sorted(settings.services):
            service = settings.services[name]
            collect = store.last_collect(name)
            coverage, newest = store_coverage(store, name)
            latest = store.latest_forecast_run(name)
            changes = store.list_changes(name, limit=1)
            out.append(
                ServiceOut(
                    name=name,
                    mode=settings.mode_of(service),
                    source=service.source.type,
                    last_collect=None
                    if collect is None
                    else CollectOut(
                        at=collect["at"],
                        written=collect["written"],
                        coverage=_finite(collect["coverage"]),
                        last_sample=collect["last_sample"],
                        error=collect["error"],
                    ),
                    coverage=_finite(coverage),
                    last_sample=newest,
                    last_forecast_run_id=None if latest is None else int(latest["id"]),
                    last_forecast_as_of=None
                    if latest is None
                    else dt.datetime.fromtimestamp(latest["as_of"], dt.UTC),
                    last_change_id=changes[0].id if changes else None,
                    last_change_status=changes[0].status if changes else None,
                )
            )
        return ServicesOut(services=out)

    @app.get(
        "/v1/services/{name}/forecast",
        response_model=ForecastOut,
        dependencies=reads,
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    )
    async def forecast(
        name: ServiceName,
        settings: SettingsDep,
        store: StoreDep,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        format: Literal["json", "csv"] = "json",  # noqa: A002 - the query parameter's name
    ) -> Any:
        settings.service(name)
        for label, when in (("start", start), ("end", end)):
            if when is not None and when.tzinfo is None:
                raise ApiError(422, "ValidationError", f"{label}: give a UTC offset or Z")
        if start is not None and end is not None and start > end:
            raise ApiError(422, "ValidationError", "start is after end")
        # Responses are cached per forecast run: a request then costs one indexed query.
        run_id = store.latest_forecast_id(name)
        if run_id is None:
            raise ApiError(404, "NotFound", f"no stored forecast for {name!r}; run a plan first")
        cache: ResponseCache = app.state.forecast_cache
        key = (name, run_id, start, end, format)
        hit = cache.get(key)
        if hit is not None:
            return Response(hit[0], media_type=hit[1], headers=hit[2])
        # A miss renders once per forecast run, off the event loop.
        body, media_type, headers = await run_in_threadpool(
            _render_forecast, store, name, start, end, format
        )
        cache.put(key, (body, media_type, headers))
        return Response(body, media_type=media_type, headers=headers)

    def _render_forecast(
        store: Store,
        name: str,
        start: dt.datetime | None,
        end: dt.datetime | None,
        format: str,  # noqa: A002 - the query parameter's name
    ) -> tuple[bytes, str, dict[str, str]]:
        run, frame = _latest(store, name)
        if start is not None:
            frame = frame[frame["ds"] >= pd.Timestamp(start)]
        if end is not None:
            frame = frame[frame["ds"] <= pd.Timestamp(end)]
        components = [
            c for c in frame.columns if c not in ("ds", "yhat", "yhat_lower", "yhat_upper")
        ]
        if format == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["ds", "yhat", "yhat_lower", "yhat_upper", *components])
            for record in frame.to_dict("records"):
                cells = [
                    _finite(record[c]) for c in ("yhat", "yhat_lower", "yhat_upper", *components)
                ]
                writer.writerow(
                    [_iso(_utc(record["ds"])), *("" if v is None else v for v in cells)]
                )
            return (
                buffer.getvalue().encode(),
                "text/csv; charset=utf-8",
                {"Content-Disposition": f'attachment; filename="{name}-forecast.csv"'},
            )
        meta = run["meta"] if isinstance(run["meta"], dict) else {}
        points = [
            PointOut(
                ds=_utc(r["ds"]),
                yhat=_finite(r["yhat"]),
                yhat_lower=_finite(r["yhat_lower"]),
                yhat_upper=_finite(r["yhat_upper"]),
                components={c: _finite(r[c]) for c in components},
            )
            for r in frame.to_dict("records")
        ]
        out = ForecastOut(
            service=name,
            run_id=int(run["id"]),
            created_at=dt.datetime.fromtimestamp(run["created_at"], dt.UTC),
            as_of=dt.datetime.fromtimestamp(run["as_of"], dt.UTC),
            history_end=dt.datetime.fromtimestamp(run["history_end"], dt.UTC),
            model=str(run["model"]),
            resolution_seconds=int(run["resolution_s"]),
            components=components,
            notes=[str(n) for n in meta.get("notes", [])],
            choice=ChoiceOut.model_validate(meta["choice"]) if meta.get("choice") else None,
            live=LiveOut.model_validate(meta["live"]) if meta.get("live") else None,
            points=points,
        )
        return out.model_dump_json().encode(), "application/json", {}

    @app.get("/v1/services/{name}/schedule", response_model=ScheduleOut, dependencies=reads)
    def schedule(
        name: ServiceName,
        settings: SettingsDep,
        store: StoreDep,
        clock: Annotated[Callable[[], dt.datetime], Depends(get_clock)],
    ) -> ScheduleOut:
        from forecaster.capacity import plan_capacity, planner_frame
        from forecaster.types import Forecast
        from forescale.pipeline import capacity_policy, current_units_of

        service = settings.service(name)
        run, frame = _latest(store, name)
        if frame.empty:
            raise ApiError(409, "DataError", f"the stored forecast of {name!r} has no points")
        try:
            current = current_units_of(service)
        except (ForescaleError, OSError) as exc:
            raise ApiError(409, "IacError", f"cannot read current units: {exc}") from None
        now = clock().astimezone(dt.UTC)
        policy = capacity_policy(service)
        lookback = policy.stabilization + policy.lead_time
        resolution = dt.timedelta(seconds=int(run["resolution_s"]))
        stored = Forecast(
            frame=frame,
            components=(),
            resolution=resolution,
            interval_width=service.forecast.interval_width,
            fitted_at=dt.datetime.fromtimestamp(run["as_of"], dt.UTC),
            history_end=dt.datetime.fromtimestamp(run["history_end"], dt.UTC),
            model=str(run["model"]),
        )
        first = _utc(frame["ds"].iloc[0])
        observed = store.load_samples(name, first - lookback - 2 * resolution, now)
        newest = store.last_sample_time(name)
        fresh = newest is not None and now - newest <= settings.stale_after
        demand = float(observed["y"].iloc[-1]) if fresh and not observed.empty else None
        plan = plan_capacity(
            planner_frame(stored, observed, lookback),
            policy=policy,
            current_units=current,
            now=now,
            observed_demand=demand,
            data_fresh=fresh,
            timezone=settings.display_timezone,  # as the report reads the same steps
        )
        return ScheduleOut(
            service=name,
            now=now,
            forecast_run_id=int(run["id"]),
            current_units=plan.current_units,
            steps=[
                StepOut(
                    at=s.at,
                    units=s.units,
                    from_units=s.from_units,
                    direction=s.direction,
                    reason=s.reason,
                    serves_at=s.serves_at,
                    demand=_finite(s.demand),
                    constraints=list(s.constraints),
                )
                for s in plan.steps
            ],
            desired=[
                DesiredOut(ds=_utc(r["ds"]), units=int(r["units"]))
                for r in plan.desired.to_dict("records")
            ],
            notes=list(plan.notes),
        )

    @app.get("/v1/services/{name}/plan", response_model=PlanOut, dependencies=reads)
    def last_plan(name: ServiceName, settings: SettingsDep, store: StoreDep) -> PlanOut:
        settings.service(name)
        changes = store.list_changes(name, limit=1)
        if not changes:
            raise ApiError(404, "NotFound", f"no change recorded for {name!r}")
        pending = store.pending_change(name)
        return PlanOut(
            service=name,
            pending=pending is not None and pending.id == changes[0].id,
            change=_run_out(changes[0]),
        )

    @app.post(
        "/v1/services/{name}/refresh",
        response_model=RefreshOut,
        status_code=202,
        dependencies=[Depends(require_write)],
    )
    def refresh_service(
        name: ServiceName,
        settings: SettingsDep,
        refresh: Annotated[RefreshQueue | None, Depends(get_refresh)],
        response: Response,
    ) -> RefreshOut:
        settings.service(name)
        if refresh is None:
            raise ApiError(503, "Unavailable", "no refresher configured (run the daemon)")
        try:
            submitted = refresh.submit(name)
        except RefreshRefused as exc:
            kind = "TooManyRequests" if exc.status == 429 else "Unavailable"
            raise ApiError(
                exc.status, kind, str(exc), {"Retry-After": str(exc.retry_after)}
            ) from None
        run_id = refresh_id(submitted.run.id)
        url = f"/v1/runs/{run_id}"
        response.headers["Location"] = url
        return RefreshOut(
            service=name,
            run_id=run_id,
            status=submitted.run.status,  # type: ignore[arg-type]  # pydantic checks it
            coalesced=submitted.coalesced,
            url=url,
        )

    @app.get("/v1/runs", response_model=RunsOut, dependencies=reads)
    def runs(
        store: StoreDep,
        service: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_RUNS_SCANNED)] = 0,
        kind: Literal["change", "refresh"] = "change",
    ) -> RunsOut:
        # One more than asked tells whether there is a next page.
        items: list[RunOut | RefreshRunOut]
        if kind == "refresh":
            refreshes = store.list_refresh_runs(service, limit=offset + limit + 1)[offset:]
            more = len(refreshes) > limit
            items = [_refresh_out(r) for r in refreshes[:limit]]
        else:
            records = store.list_changes(service, limit=offset + limit + 1)[offset:]
            more = len(records) > limit
            items = [_run_out(r) for r in records[:limit]]
        return RunsOut(
            items=items,
            limit=limit,
            offset=offset,
            next_offset=offset + limit if more else None,
        )

    @app.get("/v1/runs/{run_id}", response_model=AnyRunOut, dependencies=reads)
    def run(store: StoreDep, run_id: RUN_ID) -> RunOut | RefreshRunOut:
        kind, number = _parse_run_id(run_id)
        if kind == "refresh":
            refreshed = store.refresh_run(number)
            if refreshed is None:
                raise ApiError(404, "NotFound", f"no refresh run {run_id}")
            return _refresh_out(refreshed)
        record = store.change(number)
        if record is None:
            raise ApiError(404, "NotFound", f"no run with id {run_id}")
        return _run_out(record)

    return app
