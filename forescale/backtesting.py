"""Backtests at the edges: where the demand and the candidate models come from.

The pure engine is :mod:`forecaster.backtest`; this module gives it the product's
candidates (Prophet and seasonal naive, fitted as the daemon fits them), fits the folds in
parallel through :mod:`forescale.executor` and reads demand from a CSV file or the store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from forecaster.backtest import BacktestConfig, BacktestResult, run_backtest
from forecaster.candidates import DEFAULT_MODELS, fit_candidates
from forecaster.types import Event, Forecast, ForecastSettings
from forescale.errors import ForecastError

__all__ = ["FoldFitter", "fit_fold", "run"]


@dataclass(frozen=True, kw_only=True, slots=True)
class FoldFitter:
    """Everything needed to fit one fold's candidates (picklable: sent to workers)."""

    settings: ForecastSettings
    events: tuple[Event, ...] = ()
    min_history: dt.timedelta = dt.timedelta(hours=24)
    models: tuple[str, ...] = DEFAULT_MODELS


@dataclass(frozen=True, slots=True)
class FoldJob:
    fitter: FoldFitter
    history: pd.DataFrame
    cutoff: dt.datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class FoldFits:
    forecasts: dict[str, Forecast] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def fit_fold(job: FoldJob) -> FoldFits:
    """Fit every candidate on ``job.history`` as of ``job.cutoff`` (a top-level function,
    so worker processes can run it). A model that fails is left out with its error."""
    fitted = fit_candidates(
        job.history,
        events=job.fitter.events,
        settings=job.fitter.settings,
        now=job.cutoff,
        min_history=job.fitter.min_history,
        models=job.fitter.models,
    )
    return FoldFits(forecasts=fitted.forecasts, errors=fitted.errors)


def _all_cutoffs(config: BacktestConfig) -> list[dt.datetime]:
    first = min(config.cutoffs)
    seeds = [first - config.horizon * (k + 1) for k in range(config.record_folds)]
    return sorted({*seeds, *config.cutoffs})


def run(
    series: pd.DataFrame,
    config: BacktestConfig,
    fitter: FoldFitter,
    *,
    executor: Any | None = None,
    progress: Any | None = None,
) -> BacktestResult:
    """Fit all folds (in parallel when ``executor`` - a :class:`forescale.executor.FitExecutor`
    - is given), then replay them in order through :func:`run_backtest`."""
    cutoffs = _all_cutoffs(config)
    jobs = [
        FoldJob(fitter, series[series["ds"] < pd.Timestamp(c)].reset_index(drop=True), c)
        for c in cutoffs
    ]
    fits: dict[dt.datetime, FoldFits] = {}
    if executor is None:
        for job in jobs:
            fits[job.cutoff] = fit_fold(job)
            if progress is not None:
                progress(1)
    else:
        for outcome in executor.map_unordered(fit_fold, jobs):
            job = jobs[outcome.index]
            if outcome.error is not None:
                fits[job.cutoff] = FoldFits(errors={"*": f"{outcome.error}"})
            else:
                fits[job.cutoff] = outcome.value
            if progress is not None:
                progress(1)

    def candidates(history: pd.DataFrame, cutoff: dt.datetime) -> dict[str, Forecast]:
        got = fits.get(cutoff)
        if got is None:
            raise ForecastError(f"no fit for the fold at {cutoff.isoformat()}")
        if not got.forecasts:
            raise ForecastError("; ".join(f"{m}: {e}" for m, e in got.errors.items()))
        return got.forecasts

    return run_backtest(series, config, candidates)


def fold_count(config: BacktestConfig) -> int:
    return len(_all_cutoffs(config))
