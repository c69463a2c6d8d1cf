"""Backtest: the rolling-origin backtest of a CSV file or of a configured service's history.

The engine is :mod:`forescale.forecaster.backtest` (pure: frames in, a result out); this use case
gives it its inputs and fits its folds. For ``forescale backtest``, :func:`backtest`:

1. :func:`prepare` — from the command's :class:`BacktestArgs`: the demand (a CSV file read
   with the collectors' rules, or the service's stored samples on their own grid), the
   forecast settings, the capacity policy, the events and the cutoffs (:class:`Prepared`);
2. :func:`fit_folds` — each fold's candidates (the injected
   :class:`~forescale.forecaster.candidates.CandidateSet`:
   :data:`~forescale.forecaster.candidates.PRODUCT` in the product, cheap stand-ins in
   tests) fitted on the demand before its cutoff, in
   parallel through :mod:`forescale.executor` (the record's seed folds too);
3. :func:`forescale.forecaster.backtest.run_backtest` — the folds replayed in order with those fits.

:func:`report` then writes the schedule CSV when asked and renders the report
(:mod:`forescale.report`). :func:`backtest_series` runs steps 2-3 on a series and config
built by hand (the benchmarks).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import zoneinfo
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from forescale.collectors.series import infer_step, regularize
from forescale.config.durations import format_duration
from forescale.errors import ConfigError, DataError, ForecastError
from forescale.executor import ExecutorSettings, FitExecutor
from forescale.forecaster.accuracy import TARGET_UNDER
from forescale.forecaster.backtest import (
    BacktestConfig,
    BacktestResult,
    rolling_cutoffs,
    run_backtest,
)
from forescale.forecaster.candidates import DEFAULT_MODELS, PRODUCT, CandidateSet, Fitted
from forescale.forecaster.capacity import UNIT_TOLERANCE
from forescale.forecaster.ceiling import PEAK_ALLOWANCE
from forescale.forecaster.cost import Price
from forescale.forecaster.lift import MAX_LIFT
from forescale.forecaster.types import CapacityPolicy, Event, Forecast, ForecastSettings

if TYPE_CHECKING:
    from forescale.config.settings import Settings, UnitPrice
    from forescale.report.render import BacktestFormat

__all__ = [
    "Backtest",
    "BacktestArgs",
    "FoldFitter",
    "FoldJob",
    "FoldProgress",
    "Prepared",
    "all_cutoffs",
    "backtest",
    "backtest_series",
    "execute",
    "fit_fold",
    "fit_folds",
    "fitted_candidates",
    "prepare",
    "report",
]

log = logging.getLogger("forescale.backtest")

Warn = Callable[[str], None]
"""Told a warning about the input that does not stop the backtest (one line, no prefix)."""

FoldProgress = Callable[[int], AbstractContextManager[Callable[[int], None]]]
"""Given the number of folds to fit, a context (open while they are fitted) in which each
call says that many more folds were fitted."""


@dataclass(frozen=True, kw_only=True, slots=True)
class BacktestArgs:
    """What to backtest: either ``csv_path`` (with the CSV-only settings below) or
    ``service`` of the settings file ``config``; durations as timedeltas, units as counts,
    demand in the series' own unit."""

    config: Path | None
    service: str | None
    csv_path: Path | None
    timestamp_column: str = "timestamp"
    value_column: str = "value"
    timezone: str = "UTC"  # IANA: naive CSV times, daily shapes, holidays
    events_path: Path | None = None
    holidays: str | None = None  # country code, e.g. "US"
    horizon: dt.timedelta = dt.timedelta(hours=24)
    folds: int = 14
    spacing: dt.timedelta = dt.timedelta(days=1)
    capacity_per_unit: float | None = None  # None: peak demand / 20 (hindsight)
    lead_time: dt.timedelta = dt.timedelta(minutes=15)
    stabilization: dt.timedelta = dt.timedelta(minutes=15)
    observed_headroom: float = 0.3
    max_lift: float = MAX_LIFT  # CapacityPolicy.max_lift (1.0: never lift)
    unit_tolerance: float = UNIT_TOLERANCE  # CapacityPolicy.unit_tolerance
    min_units: int = 1
    max_units: int = 100_000
    interval_width: float = 0.9
    target_under: float = TARGET_UNDER
    sim_step: dt.timedelta = dt.timedelta(minutes=5)
    workers: int | None = None  # fitting processes (None: the CPUs)
    peak_allowance: float = PEAK_ALLOWANCE  # the credible ceiling: fitted peak x this
    max_value: float | None = None  # the most the demand can be (100 for a percentage)
    unit_price: float | None = None  # per unit-hour: cost columns (--service: its unit_price)
    currency: str = "USD"


