"""Rolling-origin backtest with capacity outcomes (pure: frames and functions in, a result out).

For each cutoff: the candidate models are fitted on the demand *before* the cutoff
(``candidates``, injected - Prophet and seasonal naive in the product), the record of the
earlier folds chooses the model and how far to trust its band
(:func:`forescale.forecaster.accuracy.choose_model`), and the capacity planner
(:func:`forescale.forecaster.capacity.plan_capacity`) is replayed once at the cutoff, exactly as the
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

from forescale.config.durations import format_duration
from forescale.errors import ForecastError, ForescaleError, PlanError
from forescale.forecaster.accuracy import (
    RECORD_WINDOW,
    TARGET_UNDER,
    Choice,
    Floor,
    Serving,
    coverage,
    mape,
    mase,
    on_grid,
    record_rows,
    seasonal_mae,
    smape,
)
from forescale.forecaster.candidates import DEFAULT_MODELS
from forescale.forecaster.capacity import (
    floor_hold,
    held_demand,
    held_newest,
    plan_capacity,
    planner_frame,
    units_for,
    units_of,
)
from forescale.forecaster.ceiling import CAPPED, PEAK_ALLOWANCE, credible_ceiling
from forescale.forecaster.decision import decide
from forescale.forecaster.grid import native_step
from forescale.forecaster.lift import WINDOW as LIFT_WINDOW
from forescale.forecaster.lift import (
    factor_for,
    lifted_band,
    percent,
    recent_peak,
    running_ratio,
)
from forescale.forecaster.outliers import flag_outliers, masked
from forescale.forecaster.types import CapacityPolicy, Forecast

__all__ = [
    "ApproachOutcome",
    "BacktestConfig",
    "BacktestResult",
    "FoldResult",
    "ModelMetrics",
    "ReactiveBaseline",
    "reactive_units",
    "rolling_cutoffs",
    "run_backtest",
]

FORESCALE = "forescale"
# As in forescale.forecaster.capacity.units_for: demand this close above units x capacity is served
# (float noise in peak / 20 x 20 must not count as a shortfall).
_REL_EPS = 1e-9
STATIC = "static_peak"
HINDSIGHT = "hindsight"
NAIVE = "seasonal_naive_x1_2"
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
    record_window: dt.timedelta = RECORD_WINDOW
    target_under: float = TARGET_UNDER
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
    # the credible ceiling (forecaster.ceiling): the fitted window's peak x this, at most
    # max_value (e.g. 100 for a percentage)
    peak_allowance: float = PEAK_ALLOWANCE
    max_value: float | None = None


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
    ceiling: str | None = None  # the credible ceiling's note when it capped the forecast
    # steps whose band was lifted while the demand ran above the forecast
    # (forecaster.lift), and the largest lift
    lifted_steps: int = 0
    most_lift: float = 1.0


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
    # The least any plan could have paid: each evaluated step given exactly the whole units
    # its demand needs, known in hindsight (within the policy's bounds). A bound, not an
    # approach: it dominates everything and is left out of every comparison.
    hindsight: ApproachOutcome | None = None


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
            f"no backtest cutoff leaves {format_duration(min_history)} of history before it "
            f"and a {format_duration(horizon)} horizon after it; the series spans "
            f"{ds[0]:%Y-%m-%d %H:%M}Z .. {end:%Y-%m-%d %H:%M}Z "
            f"({format_duration((end - ds[0]).to_pytimedelta())})"
        )
    return tuple(kept)


def run_backtest(
    series: pd.DataFrame, config: BacktestConfig, candidates: Candidates
) -> BacktestResult:
    """Backtest ``candidates`` on ``series`` (``ds`` UTC regular, ``y``) at ``config.cutoffs``.

    In order: the simulation grid and each step's fold (:func:`_grid`); the demand one
    unit serves (:func:`_sizing`); the folds replayed one after the other, each seeing
    only what came before its cutoff (:func:`_replay_folds`); the baselines on the same
    demand (:func:`_approach_units`); every approach's outcome over the scored steps."""
    grid = _grid(series, config)
    sizing = _sizing(grid.peak, config)
    cpu = sizing.capacity_per_unit
    policy = replace(config.policy, capacity_per_unit=cpu)
    replay = _replay_folds(grid, config, policy, candidates)
    static_units = units_for(grid.peak, cpu) if math.isfinite(grid.peak) else 0
    approaches = _approach_units(grid, replay, config, policy, static_units)
    evaluated = grid.scored & np.isfinite(replay.units)
    outcomes = _outcomes(approaches, grid, evaluated, cpu, static_units)
    exact = _clamped_units(grid.y, cpu, policy)
    [hindsight] = _outcomes(
        [_Approach(name=HINDSIGHT, column="", serving=exact, paid=exact)],
        grid,
        evaluated,
        cpu,
        static_units,
    )
    return BacktestResult(
        folds=tuple(replay.folds),
        metrics=replay.overall_metrics(),
        approaches=outcomes,
        schedule=_schedule(grid, replay, approaches),
        points=replay.all_points(),
        capacity_per_unit=cpu,
        capacity_per_unit_source=sizing.source,
        sim_step=grid.sim_step,
        horizon=config.horizon,
        notes=(
            *sizing.notes,
            *_failure_notes(replay.folds),
            *_ceiling_notes(replay.folds),
            *_lift_notes(replay.folds, config.policy.max_lift),
            *_above_static_notes(grid, replay, outcomes, evaluated, static_units, cpu),
        ),
        hindsight=hindsight,
    )


