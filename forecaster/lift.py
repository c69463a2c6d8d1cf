"""The forecast ahead, lifted while the demand runs above it.

A forecast is made at a refit and planned with until the next one. When the demand of
the last :data:`WINDOW` (1 h) ran above the forecast's point for the same hour - their
sums' ratio ``r > 1`` - the forecast missed a level (a campaign, a storm, a day busier than
its history), and such a level usually outlasts the hour it was seen in. The observed
floor only holds what was seen; it does not see the rise still to come that morning. So
the upper band of the next :data:`REACH` (6 h) is multiplied by ``r``, at most
``CapacityPolicy.max_lift`` (1.5 in the settings; 1.0 never lifts).

The lifted band stays at or below the *recent peak* - the highest demand of the
:data:`PEAK_WINDOW` (7 days) before the forecast was made, and never above its credible
ceiling - or the band itself where that is higher: a lift follows the forecast's shape up
to a level the service served last week; demand beyond it is the observed floor's. Demand
below the forecast never lowers it: lowering too was measured, and it cost shortfalls
(docs/BENCHMARKS.md, session 10). Each demand sample counts at most the credible ceiling,
so one bogus sample lifts no more than a real hour at the ceiling would.

The record the headroom is chosen on does not replay the lift: the lift only adds capacity,
where demand is running above the forecast. Pure: arrays and frames in, numbers out.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forescale.forecaster.types import Forecast

__all__ = [
    "MAX_LIFT",
    "PEAK_WINDOW",
    "REACH",
    "WINDOW",
    "Lift",
    "factor_for",
    "lift_forecast",
    "lift_of",
    "lifted",
    "lifted_band",
    "percent",
    "ran_above",
    "recent_peak",
    "running_ratio",
]

WINDOW = dt.timedelta(hours=1)
REACH = dt.timedelta(hours=6)  # how far ahead a lift holds: a level seen for an hour is
# trusted for the next hours, not for tomorrow (the next plan looks again)
PEAK_WINDOW = dt.timedelta(days=7)
MAX_LIFT = 1.5  # the settings' default for CapacityPolicy.max_lift


@dataclass(frozen=True, kw_only=True, slots=True)
class Lift:
    """How the forecast ahead is lifted now: ``factor`` (1.0: not at all), from
    ``ratio`` (the last hour's demand over the forecast's point for it; NaN: not known),
    the band staying at or below ``limit`` (the recent peak; None: no limit known)."""

    factor: float = 1.0
    ratio: float = math.nan
    limit: float | None = None

    @property
    def lifts(self) -> bool:
        return self.factor > 1.0

    def describe(self) -> str:
        """One sentence for the plan's notes (empty when nothing is lifted)."""
        if not self.lifts:
            return ""
        capped = f" (max_lift {self.factor:g})" if self.factor < self.ratio else ""
        held = f", up to the recent peak {_fmt(self.limit)}" if self.limit is not None else ""
        return (
            f"demand ran {percent(self.ratio)} above the forecast over the last "
            f"{_fmt_td(WINDOW)}: the forecast ahead is lifted by "
            f"{percent(self.factor)}{capped}{held}"
        )


def ran_above(actual: np.ndarray, point: np.ndarray, *, cap: float | None = None) -> float:
    """The demand over the forecast's point for the same samples (their sums' ratio);
    NaN with fewer than half the samples known on both sides, or no forecast to compare.
    Each demand sample counts at most ``cap`` (the credible ceiling)."""
    a = np.asarray(actual, dtype=float)
    f = np.asarray(point, dtype=float)
    known = np.isfinite(a) & np.isfinite(f)
    if a.size == 0 or 2 * int(known.sum()) < a.size:
        return math.nan
    if cap is not None:
        a = np.minimum(a, cap)
    expected = float(f[known].sum())
    return float(a[known].sum()) / expected if expected > 0 else math.nan


def running_ratio(
    actual: np.ndarray, point: np.ndarray, width: int, *, cap: float | None = None
) -> np.ndarray:
    """:func:`ran_above` over each row's ``width`` rows ending at it (NaN before
    ``width`` rows), for aligned regular-grid arrays."""
    a = np.asarray(actual, dtype=float)
    f = np.asarray(point, dtype=float)
    out = np.full(a.size, np.nan)
    if width < 1 or a.size < width:
        return out
    if cap is not None:
        a = np.minimum(a, cap)
    known = np.isfinite(a) & np.isfinite(f)
    windows = np.lib.stride_tricks.sliding_window_view
    count = windows(known.astype(int), width).sum(axis=1)
    sum_a = windows(np.where(known, a, 0.0), width).sum(axis=1)
    sum_f = windows(np.where(known, f, 0.0), width).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((2 * count >= width) & (sum_f > 0), sum_a / sum_f, np.nan)
    out[width - 1 :] = ratio
    return out


