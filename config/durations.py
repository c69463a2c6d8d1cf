"""Human durations: ``90s``, ``15m``, ``2h``, ``1d``, ``1w``, ``1h30m`` or plain seconds.

Every parsed duration is at most :data:`MAX_DURATION` (10 years) unless the caller asks
for less: longer spans are never meant, and "now" minus or plus one stays far inside the
range Python's datetimes represent (years 1-9999), so no caller has to fear an
``OverflowError``.
"""

from __future__ import annotations

import datetime as dt
import math
import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")

MAX_DURATION = dt.timedelta(days=3650)  # 10 years: the longest duration any input may give


def parse_duration(
    value: str | int | float | dt.timedelta, *, maximum: dt.timedelta = MAX_DURATION
) -> dt.timedelta:
    """Parse a duration: ``90s``, ``15m``, ``2h``, ``1d``, ``1w``, ``1h30m``, ``1.5h``.

    Units: s, m, h, d (24 h), w. Case and surrounding whitespace are ignored. A number
    (int/float, not a string) is seconds. Negative or unit-less text, and anything longer
    than ``maximum`` (default :data:`MAX_DURATION`, 10 years), raise ``ValueError``
    naming the text.
    """
    if isinstance(value, dt.timedelta):
        seconds: float = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    elif isinstance(value, int | float):
        # a huge int cannot become a float: compare it as it is
        if (isinstance(value, float) and not math.isfinite(value)) or value < 0:
            raise ValueError(f"not a duration: {value!r}")
        seconds = value if value <= maximum.total_seconds() else math.inf
    else:
        cleaned = value.strip().lower()
        if not _DURATION.fullmatch(cleaned):
            raise ValueError(
                f"not a duration: {_short(value)!r} (use a number and a unit: 90s, 15m, 2h, "
                "1d, 1w, 1h30m)"
            )
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(cleaned))
    if seconds > maximum.total_seconds():
        raise ValueError(
            f"{_short(value)} is too long: at most {format_duration(maximum)} is accepted"
        )
    if isinstance(value, dt.timedelta):
        return value
    return dt.timedelta(seconds=seconds)


def _short(value: object, limit: int = 40) -> str:
    """Long input is cut in messages (a 5,000-digit number is not worth echoing; Python
    refuses to print an int of more than 4,300 digits at all)."""
    if isinstance(value, int) and abs(value) >= 10**limit:
        return f"a number of more than {limit} digits"
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
