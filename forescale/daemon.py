"""The long-running service: collect, refit and apply on a schedule, one leader per store.

Jobs (plain functions taking their dependencies, so tests call them directly):

- :func:`collect_job` every ``collect_every`` (default 5 min):
  :func:`forescale.usecases.collect.collect_all`, then a refit when the settings file or an
  events file changed (mtime check) or the newest stored forecast is older than
  ``stale_after`` (or missing).
- :func:`refit_job` every ``refit_every`` (default 6 h): fit and store a forecast per service
  (:func:`forescale.usecases.refit.refit_all`; never touches Terraform). A service whose fit
  fails keeps its last good forecast in the store and the error is logged.
- :func:`apply_job` every ``apply_every`` (default 5 min):
  :func:`forescale.usecases.apply.apply_due` with ``trigger="daemon"``, planning from the
  stored forecast; in ``dry-run`` mode it only reports.

Safety: the daemon never scales down on stale data. It adds no rule of its own for that:
every plan goes through :func:`forescale.usecases.plan.plan_with_run`, whose planner holds
(never lowers) capacity when the newest sample is older than ``settings.stale_after`` — so
a metrics outage that makes collect fail leaves the stored history stale, and apply can
only raise or hold.

Scheduling: APScheduler 3.x ``BackgroundScheduler`` with ``timezone=UTC`` (no DST
surprises), each job ``max_instances=1``, ``coalesce=True`` and a ``misfire_grace_time``.
All jobs share one worker thread, so they never overlap each other either (no SQLite write
contention, no refit racing an apply); a job that is due while another runs waits its turn.

Leadership: one active daemon per store. :class:`FileLeaderLock` takes an OS lock
(``fcntl.flock`` ``LOCK_EX | LOCK_NB``) on a lock file next to the SQLite store;
:class:`PgLeaderLock` takes ``pg_try_advisory_lock`` on a dedicated PostgreSQL connection.
A second daemon waits as standby, polling the lock every ``standby_poll`` seconds, runs no
job while standby, and takes over when the leader dies (the OS / server frees the lock).

Shutdown: :meth:`Daemon.run` returns 0 once its stop event is set (the CLI sets it from
SIGTERM/SIGINT): no new job starts, a running job finishes (``shutdown(wait=True)``), the
store is closed and the lock released.

Logs are plain :mod:`logging` records (optionally JSON lines, :class:`JsonFormatter`). They
never include settings dumps or source URLs/credentials: a source is named by its
``describe()`` and the store URL with its password hidden.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from forescale.config.settings import Settings, load_settings
from forescale.errors import ConfigError, ForescaleError
from forescale.forecaster.candidates import PRODUCT, CandidateSet
from forescale.metrics import Metrics
from forescale.records import NOT_APPLIED
from forescale.store import Store, _redact, sqlite_file
from forescale.usecases.apply import ApplyOutcome, apply_due
from forescale.usecases.collect import CollectResult, collect_all
from forescale.usecases.context import App, RunnerFactory, default_runner
from forescale.usecases.refit import refit_all
from forescale.usecases.shadow import review_modes

log = logging.getLogger("forescale.daemon")

Clock = Callable[[], dt.datetime]
StoreFactory = Callable[[str], Store]
JobHook = Callable[[str, float, bool], None]  # (job name, seconds, ok), e.g. Metrics.observe_job

JOBS = ("collect", "refit", "apply")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, kw_only=True, slots=True)
class DaemonConfig:
    """Daemon timing (all durations; the scheduler runs in UTC).

    ``stale_after``: a stored forecast older than this is refitted at the next collect.
    ``lock_path``: the leader lock file; default ``.forescale-daemon.lock`` next to the
    SQLite store (ignored for PostgreSQL, which uses an advisory lock).
    ``standby_poll``: how often a standby daemon retries the leader lock (0.05 s - 60 s).
    """

    collect_every: dt.timedelta = dt.timedelta(minutes=5)
    refit_every: dt.timedelta = dt.timedelta(hours=6)
    apply_every: dt.timedelta = dt.timedelta(minutes=5)
    misfire_grace: dt.timedelta = dt.timedelta(minutes=2)
    stale_after: dt.timedelta = dt.timedelta(hours=12)
    lock_path: Path | None = None
    standby_poll: dt.timedelta = dt.timedelta(seconds=5)
    run_at_start: bool = True  # collect (and refit if needed) right after taking the lead

    def __post_init__(self) -> None:
        for name in ("collect_every", "refit_every", "apply_every"):
            if getattr(self, name) < dt.timedelta(seconds=1):
                raise ConfigError(f"daemon {name.replace('_', '-')}: must be at least 1s")
        if self.misfire_grace < dt.timedelta(seconds=1):
            raise ConfigError("daemon misfire-grace: must be at least 1s")
        if self.stale_after <= dt.timedelta(0):
            raise ConfigError("daemon stale-after: must be positive")
        if not dt.timedelta(milliseconds=50) <= self.standby_poll <= dt.timedelta(seconds=60):
            raise ConfigError("daemon standby-poll: must be between 50ms and 60s")


# -- leader lock ---------------------------------------------------------------------------
class LeaderLock(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock without waiting; True if this process now holds it."""

    def release(self) -> None:
        """Give the lock up (safe to call when not held)."""

    def describe(self) -> str: ...


