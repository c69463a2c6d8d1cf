"""Small frozen records the forecaster and capacity planner exchange.

All datetimes are timezone-aware UTC. Demand is in the service's own unit (e.g.
requests/s); capacity is in units (replicas, instances).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Literal

import pandas as pd

UTC = dt.UTC


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """A sales/marketing event from the user's calendar.

    The event is active from ``start - lower_window`` to ``end + upper_window``
    (``end`` exclusive). ``expected_uplift`` is a fraction: ``0.5`` means +50 % demand,
    ``-0.38`` means -38 %. It is used when history holds no earlier occurrence of an
    event with the same ``name`` to learn the effect from.
    """

    name: str
    start: dt.datetime
    end: dt.datetime
    lower_window: dt.timedelta = dt.timedelta(0)
    upper_window: dt.timedelta = dt.timedelta(0)
    expected_uplift: float | None = None
    line: int | None = None  # 1-based line in the calendar file, for messages

    @property
    def active_start(self) -> dt.datetime:
        return self.start - self.lower_window

    @property
    def active_end(self) -> dt.datetime:
        return self.end + self.upper_window


@dataclass(frozen=True, kw_only=True, slots=True)
class ForecastSettings:
    """How to fit and predict one service (pure values; built from config)."""

    horizon: dt.timedelta = dt.timedelta(hours=48)
    interval_width: float = 0.9
    country_holidays: str | None = None  # ISO code for the `holidays` package, e.g. "US"
    timezone: str = "UTC"  # wall clock for daily/weekly seasonality and holidays
    daily_seasonality: bool = True
    weekly_seasonality: bool = True
    weekend_daily_split: bool = True  # separate daily shapes for weekdays and weekends
    yearly_seasonality: bool = False
    business_hours: tuple[int, int] | None = None  # local [start, end) hours Mon-Fri regressor
    resolution: dt.timedelta | None = None  # None: chosen from the history (auto)
    max_points: int | None = None  # auto resolution's cap (None:
    # forescale.forecaster.model.MAX_POINTS)
    max_history: dt.timedelta = dt.timedelta(days=56)
    log_transform: bool = True
    uncertainty_samples: int = 300
    seed: int = 20141127


@dataclass(frozen=True, kw_only=True, slots=True)
class EventEffect:
    """How one event (or holiday) moved the forecast, for the report."""

    name: str
    start: dt.datetime
    end: dt.datetime
    effect: float  # fraction, e.g. -0.38 for -38 %
    source: Literal["learned", "expected_uplift", "holiday"]
    occurrences_in_history: int = 0

    @classmethod
    def expected(cls, event: Event) -> EventEffect:
        """The uplift the calendar states for ``event`` (its ``expected_uplift``, set)."""
        if event.expected_uplift is None:
            raise ValueError(f"event {event.name!r} states no expected_uplift")
        return cls(
            name=event.name,
            start=event.active_start,
            end=event.active_end,
            effect=event.expected_uplift,
            source="expected_uplift",
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Forecast:
    """A fitted forecast for one service.

    ``frame`` has one row per future step: ``ds`` (UTC, tz-aware), ``yhat``,
    ``yhat_lower``, ``yhat_upper`` (demand units), and one column per component in
    ``components``, each the *multiplicative* effect of that component as a fraction
    (``0.22`` = +22 %) at that step.
    """

    frame: pd.DataFrame
    components: tuple[str, ...]
    resolution: dt.timedelta
    interval_width: float
    fitted_at: dt.datetime  # the 'now' the forecast was made as of (UTC)
    history_end: dt.datetime  # last observed sample (UTC)
    model: str = "prophet"
    event_effects: tuple[EventEffect, ...] = ()
    notes: tuple[str, ...] = ()
    # the credible ceiling it was capped at (demand units; forecaster.ceiling), None: none
    ceiling: float | None = None

    def noted(self, note: str, *, frame: pd.DataFrame | None = None) -> Forecast:
        """This forecast with ``note`` appended (and ``frame`` instead, when given)."""
        return replace(
            self, frame=self.frame if frame is None else frame, notes=(*self.notes, note)
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class StepLimit:
    """How far capacity may move: ``units`` absolute, or ``percent`` of the units at the
    start of a ``CapacityPolicy.step_period`` window; neither set means unlimited.

    With ``percent`` the limit is ``max(1, floor(start * percent / 100))`` units, rounded
    as the Kubernetes HPA does (a lower keeps ``ceil(start * (1 - percent / 100))``), so
    the percent is never exceeded yet a small group still moves by one unit.
    """

    units: int | None = None
    percent: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CapacityPolicy:
    """How demand turns into units for one service."""

    capacity_per_unit: float  # demand one unit serves at target utilisation
    min_units: int
    max_units: int
    max_step_up: StepLimit = field(default_factory=StepLimit)
    max_step_down: StepLimit = field(default_factory=StepLimit)
    # The step limits bound the total change inside any window of this length (> 0),
    # measured from the units at the window's start (the HPA's periodSeconds).
    step_period: dt.timedelta = dt.timedelta(minutes=15)
    lead_time: dt.timedelta = dt.timedelta(minutes=15)
    scale_in: Literal["never", "after_peak"] = "after_peak"
    stabilization: dt.timedelta = dt.timedelta(hours=1)
    scale_in_tolerance: float = 0.1  # ignore decreases smaller than this fraction
    # A demand at most this fraction of one unit above a whole number of units is planned
    # at that number (0.02: 20.015 units' worth of demand is 20 units, not 21): a unit
    # loaded 2 % past its rating for the rare step beats paying one more all the time.
    unit_tolerance: float = 0.0
    # The reactive floor serves the latest observed demand times (1 + this): headroom for
    # growth while the next collect and apply come round (0.2 = aim at 80 % of a unit).
    observed_headroom: float = 0.0
    # While the last hour's demand ran above the forecast (their ratio r > 1), the band
    # ahead is lifted by r, at most this (forecaster.lift; 1.0: never lifted).
    max_lift: float = 1.0


@dataclass(frozen=True, kw_only=True, slots=True)
class CapacityStep:
    """Set capacity to ``units`` at ``at`` (UTC). ``reason`` is a human sentence."""

    at: dt.datetime
    units: int
    from_units: int
    reason: str
    direction: Literal["raise", "lower"]
    serves_at: dt.datetime  # when the demand that drives this step arrives (UTC)
    demand: float  # the demand (upper band, or observed) that drives this step
    constraints: tuple[str, ...] = ()  # e.g. "clamped to max_units", "step-limited"


@dataclass(frozen=True, kw_only=True, slots=True)
class CapacityPlan:
    """The planner's output: the schedule and the per-step desired units.

    ``desired`` has columns ``ds`` (UTC) and ``units`` (capacity in force from ``ds``),
    after lead time, clamps, step limits, floor and scale-in policy.
    """

    steps: tuple[CapacityStep, ...]
    desired: pd.DataFrame
    current_units: int
    now: dt.datetime
    notes: tuple[str, ...] = ()