def factor_for(ratio: float, max_lift: float) -> float:
    """The lift a ratio asks for: ``ratio`` within ``[1, max_lift]`` (1.0 when unknown)."""
    if not math.isfinite(ratio) or ratio <= 1.0 or max_lift <= 1.0:
        return 1.0
    return min(ratio, max_lift)


def recent_peak(history: pd.DataFrame, start: dt.datetime, ceiling: float | None) -> float | None:
    """The highest demand of the :data:`PEAK_WINDOW` before ``start`` (the forecast's
    first step), at most ``ceiling``; ``ceiling`` when the week holds no demand (None:
    neither is known)."""
    ds = pd.DatetimeIndex(history["ds"])
    since = pd.Timestamp(start) - pd.Timedelta(PEAK_WINDOW)
    y = history["y"].to_numpy(dtype=float)[(ds >= since) & (ds < pd.Timestamp(start))]
    y = y[np.isfinite(y)]
    if y.size == 0:
        return ceiling
    peak = float(y.max())
    return min(peak, ceiling) if ceiling is not None else peak


def lifted(upper: np.ndarray, factor: float, limit: float | None) -> np.ndarray:
    """``upper`` times ``factor``, at most ``limit`` - or ``upper`` itself where higher."""
    band = np.asarray(upper, dtype=float)
    if factor <= 1.0:
        return band
    raised = band * factor
    if limit is None:
        return raised
    return np.asarray(np.minimum(raised, np.fmax(band, limit)), dtype=float)


def lift_of(
    *,
    observed: pd.DataFrame,
    forecast: pd.DataFrame,
    resolution: dt.timedelta,
    max_lift: float,
    ceiling: float | None,
    made_at: dt.datetime | None = None,
) -> Lift:
    """The lift now, from ``observed`` (``ds``, ``y``: the history up to now, newest
    last) and ``forecast`` (``ds``, ``yhat``: the forecast in force at each time, on its
    ``resolution``): the samples of the :data:`WINDOW` ending at the newest against the
    forecast's point in force at each, limited by :func:`recent_peak` before ``made_at``
    (when the forecast planned with now was made; default: the forecast's first row)."""
    if max_lift <= 1.0 or observed.empty or forecast.empty:
        return Lift()
    ds = pd.DatetimeIndex(observed["ds"])
    newest = ds[-1]
    inside = ds > newest - pd.Timedelta(WINDOW)
    rows = forecast.sort_values("ds")
    starts = pd.DatetimeIndex(rows["ds"])
    pos = starts.searchsorted(ds[inside], side="right") - 1
    covered = (pos >= 0) & (ds[inside] < starts[np.clip(pos, 0, None)] + pd.Timedelta(resolution))
    point = np.where(covered, rows["yhat"].to_numpy(dtype=float)[np.clip(pos, 0, None)], np.nan)
    ratio = ran_above(observed["y"].to_numpy(dtype=float)[inside], point, cap=ceiling)
    factor = factor_for(ratio, max_lift)
    if factor <= 1.0:
        return Lift(ratio=ratio)
    start = starts[0].to_pydatetime() if made_at is None else made_at
    limit = recent_peak(observed, start, ceiling)
    return Lift(factor=factor, ratio=ratio, limit=limit)


def percent(ratio: float) -> str:
    """``1.2`` as "20%", ``1.004`` as "0.4%" (a small lift is not shown as none)."""
    percent = (ratio - 1) * 100
    return f"{percent:.0f}%" if percent >= 9.95 else f"{percent:.1f}%"


def _fmt(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"


def _fmt_td(span: dt.timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def reach(ds: pd.DatetimeIndex, step: dt.timedelta, now: dt.datetime) -> np.ndarray:
    """The rows (starting at ``ds``, ``step`` long) a lift made at ``now`` raises: those
    still in force at ``now`` and starting before ``now + REACH``."""
    ends = ds + pd.Timedelta(step)
    return np.asarray((ends > pd.Timestamp(now)) & (ds < pd.Timestamp(now) + pd.Timedelta(REACH)))


def lifted_band(
    frame: pd.DataFrame,
    step: dt.timedelta,
    now: dt.datetime,
    factor: float,
    limit: float | None,
) -> pd.DataFrame:
    """``frame`` (``ds``, ``yhat_upper``, ... on ``step`` slots) with the upper band of
    every row :func:`reach` gives lifted (:func:`lifted`); a new frame."""
    ahead = reach(pd.DatetimeIndex(frame["ds"]), step, now)
    upper = frame["yhat_upper"].to_numpy(dtype=float).copy()
    upper[ahead] = lifted(upper[ahead], factor, limit)
    return frame.assign(yhat_upper=upper)


def lift_forecast(forecast: Forecast, lift: Lift, now: dt.datetime) -> Forecast:
    """``forecast`` with its band lifted (:func:`lifted_band`) and the lift noted;
    ``forecast`` itself when nothing is."""
    if not lift.lifts:
        return forecast
    frame = lifted_band(forecast.frame, forecast.resolution, now, lift.factor, lift.limit)
    return forecast.noted(lift.describe(), frame=frame)