class FileLeaderLock:
    """``fcntl.flock`` on a lock file. The lock belongs to the open file description, so two
    instances in one process contend like two processes; the OS frees it when we die."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None

    def try_acquire(self) -> bool:
        if self._handle is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+b")  # noqa: SIM115 - held open while leader
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        except OSError:
            handle.close()
            raise
        # Who holds it, for an operator looking at the file (informational only).
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._handle = handle
        return True

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            finally:
                handle.close()

    def describe(self) -> str:
        return f"file lock {self.path}"


class PgLeaderLock:
    """``pg_try_advisory_lock`` held on a dedicated connection (the server frees it when the
    connection drops). Not exercised by the test suite when no PostgreSQL is available."""

    def __init__(self, url: str, key: str = "forescale-daemon") -> None:
        self.url = url
        # A stable signed 64-bit key derived from the name (advisory locks take a bigint).
        self.key = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        self._engine: Any = None
        self._conn: Any = None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return True
        import sqlalchemy as sa
        from sqlalchemy.exc import SQLAlchemyError

        try:
            if self._engine is None:
                self._engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
            conn = self._engine.connect()
            got = bool(
                conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            )
            conn.commit()
        except SQLAlchemyError as exc:
            raise ForescaleError(f"leader lock on {_redact(self.url)}: {exc}") from None
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            import sqlalchemy as sa
            from sqlalchemy.exc import SQLAlchemyError

            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                conn.commit()
            except SQLAlchemyError:
                pass  # closing the connection frees the lock anyway
            finally:
                conn.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def describe(self) -> str:
        return f"advisory lock on {_redact(self.url)}"


def leader_lock_for(store_url: str, lock_path: Path | None = None) -> LeaderLock:
    """The leader lock for a store: an advisory lock for PostgreSQL, else a lock file."""
    if store_url.startswith(("postgresql", "postgres")):
        return PgLeaderLock(store_url)
    if lock_path is not None:
        return FileLeaderLock(lock_path)
    db_file = sqlite_file(store_url)
    if db_file is not None:
        return FileLeaderLock(db_file.parent / ".forescale-daemon.lock")
    raise ConfigError(f"store {_redact(store_url)}: give a lock path for the daemon's leader lock")


# -- jobs ----------------------------------------------------------------------------------
def collect_job(settings: Settings, store: Store, *, clock: Clock = utc_now) -> list[CollectResult]:
    """Collect new samples for every service; a failing source is logged, not raised;
    rows a source read but did not store are logged as a warning."""
    results = collect_all(settings, store, clock=clock)
    for r in results:
        if r.warning:
            log.warning("collect of %s: %s", r.service, r.warning, extra={"service": r.service})
        if r.error:
            log.warning(
                "collect failed for %s (stored history kept): %s",
                r.service,
                r.error,
                extra={"service": r.service},
            )
        else:
            log.info(
                "collected %d samples for %s",
                r.written,
                r.service,
                extra={"service": r.service, "written": r.written, "coverage": r.coverage},
            )
    return results


def refit_job(
    app: App,
    *,
    clock: Clock = utc_now,
    services: Sequence[str] | None = None,
) -> dict[str, str | None]:
    """Fit and store a forecast per service; returns ``{service: error or None}``. A
    failure keeps the service's last good forecast and is logged; the others still refit."""
    return refit_all(app, now=clock().astimezone(dt.UTC), services=services)


