"""Prometheus metrics of the forescale service, on an injected registry.

Every metric lives on the :class:`~prometheus_client.CollectorRegistry` given to
:class:`Metrics` (never the process-global one), so tests and several apps in one process
each use their own. Units: demand in the service's unit (e.g. requests/s), capacity in
units (replicas/instances), times in seconds, timestamps in Unix seconds (UTC).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from forescale.errors import ForescaleError

if TYPE_CHECKING:
    from forescale.config.settings import ServiceSettings, Settings
    from forescale.store import Store

MODES = ("dry-run", "plan", "apply", "commit", "shadow")  # label values of forescale_service_mode
# label values of forescale_forecast_demand's ``bound`` (not ``quantile``: Prometheus
# reserves that label for summaries, and ``promtool check metrics`` refuses it on a gauge)
BOUNDS = ("yhat", "lower", "upper")
_JOB_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)  # seconds


class Metrics:
    """forescale's metrics; the daemon calls the small setters, the API exposes them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._units_cache: dict[tuple[object, ...], int] = {}
        self.registry = registry
        self.forecast_demand = Gauge(
            "forescale_forecast_demand",
            "Forecast demand for the current step (service unit, e.g. requests/s).",
            ["service", "bound"],
            registry=registry,
        )
        self.desired_units = Gauge(
            "forescale_desired_units",
            "Units the capacity plan wants in force now.",
            ["service"],
            registry=registry,
        )
        self.current_units = Gauge(
            "forescale_current_units",
            "Units the IaC variable holds now.",
            ["service"],
            registry=registry,
        )
        self.forecast_lift = Gauge(
            "forescale_forecast_lift",
            "How the last plan lifted the forecast ahead while demand ran above it "
            "(1: not lifted; 1.2: by 20 %).",
            ["service"],
            registry=registry,
        )
        self.forecast_error_ratio = Gauge(
            "forescale_forecast_error_ratio",
            "Relative forecast error (e.g. backtest MAPE or |observed - yhat| / observed).",
            ["service"],
            registry=registry,
        )
        self.service_mode = Gauge(
            "forescale_service_mode",
            "1 for the mode each service acts in now (shadow mode's promotion included), "
            "0 for the others.",
            ["service", "mode"],
            registry=registry,
        )
        self.early_refits = Counter(
            "forescale_early_refits_total",
            "Refits started before their schedule because the live forecast missed",
            ["service"],
            registry=registry,
        )
        self.job_last_success = Gauge(
            "forescale_job_last_success_timestamp_seconds",
            "Unix time (UTC) a job last finished successfully.",
            ["job"],
            registry=registry,
        )
        self.job_duration = Histogram(
            "forescale_job_duration_seconds",
            "Duration of a job run, successful or not (seconds).",
            ["job"],
            buckets=_JOB_BUCKETS,
            registry=registry,
        )
        self.apply_total = Counter(
            "forescale_apply",
            "Apply/commit runs by outcome (applied, refused, failed, committed, ...).",
            ["service", "result"],
            registry=registry,
        )
        self.collector_errors = Counter(
            "forescale_collector_errors",
            "Failed fetches from a metric source.",
            ["source"],
            registry=registry,
        )
        self.data_age = Gauge(
            "forescale_data_age_seconds",
            "Seconds since the newest stored sample of the service.",
            ["service"],
            registry=registry,
        )

    # -- setters used by the daemon -----------------------------------------------------
    def observe_job(
        self, job: str, seconds: float, ok: bool, *, finished_at: dt.datetime | None = None
    ) -> None:
        """Record one job run of ``seconds``; on success also its finish time (default now)."""
        self.job_duration.labels(job=job).observe(max(0.0, seconds))
        if ok:
            when = finished_at or dt.datetime.now(dt.UTC)
            self.job_last_success.labels(job=job).set(when.timestamp())

    def set_service(
        self,
        service: str,
        *,
        desired_units: int | None = None,
        current_units: int | None = None,
        forecast_error_ratio: float | None = None,
        lift: float | None = None,
    ) -> None:
        """Set whichever of the per-service gauges are given (None: leave unchanged)."""
        if desired_units is not None:
            self.desired_units.labels(service=service).set(desired_units)
        if lift is not None and math.isfinite(lift):
            self.forecast_lift.labels(service=service).set(lift)
        if current_units is not None:
            self.current_units.labels(service=service).set(current_units)
        if forecast_error_ratio is not None and math.isfinite(forecast_error_ratio):
            self.forecast_error_ratio.labels(service=service).set(forecast_error_ratio)

    def set_forecast_demand(self, service: str, *, yhat: float, lower: float, upper: float) -> None:
        for bound, value in zip(BOUNDS, (yhat, lower, upper), strict=True):
            self.forecast_demand.labels(service=service, bound=bound).set(value)

    def set_mode(self, service: str, mode: str) -> None:
        """``forescale_service_mode{service, mode}``: 1 for ``mode``, 0 for the others."""
        for each in MODES:
            self.service_mode.labels(service=service, mode=each).set(1 if each == mode else 0)

    def count_apply(self, service: str, result: str) -> None:
        self.apply_total.labels(service=service, result=result).inc()

    def count_early_refit(self, service: str) -> None:
        self.early_refits.labels(service=service).inc()

    def count_collector_error(self, source: str) -> None:
        self.collector_errors.labels(source=source).inc()

    # -- from the store -----------------------------------------------------------------
    def refresh_from_store(self, settings: Settings, store: Store, now: dt.datetime) -> None:
        """Set data age, current units and the forecast demand at ``now`` for each service.

        Best effort per service and per value: a value that cannot be read (no samples,
        unreadable IaC file, store error, no forecast covering ``now``) is left as it was.
        """
        for name, service in settings.services.items():
            try:
                newest = store.last_sample_time(name)
                if newest is not None:
                    self.data_age.labels(service=name).set((now - newest).total_seconds())
            except ForescaleError:
                pass
            with contextlib.suppress(ForescaleError):
                self.set_mode(name, _effective_mode(settings, store, name))
            # Read first: ``labels()`` would create a 0-valued series for a failed read.
            with contextlib.suppress(ForescaleError, OSError):
                units = self._units_of(service)
                self.current_units.labels(service=name).set(units)
            try:
                row = store.latest_forecast_point(name, now)
            except ForescaleError:
                continue
            if row is not None:
                self.set_forecast_demand(
                    name, yhat=row.yhat, lower=row.yhat_lower, upper=row.yhat_upper
                )

    def _units_of(self, service: ServiceSettings) -> int:
        """The IaC's current units, re-read only when its files changed (size or mtime):
        a hundred services sharing one variable file parse it once, not a hundred times."""
        from forescale.usecases.context import service_target  # imports heavy parts
        from forescale.usecases.plan import units_of

        target = service_target(service)
        stamps = []
        for path in target.sources:
            try:
                st = path.stat()
                stamps.append((str(path), st.st_ino, st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                stamps.append((str(path), -1, -1, -1))
        key = (tuple(stamps), target.address)
        cached = self._units_cache.get(key)
        if cached is None:
            cached = units_of(target.read())
            if len(self._units_cache) > 10_000:
                self._units_cache.clear()
            self._units_cache[key] = cached
        return cached


def _effective_mode(settings: Settings, store: Store, name: str) -> str:
    from forescale.usecases.context import effective_mode  # imports heavy parts

    return effective_mode(settings, store, name)