# ------------------------------------------------------------------------ grid, sizing


@dataclass(frozen=True, kw_only=True, slots=True)
class _Grid:
    """The demand and the simulation grid every part of one backtest shares."""

    series: pd.DataFrame  # ds (UTC, regular, ascending), y: the demand as given
    native: dt.timedelta  # the series' step
    cutoffs: tuple[dt.datetime, ...]  # UTC, ascending
    sim_step: dt.timedelta
    demand: pd.DataFrame  # ds, y on the sim grid, from a day before the first cutoff
    sim_ds: pd.DatetimeIndex  # demand["ds"]
    y: np.ndarray  # demand["y"] (NaN: unknown)
    held: np.ndarray  # y as the observed floor holds it (held_demand over floor_hold)
    fold_of: np.ndarray  # each sim step's fold: the earliest whose horizon holds it, else -1
    in_fold: np.ndarray  # bool: some fold's horizon holds the step
    scored: np.ndarray  # bool: in a fold and the demand is known
    peak: float  # the highest scored demand (NaN: none)


def _grid(series: pd.DataFrame, config: BacktestConfig) -> _Grid:
    """The checked series on its sim grid, with each step's fold."""
    if not config.cutoffs:
        raise ForecastError("no backtest cutoffs")
    cutoffs = tuple(sorted(c.astimezone(dt.UTC) for c in config.cutoffs))
    series = series[["ds", "y"]].sort_values("ds").reset_index(drop=True)
    native = native_step(pd.DatetimeIndex(series["ds"]))
    sim_step = config.sim_step or native
    if sim_step > native:
        raise ForecastError(
            f"sim_step {sim_step} is coarser than the series' step {native}; use a finer one"
        )
    demand = _sim_demand(series, native, sim_step, cutoffs[0] - DAY, cutoffs[-1] + config.horizon)
    sim_ds = pd.DatetimeIndex(demand["ds"])
    fold_of, in_fold = _folds_of(sim_ds, cutoffs, config.horizon)
    y = demand["y"].to_numpy(dtype=float)
    scored = in_fold & ~np.isnan(y)
    return _Grid(
        series=series,
        native=native,
        cutoffs=cutoffs,
        sim_step=sim_step,
        demand=demand,
        sim_ds=sim_ds,
        y=y,
        held=held_demand(sim_ds, y, floor_hold(config.policy)),
        fold_of=fold_of,
        in_fold=in_fold,
        scored=scored,
        peak=float(np.nanmax(y[scored])) if scored.any() else math.nan,
    )


def _folds_of(
    sim_ds: pd.DatetimeIndex, cutoffs: Sequence[dt.datetime], horizon: dt.timedelta
) -> tuple[np.ndarray, np.ndarray]:
    """Each step's fold (the earliest whose horizon holds it, else -1) and whether any does."""
    span = pd.Timedelta(horizon)
    in_fold = np.zeros(len(sim_ds), dtype=bool)
    fold_of = np.full(len(sim_ds), -1)
    for i, c in enumerate(cutoffs):
        mask = (sim_ds >= pd.Timestamp(c)) & (sim_ds < pd.Timestamp(c) + span)
        fold_of[mask & ~in_fold] = i
        in_fold |= np.asarray(mask)
    return fold_of, in_fold


@dataclass(frozen=True, kw_only=True, slots=True)
class _Sizing:
    capacity_per_unit: float  # demand one unit serves
    source: str  # "given" | "peak/<n>"
    notes: tuple[str, ...] = ()


def _sizing(peak: float, config: BacktestConfig) -> _Sizing:
    """The policy's capacity per unit, else the one that makes the peak need ``peak_units``."""
    if config.policy.capacity_per_unit > 0:
        return _Sizing(capacity_per_unit=config.policy.capacity_per_unit, source="given")
    if not peak > 0:
        raise ForecastError(
            "no positive demand in the backtest folds to size units from (the demand is 0 "
            "throughout them); give the demand one unit serves: --capacity-per-unit"
        )
    cpu = peak / config.peak_units
    return _Sizing(
        capacity_per_unit=cpu,
        source=f"peak/{config.peak_units}",
        notes=(
            f"capacity_per_unit = peak evaluated demand / {config.peak_units} = {cpu:.6g} "
            "(hindsight: the static peak needs exactly that many units)",
        ),
    )


# ------------------------------------------------------------------------------- folds


