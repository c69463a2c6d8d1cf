"""Composition: collect -> store -> forecast -> plan -> diff report.

The only module that wires the parts together. The forecaster is injected (a callable
with :func:`forecaster.model.fit_forecast`'s signature) so tests can use a cheap one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from collectors.base import MetricSource, build_source, describe_source
from collectors.series import coverage, infer_step, regularize
from config.settings import ServiceSettings, Settings
from forecaster.candidates import Fitted
from forecaster.events import parse_events
from forecaster.types import (
    CapacityPolicy,
    Event,
    EventEffect,
    Forecast,
    ForecastSettings,
    StepLimit,
)
from forescale.errors import DataError, ForescaleError, PlanError
from forescale.report.plan_view import HistorySummary, PlanReport, ServiceFailure, ServiceReport
from forescale.store import ChangeRecord, Store
from iac_writer.target import Edit, Snapshot, Target, target_for

RECENT_HISTORY = dt.timedelta(days=3)  # how much history the report's plot shows
COLLECT_OVERLAP = dt.timedelta(hours=1)  # re-read this much before the last sample (late data)


class Forecaster(Protocol):
    def __call__(
        self,
        history: pd.DataFrame,
        *,
        events: Sequence[Event],
        settings: ForecastSettings,
        now: dt.datetime,
        min_history: dt.timedelta = ...,
    ) -> Forecast: ...


class ProductForecaster:
    """The product's forecaster: the candidate models side by side, chosen per refit by
    their record (:mod:`forecaster.candidates`). Called like a plain forecaster it returns
    the primary with its own band; :func:`plan_service` recognises it and goes through
    the record instead."""

    def __call__(
        self,
        history: pd.DataFrame,
        *,
        events: Sequence[Event],
        settings: ForecastSettings,
        now: dt.datetime,
        min_history: dt.timedelta = dt.timedelta(hours=24),
    ) -> Forecast:
        from forecaster.candidates import choose, fit_candidates

        fitted = fit_candidates(
            history, events=events, settings=settings, now=now, min_history=min_history
        )
        forecast, _ = choose(fitted, pd.DataFrame(), target_under=0.03)
        return forecast


def default_forecaster() -> Forecaster:
    return ProductForecaster()


def forecast_settings(settings: Settings, service: ServiceSettings) -> ForecastSettings:
    """Map a service's config to the forecaster's pure settings record."""
    fc = service.forecast
    return ForecastSettings(
        horizon=fc.horizon,
        interval_width=fc.interval_width,
        country_holidays=fc.country_holidays,
        timezone=settings.forecast_timezone(service),
        daily_seasonality=fc.seasonalities.daily,
        weekly_seasonality=fc.seasonalities.weekly,
        weekend_daily_split=fc.seasonalities.weekend_daily_split,
        yearly_seasonality=fc.seasonalities.yearly,
        business_hours=fc.business_hours,
        resolution=fc.resolution,
        max_points=fc.max_points,
        max_history=fc.max_history,
        log_transform=fc.log_transform,
        uncertainty_samples=fc.uncertainty_samples,
    )


def capacity_policy(service: ServiceSettings) -> CapacityPolicy:
    """Map a service's config to the planner's policy record."""
    return CapacityPolicy(
        capacity_per_unit=service.capacity_per_unit,
        min_units=service.min_units,
        max_units=service.max_units,
        max_step_up=StepLimit(units=service.max_step_up.units, percent=service.max_step_up.percent),
        max_step_down=StepLimit(
            units=service.max_step_down.units, percent=service.max_step_down.percent
        ),
        step_period=service.step_period,
        lead_time=service.lead_time,
        observed_headroom=service.observed_headroom,
        scale_in=service.scale_in.policy,
        stabilization=service.scale_in.stabilization,
        scale_in_tolerance=service.scale_in.tolerance,
    )


@dataclass
class EventsCache:
    """Reads each events file once per run."""

    timezone: str
    loaded: dict[Path, tuple[Event, ...]] = field(default_factory=dict)

    def get(self, path: Path | None) -> tuple[Event, ...]:
        if path is None:
            return ()
        if path not in self.loaded:
            self.loaded[path] = read_events(path, self.timezone)
        return self.loaded[path]


def read_events(path: Path, timezone: str) -> tuple[Event, ...]:
    """Parse an events calendar file (naive times in ``timezone``)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot read events file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 (invalid byte at offset {exc.start}); save it as UTF-8"
        ) from None
    return parse_events(text, source=str(path), timezone=timezone)