@dataclass(frozen=True, kw_only=True, slots=True)
class FoldFitter:
    """How every fold's candidates are fitted (picklable when the candidate set's fitters
    are module-level functions: sent to the worker processes)."""

    settings: ForecastSettings
    events: tuple[Event, ...] = ()
    min_history: dt.timedelta = dt.timedelta(hours=24)
    models: tuple[str, ...] = DEFAULT_MODELS
    candidates: CandidateSet = PRODUCT


@dataclass(frozen=True, kw_only=True, slots=True)
class Prepared:
    """A backtest ready to run, and what its report says about where it came from."""

    name: str  # the CSV file's stem or the service
    source: str  # where the demand came from, e.g. "csv demand.csv (value)"
    series: pd.DataFrame  # ds (UTC, regular grid), y
    fitter: FoldFitter
    config: BacktestConfig
    echo: Mapping[str, object]  # the settings the report echoes (seconds, counts, shares)
    price: Price | None = None  # cost columns when known


@dataclass(frozen=True, kw_only=True, slots=True)
class Backtest:
    """A finished backtest and what its report needs besides the result."""

    result: BacktestResult
    name: str
    source: str
    echo: Mapping[str, object]
    timezone: str  # IANA: the report shows times in it
    price: Price | None = None  # cost columns when known


@dataclass(frozen=True, slots=True)
class FoldJob:
    """One fold's fit: the demand before ``cutoff`` (UTC)."""

    fitter: FoldFitter
    history: pd.DataFrame
    cutoff: dt.datetime


# ------------------------------------------------------------------------- the command


def _log_warning(note: str) -> None:
    log.warning("%s", note)


def backtest(
    args: BacktestArgs,
    *,
    candidates: CandidateSet = PRODUCT,
    warn: Warn = _log_warning,
    progress: FoldProgress | None = None,
) -> Backtest:
    """Prepare, fit every fold with ``candidates`` and replay them (``forescale backtest``)."""
    prepared = prepare(args, candidates=candidates, warn=warn)
    result = execute(prepared, workers=args.workers, progress=progress)
    return Backtest(
        result=result,
        name=prepared.name,
        source=prepared.source,
        echo=prepared.echo,
        timezone=prepared.fitter.settings.timezone,
        price=prepared.price,
    )


def report(done: Backtest, fmt: BacktestFormat, *, schedule_out: Path | None = None) -> str:
    """The report as a ``fmt`` document; first the schedule CSV to ``schedule_out``
    (one row per simulated step of every fold) when given."""
    from forescale.report.backtest_csv import write_schedule_csv
    from forescale.report.render import render_backtest

    if schedule_out is not None:
        write_schedule_csv(done.result, schedule_out)
    return render_backtest(
        done.result,
        fmt,
        service=done.name,
        source=done.source,
        settings=done.echo,
        timezone=done.timezone,
        price=done.price,
    )


def execute(
    prepared: Prepared, *, workers: int | None, progress: FoldProgress | None = None
) -> BacktestResult:
    """Fit the folds in ``workers`` processes (default: the CPUs; in this process for one
    worker or one fold), then replay them."""
    total = len(all_cutoffs(prepared.config))
    kind: Literal["serial", "process"] = "process" if (workers or 2) > 1 and total > 1 else "serial"
    settings = ExecutorSettings(kind=kind, workers=workers, preload=("prophet",))
    with contextlib.ExitStack() as stack:
        advance = None if progress is None else stack.enter_context(progress(total))
        pool = stack.enter_context(FitExecutor(settings))
        return backtest_series(
            prepared.series, prepared.config, prepared.fitter, executor=pool, progress=advance
        )


