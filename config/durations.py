"""Human durations: ``90s``, ``15m``, ``2h``, ``1d``, ``1w``, ``1h30m`` or plain seconds."""

from __future__ import annotations

import datetime as dt
import math
import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_duration(value: str | int | float | dt.timedelta) -> dt.timedelta:
    """Parse a duration; numbers are seconds. Raises ``ValueError`` with the bad text."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"not a duration: {value!r}")
        return dt.timedelta(seconds=value)
    text = value.strip().lower()
    if not text:
        raise ValueError("empty duration")
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos or text[pos : match.start()].strip():
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    if pos != len(text) or pos == 0:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 2h, 1d, 1w or seconds)")
    return dt.timedelta(seconds=total)


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
