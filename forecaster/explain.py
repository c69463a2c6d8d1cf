"""Explain a forecast in words: where the peaks are and which calendar effects drive them.

Pure: a :class:`~forescale.forecaster.types.Forecast` and a display timezone in, small records out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd

from forescale.forecaster.types import EventEffect, Forecast

MIN_EFFECT = 0.01  # effects smaller than 1 % are not worth a reader's attention


@dataclass(frozen=True, kw_only=True, slots=True)
class Driver:
    """One component's effect at one moment: ``effect`` is a fraction (0.22 = +22 %)."""

    component: str
    effect: float
    label: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Peak:
    """The highest point forecast of one local day in the horizon."""

    at: dt.datetime  # UTC
    yhat: float
    yhat_upper: float
    drivers: tuple[Driver, ...]


def percent(fraction: float) -> str:
    """``-0.38`` -> ``−38 %`` (a real minus sign, as in print)."""
    value = round(fraction * 100)
    sign = "+" if value > 0 else "\u2212" if value < 0 else "\u00b1"
    return f"{sign}{abs(value)} %"


def part_of_day(hour: int) -> str:
    if 6 <= hour < 12:
        return "morning"
    if 12 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 22:
        return "evening"
    return "night"


def _event_source(effect: EventEffect | None) -> str:
    if effect is None:
        return ""
    if effect.source == "expected_uplift":
        return " (expected uplift from the calendar: first occurrence, nothing to learn from)"
    if effect.source == "learned":
        n = effect.occurrences_in_history
        return f" (learned from {n} past occurrence{'s' if n != 1 else ''})"
    return " (holiday, learned from history)"


def label(
    component: str, effect: float, local: dt.datetime, effects: dict[str, EventEffect]
) -> str:
    """A reader's label for ``component`` at local time ``local``."""
    pct = percent(effect)
    if component == "weekly":
        return f"weekly: {local:%A} {part_of_day(local.hour)} {pct}"
    if component in {"daily", "daily_weekday", "daily_weekend"}:
        shape = {"daily_weekday": " (weekday shape)", "daily_weekend": " (weekend shape)"}.get(
            component, ""
        )
        return f"daily{shape}: {local:%H:%M} {pct}"
    if component == "yearly":
        return f"yearly: {local:%B} {pct}"
    if component == "business_hours":
        return f"business hours {pct}"
    if component.startswith(("event:", "holiday:")):
        name = component.split(":", 1)[1]
        return f"{name} {pct}{_event_source(effects.get(name))}"
    return f"{component} {pct}"


def drivers_at(forecast: Forecast, index: int, tz: ZoneInfo) -> tuple[Driver, ...]:
    """The components that move the forecast at row ``index``, largest first."""
    row = forecast.frame.iloc[index]
    when = pd.Timestamp(row["ds"]).to_pydatetime().astimezone(tz)
    effects = {e.name: e for e in forecast.event_effects}
    found = []
    for component in forecast.components:
        value = float(row[component])
        if abs(value) >= MIN_EFFECT:
            found.append(
                Driver(
                    component=component,
                    effect=value,
                    label=label(component, value, when, effects),
                )
            )
    found.sort(key=lambda d: (-abs(d.effect), d.component))
    return tuple(found)


def daily_peaks(forecast: Forecast, tz: ZoneInfo, *, limit: int = 3) -> tuple[Peak, ...]:
    """The highest point forecast of each local day in the horizon (first ``limit`` days)."""
    frame = forecast.frame
    if frame.empty:
        return ()
    local_day = frame["ds"].dt.tz_convert(tz).dt.date
    peaks = []
    for _, group in frame.groupby(local_day, sort=True):
        index = int(group["yhat"].to_numpy().argmax())
        position = frame.index.get_loc(group.index[index])
        assert isinstance(position, int)
        row = frame.iloc[position]
        peaks.append(
            Peak(
                at=pd.Timestamp(row["ds"]).to_pydatetime(),
                yhat=float(row["yhat"]),
                yhat_upper=float(row["yhat_upper"]),
                drivers=drivers_at(forecast, position, tz),
            )
        )
    return tuple(peaks[:limit])


def effects_in_horizon(forecast: Forecast) -> tuple[EventEffect, ...]:
    """Calendar effects (events and holidays) whose window meets the forecast horizon."""
    if forecast.frame.empty:
        return ()
    first = pd.Timestamp(forecast.frame["ds"].iloc[0]).to_pydatetime()
    last = pd.Timestamp(forecast.frame["ds"].iloc[-1]).to_pydatetime()
    return tuple(e for e in forecast.event_effects if e.end > first and e.start <= last)