SourceBuilder = Callable[[ServiceSettings], MetricSource]


def selected(settings: Settings, names: Sequence[str] | None) -> list[str]:
    if not names:
        return sorted(settings.services)
    for name in names:
        settings.service(name)  # raises a ConfigError naming the known services
    return list(names)


@dataclass(frozen=True, kw_only=True, slots=True)
class CollectResult:
    """One service's collect run: samples written, or the error that stopped it."""

    service: str
    written: int
    coverage: float | None  # share of grid slots with a sample over COVERAGE_WINDOW
    last_sample: dt.datetime | None
    error: str | None = None


COVERAGE_WINDOW = dt.timedelta(days=7)


def collect(
    settings: Settings,
    store: Store,
    *,
    services: Sequence[str] | None = None,
    since: dt.datetime | None = None,
    build: SourceBuilder | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    progress: Callable[[str], None] | None = None,
) -> list[CollectResult]:
    """Fetch new samples for each service into the store and record the run.

    Incremental: reads from shortly before the newest stored sample (or ``since``), so
    repeated runs are cheap and idempotent. A failing source is recorded as an error for
    that service and the others go on; stored history is never deleted or overwritten by
    an outage (nothing is written for a failed fetch).
    """
    results = []
    for name in selected(settings, services):
        service = settings.service(name)
        last = store.last_sample_time(name)
        start = since if since is not None else (last - COLLECT_OVERLAP if last else None)
        written, error = 0, None
        try:
            source = (build or (lambda s: build_source(s.source)))(service)
            try:
                series = source.fetch(start, None)
            finally:
                close = getattr(source, "close", None)
                if callable(close):
                    close()
            written = store.upsert_samples(name, series)
        except ForescaleError as exc:
            error = str(exc)
        coverage, newest = store_coverage(store, name)
        store.record_collect(
            name, at=clock(), written=written, coverage=coverage, last_sample=newest, error=error
        )
        results.append(
            CollectResult(
                service=name, written=written, coverage=coverage, last_sample=newest, error=error
            )
        )
        if progress is not None:
            progress(name)
    return results


def store_coverage(store: Store, name: str) -> tuple[float | None, dt.datetime | None]:
    """Coverage of the stored samples over the last COVERAGE_WINDOW before the newest."""
    newest = store.last_sample_time(name)
    if newest is None:
        return None, None
    recent = store.load_samples(name, newest - COVERAGE_WINDOW, newest)
    if len(recent) < 2:
        return None, newest
    return coverage(regularize(recent, infer_step(recent["ds"]))), newest


def _history(store: Store, name: str, start: dt.datetime, now: dt.datetime) -> pd.DataFrame:
    stored = store.load_samples(name, start, now)
    if len(stored) < 2:
        raise DataError(
            f"{name}: {len(stored)} stored sample(s) before {now:%Y-%m-%d %H:%M}Z; "
            "run `forescale collect` first or check the source"
        )
    return regularize(stored, infer_step(stored["ds"]))


def service_target(service: ServiceSettings) -> Target:
    """The managed number of ``service`` (in place or in forescale's auto var file)."""
    iac = service.iac
    return target_for(
        write=iac.write,
        var_file=iac.var_file_path,
        auto_tfvars_file=iac.auto_tfvars_path,
        address=iac.address,
    )


def current_units_of(service: ServiceSettings) -> int:
    """The capacity the IaC holds now (the IaC is the source of truth): forescale's own
    auto var file when it owns one and has written the variable, else the variable file."""
    return units_of(service_target(service).read())


