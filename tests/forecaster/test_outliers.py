"""A single sample far outside the recent distribution never drives capacity."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from forescale.forecaster.candidates import PRODUCT
from forescale.forecaster.ceiling import credible_ceiling
from forescale.forecaster.outliers import flag_outliers, masked
from forescale.forecaster.types import ForecastSettings

NOW = dt.datetime(2024, 3, 15, 0, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=5)


def daily(days: int, *, seed: int = 1) -> pd.DataFrame:
    ds = pd.date_range(NOW - dt.timedelta(days=days), NOW, freq=STEP, inclusive="left")
    hours = np.asarray(ds.hour + ds.minute / 60)
    rng = np.random.default_rng(seed)
    y = 1000 + 500 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 20, len(ds))
    return pd.DataFrame({"ds": ds, "y": y})


def test_one_bogus_sample_is_flagged_and_masked() -> None:
    history = daily(14)
    bogus = NOW - dt.timedelta(days=7)  # at the same time last week
    history.loc[history["ds"] == pd.Timestamp(bogus), "y"] = 1e9
    [outlier] = flag_outliers(history)
    assert outlier.at == bogus and outlier.value == 1e9
    assert 1400 < outlier.reference < 1700  # the week before peaked near 1,500
    assert "1e+09 at" in outlier.describe()
    clean = masked(history, (outlier,))
    assert clean["y"].isna().sum() == 1 and clean["y"].max() < 2000


def test_bursts_that_repeat_sustained_rises_and_the_newest_sample_are_not_flagged() -> None:
    bursty = daily(14)
    bursty.loc[bursty.index % 144 == 0, "y"] = 99_000.0  # a burst twice a day: it is normal
    assert flag_outliers(bursty) == ()
    rising = daily(14)
    rising.loc[rising["ds"] >= pd.Timestamp(NOW - dt.timedelta(hours=2)), "y"] = 50_000.0
    assert flag_outliers(rising) == ()  # a new level, not a glitch
    last = daily(14)
    last.loc[last.index[-1], "y"] = 1e9
    assert flag_outliers(last) == ()  # cannot tell yet: the floor follows it


def test_a_bogus_sample_a_week_ago_does_not_drive_this_weeks_capacity() -> None:
    """The seasonal-naive memory and the credible ceiling never see it: the forecast at the
    same time this week is ordinary, and the note says what was kept out."""
    history = daily(14)
    bogus = NOW - dt.timedelta(days=7) + dt.timedelta(hours=2)
    history.loc[history["ds"] == pd.Timestamp(bogus), "y"] = 1e9
    settings = ForecastSettings(horizon=dt.timedelta(hours=6))
    fitted = PRODUCT.fit(
        history, settings=settings, now=NOW, models=("seasonal_naive", "recent_peak")
    )
    assert [o.at for o in fitted.outliers] == [bogus]
    for forecast in fitted.forecasts.values():
        assert forecast.frame["yhat_upper"].max() < 5000, forecast.model
    ceiling = credible_ceiling(history, allowance=1.25)
    assert ceiling is not None and ceiling.value < 2500


def test_a_short_burst_is_flagged_as_one_episode() -> None:
    """NAB's ec2_network_in: within 30 minutes a lead-in at 3x the week's high, then three
    samples 30-160x it with ordinary ones between. The far-out samples are judged by the
    week before the burst (not by the burst's own lead-in) and flagged together, with the
    lead-in (a shoulder above twice the week's high); a sample at 1.3x is ordinary."""
    history = daily(14)
    start = history.index[history["ds"] == pd.Timestamp(NOW - dt.timedelta(days=3))][0]
    burst = [4_500.0, 2_000.0, 160_000.0, 1_200.0, 1_100.0, 250_000.0, 60_000.0]
    history.loc[start : start + len(burst) - 1, "y"] = burst
    flagged = flag_outliers(history)
    assert sorted(o.value for o in flagged) == [4_500.0, 60_000.0, 160_000.0, 250_000.0]
    assert all(1400 < o.reference < 1700 for o in flagged)
    ceiling = credible_ceiling(history, allowance=1.25)
    assert ceiling is not None and ceiling.value == 2_000.0 * 1.25


def test_a_long_surge_is_not_an_outlier() -> None:
    """Demand far above the week for longer than a short episode is traffic, not a glitch:
    the fit and the ceiling keep it."""
    history = daily(14)
    start = history.index[history["ds"] == pd.Timestamp(NOW - dt.timedelta(days=3))][0]
    history.loc[start : start + 11, "y"] = 50_000.0  # an hour
    assert flag_outliers(history) == ()
