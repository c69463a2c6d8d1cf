"""The credible ceiling: a forecast never plans more than the history justifies."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from forescale.forecaster.capacity import plan_capacity
from forescale.forecaster.ceiling import Ceiling, capped, credible_ceiling, saturated_at
from forescale.forecaster.types import CapacityPolicy, EventEffect, Forecast

NOW = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=5)


def history(values: list[float]) -> pd.DataFrame:
    ds = pd.date_range(NOW - STEP * len(values), periods=len(values), freq=STEP)
    return pd.DataFrame({"ds": ds, "y": values})


def forecast(upper: list[float], *, effects: tuple[EventEffect, ...] = ()) -> Forecast:
    ds = pd.date_range(NOW, periods=len(upper), freq=STEP)
    up = np.array(upper, dtype=float)
    return Forecast(
        frame=pd.DataFrame({"ds": ds, "yhat": up / 2, "yhat_lower": up / 4, "yhat_upper": up}),
        components=(),
        resolution=STEP,
        interval_width=0.9,
        fitted_at=NOW,
        history_end=NOW,
        event_effects=effects,
    )


def test_the_ceiling_is_the_fitted_peak_times_the_allowance_at_most_the_source_max() -> None:
    ceiling = credible_ceiling(history([0.1, 40.0, 0.2, np.nan]), allowance=1.25)
    assert ceiling == Ceiling(value=50.0, peak=40.0, allowance=1.25)
    percent = credible_ceiling(history([0.1, 99.0]), allowance=1.25, max_value=100.0)
    assert percent is not None and percent.value == 100.0
    assert "maximum 100" in percent.describe()
    assert credible_ceiling(history([0.0, np.nan]), allowance=1.25) is None
    only_max = credible_ceiling(history([np.nan]), allowance=1.25, max_value=100.0)
    assert only_max is not None and only_max.value == 100.0


def test_an_exploding_band_is_capped_and_said_so() -> None:
    ceiling = Ceiling(value=125.0, peak=100.0, allowance=1.25)
    out = capped(forecast([90.0, 75_677.0, 130.0]), ceiling)
    assert out.frame["yhat_upper"].tolist() == [90.0, 125.0, 125.0]
    assert (out.frame["yhat"] <= 125.0).all() and out.ceiling == 125.0
    [note] = out.notes
    assert "capped at the credible ceiling 125" in note and "peak 100 × 1.25" in note
    assert "band exploded (upper edge up to 75,677" in note and "2 of 3 steps" in note


def test_nothing_above_the_ceiling_changes_nothing_but_the_ceiling() -> None:
    ceiling = Ceiling(value=125.0, peak=100.0, allowance=1.25)
    before = forecast([90.0, 120.0])
    out = capped(before, ceiling)
    assert out.notes == () and out.ceiling == 125.0
    pd.testing.assert_frame_equal(out.frame, before.frame)
    assert capped(before, None) is before


def test_an_expected_uplift_event_raises_the_ceiling_in_its_window_only() -> None:
    sale = EventEffect(
        name="sale",
        start=NOW + STEP,
        end=NOW + 2 * STEP,
        effect=0.8,
        source="expected_uplift",
    )
    learned = EventEffect(name="old", start=NOW, end=NOW + STEP, effect=5.0, source="learned")
    ceiling = Ceiling(value=100.0, peak=80.0, allowance=1.25, max_value=None)
    out = capped(forecast([500.0, 500.0, 500.0], effects=(sale, learned)), ceiling)
    # only an expected uplift (an event history has not seen) is a stated reason
    assert out.frame["yhat_upper"].tolist() == [100.0, 180.0, 100.0]
    capped_pct = capped(
        forecast([500.0, 500.0], effects=(sale,)),
        Ceiling(value=90.0, peak=72.0, allowance=1.25, max_value=90.0),
    )
    assert capped_pct.frame["yhat_upper"].max() == 90.0  # never above the source's max


POLICY = CapacityPolicy(
    capacity_per_unit=10.0, min_units=1, max_units=100, observed_headroom=0.3, scale_in="never"
)


@pytest.mark.parametrize(
    ("observed", "cap", "units"),
    [
        (90.0, None, 12),  # 90 x 1.3 = 117 -> 12 units
        (90.0, 100.0, 10),  # below the ceiling: the floor asks at most for the ceiling
        (110.0, 100.0, 15),  # broken through: the floor follows with its headroom
    ],
)
def test_the_observed_floor_stays_under_the_ceiling_until_demand_breaks_it(
    observed: float, cap: float | None, units: int
) -> None:
    frame = pd.DataFrame({"ds": pd.date_range(NOW, periods=6, freq=STEP), "yhat_upper": [10.0] * 6})
    plan = plan_capacity(
        frame,
        policy=POLICY,
        current_units=1,
        now=NOW,
        observed_demand=observed,
        floor_cap=cap,
    )
    assert int(plan.desired["units"].iloc[0]) == units


def clipped_cpu(days: int = 3, seed: int = 0) -> np.ndarray:
    """A CPU percentage on 5-minute steps whose daily busy hours run into 100 % and stay."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * 288) / 288
    raw = 70 + 45 * np.sin(2 * np.pi * t) + rng.normal(0, 3, t.size)
    return np.round(np.minimum(raw, 100.0), 3)


def test_a_history_clipped_at_a_level_is_saturated_there() -> None:
    cpu = clipped_cpu()
    level, runs = saturated_at(cpu) or (None, 0)
    assert level == 100.0 and runs >= 3  # one plateau a day, none merged
    ceiling = credible_ceiling(history(list(cpu)), allowance=1.1)
    assert ceiling is not None
    assert (ceiling.value, ceiling.max_value, ceiling.saturated_runs) == (100.0, 100.0, runs)
    assert f"saturates at, 100: reached exactly in {runs} separate runs" in ceiling.describe()
    # a band above it is capped at the level, not at the peak x the allowance (110)
    out = capped(forecast([90.0, 180.0]), ceiling)
    assert out.frame["yhat_upper"].tolist() == [90.0, 100.0]
    assert "saturates at, 100" in out.notes[0]
    # a configured maximum is the user's word: nothing is inferred over it
    given = credible_ceiling(history(list(cpu)), allowance=1.1, max_value=120.0)
    assert given is not None and given.saturated_runs is None
    assert given.value == pytest.approx(110.0)


def test_counts_and_smooth_cycles_are_not_taken_for_saturation() -> None:
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 8, 4000).astype(float)  # whole numbers tie at their maximum
    assert (counts == counts.max()).sum() > 100
    assert saturated_at(counts) is None
    ceiling = credible_ceiling(history(list(counts)), allowance=1.1)
    assert ceiling is not None and ceiling.max_value is None
    assert ceiling.value == pytest.approx(counts.max() * 1.1)
    # a perfectly periodic signal touches its maximum once a period: too few samples
    t = np.arange(9 * 7 * 288)
    weekly = 50 + 20 * np.sin(2 * np.pi * t / (7 * 288)) + 5 * np.sin(2 * np.pi * t / 288)
    assert saturated_at(np.round(weekly, 6)) is None
    # a level reached in only a few runs is a coincidence, not a clip
    few = clipped_cpu(days=3)
    assert saturated_at(np.where(few == 100.0, 99.0, few)) is None
    assert saturated_at(np.array([])) is None