@dataclass(frozen=True, kw_only=True, slots=True)
class _Carry:
    """What a fold hands the next: the record so far, and the units paid at the end of its
    horizon (``at``) with the daemon replay's memory of its last ``step_period``."""

    record: pd.DataFrame
    units: int | None = None
    at: dt.datetime | None = None
    force: tuple[tuple[dt.datetime, int], ...] = ()

    def start(self, cutoff: dt.datetime) -> int | None:
        """The units a fold at ``cutoff`` starts from: carried over when it is contiguous."""
        return self.units if self.units is not None and self.at == cutoff else None


@dataclass(kw_only=True, slots=True)
class _Replay:
    """What the folds produced, filled fold by fold. On the sim grid (NaN outside the
    folds that planned): forescale's serving and paid units, the forecast it planned with
    (point, upper) and the naive baseline's units. Per fold: its result, each model's
    scored steps and the points."""

    units: np.ndarray
    paid: np.ndarray
    point: np.ndarray
    upper: np.ndarray
    naive: np.ndarray
    folds: list[FoldResult] = field(default_factory=list)
    per_model: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    points: list[pd.DataFrame] = field(default_factory=list)

    @classmethod
    def empty(cls, steps: int) -> _Replay:
        def blank() -> np.ndarray:
            return np.full(steps, np.nan)

        return cls(units=blank(), paid=blank(), point=blank(), upper=blank(), naive=blank())

    def failed(self, fold: int, cutoff: dt.datetime, error: str) -> None:
        self.folds.append(
            FoldResult(
                fold=fold, cutoff=cutoff, model=None, band_factor=1.0, reason="", error=error
            )
        )

    def planned(self, plan: _FoldPlan, units: _FoldUnits) -> None:
        mask = plan.mask
        self.units[mask] = units.serving
        self.paid[mask] = units.paid
        self.point[mask] = units.forecast["yhat"].to_numpy()
        self.upper[mask] = units.forecast["yhat_upper"].to_numpy()
        self.naive[mask] = units.naive

    def scored(
        self,
        fold: int,
        cutoff: dt.datetime,
        choice: Choice,
        frames: dict[str, pd.DataFrame],
        ceiling: str | None = None,
        lifts: np.ndarray | None = None,
    ) -> None:
        for name, frame in frames.items():
            self.per_model.setdefault(name, []).append(frame)
        self.points.append(_points(fold, frames))
        self.folds.append(
            FoldResult(
                fold=fold,
                cutoff=cutoff,
                model=choice.model,
                band_factor=choice.band_factor,
                reason=choice.reason,
                metrics=tuple(_metrics(name, f) for name, f in frames.items()),
                ceiling=ceiling,
                lifted_steps=int((lifts > 1.0).sum()) if lifts is not None else 0,
                most_lift=float(lifts.max()) if lifts is not None and lifts.size else 1.0,
            )
        )

    def overall_metrics(self) -> tuple[ModelMetrics, ...]:
        return tuple(
            _metrics(name, pd.concat(frames, ignore_index=True))
            for name, frames in self.per_model.items()
        )

    def all_points(self) -> pd.DataFrame:
        return pd.concat(self.points, ignore_index=True) if self.points else pd.DataFrame()


@dataclass(frozen=True, kw_only=True, slots=True)
class _FoldPlan:
    """What one fold's capacity is planned from: all of it known at the cutoff."""

    cutoff: dt.datetime
    history: pd.DataFrame  # the demand before the cutoff
    policy: CapacityPolicy  # with the backtest's capacity_per_unit
    observed: float | None  # the last demand seen (None: none, or older than 3 steps)
    current: int | None  # units carried over from the previous fold (None: a fresh start)
    mask: np.ndarray  # bool: the fold's sim steps
    at: pd.DatetimeIndex  # the fold's sim steps


@dataclass(frozen=True, kw_only=True, slots=True)
class _FoldUnits:
    """One fold's capacity on its sim steps: forescale's serving and paid units, the
    forecast rows it planned with (yhat, yhat_upper) and the naive baseline's units."""

    serving: np.ndarray
    paid: np.ndarray
    forecast: pd.DataFrame
    naive: np.ndarray


def _replay_folds(
    grid: _Grid, config: BacktestConfig, policy: CapacityPolicy, candidates: Candidates
) -> _Replay:
    """Every fold in order, each handing the next its record and units; a fold whose
    candidates fail (or fit none of the configured models) is reported, not scored."""
    out = _Replay.empty(len(grid.sim_ds))
    carry = _Carry(record=_seed_record(grid, config, candidates))
    for i, cutoff in enumerate(grid.cutoffs):
        fits = _fit(candidates, grid.series, cutoff)
        if isinstance(fits, str):
            out.failed(i, cutoff, fits)
            continue
        available = [m for m in config.models if m in fits]
        if not available:
            out.failed(
                i,
                cutoff,
                f"fitted {', '.join(sorted(fits))} but the configured models are "
                f"{', '.join(config.models)}",
            )
            continue
        carry = _fold(i, cutoff, fits, available, grid, config, policy, carry, out)
    return out


