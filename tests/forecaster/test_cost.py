"""The cost of a schedule: unit-hours integrated exactly, the alternatives, a month."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from forescale.forecaster.cost import HOURS_PER_MONTH, Price, cost_of, schedule_unit_hours
from forescale.forecaster.types import CapacityPlan, CapacityStep

T0 = dt.datetime(2025, 11, 27, 0, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
PRICE = Price(per_unit_hour=0.192, currency="USD", source="unit_price")


def step(at: dt.datetime, before: int, units: int) -> CapacityStep:
    return CapacityStep(
        at=at,
        from_units=before,
        units=units,
        direction="raise" if units > before else "lower",
        reason="test",
        serves_at=at,
        demand=float(units),
    )


def plan(current: int, *steps: CapacityStep) -> CapacityPlan:
    return CapacityPlan(
        steps=steps,
        desired=pd.DataFrame({"ds": [], "units": []}),
        current_units=current,
        now=T0,
    )


def test_unit_hours_integrate_each_step_from_its_time() -> None:
    # 4 units for 2 h, 10 for 3 h, 6 for the last 1 h of a 6 h window
    p = plan(4, step(T0 + 2 * H, 4, 10), step(T0 + 5 * H, 10, 6))
    assert schedule_unit_hours(p, T0, T0 + 6 * H) == 4 * 2 + 10 * 3 + 6 * 1


def test_steps_outside_the_window_count_only_inside_it() -> None:
    p = plan(4, step(T0 - H, 4, 8), step(T0 + 90 * dt.timedelta(minutes=1), 8, 2))
    # a step before the window is in force from its start; one after the end is not paid
    assert schedule_unit_hours(p, T0, T0 + 3 * H) == pytest.approx(8 * 1.5 + 2 * 1.5)
    assert schedule_unit_hours(p, T0, T0 + H) == pytest.approx(8.0)
    assert schedule_unit_hours(p, T0, T0) == 0.0


def test_cost_beside_today_flat_and_the_static_peak() -> None:
    p = plan(5, step(T0 + 6 * H, 5, 12), step(T0 + 12 * H, 12, 5), step(T0 + 30 * H, 5, 20))
    cost = cost_of(p, PRICE, T0, T0 + 24 * H)
    assert cost.hours == 24
    assert cost.unit_hours.schedule == 5 * 6 + 12 * 6 + 5 * 12
    assert cost.unit_hours.current_flat == 5 * 24
    assert cost.peak_units == 12  # the raise to 20 is after the window
    assert cost.unit_hours.static_peak == 12 * 24
    assert cost.horizon.schedule == pytest.approx(162 * 0.192)
    assert cost.monthly.schedule == pytest.approx(162 * 0.192 * HOURS_PER_MONTH / 24)
    assert cost.monthly.static_peak == pytest.approx(12 * 0.192 * HOURS_PER_MONTH)
    assert cost.average_units == pytest.approx(162 / 24)


def test_refusals() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        cost_of(plan(1), PRICE, T0, T0 - H)
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite and >= 0"):
            Price(per_unit_hour=bad, currency="USD", source="x")