# ------------------------------------------------------------------------------- folds


def backtest_series(
    series: pd.DataFrame,
    config: BacktestConfig,
    fitter: FoldFitter,
    *,
    executor: FitExecutor | None = None,
    progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    """Fit all folds (in ``executor`` when given, else here, one after the other), then
    replay them in order through :func:`forescale.forecaster.backtest.run_backtest`."""
    fits = fit_folds(series, config, fitter, executor=executor, progress=progress)
    return run_backtest(series, config, fitted_candidates(fits))


def all_cutoffs(config: BacktestConfig) -> list[dt.datetime]:
    """Every cutoff a fit is made at: the folds' and the record's seed folds before them."""
    first = min(config.cutoffs)
    seeds = [first - config.horizon * (k + 1) for k in range(config.record_folds)]
    return sorted({*seeds, *config.cutoffs})


def fit_folds(
    series: pd.DataFrame,
    config: BacktestConfig,
    fitter: FoldFitter,
    *,
    executor: FitExecutor | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[dt.datetime, Fitted]:
    """Each cutoff's candidates, fitted on the demand before it; ``progress(1)`` after each.
    A fold whose worker failed has no forecasts and the failure as its error."""
    jobs = [
        FoldJob(fitter, series[series["ds"] < pd.Timestamp(c)].reset_index(drop=True), c)
        for c in all_cutoffs(config)
    ]
    fits: dict[dt.datetime, Fitted] = {}
    for job, fitted in _fit_jobs(jobs, executor):
        fits[job.cutoff] = fitted
        if progress is not None:
            progress(1)
    return fits


def fit_fold(job: FoldJob) -> Fitted:
    """Fit the fitter's candidates on ``job.history`` as of ``job.cutoff`` (top level: the
    worker processes run it). A model that fails is left out with its error."""
    fitter = job.fitter
    return fitter.candidates.fit(
        job.history,
        events=fitter.events,
        settings=fitter.settings,
        now=job.cutoff,
        min_history=fitter.min_history,
        models=fitter.models,
    )


def _fit_jobs(
    jobs: Sequence[FoldJob], executor: FitExecutor | None
) -> Iterator[tuple[FoldJob, Fitted]]:
    """(job, its fits) as each is done: here in order, or in the executor as they finish."""
    if executor is None:
        for job in jobs:
            yield job, fit_fold(job)
        return
    for outcome in executor.map_unordered(fit_fold, jobs):
        fitted = outcome.value
        if outcome.error is not None or fitted is None:
            fitted = Fitted(forecasts={}, errors={"*": f"{outcome.error}"})
        yield jobs[outcome.index], fitted


def fitted_candidates(
    fits: Mapping[dt.datetime, Fitted],
) -> Callable[[pd.DataFrame, dt.datetime], dict[str, Forecast]]:
    """The engine's candidates: each fold's forecasts, fitted beforehand."""

    def candidates(history: pd.DataFrame, cutoff: dt.datetime) -> dict[str, Forecast]:
        got = fits.get(cutoff)
        if got is None:
            raise ForecastError(f"no fit for the fold at {cutoff.isoformat()}")
        if not got.forecasts:
            raise ForecastError("; ".join(f"{m}: {e}" for m, e in got.errors.items()))
        return got.forecasts

    return candidates


# ---------------------------------------------------------------------------- prepare


def prepare(
    args: BacktestArgs, *, candidates: CandidateSet = PRODUCT, warn: Warn = _log_warning
) -> Prepared:
    """Resolve the demand, the fold fitter and the backtest settings from ``args``."""
    if args.csv_path is not None and args.service is None:
        return _prepare_csv(args, args.csv_path, candidates, warn)
    if args.service is not None and args.csv_path is None:
        return _prepare_service(args, args.service, candidates, warn)
    raise ConfigError("give either --csv FILE or --service NAME (with --config)")


def _prepare_csv(args: BacktestArgs, path: Path, candidates: CandidateSet, warn: Warn) -> Prepared:
    """A CSV file: read as ``collect`` reads it (naive times in ``args.timezone``; rows
    that are gaps or averaged said once through ``warn``); the policy from the options."""
    from forescale.usecases.context import read_events

    _check_timezone(args.timezone)
    series, source = _read_csv(args, path, warn)
    series = _at_least_a_minute(series, warn)
    settings = ForecastSettings(
        horizon=args.horizon,
        interval_width=args.interval_width,
        country_holidays=args.holidays,
        timezone=args.timezone,
    )
    policy = _csv_policy(args)
    events = read_events(args.events_path, args.timezone) if args.events_path else ()
    return Prepared(
        name=path.stem,
        source=source,
        series=series,
        fitter=FoldFitter(settings=settings, events=events, candidates=candidates),
        config=_config(args, series, policy, args.timezone, warn),
        echo=_echo(args, settings, policy),
        price=_price(args, None),
    )


def _check_timezone(name: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"--timezone {name!r}: not an IANA time zone (e.g. America/New_York)"
        ) from None


def _read_csv(args: BacktestArgs, path: Path, warn: Warn) -> tuple[pd.DataFrame, str]:
    """The CSV's demand on its grid and the source's description."""
    from forescale.collectors.csv_file import CsvFileSource

    source = CsvFileSource(
        path=path,
        timestamp_column=args.timestamp_column,
        value_column=args.value_column,
        timezone=args.timezone,
    )
    fetched = source.fetch_accounted(None, None)
    note = fetched.account.summary() if fetched.account is not None else None
    if note is not None:  # rows that are gaps or averaged: said once
        warn(note)
    return fetched.series, source.describe()


FINEST_STEP = dt.timedelta(minutes=1)
"""Samples finer than this are averaged to it for a backtest: capacity is simulated at
minutes (5 by default), and a day of 1-second steps made a 2-week backtest run for hours."""


def _at_least_a_minute(series: pd.DataFrame, warn: Warn) -> pd.DataFrame:
    """``series`` averaged to :data:`FINEST_STEP` when its step is finer, said once."""
    if len(series) < 2:
        return series
    step = infer_step(series["ds"])
    if step >= FINEST_STEP:
        return series
    slots = pd.DatetimeIndex(series["ds"]).floor(f"{int(FINEST_STEP.total_seconds())}s")
    averaged = series.groupby(slots)["y"].mean().rename_axis("ds").reset_index()
    warn(
        f"the {format_duration(step)} samples are averaged to {format_duration(FINEST_STEP)} "
        f"for the backtest ({len(series):,} rows into {len(averaged):,})"
    )
    return regularize(averaged, FINEST_STEP)


def _csv_policy(args: BacktestArgs) -> CapacityPolicy:
    policy = CapacityPolicy(
        capacity_per_unit=args.capacity_per_unit or 0.0,
        min_units=args.min_units,
        max_units=args.max_units,
        lead_time=args.lead_time,
        stabilization=args.stabilization,
        observed_headroom=args.observed_headroom,
        unit_tolerance=args.unit_tolerance,
        max_lift=args.max_lift,
    )
    if args.capacity_per_unit is not None and not args.capacity_per_unit > 0:
        raise ConfigError("--capacity-per-unit must be > 0")
    if args.min_units > args.max_units:
        raise ConfigError("--min-units is above --max-units")
    return policy


def _price(args: BacktestArgs, configured: UnitPrice | None) -> Price | None:
    """``--unit-price``, else the service's ``unit_price`` (a ``pricing:`` lookup is the
    plan's: the backtest asks no network), else None (no cost columns)."""
    if args.unit_price is not None:
        return Price(per_unit_hour=args.unit_price, currency=args.currency, source="--unit-price")
    if configured is not None:
        return Price(
            per_unit_hour=configured.per_hour, currency=configured.currency, source="unit_price"
        )
    return None


def _prepare_service(
    args: BacktestArgs, name: str, candidates: CandidateSet, warn: Warn
) -> Prepared:
    """A configured service: its whole stored history, its forecast settings (with the
    backtest's horizon), policy and events, as the daemon reads them."""
    from forescale.collectors.base import describe_source
    from forescale.config.settings import load_settings
    from forescale.usecases.context import EventsCache, capacity_policy, forecast_settings

    settings = load_settings(args.config)
    service = settings.service(name)
    args = replace(
        args,
        peak_allowance=service.forecast.peak_allowance,
        max_value=service.source.demand_max(),
    )
    series = _stored_history(settings, name)
    fsettings = replace(forecast_settings(settings, service), horizon=args.horizon)
    policy = capacity_policy(service)
    # as the daemon reads it: naive times in the display timezone
    events = EventsCache(timezone=settings.display_timezone).get(settings.events_path(service))
    fitter = FoldFitter(
        settings=fsettings, events=events, min_history=settings.min_history, candidates=candidates
    )
    return Prepared(
        name=name,
        source=describe_source(service.source),
        series=series,
        fitter=fitter,
        config=_config(args, series, policy, fsettings.timezone, warn),
        echo=_echo(args, fsettings, policy),
        price=_price(args, service.unit_price),
    )


def _stored_history(settings: Settings, name: str) -> pd.DataFrame:
    """Every stored sample of ``name`` on its own grid."""
    from forescale.store import Store

    store = Store.open(settings.store_url)
    try:
        series = store.load_samples(name)
    finally:
        store.close()
    if len(series) >= 2:
        series = regularize(series)
    if series.empty:
        raise DataError(f"service {name!r} has no stored history; run `forescale collect` first")
    return series


def _config(
    args: BacktestArgs, series: pd.DataFrame, policy: CapacityPolicy, timezone: str, warn: Warn
) -> BacktestConfig:
    """The engine's settings: ``args.folds`` cutoffs (local midnights for whole-day
    spacings) and a sim step that divides the series' step. Fewer folds than asked (the
    history is too short for them) are said through ``warn``."""
    if args.lead_time >= args.horizon:
        raise ConfigError(
            f"--lead-time {format_duration(args.lead_time)} must be shorter than --horizon "
            f"{format_duration(args.horizon)}: a raise serves demand a lead time later"
        )
    if args.spacing <= dt.timedelta(0):
        raise ConfigError("--spacing must be longer than 0 (the time between cutoffs)")
    native = infer_step(series["ds"])
    min_history = dt.timedelta(days=7) + args.horizon * 3
    sim_step = min(args.sim_step, native)
    if native % sim_step != dt.timedelta(0):
        sim_step = native
    cutoffs = rolling_cutoffs(
        pd.DatetimeIndex(series["ds"]),
        horizon=args.horizon,
        count=args.folds,
        spacing=args.spacing,
        min_history=min_history,
        timezone=timezone,
    )
    if len(cutoffs) < args.folds:
        warn(
            f"{len(cutoffs)} of the {args.folds} folds asked for fit in the history (each "
            f"needs {format_duration(min_history)} of history "
            "before its cutoff)"
        )
    return BacktestConfig(
        cutoffs=cutoffs,
        horizon=args.horizon,
        policy=policy,
        sim_step=sim_step,
        target_under=args.target_under,
        peak_allowance=args.peak_allowance,
        max_value=args.max_value,
    )


def _echo(
    args: BacktestArgs, settings: ForecastSettings, policy: CapacityPolicy
) -> dict[str, object]:
    return {
        "horizon_seconds": args.horizon.total_seconds(),
        "folds": args.folds,
        "spacing_seconds": args.spacing.total_seconds(),
        "lead_time_seconds": policy.lead_time.total_seconds(),
        "stabilization_seconds": policy.stabilization.total_seconds(),
        "observed_headroom": policy.observed_headroom,
        "max_lift": policy.max_lift,
        "unit_tolerance": policy.unit_tolerance,
        "min_units": policy.min_units,
        "max_units": policy.max_units,
        "interval_width": settings.interval_width,
        "country_holidays": settings.country_holidays,
        "timezone": settings.timezone,
        "target_under": args.target_under,
        "peak_allowance": args.peak_allowance,
        "max_value": args.max_value,
    }
