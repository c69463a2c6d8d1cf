"""Wiring for the long-running service: the API app with its metrics, served by uvicorn.

``forescale serve`` runs the API alone; ``forescale daemon`` runs it in-process next to
the scheduler (the API never fits on the request path: forecasts come from the store).

- :class:`ApiServer` binds the listening sockets itself and hands them to uvicorn, so a
  port that is taken (the old leader's, on the same host) is an ``OSError`` handled here:
  logged once per change of state and retried in the background until it binds or the
  server stops. Port 0 picks a free port (:attr:`ApiServer.port` is the real one).
- :class:`Refresher` runs ``POST /v1/services/{name}/refresh`` refits one at a time as
  stored refresh runs, coalesced per service, with a bounded queue; each run is leased to
  its server, which beats while it lives, so the runs of a killed server are failed.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime as dt
import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from forescale.api import (
    DEFAULT_ALLOWED_HOSTS,
    RefreshQueue,
    RefreshRefused,
    ServerStatus,
    Submitted,
    refresh_id,
)
from forescale.config.settings import Settings
from forescale.errors import ForescaleError
from forescale.metrics import Metrics
from forescale.records import RefreshRun
from forescale.store import Store

log = logging.getLogger("forescale.service")
# Refreshing the store-derived gauges re-reads every service's forecast and variable file
# (≈3.4 s of CPU for 100 services, measured): every 30 s that stalled the API under load.
# The inputs only change with the daemon's jobs (every 5 min by default).
METRICS_REFRESH_SECONDS = 300.0
MAX_QUEUED_REFRESHES = 32  # refreshes waiting for the worker, across services
RETRY_AFTER_UNKNOWN_SECONDS = 30  # Retry-After before any refit has been timed
# A refresh run whose server has not beaten for this long is failed as abandoned. Beats come
# every quarter of it, so three can be missed (a busy database, a GC pause) before a live
# server loses its run; clocks of servers sharing a store must agree well within it (NTP).
REFRESH_LEASE = dt.timedelta(seconds=120)
OWNER_MAX_CHARS = 64  # refresh_runs.owner is String(64)
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def default_owner() -> str:
    """``host:pid:random`` naming this server process in at most 64 characters (a long host
    name is cut; the random part tells two refreshers of one process apart)."""
    tail = f":{os.getpid()}:{secrets.token_hex(4)}"
    return socket.gethostname()[: OWNER_MAX_CHARS - len(tail)] + tail


class Refresher:
    """``POST /v1/services/{name}/refresh``: ``refit(name)`` (returning the id of the
    forecast it stored) in one background worker, each request a stored
    :class:`~forescale.store.RefreshRun` that ``GET /v1/runs/refresh-<n>`` polls. The API
    never waits for a fit.

    1. A refresh of a service with a run queued or running returns that run (coalesced).
    2. At most ``max_queued`` runs wait, across services (the running one is not counted):
       beyond, :class:`~forescale.api.RefreshRefused` 429, retry after about one refit's
       duration (the mean of the last ones; 30 s before any).
    3. Runs execute one at a time, in the order they were queued. A ``ForescaleError``
       fails the run with its message; any other exception is a bug: logged with its
       traceback, the run fails with "internal error".
    4. :meth:`close` stops taking refreshes (503), fails the queued runs ("the server
       stopped ...") and waits for the running one.
    5. Each run is leased to ``owner`` (this process): :meth:`heartbeat` stamps its queued
       and running runs with ``clock()`` and fails every queued or running run of any
       owner whose last heartbeat is more than ``lease`` old ("abandoned: ..."), so the
       runs of a server that was killed do not poll forever. It runs once when the
       refresher is built (a restarted server clears its predecessor's runs at once), then
       every ``lease / 4`` in a background thread until :meth:`close`. A swept owner that
       was only paused still records its real outcome when it finishes.

    Coalescing and the bound hold per process: leader and standby each keep their own
    queue (both may run one refit of a service at the same time).
    """

    def __init__(
        self,
        refit: Callable[[str], int | None],
        store: Store,
        *,
        max_queued: int = MAX_QUEUED_REFRESHES,
        clock: Callable[[], dt.datetime] = utc_now,
        owner: str | None = None,
        lease: dt.timedelta = REFRESH_LEASE,
    ) -> None:
        owner = default_owner() if owner is None else owner
        if not 0 < len(owner) <= OWNER_MAX_CHARS:
            raise ValueError(f"owner must be 1 to {OWNER_MAX_CHARS} characters, got {owner!r}")
        if lease <= dt.timedelta(0):
            raise ValueError(f"lease must be positive, got {lease}")
        self.refit = refit
        self.store = store
        self.max_queued = max_queued
        self.clock = clock
        self.owner = owner
        self.lease = lease
        self._cond = threading.Condition()
        self._active: dict[str, RefreshRun] = {}  # service -> its queued or running run
        self._queued: dict[int, concurrent.futures.Future[None]] = {}  # run id -> future
        self._seconds: collections.deque[float] = collections.deque(maxlen=8)
        self._closed = False
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="forescale-refresh"
        )
        self._stop_beating = threading.Event()
        self._beat_safely()
        self._beating = threading.Thread(
            target=self._beat_every, name="forescale-refresh-heartbeat", daemon=True
        )
        self._beating.start()

    def submit(self, service: str) -> Submitted:
        """Queue a refit of ``service`` (or join its queued/running run)."""
        with self._cond:
            if self._closed:
                raise RefreshRefused(
                    "this server is stopping; ask again (the new leader takes refreshes)",
                    status=503,
                    retry_after=5,
                )
            active = self._active.get(service)
            if active is not None:
                return Submitted(run=active, coalesced=True)
            if len(self._queued) >= self.max_queued:
                raise RefreshRefused(
                    f"{len(self._queued)} refreshes are queued already (the limit); "
                    "ask again later",
                    status=429,
                    retry_after=self._retry_after(),
                )
            run = self.store.create_refresh_run(
                service, requested_at=self.clock(), owner=self.owner
            )
            self._active[service] = run
            self._queued[run.id] = self._pool.submit(self._execute, run)
        log.info(
            "refresh %s of %s queued",
            refresh_id(run.id),
            service,
            extra={"service": service, "run_id": refresh_id(run.id)},
        )
        return Submitted(run=run, coalesced=False)

    def _retry_after(self) -> int:
        if not self._seconds:
            return RETRY_AFTER_UNKNOWN_SECONDS
        return min(600, max(1, math.ceil(sum(self._seconds) / len(self._seconds))))

    def _execute(self, run: RefreshRun) -> None:
        name, shown = run.service, refresh_id(run.id)
        extra = {"service": name, "run_id": shown}
        with self._cond:
            self._queued.pop(run.id, None)
        started = time.monotonic()
        error: str | None = None
        forecast_run_id: int | None = None
        try:
            now = self.clock()
            self.store.start_refresh_run(run.id, started_at=now, owner=self.owner)
            with self._cond:
                self._active[name] = dataclasses.replace(run, status="running", started_at=now)
            forecast_run_id = self.refit(name)
        except ForescaleError as exc:
            error = str(exc)
            log.error("refresh %s of %s failed: %s", shown, name, exc, extra=extra)
        except Exception:  # noqa: BLE001 - a bug in a background refit must not kill the API
            error = "internal error (logged by the server)"
            log.exception("refresh %s of %s crashed (a bug)", shown, name, extra=extra)
        else:
            log.info(
                "refresh %s of %s done: forecast run #%s",
                shown,
                name,
                forecast_run_id,
                extra={**extra, "forecast_run_id": forecast_run_id},
            )
        finally:
            try:
                if not self.store.finish_refresh_run(
                    run.id,
                    finished_at=self.clock(),
                    error=error,
                    forecast_run_id=forecast_run_id,
                    owner=self.owner,
                ):
                    log.error(
                        "refresh %s: outcome not recorded: the run is gone or not %s's",
                        shown,
                        self.owner,
                        extra=extra,
                    )
            except ForescaleError as exc:
                log.error("refresh %s: outcome not recorded: %s", shown, exc, extra=extra)
            with self._cond:
                self._seconds.append(time.monotonic() - started)
                self._active.pop(name, None)
                self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until no run is queued or running; True if so."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._active, timeout)

    def cancel_queued(self) -> None:
        """Take no more refreshes and fail every queued (not yet running) run."""
        with self._cond:
            self._closed = True
            cancelled = [run_id for run_id, f in self._queued.items() if f.cancel()]
            for run_id in cancelled:
                del self._queued[run_id]
            for service in [s for s, r in self._active.items() if r.id in cancelled]:
                del self._active[service]
            self._cond.notify_all()
        for run_id in cancelled:
            try:
                self.store.finish_refresh_run(
                    run_id,
                    finished_at=self.clock(),
                    error="cancelled: the server stopped before this refresh started; ask again",
                    owner=self.owner,
                )
            except ForescaleError as exc:
                log.error("refresh %s: cancellation not recorded: %s", refresh_id(run_id), exc)

    def heartbeat(self) -> list[RefreshRun]:
        """Beat for this owner's queued and running runs (at ``clock()``), then fail every
        queued or running run whose last heartbeat is older than ``clock() - lease`` as
        abandoned (logged once each, at WARNING). Returns the runs it failed. Store errors
        propagate (the background thread logs them)."""
        now = self.clock()
        self.store.beat_refresh_runs(self.owner, now)
        swept = self.store.abandon_stale_refresh_runs(now - self.lease, at=now)
        for run in swept:
            shown = refresh_id(run.id)
            log.warning(
                "refresh %s of %s failed: %s",
                shown,
                run.service,
                run.error,
                extra={"service": run.service, "run_id": shown, "owner": run.owner},
            )
        return swept

    def _beat_safely(self) -> None:
        try:
            self.heartbeat()
        except ForescaleError as exc:  # the store is away: the next beat tries again
            log.error("refresh heartbeat failed: %s", exc)
        except Exception:  # noqa: BLE001 - a bug must not stop the heartbeat
            log.exception("refresh heartbeat crashed (a bug)")

    def _beat_every(self) -> None:
        interval = self.lease.total_seconds() / 4
        while not self._stop_beating.wait(interval):
            self._beat_safely()

    def close(self) -> None:
        """:meth:`cancel_queued`, wait for a running refit to finish (beating for it
        meanwhile), then stop the heartbeat thread."""
        self.cancel_queued()
        self._pool.shutdown(wait=True)
        self._stop_beating.set()
        self._beating.join()


def build_app(
    settings: Settings,
    store: Store,
    registry: CollectorRegistry,
    refresh: RefreshQueue | None,
    status: Callable[[], ServerStatus] | None = None,
    *,
    bind: str | None = None,
) -> Any:
    """The API app for ``settings``. Allowed hosts: ``api.allowed_hosts`` when set, else
    localhost, 127.0.0.1, [::1] and the bind address (``bind`` or
    ``api.bind``)."""
    from forescale.api import ApiConfig, create_app

    token = _token(settings)
    configured = settings.api.allowed_hosts
    hosts = (
        tuple(configured)
        if configured is not None
        else (*DEFAULT_ALLOWED_HOSTS, settings.api.bind if bind is None else bind)
    )
    return create_app(
        settings=settings,
        store=store,
        config=ApiConfig(
            token=token, protect_reads=settings.api.protect_reads, allowed_hosts=hosts
        ),
        registry=registry,
        refresh=refresh,
        status=status,
    )


def _token(settings: Settings) -> str | None:
    """The API's bearer token in clear (None: none configured)."""
    return settings.api.token.get_secret_value() if settings.api.token is not None else None


def reconfigure(api: Any, settings: Settings) -> None:
    """Make a running API app (from :func:`build_app`) serve ``settings``: its services,
    token and ``protect_reads`` (read per request). The allowed hosts are middleware,
    fixed when the app was built. Cached forecast answers are dropped."""
    from forescale.api import ApiConfig

    old: ApiConfig = api.state.api_config
    api.state.api_config = dataclasses.replace(
        old, token=_token(settings), protect_reads=settings.api.protect_reads
    )
    api.state.settings = settings
    api.state.forecast_cache.clear()


def keep_metrics_fresh(
    metrics: Metrics,
    current: Callable[[], Settings],
    store: Store,
    stop: threading.Event,
) -> threading.Thread:
    """Refresh store-derived gauges (data age, units, forecast demand) every 5 min, from
    the settings in force (``current()``: a reload changes them)."""

    def loop() -> None:
        while True:
            try:
                metrics.refresh_from_store(current(), store, dt.datetime.now(dt.UTC))
            except Exception:  # noqa: BLE001 - metrics are best effort
                log.exception("metrics refresh failed")
            if stop.wait(METRICS_REFRESH_SECONDS):
                return

    thread = threading.Thread(target=loop, name="forescale-metrics", daemon=True)
    thread.start()
    return thread


def bind_sockets(host: str, port: int, backlog: int = 2048) -> list[socket.socket]:
    """Listening TCP sockets on every address ``host`` resolves to (as asyncio's
    ``create_server`` would bind them); all or none: an ``OSError`` closes those bound.
    Port 0: the first socket's free port is used for the others too."""
    infos = socket.getaddrinfo(
        host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )
    bound: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address[0]) in seen:
                continue
            seen.add((family, address[0]))
            if port == 0 and bound:
                address = (address[0], bound[0].getsockname()[1], *address[2:])
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
    except OSError:
        for sock in bound:
            sock.close()
        raise
    return bound


def _url(host: str, port: int | None) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class ApiServer:
    """uvicorn in a background thread, on sockets this class binds (:func:`bind_sockets`).

    :meth:`start` binds at once when it can; otherwise it retries in a background thread,
    first after ``retry_initial`` seconds, doubling up to ``retry_max`` (a standby on the
    leader's host keeps trying until the old leader frees the port); :meth:`retry_now`
    (the daemon calls it on becoming leader) tries at once. The first failure, each new
    kind of failure and the success are logged once (repeats at DEBUG), all through the
    ``forescale.service`` logger; uvicorn's own loggers propagate to the root handlers
    (``log_config=None``), so ``--log-format json`` covers them too. :meth:`stop` ends
    the retries or the server (bounded wait).
    """

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        retry_initial: float = 1.0,
        retry_max: float = 5.0,
    ) -> None:
        import uvicorn

        self.host = host
        self.requested_port = port
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                log_config=None,  # no handlers of its own: records reach ours
                lifespan="off",
                timeout_graceful_shutdown=5,
            )
        )
        for name in UVICORN_LOGGERS:
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._serving: threading.Thread | None = None
        self._retrying: threading.Thread | None = None
        self._failures = 0
        self._last_error: str | None = None
        self._port: int | None = None

    @property
    def port(self) -> int | None:
        """The port it listens on (None until bound)."""
        return self._port

    @property
    def bind_retries(self) -> int:
        """Failed attempts to bind so far."""
        return self._failures

    @property
    def running(self) -> bool:
        """Serving or still retrying to bind."""
        return any(t is not None and t.is_alive() for t in (self._serving, self._retrying))

    def start(self) -> bool:
        """Bind and serve; True if it listens now, False if it retries in the background."""
        if self._try_bind():
            return True
        self._retrying = threading.Thread(
            target=self._retry, name="forescale-api-bind", daemon=True
        )
        self._retrying.start()
        return False

    def retry_now(self) -> None:
        """Retry a failed bind at once (and restart the backoff); no-op once bound."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stopping.set()
            serving = self._serving
        self._wake.set()
        self.server.should_exit = True
        for thread in (serving, self._retrying):
            if thread is not None:
                thread.join(timeout)

    def _retry(self) -> None:
        delay = self.retry_initial
        while True:
            woken = self._wake.wait(delay)
            self._wake.clear()
            if self._stopping.is_set() or self._try_bind():
                return
            delay = self.retry_initial if woken else min(2 * delay, self.retry_max)

    def _try_bind(self) -> bool:
        where = _url(self.host, self.requested_port)
        try:
            sockets = bind_sockets(self.host, self.requested_port)
        except OSError as exc:
            self._failures += 1
            state = f"{type(exc).__name__}:{exc.errno}"
            level = logging.WARNING if state != self._last_error else logging.DEBUG
            self._last_error = state
            log.log(
                level,
                "API: cannot listen on %s (%s); retrying in the background every "
                "%g-%g s until it can",
                where,
                exc.strerror or exc,
                self.retry_initial,
                self.retry_max,
                extra={"bind": self.host, "port": self.requested_port, "errno": exc.errno},
            )
            return False
        with self._lock:
            if self._stopping.is_set():
                for sock in sockets:
                    sock.close()
                return True
            self._port = int(sockets[0].getsockname()[1])
            self._serving = threading.Thread(
                target=self.server.run, kwargs={"sockets": sockets}, name="forescale-api"
            )
            self._serving.daemon = True
            self._serving.start()
        after = f" after {self._failures} failed attempts to bind" if self._failures else ""
        log.info(
            "API listening on %s%s",
            _url(self.host, self._port),
            after,
            extra={"bind": self.host, "port": self._port, "bind_retries": self._failures},
        )
        return True
