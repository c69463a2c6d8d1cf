"""Human durations: ``90s``, ``15m``, ``2h``, ``1d``, ``1w``, ``1h30m`` or plain seconds."""

from __future__ import annotations

import datetime as dt
import math
import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(value: str | int | float | dt.timedelta) -> dt.timedelta:
    """Parse a duration: ``90s``, ``15m``, ``2h``, ``1d``, ``1w``, ``1h30m``, ``1.5h``.

    Units: s, m, h, d (24 h), w. Case and surrounding whitespace are ignored. A number
    (int/float, not a string) is seconds. Negative or unit-less text raises ``ValueError``
    naming the text.
    """
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"not a duration: {value!r}")
        return dt.timedelta(seconds=value)
    cleaned = value.strip().lower()
    if not _DURATION.fullmatch(cleaned):
        raise ValueError(
            f"not a duration: {value!r} (use a number and a unit: 90s, 15m, 2h, 1d, 1w, 1h30m)"
        )
    return dt.timedelta(seconds=sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(cleaned)))


def format_duration(delta: dt.timedelta) -> str:
    """Format a duration compactly: ``1h30m``, ``15m``, ``2d``; ``0s`` for zero."""
    seconds = int(round(delta.total_seconds()))
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
