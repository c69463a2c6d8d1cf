"""Rolling-origin backtest with capacity outcomes (pure: frames and functions in, a result out).

For each cutoff: the candidate models are fitted on the demand *before* the cutoff
(``candidates``, injected - Prophet and seasonal naive in the product), the record of the
earlier folds chooses the model and how far to trust its band
(:func:`forecaster.accuracy.choose_model`), and the capacity planner
(:func:`forecaster.capacity.plan_capacity`) is replayed once at the cutoff, exactly as the
daemon would plan with that forecast: lead time, clamps, step limits and scale-in policy
applied, the current units carried over from the previous fold. Nothing after the cutoff
is seen by the forecast or the plan.

Capacity is then simulated on a regular grid (``sim_step``, default the series' step; a
finer grid is filled by linear interpolation) over every fold's horizon and compared with
baselines on the same demand:

* **reactive target tracking** (AWS-style): desired = ``ceil(demand seen delay ago /
  (capacity_per_unit * (1 - headroom)))``; new units serve after ``warmup`` (and are paid
  for from launch); scale-in is immediate but only ``cooldown`` after the last change.
  Simulated continuously from a day before the first fold so its state is warm.
* **seasonal naive x (1 + buffer)**: the demand one week earlier times 1.2, planned with
  the same planner and policy as forescale (so the difference is the forecast alone).
* **static peak**: the units the highest evaluated demand needs, all the time.

A step is *under-provisioned* when ``units * capacity_per_unit < demand``; unit-hours are
``sum(units) * step``. Without a ``capacity_per_unit`` it is chosen so that the peak
evaluated demand needs ``peak_units`` (20) units - hindsight, as in the published
baselines, and said in the notes.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from forecaster.accuracy import (
    Floor,
    choose_model,
    coverage,
    headroom,
    mape,
    mase,
    on_grid,
    record_rows,
    seasonal_mae,
    smape,
)
from forecaster.candidates import DEFAULT_MODELS
from forecaster.capacity import plan_capacity, planner_frame, units_for
from forecaster.grid import native_step
from forecaster.types import CapacityPolicy, Forecast
from forescale.errors import ForecastError, ForescaleError, PlanError

__all__ = [
    "ApproachOutcome",
    "BacktestConfig",
    "BacktestResult",
    "FoldResult",
    "ModelMetrics",
    "ReactiveBaseline",
    "rolling_cutoffs",
    "run_backtest",
]

FORESCALE = "forescale"
# As in forecaster.capacity.units_for: demand this close above units x capacity is served
# (float noise in peak / 20 x 20 must not count as a shortfall).
_REL_EPS = 1e-9
STATIC = "static_peak"
WEEK = dt.timedelta(days=7)
DAY = dt.timedelta(days=1)

Candidates = Callable[[pd.DataFrame, dt.datetime], dict[str, Forecast]]


@dataclass(frozen=True, kw_only=True, slots=True)
class ReactiveBaseline:
    """Target tracking: the name, the headroom kept (0.2 = aim at 80 % utilisation)."""

    name: str
    headroom: float = 0.0
    delay: dt.timedelta = dt.timedelta(minutes=10)  # metric period + alarm evaluation
    warmup: dt.timedelta = dt.timedelta(minutes=5)  # a new unit serves after this
    cooldown: dt.timedelta = dt.timedelta(minutes=15)  # scale-in waits this after a change


DEFAULT_REACTIVE = (
    ReactiveBaseline(name="reactive", headroom=0.0),
    ReactiveBaseline(name="reactive_headroom_20", headroom=0.2),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class BacktestConfig:
    cutoffs: tuple[dt.datetime, ...]
    horizon: dt.timedelta = DAY
    policy: CapacityPolicy  # capacity_per_unit <= 0 here means "choose from the peak"
    peak_units: int = 20
    sim_step: dt.timedelta | None = None
    record_folds: int = 3  # folds before the first cutoff that only seed the record
    record_window: dt.timedelta = WEEK
    target_under: float = 0.03
    max_band_factor: float = 3.0
    min_record_steps: int = 48
    naive_buffer: float = 0.2
    reactive: tuple[ReactiveBaseline, ...] = DEFAULT_REACTIVE
    models: tuple[str, ...] = DEFAULT_MODELS  # first = primary
    # "daemon": replay the daemon's apply loop every sim step with the fold's forecast and
    # the demand collected so far (``collect_delay`` old) as the observed floor; raises
    # serve after ``warmup``. "cutoff": one plan at the cutoff, nothing seen after it.
    replay: Literal["daemon", "cutoff"] = "daemon"
    collect_delay: dt.timedelta = dt.timedelta(minutes=10)
    warmup: dt.timedelta = dt.timedelta(minutes=5)


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelMetrics:
    model: str
    steps: int
    mape: float
    smape: float
    mase: float
    coverage: float  # share of actuals inside [lower, upper]
    under_band: float  # share of actuals above upper


@dataclass(frozen=True, kw_only=True, slots=True)
class FoldResult:
    fold: int
    cutoff: dt.datetime
    model: str | None  # the model that planned capacity (None: the fold failed)
    band_factor: float
    reason: str
    metrics: tuple[ModelMetrics, ...] = ()
    error: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ApproachOutcome:
    name: str
    steps: int
    under_share: float
    unit_hours: float
    vs_static: float  # unit-hours / static peak's
    mean_units: float


@dataclass(frozen=True, kw_only=True, slots=True)
class BacktestResult:
    folds: tuple[FoldResult, ...]
    metrics: tuple[ModelMetrics, ...]  # over all scored steps, forescale + each model
    approaches: tuple[ApproachOutcome, ...]
    schedule: pd.DataFrame  # ts, fold, demand, forecast, upper, units, units_<baseline>...
    points: pd.DataFrame  # ds, fold, actual, <model>:yhat/:lower/:upper on the series' grid
    capacity_per_unit: float
    capacity_per_unit_source: str  # "given" | "peak/<n>"
    sim_step: dt.timedelta
    horizon: dt.timedelta
    notes: tuple[str, ...] = field(default=())


def rolling_cutoffs(
    ds: pd.DatetimeIndex,
    *,
    horizon: dt.timedelta,
    count: int,
    spacing: dt.timedelta = DAY,
    min_history: dt.timedelta = WEEK,
    timezone: str = "UTC",
) -> tuple[dt.datetime, ...]:
    """``count`` cutoffs ``spacing`` apart, the last one leaving a whole ``horizon`` of
    history after it, none with less than ``min_history`` before it. With a spacing of
    whole days they fall on local midnights of ``timezone``."""
    if count < 1:
        raise ForecastError("the number of backtest folds must be at least 1")
    if len(ds) < 2:
        raise ForecastError("the series has fewer than 2 samples")
    step = pd.Timedelta(native_step(ds))
    end = ds[-1] + step
    last = end - pd.Timedelta(horizon)
    if spacing % DAY == dt.timedelta(0):
        # Whole days step back on the local calendar, so every cutoff is a local midnight
        # also across a DST change.
        tz = ZoneInfo(timezone)
        midnight = last.tz_convert(tz).normalize().tz_localize(None)
        days = spacing // DAY
        out = [
            (midnight - pd.Timedelta(days=days * i))
            .tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
            .tz_convert("UTC")
            for i in range(count)
        ]
    else:
        last = last.floor(f"{int(spacing.total_seconds())}s")
        out = [last - pd.Timedelta(spacing) * i for i in range(count)]
    first_ok = ds[0] + pd.Timedelta(min_history)
    kept = sorted(t.to_pydatetime() for t in out if t >= first_ok)
    if not kept:
        raise ForecastError(
            f"no backtest cutoff leaves {min_history} of history before it and a "
            f"{horizon} horizon after it; the series spans {ds[0]} .. {end}"
        )
    return tuple(kept)


def run_backtest(
    series: pd.DataFrame, config: BacktestConfig, candidates: Candidates
) -> BacktestResult:
    """Backtest ``candidates`` on ``series`` (``ds`` UTC regular, ``y``) at ``config.cutoffs``."""
    if not config.cutoffs:
        raise ForecastError("no backtest cutoffs")
    cutoffs = sorted(c.astimezone(dt.UTC) for c in config.cutoffs)
    series = series[["ds", "y"]].sort_values("ds").reset_index(drop=True)
    ds = pd.DatetimeIndex(series["ds"])
    native = native_step(ds)
    sim_step = config.sim_step or native
    if sim_step > native:
        raise ForecastError(
            f"sim_step {sim_step} is coarser than the series' step {native}; use a finer one"
        )
    demand = _sim_demand(series, native, sim_step, cutoffs[0] - DAY, cutoffs[-1] + config.horizon)
    horizon = pd.Timedelta(config.horizon)
    in_fold = np.zeros(len(demand), dtype=bool)
    fold_of = np.full(len(demand), -1)
    sim_ds = pd.DatetimeIndex(demand["ds"])
    for i, c in enumerate(cutoffs):
        mask = (sim_ds >= pd.Timestamp(c)) & (sim_ds < pd.Timestamp(c) + horizon)
        fold_of[mask & ~in_fold] = i
        in_fold |= np.asarray(mask)
    scored = in_fold & demand["y"].notna().to_numpy()
    peak = float(np.nanmax(demand["y"].to_numpy()[scored])) if scored.any() else math.nan
    notes: list[str] = []
    if config.policy.capacity_per_unit > 0:
        cpu, cpu_source = config.policy.capacity_per_unit, "given"
    else:
        if not peak > 0:
            raise ForecastError("no positive demand in the backtest folds to size units from")
        cpu, cpu_source = peak / config.peak_units, f"peak/{config.peak_units}"
        notes.append(
            f"capacity_per_unit = peak evaluated demand / {config.peak_units} = {cpu:.6g} "
            "(hindsight: the static peak needs exactly that many units)"
        )
    policy = replace(config.policy, capacity_per_unit=cpu)

    # Seed the record with folds before the first cutoff (fitted, not scored).
    seed_cutoffs = [cutoffs[0] - config.horizon * (k + 1) for k in range(config.record_folds)]
    record = pd.DataFrame()
    folds: list[FoldResult] = []
    forescale_units = pd.Series(np.nan, index=sim_ds)
    forescale_paid = pd.Series(np.nan, index=sim_ds)
    upper_used = pd.Series(np.nan, index=sim_ds)
    point_used = pd.Series(np.nan, index=sim_ds)
    naive_units = pd.Series(np.nan, index=sim_ds)
    per_model: dict[str, list[pd.DataFrame]] = {}
    points: list[pd.DataFrame] = []
    carried: int | None = None
    carried_at: dt.datetime | None = None
    carried_force: list[tuple[dt.datetime, int]] = []  # the daemon replay's memory
    for seed in sorted(seed_cutoffs):
        fits = _fit(candidates, series, seed)
        if isinstance(fits, dict):
            record = _grow(record, series, fits, seed, config.horizon)
    for i, cutoff in enumerate(cutoffs):
        history = series[series["ds"] < pd.Timestamp(cutoff)]
        fits = _fit(candidates, series, cutoff)
        recent = _recent(record, cutoff, config.record_window)
        if isinstance(fits, str):
            folds.append(
                FoldResult(
                    fold=i, cutoff=cutoff, model=None, band_factor=1.0, reason="", error=fits
                )
            )
            continue
        available = [m for m in config.models if m in fits]
        if not available:
            folds.append(
                FoldResult(
                    fold=i,
                    cutoff=cutoff,
                    model=None,
                    band_factor=1.0,
                    reason="",
                    error=f"fitted {', '.join(sorted(fits))} but the configured models are "
                    f"{', '.join(config.models)}",
                )
            )
            continue
        choice = choose_model(
            recent,
            available,
            target_under=config.target_under,
            max_factor=config.max_band_factor,
            min_steps=config.min_record_steps,
            primary=available[0],
            floor=Floor(headroom=policy.observed_headroom, delay=config.collect_delay)
            if config.replay == "daemon"
            else None,
        )
        used = headroom(fits[choice.model], choice)
        observed = _last_observed(history, cutoff, native)
        mask = fold_of == i
        start = carried if carried is not None and carried_at == cutoff else None
        if config.replay == "daemon":
            units, paid, carried_force = _daemon_units(
                used,
                history,
                policy,
                cutoff,
                observed,
                start,
                sim_ds[mask],
                demand["y"].to_numpy(dtype=float),
                np.flatnonzero(mask),
                config,
                sim_step,
                carried_force if start is not None else (),
            )
        else:
            units = paid = _plan_units(used, history, policy, cutoff, observed, start, sim_ds[mask])
        forescale_units[mask] = units
        forescale_paid[mask] = paid
        rows = on_grid(used.frame[["ds", "yhat", "yhat_upper"]], sim_ds[mask], used.resolution)
        upper_used[mask] = rows["yhat_upper"].to_numpy()
        point_used[mask] = rows["yhat"].to_numpy()
        naive = _naive_forecast(series, cutoff, config.horizon, config.naive_buffer, native)
        naive_start = None
        if start is not None and i > 0:
            prev = naive_units[fold_of == i - 1]
            naive_start = int(prev.iloc[-1]) if len(prev) else None
        naive_units[mask] = _plan_units(
            naive, history, policy, cutoff, observed, naive_start, sim_ds[mask]
        )
        carried = int(paid[-1]) if len(paid) else None
        carried_at = cutoff + config.horizon
        fold_metrics = _fold_metrics(series, cutoff, config.horizon, fits, used, native)
        for name, frame in fold_metrics.items():
            per_model.setdefault(name, []).append(frame)
        points.append(_points(i, fold_metrics))
        folds.append(
            FoldResult(
                fold=i,
                cutoff=cutoff,
                model=choice.model,
                band_factor=choice.band_factor,
                reason=choice.reason,
                metrics=tuple(_metrics(name, f) for name, f in fold_metrics.items()),
            )
        )
        record = _grow(record, series, fits, cutoff, config.horizon)

    y = demand["y"].to_numpy(dtype=float)
    static_units = units_for(peak, cpu) if math.isfinite(peak) else 0
    columns: dict[str, np.ndarray] = {
        "units": forescale_units.to_numpy(),
        "paid_forescale": forescale_paid.to_numpy(),
        "units_seasonal_naive_x1_2": naive_units.to_numpy(),
    }
    for baseline in config.reactive:
        serving, paid = _reactive(demand, baseline, cpu, policy, sim_step)
        columns[f"units_{baseline.name}"] = serving
        columns[f"paid_{baseline.name}"] = paid
    columns[f"units_{STATIC}"] = np.full(len(demand), float(static_units))

    evaluated = scored & np.isfinite(forescale_units.to_numpy())
    hours = sim_step.total_seconds() / 3600
    static_hours = static_units * hours * int(evaluated.sum())
    approaches = []
    names = [
        (FORESCALE, "units", "paid_forescale"),
        ("seasonal_naive_x1_2", *(["units_seasonal_naive_x1_2"] * 2)),
    ]
    names += [(b.name, f"units_{b.name}", f"paid_{b.name}") for b in config.reactive]
    names.append((STATIC, f"units_{STATIC}", f"units_{STATIC}"))
    for name, serving_col, paid_col in names:
        serving_v = columns[serving_col][evaluated]
        paid_v = columns[paid_col][evaluated]
        unit_hours = float(np.nansum(paid_v) * hours)
        approaches.append(
            ApproachOutcome(
                name=name,
                steps=int(evaluated.sum()),
                under_share=float(np.mean(serving_v * cpu * (1 + _REL_EPS) < y[evaluated]))
                if evaluated.any()
                else math.nan,
                unit_hours=unit_hours,
                vs_static=unit_hours / static_hours if static_hours > 0 else math.nan,
                mean_units=float(np.nanmean(paid_v)) if evaluated.any() else math.nan,
            )
        )
    schedule = pd.DataFrame(
        {
            "ts": sim_ds[in_fold],
            "fold": fold_of[in_fold],
            "demand": y[in_fold],
            "forecast": point_used.to_numpy()[in_fold],
            "upper": upper_used.to_numpy()[in_fold],
            **{k: v[in_fold] for k, v in columns.items() if not k.startswith("paid_")},
            **{f"paid_{name}": columns[paid_col][in_fold] for name, _, paid_col in names},
        }
    )
    overall = tuple(
        _metrics(name, pd.concat(frames, ignore_index=True)) for name, frames in per_model.items()
    )
    failed = [f for f in folds if f.error]
    if failed:
        notes.append(f"{len(failed)} of {len(folds)} folds failed to fit and are not scored")
    return BacktestResult(
        folds=tuple(folds),
        metrics=overall,
        approaches=tuple(approaches),
        schedule=schedule.reset_index(drop=True),
        points=pd.concat(points, ignore_index=True) if points else pd.DataFrame(),
        capacity_per_unit=cpu,
        capacity_per_unit_source=cpu_source,
        sim_step=sim_step,
        horizon=config.horizon,
        notes=tuple(notes),
    )


# ------------------------------------------------------------------------------ pieces


def _fit(
    candidates: Candidates, series: pd.DataFrame, cutoff: dt.datetime
) -> dict[str, Forecast] | str:
    history = series[series["ds"] < pd.Timestamp(cutoff)].reset_index(drop=True)
    try:
        fits = candidates(history, cutoff)
    except ForescaleError as exc:
        return f"{type(exc).__name__}: {exc}"
    return fits or "no model could be fitted"


def _grow(
    record: pd.DataFrame,
    series: pd.DataFrame,
    fits: dict[str, Forecast],
    cutoff: dt.datetime,
    horizon: dt.timedelta,
) -> pd.DataFrame:
    rows = record_rows(series, fits, start=cutoff, end=cutoff + horizon)
    return rows if record.empty else pd.concat([record, rows], ignore_index=True)


def _recent(record: pd.DataFrame, cutoff: dt.datetime, window: dt.timedelta) -> pd.DataFrame:
    if record.empty:
        return record
    ds = record["ds"]
    keep = (ds < pd.Timestamp(cutoff)) & (ds >= pd.Timestamp(cutoff - window))
    return record[keep]


def _last_observed(
    history: pd.DataFrame, cutoff: dt.datetime, native: dt.timedelta
) -> float | None:
    seen = history[history["y"].notna()]
    if seen.empty:
        return None
    last = seen.iloc[-1]
    if pd.Timestamp(last["ds"]) < pd.Timestamp(cutoff) - pd.Timedelta(native) * 3:
        return None
    return float(last["y"])


def _starting_units(current: int | None, observed: float | None, policy: CapacityPolicy) -> int:
    """The units in force at a fold's cutoff: carried over, else what the last observed
    demand needs (clamped)."""
    if current is not None:
        return current
    base = units_for(observed, policy.capacity_per_unit) if observed is not None else 0
    return min(max(base, policy.min_units), policy.max_units)


def _plan_units(
    forecast: Forecast,
    history: pd.DataFrame,
    policy: CapacityPolicy,
    cutoff: dt.datetime,
    observed: float | None,
    current: int | None,
    at: pd.DatetimeIndex,
) -> np.ndarray:
    """Units in force at each ``at`` from one plan made at ``cutoff``."""
    current = _starting_units(current, observed, policy)
    frame = planner_frame(forecast, history, policy.stabilization + policy.lead_time)
    try:
        plan = plan_capacity(
            frame, policy=policy, current_units=current, now=cutoff, observed_demand=observed
        )
    except PlanError:
        return np.full(len(at), float(current))
    desired = plan.desired
    starts = pd.DatetimeIndex(desired["ds"])
    pos = np.clip(starts.searchsorted(at, side="right") - 1, 0, len(desired) - 1)
    return desired["units"].to_numpy(dtype=float)[pos]


def _daemon_units(
    forecast: Forecast,
    history: pd.DataFrame,
    policy: CapacityPolicy,
    cutoff: dt.datetime,
    observed: float | None,
    current: int | None,
    at: pd.DatetimeIndex,
    demand: np.ndarray,
    rows: np.ndarray,
    config: BacktestConfig,
    step: dt.timedelta,
    before: Sequence[tuple[dt.datetime, int]] = (),
) -> tuple[np.ndarray, np.ndarray, list[tuple[dt.datetime, int]]]:
    """(serving, paid) units at each ``at``: the daemon's apply loop, replayed; and the
    units applied in the last ``step_period`` as (since, units), for the next fold.

    At every step the daemon plans with the fold's forecast (fitted before the cutoff) and
    the demand collected ``collect_delay`` ago as the observed floor, and the units it
    applied in the last ``step_period`` as the plan's memory (``in_force``, so two changes
    five minutes apart share one window's step limit), and applies the units due now; a
    raise serves ``warmup`` later (paid from the apply), a lower is immediate. ``before``
    is the previous fold's memory (ending with ``current``); without it the starting units
    count as in force for a whole ``step_period``.
    """
    current = _starting_units(current, observed, policy)
    frame = planner_frame(forecast, history, policy.stabilization + policy.lead_time)
    starts = pd.DatetimeIndex(frame["ds"])
    limited = policy.max_step_up.units is not None or policy.max_step_up.percent is not None
    ahead = pd.Timedelta(policy.lead_time + 2 * policy.stabilization + dt.timedelta(hours=1))
    behind = pd.Timedelta(policy.stabilization + policy.lead_time + dt.timedelta(hours=1))
    lag = int(round(config.collect_delay / step))
    warm = int(math.ceil(config.warmup / step))
    serving_v = np.empty(len(at))
    paid_v = np.empty(len(at))
    pending: list[tuple[int, int]] = []
    serving = paid = int(current)
    period = policy.step_period
    # The plan's memory, only what a window holding now can see: the entry in force at
    # now - step_period and the later ones (a few per plan, not the whole fold).
    force: deque[tuple[dt.datetime, int]] = deque(before)
    if not force or force[-1][1] != paid:
        force = deque([(at[0].to_pydatetime() - period, paid)] if len(at) else [])
    for i, t in enumerate(at):
        now = t.to_pydatetime()
        while len(force) > 1 and force[1][0] <= now - period:
            force.popleft()
        j = int(rows[i]) - lag
        seen = float(demand[j]) if j >= 0 and math.isfinite(demand[j]) else None
        lo = starts.searchsorted(t - behind)
        hi = len(starts) if limited else starts.searchsorted(t + ahead)
        window = frame.iloc[lo:hi]
        try:
            plan = plan_capacity(
                window,
                policy=policy,
                current_units=paid,
                now=now,
                observed_demand=seen,
                data_fresh=seen is not None,
                in_force=force,
            )
            want = int(plan.desired["units"].iloc[0])
        except PlanError:
            want = paid
        if want != paid:
            force.append((now, want))
        if want > paid:
            pending.append((i + warm, want))
        elif want < paid:
            serving = min(serving, want)
            pending = [(k, min(u, want)) for k, u in pending]
        paid = want
        while pending and pending[0][0] <= i:
            serving = max(serving, pending.pop(0)[1])
        serving = min(serving, paid)
        serving_v[i] = serving
        paid_v[i] = paid
    return serving_v, paid_v, list(force)


def _naive_forecast(
    series: pd.DataFrame,
    cutoff: dt.datetime,
    horizon: dt.timedelta,
    buffer: float,
    native: dt.timedelta,
) -> Forecast:
    """Seasonal naive (one week) x (1 + buffer) as the upper band, on the native grid."""
    start = pd.Timestamp(cutoff)
    grid = pd.date_range(
        start, start + pd.Timedelta(horizon), freq=pd.Timedelta(native), inclusive="left"
    )
    y = pd.Series(series["y"].to_numpy(dtype=float), index=pd.DatetimeIndex(series["ds"]))
    week = y.reindex(grid - pd.Timedelta(WEEK)).to_numpy()
    day = y.reindex(grid - pd.Timedelta(DAY)).to_numpy()
    point = np.where(np.isfinite(week), week, day)
    frame = pd.DataFrame(
        {"ds": grid, "yhat": point, "yhat_lower": point, "yhat_upper": point * (1 + buffer)}
    )
    return Forecast(
        frame=frame,
        components=(),
        resolution=native,
        interval_width=0.0,
        fitted_at=cutoff,
        history_end=cutoff - native,
        model="seasonal_naive_x1_2",
    )


def _sim_demand(
    series: pd.DataFrame,
    native: dt.timedelta,
    sim_step: dt.timedelta,
    start: dt.datetime,
    end: dt.datetime,
) -> pd.DataFrame:
    y = pd.Series(series["y"].to_numpy(dtype=float), index=pd.DatetimeIndex(series["ds"]))
    first = pd.Timestamp(start).floor(f"{int(sim_step.total_seconds())}s")
    count = int(math.ceil((pd.Timestamp(end) - first) / pd.Timedelta(sim_step)))
    grid = pd.date_range(first, periods=max(count, 0), freq=sim_step)
    if sim_step == native:
        values = y.reindex(grid).to_numpy()
    else:
        # Linear interpolation between samples; a step past the last sample is unknown.
        union = y.index.union(grid)
        filled = y.reindex(union).interpolate(method="time", limit_area="inside")
        values = filled.reindex(grid).to_numpy()
    return pd.DataFrame({"ds": grid, "y": values})


def _reactive(
    demand: pd.DataFrame,
    baseline: ReactiveBaseline,
    cpu: float,
    policy: CapacityPolicy,
    step: dt.timedelta,
) -> tuple[np.ndarray, np.ndarray]:
    """(serving units, paid units) per step for target tracking."""
    y = demand["y"].to_numpy(dtype=float)
    n = len(y)
    lag = int(round(baseline.delay / step))
    warm = int(math.ceil(baseline.warmup / step))
    cool = int(math.ceil(baseline.cooldown / step))
    per_unit = cpu * (1 - baseline.headroom)
    serving = np.zeros(n)
    paid = np.zeros(n)
    target = None
    ready: list[tuple[int, int]] = []  # (step index when it serves, units)
    current_serving = 0
    last_change = -(10**9)
    for t in range(n):
        seen = y[t - lag] if t - lag >= 0 else math.nan
        if math.isfinite(seen):
            want = min(max(units_for(seen, per_unit), policy.min_units), policy.max_units)
            if target is None:
                target = current_serving = want
                last_change = t
            elif want > target:
                ready.append((t + warm, want))
                target = want
                last_change = t
            elif want < target and t - last_change >= cool:
                target = current_serving = want
                ready = []
                last_change = t
        while ready and ready[0][0] <= t:
            current_serving = ready.pop(0)[1]
        serving[t] = current_serving
        paid[t] = target if target is not None else 0
    return serving, paid


def _fold_metrics(
    series: pd.DataFrame,
    cutoff: dt.datetime,
    horizon: dt.timedelta,
    fits: dict[str, Forecast],
    used: Forecast,
    native: dt.timedelta,
) -> dict[str, pd.DataFrame]:
    """Per model: the scored steps (actual, yhat, lower, upper, scale) on the native grid."""
    window = series[
        (series["ds"] >= pd.Timestamp(cutoff)) & (series["ds"] < pd.Timestamp(cutoff + horizon))
    ]
    window = window[window["y"].notna()]
    ds = pd.DatetimeIndex(window["ds"])
    history = series[series["ds"] < pd.Timestamp(cutoff)]["y"].to_numpy(dtype=float)
    lag = int(round(WEEK / native))
    scale = seasonal_mae(history, lag)
    if not math.isfinite(scale):
        scale = seasonal_mae(history, int(round(DAY / native)))
    out: dict[str, pd.DataFrame] = {}
    for name, fc in {FORESCALE: used, **fits}.items():
        rows = on_grid(fc.frame[["ds", "yhat", "yhat_lower", "yhat_upper"]], ds, fc.resolution)
        out[name] = pd.DataFrame(
            {
                "ds": ds,
                "actual": window["y"].to_numpy(dtype=float),
                "yhat": rows["yhat"].to_numpy(dtype=float),
                "lower": rows["yhat_lower"].to_numpy(dtype=float),
                "upper": rows["yhat_upper"].to_numpy(dtype=float),
                "scale": scale,
            }
        )
    return out


def _points(fold: int, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    first = next(iter(frames.values()))
    out = pd.DataFrame({"ds": first["ds"], "fold": fold, "actual": first["actual"]})
    for name, frame in frames.items():
        for col in ("yhat", "lower", "upper"):
            out[f"{name}:{col}"] = frame[col].to_numpy()
    return out


def _metrics(name: str, frame: pd.DataFrame) -> ModelMetrics:
    a = frame["actual"].to_numpy(dtype=float)
    f = frame["yhat"].to_numpy(dtype=float)
    upper = frame["upper"].to_numpy(dtype=float)
    scale = float(np.nanmean(frame["scale"].to_numpy(dtype=float))) if len(frame) else math.nan
    keep = np.isfinite(a) & np.isfinite(upper)
    return ModelMetrics(
        model=name,
        steps=int(np.isfinite(a).sum()),
        mape=mape(a, f),
        smape=smape(a, f),
        mase=mase(a, f, scale),
        coverage=coverage(a, frame["lower"].to_numpy(dtype=float), upper),
        under_band=float(np.mean(a[keep] > upper[keep])) if keep.any() else math.nan,
    )


def approach(result: BacktestResult, name: str) -> ApproachOutcome:
    for a in result.approaches:
        if a.name == name:
            return a
    raise KeyError(name)


def dominated_by(result: BacktestResult, name: str = FORESCALE) -> list[str]:
    """Baselines both cheaper and less often under-provisioned than ``name``."""
    own = approach(result, name)
    return [
        a.name
        for a in result.approaches
        if a.name != name and a.unit_hours < own.unit_hours and a.under_share < own.under_share
    ]