def apply_job(
    app: App,
    *,
    clock: Clock = utc_now,
    reuse_forecast_for: dt.timedelta | None = None,
) -> list[ApplyOutcome]:
    """Apply (or plan / commit / dry-run report) the step due now for every service,
    planning from the stored forecast while it is younger than ``reuse_forecast_for``."""
    outcomes = apply_due(app, now=clock(), trigger="daemon", reuse_forecast_for=reuse_forecast_for)
    for o in outcomes:
        level = logging.ERROR if o.status in NOT_APPLIED else logging.INFO
        log.log(
            level,
            "apply %s [%s] %s: %s",
            o.service,
            o.mode,
            o.status,
            o.message,
            extra={"service": o.service, "status": o.status, "change_id": o.change_id},
        )
    return outcomes


@dataclass
class ChangeWatch:
    """Modification times of the settings file and the events files, to refit on edits."""

    seen: dict[Path, int | None] = field(default_factory=dict)

    @staticmethod
    def paths(settings: Settings) -> list[Path]:
        found = {settings.config_path} if settings.config_path else set()
        for service in settings.services.values():
            events = settings.events_path(service)
            if events is not None:
                found.add(events)
        return sorted(found)

    def changed(self, settings: Settings) -> list[Path]:
        """Files whose mtime differs from the last call (none on the first call)."""
        first = not self.seen
        changed = []
        for path in self.paths(settings):
            try:
                mtime: int | None = path.stat().st_mtime_ns
            except OSError:
                mtime = None
            if path in self.seen and self.seen[path] != mtime:
                changed.append(path)
            self.seen[path] = mtime
        return [] if first else changed


