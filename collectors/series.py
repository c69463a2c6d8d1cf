"""Pure helpers that turn raw samples into a regular UTC demand series.

A demand series is a DataFrame with columns ``ds`` (tz-aware UTC, regular step, sorted)
and ``y`` (float). Missing samples are NaN rows: gaps stay gaps, never zeros.

A source that reads rows (a CSV file) also says what became of every row it read
(:class:`RowAccount`): a sample of its own, a gap, averaged into the slot of another row,
or outside the requested range. Nothing a user wrote disappears without being counted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from forescale.config.durations import format_duration
from forescale.errors import DataError, InsufficientHistory

DEFAULT_MIN_HISTORY = dt.timedelta(hours=24)
# The most grid slots one series may span: 5 million is ~9.5 years at 1 minute, 47 years
# at 5 minutes. Beyond it a wrong timestamp (a year 2199 among 2024 rows) would make the
# grid, and the memory and time to build it, explode instead of being an error.
MAX_SLOTS = 5_000_000
LISTED_ROWS = 5  # row numbers named per reason in a warning; the rest are counted

NotStoredReason = Literal["empty value", "duplicate timestamp", "same slot"]


@dataclass(frozen=True, kw_only=True, slots=True)
class RowGroup:
    """Data rows that are not a sample of their own, for one reason.

    ``reason``: ``empty value`` (a gap), ``duplicate timestamp`` (the same instant as an
    earlier row: averaged with it) or ``same slot`` (another instant in the grid slot of an
    earlier row: averaged with it). ``rows``: the first :data:`LISTED_ROWS` data-row numbers
    (1-based, header excluded); ``count``: all of them.
    """

    reason: NotStoredReason
    count: int
    rows: tuple[int, ...]

    def describe(self, step: dt.timedelta) -> str:
        """``2 empty values (gaps; rows 2, 7)``."""
        many = self.count != 1
        listed = ", ".join(map(str, self.rows))
        if self.count > len(self.rows):
            listed += f" and {self.count - len(self.rows)} more"
        where = f"{'rows' if many else 'row'} {listed}"
        if self.reason == "empty value":
            gaps = "gaps" if many else "a gap"
            return f"{self.count} empty value{'s' if many else ''} ({gaps}; {where})"
        if self.reason == "duplicate timestamp":
            return (
                f"{self.count} duplicate timestamp{'s' if many else ''} "
                f"(averaged with an earlier row; {where})"
            )
        return (
            f"{self.count} in the {format_duration(step)} slot of another row (averaged; {where})"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class RowAccount:
    """What became of every data row a source read.

    ``rows == samples + outside + sum(g.count for g in not_stored)``. ``samples``: rows
    that are a sample of their own (the observed slots of the series handed out, one stored
    sample each); ``outside``: rows before ``start`` or after ``end`` of the fetch (not part
    of it: an incremental collect has stored them before); ``not_stored``: rows in range
    that are no sample of their own, by reason. ``step`` is the series' grid step.
    """

    source: str  # the file name, for messages
    rows: int
    samples: int
    outside: int
    not_stored: tuple[RowGroup, ...]
    step: dt.timedelta

    @property
    def not_stored_count(self) -> int:
        return sum(group.count for group in self.not_stored)

    def summary(self) -> str | None:
        """One line for a warning, or None when every row in range is a sample."""
        if not self.not_stored:
            return None
        parts = ", ".join(group.describe(self.step) for group in self.not_stored)
        return (
            f"{self.not_stored_count} of {self.rows} rows of {self.source} not stored as "
            f"samples of their own: {parts}"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Fetched:
    """A fetch's regular series and, from sources that read rows, the account of them."""

    series: pd.DataFrame
    account: RowAccount | None = None


@runtime_checkable
class AccountedSource(Protocol):
    """A source that says what became of each row it read (see :class:`RowAccount`)."""

    def fetch_accounted(self, start: dt.datetime | None, end: dt.datetime | None) -> Fetched: ...


def fetch_accounted(source: Any, start: dt.datetime | None, end: dt.datetime | None) -> Fetched:
    """``source.fetch(start, end)`` with its row account when the source keeps one."""
    if isinstance(source, AccountedSource):
        return source.fetch_accounted(start, end)
    return Fetched(series=source.fetch(start, end))


def infer_step(ds: pd.Series) -> dt.timedelta:
    """The sampling step: the most common difference between consecutive timestamps, in
    whole seconds (millisecond jitter does not change it; a step under a second is an
    error: the store keeps whole seconds)."""
    ordered = pd.Series(pd.to_datetime(ds)).sort_values()
    diffs = ordered.diff().dropna().dt.round("1s")
    diffs = diffs[diffs > pd.Timedelta(0)]
    if diffs.empty:
        if ordered.nunique() >= 2:
            raise DataError(
                "timestamps are less than a second apart: forescale needs a sampling step "
                "of a second or more (aggregate the data)"
            )
        raise DataError("cannot infer the sampling step from fewer than two distinct timestamps")
    step = pd.Timedelta(diffs.mode().iloc[0])
    return _round_step(ordered, diffs, step).to_pytimedelta()


