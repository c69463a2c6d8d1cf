"""What a capacity schedule costs: unit-hours times a price, beside the simple alternatives.

Pure: a :class:`~forescale.forecaster.types.CapacityPlan` and a :class:`Price` in, a
:class:`CostSummary` out. Three figures, each over the forecast horizon and as a month:

- *schedule*: the plan's capacity in force at each moment (``current_units`` from ``now``
  until the first step, then each step's units from its ``at``), integrated over time;
- *current flat*: today's capacity held for the whole horizon;
- *static peak*: the highest capacity the schedule reaches (or today's, if higher) held for
  the whole horizon — what a team pays that provisions for the peak around the clock.

A month is :data:`HOURS_PER_MONTH` hours (730, as AWS and Infracost price a month); the
monthly figure is the horizon's cost scaled to it. Money is in the price's currency; no
rounding happens here (formatting rounds for display).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from forescale.forecaster.types import CapacityPlan

__all__ = [
    "HOURS_PER_MONTH",
    "CostFigures",
    "CostSummary",
    "Price",
    "cost_of",
    "schedule_unit_hours",
]

HOURS_PER_MONTH = 730.0
_HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class Price:
    """What one unit of capacity costs per hour, and where that figure comes from."""

    per_unit_hour: float  # money per unit per hour (>= 0, finite)
    currency: str  # ISO 4217, e.g. USD
    source: str  # "unit_price" or the price list entry it was looked up from

    def __post_init__(self) -> None:
        if not math.isfinite(self.per_unit_hour) or self.per_unit_hour < 0:
            raise ValueError(f"price per unit-hour must be finite and >= 0: {self.per_unit_hour}")


@dataclass(frozen=True, kw_only=True, slots=True)
class CostFigures:
    """One quantity for the schedule and its two alternatives (unit-hours or money)."""

    schedule: float
    current_flat: float
    static_peak: float


@dataclass(frozen=True, kw_only=True, slots=True)
class CostSummary:
    """The cost of a plan over ``[start, end)`` and per month, with the alternatives."""

    price: Price
    start: dt.datetime  # UTC
    end: dt.datetime  # UTC
    hours: float  # the horizon's length in hours
    unit_hours: CostFigures  # capacity integrated over the horizon
    horizon: CostFigures  # money over the horizon
    monthly: CostFigures  # money over HOURS_PER_MONTH at the horizon's rate
    peak_units: int  # the static peak's units

    @property
    def average_units(self) -> float:
        """The schedule's time-weighted average capacity over the horizon (units)."""
        return self.unit_hours.schedule / self.hours if self.hours > 0 else 0.0


def schedule_unit_hours(plan: CapacityPlan, start: dt.datetime, end: dt.datetime) -> float:
    """The plan's capacity in force, integrated over ``[start, end)`` (unit-hours).

    Before the first step the capacity is ``plan.current_units``; a step holds from its
    ``at`` until the next step's (steps are in time order, as the planner makes them)."""
    if end <= start:
        return 0.0
    total = 0.0
    units = plan.current_units
    cursor = start
    for step in plan.steps:
        at = min(max(step.at, start), end)
        if at > cursor:
            total += units * ((at - cursor) / _HOUR)
            cursor = at
        units = step.units
    total += units * ((end - cursor) / _HOUR)
    return total


def cost_of(plan: CapacityPlan, price: Price, start: dt.datetime, end: dt.datetime) -> CostSummary:
    """The cost of ``plan`` over ``[start, end)`` (UTC) at ``price``, with the alternatives."""
    if end < start:
        raise ValueError(f"cost horizon ends ({end}) before it starts ({start})")
    hours = (end - start) / _HOUR
    peak = max([plan.current_units, *(s.units for s in plan.steps if s.at < end)])
    unit_hours = CostFigures(
        schedule=schedule_unit_hours(plan, start, end),
        current_flat=plan.current_units * hours,
        static_peak=peak * hours,
    )
    rate = price.per_unit_hour
    horizon = CostFigures(
        schedule=unit_hours.schedule * rate,
        current_flat=unit_hours.current_flat * rate,
        static_peak=unit_hours.static_peak * rate,
    )
    scale = HOURS_PER_MONTH / hours if hours > 0 else 0.0
    return CostSummary(
        price=price,
        start=start,
        end=end,
        hours=hours,
        unit_hours=unit_hours,
        horizon=horizon,
        monthly=CostFigures(
            schedule=horizon.schedule * scale,
            current_flat=horizon.current_flat * scale,
            static_peak=horizon.static_peak * scale,
        ),
        peak_units=peak,
    )
