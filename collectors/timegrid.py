"""Pure time helpers shared by the HTTP collectors: UTC checks and an epoch-anchored grid.

Sources align request ranges to multiples of their step counted from the Unix epoch, so
two fetches over overlapping ranges ask for (and store) the same timestamps.
"""

from __future__ import annotations

import datetime as dt
import math

UTC = dt.UTC


def utcnow() -> dt.datetime:
    """The default clock of the collectors (tz-aware UTC)."""
    return dt.datetime.now(UTC)


def require_utc(when: dt.datetime, name: str) -> dt.datetime:
    """``when`` converted to UTC; naive datetimes are a programming error."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {when.isoformat()})")
    return when.astimezone(UTC)


def seconds_of(step: dt.timedelta) -> int:
    """A step in whole seconds (steps are validated as whole seconds >= 1)."""
    seconds = step.total_seconds()
    if seconds < 1 or not seconds.is_integer():
        raise ValueError(f"step must be a whole number of seconds >= 1, got {seconds}")
    return int(seconds)


def floor_to(when: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """The last grid point at or before ``when`` (grid: multiples of ``step`` since epoch)."""
    size = seconds_of(step)
    return dt.datetime.fromtimestamp(math.floor(when.timestamp() / size) * size, UTC)


def ceil_to(when: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """The first grid point at or after ``when``."""
    size = seconds_of(step)
    return dt.datetime.fromtimestamp(math.ceil(when.timestamp() / size) * size, UTC)


def split_range(
    start: dt.datetime, end: dt.datetime, span: dt.timedelta
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Cut ``[start, end)`` into consecutive half-open windows of at most ``span``."""
    if span <= dt.timedelta(0):
        raise ValueError("span must be positive")
    windows = []
    cursor = start
    while cursor < end:
        stop = min(cursor + span, end)
        windows.append((cursor, stop))
        cursor = stop
    return windows


def fmt(when: dt.datetime) -> str:
    """A compact UTC timestamp for messages, e.g. ``2024-03-01 12:00Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")
