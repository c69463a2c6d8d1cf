"""Seasonal naive and the ensemble (forecaster/challengers.py) on synthetic series.

The series are a 5-minute daily pattern (a daytime sine peak, weekends at 60 %) starting on
Monday 2024-03-04 UTC, so one week earlier is exactly the same demand and one day earlier
is not (Monday follows a Sunday).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from forescale.errors import InsufficientHistory
from forescale.forecaster.challengers import (
    ENSEMBLE,
    SEASONAL_NAIVE,
    ensemble_forecast,
    seasonal_naive_forecast,
)
from forescale.forecaster.types import Event, Forecast, ForecastSettings

UTC = dt.UTC
FIVE_MIN = dt.timedelta(minutes=5)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)
START = dt.datetime(2024, 3, 4, tzinfo=UTC)  # a Monday


def demand_at(ds: pd.DatetimeIndex) -> np.ndarray:
    """Requests/s at ``ds``: 100 at night, a sine peak of 180 at 12:00, weekends x0.6."""
    hours = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    daily = 100 + 80 * np.clip(np.sin(2 * np.pi * (hours - 6) / 24), 0, None)
    return np.where(ds.dayofweek.to_numpy() >= 5, 0.6 * daily, daily)


def weekly_series(
    days: float, *, step: dt.timedelta = FIVE_MIN, noise: float = 0.0, seed: int = 0
) -> pd.DataFrame:
    ds = pd.date_range(START, periods=int(days * (DAY / step)), freq=step)
    y = demand_at(ds)
    if noise:
        y = y * (1 + noise * np.random.default_rng(seed).standard_normal(len(ds)))
    return pd.DataFrame({"ds": ds, "y": y})


def naive(
    history: pd.DataFrame,
    now: dt.datetime,
    *,
    horizon: dt.timedelta = DAY,
    interval_width: float = 0.9,
    events: tuple[Event, ...] = (),
) -> Forecast:
    settings = ForecastSettings(horizon=horizon, interval_width=interval_width)
    return seasonal_naive_forecast(history, settings=settings, now=now, events=events)


def values_at(history: pd.DataFrame, ds: pd.DatetimeIndex) -> np.ndarray:
    return pd.Series(history["y"].to_numpy(), index=history["ds"]).reindex(ds).to_numpy()


# ------------------------------------------------------------------------ seasonal naive


def test_a_weekly_series_is_repeated_exactly_with_a_tight_band() -> None:
    history = weekly_series(21)
    now = START + 21 * DAY
    fc = naive(history, now, horizon=2 * DAY)

    expected_ds = pd.date_range(now, now + 2 * DAY, freq=FIVE_MIN)
    frame = fc.frame
    pd.testing.assert_index_equal(pd.DatetimeIndex(frame["ds"]), expected_ds, check_names=False)
    np.testing.assert_array_equal(frame["yhat"], values_at(history, expected_ds - WEEK))
    # Every week-on-week ratio is exactly 1: the band collapses onto the point.
    np.testing.assert_array_equal(frame["yhat_lower"], frame["yhat"])
    np.testing.assert_array_equal(frame["yhat_upper"], frame["yhat"])
    assert fc.model == SEASONAL_NAIVE
    assert fc.resolution == FIVE_MIN
    assert fc.fitted_at == now
    assert fc.history_end == history["ds"].iloc[-1]
    assert fc.components == ()
    assert "7d earlier" in fc.notes[0]


def test_without_a_week_of_history_it_repeats_the_day_before() -> None:
    history = weekly_series(4)  # Monday .. Thursday
    now = START + 4 * DAY
    fc = naive(history, now, horizon=2 * DAY)

    ds = pd.DatetimeIndex(fc.frame["ds"])
    yhat = fc.frame["yhat"].to_numpy()
    friday = np.asarray(ds < now + DAY)
    np.testing.assert_array_equal(yhat[friday], values_at(history, ds[friday] - DAY))
    # Saturday is past the history: the forecast repeats itself (Thursday again).
    saturday = np.asarray((ds >= now + DAY) & (ds < now + 2 * DAY))
    np.testing.assert_array_equal(yhat[saturday], values_at(history, ds[saturday] - 2 * DAY))
    assert not np.allclose(yhat[saturday], demand_at(ds[saturday]))  # a weekend was missed
    assert "1d earlier" in fc.notes[0]


@pytest.mark.parametrize(("days", "season"), [(7, WEEK), (1, DAY)], ids=["week", "day"])
def test_exactly_one_season_of_history_is_enough_for_that_season(
    days: int, season: dt.timedelta
) -> None:
    history = weekly_series(days)
    now = START + days * DAY
    fc = naive(history, now, horizon=season)
    ds = pd.DatetimeIndex(fc.frame["ds"])
    inside = np.asarray(ds < pd.Timestamp(now + season))  # one season earlier is history
    assert inside.sum() == len(history)
    np.testing.assert_array_equal(
        fc.frame["yhat"].to_numpy()[inside], values_at(history, ds[inside] - season)
    )


def test_a_missing_sample_a_week_earlier_is_taken_from_the_day_before() -> None:
    history = weekly_series(21)
    now = START + 21 * DAY  # a Monday
    gap = now + dt.timedelta(hours=10)
    history.loc[history["ds"] == pd.Timestamp(gap - WEEK), "y"] = np.nan
    fc = naive(history, now)

    at = fc.frame.set_index("ds")["yhat"]
    sunday = values_at(history, pd.DatetimeIndex([gap - DAY]))[0]
    assert sunday != demand_at(pd.DatetimeIndex([gap]))[0]  # the fallback is visible
    assert at[pd.Timestamp(gap)] == sunday
    neighbour = gap + FIVE_MIN
    assert (
        at[pd.Timestamp(neighbour)] == values_at(history, pd.DatetimeIndex([neighbour - WEEK]))[0]
    )


def test_rows_after_now_are_ignored() -> None:
    history = weekly_series(21, noise=0.05, seed=1)
    now = START + 18 * DAY
    future = history["ds"] > pd.Timestamp(now)
    changed = history.copy()
    changed.loc[future, "y"] *= 10

    seen = naive(history[~future], now)
    with_future = naive(changed, now)
    pd.testing.assert_frame_equal(with_future.frame, seen.frame)
    assert with_future.history_end == now


def test_the_band_is_the_quantiles_of_the_last_two_weeks_ratios() -> None:
    history = weekly_series(28, noise=0.05, seed=2)
    # Triple the first five days: their ratios (at days 7..12) are older than 14 days.
    early = history["ds"] < pd.Timestamp(START + 5 * DAY)
    history.loc[early, "y"] *= 3
    now = START + 28 * DAY
    fc = naive(history, now, interval_width=0.8)

    y = pd.Series(history["y"].to_numpy(), index=pd.DatetimeIndex(history["ds"]))
    ratios = (y / y.reindex(y.index - WEEK).to_numpy()).dropna()
    recent = ratios[ratios.index > y.index[-1] - pd.Timedelta(days=14)]
    lo = min(float(np.quantile(recent, 0.1)), 1.0)
    hi = max(float(np.quantile(recent, 0.9)), 1.0)
    assert lo < 1 < hi
    assert float(np.quantile(ratios, 0.1)) < 0.5 * lo  # the old ratios would matter

    frame = fc.frame
    np.testing.assert_allclose(frame["yhat_lower"], frame["yhat"] * lo, rtol=1e-12)
    np.testing.assert_allclose(frame["yhat_upper"], frame["yhat"] * hi, rtol=1e-12)
    assert f"{recent.size} ratios" in fc.notes[1]


def test_too_few_ratios_give_a_fixed_twenty_percent_band() -> None:
    history = weekly_series(1.5, step=HOUR)  # 36 hourly samples: 12 day-on-day ratios
    now = START + dt.timedelta(hours=36)
    fc = naive(history, now, horizon=6 * HOUR)

    frame = fc.frame
    np.testing.assert_allclose(frame["yhat_lower"], 0.8 * frame["yhat"])
    np.testing.assert_allclose(frame["yhat_upper"], 1.2 * frame["yhat"])
    assert fc.resolution == HOUR
    assert "too little history" in fc.notes[1]


def test_expected_uplift_multiplies_point_and_band_in_the_active_window() -> None:
    history = weekly_series(21, noise=0.05, seed=3)
    now = START + 21 * DAY
    launch = Event(
        name="launch",
        start=now + dt.timedelta(hours=10, minutes=30),
        end=now + dt.timedelta(hours=11),
        lower_window=dt.timedelta(minutes=28),  # active from 10:02: the 10:00 step overlaps it
        expected_uplift=0.5,
    )
    learned = Event(name="learned", start=now + HOUR, end=now + 2 * HOUR)  # no uplift: ignored
    later = Event(name="later", start=now + 3 * DAY, end=now + 4 * DAY, expected_uplift=1.0)
    plain = naive(history, now)
    fc = naive(history, now, events=(launch, learned, later))

    ds = pd.DatetimeIndex(fc.frame["ds"])
    active = np.asarray(
        (ds >= pd.Timestamp(now + dt.timedelta(hours=10))) & (ds < pd.Timestamp(launch.end))
    )
    assert active.sum() == 12
    for column in ("yhat", "yhat_lower", "yhat_upper"):
        ratio = fc.frame[column].to_numpy() / plain.frame[column].to_numpy()
        np.testing.assert_allclose(ratio[active], 1.5)
        np.testing.assert_allclose(ratio[~active], 1.0)
    assert fc.components == ("event:launch",)
    np.testing.assert_array_equal(fc.frame["event:launch"], np.where(active, 0.5, 0.0))
    assert [(e.name, e.effect, e.source) for e in fc.event_effects] == [
        ("launch", 0.5, "expected_uplift")
    ]


def test_a_large_negative_uplift_does_not_forecast_negative_demand() -> None:
    history = weekly_series(21)
    now = START + 21 * DAY
    outage = Event(name="outage", start=now, end=now + HOUR, expected_uplift=-1.5)
    frame = naive(history, now, events=(outage,)).frame
    inside = frame["ds"] < pd.Timestamp(now + HOUR)
    assert (frame.loc[inside, ["yhat", "yhat_lower", "yhat_upper"]] == 0).all().all()
    assert (frame.loc[~inside, "yhat"] > 0).all()


def test_refuses_too_little_history_and_a_naive_now() -> None:
    history = weekly_series(1)
    with pytest.raises(InsufficientHistory):
        naive(history.iloc[:1], START + FIVE_MIN)
    short = history[history["ds"] < pd.Timestamp(START + 12 * HOUR)]
    with pytest.raises(InsufficientHistory, match="12.0 h") as info:
        naive(short, START + 12 * HOUR)
    assert info.value.have_seconds == 12 * 3600
    with pytest.raises(ValueError, match="timezone-aware"):
        naive(history, (START + DAY).replace(tzinfo=None))


# ------------------------------------------------------------------------------ ensemble


def member(
    name: str,
    start: dt.datetime,
    values: list[float],
    *,
    step: dt.timedelta = FIVE_MIN,
    components: dict[str, list[float]] | None = None,
) -> Forecast:
    yhat = np.asarray(values, dtype=float)
    frame = pd.DataFrame(
        {
            "ds": pd.date_range(start, periods=len(values), freq=step),
            "yhat": yhat,
            "yhat_lower": yhat - 10,
            "yhat_upper": yhat + 20,
            **{k: np.asarray(v, dtype=float) for k, v in (components or {}).items()},
        }
    )
    return Forecast(
        frame=frame,
        components=tuple(components or {}),
        resolution=step,
        interval_width=0.9,
        fitted_at=start,
        history_end=start - step,
        model=name,
        notes=(f"{name} note",),
    )


def test_the_ensemble_is_the_mean_of_its_members() -> None:
    t0 = START + DAY
    a = member("prophet", t0, [100, 120, 140, 160], components={"weekly": [0.1, 0.2, 0.3, 0.4]})
    b = member("seasonal_naive", t0, [80, 90, 100, 110])
    fc = ensemble_forecast([a, b])

    for column in ("yhat", "yhat_lower", "yhat_upper"):
        np.testing.assert_allclose(fc.frame[column], (a.frame[column] + b.frame[column]) / 2)
    np.testing.assert_array_equal(fc.frame["weekly"], a.frame["weekly"])
    assert fc.components == ("weekly",)
    assert fc.model == ENSEMBLE
    assert fc.notes == ("ensemble: the mean of prophet + seasonal_naive", "prophet note")
    assert fc.fitted_at == a.fitted_at


def test_the_ensemble_of_an_hourly_and_a_five_minute_member_is_on_the_finer_overlap() -> None:
    t0 = START + DAY
    hourly = member("prophet", t0, [100, 200, 300, 400, 500, 600], step=HOUR)  # 00:00 .. 06:00
    fine_values = [float(i) for i in range(78)]  # 00:30 .. 07:00
    fine = member("seasonal_naive", t0 + dt.timedelta(minutes=30), fine_values)
    fc = ensemble_forecast([hourly, fine])

    expected_ds = pd.date_range(t0 + dt.timedelta(minutes=30), t0 + 6 * HOUR, freq=FIVE_MIN)
    expected_ds = expected_ds[:-1]  # the hourly member ends with its 05:00 step, at 06:00
    ds = pd.DatetimeIndex(fc.frame["ds"])
    pd.testing.assert_index_equal(ds, expected_ds, check_names=False)
    hour_of = np.asarray((ds - pd.Timestamp(t0)) // pd.Timedelta(HOUR))
    fine_at = fine.frame.set_index("ds")["yhat"].reindex(ds).to_numpy()
    hourly_at = hourly.frame["yhat"].to_numpy()[hour_of]
    np.testing.assert_allclose(fc.frame["yhat"], (hourly_at + fine_at) / 2)
    assert fc.resolution == FIVE_MIN
    assert fc.history_end == max(hourly.history_end, fine.history_end)


def test_the_ensemble_needs_overlapping_members() -> None:
    t0 = START + DAY
    with pytest.raises(ValueError, match="at least one member"):
        ensemble_forecast([])
    early = member("prophet", t0, [1, 2, 3])
    late = member("seasonal_naive", t0 + DAY, [1, 2, 3])
    with pytest.raises(InsufficientHistory, match="do not overlap"):
        ensemble_forecast([early, late])


def test_a_weighted_ensemble_weighs_its_members_and_says_so() -> None:
    t0 = START + DAY
    a = member("prophet", t0, [100, 120, 140, 160], components={"weekly": [0.1, 0.2, 0.3, 0.4]})
    b = member("seasonal_naive", t0, [80, 90, 100, 110])
    fc = ensemble_forecast([a, b], model="mix", weights=(0.3, 0.7))

    for column in ("yhat", "yhat_lower", "yhat_upper"):
        np.testing.assert_allclose(fc.frame[column], 0.3 * a.frame[column] + 0.7 * b.frame[column])
    np.testing.assert_array_equal(fc.frame["weekly"], a.frame["weekly"])
    assert fc.model == "mix"
    assert fc.notes[0] == "weighted mean: 0.3 x prophet + 0.7 x seasonal_naive"
    for bad in ((0.5,), (1.2, -0.2), (0.5, 0.6)):
        with pytest.raises(ValueError, match="weights"):
            ensemble_forecast([a, b], weights=bad)
