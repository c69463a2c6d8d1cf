"""Table-driven tests for the pure capacity planner (forecaster/capacity.py).

Forecasts are tiny hand-built grids on 2024-05-01 (UTC); capacity_per_unit is 100, so a
demand of 812 needs 9 units. Expected schedules are written as (at "HH:MM", from, to).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from forescale.errors import PlanError
from forescale.forecaster.capacity import (
    NO_SCALE_IN_NOTE,
    floor_hold,
    held_demand,
    held_newest,
    plan_capacity,
    step_limit,
    units_for,
)
from forescale.forecaster.types import CapacityPlan, CapacityPolicy, StepLimit

UTC = dt.UTC
DAY = dt.datetime(2024, 5, 1, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)
QUARTER = dt.timedelta(minutes=15)
FIVE = dt.timedelta(minutes=5)
NAN = math.nan

# Each table row starts from this policy and overrides what it is about.
BASE = CapacityPolicy(
    capacity_per_unit=100.0,
    min_units=1,
    max_units=20,
    lead_time=dt.timedelta(0),
    stabilization=dt.timedelta(0),
    scale_in_tolerance=0.0,
)


def t(hhmm: str) -> dt.datetime:
    hours, minutes = (int(p) for p in hhmm.split(":"))
    return DAY.replace(hour=hours, minute=minutes)


def frame(start: str, values: Sequence[float], step: dt.timedelta = HOUR) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ds": pd.date_range(t(start), periods=len(values), freq=step),
            "yhat_upper": [float(v) for v in values],
        }
    )


def changes(plan: CapacityPlan) -> tuple[tuple[str, int, int], ...]:
    return tuple((s.at.strftime("%H:%M"), s.from_units, s.units) for s in plan.steps)


def assert_steps_match_desired(plan: CapacityPlan) -> None:
    """Replaying the steps from current_units gives the desired series, slot by slot."""
    units = plan.current_units
    steps = list(plan.steps)
    for ds, want in zip(plan.desired["ds"], plan.desired["units"], strict=True):
        slot_start = ds.to_pydatetime()
        while steps and steps[0].at <= max(slot_start, plan.now):
            step = steps.pop(0)
            assert step.from_units == units
            units = step.units
        assert units == want, f"at {slot_start}: steps give {units}, desired {want}"
    assert not steps, "steps left after the last desired slot"


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    values: tuple[float, ...]
    expected: tuple[tuple[str, int, int], ...]
    start: str = "12:00"
    step: dt.timedelta = HOUR
    now: str = "12:00"
    policy: dict[str, Any] = dataclasses.field(default_factory=dict)
    current: int = 3
    observed: float | None = 300.0
    fresh: bool = True
    constraints: tuple[tuple[str, str], ...] = ()  # (step at "HH:MM", constraint)
    notes: tuple[str, ...] = ()  # substrings that must appear in plan.notes


PEAK_15M = (300,) * 4 + (812,) * 4 + (300,) * 8  # 15:00..18:45, 812 over [16:00, 17:00)

CASES = [
    # -- unit tolerance -------------------------------------------------------------------
    Case(
        id="unit-tolerance-plans-a-demand-just-over-a-boundary-at-the-whole-number",
        values=(200,) * 2 + (802,) + (200,) * 2,  # 8.02 units' worth at 14:00
        policy={"unit_tolerance": 0.05},
        current=2,
        observed=200,
        expected=(("14:00", 2, 8), ("15:00", 8, 2)),
    ),
    Case(
        id="unit-tolerance-exceeded-rounds-up",
        values=(200,) * 2 + (806,) + (200,) * 2,  # 8.06 units' worth: past 5 % of a unit
        policy={"unit_tolerance": 0.05},
        current=2,
        observed=200,
        expected=(("14:00", 2, 9), ("15:00", 9, 2)),
    ),
    Case(
        id="unit-tolerance-holds-for-the-observed-floor",
        values=(200,) * 4,
        policy={"unit_tolerance": 0.05},
        current=2,
        observed=802,  # the floor: 8.02 units' worth (no headroom in BASE)
        expected=(("12:00", 2, 8), ("13:00", 8, 2)),
    ),
    # -- lead time ------------------------------------------------------------------------
    Case(
        id="lead-15m-raise-lands-exactly-15m-before-demand",
        start="15:00",
        now="15:00",
        step=QUARTER,
        values=(300,) * 4 + (812,) * 2 + (300,) * 6,
        policy={"lead_time": QUARTER},
        expected=(("15:45", 3, 9), ("16:30", 9, 3)),
    ),
    Case(
        id="lead-1h-on-hourly-grid",
        values=(200,) * 4 + (900,) + (200,) * 4,
        policy={"lead_time": HOUR},
        current=2,
        observed=200,
        expected=(("15:00", 2, 9), ("17:00", 9, 2)),
    ),
    Case(
        id="lead-90m-not-a-multiple-rounds-raise-down-to-grid",
        values=(200,) * 4 + (900,) + (200,) * 4,
        policy={"lead_time": dt.timedelta(minutes=90)},
        current=2,
        observed=200,
        expected=(("14:00", 2, 9), ("17:00", 9, 2)),
    ),
    Case(
        id="raise-due-before-now-is-clamped-to-now",
        start="15:00",
        now="15:20",
        step=QUARTER,
        values=(300,) * 4 + (812,) * 2 + (300,) * 8,
        policy={"lead_time": HOUR},
        expected=(("15:20", 3, 9), ("16:30", 9, 3)),
    ),
    Case(
        id="forecast-starting-after-now-plans-from-now",
        now="10:00",
        values=(300, 900, 300, 300, 300),
        policy={"lead_time": HOUR},
        expected=(("12:00", 3, 9), ("14:00", 9, 3)),
    ),
    # -- clamps ---------------------------------------------------------------------------
    Case(
        id="clamped-to-max-units",
        values=(200, 200, 812, 200, 200),
        policy={"max_units": 6},
        current=2,
        observed=200,
        expected=(("14:00", 2, 6), ("15:00", 6, 2)),
        constraints=(("14:00", "clamped to max_units"),),
    ),
    Case(
        id="raised-to-min-units",
        values=(100,) * 4,
        policy={"min_units": 4},
        current=2,
        observed=100,
        expected=(("12:00", 2, 4),),
        constraints=(("12:00", "raised to min_units"),),
    ),
    # -- step limits ----------------------------------------------------------------------
    Case(
        id="step-up-units-ramp-starts-earlier",
        values=(300,) * 4 + (900,) + (300,) * 3,
        policy={"max_step_up": StepLimit(units=2)},
        expected=(("14:00", 3, 5), ("15:00", 5, 7), ("16:00", 7, 9), ("17:00", 9, 3)),
        constraints=(("14:00", "step-limited: max_step_up 2 units"),),
    ),
    Case(
        id="step-up-percent-ramp-starts-earlier",
        values=(400,) * 4 + (900,) + (400,) * 3,
        policy={"max_step_up": StepLimit(percent=50)},
        current=4,
        observed=400,
        # 6 + floor(50% of 6) = 9 and 4 + floor(50% of 4) = 6: the ramp starts at 15:00.
        expected=(("15:00", 4, 6), ("16:00", 6, 9), ("17:00", 9, 4)),
    ),
    Case(
        id="step-up-unreachable-from-now-is-noted",
        now="15:00",
        values=(300,) * 4 + (900,) * 2 + (300,) * 3,
        policy={"max_step_up": StepLimit(units=2)},
        expected=(("15:00", 3, 5), ("16:00", 5, 7), ("17:00", 7, 9), ("18:00", 9, 3)),
        constraints=(("16:00", "step-limited: 9 needed at 16:00Z, 7 reachable"),),
        notes=("step-limited: 9 needed at 16:00Z, 7 reachable",),
    ),
    Case(
        id="step-down-units-several-smaller-lowers",
        values=(900, 900) + (300,) * 5,
        policy={"max_step_down": StepLimit(units=2)},
        current=9,
        observed=900,
        expected=(("14:00", 9, 7), ("15:00", 7, 5), ("16:00", 5, 3)),
        constraints=(("14:00", "step-limited: max_step_down 2 units"),),
    ),
    Case(
        id="step-down-percent",
        values=(900, 900) + (300,) * 5,
        policy={"max_step_down": StepLimit(percent=50)},
        current=9,
        observed=900,
        # HPA rounding: ceil(9 * 50 %) = 5 stay (9 -> 4 would be -56 %), then 5 -> 3.
        expected=(("14:00", 9, 5), ("15:00", 5, 3)),
    ),
    Case(
        id="step-down-percent-rounds-like-hpa",
        values=(900, 900) + (300,) * 5,
        policy={"max_step_down": StepLimit(percent=25)},
        current=9,
        observed=900,
        # ceil(9 * 0.75) = 7, not 6; then one unit per step (floor(25 % of 7) = 1).
        expected=(
            ("14:00", 9, 7),
            ("15:00", 7, 6),
            ("16:00", 6, 5),
            ("17:00", 5, 4),
            ("18:00", 4, 3),
        ),
        constraints=(("14:00", "step-limited: max_step_down 25%"),),
    ),
    Case(
        id="step-up-percent-rounds-down-so-the-ramp-starts-earlier",
        values=(900, 1200, 1200, 1200),
        policy={"max_step_up": StepLimit(percent=25)},
        current=9,
        observed=900,
        # +25 % of 9 allows 11 (floor 2.25), not 12: 12 at 13:00 needs 10 at 12:00.
        expected=(("12:00", 9, 10), ("13:00", 10, 12)),
    ),
    Case(
        id="step-percent-small-group-still-moves-one-unit",
        values=(200, 300, 100, 100),
        policy={"max_step_up": StepLimit(percent=25), "max_step_down": StepLimit(percent=25)},
        current=2,
        observed=200,
        expected=(("13:00", 2, 3), ("14:00", 3, 2), ("15:00", 2, 1)),
    ),
    # -- step limits per step_period (default 15 min) --------------------------------------
    Case(
        # The demo's bug: 13 -> 9 -> 6 within five minutes (-54 %). Each 15-minute window
        # may lose at most 25 % of the units at its start.
        id="step-down-percent-holds-per-period-not-per-change",
        step=FIVE,
        values=(1300,) + (400,) * 11,
        policy={"max_step_down": StepLimit(percent=25)},
        current=13,
        observed=1300,
        expected=(("12:05", 13, 10), ("12:20", 10, 8), ("12:35", 8, 6), ("12:50", 6, 5)),
        constraints=(("12:05", "step-limited: max_step_down 25%"),),
    ),
    Case(
        id="step-period-of-one-slot-limits-each-change-only",
        step=FIVE,
        values=(1300,) + (400,) * 11,
        policy={"max_step_down": StepLimit(percent=25), "step_period": FIVE},
        current=13,
        observed=1300,
        expected=(
            ("12:05", 13, 10),
            ("12:10", 10, 8),
            ("12:15", 8, 6),
            ("12:20", 6, 5),
            ("12:25", 5, 4),
        ),
    ),
    Case(
        # now is off the grid: the lower at 12:02 counts in the window up to 12:17, so the
        # slots at 12:05, 12:10 and 12:15 may not lower again.
        id="step-period-counts-from-a-change-made-at-now",
        step=FIVE,
        now="12:02",
        values=(400,) * 12,
        policy={"max_step_down": StepLimit(percent=25)},
        current=13,
        observed=400,
        expected=(("12:02", 13, 10), ("12:20", 10, 8), ("12:35", 8, 6), ("12:50", 6, 5)),
    ),
    Case(
        # +2 units per 15 minutes: 3 -> 9 takes three periods, so the ramp starts at 12:30
        # and 9 is in force when the demand arrives at 13:00.
        id="step-up-units-per-period-ramp-starts-earlier",
        step=FIVE,
        values=(300,) * 12 + (900,) * 3 + (300,) * 6,
        policy={"max_step_up": StepLimit(units=2)},
        expected=(("12:30", 3, 5), ("12:45", 5, 7), ("13:00", 7, 9), ("13:15", 9, 3)),
        constraints=(("12:30", "step-limited: max_step_up 2 units"),),
    ),
    Case(
        id="step-up-per-period-ramp-with-lead-time-complete-before-lead",
        step=FIVE,
        values=(300,) * 12 + (900,) * 3 + (300,) * 6,
        policy={"max_step_up": StepLimit(units=2), "lead_time": QUARTER},
        expected=(("12:15", 3, 5), ("12:30", 5, 7), ("12:45", 7, 9), ("13:15", 9, 3)),
    ),
    Case(
        id="step-down-ramp-continues-under-tolerance",
        values=(1000, 1000) + (700,) * 5,
        policy={"max_step_down": StepLimit(units=1), "scale_in_tolerance": 0.3},
        current=10,
        observed=1000,
        # 10 -> 7 frees 30 %: started; 9 -> 7 alone would be under 30 % but continues.
        expected=(("14:00", 10, 9), ("15:00", 9, 8), ("16:00", 8, 7)),
    ),
    # -- hysteresis -----------------------------------------------------------------------
    Case(
        id="hysteresis-small-decrease-ignored",
        values=(1900,) * 4,
        policy={"scale_in_tolerance": 0.1},
        current=20,
        observed=1900,
        expected=(),
        notes=("ignored lower 20→19 at 12:00Z",),
    ),
    Case(
        id="hysteresis-decrease-at-tolerance-executed",
        values=(1800,) * 4,
        policy={"scale_in_tolerance": 0.1},
        current=20,
        observed=1800,
        expected=(("12:00", 20, 18),),
    ),
    Case(
        id="hysteresis-larger-decrease-executed",
        values=(1700,) * 4,
        policy={"scale_in_tolerance": 0.1},
        current=20,
        observed=1700,
        expected=(("12:00", 20, 17),),
    ),
    Case(
        id="hysteresis-never-suppresses-a-raise",
        values=(2100,) * 4,
        policy={"scale_in_tolerance": 0.1, "max_units": 30},
        current=20,
        observed=2000,
        expected=(("12:00", 20, 21),),
    ),
    # -- scale-in policy and stabilisation -------------------------------------------------
    Case(
        id="after-peak-lowers-stabilization-after-last-high-step",
        start="15:00",
        now="15:00",
        step=QUARTER,
        values=PEAK_15M,
        policy={"lead_time": QUARTER, "stabilization": HOUR},
        # demand falls at 17:00 (the 16:45 row covers [16:45, 17:00)); +1 h -> 18:00
        expected=(("15:45", 3, 9), ("18:00", 9, 3)),
    ),
    Case(
        # Two peaks with a 2 h dip: a lower at 17:00 (1 h after the first peak) would be
        # raised out of at 17:45 — anti-flap holds 9 through the dip instead.
        id="after-peak-short-dip-between-peaks-is-held-no-flap",
        start="15:00",
        now="15:00",
        step=QUARTER,
        values=(300,) * 4 + (812,) * 4 + (300,) * 8 + (812,) * 4 + (300,) * 12,
        policy={"lead_time": QUARTER, "stabilization": HOUR},
        expected=(("15:45", 3, 9), ("21:00", 9, 3)),  # 2nd peak ends 20:00, +1 h
    ),
    Case(
        id="after-peak-stabilization-not-a-multiple-rounds-up",
        values=(900,) * 3 + (300,) * 5,
        policy={"stabilization": dt.timedelta(minutes=90)},
        current=9,
        observed=900,
        expected=(("17:00", 9, 3),),  # fell at 15:00, +90 min = 16:30 -> next slot 17:00
    ),
    Case(
        id="scale-in-never-keeps-the-peak",
        start="15:00",
        now="15:00",
        step=QUARTER,
        values=PEAK_15M,
        policy={"lead_time": QUARTER, "stabilization": HOUR, "scale_in": "never"},
        expected=(("15:45", 3, 9),),
    ),
    # -- missing data ---------------------------------------------------------------------
    Case(
        id="stale-data-no-lower-raise-kept",
        start="15:00",
        now="15:00",
        step=QUARTER,
        values=PEAK_15M,
        policy={"lead_time": QUARTER, "stabilization": HOUR},
        fresh=False,
        expected=(("15:45", 3, 9),),
        notes=(NO_SCALE_IN_NOTE,),
    ),
    Case(
        id="observed-unknown-no-lower-raise-kept",
        start="15:00",
        now="15:00",
        step=QUARTER,
        values=PEAK_15M,
        policy={"lead_time": QUARTER, "stabilization": HOUR},
        observed=None,
        expected=(("15:45", 3, 9),),
        notes=(NO_SCALE_IN_NOTE,),
    ),
    Case(
        id="without-nan-lower-comes-stabilization-after-the-fall",
        values=(900, 300, 300, 300, 300, 300),
        policy={"stabilization": HOUR},
        current=9,
        observed=900,
        expected=(("14:00", 9, 3),),
    ),
    Case(
        id="nan-row-holds-and-delays-the-lower",
        values=(900, NAN, 300, 300, 300, 300),
        policy={"stabilization": HOUR},
        current=9,
        observed=900,
        expected=(("15:00", 9, 3),),
        notes=("1 forecast row(s) without yhat_upper (NaN), first at 13:00Z",),
    ),
    Case(
        id="nan-rows-never-lower-nor-raise",
        values=(900, NAN, NAN, NAN, NAN),
        current=9,
        observed=900,
        expected=(),
    ),
    # -- reactive floor (observed demand) ---------------------------------------------------
    Case(
        id="low-observed-demand-lets-past-low-forecast-lower-now",
        start="11:00",
        step=QUARTER,
        values=(300,) * 12,
        policy={"lead_time": QUARTER, "stabilization": HOUR},
        current=8,
        observed=300,
        expected=(("12:00", 8, 3),),
    ),
    Case(
        id="forecast-without-past-rows-waits-one-stabilization-window",
        start="12:00",
        step=QUARTER,
        values=(300,) * 12,
        policy={"lead_time": QUARTER, "stabilization": HOUR},
        current=8,
        observed=300,
        expected=(("13:00", 8, 3),),  # before 12:00 the demand is unknown: held at current
    ),
    Case(
        id="no-lower-where-lead-window-runs-past-the-forecast",
        values=(900, 900, 300),
        policy={"lead_time": HOUR},
        current=9,
        observed=900,
        expected=(),  # 14:00 must cover 15:00, which the forecast does not know
    ),
    Case(
        id="observed-demand-floor-holds-units-until-window-ends",
        start="11:00",
        step=QUARTER,
        values=(300,) * 12,
        policy={"lead_time": QUARTER, "stabilization": HOUR},
        current=8,
        observed=800,
        expected=(("13:00", 8, 3),),
    ),
    Case(
        id="observed-demand-floor-raises-now",
        start="11:00",
        step=QUARTER,
        values=(300,) * 12,
        policy={"lead_time": QUARTER, "stabilization": HOUR},
        current=3,
        observed=800,
        expected=(("12:00", 3, 8), ("13:00", 8, 3)),
        constraints=(("12:00", "observed-demand floor"),),
    ),
    Case(
        id="observed-demand-floor-binds-a-lower",
        start="11:00",
        step=QUARTER,
        values=(300,) * 12,
        policy={"lead_time": QUARTER, "stabilization": HOUR},
        current=9,
        observed=800,
        expected=(("12:00", 9, 8), ("13:00", 8, 3)),
        constraints=(("12:00", "observed-demand floor"),),
    ),
    # -- current outside [min, max] -------------------------------------------------------
    Case(
        id="current-above-max-lowered-stepwise-even-when-stale",
        values=(500,) * 5,
        policy={"max_step_down": StepLimit(units=2)},
        current=25,
        observed=500,
        fresh=False,
        expected=(("12:00", 25, 23), ("13:00", 23, 21), ("14:00", 21, 20)),
        constraints=(("12:00", "lowered to max_units"), ("14:00", "lowered to max_units")),
    ),
    Case(
        id="current-below-min-raised-stepwise",
        values=(100,) * 5,
        policy={"min_units": 5, "max_step_up": StepLimit(units=2)},
        current=0,
        observed=100,
        expected=(("12:00", 0, 2), ("13:00", 2, 4), ("14:00", 4, 5)),
        notes=("step-limited: 5 needed at 12:00Z, 2 reachable",),
    ),
]


def _plan_for(case: Case) -> CapacityPlan:
    return plan_capacity(
        frame(case.start, case.values, case.step),
        policy=dataclasses.replace(BASE, **case.policy),
        current_units=case.current,
        now=t(case.now),
        observed_demand=case.observed,
        data_fresh=case.fresh,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_schedule(case: Case) -> None:
    plan = _plan_for(case)
    assert changes(plan) == case.expected
    assert_steps_match_desired(plan)
    by_time = {s.at.strftime("%H:%M"): s for s in plan.steps}
    for at, constraint in case.constraints:
        assert constraint in by_time[at].constraints, by_time[at]
    for note in case.notes:
        assert any(note in n for n in plan.notes), plan.notes
    if not case.notes:
        assert not any("step-limited" in n for n in plan.notes), plan.notes


REASONS = [
    (
        "unit-tolerance-plans-a-demand-just-over-a-boundary-at-the-whole-number",
        0,
        "raise 2→8 at 14:00Z: forecast upper band 802.0 at 14:00Z needs 8 units at 100.0 "
        "per unit (within the unit tolerance, 0.05 of a unit)",
    ),
    (
        "unit-tolerance-holds-for-the-observed-floor",
        0,
        "raise 2→8 at 12:00Z: observed demand 802.0 needs 8 units at 100.0 per unit (within "
        "the unit tolerance, 0.05 of a unit) (reactive floor until 12:00Z)",
    ),
    (
        "unit-tolerance-exceeded-rounds-up",
        0,
        "raise 2→9 at 14:00Z: forecast upper band 806.0 at 14:00Z needs 9 units at 100.0 per unit",
    ),
    (
        "clamped-to-max-units",
        0,
        "raise 2→6 at 14:00Z: forecast upper band 812.0 at 14:00Z needs 9 units at 100.0 "
        "per unit; clamped to max_units 6",
    ),
    (
        "step-up-percent-ramp-starts-earlier",
        0,
        "raise 4→6 at 15:00Z: forecast upper band 900.0 at 16:00Z needs 9 units at 100.0 "
        "per unit; step-limited ramp toward 9 by 16:00Z",
    ),
    (
        "observed-demand-floor-raises-now",
        0,
        "raise 3→8 at 12:00Z: observed demand up to 800.0 in the last 1h needs 8 units at "
        "100.0 per unit "
        "(reactive floor until 13:00Z)",
    ),
    ("raised-to-min-units", 0, "raise 2→4 at 12:00Z: min_units is 4"),
    (
        "observed-demand-floor-binds-a-lower",
        0,
        "lower 9→8 at 12:00Z: demand stayed ≤ 300.0 (needs 3) for the 1h stabilisation "
        "window; held at 8 by observed demand up to 800.0 in the last 1h (reactive floor until "
        "13:00Z)",
    ),
    (
        "step-down-units-several-smaller-lowers",
        0,
        "lower 9→7 at 14:00Z: demand falls to ≤ 300.0 (needs 3) after the peak at 13:00Z; "
        "no stabilisation window; step-limited toward 3",
    ),
    (
        "current-above-max-lowered-stepwise-even-when-stale",
        0,
        "lower 25→23 at 12:00Z: 25 units is above max_units 20; step-limited toward 20",
    ),
]


@pytest.mark.parametrize(
    ("case_id", "index", "reason"), REASONS, ids=[f"{r[0]}-{r[1]}" for r in REASONS]
)
def test_reason(case_id: str, index: int, reason: str) -> None:
    (case,) = [c for c in CASES if c.id == case_id]
    assert _plan_for(case).steps[index].reason == reason


def test_percent_step_limit_is_named_in_constraints() -> None:
    (case,) = [c for c in CASES if c.id == "step-up-percent-ramp-starts-earlier"]
    assert _plan_for(case).steps[0].constraints == ("step-limited: max_step_up 50%",)


def test_desired_frame_starts_at_the_slot_containing_now() -> None:
    plan = plan_capacity(
        frame("15:00", (300,) * 4 + (812,) * 2 + (300,) * 8, QUARTER),
        policy=dataclasses.replace(BASE, lead_time=HOUR),
        current_units=3,
        now=t("15:20"),
        observed_demand=300.0,
    )
    assert list(plan.desired.columns) == ["ds", "units"]
    assert str(plan.desired["ds"].dtype) == "datetime64[ns, UTC]"
    assert plan.desired["units"].dtype == "int64"
    assert plan.desired["ds"].iloc[0] == pd.Timestamp(t("15:15"))
    assert plan.desired["ds"].iloc[-1] == pd.Timestamp(t("18:15"))
    assert plan.desired["units"].tolist() == [9] * 5 + [3] * 8
    assert plan.now == t("15:20")
    assert plan.steps[0].at == t("15:20")  # due at 15:00, clamped to now


def test_raise_and_lower_reasons() -> None:
    plan = plan_capacity(
        frame("15:00", PEAK_15M, QUARTER),
        policy=dataclasses.replace(BASE, lead_time=QUARTER, stabilization=HOUR),
        current_units=3,
        now=t("15:00"),
        observed_demand=300.0,
    )
    up, down = plan.steps
    assert up.direction == "raise"
    assert up.reason == (
        "raise 3→9 at 15:45Z: forecast upper band 812.0 at 16:00Z needs 9 units "
        "at 100.0 per unit; lead time 15m"
    )
    assert (up.serves_at, up.demand, up.constraints) == (t("16:00"), 812.0, ())
    assert down.direction == "lower"
    assert down.reason == (
        "lower 9→3 at 18:00Z: demand stayed ≤ 300.0 (needs 3) for the 1h stabilisation "
        "window after the peak at 16:45Z"
    )
    assert (down.serves_at, down.demand) == (t("18:00"), 300.0)
    assert all(s.at.tzinfo is not None and s.at.utcoffset() == dt.timedelta(0) for s in plan.steps)


def test_shortfall_note_names_the_demand_time_when_lead_applies() -> None:
    plan = plan_capacity(
        frame("12:00", (300,) * 4 + (900,) * 2 + (300,) * 3),
        policy=dataclasses.replace(BASE, lead_time=HOUR, max_step_up=StepLimit(units=2)),
        current_units=3,
        now=t("14:00"),
        observed_demand=300.0,
    )
    assert changes(plan) == (("14:00", 3, 5), ("15:00", 5, 7), ("16:00", 7, 9), ("18:00", 9, 3))
    assert "step-limited: 9 needed at 15:00Z for demand at 16:00Z, 7 reachable" in plan.notes


def test_same_input_same_plan() -> None:
    def run() -> CapacityPlan:
        return plan_capacity(
            frame("15:00", PEAK_15M, QUARTER),
            policy=dataclasses.replace(BASE, lead_time=QUARTER, stabilization=HOUR),
            current_units=3,
            now=t("15:00"),
            observed_demand=300.0,
        )

    first, second = run(), run()
    assert first.steps == second.steps
    assert first.notes == second.notes
    pd.testing.assert_frame_equal(first.desired, second.desired)


# -- validation -----------------------------------------------------------------------------


def _kwargs(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "forecast": frame("12:00", (300,) * 4),
        "policy": BASE,
        "current_units": 3,
        "now": t("12:00"),
        "observed_demand": 300.0,
    }
    kwargs.update(overrides)
    return kwargs


def _policy(**changes: Any) -> CapacityPolicy:
    return dataclasses.replace(BASE, **changes)


_GOOD = frame("12:00", (300,) * 4)

INVALID = [
    ("empty-forecast", _kwargs(forecast=_GOOD.iloc[0:0]), "forecast is empty"),
    ("missing-column", _kwargs(forecast=_GOOD[["ds"]]), "lacks column"),
    (
        "naive-ds",
        _kwargs(forecast=_GOOD.assign(ds=_GOOD["ds"].dt.tz_localize(None))),
        "naive.*tz_localize",
    ),
    (
        "non-utc-ds",
        _kwargs(forecast=_GOOD.assign(ds=_GOOD["ds"].dt.tz_convert("Europe/Paris"))),
        "Europe/Paris.*tz_convert",
    ),
    ("not-datetimes", _kwargs(forecast=_GOOD.assign(ds=range(4))), "UTC datetimes"),
    (
        "irregular-ds",
        _kwargs(forecast=_GOOD.drop(index=2).reset_index(drop=True)),
        "irregular.*rows 1 and 2",
    ),
    ("descending-ds", _kwargs(forecast=_GOOD.iloc[::-1]), "strictly ascending"),
    (
        "duplicate-ds",
        _kwargs(forecast=pd.concat([_GOOD.iloc[:2], _GOOD.iloc[1:]])),
        "strictly ascending",
    ),
    ("single-row", _kwargs(forecast=_GOOD.iloc[:1]), "single row"),
    (
        "infinite-demand",
        _kwargs(forecast=_GOOD.assign(yhat_upper=[300.0, math.inf, 300.0, 300.0])),
        "infinite at row 1",
    ),
    ("capacity-per-unit-zero", _kwargs(policy=_policy(capacity_per_unit=0.0)), "capacity_per"),
    ("capacity-per-unit-negative", _kwargs(policy=_policy(capacity_per_unit=-1.0)), "> 0"),
    ("capacity-per-unit-nan", _kwargs(policy=_policy(capacity_per_unit=math.nan)), "finite"),
    ("capacity-per-unit-inf", _kwargs(policy=_policy(capacity_per_unit=math.inf)), "finite"),
    ("min-above-max", _kwargs(policy=_policy(min_units=5, max_units=4)), "min_units .5."),
    ("min-negative", _kwargs(policy=_policy(min_units=-1)), "min_units must be >= 0"),
    ("current-negative", _kwargs(current_units=-1), "current_units must be >= 0"),
    ("lead-negative", _kwargs(policy=_policy(lead_time=-QUARTER)), "lead_time must be >= 0"),
    (
        "stabilization-negative",
        _kwargs(policy=_policy(stabilization=-QUARTER)),
        "stabilization must be >= 0",
    ),
    ("tolerance-one", _kwargs(policy=_policy(scale_in_tolerance=1.0)), "scale_in_tolerance"),
    ("unit-tolerance-one", _kwargs(policy=_policy(unit_tolerance=1.0)), "unit_tolerance"),
    ("unit-tolerance-negative", _kwargs(policy=_policy(unit_tolerance=-0.1)), "unit_tolerance"),
    ("unit-tolerance-nan", _kwargs(policy=_policy(unit_tolerance=NAN)), "unit_tolerance"),
    ("scale-in-unknown", _kwargs(policy=_policy(scale_in="always")), "scale_in must be"),
    (
        "step-limit-both-fields",
        _kwargs(policy=_policy(max_step_up=StepLimit(units=2, percent=50))),
        "max_step_up: set units or percent, not both",
    ),
    (
        "step-limit-zero-units",
        _kwargs(policy=_policy(max_step_down=StepLimit(units=0))),
        "max_step_down.units must be >= 1",
    ),
    (
        "step-limit-zero-percent",
        _kwargs(policy=_policy(max_step_up=StepLimit(percent=0))),
        "max_step_up.percent",
    ),
    (
        "step-period-zero",
        _kwargs(policy=_policy(step_period=dt.timedelta(0))),
        "policy.step_period must be > 0",
    ),
    (
        "step-period-negative",
        _kwargs(policy=_policy(step_period=-QUARTER)),
        "policy.step_period must be > 0",
    ),
    ("naive-now", _kwargs(now=dt.datetime(2024, 5, 1, 12)), "naive"),  # noqa: DTZ001
    ("observed-nan", _kwargs(observed_demand=math.nan), "pass None"),
    ("forecast-ends-before-now", _kwargs(now=t("16:00")), "forecast ends at"),
    # in_force: the capacity in force before now (current_units is 3, now is 12:00).
    (
        "in-force-last-is-not-current",
        _kwargs(in_force=[(t("11:00"), 3), (t("11:30"), 4)]),
        r"in_force\[1\] ends with 4 units but current_units is 3",
    ),
    (
        "in-force-after-now",
        _kwargs(in_force=[(t("11:00"), 5), (t("12:01"), 3)]),
        r"in_force\[1\] \(2024-05-01T12:01:00\+00:00\) is after now",
    ),
    (
        "in-force-not-ascending",
        _kwargs(in_force=[(t("11:30"), 5), (t("11:00"), 3)]),
        r"in_force\[1\] .* is not after in_force\[0\]",
    ),
    (
        "in-force-duplicate-time",
        _kwargs(in_force=[(t("11:00"), 5), (t("11:00"), 3)]),
        r"in_force\[1\] .* is not after in_force\[0\]",
    ),
    (
        "in-force-naive-time",
        _kwargs(in_force=[(dt.datetime(2024, 5, 1, 11), 3)]),  # noqa: DTZ001
        r"in_force\[0\] since .* is naive",
    ),
    (
        "in-force-not-a-time",
        _kwargs(in_force=[("11:00", 3)]),
        r"in_force\[0\] since must be a datetime",
    ),
    (
        "in-force-negative-units",
        _kwargs(in_force=[(t("11:00"), -1), (t("11:30"), 3)]),
        r"in_force\[0\] units must be an int >= 0, got -1",
    ),
    (
        "in-force-float-units",
        _kwargs(in_force=[(t("11:00"), 3.0)]),
        r"in_force\[0\] units must be an int >= 0, got 3.0",
    ),
    (
        "in-force-bool-units",
        _kwargs(in_force=[(t("11:00"), True)]),
        r"in_force\[0\] units must be an int >= 0, got True",
    ),
    (
        "in-force-one-pair-not-a-list-of-pairs",
        _kwargs(in_force=(t("11:00"), 3)),
        r"in_force\[0\] must be a \(since, units\) pair",
    ),
    ("in-force-a-string", _kwargs(in_force="11:00"), "in_force must be a sequence"),
]


@pytest.mark.parametrize(("kwargs", "match"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_input(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(PlanError, match=match):
        plan_capacity(**kwargs)


def test_now_in_another_zone_is_converted_to_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    plan = plan_capacity(**_kwargs(now=dt.datetime(2024, 5, 1, 14, tzinfo=paris)))
    assert plan.now == t("12:00")
    assert plan.now.tzinfo is UTC


def test_forecast_row_in_the_slot_containing_now_is_still_usable() -> None:
    plan = plan_capacity(**_kwargs(now=t("15:59")))
    assert plan.desired["ds"].tolist() == [pd.Timestamp(t("15:00"))]


# -- units_for and step_limit ----------------------------------------------------------------

UNITS = [
    ("float-noise-above-integer", 10.0000000001, 1.0, 10),
    ("exact", 300.0, 100.0, 3),
    ("just-over", 301.0, 100.0, 4),
    ("half", 10.5, 1.0, 11),
    ("quotient-noise", 0.1 + 0.2, 0.1, 3),  # 3.0000000000000004
    ("tiny-positive-needs-one", 1e-12, 1.0, 1),
    ("zero", 0.0, 100.0, 0),
    ("negative", -5.0, 100.0, 0),
    ("example", 812.0, 100.0, 9),
]


@pytest.mark.parametrize(
    ("demand", "cpu", "expected"), [c[1:] for c in UNITS], ids=[c[0] for c in UNITS]
)
def test_units_for(demand: float, cpu: float, expected: int) -> None:
    assert units_for(demand, cpu) == expected


@pytest.mark.parametrize(
    ("demand", "tolerance", "expected"),
    [
        (2001.0, 0.02, 20),  # 20.01 units' worth: within 2 % of a unit
        (2002.0, 0.02, 20),  # exactly at the tolerance
        (2003.0, 0.02, 21),
        (2000.0, 0.02, 20),
        (1.0, 0.02, 1),  # a tiny demand still needs one unit
        (0.0, 0.02, 0),
        (2001.0, 0.0, 21),
    ],
)
def test_units_for_with_a_unit_tolerance(demand: float, tolerance: float, expected: int) -> None:
    assert units_for(demand, 100.0, tolerance) == expected


@pytest.mark.parametrize(
    ("demand", "cpu", "match"),
    [
        (100.0, 0.0, "capacity_per_unit"),
        (100.0, math.inf, "capacity_per_unit"),
        (math.nan, 100.0, "demand must be a finite"),
        (1e300, 1e-300, "overflows"),
    ],
    ids=["cpu-zero", "cpu-inf", "demand-nan", "overflow"],
)
def test_units_for_rejects(demand: float, cpu: float, match: str) -> None:
    with pytest.raises(PlanError, match=match):
        units_for(demand, cpu)


STEP_LIMITS = [
    ("unlimited", StepLimit(), 9, None),
    ("units", StepLimit(units=3), 9, 3),
    ("percent-rounds-down", StepLimit(percent=50), 9, 4),  # 9 -> 5 (ceil 4.5) or 13 (floor)
    ("percent-25-of-9", StepLimit(percent=25), 9, 2),
    ("percent-one-unit-minimum", StepLimit(percent=25), 2, 1),
    ("percent-float-noise", StepLimit(percent=129.2), 250, 323),  # 322.99999999999994
    ("percent-at-least-one", StepLimit(percent=10), 0, 1),
    ("percent-exact", StepLimit(percent=10), 30, 3),
    ("percent-small", StepLimit(percent=33.3), 3, 1),
]


@pytest.mark.parametrize(
    ("limit", "current", "expected"),
    [c[1:] for c in STEP_LIMITS],
    ids=[c[0] for c in STEP_LIMITS],
)
def test_step_limit(limit: StepLimit, current: int, expected: int | None) -> None:
    assert step_limit(limit, current) == expected


def test_step_limit_rejects_both_fields() -> None:
    with pytest.raises(PlanError, match="not both"):
        step_limit(StepLimit(units=1, percent=10), 5)


# -- properties ------------------------------------------------------------------------------

_limits = st.one_of(
    st.just(StepLimit()),
    st.builds(StepLimit, units=st.integers(1, 5)),
    st.builds(StepLimit, percent=st.sampled_from([10.0, 25.0, 50.0, 100.0])),
)


@st.composite
def _scenario(draw: st.DrawFn) -> dict[str, Any]:
    step = draw(st.sampled_from([QUARTER, HOUR]))
    values = draw(
        st.lists(
            st.one_of(st.just(NAN), st.floats(0, 3000, allow_nan=False)),
            min_size=2,
            max_size=24,
        )
    )
    start = DAY + draw(st.integers(0, 12)) * HOUR
    minute = dt.timedelta(minutes=1)
    now = start + draw(st.integers(-3 * 60, len(values) * (step // minute) - 1)) * minute
    min_units = draw(st.integers(0, 5))
    policy = CapacityPolicy(
        capacity_per_unit=draw(st.sampled_from([50.0, 100.0, 250.0])),
        min_units=min_units,
        max_units=draw(st.integers(min_units, 30)),
        max_step_up=draw(_limits),
        max_step_down=draw(_limits),
        lead_time=draw(st.integers(0, 12)) * QUARTER,
        scale_in=draw(st.sampled_from(["never", "after_peak"])),
        stabilization=draw(st.integers(0, 12)) * QUARTER,
        scale_in_tolerance=draw(st.sampled_from([0.0, 0.1, 0.3])),
    )
    return {
        "forecast": pd.DataFrame(
            {"ds": pd.date_range(start, periods=len(values), freq=step), "yhat_upper": values}
        ),
        "policy": policy,
        "current_units": draw(st.integers(0, 40)),
        "now": now,
        "observed_demand": draw(st.one_of(st.none(), st.floats(0, 3000))),
        "data_fresh": draw(st.booleans()),
    }


@settings(max_examples=300, deadline=None)
@given(_scenario())
def test_plan_properties(scenario: dict[str, Any]) -> None:
    plan = plan_capacity(**scenario)
    policy: CapacityPolicy = scenario["policy"]
    current: int = scenario["current_units"]
    now: dt.datetime = scenario["now"]
    units = plan.desired["units"].tolist()
    assert_steps_match_desired(plan)

    # Within [min, max]; outside only while a step-limited move from current approaches it.
    unlimited = policy.max_step_up == StepLimit() and policy.max_step_down == StepLimit()
    for u in units:
        assert min(policy.min_units, current) <= u <= max(policy.max_units, current)
        if unlimited:
            assert policy.min_units <= u <= policy.max_units
    inside = [policy.min_units <= u <= policy.max_units for u in units]
    assert inside == sorted(inside), "left [min, max] after entering it"

    # Every change respects its step limit, is due at or after now, in time order.
    for s in plan.steps:
        limit = policy.max_step_up if s.direction == "raise" else policy.max_step_down
        allowed = step_limit(limit, s.from_units)
        assert allowed is None or abs(s.units - s.from_units) <= allowed
        assert (s.units > s.from_units) == (s.direction == "raise")
        assert s.at >= now
    ats = [s.at for s in plan.steps]
    assert ats == sorted(set(ats))

    # No scale-in on stale/unknown data or with scale_in="never" (max_units still holds).
    if not scenario["data_fresh"] or scenario["observed_demand"] is None:
        assert NO_SCALE_IN_NOTE in plan.notes
    if (
        not scenario["data_fresh"]
        or scenario["observed_demand"] is None
        or policy.scale_in == "never"
    ):
        assert all(u >= min(current, policy.max_units) for u in units)
        assert all(s.direction == "raise" or s.from_units > policy.max_units for s in plan.steps)

    # Lead time: without a step-up limit, each slot covers every known demand that arrives
    # from its start to lead_time after it.
    if policy.max_step_up == StepLimit():
        forecast = scenario["forecast"]
        step = forecast["ds"].iloc[1] - forecast["ds"].iloc[0]
        for ds, u in zip(plan.desired["ds"], units, strict=True):
            # rows whose [ds, ds + step) meets [slot start, slot start + lead_time]
            meets = (forecast["ds"] <= ds + policy.lead_time) & (forecast["ds"] + step > ds)
            for y in forecast.loc[meets, "yhat_upper"].dropna():
                assert u >= min(policy.max_units, units_for(y, policy.capacity_per_unit))

    # Lowers: only when every row feeding the stabilisation window (slots slot-S .. slot,
    # each looking lead_time ahead) is known and fits in the new units, and never below the
    # observed-demand floor while it lasts. Lowers to max_units are exempt (policy ceiling).
    forecast = scenario["forecast"]
    step = forecast["ds"].iloc[1] - forecast["ds"].iloc[0]
    first = forecast["ds"].iloc[0]
    s_steps = -(-policy.stabilization // step)
    m_steps = -(-policy.lead_time // step)
    observed = scenario["observed_demand"]
    floor_until = now + max(policy.lead_time, policy.stabilization)
    for s in plan.steps:
        if s.direction != "lower" or s.from_units > policy.max_units:
            continue
        slot = first + ((pd.Timestamp(s.at) - first) // step) * step
        lo, hi = slot - s_steps * step, slot + m_steps * step
        assert lo >= first and hi <= forecast["ds"].iloc[-1], "lowered next to unknown rows"
        window = forecast[(forecast["ds"] >= lo) & (forecast["ds"] <= hi)]
        assert not window["yhat_upper"].isna().any(), "lowered across a NaN row"
        for y in window["yhat_upper"]:
            need = units_for(y, policy.capacity_per_unit)
            assert s.units >= min(policy.max_units, max(policy.min_units, need))
        if observed is not None and (slot < floor_until or s.at == now):
            assert s.units >= min(policy.max_units, units_for(observed, policy.capacity_per_unit))


# -- step limits per step_period (property) ---------------------------------------------------

_PERCENTS = (10.0, 25.0, 33.3, 50.0, 100.0, 150.0)

_period_limits = st.one_of(
    st.just(StepLimit()),
    st.builds(StepLimit, units=st.integers(1, 6)),
    st.builds(StepLimit, percent=st.sampled_from(_PERCENTS)),
)


def _allowed(limit: StepLimit, start: int) -> int | None:
    """Units a window starting at ``start`` units may move (None: unlimited), computed
    exactly: percent is floor(start * percent / 100), at least one unit."""
    if limit.units is not None:
        return limit.units
    if limit.percent is not None:
        return max(1, math.floor(start * Fraction(str(limit.percent)) / 100))
    return None


@st.composite
def _demand(draw: st.DrawFn, count: int) -> list[float]:
    """A demand shape: a base level with rectangular peaks, or noise; sometimes NaN rows."""
    if draw(st.integers(0, 2)):
        values = [draw(st.floats(0, 1500))] * count
        for _ in range(draw(st.integers(0, 3))):
            start = draw(st.integers(0, count - 1))
            width = draw(st.integers(1, count))
            height = draw(st.floats(0, 4000))
            for i in range(start, min(count, start + width)):
                values[i] = max(values[i], height)
    else:
        values = draw(st.lists(st.floats(0, 4000), min_size=count, max_size=count))
    for i in draw(st.lists(st.integers(0, count - 1), max_size=2)):
        values[i] = NAN
    return values


@st.composite
def _period_scenario(draw: st.DrawFn) -> dict[str, Any]:
    step = draw(st.sampled_from([FIVE, FIVE, QUARTER, HOUR]))
    count = draw(st.integers(2, 48))
    values = draw(_demand(count))
    start = DAY + draw(st.integers(0, 12)) * HOUR
    minute = dt.timedelta(minutes=1)
    now = start + draw(st.integers(-60, count * (step // minute) - 1)) * minute
    min_units = draw(st.integers(0, 6))
    policy = CapacityPolicy(
        capacity_per_unit=100.0,
        min_units=min_units,
        max_units=draw(st.integers(max(min_units, 1), 40)),
        max_step_up=draw(st.one_of(_period_limits, st.builds(StepLimit, units=st.integers(1, 3)))),
        max_step_down=draw(_period_limits),
        step_period=draw(st.sampled_from([5, 7, 10, 15, 20, 45, 60, 120])) * minute,
        lead_time=draw(st.integers(0, 8)) * FIVE,
        scale_in=draw(st.sampled_from(["never", "after_peak"])),
        stabilization=draw(st.integers(0, 8)) * FIVE,
        scale_in_tolerance=draw(st.sampled_from([0.0, 0.1, 0.3])),
        observed_headroom=draw(st.sampled_from([0.0, 0.3])),
    )
    return {
        "forecast": pd.DataFrame(
            {"ds": pd.date_range(start, periods=count, freq=step), "yhat_upper": values}
        ),
        "policy": policy,
        "current_units": draw(st.one_of(st.integers(0, 45), st.integers(0, 4))),
        "now": now,
        "observed_demand": draw(st.one_of(st.none(), st.floats(0, 4000))),
        "data_fresh": draw(st.booleans()),
    }


def _reachable(plan: CapacityPlan, policy: CapacityPolicy, slot_at: list[dt.datetime]) -> list[int]:
    """The most units each slot can hold, raising as fast as the per-period limits allow
    from current_units (capped at max_units): any plan holds at most this."""
    levels: list[tuple[dt.datetime, int]] = []  # (from when, units), after current
    top: list[int] = []
    prev = plan.current_units
    for at in slot_at:
        # The units in force at some moment of [at - step_period, at) each bound this slot:
        # the level at at - step_period, and every level set after it.
        cut = at - policy.step_period
        earlier = [u for when, u in levels if when <= cut]
        seen = [earlier[-1] if earlier else plan.current_units]
        seen += [u for when, u in levels if when > cut]
        caps = [c + a for c in seen if (a := _allowed(policy.max_step_up, c)) is not None]
        new = max(prev, min([policy.max_units, *caps]))
        if new != prev:
            levels.append((at, new))
        top.append(new)
        prev = new
    return top


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_period_scenario())
def test_step_limits_hold_in_every_period(scenario: dict[str, Any]) -> None:
    plan = plan_capacity(**scenario)
    policy: CapacityPolicy = scenario["policy"]
    current: int = scenario["current_units"]
    now: dt.datetime = scenario["now"]
    assert_steps_match_desired(plan)
    steps = list(plan.steps)

    # Each step rounds like the HPA: down to ceil(from * (1 - p)), up to floor(from *
    # (1 + p)), at least one unit either way; a unit limit is absolute.
    for s in steps:
        up, down = policy.max_step_up, policy.max_step_down
        if s.direction == "raise" and up.percent is not None:
            ceiling = math.floor(s.from_units * (1 + Fraction(str(up.percent)) / 100))
            assert s.units <= max(ceiling, s.from_units + 1), s
        if s.direction == "raise" and up.units is not None:
            assert s.units - s.from_units <= up.units, s
        if s.direction == "lower" and down.percent is not None:
            bottom = math.ceil(s.from_units * (1 - Fraction(str(down.percent)) / 100))
            assert s.units >= min(bottom, s.from_units - 1), s
        if s.direction == "lower" and down.units is not None:
            assert s.from_units - s.units <= down.units, s

    # Every window [t, t + step_period) that starts at now or at a change: every level in
    # force inside it stays within the limits of the units in force just before t.
    def before(t0: dt.datetime) -> int:
        earlier = [s.units for s in steps if s.at < t0]
        return earlier[-1] if earlier else current

    for t0 in [now, *(s.at for s in steps)]:
        start = before(t0)
        inside = [before(t0 + dt.timedelta(microseconds=1))]
        inside += [s.units for s in steps if t0 < s.at < t0 + policy.step_period]
        up_allowed = _allowed(policy.max_step_up, start)
        down_allowed = _allowed(policy.max_step_down, start)
        for level in inside:
            if up_allowed is not None:
                assert level - start <= up_allowed, (t0, start, inside)
            if down_allowed is not None:
                assert start - level <= down_allowed, (t0, start, inside)

    # Bounds: inside [min, max] once reached, and between current and the bounds before.
    units = plan.desired["units"].tolist()
    for u in units:
        assert min(policy.min_units, current) <= u <= max(policy.max_units, current)
    inside_bounds = [policy.min_units <= u <= policy.max_units for u in units]
    assert inside_bounds == sorted(inside_bounds), "left [min, max] after entering it"
    if policy.min_units <= current <= policy.max_units:
        assert all(inside_bounds)

    # Ramps: every slot needs the largest known demand of rows slot .. slot +
    # ceil(lead_time / step), and the observed-demand floor until now + max(lead_time,
    # stabilization) (always in the slot holding now). Whenever raising as fast as the
    # limits allow from now covers every need, the plan covers it too: it started its ramps
    # early enough (and never lowered below a later ramp).
    if current > policy.max_units:
        return
    forecast = scenario["forecast"]
    step = forecast["ds"].iloc[1] - forecast["ds"].iloc[0]
    ahead = -(-policy.lead_time // step) * step
    observed = scenario["observed_demand"]
    floor = (
        units_for(observed * (1 + policy.observed_headroom), policy.capacity_per_unit)
        if observed is not None
        else 0
    )
    floor_until = now + max(policy.lead_time, policy.stabilization)
    slot_at = [max(ds.to_pydatetime(), now) for ds in plan.desired["ds"]]
    needs = []
    for i, ds in enumerate(plan.desired["ds"]):
        rows = forecast[(forecast["ds"] >= ds) & (forecast["ds"] <= ds + ahead)]
        known = [units_for(y, policy.capacity_per_unit) for y in rows["yhat_upper"].dropna()]
        if i == 0 or ds < floor_until:
            known.append(floor)
        needs.append(min(policy.max_units, max([policy.min_units, *known])))
    top = _reachable(plan, policy, slot_at)
    if all(n <= r for n, r in zip(needs, top, strict=True)):
        assert all(u >= n for u, n in zip(units, needs, strict=True)), (needs, units, top)
        assert not any("step-limited" in n for n in plan.notes), plan.notes


# -- memory: the capacity in force before now (in_force) -------------------------------------

DOWN_25 = _policy(max_step_down=StepLimit(percent=25))  # step_period 15 min
UP_2 = _policy(max_step_up=StepLimit(units=2))


def _flat(value: float) -> pd.DataFrame:
    """Five-minute rows from 11:00 to 13:55 at ``value`` requests/s."""
    return frame("11:00", (value,) * 36, step=FIVE)


def test_a_replan_five_minutes_after_a_lower_shares_the_first_lowers_window() -> None:
    # 13 -> 8 at 25 % per 15 minutes: 13 -> 10 now, 10 -> 8 once [12:00, 12:15) has passed.
    first = plan_capacity(
        _flat(800), policy=DOWN_25, current_units=13, now=t("12:00"), observed_demand=800.0
    )
    assert changes(first) == (("12:00", 13, 10), ("12:15", 10, 8))

    # The daemon plans again at 12:05 with 10 in force. Without memory it lowers at once:
    # 13 -> 8 within five minutes (-38 %), past the 25 % limit of 13.
    replan: dict[str, Any] = {
        "forecast": _flat(800),
        "policy": DOWN_25,
        "current_units": 10,
        "now": t("12:05"),
        "observed_demand": 800.0,
    }
    assert changes(plan_capacity(**replan)) == (("12:05", 10, 8),)

    # With memory the window [12:00, 12:15) still holds 10 (25 % of 13 is 3 units): the
    # lower waits until 12:15, as in the first plan.
    remembered = plan_capacity(**replan, in_force=[(t("11:00"), 13), (t("12:00"), 10)])
    assert changes(remembered) == (("12:15", 10, 8),)
    assert remembered.desired["units"].tolist()[:3] == [10, 10, 8]  # 12:05, 12:10, 12:15
    assert_steps_match_desired(remembered)


def test_a_second_raise_right_after_a_raise_waits_for_the_first_raises_window() -> None:
    first = plan_capacity(
        _flat(1000), policy=UP_2, current_units=4, now=t("12:00"), observed_demand=1000.0
    )
    assert changes(first) == (("12:00", 4, 6), ("12:15", 6, 8), ("12:30", 8, 10))

    replan: dict[str, Any] = {
        "forecast": _flat(1000),
        "policy": UP_2,
        "current_units": 6,
        "now": t("12:02"),
        "observed_demand": 1000.0,
    }
    # Without memory: 4 -> 8 within two minutes, twice the 2-unit limit.
    assert changes(plan_capacity(**replan)) == (("12:02", 6, 8), ("12:20", 8, 10))
    # With memory: the same schedule as if the 12:00 raise had been part of this plan.
    remembered = plan_capacity(**replan, in_force=[(t("11:00"), 4), (t("12:00"), 6)])
    assert changes(remembered) == (("12:15", 6, 8), ("12:30", 8, 10))
    assert any("step-limited: 10 needed at 12:02Z, 6 reachable" in n for n in remembered.notes)
    assert_steps_match_desired(remembered)


def test_no_memory_or_a_flat_history_plans_as_before() -> None:
    kwargs: dict[str, Any] = {
        "forecast": _flat(800),
        "policy": DOWN_25,
        "current_units": 13,
        "now": t("12:05"),
        "observed_demand": 800.0,
    }
    expected = (("12:05", 13, 10), ("12:20", 10, 8))
    assert changes(plan_capacity(**kwargs)) == expected
    assert changes(plan_capacity(**kwargs, in_force=())) == expected
    # 13 in force since 12:04 only: the first entry's units count as in force before it.
    assert changes(plan_capacity(**kwargs, in_force=[(t("12:04"), 13)])) == expected
    # A change at exactly now counts as a change at now.
    assert changes(plan_capacity(**kwargs, in_force=[(t("11:00"), 20), (t("12:05"), 13)])) == (
        ("12:20", 13, 10),
        ("12:35", 10, 8),
    )


def test_only_the_history_inside_the_step_period_matters() -> None:
    kwargs: dict[str, Any] = {
        "forecast": _flat(800),
        "policy": DOWN_25,
        "current_units": 10,
        "now": t("12:05"),
        "observed_demand": 800.0,
    }
    recent = [(t("11:00"), 13), (t("12:00"), 10)]
    expected = changes(plan_capacity(**kwargs, in_force=recent))
    older = [(t("09:00"), 20), (t("10:00"), 2), *recent]
    assert changes(plan_capacity(**kwargs, in_force=older)) == expected
    # A history that starts inside the window: its first units count as in force before it.
    assert changes(plan_capacity(**kwargs, in_force=[(t("11:59"), 13), (t("12:00"), 10)])) == (
        ("12:15", 10, 8),
    )
    # The lower at 11:45 has left every window that holds now: 10 -> 8 at once.
    assert changes(plan_capacity(**kwargs, in_force=[(t("11:00"), 13), (t("11:50"), 10)])) == (
        ("12:05", 10, 8),
    )


def test_a_history_that_broke_a_limit_is_held_not_reversed() -> None:
    # A manual raise 4 -> 10 at 11:55 broke the 2-unit limit. The window since then allows
    # at most 6, but the plan never lowers to repair it: it holds 10 until the window has
    # passed, then raises on.
    raised = plan_capacity(
        _flat(1200),
        policy=UP_2,
        current_units=10,
        now=t("12:00"),
        observed_demand=1200.0,
        in_force=[(t("11:00"), 4), (t("11:55"), 10)],
    )
    assert changes(raised) == (("12:10", 10, 12),)
    assert_steps_match_desired(raised)

    down_2 = _policy(max_step_down=StepLimit(units=2))
    lowered = plan_capacity(
        _flat(200),
        policy=down_2,
        current_units=4,
        now=t("12:00"),
        observed_demand=200.0,
        in_force=[(t("11:00"), 10), (t("11:55"), 4)],
    )
    assert changes(lowered) == (("12:10", 4, 2),)


@st.composite
def _chain_scenario(draw: st.DrawFn) -> dict[str, Any]:
    """A daemon's run: a policy, a forecast and the plans' times (1-15 minutes apart)."""
    minute = dt.timedelta(minutes=1)
    gaps = draw(st.lists(st.integers(1, 15), min_size=1, max_size=12))
    step = draw(st.sampled_from([FIVE, FIVE, QUARTER]))
    start = DAY + draw(st.integers(1, 8)) * HOUR
    first = start - HOUR  # rows before the first plan: the stabilisation look-back
    count = (2 * HOUR + sum(gaps) * minute) // step + 1
    min_units = draw(st.integers(0, 4))
    policy = CapacityPolicy(
        capacity_per_unit=100.0,
        min_units=min_units,
        max_units=draw(st.integers(max(min_units, 1), 40)),
        max_step_up=draw(_period_limits),
        max_step_down=draw(_period_limits),
        step_period=draw(st.sampled_from([5, 7, 10, 15, 20, 45, 60])) * minute,
        lead_time=draw(st.integers(0, 6)) * FIVE,
        scale_in=draw(st.sampled_from(["never", "after_peak", "after_peak"])),
        stabilization=draw(st.integers(0, 6)) * FIVE,
        scale_in_tolerance=draw(st.sampled_from([0.0, 0.1, 0.3])),
        observed_headroom=draw(st.sampled_from([0.0, 0.3])),
    )
    plans = len(gaps) + 1
    return {
        "forecast": pd.DataFrame(
            {
                "ds": pd.date_range(first, periods=count, freq=step),
                "yhat_upper": draw(_demand(count)),
            }
        ),
        "policy": policy,
        "current_units": draw(st.integers(0, 45)),
        "times": [start + sum(gaps[:i]) * minute for i in range(plans)],
        "observed": draw(st.lists(st.none() | st.floats(0, 4000), min_size=plans, max_size=plans)),
        "fresh": draw(st.lists(st.booleans(), min_size=plans, max_size=plans)),
    }


@settings(max_examples=250, deadline=None, derandomize=True)
@given(_chain_scenario())
def test_chained_plans_with_memory_keep_the_limit_in_every_period(
    scenario: dict[str, Any],
) -> None:
    """The daemon's loop: plan, apply the units due now, wait 1-15 minutes, plan again
    with the capacity applied so far as ``in_force``. The capacity path that results keeps
    every window's limit, measured from the units at its start."""
    policy: CapacityPolicy = scenario["policy"]
    current: int = scenario["current_units"]
    times: list[dt.datetime] = scenario["times"]
    # (since, units): the initial units have been in force for a whole period.
    path: list[tuple[dt.datetime, int]] = [(times[0] - policy.step_period, current)]
    for now, observed, fresh in zip(times, scenario["observed"], scenario["fresh"], strict=True):
        plan = plan_capacity(
            scenario["forecast"],
            policy=policy,
            current_units=current,
            now=now,
            observed_demand=observed,
            data_fresh=fresh,
            in_force=path,
        )
        due = int(plan.desired["units"].iloc[0])
        if due != current:
            path.append((now, due))
            current = due

    def before(t0: dt.datetime) -> int:
        return [u for since, u in path if since < t0][-1]

    for t0 in [times[0], *(since for since, _ in path[1:])]:
        start = before(t0)
        inside = [before(t0 + dt.timedelta(microseconds=1))]
        inside += [u for since, u in path if t0 < since < t0 + policy.step_period]
        up_allowed = _allowed(policy.max_step_up, start)
        down_allowed = _allowed(policy.max_step_down, start)
        for level in inside:
            if up_allowed is not None:
                assert level - start <= up_allowed, (t0, start, path)
            if down_allowed is not None:
                assert start - level <= down_allowed, (t0, start, path)


