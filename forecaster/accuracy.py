"""Forecast accuracy, the record of past forecasts, and choosing a model by that record.

Pure: arrays and frames in, numbers and a :class:`Choice` out.

The record
----------
A frame with one row per past step: ``ds`` (UTC), ``actual`` and, for each model ``m``,
``m:yhat`` and ``m:upper`` - what ``m`` forecast for that step *before* it happened (in a
backtest, from the folds before; live, from the stored forecasts). Built with
:func:`record_rows`.

Choosing, and how far to trust a band
-------------------------------------
For each model the record gives the *band factor*: the smallest ``k >= 1`` such that at
most ``target_under`` of the recorded steps had demand above what ``k * upper`` (or ``k``
times the point forecast) would have served, capped at ``max_factor``. With a
:class:`Serving` the steps are served as the plan serves them (lead time, scale-in hold,
whole units, the observed floor after its delay and warm-up), so ``target_under`` is the
under-provisioned share the backtest measures. A model whose band held keeps ``k = 1``: a
forecast is never trusted more than its record, only less. The model chosen is the one
that would have served the recorded demand at that protection for the least provisioned
demand; when none reaches the target, the one under-provisioned least often. The primary
(the ensemble) wins ties and is used while the record is too short to say anything; with
a ``switch_margin`` it is kept unless another model is that much cheaper.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from forescale.forecaster.capacity import held_demand, units_of
from forescale.forecaster.grid import epoch_ns, native_step
from forescale.forecaster.types import CapacityPolicy, Forecast

__all__ = [
    "Choice",
    "Floor",
    "OUTLIER",
    "Serving",
    "TARGET_UNDER",
    "observed_floor",
    "at_cadence",
    "ModelEvidence",
    "choose_model",
    "headroom",
    "coverage",
    "mape",
    "mase",
    "on_grid",
    "record_rows",
    "smape",
    "widened",
]

PRIMARY = "ensemble"
OUTLIER = "outlier"
"""An optional record column: True on a step whose demand was an outlier
(:mod:`forescale.forecaster.outliers`). No model is judged on it; the floor still saw it."""
TARGET_UNDER = 0.005
"""The default share of recorded steps the chosen capacity may leave under-provisioned,
as the plan would have served them (chosen with whole groups of series left out:
docs/BENCHMARKS.md)."""
RECORD_WINDOW = dt.timedelta(days=28)
"""How much of the record the choice judges by default: a longer record makes a 0.5 %
share less noisy (a week of 5-minute steps allows 10 misses), so the cheapest candidate
that held it is less often the luckiest one (chosen with whole groups of series left out:
docs/BENCHMARKS.md)."""


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric MAPE in percent: mean of ``2|F - A| / (|A| + |F|)``; 0 where both are 0."""
    a, f = _pair(actual, forecast)
    if a.size == 0:
        return math.nan
    denom = np.abs(a) + np.abs(f)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(denom > 0, 2 * np.abs(f - a) / denom, 0.0)
    return float(terms.mean() * 100)


def mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """MAPE in percent over the steps with a non-zero actual (NaN when there are none)."""
    a, f = _pair(actual, forecast)
    keep = a != 0
    if not keep.any():
        return math.nan
    return float(np.mean(np.abs(f[keep] - a[keep]) / np.abs(a[keep])) * 100)


