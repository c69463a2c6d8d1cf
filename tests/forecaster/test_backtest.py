"""The rolling-origin backtest (forecaster/backtest.py) and the planner's input
(forecaster/capacity.py: planner_frame, refined, observed_headroom).

Candidates are seasonal naive or hand-built forecasts (no Prophet); series are synthetic
5-minute demand starting on Monday 2024-03-04 UTC.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forescale.errors import ForecastError
from forescale.forecaster.accuracy import Floor, Serving, observed_floor
from forescale.forecaster.backtest import (
    ApproachOutcome,
    BacktestConfig,
    BacktestResult,
    ReactiveBaseline,
    approach,
    dominated_by,
    reactive_units,
    rolling_cutoffs,
    run_backtest,
)
from forescale.forecaster.capacity import plan_capacity, planner_frame, refined, units_for
from forescale.forecaster.challengers import seasonal_naive_forecast
from forescale.forecaster.types import CapacityPolicy, Forecast, ForecastSettings, StepLimit
from tests.fakes import known_forecast

UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)
FIVE_MIN = dt.timedelta(minutes=5)
QUARTER = dt.timedelta(minutes=15)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)
START = dt.datetime(2024, 3, 4, tzinfo=UTC)  # a Monday

Candidates = Callable[[pd.DataFrame, dt.datetime], dict[str, Forecast]]


def demand_at(ds: pd.DatetimeIndex) -> np.ndarray:
    """Requests/s at ``ds``: 100 at night, a sine peak of 180 at 12:00, weekends x0.6."""
    hours = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    daily = 100 + 80 * np.clip(np.sin(2 * np.pi * (hours - 6) / 24), 0, None)
    return np.where(ds.dayofweek.to_numpy() >= 5, 0.6 * daily, daily)


def weekly_series(days: float, *, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    ds = pd.date_range(START, periods=int(days * (DAY / FIVE_MIN)), freq=FIVE_MIN)
    y = demand_at(ds)
    if noise:
        y = y * (1 + noise * np.random.default_rng(seed).standard_normal(len(ds)))
    return pd.DataFrame({"ds": ds, "y": y})


def lookup(series: pd.DataFrame, at: pd.DatetimeIndex) -> np.ndarray:
    return pd.Series(series["y"].to_numpy(), index=series["ds"]).reindex(at).to_numpy()


def naive_candidates(horizon: dt.timedelta, name: str = "seasonal_naive") -> Candidates:
    settings = ForecastSettings(horizon=horizon)

    def fit(history: pd.DataFrame, cutoff: dt.datetime) -> dict[str, Forecast]:
        return {name: seasonal_naive_forecast(history, settings=settings, now=cutoff)}

    return fit


def made_forecast(
    cutoff: dt.datetime,
    horizon: dt.timedelta,
    shape: Callable[[pd.DatetimeIndex], tuple[np.ndarray, np.ndarray]],
    *,
    model: str = "m",
    step: dt.timedelta = FIVE_MIN,
) -> Forecast:
    """A forecast of ``[cutoff, cutoff + horizon)``: ``shape(ds)`` gives (yhat, upper)."""
    ds = pd.date_range(cutoff, cutoff + horizon, freq=step, inclusive="left")
    yhat, upper = shape(ds)
    frame = pd.DataFrame(
        {
            "ds": ds,
            "yhat": np.asarray(yhat, dtype=float),
            "yhat_lower": np.asarray(yhat, dtype=float) * 0.9,
            "yhat_upper": np.asarray(upper, dtype=float),
        }
    )
    return Forecast(
        frame=frame,
        components=(),
        resolution=step,
        interval_width=0.9,
        fitted_at=cutoff,
        history_end=cutoff - step,
        model=model,
    )


POLICY = CapacityPolicy(
    capacity_per_unit=10.0,
    min_units=1,
    max_units=1000,
    lead_time=QUARTER,
    stabilization=dt.timedelta(minutes=30),
    scale_in_tolerance=0.0,
)


def config(cutoffs: list[dt.datetime], **overrides: object) -> BacktestConfig:
    options: dict[str, object] = {
        "horizon": 6 * HOUR,
        "policy": POLICY,
        "record_folds": 0,
        "models": ("seasonal_naive",),
        "replay": "cutoff",
        "target_under": 0.01,
        # these tests plan hand-made forecasts at levels of their own; the credible
        # ceiling is tested in test_ceiling.py
        "peak_allowance": 10.0,
    }
    options.update(overrides)
    return BacktestConfig(cutoffs=tuple(cutoffs), **options)  # type: ignore[arg-type]


def column_at(result: BacktestResult, column: str, at: dt.datetime) -> float:
    rows = result.schedule[result.schedule["ts"] == pd.Timestamp(at)]
    assert len(rows) == 1, at
    return float(rows[column].iloc[0])


# ----------------------------------------------------------------------- rolling_cutoffs


def test_rolling_cutoffs_fall_on_local_midnights_and_leave_a_whole_horizon() -> None:
    ds = pd.date_range("2024-01-01", "2024-01-15 13:00", freq=HOUR, tz="UTC")
    tz = "America/New_York"
    cutoffs = rolling_cutoffs(ds, horizon=DAY, count=4, timezone=tz, min_history=WEEK)

    assert len(cutoffs) == 4
    assert list(cutoffs) == sorted(cutoffs)
    assert all(b - a == DAY for a, b in zip(cutoffs, cutoffs[1:], strict=False))
    local = [pd.Timestamp(c).tz_convert(tz) for c in cutoffs]
    assert all((t.hour, t.minute) == (0, 0) for t in local)
    end = ds[-1] + pd.Timedelta(HOUR)
    assert pd.Timestamp(cutoffs[-1] + DAY) <= end < pd.Timestamp(cutoffs[-1] + 2 * DAY)


def test_rolling_cutoffs_stay_on_local_midnights_across_a_dst_change() -> None:
    ds = pd.date_range("2024-03-20", "2024-04-06", freq=HOUR, tz="UTC", inclusive="left")
    tz = "Europe/Berlin"  # clocks go forward on 2024-03-31
    cutoffs = rolling_cutoffs(ds, horizon=DAY, count=8, timezone=tz, min_history=3 * DAY)
    local = [pd.Timestamp(c).tz_convert(tz) for c in cutoffs]
    assert [(t.hour, t.minute) for t in local] == [(0, 0)] * 8


def test_rolling_cutoffs_keep_only_those_with_min_history_before_them() -> None:
    ds = pd.date_range(START, periods=10 * 24, freq=HOUR)
    cutoffs = rolling_cutoffs(ds, horizon=DAY, count=5, min_history=WEEK)
    # Candidates are days 9, 8, ..., 5; only days 7, 8 and 9 leave a week before them.
    assert cutoffs == tuple(START + k * DAY for k in (7, 8, 9))
    assert all(c - START >= WEEK for c in cutoffs)


def test_rolling_cutoffs_with_a_sub_day_spacing_are_whole_multiples_of_it() -> None:
    ds = pd.date_range(START, START + 10 * DAY + dt.timedelta(hours=13), freq=FIVE_MIN)
    spacing = 6 * HOUR
    cutoffs = rolling_cutoffs(ds, horizon=spacing, count=3, spacing=spacing)
    end = ds[-1] + pd.Timedelta(FIVE_MIN)
    assert all(pd.Timestamp(c).value % pd.Timedelta(spacing).value == 0 for c in cutoffs)
    assert pd.Timestamp(cutoffs[-1] + spacing) <= end < pd.Timestamp(cutoffs[-1] + 2 * spacing)
    assert [b - a for a, b in zip(cutoffs, cutoffs[1:], strict=False)] == [spacing] * 2


def test_rolling_cutoffs_refuse_impossible_requests() -> None:
    ds = pd.date_range(START, periods=48, freq=HOUR)
    with pytest.raises(ForecastError, match="at least 1"):
        rolling_cutoffs(ds, horizon=DAY, count=0)
    with pytest.raises(ForecastError, match="fewer than 2"):
        rolling_cutoffs(ds[:1], horizon=DAY, count=1)
    with pytest.raises(ForecastError, match="no backtest cutoff"):
        rolling_cutoffs(ds, horizon=DAY, count=3, min_history=WEEK)


# ----------------------------------------------------------------- shape of the result


def test_the_schedule_and_points_have_one_row_per_step_of_every_fold() -> None:
    series = weekly_series(11, noise=0.05, seed=4)
    cutoffs = [START + k * DAY for k in (8, 9, 10)]
    horizon = 6 * HOUR
    result = run_backtest(series, config(cutoffs, horizon=horizon), naive_candidates(horizon))

    steps = int(horizon / FIVE_MIN)
    schedule = result.schedule
    assert len(schedule) == len(cutoffs) * steps
    assert schedule["fold"].value_counts().sort_index().tolist() == [steps] * 3
    expected_ts = np.concatenate(
        [pd.date_range(c, c + horizon, freq=FIVE_MIN, inclusive="left") for c in cutoffs]
    )
    np.testing.assert_array_equal(schedule["ts"].to_numpy(), expected_ts)
    np.testing.assert_array_equal(schedule["demand"], lookup(series, pd.DatetimeIndex(expected_ts)))
    for name in ("units", "units_reactive", "units_static_peak", "paid_forescale"):
        assert schedule[name].notna().all(), name
    assert len(result.points) == len(cutoffs) * steps
    assert [f.model for f in result.folds] == ["seasonal_naive"] * 3
    assert [a.name for a in result.approaches] == [
        "forescale",
        "seasonal_naive_x1_2",
        "reactive",
        "reactive_headroom_20",
        "static_peak",
    ]
    assert all(a.steps == len(schedule) for a in result.approaches)
    assert (result.sim_step, result.horizon) == (FIVE_MIN, horizon)


def test_overlapping_folds_give_each_step_to_the_earliest_fold() -> None:
    series = weekly_series(9, noise=0.05, seed=9)
    horizon = 6 * HOUR
    cutoffs = [START + 8 * DAY, START + 8 * DAY + 3 * HOUR]
    result = run_backtest(series, config(cutoffs, horizon=horizon), naive_candidates(horizon))
    schedule = result.schedule
    ts = pd.DatetimeIndex(schedule["ts"])
    pd.testing.assert_index_equal(
        ts,
        pd.date_range(cutoffs[0], cutoffs[1] + horizon, freq=FIVE_MIN, inclusive="left"),
        check_names=False,
    )
    np.testing.assert_array_equal(
        schedule["fold"], np.where(ts < pd.Timestamp(cutoffs[0] + horizon), 0, 1)
    )


def test_a_finer_sim_step_interpolates_demand_linearly() -> None:
    series = weekly_series(9, noise=0.05, seed=5)
    cutoff = START + 8 * DAY
    horizon = 2 * HOUR
    result = run_backtest(
        series, config([cutoff], horizon=horizon, sim_step=MINUTE), naive_candidates(horizon)
    )
    schedule = result.schedule
    assert len(schedule) == horizon / MINUTE
    ts = pd.DatetimeIndex(schedule["ts"])
    before = ts.floor("5min")
    frac = np.asarray((ts - before) / pd.Timedelta(FIVE_MIN))
    y0 = lookup(series, before)
    y1 = lookup(series, before + pd.Timedelta(FIVE_MIN))
    np.testing.assert_allclose(schedule["demand"], y0 + frac * (y1 - y0), rtol=1e-12)
    assert len(result.points) == horizon / FIVE_MIN  # scored on the series' own grid


def test_a_sim_step_coarser_than_the_series_or_no_cutoffs_is_refused() -> None:
    series = weekly_series(9)
    candidates = naive_candidates(6 * HOUR)
    with pytest.raises(ForecastError, match="coarser"):
        run_backtest(series, config([START + 8 * DAY], sim_step=HOUR), candidates)
    with pytest.raises(ForecastError, match="no backtest cutoffs"):
        run_backtest(series, config([]), candidates)


# --------------------------------------------------------------- capacity per unit, static


def test_capacity_per_unit_from_the_peak_keeps_the_static_peak_served() -> None:
    series = weekly_series(9)
    series["y"] *= 0.5  # at most 90
    cutoff = START + 8 * DAY
    peak = 106.39
    assert 20 * (peak / 20) < peak  # float noise: naively the static peak would fall short
    series.loc[series["ds"] == pd.Timestamp(cutoff + 3 * HOUR), "y"] = peak
    policy = replace(POLICY, capacity_per_unit=0.0)
    result = run_backtest(series, config([cutoff], policy=policy), naive_candidates(6 * HOUR))

    assert result.capacity_per_unit == peak / 20
    assert result.capacity_per_unit_source == "peak/20"
    assert any("peak evaluated demand / 20" in n for n in result.notes)
    static = approach(result, "static_peak")
    assert static.under_share == 0.0
    assert static.mean_units == 20
    assert static.vs_static == 1.0  # exactly: a checker compares it with 1.0
    assert (result.schedule["units_static_peak"] == 20).all()


def test_the_hindsight_bound_is_the_exact_units_of_every_scored_step() -> None:
    """The least any plan could pay: ceil(demand / capacity_per_unit) at every scored step
    within the policy's bounds; a bound beside the approaches, in no comparison."""
    series = weekly_series(9)
    cutoff = START + 8 * DAY
    policy = replace(POLICY, min_units=3, max_units=9)
    result = run_backtest(series, config([cutoff], policy=policy), naive_candidates(6 * HOUR))
    bound = result.hindsight
    assert bound is not None and bound.name == "hindsight"
    assert all(a.name != "hindsight" for a in result.approaches)
    demand = result.schedule["demand"].to_numpy(dtype=float)
    exact = np.clip(np.ceil(demand / 10.0), 3, 9)
    static = approach(result, "static_peak")
    assert bound.steps == static.steps == len(demand)
    assert bound.mean_units == pytest.approx(exact.mean())
    assert bound.unit_hours == pytest.approx(exact.sum() * FIVE_MIN.total_seconds() / 3600)
    static_units = result.schedule["units_static_peak"].to_numpy(dtype=float)
    assert bound.vs_static == pytest.approx(exact.sum() / static_units.sum())
    assert bound.under_share == pytest.approx(np.mean(demand > 90.0))  # max_units too few
    assert bound.under_share > 0 and bound.unit_hours < static.unit_hours
    assert "hindsight" not in dominated_by(result)
    own = approach(result, "forescale")
    assert own.unit_hours >= bound.unit_hours or own.under_share > bound.under_share