def _seed_record(grid: _Grid, config: BacktestConfig, candidates: Candidates) -> pd.DataFrame:
    """The record of ``record_folds`` folds before the first cutoff (fitted, not scored)."""
    first = grid.cutoffs[0]
    record = pd.DataFrame()
    for seed in sorted(first - config.horizon * (k + 1) for k in range(config.record_folds)):
        fits = _fit(candidates, grid.series, seed)
        if isinstance(fits, dict):
            record = _grow(record, grid.series, fits, seed, config.horizon)
    return record


def _fold(
    i: int,
    cutoff: dt.datetime,
    fits: dict[str, Forecast],
    available: list[str],
    grid: _Grid,
    config: BacktestConfig,
    policy: CapacityPolicy,
    carry: _Carry,
    out: _Replay,
) -> _Carry:
    """Fold ``i``: choose by the record, plan forescale's and the naive baseline's units
    over the fold's steps, score every model; returns what the next fold is handed."""
    plan = _fold_plan(grid, policy, i, cutoff, carry.start(cutoff))
    outliers = flag_outliers(plan.history)  # kept out of the ceiling and of the record
    used, choice = decide(
        fits,
        available,
        _recent(carry.record, cutoff, config.record_window),
        target_under=config.target_under,
        max_factor=config.max_band_factor,
        min_steps=config.min_record_steps,
        floor=Floor(headroom=policy.observed_headroom, delay=config.collect_delay)
        if config.replay == "daemon"
        else None,
        ceiling=credible_ceiling(
            plan.history,
            allowance=config.peak_allowance,
            max_value=config.max_value,
            outliers=outliers,
        ),
        serving=Serving.of(policy, warmup=config.warmup) if config.replay == "daemon" else None,
        outliers=tuple(o.at for o in outliers),
    )
    if choice.floor_headroom is not None:  # the floor's headroom the record asked for
        plan = replace(plan, policy=replace(plan.policy, observed_headroom=choice.floor_headroom))
    lifts = None
    if config.replay == "daemon":
        before = carry.force if plan.current is not None else ()
        lifts = _lifts(used, plan, grid, _lag(config, grid))
        serving, paid, force = _daemon_units(used, plan, grid, config, before, lifts)
    else:
        serving = paid = _plan_units(used, plan, plan.current)
        force = carry.force
    forecast = on_grid(used.frame[["ds", "yhat", "yhat_upper"]], plan.at, used.resolution)
    naive = _naive_units(grid, config, plan, i, out.naive)
    out.planned(plan, _FoldUnits(serving=serving, paid=paid, forecast=forecast, naive=naive))
    out.scored(
        i,
        cutoff,
        choice,
        _fold_metrics(grid, cutoff, config.horizon, fits, used),
        ceiling=next((n for n in used.notes if n.startswith(CAPPED)), None),
        lifts=lifts,
    )
    return _Carry(
        record=_grow(carry.record, grid.series, fits, cutoff, config.horizon),
        units=int(paid[-1]) if len(paid) else None,
        at=cutoff + config.horizon,
        force=force,
    )


def _fold_plan(
    grid: _Grid, policy: CapacityPolicy, fold: int, cutoff: dt.datetime, current: int | None
) -> _FoldPlan:
    history = grid.series[grid.series["ds"] < pd.Timestamp(cutoff)]
    mask = grid.fold_of == fold
    return _FoldPlan(
        cutoff=cutoff,
        history=history,
        policy=policy,
        observed=_last_observed(history, cutoff, grid.native, floor_hold(policy)),
        current=current,
        mask=mask,
        at=grid.sim_ds[mask],
    )


def _naive_units(
    grid: _Grid, config: BacktestConfig, plan: _FoldPlan, fold: int, so_far: np.ndarray
) -> np.ndarray:
    """The naive baseline's units over the fold: one plan at the cutoff, starting from its
    own last units of the previous fold when forescale's carry over (``so_far``)."""
    naive = _naive_forecast(
        grid.series, plan.cutoff, config.horizon, config.naive_buffer, grid.native
    )
    start = None
    if plan.current is not None and fold > 0:
        prev = so_far[grid.fold_of == fold - 1]
        # a failed previous fold left no units (NaN): start afresh instead
        start = int(prev[-1]) if len(prev) and np.isfinite(prev[-1]) else None
    return _plan_units(naive, plan, start)