def mase(actual: np.ndarray, forecast: np.ndarray, scale: float) -> float:
    """Mean absolute error over ``scale`` (the seasonal-naive in-sample MAE)."""
    a, f = _pair(actual, forecast)
    if a.size == 0 or not scale > 0:
        return math.nan
    return float(np.mean(np.abs(f - a)) / scale)


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of steps with ``lower <= actual <= upper``."""
    a = np.asarray(actual, dtype=float)
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    keep = np.isfinite(a) & np.isfinite(lo) & np.isfinite(hi)
    if not keep.any():
        return math.nan
    return float(np.mean((a[keep] >= lo[keep]) & (a[keep] <= hi[keep])))


def seasonal_mae(y: np.ndarray, lag: int) -> float:
    """In-sample MAE of the seasonal naive forecast with ``lag`` steps (MASE's scale)."""
    v = np.asarray(y, dtype=float)
    if lag <= 0 or v.size <= lag:
        return math.nan
    diff = np.abs(v[lag:] - v[:-lag])
    diff = diff[np.isfinite(diff)]
    return float(diff.mean()) if diff.size else math.nan


def _pair(actual: np.ndarray, forecast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    keep = np.isfinite(a) & np.isfinite(f)
    return a[keep], f[keep]


def on_grid(forecast: pd.DataFrame, ds: pd.DatetimeIndex, step: dt.timedelta) -> pd.DataFrame:
    """The forecast rows in force at each ``ds``: the row whose ``[ds, ds + step)`` holds
    it (NaN outside the forecast). Works for any finer grid (5-min steps of an hourly
    forecast)."""
    rows = forecast.sort_values("ds").reset_index(drop=True)
    starts = pd.DatetimeIndex(rows["ds"])
    pos = starts.searchsorted(ds, side="right") - 1
    inside = (pos >= 0) & (ds < starts[np.clip(pos, 0, None)] + pd.Timedelta(step))
    picked = rows.iloc[np.clip(pos, 0, None)].reset_index(drop=True)
    picked.loc[~inside, [c for c in picked.columns if c != "ds"]] = np.nan
    picked["ds"] = ds
    return picked


def record_rows(
    actual: pd.DataFrame, forecasts: dict[str, Forecast], *, start: dt.datetime, end: dt.datetime
) -> pd.DataFrame:
    """Record rows for ``start <= ds < end``: ``actual`` (columns ds, y) against what each
    forecast said for those steps."""
    window = actual[(actual["ds"] >= pd.Timestamp(start)) & (actual["ds"] < pd.Timestamp(end))]
    window = window[window["y"].notna()]
    ds = pd.DatetimeIndex(window["ds"])
    out = pd.DataFrame({"ds": ds, "actual": window["y"].to_numpy(dtype=float)})
    for name, fc in forecasts.items():
        rows = on_grid(fc.frame[["ds", "yhat", "yhat_upper"]], ds, fc.resolution)
        out[f"{name}:yhat"] = rows["yhat"].to_numpy(dtype=float)
        out[f"{name}:upper"] = rows["yhat_upper"].to_numpy(dtype=float)
    return out


Basis = Literal["band", "point"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelEvidence:
    """What the record says of one model."""

    model: str
    steps: int
    smape: float  # percent, point forecast
    under_share: float  # share of steps with actual > upper (the model's own band)
    basis: Basis  # the headroom is k x the band's upper edge, or k x the point forecast
    factor: float  # k (see the module docstring)
    under_share_widened: float  # share of steps with actual > the headroom
    provisioned_ratio: float  # sum(headroom) / sum(actual)
    floor_headroom: float | None = None  # the observed floor's headroom it was judged with


@dataclass(frozen=True, kw_only=True, slots=True)
class Choice:
    model: str
    basis: Basis
    factor: float
    reason: str
    evidence: tuple[ModelEvidence, ...] = ()
    # the observed floor's headroom the record asks for (None: the configured one)
    floor_headroom: float | None = None

    @property
    def band_factor(self) -> float:
        return self.factor


@dataclass(frozen=True, kw_only=True, slots=True)
class Floor:
    """The daemon's observed-demand floor, as the record replays it: each step is also
    served by ``(1 + headroom)`` times the demand collected ``delay`` before it."""

    headroom: float
    delay: dt.timedelta = dt.timedelta(minutes=10)
    cap: float | None = None  # the credible ceiling: the floor stays below it until broken
    # the daemon applies every ``cadence``: a record sampled more coarsely is judged at this
    # step (see :func:`at_cadence`), as the daemon meets the demand between samples
    cadence: dt.timedelta | None = dt.timedelta(minutes=5)


def at_cadence(record: pd.DataFrame, step: dt.timedelta) -> pd.DataFrame:
    """The record at ``step`` when it is sampled more coarsely (hourly demand, a daemon
    applying every 5 minutes): the demand between two consecutive samples is interpolated
    linearly (as the backtest's simulation meets it; never across a missing sample), and
    each model's forecast holds from its row to the next sample, as it is in force. A
    record already at ``step`` or finer is returned as it is."""
    if len(record) < 2:
        return record
    ds = pd.DatetimeIndex(record["ds"])
    native = native_step(ds)
    ratio = int(native / step)
    if ratio <= 1 or native != step * ratio:
        return record
    frame = record.drop_duplicates("ds").set_index("ds").sort_index()
    frame.index = pd.DatetimeIndex(frame.index)
    offsets = pd.TimedeltaIndex(np.tile(np.arange(ratio), len(frame)) * pd.Timedelta(step))
    grid = frame.index.repeat(ratio) + offsets
    held = frame.reindex(frame.index.repeat(ratio))
    held.index = grid
    actual = frame["actual"].to_numpy(dtype=float)
    nxt = frame["actual"].reindex(frame.index + pd.Timedelta(native)).to_numpy(dtype=float)
    frac = np.tile(np.arange(ratio) / ratio, len(frame))
    here = np.repeat(actual, ratio)
    after = np.repeat(nxt, ratio)
    # between two samples: the line; after the last one (or a gap): only the sample itself
    between = here + (after - here) * frac
    held["actual"] = np.where(np.isfinite(after), between, np.where(frac == 0, here, np.nan))
    out = held[held["actual"].notna()].rename_axis("ds").reset_index()
    return out[list(record.columns)]


@dataclass(frozen=True, kw_only=True, slots=True)
class Serving:
    """How a plan serves the forecast, as the record replays it (the backtest's
    simulation does the same with the planner itself): a raise is in force ``lead``
    ahead of the demand, a lower waits ``hold`` (the scale-in stabilisation, for the
    forecast and the observed floor alike), capacity comes in whole units of ``unit``
    within ``[min_units, max_units]``, and a raise the observed floor asks for serves
    ``warmup`` after it is applied."""

    unit: float | None = None  # capacity_per_unit (None: continuous capacity)
    tolerance: float = 0.0  # CapacityPolicy.unit_tolerance: a fraction of one unit
    min_units: int = 0
    max_units: int | None = None
    lead: dt.timedelta = dt.timedelta(0)
    hold: dt.timedelta = dt.timedelta(0)
    warmup: dt.timedelta = dt.timedelta(minutes=5)

    @classmethod
    def of(
        cls, policy: CapacityPolicy, *, warmup: dt.timedelta = dt.timedelta(minutes=5)
    ) -> Serving:
        """As ``policy`` serves (lead time, scale-in stabilisation, bounds, unit size)."""
        return cls(
            unit=policy.capacity_per_unit if policy.capacity_per_unit > 0 else None,
            tolerance=policy.unit_tolerance,
            min_units=policy.min_units,
            max_units=policy.max_units,
            lead=policy.lead_time,
            hold=policy.stabilization if policy.scale_in == "after_peak" else _NEVER,
            warmup=warmup,
        )

    def held(self, edge: np.ndarray, step: dt.timedelta) -> np.ndarray:
        """``edge`` (on a regular ``step`` grid) as the plan holds it: the largest value of
        the next ``ceil(lead / step)`` rows (raised ahead), then of the previous
        ``ceil(hold / step)`` (lowered after the hold); rows without a value are skipped."""
        ahead = _steps(self.lead, step)
        behind = _steps(self.hold, step)
        out = _window_max(edge, ahead, forward=True)
        return _window_max(out, behind, forward=False)

    def served(self, forecast: np.ndarray, floor: np.ndarray, cap: float | None) -> np.ndarray:
        """The capacity in force: ``max(forecast (capped), floor)`` in whole units."""
        planned = forecast if cap is None else np.minimum(forecast, cap)
        if self.unit is None or not self.unit > 0:
            return np.asarray(np.maximum(planned, floor), dtype=float)
        units = np.maximum(
            units_of(planned, self.unit, self.tolerance), units_of(floor, self.unit, self.tolerance)
        )
        units = np.maximum(units, self.min_units)
        if self.max_units is not None:
            units = np.minimum(units, self.max_units)
        return np.asarray(units * self.unit, dtype=float)


_NEVER = dt.timedelta(days=3650)  # scale_in "never": a raise is held for good


def _steps(span: dt.timedelta, step: dt.timedelta) -> int:
    return max(0, math.ceil(span / step)) if step > dt.timedelta(0) else 0


def _window_max(values: np.ndarray, width: int, *, forward: bool) -> np.ndarray:
    """The largest finite value of each row and the ``width`` rows after (or before) it;
    NaN where all are NaN."""
    if width <= 0 or values.size == 0:
        return values
    if width >= values.size:  # every row sees to the end (or the start): a running max
        ordered = values[::-1] if forward else values
        running = np.fmax.accumulate(ordered)
        return running[::-1] if forward else running
    pad = np.full(width, np.nan)
    padded = np.concatenate([values, pad]) if forward else np.concatenate([pad, values])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width + 1)
    with np.errstate(invalid="ignore"):
        finite = np.where(np.isfinite(windows), windows, -np.inf).max(axis=1)
    return np.where(np.isfinite(finite), finite, np.nan)


def _needed_factor(actual: np.ndarray, base: np.ndarray, target_under: float, cap: float) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(base > 0, actual / base, np.where(actual > 0, np.inf, 0.0))
    k = float(np.quantile(ratio, 1 - target_under, method="higher"))
    return min(max(k, 1.0), cap) if math.isfinite(k) else cap


_FACTORS = np.unique(np.concatenate([[1.0], np.geomspace(1.0, 10.0, 97)]))


def _needed_with_floor(
    actual: np.ndarray, base: np.ndarray, floor: np.ndarray, target_under: float, cap: float
) -> float:
    """The smallest k in [1, cap] with share(actual > max(k * base, floor)) <= target."""
    for k in _FACTORS[cap >= _FACTORS]:
        if float(np.mean(actual > np.maximum(k * base, floor))) <= target_under:
            return float(k)
    return cap


def observed_floor(
    ds: pd.Series, actual: np.ndarray, floor: Floor, hold: dt.timedelta = dt.timedelta(0)
) -> np.ndarray:
    """(1 + headroom) x the latest actual at or before each step's ``ds - delay``, held
    over ``hold`` as the planner's floor holds it
    (:func:`forescale.forecaster.capacity.held_demand`); steps with none before them get
    no floor (0)."""
    return _served_floor(_seen(ds, actual, floor.delay, hold), floor)


def _seen(ds: pd.Series, actual: np.ndarray, delay: dt.timedelta, hold: dt.timedelta) -> np.ndarray:
    """The demand the floor has seen at each step: the latest actual at or before
    ``ds - delay``, held over ``hold`` (0 before the first; NaN where unknown)."""
    stamps = pd.DatetimeIndex(ds)
    order = np.argsort(epoch_ns(stamps))
    sorted_ds = stamps[order]
    pos = sorted_ds.searchsorted(stamps - pd.Timedelta(delay), side="right") - 1
    held = held_demand(sorted_ds, actual[order], hold)
    return np.where(pos >= 0, held[np.clip(pos, 0, None)], 0.0)


def _served_floor(seen: np.ndarray, floor: Floor) -> np.ndarray:
    """What the floor serves for ``seen``: (1 + headroom) x it, at most the cap while the
    demand is below it; nothing where unknown. (Non-decreasing in ``seen``.)"""
    served = seen * (1 + floor.headroom)
    if floor.cap is not None:
        served = np.where(seen <= floor.cap, np.minimum(served, floor.cap), served)
    return np.nan_to_num(served, nan=0.0)


FLOOR_STEPS = (1.0, 2 / 3, 1 / 3, 0.0)
"""The observed floor's headroom the record may choose: these fractions of the configured
``observed_headroom`` (the floor never gets more than configured)."""


def evidence_for(
    record: pd.DataFrame,
    model: str,
    *,
    target_under: float,
    max_factor: float,
    floor: Floor | None = None,
    serving: Serving | None = None,
) -> ModelEvidence | None:
    """The cheapest way to protect ``target_under`` with ``model``: its band edge times
    ``k >= 1``, or its point forecast times ``k >= 1`` (a point forecast whose record is
    good needs less headroom than a band that is wide everywhere). With a ``floor`` the
    protection is judged as the daemon gives it: ``max(k x edge, observed floor)``, so the
    forecast gets only the headroom the floor does not already provide - and the floor only
    the headroom the forecast does not: its headroom may be lowered (:data:`FLOOR_STEPS` of
    the configured one) when the record holds with less. With ``serving`` each step is
    served as the plan would serve it (:class:`Serving`: lead time, the scale-in hold,
    whole units, the floor's warm-up), so the record is scored as the backtest scores the
    schedule."""
    cols = (f"{model}:yhat", f"{model}:upper")
    if any(c not in record.columns for c in cols):
        return None
    record = record.sort_values("ds", kind="stable")
    samples = int(record[cols[1]].notna().sum())  # the record's length, as sampled
    bases = record[["ds", "actual", *cols]].set_axis(["ds", "actual", "point", "band"], axis=1)
    if OUTLIER in record.columns:  # judged by no one, still seen by the floor
        bases[OUTLIER] = record[OUTLIER].to_numpy(dtype=bool)
    if floor is not None and floor.cadence is not None:
        bases = at_cadence(bases, floor.cadence)
    if serving is not None:  # on the planner's slots: the cadence, or the record's step
        step = native_step(pd.DatetimeIndex(bases["ds"]))
        for column in ("point", "band"):
            bases[column] = serving.held(bases[column].to_numpy(dtype=float), step)
    a_all = bases["actual"].to_numpy(dtype=float)
    yhat_all = bases["point"].to_numpy(dtype=float)
    upper_all = bases["band"].to_numpy(dtype=float)
    keep = np.isfinite(a_all) & np.isfinite(upper_all) & np.isfinite(yhat_all)
    if OUTLIER in bases.columns:
        keep &= ~bases[OUTLIER].to_numpy(dtype=bool)
    if not keep.any():
        return None
    a = a_all[keep]
    yhat, upper = yhat_all[keep], upper_all[keep]
    raw = record[list(cols)].to_numpy(dtype=float)
    raw_keep = np.isfinite(raw).all(axis=1) & np.isfinite(record["actual"].to_numpy(dtype=float))
    raw_actual = record["actual"].to_numpy(dtype=float)[raw_keep]
    floors: list[tuple[float | None, np.ndarray]] = [(None, np.zeros(int(keep.sum())))]
    if floor is not None:
        seen = _seen_in_force(bases["ds"], a_all, floor, serving)[keep]
        floors = [
            (
                floor.headroom * step,
                _served_floor(seen, replace(floor, headroom=floor.headroom * step)),
            )
            for step in (FLOOR_STEPS if floor.headroom > 0 else (1.0,))
        ]
    ceiling = floor.cap if floor is not None else None
    total = float(a.sum())
    options = []
    for floor_h, low in floors:
        for basis, base in (("band", upper), ("point", yhat)):
            if serving is not None:
                k = _needed_served(a, base, low, target_under, max_factor, serving, ceiling)
                served = serving.served(k * base, low, ceiling)
            elif floor is None:
                k = _needed_factor(a, base, target_under, max_factor)
                served = k * base
            else:
                k = _needed_with_floor(a, base, low, target_under, max_factor)
                served = np.maximum(k * base, low)
            under = float(np.mean(a > served))
            ratio = float(served.sum() / total) if total > 0 else math.inf
            # held first, then cheapest; on a tie the larger floor (the safer one)
            options.append(
                (under > target_under + 1e-12, ratio, -(floor_h or 0.0), basis, k, under, floor_h)
            )
    _, ratio, _, basis, k, under, floor_h = min(options)
    return ModelEvidence(
        model=model,
        steps=min(samples, int(a.size)),
        smape=smape(raw_actual, raw[raw_keep, 0]),
        under_share=float(np.mean(raw_actual > raw[raw_keep, 1])) if raw_actual.size else math.nan,
        basis="band" if basis == "band" else "point",
        factor=k,
        under_share_widened=under,
        provisioned_ratio=ratio,
        floor_headroom=floor_h,
    )


def _seen_in_force(
    ds: pd.Series, actual: np.ndarray, floor: Floor, serving: Serving | None
) -> np.ndarray:
    """The demand the floor serves at each step (:func:`_served_floor` gives the units'
    demand for any headroom); with ``serving``, as it serves: held over the scale-in
    stabilisation, a raise only ``warmup`` after it is applied, a lower at once (the
    smaller of what was seen ``delay`` and ``delay + warmup`` ago: the floor is
    non-decreasing in what it saw)."""
    if serving is None:
        return _seen(ds, actual, floor.delay, dt.timedelta(0))
    applied = _seen(ds, actual, floor.delay, serving.hold)
    if serving.warmup <= dt.timedelta(0):
        return applied
    warm = _seen(ds, actual, floor.delay + serving.warmup, serving.hold)
    return np.asarray(np.minimum(applied, warm), dtype=float)


def _needed_served(
    actual: np.ndarray,
    base: np.ndarray,
    low: np.ndarray,
    target_under: float,
    max_factor: float,
    serving: Serving,
    ceiling: float | None,
) -> float:
    """The smallest k of :data:`_FACTORS` in [1, max_factor] whose served capacity (at
    most ``ceiling``) under-provisions at most ``target_under``; ``max_factor`` when none
    does (served capacity grows with k, so a bisection finds it)."""
    factors = _FACTORS[max_factor >= _FACTORS]

    def held(k: float) -> bool:
        served = serving.served(k * base, low, ceiling)
        return float(np.mean(actual > served)) <= target_under

    lo, hi = 0, len(factors) - 1
    if not held(float(factors[hi])):
        return max_factor
    while lo < hi:
        mid = (lo + hi) // 2
        if held(float(factors[mid])):
            hi = mid
        else:
            lo = mid + 1
    return float(factors[lo])


def choose_model(
    record: pd.DataFrame,
    models: Sequence[str],
    *,
    target_under: float = TARGET_UNDER,
    max_factor: float = 3.0,
    min_steps: int = 48,
    primary: str = PRIMARY,
    switch_margin: float = 0.0,
    floor: Floor | None = None,
    serving: Serving | None = None,
) -> Choice:
    """Pick the model and its headroom for the next forecast from the ``record``.

    The primary is kept unless another model held the target for ``switch_margin`` less
    provisioned demand (by default any less: leaving whole groups of series out chose no
    margin, docs/BENCHMARKS.md), or the primary did not hold and another did."""
    evidence = [
        e
        for m in models
        if (
            e := evidence_for(
                record,
                m,
                target_under=target_under,
                max_factor=max_factor,
                floor=floor,
                serving=serving,
            )
        )
        is not None
    ]
    if not evidence or min(e.steps for e in evidence) < min_steps:
        steps = min((e.steps for e in evidence), default=0)
        return Choice(
            model=primary,
            basis="band",
            factor=1.0,
            reason=f"record too short to compare models ({steps} of {min_steps} steps): "
            f"{primary} with its own band",
            evidence=tuple(evidence),
        )
    held = [e for e in evidence if e.under_share_widened <= target_under + 1e-12]
    if held:
        best = min(held, key=lambda e: (e.provisioned_ratio, e.model != primary))
        own = next((e for e in held if e.model == primary), None)
        if own is not None and best.provisioned_ratio > own.provisioned_ratio * (1 - switch_margin):
            best = own
        why = (
            f"{best.model}: the cheapest headroom that held on the last {best.steps} steps "
            f"({_basis_text(best)} under-provisions {best.under_share_widened:.1%}, "
            f"provisions {best.provisioned_ratio:.2f}x the demand)"
        )
    else:
        best = min(evidence, key=lambda e: (e.under_share_widened, e.provisioned_ratio))
        why = (
            f"{best.model}: no headroom held within x{max_factor:g}; least often "
            f"under-provisioned ({best.under_share_widened:.1%} of {best.steps} steps)"
        )
    if best.basis == "band" and best.factor > 1.0:
        why += (
            f"; band widened x{best.factor:.2f}: its own band was exceeded on "
            f"{best.under_share:.1%} of steps"
        )
    if (
        floor is not None
        and best.floor_headroom is not None
        and best.floor_headroom < floor.headroom
    ):
        why += (
            f"; the observed floor needs only +{best.floor_headroom:.0%} headroom "
            f"(of +{floor.headroom:.0%}) on this record"
        )
    return Choice(
        model=best.model,
        basis=best.basis,
        factor=best.factor,
        reason=why,
        evidence=tuple(evidence),
        floor_headroom=best.floor_headroom,
    )


def _basis_text(e: ModelEvidence) -> str:
    edge = "band" if e.basis == "band" else "point forecast"
    return f"{edge} x{e.factor:.2f}"


def headroom(forecast: Forecast, choice: Choice) -> Forecast:
    """``forecast`` with ``yhat_upper`` set to the headroom the record asked for."""
    if choice.basis == "point":
        frame = forecast.frame.copy()
        frame["yhat_upper"] = frame["yhat"] * choice.factor
        return forecast.noted(
            f"capacity band: point forecast x{choice.factor:.2f} (from the record)", frame=frame
        )
    return widened(forecast, choice.factor)


def widened(forecast: Forecast, factor: float, *, note: str | None = None) -> Forecast:
    """``forecast`` with ``yhat_upper`` multiplied by ``factor`` (>= 1)."""
    if factor == 1.0 and note is None:
        return forecast
    frame = forecast.frame.copy()
    frame["yhat_upper"] = frame["yhat_upper"] * factor
    return forecast.noted(
        note or f"capacity band: upper edge x{factor:.2f} (from the record)", frame=frame
    )
