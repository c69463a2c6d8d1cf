"""A Mermaid ``xychart-beta`` of one service: history, forecast band and planned capacity.

GitHub and GitLab draw a fenced ``mermaid`` block in markdown themselves, so a pull request
description or a PR comment shows the chart with no image to host. The chart is built
from the frames of a :class:`~forescale.report.plan_view.ServiceReport` (pure, no clock):

1. **One time axis** from the first recent-history sample to the last forecast step, cut
   into equal buckets: the narrowest width of :data:`WIDTHS` (then whole weeks) that is at
   least the data's own step and gives at most ``max_points`` buckets (default
   :data:`MAX_POINTS`). Buckets start at multiples of the width since the Unix epoch (UTC),
   so the same frames always give the same buckets. Each bucket is labelled with its start
   on the display clock (``Nov 26 18:00``): unique, since buckets are a minute apart at
   least and the axis spans less than a year.
2. **Three lines**, each bucket holding the *highest* value in it, so no peak is lost to
   downsampling:

   a. demand: the observed history up to ``now``, then the point forecast;
   b. the forecast's upper band after ``now`` (before it the observed history: the past
      has no band);
   c. planned capacity: the units in force (``current_units`` before the plan's first
      row) × ``capacity_per_unit``, so it shares the demand axis (the title says so).
3. Values that are NaN or infinite are left out. A bucket without a value takes the
   previous bucket's (the first ones take the first value that follows); a line without
   any value is 0. Every number written is finite, with at most two decimals.
4. The y axis starts at 0 and ends at a round number above the highest value.
5. Text is written inside double quotes; a double quote or backtick in it becomes ``'``
   and a line break a space, so no name can break the block.

Mermaid's xychart has no legend: :attr:`XyChart.legend` is a sentence to print under it,
and the lines are drawn in :data:`COLORS` (through an ``init`` directive that renderers
without theme support ignore).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from forescale.report.plan_view import ServiceReport

__all__ = [
    "COLORS",
    "MAX_POINTS",
    "WIDTHS",
    "XyChart",
    "demand_chart",
    "render_xychart",
    "service_chart",
]

MAX_POINTS = 60
"""The most buckets (x-axis labels) a chart has: more would not fit a PR's width."""

WIDTHS = tuple(
    dt.timedelta(minutes=m)
    for m in (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 360, 480, 720, 1440, 2880, 4320)
)
"""Bucket widths tried in order; past the last, whole weeks."""

COLORS = ("#555555", "#1f77b4", "#d62728")
"""Line colours in drawing order: demand (grey), upper band (blue), capacity (red)."""

_NS = 1_000_000_000


@dataclass(frozen=True, kw_only=True, slots=True)
class XyChart:
    """A line chart as Mermaid draws it: ``labels`` on the x axis and, per line, one
    finite value per label (demand units). ``legend`` says what each line is."""

    title: str
    x_title: str
    labels: tuple[str, ...]
    y_title: str
    y_max: float
    lines: tuple[tuple[float, ...], ...]
    legend: str


def service_chart(
    service: ServiceReport, tz: ZoneInfo, *, max_points: int = MAX_POINTS
) -> XyChart | None:
    """The chart of one planned service (None when it has neither history nor forecast)."""
    return demand_chart(
        name=service.name,
        history=service.recent_history,
        forecast=service.forecast.frame,
        desired=service.plan.desired,
        current_units=service.plan.current_units,
        capacity_per_unit=service.policy.capacity_per_unit,
        interval_width=service.forecast.interval_width,
        now=service.plan.now,
        tz=tz,
        max_points=max_points,
    )


def demand_chart(
    *,
    name: str,
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    desired: pd.DataFrame,
    current_units: int,
    capacity_per_unit: float,
    interval_width: float,
    now: dt.datetime,
    tz: ZoneInfo,
    max_points: int = MAX_POINTS,
) -> XyChart | None:
    """Rules 1-4 of the module docstring. ``history`` has ``ds`` (UTC) and ``y``;
    ``forecast`` ``ds``, ``yhat`` and ``yhat_upper``; ``desired`` ``ds`` and ``units``.
    None when there is no time to show (no history and no forecast)."""
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, not {max_points}")
    cut = pd.Timestamp(now).value
    hist_t, hist_y = _points(history, "y")
    past = hist_t <= cut
    fc_t, fc_mid = _points(forecast, "yhat")
    _, fc_upper = _points(forecast, "yhat_upper")
    future = fc_t > cut
    times = np.concatenate([hist_t, fc_t])
    if times.size == 0:
        return None
    start, end = int(times.min()), int(times.max())
    width = _width(end - start, _step(fc_t) or _step(hist_t), max_points, start)
    first = start - start % width
    count = (end - first) // width + 1
    edges = first + width * np.arange(count, dtype=np.int64)

    demand = _bucket_max(
        np.concatenate([hist_t[past], fc_t[future]]),
        np.concatenate([hist_y[past], fc_mid[future]]),
        first,
        width,
        count,
    )
    band = _bucket_max(
        np.concatenate([hist_t[past], fc_t[future]]),
        np.concatenate([hist_y[past], fc_upper[future]]),
        first,
        width,
        count,
    )
    units = _capacity(desired, current_units, edges, width)
    capacity = _fill(units * float(capacity_per_unit))
    lines = (_fill(demand), _fill(band), capacity)
    top = max((max(line) for line in lines), default=0.0)
    per_unit = f"{capacity_per_unit:g}"
    band_name = f"{interval_width:.0%} upper band"
    return XyChart(
        title=(
            f"{name}: demand (history, then forecast), forecast {band_name}, planned "
            f"capacity (units \u00d7 {per_unit}, on the demand axis)"
        ),
        x_title=f"time ({tz.key})",
        labels=tuple(
            pd.Timestamp(int(t), tz="UTC").tz_convert(tz).strftime("%b %d %H:%M") for t in edges
        ),
        y_title="demand",
        y_max=_round_up(top),
        lines=lines,
        legend=(
            f"Lines: grey \u2014 demand, observed until now, then the point forecast; "
            f"blue \u2014 the forecast {band_name} (the observed demand before now); red "
            f"\u2014 planned capacity, units \u00d7 {per_unit} per unit. Each point is the "
            "highest value in its interval."
        ),
    )