def _above_static_notes(
    grid: _Grid,
    replay: _Replay,
    outcomes: Sequence[ApproachOutcome],
    evaluated: np.ndarray,
    static_units: int,
    cpu: float,
) -> tuple[str, ...]:
    """Why forescale paid more than the static peak, when it did: the static peak is sized
    in hindsight on the evaluated days, forescale only on what came before each fold."""
    own = next((o for o in outcomes if o.name == FORESCALE), None)
    if own is None or not own.vs_static > 1.0:
        return ()
    paid = replay.paid[evaluated]
    above = paid > static_units
    text = (
        f"forescale paid {own.vs_static:.2f}x the static peak: above its {static_units} units "
        f"on {np.mean(above):.1%} of the evaluated steps (at most {int(np.nanmax(paid))})"
    )
    before = grid.series[grid.series["ds"] < pd.Timestamp(grid.cutoffs[0])]
    before = masked(before, flag_outliers(before))  # as the ceiling sees it
    seen = before["y"].to_numpy(dtype=float)
    if np.isfinite(seen).any() and grid.peak > 0:
        at = int(np.nanargmax(seen))
        high = float(seen[at])
        if high > grid.peak:
            when = pd.Timestamp(before["ds"].iloc[at])
            text += (
                f"; the history before the first fold peaked at {high:,.6g} on "
                f"{when:%Y-%m-%d} ({units_for(high, cpu)} units), {high / grid.peak:.2f}x "
                f"the evaluated days' peak {grid.peak:,.6g} ({static_units} units): the "
                "record and the credible ceiling are sized on that history, the static "
                "peak on the evaluated days in hindsight"
            )
        else:
            text += (
                f"; the evaluated days' peak {grid.peak:,.6g} is within the history's "
                f"{high:,.6g}: the extra units are the headroom the record asked for, in "
                "whole units"
            )
    return (text,)


def _failure_notes(folds: Sequence[FoldResult]) -> tuple[str, ...]:
    failed = [f for f in folds if f.error]
    if not failed:
        return ()
    return (f"{len(failed)} of {len(folds)} folds failed to fit and are not scored",)


def _planned(folds: Sequence[FoldResult]) -> int:
    """How many folds planned (the others failed to fit)."""
    return sum(1 for f in folds if f.model is not None)


def _ceiling_notes(folds: Sequence[FoldResult]) -> tuple[str, ...]:
    """How often the credible ceiling capped a fold's forecast, with the last note."""
    capped = [f for f in folds if f.ceiling]
    if not capped:
        return ()
    return (
        f"the credible ceiling capped the forecast on {len(capped)} of {_planned(folds)} folds; "
        f"the last: {capped[-1].ceiling}",
    )


def _lift_notes(folds: Sequence[FoldResult], max_lift: float) -> tuple[str, ...]:
    """On how many folds the band was lifted while the demand ran above the forecast."""
    lifted = [f for f in folds if f.lifted_steps]
    if not lifted:
        return ()
    return (
        f"the demand ran above the forecast and lifted the band ahead on {len(lifted)} of "
        f"{_planned(folds)} folds ({sum(f.lifted_steps for f in lifted)} steps, by at most "
        f"{percent(max(f.most_lift for f in lifted))}; max_lift {max_lift:g})",
    )


# ------------------------------------------------------------------------- aggregation


@dataclass(frozen=True, kw_only=True, slots=True)
class _Approach:
    """One approach's units on the sim grid: ``serving`` (the schedule's ``column``) and
    ``paid``."""

    name: str
    column: str
    serving: np.ndarray
    paid: np.ndarray


def _approach_units(
    grid: _Grid,
    replay: _Replay,
    config: BacktestConfig,
    policy: CapacityPolicy,
    static_units: int,
) -> list[_Approach]:
    """forescale, the naive baseline, each reactive baseline and the static peak, in the
    report's order."""
    out = [
        _Approach(name=FORESCALE, column="units", serving=replay.units, paid=replay.paid),
        _Approach(name=NAIVE, column=f"units_{NAIVE}", serving=replay.naive, paid=replay.naive),
    ]
    for baseline in config.reactive:
        serving, paid = reactive_units(
            grid.demand, baseline, policy.capacity_per_unit, policy, grid.sim_step
        )
        out.append(
            _Approach(
                name=baseline.name, column=f"units_{baseline.name}", serving=serving, paid=paid
            )
        )
    static = np.full(len(grid.demand), float(static_units))
    out.append(_Approach(name=STATIC, column=f"units_{STATIC}", serving=static, paid=static))
    return out


def _clamped_units(demand: np.ndarray, cpu: float, policy: CapacityPolicy) -> np.ndarray:
    """The whole units each demand needs (``units_for`` without a tolerance), within
    ``[min_units, max_units]``; NaN where the demand is unknown."""
    with np.errstate(invalid="ignore"):
        need = units_of(demand, cpu)
    return np.asarray(np.clip(need, policy.min_units, policy.max_units), dtype=float)


