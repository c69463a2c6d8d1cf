"""Number and time wording shared by every report view and renderer.

People read times in the display timezone (``Wed 2014-11-26 18:00 EST``) and numbers with
three significant digits at most above 10 (``1,051``, ``17.3``, ``7.13``); tools read UTC
ISO 8601 with a ``Z`` and JSON numbers that are never NaN or infinite (``None`` instead).
A value that cannot be shown (NaN, infinity) reads as an em dash.
"""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from forescale.numbers import finite

__all__ = ["DASH", "factor", "finite", "iso_utc", "local_time", "number", "share"]

DASH = "\u2014"


def iso_utc(when: dt.datetime) -> str:
    """``when`` (aware) as UTC ISO 8601 with a ``Z``: ``2014-11-26T23:00:00Z``."""
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def local_time(when: dt.datetime, tz: ZoneInfo, *, with_date: bool = True) -> str:
    """``when`` on the display clock: ``Wed 2014-11-26 18:00 EST`` (``18:00 EST`` without
    the date)."""
    local = when.astimezone(tz)
    return local.strftime("%a %Y-%m-%d %H:%M %Z" if with_date else "%H:%M %Z")


def number(value: float) -> str:
    """A demand or unit count for people: ``1,051`` from 100, ``17.3`` from 10, else
    ``7.13``; NaN and infinity as an em dash."""
    if not math.isfinite(value):
        return DASH
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def share(value: float) -> str:
    """A fraction as a percentage with one decimal (``0.123`` -> ``12.3%``)."""
    return f"{value:.1%}" if math.isfinite(value) else DASH


def factor(value: float) -> str:
    """A ratio as a multiplier (``0.87`` -> ``×0.87``)."""
    return f"\u00d7{value:.2f}" if math.isfinite(value) else DASH
