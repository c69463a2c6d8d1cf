"""Demand history from a CSV file (``timestamp,value`` by default).

The contract, in the order it is checked (row N is the N-th data row, 1-based, after the
header; messages add the line when it differs from N + 1):

1. **The file** is a regular file (a FIFO, device or directory is refused without being
   opened for reading, so nothing blocks) of at most :data:`MAX_BYTES`, in UTF-8 (a BOM is
   allowed; UTF-16 and invalid bytes are errors naming the line). A file without a
   non-blank line is empty: an error.
2. **The header** is the first non-blank line; names are compared after trimming spaces;
   the timestamp and value columns must each appear exactly once. Blank lines are not rows.
3. **A row** holds no NUL byte and no more fields than the header (an unquoted comma in a
   value, e.g. a thousands separator, would shift the columns), and reaches both columns.
4. **Timestamps** are ISO 8601 (``2024-03-01T12:00:00Z``, ``2024-03-01 12:00``,
   ``20240301T120000+0100``, ...) or another common format with a full date and a
   four-digit year (``03/01/2024 12:00``), or Unix time: seconds since 1970-01-01 UTC
   written with 9 or 10 digits (``1709294400``, a fraction allowed) or milliseconds with
   12 or 13 (``1709294400000``), read as UTC; relative words (``now``), partial dates and
   unknown zone names are refused; years 1970-2199, and no later than now + one day
   (:data:`FUTURE_SKEW`: a later one is a mistyped year, which would otherwise become
   the newest sample and hide every row appended after it). Numeric dates
   (``11/07/2024``, ``11.07.2024``) are read in one order for the whole file: day first
   if a date has a first number above 12, month first if one has a second; both, or a
   file whose dates all read either way, is an error. ``GMT+2`` / ``UTC+02:00`` is an
   offset east of Greenwich. A timestamp with a UTC offset is
   converted to UTC (offsets may differ from row to row); one without is wall-clock time
   in ``timezone`` (a repeated fall-back hour takes the first, DST, reading; a skipped
   spring-forward time moves forward). Offsets and naive times in one file are an error.
5. **Values** are decimal numbers >= 0, multiplied by ``scale``; an empty cell is a gap.
   NaN/inf, a number too large to represent, one that overflows once scaled, and text
   are errors.
6. **Errors** name the first bad row and count the others; nothing of a file with a bad
   row is used.
7. **Every row is accounted for** (:class:`forescale.collectors.series.RowAccount`): a sample of its
   own, a gap, averaged into the grid slot of an earlier row (same instant or same slot),
   or outside the requested ``[start, end]``. The step is told from the whole file.
8. A file whose rows in range are all gaps is an error: nothing could be stored.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import math
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forescale.collectors.series import (
    LISTED_ROWS,
    MAX_SLOTS,
    Fetched,
    NotStoredReason,
    RowAccount,
    RowGroup,
    grid_slots,
    infer_step,
    regularize,
    slot_of,
)
from forescale.collectors.timegrid import require_utc, utcnow
from forescale.config.durations import format_duration
from forescale.errors import CollectorError, ConfigError, DataError, NonFiniteValue
from forescale.regular_files import Refusal, read_regular

FUTURE_SKEW = dt.timedelta(days=1)  # a row later than now + this is a mistyped date
MAX_BYTES = 64 * 1024 * 1024  # ~2 million rows; beyond, aggregate or keep less history
MIN_YEAR, MAX_YEAR = 1970, 2199  # spans under 292 years: a nanosecond timedelta holds them
MAX_STAMP_CHARS = 64  # longer timestamp text is not tried: no format is that long
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_NON_FINITE = frozenset(
    {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
)
_FOUR_DIGIT_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")
# Two different defaults: a format that leaves out part of the date takes it from the
# default, so the two readings differ and the timestamp is refused as incomplete.
_DEFAULTS = (dt.datetime(2001, 1, 1), dt.datetime(2002, 2, 2))  # noqa: DTZ001 - naive on purpose


@dataclass(frozen=True, kw_only=True, slots=True)
class CsvFileSource:
    """Reads a CSV of samples (the contract is in the module docstring).

    Naive timestamps are wall-clock time in ``timezone``; values are multiplied by
    ``scale`` (e.g. to turn passengers per 30 min into requests/s for a demo).
    """

    path: Path
    timestamp_column: str = "timestamp"
    value_column: str = "value"
    timezone: str = "UTC"
    scale: float = 1.0
    kind: str = "csv"
    clock: Callable[[], dt.datetime] = utcnow  # "now", for a row stamped in the future

    @classmethod
    def from_settings(cls, settings: Any) -> CsvFileSource:
        return cls(
            path=Path(settings.path),
            timestamp_column=settings.timestamp_column,
            value_column=settings.value_column,
            timezone=settings.timezone,
            scale=float(settings.scale),
        )

    def describe(self) -> str:
        return describe(self)

    def fetch(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> pd.DataFrame:
        return self.fetch_accounted(start, end).series

    def fetch_accounted(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> Fetched:
        """The samples in ``[start, end]`` as a regular UTC series, and what became of
        every data row of the file."""
        source = str(self.path)
        zone = _zone(self.timezone, source)
        text = _decode(read_bytes(self.path), source)
        rows = _split_rows(
            text,
            timestamp_column=self.timestamp_column,
            value_column=self.value_column,
            source=source,
        )
        latest = require_utc(self.clock(), "clock()") + FUTURE_SKEW
        parsed = _parse_rows(rows, scale=self.scale, zone=zone, source=source, latest=latest)
        return _account(
            parsed,
            start=start,
            end=end,
            source=source,
            name=self.path.name,
            column=self.value_column,
        )


def describe(source: Any) -> str:
    """``csv demand.csv (value)`` from a source or its settings (same field names)."""
    return f"csv {Path(source.path).name} ({source.value_column})"


# -- 1. the file ------------------------------------------------------------------------------
def read_bytes(path: Path) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_BYTES` (CollectorError otherwise):
    a FIFO or a device is refused, never waited on or read without end."""
    got = read_regular(path, limit=MAX_BYTES)
    if not isinstance(got, Refusal):
        return got
    if got.reason == "missing":
        raise CollectorError(f"{path}: CSV file not found")
    if got.reason == "not-regular":
        raise CollectorError(
            f"{path}: not a regular file ({got.detail}); point the source at a CSV file"
        )
    if got.reason == "too-large":
        raise CollectorError(_too_large(path, got.size))
    raise CollectorError(f"{path}: cannot read CSV: {got.detail}")