def _outcomes(
    approaches: Sequence[_Approach],
    grid: _Grid,
    evaluated: np.ndarray,
    cpu: float,
    static_units: int,
) -> tuple[ApproachOutcome, ...]:
    """Each approach over the ``evaluated`` steps (scored, and forescale planned them)."""
    hours = grid.sim_step.total_seconds() / 3600
    steps = int(evaluated.sum())
    # ratios of whole unit-steps (exact in a float), so the same units are exactly 1.0x
    static_unit_steps = static_units * steps
    demand = grid.y[evaluated]
    out = []
    for a in approaches:
        serving, paid = a.serving[evaluated], a.paid[evaluated]
        unit_steps = float(np.nansum(paid))
        out.append(
            ApproachOutcome(
                name=a.name,
                steps=steps,
                under_share=float(np.mean(serving * cpu * (1 + _REL_EPS) < demand))
                if steps
                else math.nan,
                unit_hours=unit_steps * hours,
                vs_static=unit_steps / static_unit_steps if static_unit_steps > 0 else math.nan,
                mean_units=float(np.nanmean(paid)) if steps else math.nan,
            )
        )
    return tuple(out)


def _schedule(grid: _Grid, replay: _Replay, approaches: Sequence[_Approach]) -> pd.DataFrame:
    """One row per sim step of every fold: demand, forecast, each approach's units."""
    keep = grid.in_fold
    return pd.DataFrame(
        {
            "ts": grid.sim_ds[keep],
            "fold": grid.fold_of[keep],
            "demand": grid.y[keep],
            "forecast": replay.point[keep],
            "upper": replay.upper[keep],
            **{a.column: a.serving[keep] for a in approaches},
            **{f"paid_{a.name}": a.paid[keep] for a in approaches},
        }
    ).reset_index(drop=True)


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
    history: pd.DataFrame, cutoff: dt.datetime, native: dt.timedelta, hold: dt.timedelta
) -> float | None:
    """The observed demand the floor serves at ``cutoff`` (held over ``hold``); None when
    the newest sample is more than three steps old."""
    seen = history[history["y"].notna()]
    if seen.empty:
        return None
    if pd.Timestamp(seen["ds"].iloc[-1]) < pd.Timestamp(cutoff) - pd.Timedelta(native) * 3:
        return None
    return held_newest(seen, hold)


def _starting_units(current: int | None, observed: float | None, policy: CapacityPolicy) -> int:
    """The units in force at a fold's cutoff: carried over, else what the last observed
    demand needs (clamped)."""
    if current is not None:
        return current
    base = (
        units_for(observed, policy.capacity_per_unit, policy.unit_tolerance)
        if observed is not None
        else 0
    )
    return min(max(base, policy.min_units), policy.max_units)


def _plan_units(forecast: Forecast, plan: _FoldPlan, current: int | None) -> np.ndarray:
    """Units in force at each of the fold's steps from one plan made at its cutoff."""
    policy = plan.policy
    start = _starting_units(current, plan.observed, policy)
    frame = planner_frame(forecast, plan.history, policy.stabilization + policy.lead_time)
    try:
        made = plan_capacity(
            frame,
            policy=policy,
            current_units=start,
            now=plan.cutoff,
            observed_demand=plan.observed,
            floor_cap=forecast.ceiling,
        )
    except PlanError:
        return np.full(len(plan.at), float(start))
    desired = made.desired
    starts = pd.DatetimeIndex(desired["ds"])
    pos = np.clip(starts.searchsorted(plan.at, side="right") - 1, 0, len(desired) - 1)
    return desired["units"].to_numpy(dtype=float)[pos]


# ------------------------------------------------------------------------ daemon replay


def _daemon_units(
    forecast: Forecast,
    plan: _FoldPlan,
    grid: _Grid,
    config: BacktestConfig,
    before: Sequence[tuple[dt.datetime, int]],
    lifts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, tuple[tuple[dt.datetime, int], ...]]:
    """(serving, paid) units at each of the fold's steps: the daemon's apply loop,
    replayed; and the units applied in the last ``step_period`` as (since, units), for
    the next fold.

    At every step the daemon plans with the fold's forecast (fitted before the cutoff) and
    the demand collected ``collect_delay`` ago as the observed floor (held over the
    stabilisation window as the daemon holds it: :func:`held_demand`), and the units it
    applied in the last ``step_period`` as the plan's memory (``in_force``, so two changes
    five minutes apart share one window's step limit), and applies the units due now; a
    raise serves ``warmup`` later (paid from the apply), a lower is immediate. ``before``
    is the previous fold's memory (ending with the carried units); without it the
    starting units count as in force for a whole ``step_period``.
    """
    policy, period = plan.policy, plan.policy.step_period
    planner = _DaemonPlanner.of(forecast, plan.history, policy, plan.cutoff)
    lag = _lag(config, grid)
    warm = int(math.ceil(config.warmup / grid.sim_step))
    rows = np.flatnonzero(plan.mask)
    units = _Applied.starting(_starting_units(plan.current, plan.observed, policy))
    force = _memory(before, units.paid, plan.at, period)
    serving_v = np.empty(len(plan.at))
    paid_v = np.empty(len(plan.at))
    for i, t in enumerate(plan.at):
        now = t.to_pydatetime()
        while len(force) > 1 and force[1][0] <= now - period:
            force.popleft()
        seen = _seen(grid.held, int(rows[i]) - lag)
        want = planner.want(t, now, paid=units.paid, seen=seen, in_force=force, lift=lifts[i])
        if want != units.paid:
            force.append((now, want))
        units.apply(i, want, warm)
        serving_v[i] = units.serving
        paid_v[i] = units.paid
    return serving_v, paid_v, tuple(force)


