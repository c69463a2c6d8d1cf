"""``forescale backtest``: read the demand, fit the folds, replay, render."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import click
import pandas as pd

from collectors.csv_file import CsvFileSource
from collectors.series import infer_step, regularize
from forecaster.backtest import BacktestConfig, BacktestResult, rolling_cutoffs
from forecaster.types import CapacityPolicy, ForecastSettings
from forescale.backtesting import FoldFitter, fold_count, run
from forescale.errors import ConfigError, DataError

__all__ = ["BacktestArgs", "run_backtest_command"]


@dataclass(frozen=True, kw_only=True, slots=True)
class BacktestArgs:
    config: Path | None
    service: str | None
    csv_path: Path | None
    timestamp_column: str = "timestamp"
    value_column: str = "value"
    timezone: str = "UTC"
    events_path: Path | None = None
    holidays: str | None = None
    horizon: dt.timedelta = dt.timedelta(hours=24)
    folds: int = 14
    spacing: dt.timedelta = dt.timedelta(days=1)
    capacity_per_unit: float | None = None
    lead_time: dt.timedelta = dt.timedelta(minutes=15)
    stabilization: dt.timedelta = dt.timedelta(minutes=15)
    observed_headroom: float = 0.3
    min_units: int = 1
    max_units: int = 100_000
    interval_width: float = 0.9
    target_under: float = 0.03
    sim_step: dt.timedelta = dt.timedelta(minutes=5)
    workers: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Prepared:
    name: str
    source: str
    series: pd.DataFrame
    fitter: FoldFitter
    config: BacktestConfig
    echo: dict[str, object]


def prepare(args: BacktestArgs) -> Prepared:
    """Resolve the demand, the candidates and the backtest settings from the arguments."""
    if (args.csv_path is None) == (args.service is None):
        raise ConfigError("give either --csv FILE or --service NAME (with --config)")
    if args.csv_path is not None:
        return _prepare_csv(args)
    return _prepare_service(args)


def _config(
    args: BacktestArgs, series: pd.DataFrame, policy: CapacityPolicy, timezone: str
) -> BacktestConfig:
    native = infer_step(series["ds"])
    sim_step = min(args.sim_step, native)
    if native % sim_step != dt.timedelta(0):
        sim_step = native
    cutoffs = rolling_cutoffs(
        pd.DatetimeIndex(series["ds"]),
        horizon=args.horizon,
        count=args.folds,
        spacing=args.spacing,
        min_history=dt.timedelta(days=7) + args.horizon * 3,
        timezone=timezone,
    )
    return BacktestConfig(
        cutoffs=cutoffs,
        horizon=args.horizon,
        policy=policy,
        sim_step=sim_step,
        target_under=args.target_under,
    )


def _prepare_csv(args: BacktestArgs) -> Prepared:
    assert args.csv_path is not None
    try:
        zoneinfo.ZoneInfo(args.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"--timezone {args.timezone!r}: not an IANA time zone (e.g. America/New_York)"
        ) from None
    source = CsvFileSource(
        path=args.csv_path,
        timestamp_column=args.timestamp_column,
        value_column=args.value_column,
        timezone=args.timezone,
    )
    fetched = source.fetch_accounted(None, None)
    series = fetched.series
    note = fetched.account.summary() if fetched.account is not None else None
    if note is not None:  # rows that are gaps or averaged: said once, on stderr
        click.echo(f"forescale: warning: {note}", err=True)
    settings = ForecastSettings(
        horizon=args.horizon,
        interval_width=args.interval_width,
        country_holidays=args.holidays,
        timezone=args.timezone,
    )
    policy = CapacityPolicy(
        capacity_per_unit=args.capacity_per_unit or 0.0,
        min_units=args.min_units,
        max_units=args.max_units,
        lead_time=args.lead_time,
        stabilization=args.stabilization,
        observed_headroom=args.observed_headroom,
    )
    if args.capacity_per_unit is not None and not args.capacity_per_unit > 0:
        raise ConfigError("--capacity-per-unit must be > 0")
    if args.min_units > args.max_units:
        raise ConfigError("--min-units is above --max-units")
    from forescale.usecases.context import read_events

    events = read_events(args.events_path, args.timezone) if args.events_path else ()
    return Prepared(
        name=args.csv_path.stem,
        source=source.describe(),
        series=series,
        fitter=FoldFitter(settings=settings, events=events),
        config=_config(args, series, policy, args.timezone),
        echo=_echo(args, settings, policy),
    )


def _prepare_service(args: BacktestArgs) -> Prepared:
    from config.settings import load_settings
    from forescale.store import Store
    from forescale.usecases.context import EventsCache, capacity_policy, forecast_settings

    assert args.service is not None
    settings = load_settings(args.config)
    service = settings.service(args.service)
    store = Store.open(settings.store_url)
    try:
        series = store.load_samples(args.service)
    finally:
        store.close()
    if len(series) >= 2:
        series = regularize(series)
    if series.empty:
        raise DataError(
            f"service {args.service!r} has no stored history; run `forescale collect` first"
        )
    fsettings = forecast_settings(settings, service)
    fsettings = replace(fsettings, horizon=args.horizon)
    policy = capacity_policy(service)
    # as the daemon reads it: naive times in the display timezone
    events = EventsCache(timezone=settings.display_timezone).get(settings.events_path(service))
    return Prepared(
        name=args.service,
        source=_describe(service),
        series=series,
        fitter=FoldFitter(settings=fsettings, events=events, min_history=settings.min_history),
        config=_config(args, series, policy, fsettings.timezone),
        echo=_echo(args, fsettings, policy),
    )


def _describe(service: object) -> str:
    from collectors.base import describe_source

    return describe_source(service.source)  # type: ignore[attr-defined]


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
        "min_units": policy.min_units,
        "max_units": policy.max_units,
        "interval_width": settings.interval_width,
        "country_holidays": settings.country_holidays,
        "timezone": settings.timezone,
        "target_under": args.target_under,
    }


def execute(prepared: Prepared, *, workers: int | None, show_progress: bool) -> BacktestResult:
    from forescale.executor import ExecutorSettings, FitExecutor

    total = fold_count(prepared.config)
    kind: Literal["serial", "process"] = "process" if (workers or 2) > 1 and total > 1 else "serial"
    settings = ExecutorSettings(kind=kind, workers=workers, preload=("prophet",))
    if not show_progress:
        with FitExecutor(settings) as pool:
            return run(prepared.series, prepared.config, prepared.fitter, executor=pool)
    from rich.progress import Progress

    with Progress(transient=True) as bar, FitExecutor(settings) as pool:
        task = bar.add_task(f"fitting {total} folds", total=total)
        return run(
            prepared.series,
            prepared.config,
            prepared.fitter,
            executor=pool,
            progress=lambda n: bar.advance(task, n),
        )


def run_backtest_command(
    args: BacktestArgs,
    *,
    fmt: Literal["text", "json", "html"],
    schedule_out: Path | None,
    to_terminal: bool,
) -> str:
    from forescale.report.backtest_csv import write_schedule_csv
    from forescale.report.render import render_backtest

    prepared = prepare(args)
    result = execute(prepared, workers=args.workers, show_progress=to_terminal and fmt == "text")
    if schedule_out is not None:
        write_schedule_csv(result, schedule_out)
    return render_backtest(
        result,
        fmt,
        service=prepared.name,
        source=prepared.source,
        settings=prepared.echo,
        timezone=prepared.fitter.settings.timezone,
    )
