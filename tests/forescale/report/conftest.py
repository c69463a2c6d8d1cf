"""Backtest results for the report tests: a cheap seasonal-naive backtest on synthetic
demand (no Prophet), whole and with one failed fold."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from forescale.errors import ForecastError
from forescale.forecaster.backtest import (
    BacktestConfig,
    BacktestResult,
    rolling_cutoffs,
    run_backtest,
)
from forescale.forecaster.challengers import SEASONAL_NAIVE, seasonal_naive_forecast
from forescale.forecaster.types import CapacityPolicy, Forecast, ForecastSettings
from forescale.report.backtest_json import backtest_json
from forescale.report.backtest_view import build_backtest_view

HORIZON = dt.timedelta(days=1)
FORECAST = ForecastSettings(horizon=HORIZON, interval_width=0.8)
SETTINGS: dict[str, object] = {
    "lead_time": dt.timedelta(minutes=15),
    "interval_width": 0.8,
    "holidays": None,
    "target_under": 0.01,
    "events": ["launch", "sale"],
    "nan_setting": math.nan,
}
SERVICE = "web"
SOURCE = "synthetic daily pattern (5 min)"


def _series(days: int = 12) -> pd.DataFrame:
    """5-minute demand: a base of 100 with a midday hump to ~180, plus noise."""
    ds = pd.date_range("2024-03-01", periods=days * 288, freq="5min", tz="UTC")
    hours = (ds.hour + ds.minute / 60).to_numpy(dtype=float)
    rng = np.random.default_rng(7)
    hump = np.clip(np.sin(2 * np.pi * (hours - 6) / 24), 0, None)
    return pd.DataFrame({"ds": ds, "y": 100 + 80 * hump + rng.normal(0, 5, len(ds))})


def _naive_only(history: pd.DataFrame, cutoff: dt.datetime) -> dict[str, Forecast]:
    return {SEASONAL_NAIVE: seasonal_naive_forecast(history, settings=FORECAST, now=cutoff)}


def _backtest(candidates: object = _naive_only) -> BacktestResult:
    series = _series()
    cutoffs = rolling_cutoffs(
        pd.DatetimeIndex(series["ds"]), horizon=HORIZON, count=3, min_history=dt.timedelta(days=4)
    )
    config = BacktestConfig(
        cutoffs=cutoffs,
        horizon=HORIZON,
        policy=CapacityPolicy(capacity_per_unit=0, min_units=1, max_units=1000),
        models=(SEASONAL_NAIVE,),
        record_folds=2,
    )
    return run_backtest(series, config, candidates)  # type: ignore[arg-type]


@pytest.fixture(scope="package")
def result() -> BacktestResult:
    return _backtest()


@pytest.fixture(scope="package")
def partly_failed() -> BacktestResult:
    """The middle fold's fit fails: its steps have no units and are not scored."""

    def candidates(history: pd.DataFrame, cutoff: dt.datetime) -> dict[str, Forecast]:
        if cutoff == dt.datetime(2024, 3, 11, tzinfo=dt.UTC):
            raise ForecastError("cannot fit <this> fold")
        return _naive_only(history, cutoff)

    return _backtest(candidates)


def as_json(
    result: BacktestResult, service: str = SERVICE, settings: dict[str, object] = SETTINGS
) -> dict[str, object]:
    """The backtest's JSON document as data, as ``--format json`` would write it."""
    view = build_backtest_view(
        result, service=service, source=SOURCE, settings=settings, timezone="UTC"
    )
    return backtest_json(view)