def units_of(snapshot: Snapshot) -> int:
    """A snapshot's value as whole units (a PlanError for 2.5 or -1)."""
    value = float(snapshot.value)
    if not math.isfinite(value) or value < 0 or not value.is_integer():
        raise PlanError(
            f"{snapshot.path}: {snapshot.address} = {snapshot.literal} is not a whole number "
            "of units"
        )
    return int(value)


def planned_edit(service: ServiceSettings, units: int) -> Edit:
    """The file edit that sets ``units`` (nothing is written)."""
    return service_target(service).propose(units)


def stored_forecast(
    store: Store, name: str, *, now: dt.datetime, max_age: dt.timedelta
) -> tuple[int, Forecast] | None:
    """The newest stored forecast made within ``max_age`` before ``now`` (rows from the
    slot containing ``now`` on), or None: so frequent apply runs need not refit."""
    latest = store.latest_forecast(name)
    if latest is None:
        return None
    info, frame = latest
    as_of = dt.datetime.fromtimestamp(info["as_of"], dt.UTC)
    if not (now - max_age <= as_of <= now):
        return None
    meta = info["meta"]
    step = dt.timedelta(seconds=int(info["resolution_s"]))
    frame = frame[frame["ds"] + pd.Timedelta(step) > pd.Timestamp(now)].reset_index(drop=True)
    if len(frame) < 2:
        return None
    components = tuple(c for c in meta.get("components", []) if c in frame.columns)
    effects = tuple(
        EventEffect(
            name=e["name"],
            start=dt.datetime.fromisoformat(e["start"]),
            end=dt.datetime.fromisoformat(e["end"]),
            effect=float(e["effect"]),
            source=e["source"],
            occurrences_in_history=int(e.get("occurrences_in_history", 0)),
        )
        for e in meta.get("event_effects", [])
        if "start" in e
    )
    return int(info["id"]), Forecast(
        frame=frame,
        components=components,
        resolution=step,
        interval_width=float(meta.get("interval_width", 0.9)),
        fitted_at=as_of,
        history_end=dt.datetime.fromtimestamp(info["history_end"], dt.UTC),
        model=str(info["model"]),
        event_effects=effects,
        notes=(*meta.get("notes", []), f"forecast run #{info['id']} reused (made {as_of:%H:%M}Z)"),
    )


def _fit_by_record(
    settings: Settings,
    store: Store,
    service: ServiceSettings,
    name: str,
    history: pd.DataFrame,
    fsettings: ForecastSettings,
    events: EventsCache,
    now: dt.datetime,
    prefitted: Fitted | None = None,
) -> tuple[Forecast, dict[str, Any]]:
    """Fit the candidates, judge them by their live record, return the forecast that plans
    capacity and what to store with it (the choice, its evidence, the candidates)."""
    from forecaster.accuracy import Floor
    from forecaster.candidates import choose, compact, fit_candidates, live_record
    from forescale.live import live_accuracy

    fc = service.forecast
    fitted = prefitted or fit_candidates(
        history,
        events=events.get(settings.events_path(service)),
        settings=fsettings,
        now=now,
        min_history=settings.min_history,
        models=fc.models,
    )
    live = live_accuracy(store, service, name, now=now)
    runs = store.candidate_runs(name, now - fc.record_window - fsettings.horizon)
    record = live_record(runs, history, now=now, window=fc.record_window)
    forecast, choice = choose(
        fitted,
        record,
        target_under=fc.target_under,
        max_factor=fc.max_band_factor,
        floor=Floor(headroom=service.observed_headroom),
    )
    if live is not None and live.refit_due:
        forecast = forecast.noted(
            f"refitted early: the previous forecast (run #{live.run_id}) missed - "
            f"{live.reason}; the new headroom comes from the record that holds those misses",
        )
    meta: dict[str, Any] = {
        "live": None
        if live is None
        else {
            "run_id": live.run_id,
            "steps": live.steps,
            "error_ratio": live.error_ratio if math.isfinite(live.error_ratio) else None,
            "under_share": live.under_share if math.isfinite(live.under_share) else None,
            "refit_due": live.refit_due,
            "reason": live.reason,
        },
        "choice": choice_json(choice),
        "candidates": compact(fitted),
        "candidate_errors": fitted.errors,
    }
    return forecast, meta