def _too_large(path: Path, size: int) -> str:
    return (
        f"{path}: {size:,} bytes is larger than the {MAX_BYTES:,} bytes forescale reads from "
        "a CSV source; aggregate the data to a coarser step or keep less history in the file"
    )


def _decode(data: bytes, source: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(
            f"{source}: the file is UTF-16 or UTF-32 (it starts with a byte order mark for "
            "it); save it as UTF-8"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{source}: line {line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save the file "
            "as UTF-8"
        ) from None
    if text.strip() == "":
        what = "0 bytes" if not data else "only blank lines"
        raise DataError(
            f"{source}: the file is empty ({what}); add a header line (timestamp,value) and "
            "one row per sample"
        )
    return text


# -- 2, 3. header and rows --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Row:
    number: int  # data row, 1-based
    line: int  # first line of the row in the file, 1-based
    stamp: str  # stripped
    value: str  # stripped
    problem: str | None  # NUL byte, field count: the row is bad whatever it holds


def _split_rows(text: str, *, timestamp_column: str, value_column: str, source: str) -> list[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    nul = "\x00" in text  # checked once: rows are looked at one by one only if it is
    rows: list[_Row] = []
    header: list[str] | None = None
    ts_at = value_at = 0
    previous_line = 0
    try:
        for record in reader:
            line, previous_line = previous_line + 1, reader.line_num
            if not record or (len(record) == 1 and record[0].strip() == ""):
                continue  # a blank line is not a row
            if header is None:
                header = [name.strip() for name in record]
                ts_at, value_at = (
                    _column(header, name, line, source) for name in (timestamp_column, value_column)
                )
                continue
            rows.append(
                _Row(
                    number=len(rows) + 1,
                    line=line,
                    stamp=record[ts_at].strip() if ts_at < len(record) else "",
                    value=record[value_at].strip() if value_at < len(record) else "",
                    problem=None
                    if not nul and len(record) == len(header)
                    else _shape_problem(record, len(header), ts_at, value_at, header),
                )
            )
    except csv.Error as exc:
        raise DataError(f"{source}: line {reader.line_num}: {exc}; fix the quoting") from None
    if not rows:
        raise DataError(
            f"{source}: no data rows after the header; add rows of "
            f"{timestamp_column},{value_column}"
        )
    return rows


def _column(header: list[str], name: str, line: int, source: str) -> int:
    if any("\x00" in field for field in header):
        raise DataError(
            f"{source}: line {line} (the header): NUL byte; this does not look like a text CSV file"
        )
    found = [i for i, field in enumerate(header) if field == name]
    if not found:
        shown = ", ".join(_show(field, 30) for field in header[:10])
        more = f" and {len(header) - 10} more" if len(header) > 10 else ""
        other = next((d for d in (";", "\t", "|") if len(header) == 1 and d in header[0]), None)
        if other is not None:
            named = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}[other]
            raise DataError(
                f"{source}: the header {_show(header[0], 40)!r} is one column: the file "
                f"separates fields with {named}; save it comma-separated (decimal points, "
                "not commas)"
            )
        raise DataError(
            f"{source}: no column {name!r} (columns: {shown}{more}); name the column in the "
            "header or set timestamp_column/value_column"
        )
    if len(found) > 1:
        raise DataError(f"{source}: column {name!r} appears twice in the header; rename one")
    return found[0]


def _shape_problem(
    record: list[str], width: int, ts_at: int, value_at: int, header: list[str]
) -> str | None:
    if any("\x00" in field for field in record):
        return "NUL byte in the row; remove it (is this a text file?)"
    if len(record) > width:
        return (
            f"{len(record)} fields but the header has {width}; quote a value that holds a "
            "comma, or remove the comma (a thousands separator?)"
        )
    for at in (ts_at, value_at):
        if at >= len(record):
            many = "s" if len(record) != 1 else ""
            return (
                f"{len(record)} field{many}, so no {header[at]!r} field (column {at + 1} of "
                "the header); complete the row or delete it"
            )
    return None


# -- 4, 5, 6. timestamps and values --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Parsed:
    rows: list[_Row]
    ns: np.ndarray[Any, np.dtype[np.int64]]  # UTC instants, ns since the epoch
    values: np.ndarray[Any, np.dtype[np.float64]]  # scaled; NaN for an empty cell


@dataclass(frozen=True, slots=True)
class _Issue:
    row: _Row
    text: str
    non_finite: bool = False


def _parse_rows(
    rows: list[_Row],
    *,
    scale: float,
    zone: zoneinfo.ZoneInfo,
    source: str,
    latest: dt.datetime | None = None,
) -> _Parsed:
    issues: list[_Issue] = []
    stamps: list[dt.datetime] = []
    values = np.full(len(rows), np.nan)
    first_kind: tuple[_Row, bool] | None = None  # the first parsed row: has an offset?
    dayfirst = _date_order(rows, source)
    for i, row in enumerate(rows):
        if row.problem is not None:
            issues.append(_Issue(row, row.problem))
            continue
        when = parse_timestamp(row.stamp, dayfirst=dayfirst)
        if when is None:
            issues.append(_Issue(row, _stamp_problem(row.stamp)))
            continue
        if not MIN_YEAR <= when.year <= MAX_YEAR:
            issues.append(
                _Issue(
                    row,
                    f"timestamp {_show(row.stamp)} is out of range (years {MIN_YEAR}-{MAX_YEAR})",
                )
            )
            continue
        if latest is not None and _as_utc(when, zone) > latest:
            issues.append(
                _Issue(
                    row,
                    f"timestamp {_show(row.stamp)} is in the future (after "
                    f"{latest:%Y-%m-%d %H:%M}Z): a mistyped year? History cannot be later "
                    "than now",
                )
            )
            continue
        aware = when.utcoffset() is not None
        if first_kind is None:
            first_kind = (row, aware)
        elif aware != first_kind[1]:
            issues.append(_Issue(row, _mix_problem(row, aware, first_kind[0], zone)))
            continue
        stamps.append(when)
        if row.value == "":
            continue
        number, problem, non_finite = _number(row.value, scale)
        if problem is not None:
            issues.append(_Issue(row, problem, non_finite))
            continue
        values[i] = number
    if issues:
        raise _error(issues, source)
    return _Parsed(rows=rows, ns=_instants(stamps, zone), values=values)


def parse_timestamp(text: str, *, dayfirst: bool = False) -> dt.datetime | None:
    """A timestamp as written (naive, or aware with its offset), or None if it is not one.

    ISO 8601 first; then Unix time (:func:`unix_time`); then other formats with a full
    date and a four-digit year (dateutil), refusing what would be read from a default (a
    missing day or year) and zone names it does not know (those would be read as naive or
    as the machine's own zone). A numeric date (``11/07/2024``) is read day first when
    ``dayfirst`` (the file's order, :func:`_date_order`), else month first; a date the
    order cannot read (``13/07/2024`` month first) is None, never read the other way.
    ``GMT+2`` / ``UTC+02:00`` is two hours east of Greenwich, as people and exports mean
    it (dateutil alone follows POSIX, which has the sign the other way)."""
    if not text or len(text) > MAX_STAMP_CHARS:
        return None
    if _UNIX.fullmatch(text):
        return unix_time(text)
    try:
        return dt.datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        pass
    if not _FOUR_DIGIT_YEAR.search(text):
        return None
    from dateutil import parser  # type: ignore[import-untyped]

    text = _GMT_OFFSET.sub(_iso_offset, text)
    numeric = _NUMERIC_DATE.match(text)
    if numeric is not None:
        day, month = (numeric[1], numeric[3]) if dayfirst else (numeric[3], numeric[1])
        if not (1 <= int(day) <= 31 and 1 <= int(month) <= 12):
            return None
    readings = []
    for default in _DEFAULTS:
        try:
            readings.append(
                parser.parse(text, default=default, tzinfos=_known_offset, dayfirst=dayfirst)
            )
        except (ValueError, OverflowError, TypeError, IndexError):  # dateutil's many ways to say no
            return None
    first, second = readings
    return first if isinstance(first, dt.datetime) and first == second else None


_UNIX = re.compile(r"(\d{9,10})(?:\.(\d{1,9}))?|(\d{12,13})")
# A date of two numbers and a four-digit year: 11/07/2024, 11.07.2024, 11-07-2024.
_NUMERIC_DATE = re.compile(r"\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?!\d)")
# "GMT+2", "UTC+02:00", "GMT+0200": an offset east of Greenwich, written after a zone word.
_GMT_OFFSET = re.compile(r"\b(?:GMT|UTC)\s*([+-])(\d{1,2})(?::?(\d{2}))?(?![\d:])")


def _iso_offset(match: re.Match[str]) -> str:
    sign, hours, minutes = match[1], int(match[2]), match[3] or "00"
    return f"{sign}{hours:02d}:{minutes}"


def _date_order(rows: list[_Row], source: str) -> bool:
    """Whether the file's numeric dates are day first. A number above 12 in the first
    place says day first, in the second month first; both in one file, or neither (every
    date reads either way), is a :class:`DataError` rather than a guess. Files without
    such dates are month first (dateutil's default), which they never use."""
    day_first: _Row | None = None
    month_first: _Row | None = None
    ambiguous: tuple[_Row, re.Match[str]] | None = None
    for row in rows:
        match = _NUMERIC_DATE.match(row.stamp)
        if match is None:
            continue
        first, second = int(match[1]), int(match[3])
        if first > 12 and day_first is None:
            day_first = row
        elif second > 12 and month_first is None:
            month_first = row
        elif first <= 12 and second <= 12 and first != second and ambiguous is None:
            ambiguous = (row, match)
    if day_first is not None and month_first is not None:
        late, early = sorted((day_first, month_first), key=lambda r: r.number, reverse=True)
        raise DataError(
            f"{source}: {_at(late)}: {_show(late.stamp)} cannot be read in the order of "
            f"{_at(early)}'s {_show(early.stamp)} (day first in one, month first in the "
            "other); write every date the same way, best ISO 8601 (2024-07-13)"
        )
    if day_first is None and month_first is None and ambiguous is not None:
        row, match = ambiguous
        a, b, year = int(match[1]), int(match[3]), int(match[4])
        raise DataError(
            f"{source}: {_at(row)}: {_show(row.stamp)} reads day or month first "
            f"({year}-{b:02d}-{a:02d} or {year}-{a:02d}-{b:02d}) and no date in the file has "
            "a day above 12 to tell; write the dates as ISO 8601 (2024-07-01)"
        )
    return day_first is not None


def unix_time(text: str) -> dt.datetime | None:
    """``text`` as Unix time, UTC: 9-10 digits are seconds (a fraction allowed), 12-13
    digits milliseconds; None for anything else. Every instant from 1973 on has 9 or more
    digits in seconds and 12 or more in milliseconds. Digits only, and never what also
    reads as a compact date: ``20240301`` (8 digits), ``2024030112`` (hour) and
    ``202403011200`` (minute) are refused, not read as 2034 or 1976."""
    match = _UNIX.fullmatch(text)
    if match is None or _compact_date(match.group(1) or match.group(3)):
        return None
    seconds, fraction, millis = match.groups()
    if millis is not None:
        whole, ms = divmod(int(millis), 1000)
        micros = ms * 1000
    else:
        whole = int(seconds)
        micros = int((fraction or "0").ljust(6, "0")[:6])
    try:
        epoch = dt.datetime.fromtimestamp(whole, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return epoch + dt.timedelta(microseconds=micros)


def _compact_date(digits: str) -> bool:
    """``digits`` (10 or 12) also read as ``YYYYMMDDHH`` / ``YYYYMMDDHHMM`` in the years
    forescale accepts."""
    if len(digits) not in (10, 12) or not MIN_YEAR <= int(digits[:4]) <= MAX_YEAR:
        return False
    try:
        if len(digits) == 10:
            dt.datetime.strptime(digits + "Z", "%Y%m%d%H%z")
        else:
            dt.datetime.strptime(digits + "Z", "%Y%m%d%H%M%z")
    except ValueError:
        return False
    return True


def _known_offset(name: str | None, offset: int | None) -> dt.tzinfo | None:
    """dateutil's ``tzinfos``: a numeric offset (or UTC/GMT/Z) is kept, a zone name without
    one is refused (raising makes the parse fail), no zone is naive."""
    if offset is not None:
        return dt.timezone(dt.timedelta(seconds=offset))
    if name:
        raise ValueError(f"unknown time zone name {name!r}")
    return None


def _stamp_problem(text: str) -> str:
    if text == "":
        return "empty timestamp; every row needs one"
    return (
        f"cannot parse timestamp {_show(text)}; write ISO 8601, e.g. 2024-03-01T12:00:00Z, "
        "or Unix seconds (10 digits) or milliseconds (13)"
    )


def _mix_problem(row: _Row, aware: bool, first: _Row, zone: zoneinfo.ZoneInfo) -> str:
    has, other = ("has a", "none") if aware else ("has no", "one")
    return (
        f"timestamp {_show(row.stamp)} {has} UTC offset but row {first.number} has {other}; "
        f"give every timestamp an offset, or none (naive times are read in {zone.key})"
    )


def _number(text: str, scale: float) -> tuple[float, str | None, bool]:
    """(value x scale, problem, the problem is a non-finite value)."""
    if text.lower() in _NON_FINITE:
        return math.nan, f"value {_show(text)} is not finite; leave the cell empty for a gap", True
    if not set(text) <= _NUMBER_CHARS:
        return math.nan, f"value {_show(text)} is not a number", False
    try:
        number = float(text)
    except ValueError:
        return math.nan, f"value {_show(text)} is not a number", False
    if math.isinf(number):
        return math.nan, f"value {_show(text)} is too large (it overflows to infinity)", True
    if number < 0:
        return (
            math.nan,
            f"demand {number} is negative; demand is a count or rate, never below 0",
            False,
        )
    scaled = number * scale + 0.0  # + 0.0: -0 is stored as 0
    if math.isinf(scaled):
        return (
            math.nan,
            f"value {_show(text)} x scale {scale:g} overflows to infinity; lower the source's "
            "scale or fix the value",
            True,
        )
    return scaled, None, False


def _as_utc(when: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """``when`` in UTC (a naive one is wall-clock time in ``zone``)."""
    return (when if when.tzinfo is not None else when.replace(tzinfo=zone)).astimezone(dt.UTC)


def _instants(
    stamps: list[dt.datetime], zone: zoneinfo.ZoneInfo
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """UTC nanoseconds of the parsed timestamps (all naive or all aware)."""
    if not stamps:
        return np.array([], dtype=np.int64)
    if stamps[0].utcoffset() is not None:
        utc = [when.astimezone(dt.UTC).replace(tzinfo=None) for when in stamps]
        index = pd.DatetimeIndex(utc).tz_localize("UTC")
    else:
        # A repeated fall-back hour cannot be told apart in naive wall-clock data: take the
        # first (DST) reading; the second hour becomes a gap, which is what it is.
        index = pd.DatetimeIndex(stamps).tz_localize(
            zone, ambiguous=np.ones(len(stamps), dtype=bool), nonexistent="shift_forward"
        )
    naive_utc = index.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    return naive_utc.astype(np.int64)


def _error(issues: list[_Issue], source: str) -> DataError:
    first = issues[0]
    more = len(issues) - 1
    tail = f" ({more} more bad row{'s' if more > 1 else ''})" if more else ""
    message = f"{source}: {_at(first.row)}: {first.text}{tail}"
    if first.non_finite:
        return NonFiniteValue(message, row=first.row.number)
    return DataError(message)


def _at(row: _Row) -> str:
    return (
        f"row {row.number}" if row.line == row.number + 1 else f"row {row.number} (line {row.line})"
    )


def _show(text: str, limit: int = 40) -> str:
    """``text`` quoted for a one-line message: control characters escaped, long text cut."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _zone(name: str, source: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{source}: timezone {name!r} is not an IANA time zone (e.g. America/New_York)"
        ) from None


# -- 7, 8. the account ----------------------------------------------------------------------
def _account(
    parsed: _Parsed,
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    source: str,
    name: str,
    column: str,
) -> Fetched:
    ns, values, rows = parsed.ns, parsed.values, parsed.rows
    step = _step(ns, rows, source)
    inside = np.ones(len(ns), dtype=bool)
    if start is not None:
        inside &= ns >= pd.Timestamp(start).value
    if end is not None:
        inside &= ns <= pd.Timestamp(end).value
    valued = np.flatnonzero(inside & np.isfinite(values))
    # In row order: the first row of a slot is its sample, later ones are averaged into it.
    repeated_instant = pd.Series(ns[valued]).duplicated().to_numpy()
    repeated_slot = pd.Series(slot_of(ns[valued], step)).duplicated().to_numpy()
    same_instant = np.zeros(len(ns), dtype=bool)
    same_instant[valued[repeated_instant]] = True
    same_slot = np.zeros(len(ns), dtype=bool)
    same_slot[valued[repeated_slot & ~repeated_instant]] = True
    groups: list[tuple[NotStoredReason, np.ndarray[Any, np.dtype[np.bool_]]]] = [
        ("empty value", inside & ~np.isfinite(values)),
        ("duplicate timestamp", same_instant),
        ("same slot", same_slot),
    ]
    samples = int(len(valued) - same_instant.sum() - same_slot.sum())
    account = RowAccount(
        source=name,
        rows=len(rows),
        samples=samples,
        outside=int((~inside).sum()),
        not_stored=tuple(
            RowGroup(
                reason=reason,
                count=int(mask.sum()),
                rows=tuple(rows[int(i)].number for i in np.flatnonzero(mask)[:LISTED_ROWS]),
            )
            for reason, mask in groups
            if mask.any()
        ),
        step=step,
    )
    if samples == 0 and inside.any():
        after = "" if start is None else f" from {pd.Timestamp(start):%Y-%m-%d %H:%M}Z on"
        raise DataError(
            f"{source}: none of the {int(inside.sum())} data rows{after} has a value (the "
            f"{column!r} cells are empty); fill them in (an empty cell is a gap)"
        )
    frame = pd.DataFrame({"ds": pd.to_datetime(ns[inside], utc=True), "y": values[inside]})
    return Fetched(series=regularize(frame, step), account=account)


def _step(ns: np.ndarray[Any, np.dtype[np.int64]], rows: list[_Row], source: str) -> dt.timedelta:
    """The file's sampling step, from all its rows; the grid it makes must stay bounded."""
    stamps = pd.Series(pd.to_datetime(ns, utc=True))
    if stamps.nunique() < 2:
        raise DataError(
            f"{source}: only one distinct timestamp ({stamps.iloc[0]:%Y-%m-%d %H:%M:%S}Z) in "
            f"{len(rows)} row(s); forescale needs at least two to tell the sampling step"
        )
    try:
        step = infer_step(stamps)
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    low, high = int(np.argmin(ns)), int(np.argmax(ns))
    slots = grid_slots(stamps.iloc[low], stamps.iloc[high], step)
    if slots > MAX_SLOTS:
        raise DataError(
            f"{source}: rows {rows[low].number} and {rows[high].number} are "
            f"{format_duration((stamps.iloc[high] - stamps.iloc[low]).to_pytimedelta())} apart "
            f"({stamps.iloc[low]:%Y-%m-%d %H:%M}Z to {stamps.iloc[high]:%Y-%m-%d %H:%M}Z); at "
            f"the {format_duration(step)} sampling step that is {slots:,} slots, more than "
            f"{MAX_SLOTS:,}: check those timestamps, or aggregate the data to a coarser step"
        )
    return step