# -- the daemon ----------------------------------------------------------------------------
class Daemon:
    """Runs the jobs on a UTC scheduler while holding the leader lock for the store."""

    def __init__(
        self,
        settings: Settings,
        config: DaemonConfig | None = None,
        *,
        store_factory: StoreFactory = Store.open,
        clock: Clock = utc_now,
        candidates: CandidateSet = PRODUCT,
        runner_factory: RunnerFactory = default_runner,
        lock: LeaderLock | None = None,
        on_job: JobHook | None = None,
        reload: Callable[[Path], Settings] = load_settings,
        metrics: Metrics | None = None,
        on_reload: Callable[[Settings], None] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or DaemonConfig()
        self.store_factory = store_factory
        self.clock = clock
        self.candidates = candidates
        self.runner_factory = runner_factory
        self.lock = lock or leader_lock_for(settings.store_url, self.config.lock_path)
        self.on_job = on_job
        self.reload = reload
        self.metrics = metrics
        self.on_reload = on_reload
        self.app: App | None = None
        self.watch = ChangeWatch()
        self._job_lock = threading.Lock()  # run_once and the scheduler never overlap

    # jobs as the scheduler sees them: timed, logged, never raising
    def _run(self, job: str, body: Callable[[App], object]) -> bool:
        app = self.app
        if app is None:
            raise RuntimeError("the daemon's store is not open")
        started = time.monotonic()
        ok = False
        with self._job_lock:
            try:
                body(app)
                ok = True
            except ForescaleError as exc:
                log.error("%s job failed: %s", job, exc, extra={"job": job})
            except Exception:  # noqa: BLE001 - a bug in one run must not stop the daemon
                log.exception("%s job crashed (a bug)", job, extra={"job": job})
        seconds = time.monotonic() - started
        log.debug("%s job done in %.3fs", job, seconds, extra={"job": job, "seconds": seconds})
        if self.on_job is not None:
            try:
                self.on_job(job, seconds, ok)
            except Exception:  # noqa: BLE001 - a metrics hook must not break the job
                log.exception("on_job hook failed", extra={"job": job})
        return ok

    def collect(self, *, auto_refit: bool = True) -> bool:
        """Collect; then refit if a watched file changed or a forecast is stale."""
        return self._run("collect", lambda app: self._collect(app, auto_refit=auto_refit))

    def refit(self) -> bool:
        return self._run("refit", self._refit)

    def apply(self) -> bool:
        return self._run("apply", self._apply)

    def _collect(self, app: App, *, auto_refit: bool) -> None:
        results = collect_job(self.settings, app.store, clock=self.clock)
        if self.metrics is not None:
            for r in results:
                if r.error:
                    source = self.settings.services[r.service].source.type
                    self.metrics.count_collector_error(source)
        early = self._judge_live(app.store)
        for change in review_modes(app, now=self.clock()):  # shadow mode: promote or demote
            if self.metrics is not None:
                self.metrics.set_mode(change.service, change.to_mode)
        if not auto_refit:
            return
        changed = self.watch.changed(self.settings)
        if changed:
            log.info("refit: %s changed", ", ".join(p.name for p in changed))
            self._maybe_reload(changed)
        names = sorted(self.settings.services)
        stale = [name for name in names if self._forecast_stale(app.store, name) or name in early]
        if changed or stale:
            if stale and not changed:
                log.info("refit: stale or missed forecast for %s", ", ".join(stale))
            refit_job(self.app or app, clock=self.clock, services=None if changed else stale)

    def _judge_live(self, store: Store) -> set[str]:
        """Live accuracy of each service's forecast in force (metric
        ``forescale_forecast_error_ratio``); the services whose forecast missed past the
        limits, to refit now (see :mod:`forescale.live`)."""
        from forescale.live import live_accuracy

        now = self.clock().astimezone(dt.UTC)
        early: set[str] = set()
        for name, service in sorted(self.settings.services.items()):
            try:
                judged = live_accuracy(store, service, name, now=now)
            except ForescaleError as exc:
                log.warning("live accuracy of %s unavailable: %s", name, exc)
                continue
            if judged is None:
                continue
            if self.metrics is not None:
                self.metrics.set_service(name, forecast_error_ratio=judged.error_ratio)
            if judged.refit_due:
                early.add(name)
                log.warning(
                    "early refit of %s: %s",
                    name,
                    judged.reason,
                    extra={"service": name, "forecast_run_id": judged.run_id},
                )
                if self.metrics is not None:
                    self.metrics.count_early_refit(name)
        return early

    def _maybe_reload(self, changed: Sequence[Path]) -> None:
        path = self.settings.config_path
        if path is None or path not in changed:
            return
        try:
            fresh = self.reload(path)
        except ForescaleError as exc:
            log.error("settings file changed but is invalid (old settings kept): %s", exc)
            return
        if fresh.store_url != self.settings.store_url:
            log.warning("store_url changed: restart the daemon to use it (old settings kept)")
            return
        self.settings = fresh
        if self.app is not None:
            self.app = self.app.with_settings(fresh)
        if self.on_reload is not None:
            self.on_reload(fresh)  # the API served in this process follows (token too)
        log.info("settings reloaded from %s", path.name)

    def _forecast_stale(self, store: Store, name: str) -> bool:
        latest = store.latest_run_stamp(name)
        if latest is None:
            return True
        return self.clock() - latest.created_at > self.config.stale_after

    def _refit(self, app: App) -> None:
        outcome = refit_job(app, clock=self.clock)
        failed = [name for name, error in outcome.items() if error]
        if failed:
            raise ForescaleError(f"refit failed for {', '.join(failed)}")

    def _apply(self, app: App) -> None:
        outcomes = apply_job(app, clock=self.clock, reuse_forecast_for=self.config.refit_every)
        if self.metrics is not None:
            for o in outcomes:
                if o.status not in ("nothing-due", "dry-run"):
                    self.metrics.count_apply(o.service, o.status)
                if o.desired_units is not None:  # the last plan of the run wins
                    self.metrics.set_service(o.service, desired_units=o.desired_units, lift=o.lift)
        failed = sorted({o.service for o in outcomes if o.status in NOT_APPLIED})
        if failed:
            raise ForescaleError(f"not applied for {', '.join(failed)}")

    # scheduling
    def build_scheduler(self) -> Any:
        """A configured, not yet started ``BackgroundScheduler`` with the three jobs."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        cfg = self.config
        scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": int(cfg.misfire_grace.total_seconds()),
            },
        )
        start = utc_now() if cfg.run_at_start else None
        every = {"collect": cfg.collect_every, "refit": cfg.refit_every, "apply": cfg.apply_every}
        funcs = {"collect": self.collect, "refit": self.refit, "apply": self.apply}
        for job in JOBS:
            kwargs: dict[str, Any] = {}
            if job == "collect" and start is not None:
                kwargs["next_run_time"] = start  # collect now; it refits if needed
            scheduler.add_job(
                funcs[job],
                IntervalTrigger(seconds=every[job].total_seconds(), timezone=dt.UTC),
                id=job,
                name=job,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(cfg.misfire_grace.total_seconds()),
                **kwargs,
            )
        return scheduler

    def wait_for_leadership(
        self, stop_event: threading.Event, on_role: Callable[[str], None] | None = None
    ) -> bool:
        """Block as standby until the leader lock is ours (True) or ``stop_event`` is set.

        ``on_role`` hears ``"standby"`` when the lock is taken by another daemon and
        ``"leader"`` once it is ours (the API's ``/readyz`` reports it)."""
        tell = on_role or (lambda role: None)
        if self.lock.try_acquire():
            log.info("leader: holding the %s", self.lock.describe())
            tell("leader")
            return True
        tell("standby")
        log.info(
            "standby: another daemon holds the %s; retrying every %ss",
            self.lock.describe(),
            self.config.standby_poll.total_seconds(),
        )
        while not stop_event.wait(self.config.standby_poll.total_seconds()):
            if self.lock.try_acquire():
                log.info("leader: took over the %s", self.lock.describe())
                tell("leader")
                return True
        return False

    def open_store(self) -> Store:
        store = self.store_factory(self.settings.store_url)
        self.app = App(
            settings=self.settings,
            store=store,
            candidates=self.candidates,
            runner_factory=self.runner_factory,
        )
        self.watch.changed(self.settings)  # baseline mtimes
        return store

    @property
    def store(self) -> Store | None:
        return None if self.app is None else self.app.store

    def close(self) -> None:
        app, self.app = self.app, None
        try:
            if app is not None:
                app.store.close()
        finally:
            self.lock.release()

    def run_once(self) -> bool:
        """Collect, refit and apply once (``forescale daemon --once``); True if all succeeded.

        Refuses (ConfigError) while another daemon is the leader for this store.
        """
        if not self.lock.try_acquire():
            raise ConfigError(f"another forescale daemon holds the {self.lock.describe()}")
        try:
            self.open_store()
            results = [self.collect(auto_refit=False), self.refit(), self.apply()]
        finally:
            self.close()
        return all(results)

    def run(
        self, stop_event: threading.Event, *, on_role: Callable[[str], None] | None = None
    ) -> int:
        """Standby until leader, then run the schedule until ``stop_event`` is set; 0.

        ``on_role`` hears each change of role: ``standby``, ``leader``, ``stopping``."""
        if not self.wait_for_leadership(stop_event, on_role):
            if on_role is not None:
                on_role("stopping")
            log.info("stopped while standby")
            return 0
        scheduler = None
        try:
            self.open_store()
            log.info(
                "daemon started: %d service(s), store %s",
                len(self.settings.services),
                _redact(self.settings.store_url),
            )
            scheduler = self.build_scheduler()
            scheduler.start()
            while not stop_event.wait(1.0):
                pass
            if on_role is not None:
                on_role("stopping")
            log.info("stopping: waiting for a running job to finish")
        finally:
            if scheduler is not None and scheduler.running:
                scheduler.shutdown(wait=True)
            self.close()
        log.info("daemon stopped")
        return 0


# -- logging -------------------------------------------------------------------------------
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC ISO 8601), level, logger, msg, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(
            (key, value)
            for key, value in vars(record).items()
            # color_message: uvicorn's copy of msg with terminal colour codes
            if key not in _STANDARD and not key.startswith("_") and key != "color_message"
        )
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Log to stderr, as text or JSON lines (replaces the root logger's handlers).

    Every line goes through that one handler: uvicorn's loggers lose any handler of their
    own and propagate, Python warnings become records (``py.warnings``), and an exception
    that escapes a thread is logged (logger ``forescale.thread``) instead of printed."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        formatter = logging.Formatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
    # httpx logs every request URL at INFO, query string (credentials) included
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.captureWarnings(True)

    def log_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        logging.getLogger("forescale.thread").critical(
            "uncaught exception in thread %s (a bug)",
            args.thread.name if args.thread is not None else "?",
            exc_info=args.exc_value,
        )

    threading.excepthook = log_thread_exception
