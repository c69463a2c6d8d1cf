"""The user's calendar of sales/marketing events, and the calendar inputs of the model.

Pure: text in, records out; no file I/O, no clock.

Calendar format
---------------
YAML, either a top-level list or a mapping with the list under ``events:``::

    events:
      - name: Black Friday           # required
        start: 2024-11-29            # required; ISO 8601 date or datetime
        end: 2024-11-30              # optional, exclusive; default start + 1 day
        lower_window: 2h             # optional: the effect starts this long before start
        upper_window: 1d             # optional: ... and lasts this long after end
        expected_uplift: +40%        # optional: fraction (0.4) or percent string ("40%")

CSV with the header ``name,start,end,lower_window,upper_window,expected_uplift`` (only
``name`` and ``start`` are required, columns in any order, empty cells mean "not given",
blank lines and lines starting with ``#`` are skipped).

Dates and times
    A date means midnight. Naive datetimes and dates are wall-clock times in the calendar's
    ``timezone`` (an IANA name, default ``UTC``); datetimes with an offset (``Z``,
    ``+01:00``) keep it. Everything is converted to tz-aware UTC. ``end`` is exclusive;
    a date-only ``end`` equal to a date-only ``start`` means that whole day, and an
    omitted ``end`` means ``start`` + 1 calendar day (local). Windows are durations
    (``30m``, ``2h``, ``1d``, ``1w``, ``90s``, ``1h30m``) or an integer number of days;
    they must be >= 0: ``lower_window`` extends the event *before* ``start``.

Bounds
    Windows are at most :data:`MAX_WINDOW` (90 days: an effect that lasts longer than a
    quarter is seasonality, not an event). ``expected_uplift`` lies in (-100 %, +10,000 %]
    (-1 < fraction <= 100). Dates and times lie in the years 1900-2199, so every instant
    and window edge stays inside the nanosecond timestamps the model works with.

Validation (:class:`~forescale.errors.EventsError` naming the source and the 1-based line
of the offending event): missing ``name``/``start``, unparsable date or duration, ``end``
not after ``start``, unknown keys (typo protection), ``expected_uplift`` not a finite
number or outside its bounds, a window or date beyond its bound, a key given twice (in an
event, naming both lines, or a second top-level ``events:``), and overlapping events.

Overlap rule
    The *core* ranges ``[start, end)`` of two events may not overlap, whatever their names:
    the model learns one effect per name from the rows an event covers, and two events on
    the same rows cannot be told apart (and two expected uplifts on the same rows would
    stack silently). For concurrent campaigns, describe the combination as one event.
    The lower/upper *windows* may overlap other events. The same name may occur many
    times without overlap: that is how a recurring event teaches the model its effect.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import yaml

from forescale.config.durations import parse_duration
from forescale.errors import ConfigError, EventsError
from forescale.forecaster.grid import epoch_ns
from forescale.forecaster.types import Event

__all__ = [
    "KEYS",
    "event_indicators",
    "holiday_table",
    "parse_duration",
    "parse_events",
]

KEYS = ("name", "start", "end", "lower_window", "upper_window", "expected_uplift")
_REQUIRED = ("name", "start")

_INTEGER = re.compile(r"[+-]?\d+")

MAX_WINDOW = dt.timedelta(days=90)  # lower_window / upper_window
MAX_UPLIFT = 100.0  # expected_uplift as a fraction: +10,000 %
FIRST_YEAR, LAST_YEAR = 1900, 2199  # dates and times of events
_YAML_SPECIAL_FLOATS = {".nan": "nan", ".inf": "inf", "+.inf": "inf", "-.inf": "-inf"}


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _RawEvent:
    """One event as written: cell/scalar text per key (None = not given) and its line."""

    fields: dict[str, str | None]
    line: int


def parse_events(
    text: str,
    *,
    source: str = "<string>",
    fmt: Literal["yaml", "csv"] | None = None,
    timezone: str = "UTC",
) -> tuple[Event, ...]:
    """Parse an events calendar (YAML or CSV text) into :class:`Event` records (UTC).

    ``source`` names the text in messages (usually the file name); when ``fmt`` is None
    it is taken from the suffix of ``source`` (``.yaml``/``.yml``/``.csv``). ``timezone``
    is the IANA zone for dates and naive datetimes. Events are returned in file order,
    each with its 1-based ``line``. Raises :class:`EventsError` (see the module docstring
    for the rules).
    """
    if fmt is None:
        suffix = PurePath(source).suffix.lower()
        if suffix in (".yaml", ".yml"):
            fmt = "yaml"
        elif suffix == ".csv":
            fmt = "csv"
        else:
            raise EventsError(
                f"cannot tell the format from the name {source!r}: "
                "name the calendar file .yaml, .yml or .csv",
                source=source,
            )
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long
        raise EventsError(f"unknown timezone {timezone[:64]!r}", source=source) from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    raws = _read_yaml(text, source) if fmt == "yaml" else _read_csv(text, source)
    events = tuple(_build_event(raw, tz, source) for raw in raws)
    _check_overlaps(events, source)
    return events


def _read_yaml(text: str, source: str) -> list[_RawEvent]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise EventsError(f"invalid YAML: {problem}", source=source, line=line) from exc
    except yaml.YAMLError as exc:
        raise EventsError(f"invalid YAML: {exc}", source=source) from exc
    if root is None or _is_null(root):
        return []
    items: yaml.Node = root
    if isinstance(root, yaml.MappingNode):
        found: yaml.Node | None = None
        events_line: int | None = None
        for key, value in root.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name == "events" and events_line is not None:
                raise EventsError(
                    f"key 'events' given twice (lines {events_line} and "
                    f"{key.start_mark.line + 1}); keep one list",
                    source=source,
                    line=key.start_mark.line + 1,
                )
            if name == "events":
                events_line = key.start_mark.line + 1
            if name != "events":
                raise EventsError(
                    f"unknown top-level key {name!r}: expected a list of events, "
                    "or a mapping with the list under 'events:'",
                    source=source,
                    line=key.start_mark.line + 1,
                )
            found = value
        if found is None or _is_null(found):
            return []
        items = found
    if not isinstance(items, yaml.SequenceNode):
        raise EventsError(
            "expected a list of events (or 'events:' holding a list)",
            source=source,
            line=items.start_mark.line + 1,
        )
    raws = []
    for item in items.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            raise EventsError(
                "each event must be a mapping with at least 'name' and 'start'",
                source=source,
                line=line,
            )
        fields: dict[str, str | None] = {}
        key_lines: dict[str, int] = {}
        merged = _merged(item, source)  # `<<: *defaults`: keys given here override them
        for key, value in item.value:
            if not isinstance(key, yaml.ScalarNode):
                raise EventsError("keys must be plain names", source=source, line=line)
            if key.tag == "tag:yaml.org,2002:merge":
                continue
            name = str(key.value)
            if name in fields:
                raise EventsError(
                    f"key {name!r} given twice (lines {key_lines[name]} and "
                    f"{key.start_mark.line + 1})",
                    source=source,
                    line=line,
                )
            key_lines[name] = key.start_mark.line + 1
            if not isinstance(value, yaml.ScalarNode):
                raise EventsError(
                    f"{name!r} must be a single value, not a list or mapping",
                    source=source,
                    line=line,
                )
            fields[name] = None if _is_null(value) else str(value.value)
        raws.append(_RawEvent({**merged, **fields}, line))
    return raws


def _merged(item: yaml.MappingNode, source: str) -> dict[str, str | None]:
    """The fields an event takes from YAML merge keys (``<<: *base`` or ``<<: [*a, *b]``,
    earlier ones winning, as YAML defines it)."""
    fields: dict[str, str | None] = {}
    for key, value in item.value:
        if not (isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:merge"):
            continue
        bases = value.value if isinstance(value, yaml.SequenceNode) else [value]
        for base in bases:
            if not isinstance(base, yaml.MappingNode):
                raise EventsError(
                    "'<<' merges a mapping (an anchored event, e.g. <<: *sale) or a list of them",
                    source=source,
                    line=key.start_mark.line + 1,
                )
            inner = {**_merged(base, source)}
            for k, v in base.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    if not isinstance(v, yaml.ScalarNode):
                        raise EventsError(
                            f"{k.value!r} must be a single value, not a list or mapping",
                            source=source,
                            line=v.start_mark.line + 1,
                        )
                    inner[str(k.value)] = None if _is_null(v) else str(v.value)
            for k2, v2 in inner.items():
                fields.setdefault(k2, v2)
    return fields


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _read_csv(text: str, source: str) -> list[_RawEvent]:
    header: list[str] | None = None
    raws = []
    for line, row in _csv_records(text, source):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if header is None:
            header = [cell.lower() for cell in cells]
            for column in header:
                if column not in KEYS:
                    raise EventsError(_unknown_key_message(column), source=source, line=line)
            duplicated = sorted({c for c in header if header.count(c) > 1})
            if duplicated:
                raise EventsError(
                    f"column {duplicated[0]!r} given twice in the header", source=source, line=line
                )
            missing = [c for c in _REQUIRED if c not in header]
            if missing:
                raise EventsError(
                    f"the header must name the columns {', '.join(_REQUIRED)} "
                    f"(missing {', '.join(missing)}); allowed: {', '.join(KEYS)}",
                    source=source,
                    line=line,
                )
            continue
        if len(cells) > len(header) and any(cells[len(header) :]):
            raise EventsError(
                f"{len(cells)} cells but the header names {len(header)} columns",
                source=source,
                line=line,
            )
        fields = {
            column: (cells[i] or None) if i < len(cells) else None
            for i, column in enumerate(header)
        }
        raws.append(_RawEvent(fields, line))
    return raws


def _csv_records(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the 1-based physical line each starts on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    last_line = 0
    try:
        for row in reader:
            yield last_line + 1, row
            last_line = reader.line_num
    except csv.Error as exc:
        raise EventsError(f"invalid CSV: {exc}", source=source, line=last_line + 1) from exc


def _unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, KEYS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}; allowed: {', '.join(KEYS)}"


def _build_event(raw: _RawEvent, tz: ZoneInfo, source: str) -> Event:
    def fail(message: str) -> EventsError:
        return EventsError(message, source=source, line=raw.line)

    for key in raw.fields:
        if key not in KEYS:
            raise fail(_unknown_key_message(key))
    values = raw.fields
    name = (values.get("name") or "").strip()
    if not name:
        raise fail("event has no 'name'")
    start_text = values.get("start")
    if not start_text:
        raise fail(f"event {name!r} has no 'start'")
    try:
        start, start_is_date = _parse_when(start_text, tz)
    except ValueError as exc:
        raise fail(f"event {name!r}: start: {exc}") from exc
    end_text = values.get("end")
    if end_text:
        try:
            end, end_is_date = _parse_when(end_text, tz)
        except ValueError as exc:
            raise fail(f"event {name!r}: end: {exc}") from exc
        if start_is_date and end_is_date and end == start:
            end = _next_local_day(start, tz)  # "end: same day" means the whole day
    else:
        end = _next_local_day(start, tz)
    if end.astimezone(dt.UTC) <= start.astimezone(dt.UTC):  # one tzinfo compares wall clocks
        raise fail(f"event {name!r}: end {end_text} is not after start {start_text}")
    windows = {}
    for key in ("lower_window", "upper_window"):
        window_text = values.get(key)
        try:
            windows[key] = _parse_window(window_text) if window_text else dt.timedelta(0)
        except ValueError as exc:
            raise fail(f"event {name!r}: {key}: {exc}") from exc
    uplift_text = values.get("expected_uplift")
    try:
        uplift = _parse_uplift(uplift_text) if uplift_text else None
    except ValueError as exc:
        raise fail(f"event {name!r}: expected_uplift: {exc}") from exc
    return Event(
        name=name,
        start=start.astimezone(dt.UTC),
        end=end.astimezone(dt.UTC),
        lower_window=windows["lower_window"],
        upper_window=windows["upper_window"],
        expected_uplift=uplift,
        line=raw.line,
    )


def _parse_when(text: str, tz: ZoneInfo) -> tuple[dt.datetime, bool]:
    """An aware datetime and whether the text was a date only (-> local midnight)."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = dt.date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"not a date: {text!r}") from exc
        _check_year(day.year, text)
        return dt.datetime(day.year, day.month, day.day, tzinfo=tz), True
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(
            f"not an ISO 8601 date or datetime: {_short(text)!r} "
            "(e.g. 2024-11-29 or 2024-11-29T08:00)"
        ) from exc
    _check_year(when.year, text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
        if when.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != when.replace(tzinfo=None):
            raise ValueError(
                f"{_short(text)} does not exist in {tz.key} (the clocks skip it that day); "
                "give a time before or after the change, or an explicit UTC offset"
            )
    return when, False


def _check_year(year: int, text: str) -> None:
    # Before conversion to UTC: 0001-01-01 east of Greenwich would not even be representable.
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"{text}: dates must lie between the years {FIRST_YEAR} and {LAST_YEAR}")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _next_local_day(when: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The same wall-clock time one calendar day later in ``tz`` (23-25 h across DST)."""
    local = when.astimezone(tz).replace(tzinfo=None) + dt.timedelta(days=1)
    return local.replace(tzinfo=tz)


def _parse_window(text: str) -> dt.timedelta:
    """A window: a duration or a whole number of days, 0 to :data:`MAX_WINDOW`."""
    text = text.strip()
    if text.startswith("-"):
        raise ValueError(
            f"{_short(text)} is negative: windows are lengths >= 0 "
            "(lower_window extends the event before its start)"
        )
    if _INTEGER.fullmatch(text):
        digits = text.lstrip("+").lstrip("0") or "0"
        if len(digits) > 6 or int(digits) > MAX_WINDOW.days:
            raise ValueError(
                f"{_short(text)} days is too long: at most {MAX_WINDOW.days} days "
                "(a longer effect is seasonality, not an event)"
            )
        return dt.timedelta(days=int(digits))
    return parse_duration(text, maximum=MAX_WINDOW)


def _parse_uplift(text: str) -> float:
    text = text.strip()
    number = _YAML_SPECIAL_FLOATS.get(text.lower(), text)  # YAML spells nan/inf .nan/.inf
    try:
        value = float(number[:-1]) / 100 if number.endswith("%") else float(number)
    except ValueError as exc:
        raise ValueError(f"not a number: {text!r} (use e.g. 0.4, -0.38 or '-38%')") from exc
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {_short(text)!r}")
    if value <= -1:
        raise ValueError(f"{_short(text)} would remove all demand or more; it must be above -100 %")
    if value > MAX_UPLIFT:
        raise ValueError(f"{_short(text)} is too large: at most +10000 % (100 as a fraction)")
    return value


def _check_overlaps(events: Sequence[Event], source: str) -> None:
    """Raise if the core ranges [start, end) of two events overlap (see the module docs)."""
    ordered = sorted(events, key=lambda e: (e.start, e.line or 0))
    latest: Event | None = None  # the event reaching furthest so far
    for event in ordered:
        if latest is not None and event.start < latest.end:
            first, second = sorted((latest, event), key=lambda e: e.line or 0)
            raise EventsError(
                f"event {second.name!r} (line {second.line}) overlaps event {first.name!r} "
                f"(line {first.line}): {_span(second)} and {_span(first)}; core ranges "
                "[start, end) may not overlap (lower/upper windows may)",
                source=source,
                line=second.line,
            )
        if latest is None or event.end > latest.end:
            latest = event


def _span(event: Event) -> str:
    return f"[{event.start.isoformat()}, {event.end.isoformat()})"


# ------------------------------------------------------------------- model inputs


def event_indicators(
    events: Iterable[Event],
    ds: pd.Series | pd.DatetimeIndex,
    *,
    step: dt.timedelta | None = None,
) -> pd.DataFrame:
    """0/1 indicator columns, one per event name, over the UTC instants ``ds``.

    Without ``step`` a row is active when ``ds`` lies in ``[active_start, active_end)``
    of any occurrence of that name. With ``step`` each row stands for the interval
    ``[ds, ds + step)`` (an aggregated bucket) and is active when that interval meets an
    occurrence's active window, so a bucket holding part of an event counts as the event.
    Columns are in order of first appearance; the index is ``0..len(ds)-1``.
    """
    index = pd.DatetimeIndex(ds)
    if index.tz is None:
        raise ValueError("ds must be timezone-aware (UTC)")
    stamps = epoch_ns(index)
    span = 0 if step is None else int(step / dt.timedelta(microseconds=1)) * 1000
    columns: dict[str, np.ndarray] = {}
    for event in events:
        start = pd.Timestamp(event.active_start).value
        end = pd.Timestamp(event.active_end).value
        if step is None:
            active = (stamps >= start) & (stamps < end)
        else:
            active = (stamps + span > start) & (stamps < end)
        column = columns.setdefault(event.name, np.zeros(len(stamps)))
        column[active] = 1.0
    return pd.DataFrame(columns, index=pd.RangeIndex(len(stamps)))


def holiday_table(country: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Public holidays of ``country`` (ISO code for the ``holidays`` package, e.g. "US")
    with dates in ``[start, end]``.

    Columns: ``ds`` (the holiday's local calendar date, as a naive midnight timestamp)
    and ``holiday`` (its name; a date with two holidays gives two rows). Sorted by date.
    Raises :class:`~forescale.errors.ConfigError` for an unknown country code.
    """
    import holidays  # here, not at the top: only fits need it (0.1 s import)

    try:
        calendar = holidays.country_holidays(country, years=range(start.year, end.year + 1))
    except NotImplementedError as exc:
        raise ConfigError(
            f"country_holidays: {country!r} is not a country code the holidays package knows"
        ) from exc
    rows = [
        (pd.Timestamp(day), name)
        for day in sorted(calendar)
        if start <= day <= end
        for name in calendar.get_list(day)
    ]
    return pd.DataFrame(
        {
            "ds": pd.to_datetime(pd.Series([r[0] for r in rows], dtype="datetime64[ns]")),
            "holiday": pd.Series([r[1] for r in rows], dtype=object),
        }
    )