def test_a_given_capacity_per_unit_is_used() -> None:
    series = weekly_series(9)
    result = run_backtest(series, config([START + 8 * DAY]), naive_candidates(6 * HOUR))
    assert (result.capacity_per_unit, result.capacity_per_unit_source) == (10.0, "given")
    peak = float(result.schedule["demand"].max())
    assert (result.schedule["units_static_peak"] == units_for(peak, 10.0)).all()


# ----------------------------------------------------------------------------- reactive


def reactive(
    y: list[float], baseline: ReactiveBaseline, *, cpu: float = 100.0, max_units: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    demand = pd.DataFrame(
        {"ds": pd.date_range(START, periods=len(y), freq=FIVE_MIN), "y": np.asarray(y, float)}
    )
    policy = replace(POLICY, capacity_per_unit=cpu, max_units=max_units)
    return reactive_units(demand, baseline, cpu, policy, FIVE_MIN)


def test_reactive_serves_a_step_increase_delay_plus_warmup_later_and_pays_from_the_decision() -> (
    None
):
    baseline = ReactiveBaseline(name="r", delay=dt.timedelta(minutes=10), warmup=FIVE_MIN)
    jump = 12
    serving, paid = reactive([100.0] * jump + [450.0] * 12, baseline)
    lag = baseline.delay // FIVE_MIN
    decided = jump + lag
    serves = decided + baseline.warmup // FIVE_MIN
    np.testing.assert_array_equal(paid[:lag], 0)  # nothing seen yet
    np.testing.assert_array_equal(paid[lag:decided], 1)
    np.testing.assert_array_equal(paid[decided:], 5)
    np.testing.assert_array_equal(serving[lag:serves], 1)
    np.testing.assert_array_equal(serving[serves:], 5)


def test_reactive_with_a_longer_warmup_serves_later() -> None:
    baseline = ReactiveBaseline(name="r", delay=FIVE_MIN, warmup=dt.timedelta(minutes=20))
    jump = 12
    serving, paid = reactive([100.0] * jump + [450.0] * 12, baseline)
    decided, serves = jump + 1, jump + 1 + 4
    assert paid[decided - 1] == 1 and paid[decided] == 5
    assert serving[serves - 1] == 1 and serving[serves] == 5


@pytest.mark.parametrize("cooldown_steps", [0, 3, 5])
def test_reactive_scale_in_waits_for_the_cooldown_after_the_last_change(
    cooldown_steps: int,
) -> None:
    baseline = ReactiveBaseline(
        name="r",
        delay=dt.timedelta(minutes=10),
        warmup=FIVE_MIN,
        cooldown=cooldown_steps * FIVE_MIN,
    )
    # A two-step burst: the raise is decided at 12, the drop is seen at 14.
    serving, paid = reactive([100.0] * 10 + [450.0] * 2 + [100.0] * 12, baseline)
    raised, seen_low = 12, 14
    lowered = max(seen_low, raised + cooldown_steps)
    np.testing.assert_array_equal(paid[raised:lowered], 5)
    np.testing.assert_array_equal(paid[lowered:], 1)
    np.testing.assert_array_equal(serving[lowered:], 1)  # scale-in is immediate
    assert (serving[raised], serving[raised + 1]) == (1, 5)  # a warm-up after the raise


def test_reactive_headroom_and_clamps() -> None:
    roomy = ReactiveBaseline(name="r20", headroom=0.2, delay=FIVE_MIN)
    _, paid = reactive([450.0] * 6, roomy)
    assert paid[-1] == math.ceil(450 / (100 * 0.8))
    _, clamped = reactive([450.0] * 6, roomy, max_units=4)
    assert clamped[-1] == 4
    _, low = reactive([0.0] * 6, roomy)
    assert low[-1] == POLICY.min_units


# ------------------------------------------------------------------------ daemon replay


def step_series(
    jump_at: dt.datetime, *, before: float = 100.0, after: float = 500.0
) -> pd.DataFrame:
    """``before`` requests/s until ``jump_at``, then ``after`` for a day."""
    ds = pd.date_range(START, jump_at + DAY, freq=FIVE_MIN, inclusive="left")
    y = np.where(ds >= pd.Timestamp(jump_at), after, before)
    return pd.DataFrame({"ds": ds, "y": y.astype(float)})


def useless(horizon: dt.timedelta) -> Candidates:
    """A forecast of 1 request/s: only the observed floor can raise capacity."""

    def one(ds: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        return np.ones(len(ds)), np.ones(len(ds))

    def fit(history: pd.DataFrame, cutoff: dt.datetime) -> dict[str, Forecast]:
        return {"m": made_forecast(cutoff, horizon, one)}

    return fit


DAEMON_POLICY = replace(POLICY, capacity_per_unit=100.0, observed_headroom=0.2)


@pytest.mark.parametrize(
    ("collect_delay", "warmup"),
    [(dt.timedelta(minutes=10), FIVE_MIN), (FIVE_MIN, dt.timedelta(minutes=15))],
)
def test_daemon_replay_raises_on_observed_demand_and_serves_after_warmup(
    collect_delay: dt.timedelta, warmup: dt.timedelta
) -> None:
    cutoff = START + 8 * DAY
    jump = cutoff + 2 * HOUR
    series = step_series(jump)
    result = run_backtest(
        series,
        config(
            [cutoff],
            policy=DAEMON_POLICY,
            models=("m",),
            replay="daemon",
            collect_delay=collect_delay,
            warmup=warmup,
        ),
        useless(6 * HOUR),
    )
    low = units_for(100 * 1.2, 100.0)  # the observed floor with observed_headroom 0.2
    high = units_for(500 * 1.2, 100.0)
    assert (low, high) == (2, 6)
    schedule = result.schedule.set_index("ts")
    serves = pd.Timestamp(jump + collect_delay + warmup)
    before = schedule.index < serves
    assert schedule.loc[before, "units"].iloc[-1] == low
    assert (schedule.loc[~before, "units"] == high).all()
    under = (schedule["units"] * 100 < schedule["demand"]).mean()
    assert approach(result, "forescale").under_share == pytest.approx(under)
    assert under == pytest.approx((collect_delay + warmup) / (6 * HOUR))


def test_daemon_replay_pays_for_a_raise_from_the_moment_it_is_applied() -> None:
    cutoff = START + 8 * DAY
    jump = cutoff + 2 * HOUR
    collect_delay, warmup = dt.timedelta(minutes=10), dt.timedelta(minutes=15)
    result = run_backtest(
        step_series(jump),
        config(
            [cutoff],
            policy=DAEMON_POLICY,
            models=("m",),
            replay="daemon",
            collect_delay=collect_delay,
            warmup=warmup,
        ),
        useless(6 * HOUR),
    )
    applied = jump + collect_delay
    assert column_at(result, "units", applied) == 2
    assert column_at(result, "paid_forescale", applied) == 6
    paid = result.schedule["paid_forescale"].to_numpy()
    assert approach(result, "forescale").unit_hours == pytest.approx(paid.sum() * 5 / 60)
    assert (paid >= result.schedule["units"].to_numpy()).all()


def test_daemon_replay_never_goes_below_the_observed_floor() -> None:
    cutoff = START + 8 * DAY
    horizon = 6 * HOUR
    series = weekly_series(9, noise=0.1, seed=6)
    series["y"] *= 5  # 500 .. 900 requests/s in the fold

    def falling(history: pd.DataFrame, c: dt.datetime) -> dict[str, Forecast]:
        # Right for the first hour, then far too low.
        def shape(ds: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
            y = np.where(ds < pd.Timestamp(c + HOUR), 5 * demand_at(ds), 50.0)
            return y, y * 1.1

        return {"m": made_forecast(c, horizon, shape)}

    policy = replace(DAEMON_POLICY, stabilization=dt.timedelta(0))
    collect_delay, warmup = dt.timedelta(minutes=10), FIVE_MIN
    daemon = run_backtest(
        series,
        config(
            [cutoff],
            policy=policy,
            models=("m",),
            replay="daemon",
            collect_delay=collect_delay,
            warmup=warmup,
        ),
        falling,
    )
    ts = pd.DatetimeIndex(daemon.schedule["ts"])
    floor = np.array(
        [units_for(v * 1.2, 100.0) for v in lookup(series, ts - pd.Timedelta(collect_delay))]
    )
    # A lower is immediate; a raise serves a warm-up later: serving units are at least the
    # floor of every step of the last warm-up.
    lag = warmup // FIVE_MIN
    bound = np.array([floor[max(i - lag, 0) : i + 1].min() for i in range(len(floor))])
    units = daemon.schedule["units"].to_numpy()
    assert (units >= bound).all()

    # The forecast alone (one plan at the cutoff) drops far below that floor.
    once = run_backtest(
        series, config([cutoff], policy=policy, models=("m",), replay="cutoff"), falling
    )
    assert (once.schedule["units"].to_numpy() < floor).mean() > 0.5


def test_daemon_replay_raises_lead_time_before_a_forecast_peak() -> None:
    cutoff = START + 8 * DAY
    jump = cutoff + 2 * HOUR
    series = step_series(jump)
    # the level was reached once before (the day before), so it is under the credible
    # ceiling: a forecast of a level history never saw is capped (test_ceiling.py)
    before = (series["ds"] >= pd.Timestamp(jump - DAY)) & (
        series["ds"] < pd.Timestamp(jump - DAY + HOUR)
    )
    series.loc[before, "y"] = 500.0

    def right(history: pd.DataFrame, c: dt.datetime) -> dict[str, Forecast]:
        def truth(ds: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
            return lookup(series, ds), lookup(series, ds)

        return {"m": made_forecast(c, 6 * HOUR, truth)}

    warmup = FIVE_MIN
    result = run_backtest(
        series,
        config([cutoff], policy=DAEMON_POLICY, models=("m",), replay="daemon", warmup=warmup),
        right,
    )
    schedule = result.schedule.set_index("ts")
    serves = pd.Timestamp(jump - POLICY.lead_time + warmup)
    assert schedule.loc[schedule.index < serves, "units"].iloc[-1] < 5
    assert (schedule.loc[schedule.index >= serves, "units"] >= 5).all()
    assert approach(result, "forescale").under_share == 0.0


def test_daemon_replay_lifts_the_forecast_while_the_demand_runs_above_it() -> None:
    """A day 30 % busier than its forecast (right shape, wrong level): after the first
    hour the band ahead is lifted by the hour's ratio, so the afternoon ramp is met ahead
    of time, where the observed floor alone trails it (forecaster.lift)."""
    cutoff = START + 8 * DAY
    series = weekly_series(9)
    series["y"] *= 1.3  # the week before was as busy: its peak is the lift's limit

    def level(history: pd.DataFrame, c: dt.datetime) -> dict[str, Forecast]:
        def shape(ds: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
            return demand_at(ds), demand_at(ds)

        return {"m": made_forecast(c, DAY, shape)}

    policy = replace(DAEMON_POLICY, capacity_per_unit=10.0, observed_headroom=0.0)

    def run(max_lift: float) -> BacktestResult:
        return run_backtest(
            series,
            config(
                [cutoff],
                horizon=DAY,
                policy=replace(policy, max_lift=max_lift),
                models=("m",),
                replay="daemon",
            ),
            level,
        )

    plain, lifted = run(1.0), run(1.5)
    short_plain = approach(plain, "forescale").under_share
    short_lifted = approach(lifted, "forescale").under_share
    assert short_lifted < short_plain / 2, (short_lifted, short_plain)
    [fold] = lifted.folds
    assert fold.lifted_steps > 0 and fold.most_lift == pytest.approx(1.3)
    assert plain.folds[0].lifted_steps == 0 and plain.folds[0].most_lift == 1.0
    [note] = [n for n in lifted.notes if "lifted the band" in n]
    assert note.startswith("the demand ran above the forecast and lifted the band ahead on 1 of 1")
    assert note.endswith("by at most 30%; max_lift 1.5)")
    assert not any("lifted the band" in n for n in plain.notes)

    # after the first hour (and the collect delay) the lifted band is the truth: the plan
    # pays exactly what a forecast that knew the level pays, and never more
    def knew(history: pd.DataFrame, c: dt.datetime) -> dict[str, Forecast]:
        def shape(ds: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
            return 1.3 * demand_at(ds), 1.3 * demand_at(ds)

        return {"m": made_forecast(c, DAY, shape)}

    right = run_backtest(
        series,
        config([cutoff], horizon=DAY, policy=policy, models=("m",), replay="daemon"),
        knew,
    )
    paid = lifted.schedule["paid_forescale"].to_numpy()
    paid_right = right.schedule["paid_forescale"].to_numpy()
    later = pd.DatetimeIndex(lifted.schedule["ts"]) >= pd.Timestamp(cutoff + 2 * HOUR)
    assert (paid[later] == paid_right[later]).all()
    assert (paid <= paid_right).all()


def _allowed(limit: StepLimit, start: int) -> float:
    """Units a window starting at ``start`` may move under a percent limit (inf: none)."""
    if limit.percent is None:
        return math.inf
    return max(1, math.floor(start * limit.percent / 100))


@pytest.mark.parametrize(
    ("before", "after", "up", "down"),
    [
        (2000.0, 100.0, StepLimit(), StepLimit(percent=25)),
        (100.0, 2000.0, StepLimit(percent=50), StepLimit()),
    ],
    ids=["lower", "raise"],
)
def test_daemon_replay_keeps_the_step_limit_in_every_period_across_replans(
    before: float, after: float, up: StepLimit, down: StepLimit
) -> None:
    """The replay plans every 5 minutes; each plan remembers what it applied in the last
    step_period, so two changes 5 minutes apart share one window's limit."""
    cutoff = START + 8 * DAY
    jump = cutoff + 2 * HOUR
    # step_period 15 min: 3 sim steps
    policy = replace(DAEMON_POLICY, max_step_up=up, max_step_down=down)
    result = run_backtest(
        step_series(jump, before=before, after=after),
        config([cutoff], policy=policy, models=("m",), replay="daemon"),
        useless(6 * HOUR),
    )
    paid = [int(u) for u in result.schedule["paid_forescale"]]
    assert (paid[0], paid[-1]) == (units_for(before * 1.2, 100.0), units_for(after * 1.2, 100.0))
    moves = assert_step_limits_per_period(paid, policy)
    assert len(moves) >= 2  # it still gets there, one limited move per window


def assert_step_limits_per_period(paid: list[int], policy: CapacityPolicy) -> list[int]:
    """Every window of step_period (3 sim steps) keeps the percent limits of the units in
    force just before it; returns the steps where the units change."""
    window = policy.step_period // FIVE_MIN
    assert window == 3
    for i in range(1, len(paid)):
        start = paid[i - 1]  # in force just before the window [ts[i], ts[i] + 15 min)
        for level in paid[i : i + window]:
            assert level - start <= _allowed(policy.max_step_up, start), paid[i - 1 : i + window]
            assert start - level <= _allowed(policy.max_step_down, start), paid[i - 1 : i + window]
    moves = [i for i in range(1, len(paid)) if paid[i] != paid[i - 1]]
    assert all(b - a >= window for a, b in zip(moves, moves[1:], strict=False)), moves
    return moves


def test_daemon_replay_carries_its_memory_into_a_contiguous_fold() -> None:
    # The drop is seen (collect delay 10 min) at the last step of the first fold: 24 -> 18
    # there, and the second fold's first plans still share that lower's window. (No lead
    # time: the fold's last rows need no demand after the horizon to lower.)
    first = START + 8 * DAY
    second = first + 6 * HOUR
    zero = dt.timedelta(0)
    policy = replace(
        DAEMON_POLICY, max_step_down=StepLimit(percent=25), stabilization=zero, lead_time=zero
    )
    result = run_backtest(
        step_series(second - QUARTER, before=2000.0, after=100.0),
        config([first, second], policy=policy, models=("m",), replay="daemon"),
        useless(6 * HOUR),
    )
    paid = [int(u) for u in result.schedule["paid_forescale"]]
    boundary = int(6 * HOUR / FIVE_MIN)
    assert paid[boundary - 2 : boundary + 4] == [24, 18, 18, 18, 14, 14]
    assert_step_limits_per_period(paid, policy)


# ------------------------------------------------------------------------ cutoff replay


def test_cutoff_replay_uses_nothing_after_the_cutoff() -> None:
    series = weekly_series(10, noise=0.05, seed=7)
    cutoffs = [START + 8 * DAY, START + 9 * DAY]
    changed = series.copy()
    after = changed["ds"] >= pd.Timestamp(cutoffs[-1])
    changed.loc[after, "y"] *= 3
    candidates = naive_candidates(6 * HOUR)

    runs = {
        replay: [
            run_backtest(s, config(cutoffs, replay=replay), candidates) for s in (series, changed)
        ]
        for replay in ("cutoff", "daemon")
    }
    same, tripled = runs["cutoff"]
    for column in ("units", "units_seasonal_naive_x1_2", "forecast", "upper"):
        np.testing.assert_array_equal(same.schedule[column], tripled.schedule[column])
    assert not np.array_equal(same.schedule["demand"], tripled.schedule["demand"])
    assert approach(tripled, "forescale").under_share > approach(same, "forescale").under_share
    last = tripled.folds[-1].metrics[0]
    assert last.smape > same.folds[-1].metrics[0].smape
    # The daemon replay does see collected demand: its units follow the change.
    daemon_same, daemon_tripled = runs["daemon"]
    assert not np.array_equal(daemon_same.schedule["units"], daemon_tripled.schedule["units"])


def test_units_carry_over_between_contiguous_folds() -> None:
    horizon = 6 * HOUR
    series = weekly_series(9)
    first = START + 8 * DAY
    never = replace(POLICY, capacity_per_unit=100.0, scale_in="never")

    def peak_then_quiet(history: pd.DataFrame, c: dt.datetime) -> dict[str, Forecast]:
        level = 500.0 if c == first else 50.0
        return {"m": made_forecast(c, horizon, lambda ds: (np.full(len(ds), level),) * 2)}

    for gap, carried in ((dt.timedelta(0), True), (HOUR, False)):
        cutoffs = [first, first + horizon + gap]
        result = run_backtest(series, config(cutoffs, policy=never, models=("m",)), peak_then_quiet)
        second = result.schedule[result.schedule["fold"] == 1]["units"]
        observed = float(lookup(series, pd.DatetimeIndex([cutoffs[1] - FIVE_MIN]))[0])
        expected = 5 if carried else units_for(observed, 100.0)
        assert (second == expected).all(), gap


# ------------------------------------------------------------------- other baselines


def test_the_seasonal_naive_baseline_plans_on_last_weeks_demand_times_1_2() -> None:
    series = weekly_series(15)  # a perfectly weekly series ...
    cutoff = START + 14 * DAY  # a Monday
    horizon = 12 * HOUR
    doubled = series["ds"] >= pd.Timestamp(cutoff)
    series.loc[doubled, "y"] *= 2  # ... until the fold, where demand doubles
    result = run_backtest(series, config([cutoff], horizon=horizon), naive_candidates(horizon))

    schedule = result.schedule
    ts = pd.DatetimeIndex(schedule["ts"])
    week_earlier = lookup(series, ts - pd.Timedelta(WEEK))
    needs = np.array([units_for(1.2 * v, 10.0) for v in week_earlier])
    units = schedule["units_seasonal_naive_x1_2"].to_numpy()
    assert (units >= needs).all()
    assert units.max() == needs.max()
    assert approach(result, "seasonal_naive_x1_2").under_share > 0.5


def test_dominated_by_is_pareto_dominance() -> None:
    """At least as good on both counts and strictly better on one (the earlier "strictly
    better on both" missed equal under-provisioning at a fraction of the cost)."""

    def outcome(name: str, under: float, hours: float) -> ApproachOutcome:
        return ApproachOutcome(
            name=name, steps=10, under_share=under, unit_hours=hours, vs_static=1.0, mean_units=1.0
        )

    result = BacktestResult(
        folds=(),
        metrics=(),
        approaches=(
            outcome("forescale", 0.1, 100.0),
            outcome("cheaper_but_worse", 0.2, 90.0),
            outcome("better_but_dearer", 0.0, 110.0),
            outcome("tied_cost_safer", 0.0, 100.0),
            outcome("tied_under_cheaper", 0.1, 20.0),
            outcome("identical", 0.1, 100.0),
            outcome("dominates", 0.05, 80.0),
        ),
        schedule=pd.DataFrame(),
        points=pd.DataFrame(),
        capacity_per_unit=1.0,
        capacity_per_unit_source="given",
        sim_step=FIVE_MIN,
        horizon=DAY,
    )
    assert dominated_by(result) == ["tied_cost_safer", "tied_under_cheaper", "dominates"]
    assert dominated_by(result, "dominates") == []
    assert dominated_by(result, "identical") == dominated_by(result)  # a tie is no domination


# ------------------------------------------------------------------- folds and the record


def test_a_fold_whose_candidates_fail_is_reported_and_not_scored() -> None:
    series = weekly_series(11, noise=0.05, seed=8)
    cutoffs = [START + k * DAY for k in (8, 9, 10)]
    naive = naive_candidates(6 * HOUR)

    def flaky(history: pd.DataFrame, cutoff: dt.datetime) -> dict[str, Forecast]:
        if cutoff == cutoffs[1]:
            raise ForecastError("CmdStan crashed")
        return naive(history, cutoff)

    result = run_backtest(series, config(cutoffs), flaky)
    failed = result.folds[1]
    assert (failed.model, failed.error) == (None, "ForecastError: CmdStan crashed")
    assert failed.metrics == ()
    assert [f.error for f in (result.folds[0], result.folds[2])] == [None, None]

    schedule = result.schedule
    in_failed = schedule["fold"] == 1
    assert in_failed.sum() == 72
    assert schedule.loc[in_failed, ["units", "forecast", "upper"]].isna().all().all()
    assert schedule.loc[~in_failed, "units"].notna().all()
    assert all(a.steps == 2 * 72 for a in result.approaches)
    assert set(result.points["fold"]) == {0, 2}
    assert all(m.steps == 2 * 72 for m in result.metrics)
    assert "1 of 3 folds failed to fit and are not scored" in result.notes


def test_a_fold_without_any_fitted_model_is_reported() -> None:
    series = weekly_series(9)
    result = run_backtest(series, config([START + 8 * DAY]), lambda history, cutoff: {})
    assert result.folds[0].error == "no model could be fitted"
    assert result.schedule["units"].isna().all()


def test_candidates_outside_the_configured_models_are_reported_clearly() -> None:
    series = weekly_series(9)
    candidates = naive_candidates(6 * HOUR, name="mine")
    try:
        result = run_backtest(series, config([START + 8 * DAY]), candidates)
    except ForecastError as exc:
        assert "mine" in str(exc) or "seasonal_naive" in str(exc)
    else:
        assert result.folds[0].error is not None


def test_the_record_of_earlier_folds_chooses_the_model() -> None:
    series = weekly_series(12)
    cutoffs = [START + k * DAY for k in (9, 10, 11)]
    horizon = 6 * HOUR

    def candidates(history: pd.DataFrame, cutoff: dt.datetime) -> dict[str, Forecast]:
        def primary(ds: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
            y = lookup(series, ds)  # the truth, but off by half every other step
            return np.where(np.arange(len(ds)) % 2 == 0, 0.5 * y, 1.5 * y), 3 * y

        def challenger(ds: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
            y = lookup(series, ds)
            return y, 1.05 * y

        return {
            "primary": made_forecast(cutoff, horizon, primary, model="primary"),
            "challenger": made_forecast(cutoff, horizon, challenger, model="challenger"),
        }

    result = run_backtest(
        series, config(cutoffs, models=("primary", "challenger"), record_folds=0), candidates
    )
    first, *later = result.folds
    assert first.model == "primary"
    assert "too short" in first.reason
    assert [f.model for f in later] == ["challenger", "challenger"]
    assert all(f.band_factor == 1.0 for f in later)
    by_name = {m.model: m for m in result.metrics}
    assert by_name["challenger"].smape == 0.0
    assert by_name["challenger"].coverage == 1.0
    assert by_name["primary"].smape > 0
    # forescale's metrics are those of the model it planned with, fold by fold.
    assert [m.model for m in first.metrics] == ["forescale", "primary", "challenger"]
    assert first.metrics[0].smape == first.metrics[1].smape > 0
    assert later[0].metrics[0].smape == 0.0

    seeded = run_backtest(
        series, config(cutoffs, models=("primary", "challenger"), record_folds=3), candidates
    )
    assert [f.model for f in seeded.folds] == ["challenger"] * 3


# ------------------------------------------------- capacity: planner_frame, refined, floor


def test_refined_repeats_each_step_onto_the_finer_grid() -> None:
    frame = pd.DataFrame(
        {"ds": pd.date_range(START, periods=2, freq=HOUR), "yhat_upper": [100.0, 250.0]}
    )
    fine = refined(frame, HOUR, FIVE_MIN)
    pd.testing.assert_index_equal(
        pd.DatetimeIndex(fine["ds"]),
        pd.date_range(START, periods=24, freq=FIVE_MIN),
        check_names=False,
    )
    np.testing.assert_array_equal(fine["yhat_upper"], [100.0] * 12 + [250.0] * 12)
    # Not a divisor, or not finer: unchanged.
    assert refined(frame, HOUR, dt.timedelta(minutes=7)) is frame
    assert refined(frame, HOUR, HOUR) is frame


def hourly_forecast(values: list[float], start: dt.datetime) -> Forecast:
    return known_forecast(start, values, HOUR)


def test_an_hourly_forecast_is_planned_in_five_minute_slots() -> None:
    noon = START + 12 * HOUR
    fc = hourly_forecast([100, 100, 500, 500], noon)  # 500 from 14:00
    observed = pd.DataFrame({"ds": pd.date_range(noon - HOUR, noon, freq=FIVE_MIN), "y": 100.0})
    policy = replace(POLICY, capacity_per_unit=100.0, stabilization=dt.timedelta(0))

    def first_raise(frame: pd.DataFrame) -> tuple[dt.datetime, int]:
        plan = plan_capacity(frame, policy=policy, current_units=1, now=noon, observed_demand=100.0)
        step = next(s for s in plan.steps if s.direction == "raise")
        return step.at, step.units

    fine = planner_frame(fc, observed, QUARTER)
    assert first_raise(fine) == (noon + 2 * HOUR - QUARTER, 5)  # 13:45
    coarse = planner_frame(fc, observed, QUARTER, plan_step=None)
    assert first_raise(coarse) == (noon + HOUR, 5)  # a whole hour early


def test_planner_frame_puts_the_observed_peak_of_each_step_before_the_forecast() -> None:
    """Past rows are the observed maximum of each forecast step (hourly here), spread over
    its 5-minute slots like the forecast rows, so samples coarser than 5 minutes (30-min
    data) leave no empty slots; a step without samples stays unknown (NaN)."""
    noon = START + 12 * HOUR
    fc = hourly_forecast([300, 400], noon)
    ds = pd.date_range(noon - 3 * HOUR, noon + HOUR, freq=MINUTE, inclusive="left")
    y = np.arange(len(ds), dtype=float)
    observed = pd.DataFrame({"ds": ds, "y": y})
    gap = (ds >= pd.Timestamp(noon - 3 * HOUR)) & (ds < pd.Timestamp(noon - 2 * HOUR))
    observed = observed[~gap]  # one hour without samples
    lookback = dt.timedelta(minutes=90)
    frame = planner_frame(fc, observed, lookback)

    past = frame[frame["ds"] < pd.Timestamp(noon)]
    hours = int(np.ceil(lookback / HOUR)) + 1  # 3 whole forecast steps
    expected_ds = pd.date_range(noon - hours * HOUR, noon, freq=FIVE_MIN, inclusive="left")
    pd.testing.assert_index_equal(pd.DatetimeIndex(past["ds"]), expected_ds, check_names=False)
    by_minute = pd.Series(y, index=ds)
    expected = []
    for t in expected_ds:
        hour = t.floor("1h")
        inside = by_minute[(by_minute.index >= hour) & (by_minute.index < hour + HOUR)]
        expected.append(np.nan if hour == noon - 3 * HOUR else inside.max())
    np.testing.assert_array_equal(past["yhat_upper"], expected)
    future = frame[frame["ds"] >= pd.Timestamp(noon)]
    assert len(future) == 24  # the forecast in 5-minute slots; later observations unused
    np.testing.assert_array_equal(future["yhat_upper"], [300.0] * 12 + [400.0] * 12)


def test_observed_headroom_raises_the_reactive_floor() -> None:
    noon = START + 12 * HOUR
    frame = pd.DataFrame(
        {"ds": pd.date_range(noon, periods=4, freq=HOUR), "yhat_upper": [50.0] * 4}
    )
    policy = replace(POLICY, capacity_per_unit=100.0)

    def first_units(headroom: float) -> int:
        plan = plan_capacity(
            frame,
            policy=replace(policy, observed_headroom=headroom),
            current_units=1,
            now=noon,
            observed_demand=190.0,
        )
        return int(plan.desired["units"].iloc[0])

    assert first_units(0.0) == units_for(190.0, 100.0) == 2
    assert first_units(0.2) == units_for(190.0 * 1.2, 100.0) == 3


@pytest.mark.parametrize("unit_tolerance", [0.0, 0.3])
def test_the_record_serves_each_step_as_the_daemon_replay_does(unit_tolerance: float) -> None:
    """The record judges a forecast by the capacity the daemon would have had in force:
    the plan's lead time and scale-in hold, whole units (rounded with the policy's unit
    tolerance), the floor seen after the collect delay and serving after the warm-up
    (accuracy.Serving). Replayed on a noisy week with a forecast 10 % low, it agrees with
    the daemon replay step by step on almost every step, and on the under-provisioned
    share and the cost."""
    series = weekly_series(6, noise=0.08, seed=4)
    cutoffs = [START + k * DAY for k in (2, 3, 4)]

    def low(cutoff: dt.datetime) -> dict[str, Forecast]:
        def shape(ds: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
            return 0.85 * demand_at(ds), 0.9 * demand_at(ds)

        return {"m": made_forecast(cutoff, DAY, shape)}

    policy = replace(
        POLICY,
        observed_headroom=0.05,
        stabilization=QUARTER,
        scale_in_tolerance=0.0,
        unit_tolerance=unit_tolerance,
    )
    cfg = config(
        cutoffs,
        horizon=DAY,
        models=("m",),
        replay="daemon",
        policy=policy,
        min_record_steps=10**9,  # no choice: the band as it is, every fold
    )
    result = run_backtest(series, cfg, lambda history, cutoff: low(cutoff))
    schedule = result.schedule
    serving = Serving.of(replace(policy, capacity_per_unit=result.capacity_per_unit))
    demand = series.set_index("ds")["y"]
    seen = Floor(headroom=0.05, delay=cfg.collect_delay)
    replayed: list[np.ndarray] = []
    for _, fold in schedule.groupby("fold"):
        held = serving.held(fold["upper"].to_numpy(dtype=float), FIVE_MIN)
        # the floor also sees the demand before the fold
        before = demand[demand.index < fold["ts"].iloc[0]]
        ds = pd.concat([before.index.to_series(), fold["ts"]], ignore_index=True)
        actual = np.concatenate([before.to_numpy(), fold["demand"].to_numpy(dtype=float)])
        # a raise the floor asks for serves after the warm-up, a lower at once
        # held over the scale-in stabilisation, as the planner holds it
        warm = replace(seen, delay=seen.delay + cfg.warmup)
        floor = np.minimum(
            observed_floor(ds, actual, seen, serving.hold),
            observed_floor(ds, actual, warm, serving.hold),
        )
        floor = floor[len(before) :]
        replayed.append(serving.served(held, floor, None))
    model = np.concatenate(replayed)
    daemon = schedule["units"].to_numpy(dtype=float) * result.capacity_per_unit
    actual = schedule["demand"].to_numpy(dtype=float)
    assert np.mean(actual > daemon * (1 + 1e-9)) > 0.03  # the forecast is short at times
    assert np.mean(np.isclose(model, daemon)) > 0.98
    assert abs(np.mean(actual > model) - np.mean(actual > daemon * (1 + 1e-9))) < 0.005
    assert model.sum() == pytest.approx(daemon.sum(), rel=0.005)


def test_paying_more_than_the_static_peak_is_explained() -> None:
    """The static peak is sized in hindsight on the evaluated days; a forecast sized on an
    earlier, higher regime pays more, and the report says why, with the numbers."""
    series = weekly_series(6)
    early = series["ds"] < pd.Timestamp(START + 2 * DAY)
    series.loc[early, "y"] *= 3  # the first two days were three times busier

    def hold_the_peak(history: pd.DataFrame, cutoff: dt.datetime) -> dict[str, Forecast]:
        high = float(history["y"].max())
        return {"m": made_forecast(cutoff, DAY, lambda ds: (np.full(len(ds), high),) * 2)}

    cfg = config([START + k * DAY for k in (3, 4)], horizon=DAY, models=("m",))
    result = run_backtest(series, cfg, hold_the_peak)
    [note] = [n for n in result.notes if n.startswith("forescale paid")]
    own = next(a for a in result.approaches if a.name == "forescale")
    assert own.vs_static > 2.5
    assert f"forescale paid {own.vs_static:.2f}x the static peak" in note
    assert "on 100.0% of the evaluated steps" in note
    assert (
        "peaked at 540 on 2024-03-04 (54 units), 3.00x the evaluated days' peak 180 (18 units)"
        in note
    )
    # the history's own peak is within the credible ceiling: nothing was capped
    assert all(f.ceiling is None for f in result.folds)
    assert not [n for n in result.notes if n.startswith("the credible ceiling capped")]
    calm = run_backtest(weekly_series(6), cfg, hold_the_peak)  # the same peak all along
    assert next(a for a in calm.approaches if a.name == "forescale").vs_static == 1.0
    assert not [n for n in calm.notes if n.startswith("forescale paid")]


def test_simulated_demand_is_interpolated_only_between_neighbouring_samples() -> None:
    """An 18-hour gap in a 30-minute series was filled with a straight line, and the
    capacity outcomes were scored against that invented demand."""
    from forescale.forecaster.backtest import _sim_demand

    ds = pd.date_range("2024-01-01", periods=96, freq="30min", tz="UTC")
    y = np.arange(96, dtype=float)
    y[20:56] = np.nan  # 10:00 .. 27:30 never observed
    series = pd.DataFrame({"ds": ds, "y": y})
    start = ds[0].to_pydatetime()
    demand = _sim_demand(
        series,
        dt.timedelta(minutes=30),
        dt.timedelta(minutes=5),
        start,
        start + dt.timedelta(hours=48),
    )
    values = pd.Series(demand["y"].to_numpy(), index=pd.DatetimeIndex(demand["ds"]))
    assert values[ds[1] + pd.Timedelta(minutes=15)] == pytest.approx(1.5)  # between two samples
    assert values[ds[19]] == 19 and values[ds[56]] == 56  # the samples around the gap
    gap = values[(values.index > ds[19]) & (values.index < ds[56])]
    assert len(gap) == 36 * 6 + 5 and gap.isna().all()