def _lag(config: BacktestConfig, grid: _Grid) -> int:
    """The collect delay in sim steps."""
    return int(round(config.collect_delay / grid.sim_step))


def _lifts(forecast: Forecast, plan: _FoldPlan, grid: _Grid, lag: int) -> np.ndarray:
    """The lift (:mod:`forescale.forecaster.lift`) at each of the fold's steps: the demand
    collected by then (``lag`` steps old) over the last hour against the fold's forecast
    point for the same steps (none in the fold's first hour: nothing to compare yet)."""
    rows = np.flatnonzero(plan.mask)
    out = np.ones(len(rows))
    max_lift = plan.policy.max_lift
    if max_lift <= 1.0 or len(rows) == 0:
        return out
    point = on_grid(forecast.frame[["ds", "yhat"]], plan.at, forecast.resolution)["yhat"]
    width = max(1, round(LIFT_WINDOW / grid.sim_step))
    ratio = running_ratio(grid.y[rows], point.to_numpy(dtype=float), width, cap=forecast.ceiling)
    for i in range(lag, len(rows)):
        out[i] = factor_for(float(ratio[i - lag]), max_lift)
    return out


def _memory(
    before: Sequence[tuple[dt.datetime, int]],
    paid: int,
    at: pd.DatetimeIndex,
    period: dt.timedelta,
) -> deque[tuple[dt.datetime, int]]:
    """The plan's memory at the first step: only what a window holding it can see (the
    entry in force ``period`` before and the later ones), ``before`` when it ends with
    ``paid``, else ``paid`` in force for a whole period."""
    force: deque[tuple[dt.datetime, int]] = deque(before)
    if not force or force[-1][1] != paid:
        force = deque([(at[0].to_pydatetime() - period, paid)] if len(at) else [])
    return force


def _seen(demand: np.ndarray, row: int) -> float | None:
    """The collected demand at sim row ``row`` (None: before the grid or unknown)."""
    return float(demand[row]) if row >= 0 and math.isfinite(demand[row]) else None


@dataclass(frozen=True, kw_only=True, slots=True)
class _DaemonPlanner:
    """The daemon's plan at one step, from the fold's planner frame: only the rows a plan
    at that step reads (all ahead when a step-up limit spreads raises over time)."""

    frame: pd.DataFrame
    starts: pd.DatetimeIndex
    policy: CapacityPolicy
    limited: bool
    ahead: pd.Timedelta
    behind: pd.Timedelta
    floor_cap: float | None
    lift_limit: float | None  # the recent peak a lifted band stays under
    step: dt.timedelta  # the frame's slots

    @classmethod
    def of(
        cls,
        forecast: Forecast,
        history: pd.DataFrame,
        policy: CapacityPolicy,
        cutoff: dt.datetime,
    ) -> _DaemonPlanner:
        frame = planner_frame(forecast, history, policy.stabilization + policy.lead_time)
        up = policy.max_step_up
        return cls(
            frame=frame,
            starts=pd.DatetimeIndex(frame["ds"]),
            policy=policy,
            limited=up.units is not None or up.percent is not None,
            ahead=pd.Timedelta(policy.lead_time + 2 * policy.stabilization + dt.timedelta(hours=1)),
            behind=pd.Timedelta(policy.stabilization + policy.lead_time + dt.timedelta(hours=1)),
            floor_cap=forecast.ceiling,
            lift_limit=recent_peak(history, cutoff, forecast.ceiling)
            if policy.max_lift > 1.0
            else None,
            step=native_step(pd.DatetimeIndex(frame["ds"])),
        )

    def want(
        self,
        t: pd.Timestamp,
        now: dt.datetime,
        *,
        paid: int,
        seen: float | None,
        in_force: Sequence[tuple[dt.datetime, int]],
        lift: float = 1.0,
    ) -> int:
        """The units due at ``now`` (``paid`` when the planner refuses), with the band
        from ``t`` on lifted by ``lift``."""
        lo = self.starts.searchsorted(t - self.behind)
        hi = len(self.starts) if self.limited else self.starts.searchsorted(t + self.ahead)
        frame = self.frame.iloc[lo:hi]
        if lift > 1.0:
            frame = lifted_band(frame, self.step, t.to_pydatetime(), lift, self.lift_limit)
        try:
            plan = plan_capacity(
                frame,
                policy=self.policy,
                current_units=paid,
                now=now,
                observed_demand=seen,
                data_fresh=seen is not None,
                in_force=in_force,
                floor_cap=self.floor_cap,
            )
            return int(plan.desired["units"].iloc[0])
        except PlanError:
            return paid