def _stored_choice(store: Store, run_id: int | None) -> dict[str, Any] | None:
    """The model choice stored with the reused forecast run (None: not recorded)."""
    latest = store.forecast_meta(run_id) if run_id is not None else None
    choice = latest.get("choice") if latest else None
    return choice if isinstance(choice, dict) else None


@dataclass(frozen=True, slots=True)
class FitJob:
    """One service's refit, ready for a worker process (history loaded, settings pure)."""

    name: str
    history: pd.DataFrame
    events: tuple[Event, ...]
    settings: ForecastSettings
    now: dt.datetime
    min_history: dt.timedelta
    models: tuple[str, ...]


def run_fit_job(job: FitJob) -> Fitted:
    """Fit one service's candidates (top level: worker processes run it)."""
    from forecaster.candidates import fit_candidates

    return fit_candidates(
        job.history,
        events=job.events,
        settings=job.settings,
        now=job.now,
        min_history=job.min_history,
        models=job.models,
    )


def fit_job_for(
    settings: Settings, store: Store, name: str, *, now: dt.datetime, events: EventsCache
) -> FitJob:
    service = settings.service(name)
    fsettings = forecast_settings(settings, service)
    window_start = now - fsettings.max_history - dt.timedelta(days=1)
    return FitJob(
        name=name,
        history=_history(store, name, window_start, now),
        events=events.get(settings.events_path(service)),
        settings=fsettings,
        now=now,
        min_history=settings.min_history,
        models=tuple(service.forecast.models),
    )


def choice_json(choice: Any) -> dict[str, Any]:
    """A :class:`forecaster.accuracy.Choice` as JSON (NaN/inf -> None)."""

    def num(v: float) -> float | None:
        return round(v, 6) if math.isfinite(v) else None

    return {
        "model": choice.model,
        "basis": choice.basis,
        "factor": num(choice.factor),
        "reason": choice.reason,
        "evidence": [
            {
                "model": e.model,
                "steps": e.steps,
                "smape": num(e.smape),
                "under_share": num(e.under_share),
                "basis": e.basis,
                "factor": num(e.factor),
                "under_share_widened": num(e.under_share_widened),
                "provisioned_ratio": num(e.provisioned_ratio),
            }
            for e in choice.evidence
        ],
    }


