"""Shadow mode's record: minutes short and unit-hours of forescale's capacity in force,
beside simulated reactive target tracking, and the promotion verdict at its boundaries."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from forescale.forecaster.shadow import PromotionBar, ShadowScore, judge, score
from forescale.forecaster.types import CapacityPolicy

T0 = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=5)
POLICY = CapacityPolicy(capacity_per_unit=100.0, min_units=1, max_units=50)
BAR = PromotionBar(after=dt.timedelta(days=1), max_under=0.005, max_cost_ratio=0.9)


def demand(values: list[float]) -> pd.DataFrame:
    ds = pd.date_range(T0, periods=len(values), freq="5min", tz="UTC")
    return pd.DataFrame({"ds": ds, "y": np.asarray(values, dtype=float)})


def test_minutes_short_and_unit_hours_follow_the_changes() -> None:
    # 12 steps (1 h): 450 until step 6, then 950; 5 units, raised to 8 at step 4 (20 min)
    frame = demand([450.0] * 6 + [950.0] * 6)
    s = score(
        frame,
        [(T0 + 4 * STEP, 8)],
        5,
        POLICY,
        start=T0,
        end=T0 + 12 * STEP,
        step=STEP,
    )
    assert s.minutes == 60
    assert s.under_minutes == 6 * 5  # 8 units serve 800 < 950 for the last six steps
    assert s.unit_hours == pytest.approx((5 * 4 + 8 * 8) / 12)
    assert s.under_share == pytest.approx(0.5)


def test_samples_outside_the_window_and_gaps_are_not_scored() -> None:
    frame = demand([100.0, float("nan"), 100.0, 100.0])
    s = score(frame, [], 1, POLICY, start=T0 + STEP, end=T0 + 3 * STEP, step=STEP)
    assert s.minutes == 5  # one finite sample inside [start, end)


def test_the_comparison_is_target_tracking_on_the_same_demand() -> None:
    frame = demand([400.0] * 288)  # a flat day
    s = score(frame, [], 5, POLICY, start=T0, end=T0 + dt.timedelta(days=1), step=STEP)
    assert "80%" in s.comparison
    # target tracking at 80 %: ceil(400 / 80) = 5 units, from its first decision on
    assert s.comparison_unit_hours == pytest.approx(5 * 24, rel=0.02)
    assert s.cost_ratio == pytest.approx(1.0, rel=0.02)


def record(*, under: float, cost: float) -> ShadowScore:
    minutes = 1440.0
    return ShadowScore(
        start=T0,
        end=T0 + dt.timedelta(days=1),
        minutes=minutes,
        under_minutes=under * minutes,
        unit_hours=cost * 100.0,
        comparison="reactive",
        comparison_unit_hours=100.0,
        comparison_under_minutes=0.0,
    )


@pytest.mark.parametrize(
    ("under", "cost", "covered_h", "qualifies", "breaks", "words"),
    [
        (0.005, 0.9, 24, True, False, "≤ 0.500%"),  # exactly on both bars
        (0.0051, 0.5, 24, False, True, "max_under"),
        (0.0, 0.901, 24, False, True, "max_cost_ratio"),
        (0.0, 0.5, 23.9, False, False, "covers 23.9 h of the 24 h"),
        (0.01, 0.5, 2, False, True, "covers 2.0 h"),
    ],
)
def test_the_verdict_at_the_bars(
    under: float, cost: float, covered_h: float, qualifies: bool, breaks: bool, words: str
) -> None:
    verdict = judge(record(under=under, cost=cost), BAR, covered=dt.timedelta(hours=covered_h))
    assert (verdict.qualifies, verdict.breaks) == (qualifies, breaks)
    assert words in verdict.reason


def test_no_comparison_cost_never_qualifies() -> None:
    free = ShadowScore(
        start=T0,
        end=T0 + dt.timedelta(days=1),
        minutes=1440,
        under_minutes=0,
        unit_hours=0,
        comparison="reactive",
        comparison_unit_hours=0,
        comparison_under_minutes=0,
    )
    assert free.cost_ratio is None
    assert not judge(free, BAR, covered=dt.timedelta(days=2)).qualifies


def test_the_capacity_actually_in_force_is_the_comparison_when_observed() -> None:
    frame = demand([450.0] * 6 + [950.0] * 6)
    observed = pd.DataFrame(
        {"ds": [pd.Timestamp(T0 - STEP), pd.Timestamp(T0 + 6 * STEP)], "y": [6.0, 9.0]}
    )
    s = score(frame, [], 10, POLICY, start=T0, end=T0 + 12 * STEP, step=STEP, in_force=observed)
    assert s.comparison == "the capacity actually in force (capacity_source)"
    # 6 units for 30 min, 9 for 30 min; 9 x 100 < 950 for the last six steps
    assert s.comparison_unit_hours == pytest.approx(6 * 0.5 + 9 * 0.5)
    assert s.comparison_under_minutes == 30
    late = observed.assign(ds=observed["ds"] + 2 * STEP)  # starts after the window does
    fallback = score(frame, [], 10, POLICY, start=T0, end=T0 + 12 * STEP, step=STEP, in_force=late)
    assert "target tracking" in fallback.comparison


def test_the_recent_record_rows_and_their_cost() -> None:
    from forescale.forecaster.shadow import record_rows

    rows = record_rows(record(under=0.01, cost=0.8), 12, per_unit_hour=0.5)
    assert [r.approach for r in rows][2] == "static peak (12 units)"
    assert rows[0].under_share == pytest.approx(0.01) and rows[0].unit_hours == 80.0
    assert rows[1].unit_hours == 100.0 and rows[1].cost == 50.0
    assert rows[2].under_share == 0 and rows[2].unit_hours == 12 * 24  # a day at the peak
    assert rows[2].cost == 12 * 24 * 0.5
    assert all(r.cost is None for r in record_rows(record(under=0, cost=1), 3))