def render_xychart(chart: XyChart) -> str:
    """``chart`` as a fenced ``mermaid`` block (ends with a newline). ``ValueError`` if a
    line's length differs from the labels' or a value is not finite (a bug upstream)."""
    if not chart.labels:
        raise ValueError("a chart needs at least one x-axis label")
    for line in chart.lines:
        if len(line) != len(chart.labels):
            raise ValueError(f"a line has {len(line)} values for {len(chart.labels)} labels")
        if not all(math.isfinite(v) for v in line):
            raise ValueError("a chart value is not finite")
    if not math.isfinite(chart.y_max):
        raise ValueError("the y axis' end is not finite")
    palette = ", ".join(COLORS[: len(chart.lines)])
    out = [
        "```mermaid",
        '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "' + palette + '"}}}}%%',
        "xychart-beta",
        f"    title {_quoted(chart.title)}",
        f"    x-axis {_quoted(chart.x_title)} [{', '.join(_quoted(s) for s in chart.labels)}]",
        f"    y-axis {_quoted(chart.y_title)} 0 --> {_number(chart.y_max)}",
    ]
    out += [f"    line [{', '.join(_number(v) for v in line)}]" for line in chart.lines]
    out.append("```")
    return "\n".join(out) + "\n"


# -- pieces ------------------------------------------------------------------------------
def _points(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(epoch nanoseconds, values) of the rows of ``frame`` (empty when it lacks them)."""
    if frame.empty or "ds" not in frame.columns or column not in frame.columns:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=float)
    utc = pd.DatetimeIndex(pd.to_datetime(frame["ds"], utc=True)).tz_convert(None)
    times = np.asarray(utc, dtype="datetime64[ns]").astype(np.int64)
    return times, frame[column].to_numpy(dtype=float)


def _step(times: np.ndarray) -> int:
    """The smallest positive spacing of ``times`` (ns); 0 when there is none."""
    gaps = np.diff(np.unique(times))
    return int(gaps.min()) if gaps.size else 0


def _width(span: int, step: int, max_points: int, start: int) -> int:
    """The narrowest bucket width (ns) of rule 1: a width of :data:`WIDTHS`, then whole
    weeks (a width of ``span`` or more always fits, so the search ends)."""
    widths = [int(w.total_seconds()) * _NS for w in WIDTHS]
    week = 7 * 86400 * _NS
    tried = 0
    while True:
        tried += 1
        width = widths[tried - 1] if tried <= len(widths) else week * (tried - len(widths))
        if width >= step and (start % width + span) // width + 1 <= max_points:
            return width


def _bucket_max(
    times: np.ndarray, values: np.ndarray, first: int, width: int, count: int
) -> np.ndarray:
    """The highest finite value per bucket; NaN where a bucket has none."""
    out = np.full(count, np.nan)
    keep = np.isfinite(values)
    index = (times[keep] - first) // width
    np.fmax.at(out, index, values[keep])
    return out


def _capacity(desired: pd.DataFrame, current: int, edges: np.ndarray, width: int) -> np.ndarray:
    """Per bucket, the most units in force at any moment in it (rule 2c)."""
    times, units = _points(desired, "units")
    if times.size == 0:
        return np.full(edges.size, float(current))
    order = np.argsort(times, kind="stable")
    times, units = times[order], units[order]
    before = np.searchsorted(times, edges, side="right") - 1  # the row in force at the edge
    at_edge = np.where(before >= 0, units[np.clip(before, 0, None)], float(current))
    inside = _bucket_max(times, units, int(edges[0]), width, edges.size)
    most: np.ndarray = np.fmax(at_edge, inside)
    return most


def _fill(values: np.ndarray) -> tuple[float, ...]:
    """Rule 3: gaps take the previous value (the first ones the next); all-empty is 0."""
    series = pd.Series(values, dtype=float).ffill().bfill().fillna(0.0)
    return tuple(float(v) for v in series)


def _round_up(value: float) -> float:
    """A round number (1, 2, 2.5 or 5 × 10^k) above ``value``; 1 for nothing."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    target = value * 1.05
    power = 10.0 ** math.floor(math.log10(target))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if factor * power >= target:
            return factor * power
    return 10.0 * power  # pragma: no cover - the loop ends at 10


def _number(value: float) -> str:
    """At most two decimals, no exponent, no ``-0``."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _quoted(text: str) -> str:
    """``text`` in double quotes, safe inside them (rule 5)."""
    clean = " ".join(text.replace('"', "'").replace("`", "'").split())
    return f'"{clean}"'