@dataclass(kw_only=True, slots=True)
class _Applied:
    """The units of the daemon replay as it runs: ``paid`` (applied), ``serving`` (warm)
    and the raises still warming up as (step index they serve at, units)."""

    paid: int
    serving: int
    pending: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def starting(cls, units: int) -> _Applied:
        return cls(paid=units, serving=units)

    def apply(self, i: int, want: int, warm: int) -> None:
        """Apply ``want`` at step ``i``: a raise serves ``warm`` steps later, a lower at once."""
        if want > self.paid:
            self.pending.append((i + warm, want))
        elif want < self.paid:
            self.serving = min(self.serving, want)
            self.pending = [(k, min(u, want)) for k, u in self.pending]
        self.paid = want
        while self.pending and self.pending[0][0] <= i:
            self.serving = max(self.serving, self.pending.pop(0)[1])
        self.serving = min(self.serving, self.paid)


# -------------------------------------------------------------------------- baselines


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
        model=NAIVE,
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
        # Linear interpolation between neighbouring samples only: a step inside a gap (a
        # native slot on either side unobserved) or past the last sample is unknown, and
        # so never scored.
        union = y.index.union(grid)
        filled = y.reindex(union).interpolate(method="time", limit_area="inside")
        values = filled.reindex(grid).to_numpy()
        freq = f"{int(native.total_seconds())}s"
        before = y.reindex(grid.floor(freq)).to_numpy()
        after = y.reindex(grid.ceil(freq)).to_numpy()
        values[np.isnan(before) | np.isnan(after)] = np.nan
    return pd.DataFrame({"ds": grid, "y": values})


def reactive_units(
    demand: pd.DataFrame,
    baseline: ReactiveBaseline,
    cpu: float,
    policy: CapacityPolicy,
    step: dt.timedelta,
) -> tuple[np.ndarray, np.ndarray]:
    """(serving units, paid units) per row of ``demand`` (``y`` on a regular ``step``
    grid) for target tracking ``baseline`` at ``cpu`` per unit within ``policy``'s bounds."""
    y = demand["y"].to_numpy(dtype=float)
    lag = int(round(baseline.delay / step))
    per_unit = cpu * (1 - baseline.headroom)
    scaler = _TargetTracking(
        warm=int(math.ceil(baseline.warmup / step)),
        cool=int(math.ceil(baseline.cooldown / step)),
    )
    serving = np.zeros(len(y))
    paid = np.zeros(len(y))
    for t in range(len(y)):
        seen = y[t - lag] if t - lag >= 0 else math.nan
        if math.isfinite(seen):
            want = min(max(units_for(seen, per_unit), policy.min_units), policy.max_units)
            scaler.decide(t, want)
        serving[t], paid[t] = scaler.advance(t)
    return serving, paid


@dataclass(kw_only=True, slots=True)
class _TargetTracking:
    """A target-tracking scaler as it runs, in sim steps: raises serve ``warm`` steps after
    the decision (paid from it); a lower is immediate, ``cool`` steps after the last change."""

    warm: int
    cool: int
    target: int | None = None  # paid units (None: no demand seen yet)
    serving: int = 0
    ready: list[tuple[int, int]] = field(default_factory=list)  # (step it serves at, units)
    last_change: int = -(10**9)

    def decide(self, t: int, want: int) -> None:
        if self.target is None:
            self.target = self.serving = want
            self.last_change = t
        elif want > self.target:
            self.ready.append((t + self.warm, want))
            self.target = want
            self.last_change = t
        elif want < self.target and t - self.last_change >= self.cool:
            self.target = self.serving = want
            self.ready = []
            self.last_change = t

    def advance(self, t: int) -> tuple[int, int]:
        """(serving, paid) units at step ``t``."""
        while self.ready and self.ready[0][0] <= t:
            self.serving = self.ready.pop(0)[1]
        return self.serving, self.target if self.target is not None else 0


# ----------------------------------------------------------------------------- scoring


def _fold_metrics(
    grid: _Grid,
    cutoff: dt.datetime,
    horizon: dt.timedelta,
    fits: dict[str, Forecast],
    used: Forecast,
) -> dict[str, pd.DataFrame]:
    """Per model: the scored steps (actual, yhat, lower, upper, scale) on the native grid."""
    series, native = grid.series, grid.native
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
    """The approaches that Pareto-dominate ``name``: at least as good on both the
    under-provisioned share and the unit-hours, and strictly better on one."""
    own = approach(result, name)
    return [a.name for a in result.approaches if a.name != name and dominates(a, own)]


def dominates(a: ApproachOutcome, b: ApproachOutcome) -> bool:
    """``a`` is at least as good as ``b`` on both counts and strictly better on one."""
    return (
        a.under_share <= b.under_share
        and a.unit_hours <= b.unit_hours
        and (a.under_share < b.under_share or a.unit_hours < b.unit_hours)
    )
