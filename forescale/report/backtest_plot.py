"""The backtest report's two plots (HTML), on the display clock.

Times are plotted as UTC and labelled in the display timezone by the axis, so a DST
change does not fold a line back on itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from forescale.report.backtest_view import FORESCALE, UNITS_PREFIX, BacktestView
from forescale.report.svg import figure_svg

__all__ = ["capacity_svg", "forecast_svg"]

_PALETTE = ("#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
_FORECAST_SERIES = (
    ("actual", "actual", "#444444", "-"),
    (f"{FORESCALE}:yhat", "forescale forecast", "#1f77b4", "-"),
    (
        f"{FORESCALE}:upper",
        "forescale upper band (planned on, scaled by the record)",
        "#1f77b4",
        "--",
    ),
)


def forecast_svg(view: BacktestView) -> str:
    """Actual demand, forescale's forecast and its upper band per fold; cutoffs dotted."""
    result = view.result
    points = result.points

    def draw(ax: Any) -> None:
        if points.empty or any(c not in points.columns for c in ("ds", "fold", "actual")):
            ax.text(0.5, 0.5, "no fold was scored", ha="center", transform=ax.transAxes)
            return
        for k, (_, frame) in enumerate(points.groupby("fold", sort=True)):
            x = _utc_naive(frame["ds"])
            for column, label, color, style in _FORECAST_SERIES:
                if column in frame.columns:
                    y = frame[column].to_numpy(dtype=float)
                    label_once = label if k == 0 else None
                    ax.plot(x, y, color=color, ls=style, lw=1.0, label=label_once)
        for fold in result.folds:
            ax.axvline(_utc_naive([fold.cutoff])[0], color="black", ls=":", lw=0.6)
        ax.set_ylabel("demand")

    return _svg(draw, view.timezone)


def capacity_svg(view: BacktestView) -> str:
    """Units demand needed (demand / capacity per unit) and every approach's units."""
    result = view.result
    schedule = result.schedule

    def draw(ax: Any) -> None:
        if schedule.empty or result.capacity_per_unit <= 0:
            ax.text(0.5, 0.5, "no step was simulated", ha="center", transform=ax.transAxes)
            return
        baselines = [c for c in schedule.columns if c.startswith(UNITS_PREFIX)]
        for k, (_, frame) in enumerate(schedule.groupby("fold", sort=True)):
            x = _utc_naive(frame["ts"])
            needed = frame["demand"].to_numpy(dtype=float) / result.capacity_per_unit
            first = k == 0
            label = "units needed (demand / capacity per unit)" if first else None
            ax.plot(x, needed, color="#444444", lw=1.0, label=label)
            for j, column in enumerate(["units", *baselines]):
                name = FORESCALE if column == "units" else column.removeprefix(UNITS_PREFIX)
                ax.step(
                    x,
                    frame[column].to_numpy(dtype=float),
                    where="post",
                    color="#1f77b4" if j == 0 else _PALETTE[(j - 1) % len(_PALETTE)],
                    lw=1.6 if j == 0 else 1.0,
                    alpha=1.0 if j == 0 else 0.8,
                    zorder=3 if j == 0 else 2,
                    label=name if first else None,
                )
        ax.set_ylabel("units")

    return _svg(draw, view.timezone)


def _utc_naive(values: Iterable[Any]) -> np.ndarray:
    """UTC wall times as naive datetime64 (matplotlib reads them as UTC)."""
    index = pd.DatetimeIndex(pd.Series(values))
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.to_numpy()


def _svg(draw: Callable[[Any], None], tz: ZoneInfo) -> str:
    """``draw(ax)``, then the time axis labelled in ``tz``, a grid and the legend."""
    import matplotlib.dates as mdates

    def framed(fig: Any, ax: Any) -> None:
        draw(ax)
        locator = mdates.AutoDateLocator(tz=tz)  # type: ignore[no-untyped-call]
        formatter = mdates.ConciseDateFormatter(locator, tz=tz)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(formatter)
        ax.set_xlabel(f"time ({tz.key})")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            # Above the axes: inside, it would hide the peaks it is about.
            ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), fontsize=8, ncol=3, frameon=False)

    return figure_svg(framed, salt="forescale-backtest", size=(10, 3.6))