def test_held_demand_is_the_highest_known_sample_of_the_window() -> None:
    ds = pd.date_range(t("12:00"), periods=8, freq="5min")
    y = np.array([1.0, 5.0, 2.0, NAN, 1.0, 1.0, 1.0, 1.0])
    held = held_demand(ds, y, QUARTER)
    # 12:20 still sees 12:05's 5 (the window's start counts); 12:15 is unknown
    assert np.array_equal(held, [1, 5, 5, NAN, 5, 2, 1, 1], equal_nan=True)
    assert np.array_equal(held_demand(ds, y, dt.timedelta(0)), y, equal_nan=True)
    # the newest sample alone, as the daemon's plan reads it
    known = pd.DataFrame({"ds": ds, "y": y}).dropna()
    for hold in (dt.timedelta(0), QUARTER, HOUR):
        stamps = pd.DatetimeIndex(known["ds"])
        expected = held_demand(stamps, known["y"].to_numpy(), hold)[-1]
        assert held_newest(known, hold) == expected
    assert held_newest(known.iloc[:4], QUARTER) == 5.0  # 12:20 still sees 12:05


def test_the_floor_holds_for_the_stabilisation_unless_nothing_is_lowered() -> None:
    policy = dataclasses.replace(BASE, stabilization=QUARTER)
    assert floor_hold(policy) == QUARTER
    assert floor_hold(dataclasses.replace(policy, scale_in="never")) == dt.timedelta(0)
