"""The plan report's plot (HTML): recent history, forecast band, planned capacity and the
calendar effects of one service, on the display clock."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from forescale.report.plan_view import ServiceView
from forescale.report.svg import figure_svg

__all__ = ["plan_svg"]


def plan_svg(view: ServiceView, tz: ZoneInfo) -> str:
    """One ``<svg>``: demand (history, forecast and band) and capacity (planned units ×
    demand per unit) in the service's demand unit, times as wall-clock times in ``tz``."""
    service = view.service

    def local(series: pd.Series) -> Any:
        return series.dt.tz_convert(tz).dt.tz_localize(None)

    def wall(when: dt.datetime) -> Any:
        return pd.Timestamp(when).tz_convert(tz).tz_localize(None)

    def draw(fig: Any, ax: Any) -> None:
        hist, fc = service.recent_history, service.forecast.frame
        if not hist.empty:
            ax.plot(local(hist["ds"]), hist["y"], color="#444444", lw=1, label="history")
        ax.fill_between(
            local(fc["ds"]),
            fc["yhat_lower"],
            fc["yhat_upper"],
            color="#1f77b4",
            alpha=0.2,
            label=f"forecast {service.forecast.interval_width:.0%} band",
        )
        ax.plot(local(fc["ds"]), fc["yhat"], color="#1f77b4", lw=1.2, label="forecast")
        desired = service.plan.desired
        if not desired.empty:
            ax.step(
                local(desired["ds"]),
                desired["units"] * service.policy.capacity_per_unit,
                where="post",
                color="#d62728",
                lw=1.5,
                label="planned capacity (units \u00d7 per-unit)",
            )
        for effect in view.effects:
            start = wall(effect.effect.start)
            ax.axvspan(start, wall(effect.effect.end), color="#ff7f0e", alpha=0.12)
            ax.annotate(
                effect.label,
                xy=(start, 0),
                xycoords=("data", "axes fraction"),
                xytext=(3, 5),
                textcoords="offset points",
                fontsize=8,
                color="#b35900",
            )
        ax.axvline(wall(service.plan.now), color="black", ls="--", lw=0.8)
        ax.set_ylabel("demand")
        ax.set_xlabel(f"time ({tz.key})")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()

    return figure_svg(draw, salt="forescale-plan", size=(10, 4))