def plan_service(
    settings: Settings,
    store: Store,
    name: str,
    *,
    now: dt.datetime,
    events: EventsCache,
    forecaster: Forecaster,
    record_plan: bool = True,
    reuse_forecast_for: dt.timedelta | None = None,
    prefitted: Fitted | None = None,
) -> ServiceReport:
    """Forecast and plan one service; compute (never write) the next change's diff.

    ``prefitted``: the candidates already fitted on this service's history as of ``now``
    (by a worker process, see :func:`fit_jobs`)."""
    from forecaster.capacity import plan_capacity, planner_frame

    service = settings.service(name)
    fsettings = forecast_settings(settings, service)
    window_start = now - fsettings.max_history - dt.timedelta(days=1)
    history = _history(store, name, window_start, now)
    observed = history.dropna(subset=["y"])
    reused = (
        stored_forecast(store, name, now=now, max_age=reuse_forecast_for)
        if reuse_forecast_for is not None
        else None
    )
    extra_meta: dict[str, Any] = {}
    if reused is not None:
        run_id_reused, forecast = reused
    elif isinstance(forecaster, ProductForecaster):
        run_id_reused = None
        forecast, extra_meta = _fit_by_record(
            settings, store, service, name, history, fsettings, events, now, prefitted
        )
    else:
        run_id_reused = None
        forecast = forecaster(
            history,
            events=events.get(settings.events_path(service)),
            settings=fsettings,
            now=now,
            min_history=settings.min_history,
        )
    last_seen = pd.Timestamp(observed["ds"].iloc[-1]).to_pydatetime()
    data_fresh = now - last_seen <= settings.stale_after
    observed_demand = float(observed["y"].iloc[-1]) if data_fresh else None
    policy = capacity_policy(service)
    current = current_units_of(service)
    plan = plan_capacity(
        planner_frame(forecast, observed, policy.stabilization + policy.lead_time),
        policy=policy,
        current_units=current,
        now=now,
        observed_demand=observed_demand,
        data_fresh=data_fresh,
        timezone=settings.display_timezone,  # reasons read in the report's clock
    )
    next_step = plan.steps[0] if plan.steps else None
    change = planned_edit(service, next_step.units) if next_step is not None else None
    run_id = (
        run_id_reused
        if run_id_reused is not None
        else store.save_forecast(
            name,
            forecast.frame,
            components=forecast.components,
            created_at=now,
            as_of=now,
            history_end=forecast.history_end,
            model=forecast.model,
            resolution=forecast.resolution,
            meta={
                "components": list(forecast.components),
                "notes": list(forecast.notes),
                "interval_width": forecast.interval_width,
                "event_effects": [
                    {
                        "name": e.name,
                        "start": e.start.isoformat(),
                        "end": e.end.isoformat(),
                        "effect": e.effect,
                        "source": e.source,
                        "occurrences_in_history": e.occurrences_in_history,
                    }
                    for e in forecast.event_effects
                ],
                **extra_meta,
            },
        )
    )
    if record_plan and next_step is not None and change is not None:
        store.record_change(
            ChangeRecord(
                service=name,
                forecast_run_id=run_id,
                due_at=next_step.at,
                var_file=str(service_target(service).path),
                address=service.iac.address,
                from_units=next_step.from_units,
                to_units=next_step.units,
                direction=next_step.direction,
                reason=next_step.reason,
                mode=settings.mode,
                status="planned",
                diff=change.diff,
            ),
            created_at=now,
        )
    recent = history[history["ds"] >= pd.Timestamp(now - RECENT_HISTORY)]
    return ServiceReport(
        name=name,
        source=describe_source(service.source),
        history=HistorySummary(
            start=pd.Timestamp(observed["ds"].iloc[0]).to_pydatetime(),
            end=last_seen,
            points=len(observed),
            coverage=coverage(history),
            step=infer_step(history["ds"]),
        ),
        recent_history=recent.reset_index(drop=True),
        forecast=forecast,
        plan=plan,
        policy=policy,
        observed_demand=observed_demand,
        data_fresh=data_fresh,
        var_file=str(service_target(service).path),
        address=service.iac.address,
        next_step=next_step,
        change=change,
        forecast_run_id=run_id,
        model_choice=extra_meta.get("choice") if extra_meta else _stored_choice(store, run_id),
    )


def plan(
    settings: Settings,
    store: Store,
    *,
    now: dt.datetime,
    services: Sequence[str] | None = None,
    forecaster: Forecaster | None = None,
) -> PlanReport:
    """Plan every selected service as of ``now``. A service that cannot be planned is
    reported as a failure; the others still are."""
    if now.tzinfo is None:
        raise PlanError("'now' must be timezone-aware")
    now = now.astimezone(dt.UTC)
    fit = forecaster or default_forecaster()
    events = EventsCache(timezone=settings.display_timezone)
    reports, failures = [], []
    for name in selected(settings, services):
        try:
            reports.append(
                plan_service(settings, store, name, now=now, events=events, forecaster=fit)
            )
        except ForescaleError as exc:
            failures.append(ServiceFailure(name=name, error=str(exc)))
    return PlanReport(
        as_of=now,
        mode=settings.mode,
        display_timezone=settings.display_timezone,
        services=tuple(reports),
        failures=tuple(failures),
    )
