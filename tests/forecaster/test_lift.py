"""The forecast ahead, lifted while the demand runs above it (forecaster.lift)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from forescale.forecaster.lift import (
    Lift,
    factor_for,
    lift_forecast,
    lift_of,
    lifted,
    ran_above,
    recent_peak,
    running_ratio,
)
from forescale.forecaster.types import Forecast
from tests.fakes import known_forecast

FIVE = dt.timedelta(minutes=5)
NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def test_ran_above_is_the_ratio_of_the_sums_over_the_samples_known_on_both_sides() -> None:
    actual = np.array([120.0, 130.0, np.nan, 110.0])
    point = np.array([100.0, 100.0, 100.0, np.nan])
    assert ran_above(actual, point) == pytest.approx(250 / 200)
    # fewer than half the samples known on both sides: not known
    assert math.isnan(ran_above(np.array([1.0, np.nan, np.nan]), np.array([1.0, 1.0, 1.0])))
    assert math.isnan(ran_above(np.array([1.0]), np.array([0.0])))  # no forecast to compare


def test_a_sample_counts_at_most_the_cap() -> None:
    actual = np.array([100.0, 1e9, 100.0, 100.0])
    point = np.full(4, 100.0)
    assert ran_above(actual, point, cap=200.0) == pytest.approx(500 / 400)


def test_running_ratio_is_ran_above_over_every_window() -> None:
    rng = np.random.default_rng(3)
    actual = rng.uniform(50, 150, 200)
    point = rng.uniform(80, 120, 200)
    actual[rng.choice(200, 40, replace=False)] = np.nan
    point[rng.choice(200, 20, replace=False)] = np.nan
    width = 12
    got = running_ratio(actual, point, width, cap=140.0)
    assert np.isnan(got[: width - 1]).all()
    for i in range(width - 1, 200):
        want = ran_above(actual[i - width + 1 : i + 1], point[i - width + 1 : i + 1], cap=140.0)
        assert (math.isnan(want) and math.isnan(got[i])) or got[i] == pytest.approx(want)


def test_the_factor_only_lifts_and_at_most_the_maximum() -> None:
    assert factor_for(0.7, 1.5) == 1.0  # demand below the forecast never lowers it
    assert factor_for(1.2, 1.5) == pytest.approx(1.2)
    assert factor_for(2.4, 1.5) == 1.5
    assert factor_for(1.2, 1.0) == 1.0  # max_lift 1: never
    assert factor_for(math.nan, 1.5) == 1.0


def test_the_lifted_band_stays_under_the_limit_or_the_band_itself() -> None:
    upper = np.array([100.0, 300.0, 500.0])
    assert lifted(upper, 1.5, 400.0).tolist() == [150.0, 400.0, 500.0]
    assert lifted(upper, 1.5, None).tolist() == [150.0, 450.0, 750.0]
    assert lifted(upper, 1.0, 10.0).tolist() == upper.tolist()


def test_the_recent_peak_is_the_week_before_the_start_at_most_the_ceiling() -> None:
    ds = pd.date_range(NOON - dt.timedelta(days=10), NOON + dt.timedelta(hours=2), freq="1h")
    y = np.full(len(ds), 100.0)
    y[ds == NOON - dt.timedelta(days=9)] = 900.0  # older than a week: not seen
    y[ds == NOON - dt.timedelta(days=2)] = 400.0
    y[ds == NOON + dt.timedelta(hours=1)] = 800.0  # after the start: not seen
    history = pd.DataFrame({"ds": ds, "y": y})
    assert recent_peak(history, NOON, None) == 400.0
    assert recent_peak(history, NOON, 300.0) == 300.0
    assert recent_peak(history.iloc[:0], NOON, None) is None
    assert recent_peak(history.iloc[:0], NOON, 300.0) == 300.0  # never above the ceiling


def history(level_last_hour: float, *, peak: float = 1000.0) -> pd.DataFrame:
    """A day of 5-minute demand at 300 until 12:00, ``peak`` once two days before, then
    ``level_last_hour`` from 12:00 to 13:00."""
    ds = pd.date_range(NOON - dt.timedelta(days=3), NOON + dt.timedelta(hours=1), freq=FIVE)
    y = np.where(ds >= pd.Timestamp(NOON), level_last_hour, 300.0)
    y[ds == pd.Timestamp(NOON - dt.timedelta(days=2))] = peak
    return pd.DataFrame({"ds": ds, "y": y})


FLAT = known_forecast(NOON, [300.0] * 48, FIVE)  # made at 12:00: 300 every 5 minutes


def lift_now(
    observed: pd.DataFrame,
    forecast: Forecast = FLAT,
    *,
    max_lift: float = 1.5,
    ceiling: float | None = None,
) -> Lift:
    return lift_of(
        observed=observed,
        forecast=forecast.frame,
        resolution=forecast.resolution,
        max_lift=max_lift,
        ceiling=ceiling,
    )


def test_demand_running_above_the_forecast_lifts_it_by_their_ratio() -> None:
    lift = lift_now(history(360.0))
    assert lift.factor == pytest.approx(1.2)
    assert lift.limit == 1000.0
    assert lift.describe() == (
        "demand ran 20% above the forecast over the last 1 h: the forecast ahead is "
        "lifted by 20%, up to the recent peak 1,000"
    )


def test_a_small_lift_is_said_as_one() -> None:
    lift = Lift(factor=1.004, ratio=1.004, limit=None)
    assert lift.describe() == (
        "demand ran 0.4% above the forecast over the last 1 h: the forecast ahead is lifted by 0.4%"
    )
    capped = Lift(factor=1.5, ratio=2.5, limit=900.0).describe()
    assert capped.startswith("demand ran 150% above")
    assert "lifted by 50% (max_lift 1.5), up to" in capped


def test_no_lift_below_the_forecast_without_one_for_the_hour_or_at_max_lift_1() -> None:
    below = lift_now(history(240.0))
    assert not below.lifts and below.ratio == pytest.approx(0.8) and below.describe() == ""
    later = known_forecast(NOON + dt.timedelta(hours=1), [300.0] * 48, FIVE)
    assert not lift_now(history(360.0), later).lifts
    assert not lift_now(history(360.0), max_lift=1.0).lifts


def test_one_bogus_sample_lifts_no_more_than_an_hour_at_the_ceiling() -> None:
    observed = history(300.0)
    observed.loc[observed.index[-3], "y"] = 1e9
    lift = lift_now(observed, ceiling=600.0)
    assert lift.factor == pytest.approx((11 * 300 + 600) / (12 * 300))
    assert lift.limit == 600.0  # the recent peak 1,000 is above the ceiling


def test_lift_forecast_lifts_only_the_rows_still_in_force() -> None:
    forecast = known_forecast(NOON, [300.0, 500.0, 700.0, 900.0], dt.timedelta(hours=1))
    now = NOON + dt.timedelta(hours=1, minutes=30)
    out = lift_forecast(forecast, Lift(factor=1.2, ratio=1.2, limit=800.0), now)
    assert out.frame["yhat_upper"].tolist() == [300.0, 600.0, 800.0, 900.0]
    assert out.frame["yhat"].tolist() == [300.0, 500.0, 700.0, 900.0]
    assert out.notes[-1].startswith("demand ran 20% above the forecast")
    assert lift_forecast(forecast, Lift(), now) is forecast


def test_a_lift_reaches_six_hours_ahead_not_tomorrow() -> None:
    forecast = known_forecast(NOON, [100.0] * 24, dt.timedelta(hours=1))
    now = NOON + dt.timedelta(minutes=30)
    out = lift_forecast(forecast, Lift(factor=1.2, ratio=1.2, limit=None), now)
    upper = out.frame["yhat_upper"].to_numpy()
    # 12:00 (in force) to 18:00 (starts before 18:30): lifted; 19:00 on: as forecast
    assert upper[:7] == pytest.approx([120.0] * 7)
    assert upper[7:].tolist() == [100.0] * 17