# Steps a sampler is set to; a spacing within a few per cent of one is that one, jittered.
_ROUND_STEPS = tuple(
    pd.Timedelta(seconds=s)
    for s in (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1200, 1800)
) + tuple(pd.Timedelta(hours=h) for h in (1, 2, 3, 4, 6, 12, 24, 168))
ROUND_STEP_TOLERANCE = 0.05


def _round_step(ordered: pd.Series, diffs: pd.Series, step: pd.Timedelta) -> pd.Timedelta:
    """The round step ``step`` is a jittered reading of, if any: the median spacing is
    within :data:`ROUND_STEP_TOLERANCE` of it and the timestamps stay near its grid (a
    sampler at exactly 299 s drifts across a 300 s grid; one jittered around 300 s does
    not)."""
    median = pd.Timedelta(diffs.median())
    ns = _nanos(ordered)
    for nice in _ROUND_STEPS:
        if nice == step or abs(median - nice) > nice * ROUND_STEP_TOLERANCE:
            continue
        width = nice.value
        offsets = (ns - ns[0] + width // 2) % width - width // 2
        if np.quantile(np.abs(offsets), 0.95) < width / 4:
            return nice
    return step


def _nanos(ordered: pd.Series) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Nanoseconds since the epoch (UTC for aware timestamps)."""
    index = pd.DatetimeIndex(ordered)
    if index.tz is not None:
        index = index.tz_convert(None)
    return index.to_numpy(dtype="datetime64[ns]").astype(np.int64)


EARLY_SHARE = 0.1
"""A sample at most this share of a step before a slot's start is that slot's: a sampler's
12:04:58 is 12:05's sample, jittered. Anything later in a slot is that slot's (a source
that stamps its buckets a few minutes in, as CloudWatch's 00:04, 00:09 ..., keeps them)."""


def slot_of(
    ns: np.ndarray[Any, np.dtype[np.int64]], step: dt.timedelta
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The grid slot (epoch-anchored, nanoseconds) each instant belongs to: the slot it
    falls in, or the next when it is at most :data:`EARLY_SHARE` of a step before it."""
    width = int(pd.Timedelta(step).value)
    return (ns + int(width * EARLY_SHARE)) // width * width


def grid_slots(first: pd.Timestamp, last: pd.Timestamp, step: dt.timedelta) -> int:
    """How many slots of ``step`` a regular grid from ``first`` to ``last`` holds."""
    return int((last - first) // pd.Timedelta(step)) + 1


def regularize(frame: pd.DataFrame, step: dt.timedelta | None = None) -> pd.DataFrame:
    """Put samples on a regular grid of ``step`` (inferred when None).

    Timestamps go to their slot of the grid (anchored at the Unix epoch, so two runs
    over overlapping ranges agree), or the next one when they are a little early
    (:func:`slot_of`: a jittered sampler's 12:04:58 is 12:05's sample); several
    samples in one slot are averaged; slots with no sample become NaN. Input ``ds``
    must be tz-aware. A grid of more than :data:`MAX_SLOTS` slots is a DataError (a
    wrong timestamp, or a step too fine).
    """
    if frame.empty:
        return pd.DataFrame({"ds": pd.Series([], dtype="datetime64[ns, UTC]"), "y": []})
    ds = pd.to_datetime(frame["ds"])
    if ds.dt.tz is None:
        raise DataError("timestamps must be timezone-aware")
    ds = ds.dt.tz_convert("UTC")
    step = step or infer_step(ds)
    freq = pd.Timedelta(step)
    slots = grid_slots(ds.min(), ds.max(), step)
    if slots > MAX_SLOTS:
        raise DataError(
            f"samples from {ds.min():%Y-%m-%d %H:%M}Z to {ds.max():%Y-%m-%d %H:%M}Z at a "
            f"{format_duration(step)} step make {slots:,} slots, more than {MAX_SLOTS:,}: "
            "check for a wrong timestamp, or aggregate to a coarser step"
        )
    slot = pd.to_datetime(slot_of(_nanos(ds), step), utc=True)
    values = pd.Series(frame["y"].to_numpy(dtype=float), index=pd.DatetimeIndex(slot))
    grouped = values.groupby(level=0).mean()
    full = pd.date_range(grouped.index.min(), grouped.index.max(), freq=freq)
    regular = grouped.reindex(full)
    return pd.DataFrame({"ds": full, "y": regular.to_numpy(dtype=float)})


def check_history(
    series: pd.DataFrame, *, min_history: dt.timedelta = DEFAULT_MIN_HISTORY, what: str = "history"
) -> None:
    """Raise :class:`InsufficientHistory` when observed samples span less than ``min_history``."""
    observed = series.loc[series["y"].notna(), "ds"]
    have = (
        dt.timedelta(0)
        if len(observed) < 2
        else (observed.iloc[-1] - observed.iloc[0]).to_pytimedelta()
    )
    if have < min_history:
        raise InsufficientHistory(
            f"{what}: {_hours(have)} of data, at least {_hours(min_history)} needed "
            "before forescale will forecast (collect more history or lower min_history)",
            have_seconds=have.total_seconds(),
            need_seconds=min_history.total_seconds(),
        )


def coverage(series: pd.DataFrame) -> float:
    """Share of grid slots that hold a sample (1.0 = no gaps)."""
    if series.empty:
        return 0.0
    return float(np.isfinite(series["y"].to_numpy(dtype=float)).mean())


def _hours(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h"
