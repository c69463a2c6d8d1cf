"""Turn a demand forecast into a capacity schedule (pure: no I/O, no clock).

Units: capacity is in *units* (replicas, instances); demand is in the service's own unit
(e.g. requests/s); ``capacity_per_unit`` is the demand one unit serves at its target
utilisation. Every datetime is timezone-aware UTC; time is passed in (``now``), never read.

The grid
--------
The forecast has one row per step: the row at ``ds`` covers ``[ds, ds + step)``. The plan
lives on the same grid, extended backwards to the *slot* that contains ``now`` (the grid
point ``g0 <= now < g0 + step``). ``desired`` has one row per slot from ``g0`` to the last
forecast row: the units in force from that ``ds`` (for ``g0``: from ``now``). A change at a
slot is applied at ``max(ds, now)``.

Rows before the first forecast row, after the last one, and rows whose ``yhat_upper`` is
NaN are *unknown*: they never raise capacity and never let it fall (hold).

Step limits
-----------
``max_step_up`` / ``max_step_down`` bound how far capacity moves within any window
``[t, t + step_period)`` (the HPA's ``periodSeconds``), measured from ``c``, the units in
force just before ``t``: every units value in force inside the window stays within
``[c - down(c), c + up(c)]``. A units limit is absolute; a percent limit is
``max(1, floor(c * percent / 100))``, i.e. rounded as the HPA does (a lower keeps
``ceil(c * (1 - percent / 100))``: 9 at 25 % may fall to 7, not 6; a raise reaches
``floor(c * (1 + percent / 100))``: 9 at 25 % may rise to 11, not 12) but always one unit,
so 2 at 25 % may still go to 1 or 3. Two lowers five minutes apart therefore share one
limit, from the units before the first. The window holding each change applies, so every
change is also within the limit of the units it starts from.

Memory (``in_force``): the windows that reach back before ``now`` are judged against the
capacity really in force then, exactly as if the earlier changes had been part of this
plan; so a plan at 12:05, five minutes after a lower 13→10 at 12:00, may not go below
what 25 % of 13 allows (10) until the window since 12:00 has passed (12:15).
``in_force`` is a step function: a sequence of ``(since, units)``, ``since`` strictly
ascending and tz-aware (converted to UTC), ``since <= now``, units ints >= 0; each entry
is in force from its ``since`` until the next one's, the last until ``now`` (an entry at
exactly ``now`` is a change at ``now``), and the last units must equal
``current_units``, otherwise ``PlanError``. There are no gaps between entries; before
the first entry its units count as in force, so a history that does not reach back to
``now - step_period`` is extended with its first units (as ``current_units`` is without
memory). Only the entry in force at ``now - step_period`` and those after it matter;
older ones are ignored. Without ``in_force`` (the default, ``()``) the planner assumes
``current_units`` has been in force for a whole ``step_period`` before ``now``. If the
history already breaks a limit (a manual change, a changed policy), the plan never moves
the other way to repair it: it holds until the windows allow the move it wants. Memory
only bounds the step limits; the stabilisation look-back (rule 6) and the hysteresis are
unchanged.

How a slot's units are chosen
-----------------------------
1. ``required(row) = units_for(yhat_upper, capacity_per_unit)``.
2. Lead time: the slot at ``tau`` needs the largest requirement of rows ``tau .. tau + M``
   steps, ``M = ceil(lead_time / step)``; so a raise for demand arriving at ``t`` is in
   force from ``t - lead_time`` rounded *down* to the grid (exact when ``lead_time`` is a
   multiple of the step), and never later than ``now``.
3. The reactive floor ``units_for(observed_demand * (1 + observed_headroom))`` (at most
   ``floor_cap``, the credible ceiling, while the observed demand is below it) applies to
   the slots that start before ``now + max(lead_time, stabilization)`` (and always to the
   slot containing ``now``). The caller holds ``observed_demand`` at the highest sample of
   the stabilisation window (:func:`held_demand`, :func:`floor_hold`), so a floor raised by
   a burst is lowered only once the demand has been lower for the whole window, as the
   forecast's needs are (rule 6).
4. Needs are clamped to ``[min_units, max_units]``.
5. Step-up limits: the raise ramp is planned backwards from each need, one window of
   ``step_period`` at a time (the slot before a change must hold enough to reach, within
   that change's window, every need of the slots the window covers), so it starts early
   enough that the need is in force when the demand arrives (after the lead time), as far
   as ``now`` allows; the forward pass raises toward the ramp as fast as every window
   allows. A need that still cannot be met is noted.
6. Lowers (``scale_in="after_peak"`` only, with fresh data and a known observed demand):
   the lower bound at ``tau`` is the largest clamped need (without the floor) over the
   ``S + 1`` slots ``tau - S .. tau``, ``S = ceil(stabilization / step)`` (the HPA
   stabilisation window); an unknown slot counts as the units held there, and look-back
   slots before now without a known forecast count as ``current_units`` (the planner has
   no memory: pass recent rows before now, e.g. the in-sample fit, so that a run soon
   after a peak can see that demand has already been low for the window). A lower is
   skipped when it would free less than ``scale_in_tolerance`` of the current units
   (hysteresis), except to continue a step-limited lower; step-down limits split it into
   several changes, the next one when a window allows it. Raises are never suppressed.
   A lower never goes below the raise ramp of rule 5. Anti-flap: a lower never goes below
   what the next ``S`` slots need, so a short dip between two peaks is held through.
7. ``max_units`` is a hard ceiling: units above it are lowered to it whatever the scale-in
   policy or data freshness (as the HPA clamps to ``maxReplicas``), within step limits
   (so, like units below ``min_units``, it is reached step by step from current_units).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from forescale.errors import PlanError
from forescale.forecaster.types import (
    CapacityPlan,
    CapacityPolicy,
    CapacityStep,
    Forecast,
    StepLimit,
)

__all__ = [
    "UNIT_TOLERANCE",
    "floor_hold",
    "held_demand",
    "held_newest",
    "plan_capacity",
    "planner_frame",
    "refined",
    "step_limit",
    "units_for",
    "units_of",
]

# A quotient this close (relatively) above an integer is that integer: float noise such as
# 10.0000000001 must not buy an 11th unit.
_REL_EPS = 1e-9

_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"})

PLAN_STEP = dt.timedelta(minutes=5)  # finest slot a coarser forecast is planned in

NO_SCALE_IN_NOTE = "no scale-in: metrics stale/unavailable"

# The product's CapacityPolicy.unit_tolerance (the settings file and the backtest's
# entry points restate it; a test keeps them in step): a demand at most 2 % of one unit
# above a whole number of units is planned at that number. Chosen with whole groups of
# public series left out (docs/BENCHMARKS.md); the record judges every candidate with it.
UNIT_TOLERANCE = 0.02


# --------------------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------------------


def units_for(demand: float, capacity_per_unit: float, tolerance: float = 0.0) -> int:
    """Units needed to serve ``demand`` (service unit, e.g. requests/s).

    ``ceil(demand / capacity_per_unit - tolerance)``, at least 1 for a demand > 0, with
    ``demand <= 0`` needing 0 units: ``tolerance`` is the fraction of one unit a demand
    may exceed a whole number of units by and still be planned at it
    (``CapacityPolicy.unit_tolerance``). A quotient within a relative 1e-9 above an
    integer counts as that integer (10.0000000001 / 1 is 10 units, not 11). Raises
    ``PlanError`` for a non-finite demand or a ``capacity_per_unit`` that is not a finite
    number > 0.
    """
    _check_capacity_per_unit(capacity_per_unit)
    if not math.isfinite(demand):
        raise PlanError(f"demand must be a finite number, got {demand!r}")
    if demand <= 0:
        return 0
    ratio = demand / capacity_per_unit
    if not math.isfinite(ratio):
        raise PlanError(
            f"demand {demand!r} / capacity_per_unit {capacity_per_unit!r} overflows; "
            "check the units of capacity_per_unit"
        )
    if tolerance > 0:
        return max(1, math.ceil(ratio - tolerance))
    return _ceil_tolerant(ratio)


def units_of(demand: np.ndarray, unit: float, tolerance: float = 0.0) -> np.ndarray:
    """:func:`units_for` of every value of ``demand`` (NaN stays NaN): a quotient at most
    ``tolerance`` above a whole number is that number, at least 1 for a demand > 0;
    without a tolerance, within a relative 1e-9."""
    ratio = np.maximum(demand, 0.0) / unit
    if tolerance > 0:
        whole = np.ceil(ratio - tolerance)  # NaN stays NaN
        return np.asarray(np.where(ratio > 0, np.maximum(whole, 1.0), np.maximum(whole, 0.0)))
    return np.asarray(np.ceil(ratio * (1 - _REL_EPS)), dtype=float)


def floor_hold(policy: CapacityPolicy) -> dt.timedelta:
    """How long the reactive floor holds an observation: the scale-in stabilisation
    window, so the floor lowers only once the demand has been lower for the whole window
    (as the HPA's stabilisation treats its recommendations, and as target tracking's
    cooldown holds a raise); none when ``scale_in`` is "never" (nothing is lowered)."""
    return policy.stabilization if policy.scale_in == "after_peak" else dt.timedelta(0)


def held_demand(ds: pd.DatetimeIndex, y: np.ndarray, hold: dt.timedelta) -> np.ndarray:
    """Each sample of ``y`` (at ascending ``ds``) as the reactive floor holds it: the
    highest known sample at ``ds - hold`` or later up to it (see :func:`floor_hold`);
    unknown (NaN) where the sample itself is unknown."""
    values = np.asarray(y, dtype=float)
    if hold <= dt.timedelta(0) or values.size == 0:
        return values
    series = pd.Series(values, index=pd.DatetimeIndex(ds))
    held = series.rolling(pd.Timedelta(hold), closed="both", min_periods=1).max().to_numpy()
    return np.where(np.isfinite(values), held, np.nan)


def held_newest(observed: pd.DataFrame, hold: dt.timedelta) -> float:
    """The newest sample of ``observed`` (``ds`` ascending, ``y`` known, not empty) as the
    reactive floor holds it: :func:`held_demand`'s last value, reading only the samples
    ``hold`` before the newest."""
    ds = pd.DatetimeIndex(observed["ds"])
    recent = observed["y"].to_numpy(dtype=float)[ds >= ds[-1] - pd.Timedelta(hold)]
    return float(recent.max())


def step_limit(limit: StepLimit, current: int) -> int | None:
    """Most units capacity may move (up or down) within one ``step_period`` window that
    starts with ``current`` units in force; see "Step limits" in the module docstring.

    ``None`` means unlimited. ``limit.units`` is absolute; ``limit.percent`` is a percent of
    ``current``, rounded down but at least one unit: ``max(1, floor(current * percent /
    100))`` (9 at 25 % may go to 7 or 11). Raises ``PlanError`` for a negative ``current``
    or an invalid limit (both fields set, ``units < 1``, ``percent`` not a finite number
    > 0).
    """
    _check_step_limit(limit, "step limit")
    if current < 0:
        raise PlanError(f"current units must be >= 0, got {current}")
    return _limit(limit, current)


def plan_capacity(
    forecast: pd.DataFrame,
    *,
    policy: CapacityPolicy,
    current_units: int,
    now: dt.datetime,
    observed_demand: float | None,
    data_fresh: bool = True,
    timezone: str = "UTC",
    in_force: Sequence[tuple[dt.datetime, int]] = (),
    floor_cap: float | None = None,
) -> CapacityPlan:
    """Plan units (replicas/instances) from a demand forecast; see the module docstring.

    ``forecast`` has columns ``ds`` (tz-aware UTC, regular step, ascending) and
    ``yhat_upper`` (demand, service unit; NaN = unknown). ``current_units`` is what the IaC
    holds now; ``now`` is a tz-aware datetime (converted to UTC; naive is refused);
    ``observed_demand`` is the demand the reactive floor serves: the latest observed demand
    as :func:`held_demand` holds it over :func:`floor_hold` (``None`` when unknown). With
    ``data_fresh=False`` or ``observed_demand=None`` the plan never lowers capacity (except
    down to ``max_units``); raises still happen. ``in_force`` is the planner's memory: the
    units in force before ``now`` as ``(since, units)``, ascending, the last units equal to
    ``current_units``, covering at least ``[now - step_period, now)`` (see "Step limits";
    default: ``current_units`` has been in force for a whole ``step_period``).
    ``floor_cap`` (demand units, the forecast's credible ceiling): while the observed
    demand is at or below it, the reactive floor asks for at most the units it needs.

    Returns a ``CapacityPlan`` whose ``desired`` frame holds ``ds`` (UTC) and ``units`` (int)
    from the slot containing ``now`` to the last forecast row, and whose ``steps`` are only
    the changes. Raises ``PlanError`` for input it cannot plan with.
    """
    _check_policy(policy)
    now_utc = _as_utc(now)
    if isinstance(current_units, bool) or not isinstance(current_units, int | np.integer):
        raise PlanError(f"current_units must be an int, got {current_units!r}")
    if current_units < 0:
        raise PlanError(f"current_units must be >= 0, got {current_units}")
    if observed_demand is not None and not math.isfinite(observed_demand):
        raise PlanError(
            f"observed_demand must be a finite number, got {observed_demand!r}; "
            "pass None when the demand is unknown"
        )
    history = _read_in_force(in_force, now_utc, int(current_units), policy.step_period)
    ds0, step, demand = _read_forecast(forecast)
    planner = _Planner(
        ds0=ds0,
        step=step,
        demand=demand,
        policy=policy,
        current=int(current_units),
        now=now_utc,
        observed=observed_demand,
        scale_in_allowed=(
            policy.scale_in == "after_peak" and data_fresh and observed_demand is not None
        ),
        tz=_zone(timezone),
        history=history,
        floor_cap=floor_cap,
    )
    notes: list[str] = []
    if not data_fresh or observed_demand is None:
        notes.append(NO_SCALE_IN_NOTE)
    return planner.plan(notes)


def planner_frame(
    forecast: Forecast,
    observed: pd.DataFrame,
    lookback: dt.timedelta,
    *,
    plan_step: dt.timedelta | None = PLAN_STEP,
) -> pd.DataFrame:
    """The planner's input: recent *observed* demand, then the forecast's upper band, on
    the forecast's grid - or on ``plan_step`` when that divides a coarser forecast step
    (an hourly forecast is planned in 5-minute slots, so a 15-minute lead time raises
    15 minutes before the hour, not a whole hour).

    The planner keeps no memory between runs; these past rows let it see that demand has
    already stayed low for the stabilisation window after a peak (so a lower can be due
    now), and that it was high (so nothing is lowered too early). Slots without a sample
    are NaN, which the planner treats as unknown: hold.
    """
    frame = forecast.frame[["ds", "yhat_upper"]]
    step = pd.Timedelta(forecast.resolution)
    first = pd.Timestamp(frame["ds"].iloc[0])
    count = int(math.ceil(pd.Timedelta(lookback) / step)) + 1
    starts = pd.DatetimeIndex([first - step * k for k in range(count, 0, -1)])
    obs = observed[(observed["ds"] >= starts[0]) & (observed["ds"] < first)]
    slot = starts.searchsorted(pd.DatetimeIndex(obs["ds"]), side="right") - 1
    peaks = pd.Series(obs["y"].to_numpy(dtype=float)).groupby(slot).max()
    values = peaks.reindex(range(len(starts))).to_numpy(dtype=float)
    past = pd.DataFrame({"ds": starts, "yhat_upper": values})
    whole = pd.concat([past, frame], ignore_index=True)
    if plan_step is not None:
        # Past and future alike on the finer slots (each carries its step's value).
        whole = refined(whole, forecast.resolution, plan_step)
    return whole


def refined(frame: pd.DataFrame, step: dt.timedelta, finer: dt.timedelta) -> pd.DataFrame:
    """``frame`` (``ds``, ``yhat_upper`` on a ``step`` grid) repeated onto a ``finer`` grid:
    each finer slot carries the value of the step that holds it, so a lead time shorter
    than the forecast's step is honoured to the finer slot instead of a whole step."""
    if finer >= step or step % finer != dt.timedelta(0):
        return frame
    k = step // finer
    starts = pd.DatetimeIndex(frame["ds"])
    offsets = np.tile(np.arange(k), len(frame)) * pd.Timedelta(finer)
    ds = starts.repeat(k) + pd.to_timedelta(offsets)
    return pd.DataFrame(
        {"ds": ds, "yhat_upper": np.repeat(frame["yhat_upper"].to_numpy(dtype=float), k)}
    )


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _check_capacity_per_unit(capacity_per_unit: float) -> None:
    if not math.isfinite(capacity_per_unit) or capacity_per_unit <= 0:
        raise PlanError(
            "capacity_per_unit must be a finite number > 0 (the demand one unit serves), "
            f"got {capacity_per_unit!r}"
        )


def _check_step_limit(limit: StepLimit, name: str) -> None:
    if limit.units is not None and limit.percent is not None:
        raise PlanError(f"{name}: set units or percent, not both")
    if limit.units is not None and limit.units < 1:
        raise PlanError(
            f"{name}.units must be >= 1, got {limit.units}; leave it unset for no limit"
        )
    if limit.percent is not None and not (math.isfinite(limit.percent) and limit.percent > 0):
        raise PlanError(
            f"{name}.percent must be a finite number > 0, got {limit.percent!r}; "
            "leave it unset for no limit"
        )


def _check_policy(policy: CapacityPolicy) -> None:
    try:
        _check_capacity_per_unit(policy.capacity_per_unit)
    except PlanError as exc:
        raise PlanError(f"policy.{exc}") from None
    if policy.min_units < 0:
        raise PlanError(f"policy.min_units must be >= 0, got {policy.min_units}")
    if policy.min_units > policy.max_units:
        raise PlanError(
            f"policy.min_units ({policy.min_units}) is above policy.max_units "
            f"({policy.max_units}); raise max_units or lower min_units"
        )
    zero = dt.timedelta(0)
    if policy.lead_time < zero:
        raise PlanError(f"policy.lead_time must be >= 0, got {policy.lead_time}")
    if policy.stabilization < zero:
        raise PlanError(f"policy.stabilization must be >= 0, got {policy.stabilization}")
    if policy.step_period <= zero:
        raise PlanError(
            f"policy.step_period must be > 0 (the window the step limits hold in), "
            f"got {policy.step_period}"
        )
    tol = policy.scale_in_tolerance
    if not (math.isfinite(tol) and 0 <= tol < 1):
        raise PlanError(f"policy.scale_in_tolerance must be in [0, 1), got {tol!r}")
    tol = policy.unit_tolerance
    if not (math.isfinite(tol) and 0 <= tol < 1):
        raise PlanError(f"policy.unit_tolerance must be in [0, 1), got {tol!r}")
    if policy.scale_in not in ("never", "after_peak"):
        raise PlanError(f"policy.scale_in must be 'never' or 'after_peak', got {policy.scale_in!r}")
    _check_step_limit(policy.max_step_up, "policy.max_step_up")
    _check_step_limit(policy.max_step_down, "policy.max_step_down")


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PlanError(f"unknown timezone {name!r} for the plan's reasons") from exc


def _is_utc(tz: object) -> bool:
    return tz is dt.UTC or str(tz) in _UTC_NAMES


def _as_utc(now: object, what: str = "now") -> dt.datetime:
    """``now`` (named ``what`` in errors) as a UTC datetime; naive is refused."""
    if not isinstance(now, dt.datetime):
        raise PlanError(f"{what} must be a datetime, got {type(now).__name__}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise PlanError(
            f"{what} ({now.isoformat()}) is naive; pass a timezone-aware UTC datetime, "
            "e.g. datetime.now(datetime.UTC)"
        )
    if isinstance(now, pd.Timestamp):
        if now.nanosecond:
            raise PlanError(f"{what} has sub-microsecond precision; round it to microseconds")
        now = now.to_pydatetime()
    return now.astimezone(dt.UTC)


def _read_in_force(
    in_force: Sequence[tuple[dt.datetime, int]],
    now: dt.datetime,
    current: int,
    period: dt.timedelta,
) -> list[tuple[dt.datetime, int]]:
    """Validate the memory (see "Step limits"); return the entries that can bound a window
    holding a change at or after ``now``: the one in force at ``now - period`` and every
    later one, as (since UTC, units)."""
    if isinstance(in_force, str | bytes) or not isinstance(in_force, Sequence):
        raise PlanError(
            f"in_force must be a sequence of (since, units) pairs, got {type(in_force).__name__}"
        )
    entries: list[tuple[dt.datetime, int]] = []
    for i, entry in enumerate(in_force):
        if isinstance(entry, str | bytes) or not isinstance(entry, Sequence) or len(entry) != 2:
            raise PlanError(f"in_force[{i}] must be a (since, units) pair, got {entry!r}")
        since = _as_utc(entry[0], f"in_force[{i}] since")
        units = entry[1]
        if isinstance(units, bool) or not isinstance(units, int | np.integer) or units < 0:
            raise PlanError(f"in_force[{i}] units must be an int >= 0, got {units!r}")
        if entries and since <= entries[-1][0]:
            raise PlanError(
                f"in_force[{i}] ({since.isoformat()}) is not after in_force[{i - 1}] "
                f"({entries[-1][0].isoformat()}); sort by time and drop duplicates"
            )
        if since > now:
            raise PlanError(
                f"in_force[{i}] ({since.isoformat()}) is after now ({now.isoformat()}); "
                "pass only the capacity in force up to now"
            )
        entries.append((since, int(units)))
    if entries and entries[-1][1] != current:
        raise PlanError(
            f"in_force[{len(entries) - 1}] ends with {entries[-1][1]} units but current_units "
            f"is {current}; the last entry is the capacity in force now"
        )
    cut = now - period
    first = 0
    while first + 1 < len(entries) and entries[first + 1][0] <= cut:
        first += 1
    return entries[first:]


def _read_forecast(forecast: pd.DataFrame) -> tuple[dt.datetime, dt.timedelta, list[float]]:
    """Validate the forecast; return (first ds, step, yhat_upper per row with NaN kept)."""
    if not isinstance(forecast, pd.DataFrame):
        raise PlanError("forecast must be a pandas DataFrame with columns ds and yhat_upper")
    missing = [c for c in ("ds", "yhat_upper") if c not in forecast.columns]
    if missing:
        raise PlanError(
            f"forecast lacks column(s) {', '.join(missing)}; pass the forecaster's frame "
            "with ds (UTC) and yhat_upper (demand)"
        )
    if len(forecast) == 0:
        raise PlanError("forecast is empty: no rows to plan from; predict a horizon first")
    ds = forecast["ds"]
    if not isinstance(ds.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_dtype(ds.dtype):
            raise PlanError(
                "forecast ds is timezone-naive; make it UTC with ds.dt.tz_localize('UTC') "
                "(if it holds UTC wall times)"
            )
        raise PlanError(f"forecast ds must be UTC datetimes, got dtype {ds.dtype}")
    if not _is_utc(ds.dtype.tz):
        raise PlanError(
            f"forecast ds is in time zone {ds.dtype.tz}; convert it with ds.dt.tz_convert('UTC')"
        )
    index = pd.DatetimeIndex(ds)
    if index.hasnans:
        row = int(np.flatnonzero(index.isna())[0])
        raise PlanError(f"forecast ds is missing (NaT) at row {row}; drop or fill that row")
    if (index.nanosecond != 0).any():
        raise PlanError("forecast ds has sub-microsecond precision; round it to the step")
    if len(index) < 2:
        raise PlanError(
            "forecast has a single row; need at least 2 rows to know its step (ds spacing)"
        )
    stamps: list[dt.datetime] = [t.astimezone(dt.UTC) for t in index.to_pydatetime()]
    step = stamps[1] - stamps[0]
    for i in range(1, len(stamps)):
        gap = stamps[i] - stamps[i - 1]
        if gap <= dt.timedelta(0):
            raise PlanError(
                f"forecast ds must be strictly ascending: row {i} ({stamps[i].isoformat()}) "
                f"is not after row {i - 1}; sort by ds and drop duplicates"
            )
        if gap != step:
            raise PlanError(
                f"forecast ds is irregular: step {step} between rows 0 and 1 but {gap} "
                f"between rows {i - 1} and {i}; resample to a regular grid (NaN rows for gaps)"
            )
    upper = forecast["yhat_upper"]
    if not pd.api.types.is_numeric_dtype(upper.dtype) or pd.api.types.is_bool_dtype(upper.dtype):
        raise PlanError(f"forecast yhat_upper must be numeric, got dtype {upper.dtype}")
    values = [float(v) for v in upper.to_numpy(dtype="float64", na_value=np.nan)]
    for i, v in enumerate(values):
        if math.isinf(v):
            raise PlanError(
                f"forecast yhat_upper is infinite at row {i} ({stamps[i].isoformat()}); "
                "use NaN for unknown demand"
            )
    return stamps[0], step, values


# --------------------------------------------------------------------------------------
# Small arithmetic and formatting helpers
# --------------------------------------------------------------------------------------


def _ceil_tolerant(x: float) -> int:
    """ceil(x) for finite x >= 0, treating x within a relative 1e-9 above an integer as it."""
    whole = math.floor(x)
    if whole > 0 and x - whole <= _REL_EPS * x:
        return whole
    return math.ceil(x)


def _floor_tolerant(x: float) -> int:
    """floor(x) for finite x >= 0, treating x within a relative 1e-9 below an integer as it
    (250 * 129.2 / 100 = 322.99999999999994 is 323)."""
    whole = math.ceil(x)
    if whole - x <= _REL_EPS * x:
        return whole
    return math.floor(x)


def _ceil_steps(span: dt.timedelta, step: dt.timedelta) -> int:
    """How many grid steps cover ``span`` (rounded up)."""
    return -(-span // step)


def _limit(limit: StepLimit, start: int) -> int | None:
    """Units a window starting at ``start`` units may move (None: unlimited)."""
    if limit.units is not None:
        return limit.units
    if limit.percent is not None:
        return max(1, _floor_tolerant(start * limit.percent / 100))
    return None


def _lowest_start(target: int, limit: StepLimit) -> int:
    """Smallest units from which one window's limited raise reaches ``target`` (0 if
    unlimited)."""
    if limit.units is None and limit.percent is None:
        return 0
    # units + limit(units) never decreases as units grow, so bisect; target itself works.
    lo, hi = 0, target
    while lo < hi:
        mid = (lo + hi) // 2
        if mid + (_limit(limit, mid) or 0) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _fmt_num(x: float) -> str:
    text = f"{x:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _fmt_td(span: dt.timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds == 0:
        return f"{span.total_seconds():g}s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{suffix}" for n, suffix in parts if n)


def _fmt_limit(limit: StepLimit) -> str:
    if limit.units is not None:
        return f"{limit.units} unit{'s' if limit.units != 1 else ''}"
    return f"{limit.percent or 0.0:g}%"


# --------------------------------------------------------------------------------------
# The planner
# --------------------------------------------------------------------------------------

_Source = Literal["forecast", "floor", "min"]


@dataclass(frozen=True, slots=True)
class _Window:
    """What the lead window of one slot knows: rows ``k .. k + M``."""

    units: int | None  # largest known required units (None: no known row)
    row: int | None  # first row with that requirement
    unknown: bool  # some row of the window is NaN or outside the forecast


@dataclass(frozen=True, slots=True)
class _Need:
    """The units a slot must have (raise-worthy), after the floor and the clamps."""

    units: int
    source: _Source
    raw: int  # the source's units before clamping to max_units
    row: int | None  # the forecast row that drives it (source "forecast")


@dataclass(frozen=True, slots=True)
class _Lower:
    """Why a slot lowers: the target before step limits, and what bound it."""

    target: int
    bound: int  # the stabilised lower bound from the look-back window
    forced: bool  # lowering because units are above max_units


@dataclass(slots=True)
class _Draft:
    """A change being described; becomes a ``CapacityStep``."""

    slot: int
    units: int
    from_units: int
    direction: Literal["raise", "lower"]
    serves_at: dt.datetime
    demand: float
    reason: str
    constraints: list[str]


class _Planner:
    def __init__(
        self,
        *,
        ds0: dt.datetime,
        step: dt.timedelta,
        demand: list[float],
        policy: CapacityPolicy,
        current: int,
        now: dt.datetime,
        observed: float | None,
        scale_in_allowed: bool,
        tz: dt.tzinfo = dt.UTC,
        history: Sequence[tuple[dt.datetime, int]] = (),
        floor_cap: float | None = None,
    ) -> None:
        self.tz = tz
        # The capacity in force before now as (since, units); before its first entry that
        # entry's units (without memory: current_units) count as in force.
        self.history = list(history)
        self.base = history[0][1] if history else current
        self.ds0 = ds0
        self.step = step
        self.demand = demand
        self.policy = policy
        self.current = current
        self.now = now
        self.observed = float(observed) if observed is not None else None
        self.allowed = scale_in_allowed
        cpu = policy.capacity_per_unit
        tol = policy.unit_tolerance
        self.req: list[int | None] = [
            None if math.isnan(y) else units_for(y, cpu, tol) for y in demand
        ]
        self.last = len(demand) - 1
        self.g0 = (now - ds0) // step
        if self.g0 > self.last:
            end = self.at_slot(self.last) + step
            raise PlanError(
                f"forecast ends at {end.isoformat()}, before now ({now.isoformat()}); "
                "forecast a horizon that starts at or before now"
            )
        self.m = _ceil_steps(policy.lead_time, step)
        self.s = _ceil_steps(policy.stabilization, step)
        # A change at a slot shares its step_period window with the next w - 1 slots.
        self.w = _ceil_steps(policy.step_period, step)
        self.floor_units: int | None = None
        self.floor_demand = 0.0
        if observed is not None:
            floor_demand = observed * (1 + policy.observed_headroom)
            if floor_cap is not None and observed <= floor_cap:
                floor_demand = min(floor_demand, floor_cap)  # the ceiling holds until broken
            self.floor_demand = floor_demand
            self.floor_units = units_for(floor_demand, cpu, tol)
        self.floor_until = now + max(policy.lead_time, policy.stabilization)
        # Windows from the first look-back slot of the first planned slot to the last row.
        self.lo = self.g0 - self.s
        self.windows = [self._window(k) for k in range(self.lo, self.last + 1)]
        # Each window's clamped largest requirement (0: none known), and how many windows
        # before each are unknown: a stabilisation window without one is a plain maximum.
        self.known = [self.clamp(w.units) if w.units is not None else 0 for w in self.windows]
        self.unknown_before = list(accumulate((w.unknown for w in self.windows), initial=0))

    # -- grid ---------------------------------------------------------------------------

    def at_slot(self, k: int) -> dt.datetime:
        return self.ds0 + k * self.step

    def fmt_time(self, when: dt.datetime) -> str:
        """``HH:MM`` in the display zone (with the date when it is not today's there),
        ``Z`` for UTC, else the zone's abbreviation (``EST``)."""
        local = when.astimezone(self.tz)
        pattern = "%H:%M:%S" if local.second or local.microsecond else "%H:%M"
        if local.date() != self.now.astimezone(self.tz).date():
            pattern = "%Y-%m-%d " + pattern
        if _is_utc(self.tz):
            return local.strftime(pattern) + "Z"
        return local.strftime(pattern) + " " + (local.tzname() or str(self.tz))

    def observed_text(self) -> str:
        """The floor's demand as the reasons quote it: the observed demand (the highest of
        the floor's hold, :func:`floor_hold`) and its headroom."""
        hold = floor_hold(self.policy)
        demand = _fmt_num(self.observed or 0.0)
        text = f"observed demand {demand}"
        if hold > dt.timedelta(0):
            text = f"observed demand up to {demand} in the last {_fmt_td(hold)}"
        h = self.policy.observed_headroom
        return text + (f" (+{h * 100:.0f} % headroom)" if h else "")

    def window(self, k: int) -> _Window:
        return self.windows[k - self.lo]

    def _window(self, k: int) -> _Window:
        unknown = k < 0 or k + self.m > self.last
        best: int | None = None
        best_row: int | None = None
        for j in range(max(k, 0), min(k + self.m, self.last) + 1):
            r = self.req[j]
            if r is None:
                unknown = True
            elif best is None or r > best:
                best, best_row = r, j
        return _Window(units=best, row=best_row, unknown=unknown)

    def clamp(self, units: int) -> int:
        return min(max(units, self.policy.min_units), self.policy.max_units)

    def floor_at(self, k: int) -> int | None:
        if self.floor_units is None:
            return None
        if k == self.g0 or self.at_slot(k) < self.floor_until:
            return self.floor_units
        return None

    def need(self, k: int) -> _Need:
        win = self.window(k)
        forecast_units = win.units if win.units is not None else -1
        floor = self.floor_at(k)
        floor_units = floor if floor is not None else -1
        raw = max(forecast_units, floor_units)
        source: _Source
        if raw < self.policy.min_units:
            source, raw = "min", self.policy.min_units
        elif forecast_units >= floor_units:
            source = "forecast"
        else:
            source = "floor"
        return _Need(
            units=self.clamp(raw),
            source=source,
            raw=raw,
            row=win.row if source == "forecast" else None,
        )

    # -- the passes ---------------------------------------------------------------------

    def plan(self, notes: list[str]) -> CapacityPlan:
        slots = range(self.g0, self.last + 1)
        needs = {k: self.need(k) for k in slots}
        ramp, driver = self._backward(needs)
        units, lowers, suppressed = self._forward(ramp)
        self._note_unknown(notes)
        self._note_floor_above_max(notes)
        notes.extend(suppressed)
        steps = self._steps(needs, ramp, driver, units, lowers, notes)
        desired = pd.DataFrame(
            {
                "ds": pd.date_range(
                    start=pd.Timestamp(self.at_slot(self.g0)),
                    periods=len(slots),
                    freq=pd.Timedelta(self.step),
                ),
                "units": np.array([units[k] for k in slots], dtype="int64"),
            }
        )
        return CapacityPlan(
            steps=tuple(steps),
            desired=desired,
            current_units=self.current,
            now=self.now,
            notes=tuple(notes),
        )

    def _backward(self, needs: dict[int, _Need]) -> tuple[dict[int, int], dict[int, int]]:
        """Units each slot must hold so every later need is reachable under max_step_up
        per step_period (rule 5).

        The units at slot ``k`` start the window of a change at ``k + 1``, which holds the
        slots ``k + 1 .. k + w``: ``k`` must hold enough for one window's raise to reach
        the highest of their ramp floors. Returns (ramp floor per slot, slot whose need
        drives it).
        """
        ramp: dict[int, int] = {}
        driver: dict[int, int] = {}
        # Sliding-window maximum over slots k + 1 .. k + w: the candidates, indices and
        # floors both strictly ascending, so the last is the (earliest) highest.
        ahead: deque[int] = deque()
        for k in range(self.last, self.g0 - 1, -1):
            if k < self.last:
                while ahead and ramp[ahead[0]] <= ramp[k + 1]:
                    ahead.popleft()
                ahead.appendleft(k + 1)
                if ahead[-1] > k + self.w:
                    ahead.pop()
            own = needs[k].units
            later = _lowest_start(ramp[ahead[-1]], self.policy.max_step_up) if ahead else 0
            if own >= later:
                ramp[k], driver[k] = own, k
            else:
                ramp[k], driver[k] = later, driver[ahead[-1]]
        return ramp, driver

    def _in_window(self, levels: list[tuple[dt.datetime, int]], at: dt.datetime) -> list[int]:
        """The units in force at some moment of ``[at - step_period, at)``: each starts a
        window that holds a change at ``at``. ``levels`` are the remembered and planned
        changes so far as (applied at, units), in time order; before them ``self.base`` is
        in force."""
        cut = at - self.policy.step_period
        seen: list[int] = []
        i = len(levels)
        while i > 0 and levels[i - 1][0] > cut:
            i -= 1
            seen.append(levels[i][1])
        seen.append(levels[i - 1][1] if i > 0 else self.base)
        return seen

    def _range(self, seen: list[int]) -> tuple[int | None, int | None]:
        """(highest, lowest) units a change may set when each of ``seen`` starts a window
        holding it; ``None`` where that direction is unlimited."""
        up, down = self.policy.max_step_up, self.policy.max_step_down
        highs = [c + a for c in seen if (a := _limit(up, c)) is not None]
        lows = [c - a for c in seen if (a := _limit(down, c)) is not None]
        return (min(highs) if highs else None), (max(lows) if lows else None)

    def _bound(self, k: int, units: dict[int, int], prev: int) -> int:
        """The lower bound at slot ``k``: the largest weight (:meth:`_lookback`) of the
        slots ``k - S .. k``, then of what the next ``S`` slots need (anti-flap)."""
        a, b = k - self.s - self.lo, k + 1 - self.lo
        if self.unknown_before[b] == self.unknown_before[a]:  # every window known
            bound = max(self.known[a:b])
        else:
            bound = max(self._lookback(i, k, units, prev) for i in range(k - self.s, k + 1))
        ahead = self.known[b : min(k + self.s, self.last) + 1 - self.lo]
        return max(bound, *ahead) if ahead else bound

    def _lookback(self, i: int, k: int, units: dict[int, int], prev: int) -> int:
        """Slot ``i``'s weight in slot ``k``'s stabilisation window (units)."""
        win = self.window(i)
        known = self.clamp(win.units) if win.units is not None else 0
        if not win.unknown:
            return known
        if i < self.g0:
            held = self.current
        elif i < k:
            held = units[i]
        else:
            held = prev
        return max(known, held)

    def _forward(self, ramp: dict[int, int]) -> tuple[dict[int, int], dict[int, _Lower], list[str]]:
        """Units per slot, walking forward from current_units.

        Raises go toward the ramp floor (step-limited); lowers toward the stabilised bound,
        subject to the scale-in policy, hysteresis and step limits; above max_units always
        goes down. Returns (units per slot, lower details per slot, hysteresis notes).
        """
        policy = self.policy
        units: dict[int, int] = {}
        lowers: dict[int, _Lower] = {}
        suppressed: list[str] = []
        prev = self.current
        # Changes so far, remembered then planned: (applied at, units).
        levels: list[tuple[dt.datetime, int]] = list(self.history)
        continuing = False  # a step-limited lower is under way
        suppressing = False
        for k in range(self.g0, self.last + 1):
            needed = ramp[k]
            # Every window holding a change now allows [lowest, highest]. prev is inside
            # unless the remembered history broke a limit: then hold, never move the other
            # way to repair it.
            highest, lowest = self._range(self._in_window(levels, self.at(k)))
            if needed > prev:
                new = needed if highest is None else max(prev, min(needed, highest))
                continuing = suppressing = False
            else:
                target, bound = prev, prev
                if self.allowed:
                    # Anti-flap (in _bound): never lower into a dip that has to be raised
                    # out of within the next stabilisation window.
                    bound = self._bound(k, units, prev)
                    wanted = max(needed, bound)
                    if wanted < prev:
                        if continuing or self._frees_enough(prev, wanted):
                            target = wanted
                            suppressing = False
                        else:
                            if not suppressing:
                                suppressed.append(
                                    f"ignored lower {prev}→{wanted} at "
                                    f"{self.fmt_time(self.at(k))}: frees {prev - wanted} of "
                                    f"{prev} units, under scale_in_tolerance "
                                    f"{_fmt_num(policy.scale_in_tolerance)}"
                                )
                            suppressing = True
                    else:
                        suppressing = False
                forced = target > policy.max_units
                if forced:
                    target = policy.max_units
                if target < prev:
                    new = target if lowest is None else min(prev, max(target, lowest))
                    lowers[k] = _Lower(target=target, bound=bound, forced=forced)
                    continuing = new > target
                else:
                    new = prev
                    continuing = False
            if new != prev:
                levels.append((self.at(k), new))
            units[k] = new
            prev = new
        return units, lowers, suppressed

    def _frees_enough(self, before: int, after: int) -> bool:
        """Hysteresis: a lower must free at least ``scale_in_tolerance`` of ``before``."""
        threshold = self.policy.scale_in_tolerance * before * (1 - _REL_EPS)
        return before - after >= threshold

    def at(self, k: int) -> dt.datetime:
        """When a change at slot ``k`` is applied: its start, or now if that has passed."""
        return max(self.at_slot(k), self.now)

    # -- notes --------------------------------------------------------------------------

    def _note_unknown(self, notes: list[str]) -> None:
        rows = [j for j, r in enumerate(self.req) if r is None]
        if rows:
            first = self.fmt_time(self.at_slot(rows[0]))
            notes.append(
                f"{len(rows)} forecast row(s) without yhat_upper (NaN), first at {first}: "
                "demand unknown there, capacity held (no lower across them)"
            )

    def _note_floor_above_max(self, notes: list[str]) -> None:
        if self.floor_units is not None and self.floor_units > self.policy.max_units:
            notes.append(
                f"{self.observed_text()} needs {self.floor_units} units, above max_units "
                f"{self.policy.max_units}"
            )

    # -- steps --------------------------------------------------------------------------

    def _steps(
        self,
        needs: dict[int, _Need],
        ramp: dict[int, int],
        driver: dict[int, int],
        units: dict[int, int],
        lowers: dict[int, _Lower],
        notes: list[str],
    ) -> list[CapacityStep]:
        drafts: list[_Draft] = []
        prev = self.current
        for k in range(self.g0, self.last + 1):
            new = units[k]
            if new > prev:
                drafts.append(self._raise(k, prev, new, needs, ramp, driver))
            elif new < prev:
                drafts.append(self._lower(k, prev, new, needs, lowers[k]))
            prev = new
        self._note_shortfalls(needs, units, drafts, notes)
        return [
            CapacityStep(
                at=self.at(d.slot),
                units=d.units,
                from_units=d.from_units,
                reason=d.reason,
                direction=d.direction,
                serves_at=d.serves_at,
                demand=d.demand,
                constraints=tuple(d.constraints),
            )
            for d in drafts
        ]

    def _tolerated(self, demand: float, units: int) -> str:
        """Says so when the unit tolerance rounded ``demand`` down to ``units``."""
        tol = self.policy.unit_tolerance
        if tol > 0 and demand > units * self.policy.capacity_per_unit * (1 + _REL_EPS):
            return f" (within the unit tolerance, {_fmt_num(tol)} of a unit)"
        return ""

    def _source_text(self, need: _Need) -> tuple[str, dt.datetime, float, list[str]]:
        """(clause, serves_at, demand, constraints) for the need that drives a raise."""
        policy = self.policy
        cpu = _fmt_num(policy.capacity_per_unit)
        constraints: list[str] = []
        if need.source == "forecast" and need.row is not None:
            row = need.row
            serves = self.at_slot(row)
            demand = self.demand[row]
            text = (
                f"forecast upper band {_fmt_num(demand)} at {self.fmt_time(serves)} needs "
                f"{need.raw} units at {cpu} per unit{self._tolerated(demand, need.raw)}"
            )
            if policy.lead_time:
                text += f"; lead time {_fmt_td(policy.lead_time)}"
        elif need.source == "floor":
            serves = self.now
            demand = self.observed or 0.0
            text = (
                f"{self.observed_text()} needs {need.raw} units at {cpu} per unit"
                f"{self._tolerated(self.floor_demand, need.raw)} "
                f"(reactive floor until {self.fmt_time(self.floor_until)})"
            )
            constraints.append("observed-demand floor")
        else:
            serves = self.now
            demand = 0.0
            text = f"min_units is {policy.min_units}"
            constraints.append("raised to min_units")
        if need.raw > policy.max_units:
            text += f"; clamped to max_units {policy.max_units}"
            constraints.append("clamped to max_units")
        return text, serves, demand, constraints

    def _raise(
        self,
        k: int,
        before: int,
        after: int,
        needs: dict[int, _Need],
        ramp: dict[int, int],
        driver: dict[int, int],
    ) -> _Draft:
        drv = driver[k]
        need = needs[drv]
        text, serves, demand, constraints = self._source_text(need)
        if need.source == "min":
            serves = self.at(drv)
        if drv != k or after < ramp[k]:
            text += f"; step-limited ramp toward {need.units} by {self.fmt_time(self.at(drv))}"
            constraints.append(f"step-limited: max_step_up {_fmt_limit(self.policy.max_step_up)}")
        return _Draft(
            slot=k,
            units=after,
            from_units=before,
            direction="raise",
            serves_at=max(serves, self.now),
            demand=demand,
            reason=f"raise {before}→{after} at {self.fmt_time(self.at(k))}: {text}",
            constraints=constraints,
        )

    def _lower(
        self, k: int, before: int, after: int, needs: dict[int, _Need], lower: _Lower
    ) -> _Draft:
        policy = self.policy
        constraints: list[str] = []
        rows = range(max(k - self.s, 0), min(k + self.m, self.last) + 1)
        known = [self.demand[j] for j in rows if self.req[j] is not None]
        demand = max(known) if known else 0.0
        if lower.forced and lower.target == policy.max_units:
            text = f"{before} units is above max_units {policy.max_units}"
            constraints.append("lowered to max_units")
        else:
            peak = self._last_higher_row(k - self.s, lower.target)
            after_peak = (
                "" if peak is None else f" after the peak at {self.fmt_time(self.at_slot(peak))}"
            )
            if policy.stabilization:
                text = (
                    f"demand stayed ≤ {_fmt_num(demand)} (needs {lower.bound}) for the "
                    f"{_fmt_td(policy.stabilization)} stabilisation window{after_peak}"
                )
            else:
                text = (
                    f"demand falls to ≤ {_fmt_num(demand)} (needs {lower.bound}){after_peak}; "
                    "no stabilisation window"
                )
            need = needs[k]
            # The look-back bound includes this slot's forecast need and min_units, so only
            # the observed-demand floor or a later raise's ramp can hold the target above it.
            if lower.target > lower.bound:
                if need.source == "floor" and lower.target == need.units:
                    text += (
                        f"; held at {lower.target} by {self.observed_text()} (reactive floor "
                        f"until {self.fmt_time(self.floor_until)})"
                    )
                    constraints.append("observed-demand floor")
                    demand = self.observed or 0.0
                else:
                    text += f"; held at {lower.target} to ramp up for a later raise"
        if after > lower.target:
            text += f"; step-limited toward {lower.target}"
            constraints.append(f"step-limited: max_step_down {_fmt_limit(policy.max_step_down)}")
        return _Draft(
            slot=k,
            units=after,
            from_units=before,
            direction="lower",
            serves_at=self.at(k),
            demand=demand,
            reason=f"lower {before}→{after} at {self.fmt_time(self.at(k))}: {text}",
            constraints=constraints,
        )

    def _last_higher_row(self, before_row: int, units: int) -> int | None:
        """The last forecast row before ``before_row`` that needs more than ``units``."""
        for j in range(min(before_row, self.last + 1) - 1, -1, -1):
            r = self.req[j]
            if r is not None and r > units:
                return j
        return None

    def _note_shortfalls(
        self,
        needs: dict[int, _Need],
        units: dict[int, int],
        drafts: list[_Draft],
        notes: list[str],
    ) -> None:
        """Note needs that step-up limits cannot meet even when ramping from now."""
        in_run = False
        for k in range(self.g0, self.last + 1):
            need = needs[k]
            short = units[k] < need.units
            if short and not in_run:
                _, serves, _, _ = self._source_text(need)
                due = self.at(k)
                serves = max(serves, due)
                message = f"step-limited: {need.units} needed at {self.fmt_time(due)}"
                if serves != due:
                    message += f" for demand at {self.fmt_time(serves)}"
                message += f", {units[k]} reachable"
                notes.append(message)
                raises = [d for d in drafts if d.slot <= k and d.direction == "raise"]
                if raises:
                    raises[-1].constraints.append(message)
            in_run = short
