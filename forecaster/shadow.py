"""What forescale would have done, scored against what happened (shadow mode's record).

Pure: the demand that happened (``ds``, ``y`` on the service's grid), the capacity
forescale had in force (the would-be changes of shadow mode, then the applied ones) and the
comparison's capacity in, a :class:`ShadowScore` and a :class:`Verdict` out.

Each demand sample stands for the interval up to the next one (the grid's step). A step is
*under-provisioned* when the units in force at its start serve less than its demand
(``units x capacity_per_unit x (1 + 1e-9) < demand``, as the backtest counts it). The
comparison is the capacity actually in force when a source for it is configured and covers
the window (``capacity_source``, e.g. the Auto Scaling group's GroupInServiceInstances),
else simulated reactive target tracking at 80 % utilisation (the backtest's
``reactive_headroom_20``: the demand 10 minutes old, 5 minutes warm-up paid from launch,
15 minutes scale-in cooldown) on the same demand, within the same bounds.

A service *qualifies* for promotion when its record covers at least ``after`` (it has been
in shadow mode that long), its under-provisioned share of minutes is at most ``max_under``
and its unit-hours are at most ``max_cost_ratio`` times the comparison's. A promoted
service keeps being scored the same way (its applied changes are its capacity in force)
and goes back to shadow mode when either bar breaks.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forescale.forecaster.backtest import DEFAULT_REACTIVE, reactive_units
from forescale.forecaster.types import CapacityPolicy

__all__ = [
    "COMPARISON",
    "PromotionBar",
    "RecordRow",
    "ShadowScore",
    "Verdict",
    "judge",
    "record_rows",
    "score",
]

COMPARISON = DEFAULT_REACTIVE[1]  # target tracking at 80 % utilisation
_HOUR = dt.timedelta(hours=1)
_MINUTE = dt.timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class PromotionBar:
    """When shadow mode has earned promotion (``promote:`` settings)."""

    after: dt.timedelta  # the record must cover at least this long
    max_under: float  # under-provisioned share of minutes, at most
    max_cost_ratio: float  # unit-hours / the comparison's, at most


@dataclass(frozen=True, kw_only=True, slots=True)
class ShadowScore:
    """forescale's capacity against the demand of ``[start, end)`` and the comparison's."""

    start: dt.datetime  # UTC
    end: dt.datetime  # UTC
    minutes: float  # minutes scored (samples x step)
    under_minutes: float
    unit_hours: float
    comparison: str  # what the cost is compared with, in words
    comparison_unit_hours: float
    comparison_under_minutes: float

    @property
    def under_share(self) -> float:
        return self.under_minutes / self.minutes if self.minutes > 0 else 0.0

    @property
    def cost_ratio(self) -> float | None:
        """Unit-hours / the comparison's (None when the comparison paid nothing)."""
        if self.comparison_unit_hours <= 0:
            return None
        return self.unit_hours / self.comparison_unit_hours

    @property
    def comparison_under_share(self) -> float:
        return self.comparison_under_minutes / self.minutes if self.minutes > 0 else 0.0

    def describe(self) -> str:
        ratio = "n/a" if self.cost_ratio is None else f"{self.cost_ratio:.3f}x"
        hours = (self.end - self.start) / _HOUR
        return (
            f"{hours:.1f} h scored: under-provisioned {self.under_share:.3%} of minutes "
            f"({self.comparison}: {self.comparison_under_share:.3%}), unit-hours "
            f"{self.unit_hours:,.1f} = {ratio} the comparison's ({self.comparison_unit_hours:,.1f})"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """Whether the record meets the bar, and why (or why not) in words."""

    qualifies: bool
    breaks: bool  # a bar is broken (under or cost): a promoted service is demoted
    reason: str


def score(
    demand: pd.DataFrame,
    changes: Sequence[tuple[dt.datetime, int]],
    initial_units: int,
    policy: CapacityPolicy,
    *,
    start: dt.datetime,
    end: dt.datetime,
    step: dt.timedelta,
    in_force: pd.DataFrame | None = None,
) -> ShadowScore:
    """Score the units in force (``initial_units`` until the first of ``changes``, each
    change's units from its time) against ``demand`` (``ds`` UTC, ``y``) on
    ``[start, end)``, beside the comparison on the same demand: the capacity actually in
    force (``in_force``: ``ds``, ``y`` units, each sample holding until the next) when
    given and it covers the window's start, else simulated target tracking."""
    if step <= dt.timedelta(0):
        raise ValueError(f"step must be positive: {step}")
    frame = demand[(demand["ds"] >= pd.Timestamp(start)) & (demand["ds"] < pd.Timestamp(end))]
    frame = frame[np.isfinite(frame["y"].to_numpy(dtype=float))].reset_index(drop=True)
    times = [pd.Timestamp(t).to_pydatetime() for t in frame["ds"]]
    ordered = sorted(changes)
    units = np.empty(len(times))
    current, index = initial_units, 0
    for i, when in enumerate(times):
        while index < len(ordered) and ordered[index][0] <= when:
            current = ordered[index][1]
            index += 1
        units[i] = current
    y = frame["y"].to_numpy(dtype=float)
    cpu = policy.capacity_per_unit
    short = units * cpu * (1 + 1e-9) < y
    step_hours = step / _HOUR
    observed = _observed_units(in_force, frame["ds"]) if in_force is not None else None
    if observed is not None:
        serving = paid = observed
        comparison = "the capacity actually in force (capacity_source)"
    else:
        serving, paid = reactive_units(frame, COMPARISON, cpu, policy, step)
        comparison = f"reactive target tracking at {1 - COMPARISON.headroom:.0%} utilisation"
    comparison_short = serving * cpu * (1 + 1e-9) < y
    step_minutes = step / _MINUTE
    return ShadowScore(
        start=start,
        end=end,
        minutes=len(y) * step_minutes,
        under_minutes=float(short.sum()) * step_minutes,
        unit_hours=float(units.sum()) * step_hours,
        comparison=comparison,
        comparison_unit_hours=float(np.nansum(paid)) * step_hours,
        comparison_under_minutes=float(comparison_short.sum()) * step_minutes,
    )


def _observed_units(in_force: pd.DataFrame, times: pd.Series) -> np.ndarray | None:
    """The observed units at each of ``times`` (the newest sample at or before it); None
    when the observations do not reach back to the first time (no fair comparison)."""
    known = in_force[np.isfinite(in_force["y"].to_numpy(dtype=float))].sort_values("ds")
    if known.empty or times.empty or known["ds"].iloc[0] > times.iloc[0]:
        return None
    at = np.searchsorted(known["ds"].to_numpy(), times.to_numpy(), side="right") - 1
    return np.asarray(known["y"].to_numpy(dtype=float)[at])


def judge(record: ShadowScore, bar: PromotionBar, *, covered: dt.timedelta) -> Verdict:
    """Does ``record`` (of a service in shadow mode for ``covered``) meet ``bar``?"""
    ratio = record.cost_ratio
    under_ok = record.under_share <= bar.max_under
    cost_ok = ratio is not None and math.isfinite(ratio) and ratio <= bar.max_cost_ratio
    problems = []
    if not under_ok:
        problems.append(
            f"under-provisioned {record.under_share:.3%} of minutes > max_under {bar.max_under:.3%}"
        )
    if not cost_ok:
        shown = "n/a" if ratio is None else f"{ratio:.3f}x"
        problems.append(
            f"unit-hours {shown} the comparison's > max_cost_ratio {bar.max_cost_ratio:g}x"
        )
    if covered < bar.after:
        hours = covered / _HOUR
        wanted = bar.after / _HOUR
        return Verdict(
            qualifies=False,
            breaks=bool(problems),
            reason=f"record covers {hours:.1f} h of the {wanted:g} h needed"
            + (f"; {'; '.join(problems)}" if problems else ""),
        )
    if problems:
        return Verdict(qualifies=False, breaks=True, reason="; ".join(problems))
    return Verdict(
        qualifies=True,
        breaks=False,
        reason=f"under-provisioned {record.under_share:.3%} ≤ {bar.max_under:.3%} and "
        f"unit-hours {ratio:.3f}x ≤ {bar.max_cost_ratio:g}x the comparison's over "
        f"{covered / _HOUR:.1f} h",
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordRow:
    """One approach over a recent window: its under-provisioned share of minutes and its
    unit-hours (and their cost at a price, when one is known)."""

    approach: str
    under_share: float
    unit_hours: float
    cost: float | None = None


def record_rows(
    record: ShadowScore, peak_units: int, *, per_unit_hour: float | None = None
) -> tuple[RecordRow, ...]:
    """forescale's capacity, the comparison and the static peak (``peak_units`` held for
    the whole window: never short) over ``record``'s window."""
    hours = record.minutes / 60

    def cost(unit_hours: float) -> float | None:
        return None if per_unit_hour is None else unit_hours * per_unit_hour

    return (
        RecordRow(
            approach="forescale (what it had in force)",
            under_share=record.under_share,
            unit_hours=record.unit_hours,
            cost=cost(record.unit_hours),
        ),
        RecordRow(
            approach=record.comparison,
            under_share=record.comparison_under_share,
            unit_hours=record.comparison_unit_hours,
            cost=cost(record.comparison_unit_hours),
        ),
        RecordRow(
            approach=f"static peak ({peak_units} units)",
            under_share=0.0,
            unit_hours=peak_units * hours,
            cost=cost(peak_units * hours),
        ),
    )
