"""A schedule Terraform carries out: forescale's planned changes as a map variable.

``iac.write: schedule`` writes the whole capacity plan of the horizon into a JSON variable
file forescale owns (passed last as ``-var-file``, like ``auto_tfvars``)::

    {"forescale_schedule": {"2025-11-28T06:45Z": {"min_size": 9}, ...}}

The team's module turns each entry into a scheduled action with ``for_each``
(``aws_autoscaling_schedule`` for an Auto Scaling group, ``aws_appautoscaling_scheduled_action``
for ECS and other Application Auto Scaling targets; see ``config/examples/schedule/``), so
the cloud keeps executing the plan even while forescale is down: one apply per refit,
not one per step. The rules:

1. Keys are the entries' start times in UTC, ``YYYY-MM-DDTHH:MMZ``: stable per start time,
   so a refit that changes one step changes one entry and the plan shows only that create,
   update or delete.
2. Each entry sets every managed field (``min_size``; ``desired_capacity``/``max_size``
   only where the team manages them) to the step's units.
3. Entries must start in the future: a step due before ``now + margin`` is moved to the
   first allowed minute (``start_time`` must be in the future when AWS creates the action)
   and the report says so. The file is rewritten only when its entries still ahead differ
   from the plan's (:meth:`ScheduleTarget.up_to_date`), so an entry passing is no reason to
   apply; entries that have passed are dropped at that next write (AWS deletes a one-time
   action once it ran).
4. At most ``max_entries`` (AWS allows 125 scheduled actions per group): beyond it the
   last entries are left out, to be written by a later refit, and the report says so.

Pure functions (:func:`entries_for`, :func:`render`, :func:`parse`) and a
:class:`ScheduleTarget` that writes the file with compare-and-swap and undoes a write from
its record (:mod:`forescale.iac_writer.target`).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from forescale.errors import TfvarsError, TfvarsParseError
from forescale.iac_writer import files
from forescale.iac_writer.target import Edit, Snapshot, TfvarsTarget, _FileTarget

__all__ = [
    "DEFAULT_MARGIN",
    "MAX_ENTRIES",
    "Entry",
    "ScheduleTarget",
    "entries_for",
    "in_force",
    "key_after",
    "key_of",
    "parse",
    "render",
]

MAX_ENTRIES = 125
DEFAULT_MARGIN = dt.timedelta(minutes=5)
_KEY_FORMAT = "%Y-%m-%dT%H:%MZ"


@dataclass(frozen=True, kw_only=True, slots=True)
class Entry:
    """One scheduled change: from ``start`` (UTC, whole minute) the fields hold ``units``."""

    start: dt.datetime
    units: int


def key_of(start: dt.datetime) -> str:
    return start.astimezone(dt.UTC).strftime(_KEY_FORMAT)


def entries_for(
    steps: Sequence[tuple[dt.datetime, int]],
    *,
    now: dt.datetime,
    margin: dt.timedelta = DEFAULT_MARGIN,
    max_entries: int = MAX_ENTRIES,
) -> tuple[tuple[Entry, ...], tuple[str, ...]]:
    """The entries for planned ``steps`` ((at, units), ascending) and notes on what was
    moved or left out. Start times are rounded up to the minute; a step before
    ``now + margin`` starts then (the latest such step wins); equal start times keep the
    last step."""
    earliest = _ceil_minute(now + margin)
    by_start: dict[dt.datetime, int] = {}
    moved = 0
    for at, units in steps:
        start = _ceil_minute(at)
        if start < earliest:
            start, moved = earliest, moved + 1
        by_start[start] = int(units)
    notes = []
    if moved:
        notes.append(
            f"{moved} change(s) due before {key_of(earliest)} start then: a scheduled action "
            f"must start at least {int(margin.total_seconds() // 60)} min in the future"
        )
    ordered = [Entry(start=s, units=u) for s, u in sorted(by_start.items())]
    if len(ordered) > max_entries:
        notes.append(
            f"{len(ordered) - max_entries} later change(s) left out: at most {max_entries} "
            f"scheduled actions per group; they are written by a later refit (the last "
            f"written entry starts {key_of(ordered[max_entries - 1].start)})"
        )
        ordered = ordered[:max_entries]
    return tuple(ordered), tuple(notes)


def render(variable: str, entries: Sequence[Entry], fields: Sequence[str]) -> bytes:
    """The file forescale owns: ``{variable: {key: {field: units}}}``, sorted, indented."""
    body = {variable: {key_of(e.start): dict.fromkeys(fields, e.units) for e in entries}}
    return (json.dumps(body, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def parse(data: bytes, variable: str, path: Path) -> dict[str, dict[str, int]]:
    """The entries in forescale's file (a refusal names the file when it is not the shape
    forescale writes)."""
    try:
        content = json.loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TfvarsParseError(f"{path}: not valid JSON ({exc}); fix or delete it") from None
    table = content.get(variable, {}) if isinstance(content, dict) else None
    if not isinstance(table, dict):
        raise TfvarsParseError(f"{path}: {variable} must be a JSON object of entries")
    out: dict[str, dict[str, int]] = {}
    for key, entry in table.items():
        if not isinstance(entry, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in entry.values()
        ):
            raise TfvarsParseError(f"{path}: {variable}[{key!r}] must map fields to whole numbers")
        try:
            _start(str(key))
        except ValueError:
            raise TfvarsParseError(
                f"{path}: {variable} key {str(key)[:40]!r} is not a start time in the form "
                f"forescale writes ({key_of(dt.datetime(2025, 1, 31, 8, 15, tzinfo=dt.UTC))}); "
                "fix or delete the entry"
            ) from None
        out[str(key)] = {str(k): int(v) for k, v in entry.items()}
    return out


def in_force(table: Mapping[str, Mapping[str, int]], field: str, now: dt.datetime) -> int | None:
    """The units the newest entry at or before ``now`` set (None: none has started)."""
    started = [k for k in table if _start(k) <= now]
    return table[max(started)][field] if started and field in table[max(started)] else None


class ScheduleTarget(_FileTarget):
    """forescale's schedule file. A snapshot's ``literal`` is the schedule's canonical JSON
    (the whole variable), its ``value`` the units in force at ``now`` (the newest entry
    that has started; before any, the team's variable, ``fallback``), so a write is undone
    from its record like any other target."""

    def __init__(
        self,
        path: Path,
        variable: str,
        fields: Sequence[str],
        *,
        now: dt.datetime,
        fallback: TfvarsTarget,
    ) -> None:
        super().__init__(path, variable)
        self._fields = tuple(fields)
        self._now = now.astimezone(dt.UTC)
        self._fallback = fallback

    @property
    def sources(self) -> tuple[Path, ...]:
        return (self._path, self._fallback.path)

    @property
    def fields(self) -> tuple[str, ...]:
        return self._fields

    def table(self) -> dict[str, dict[str, int]]:
        data = files.read_bytes(self._path, missing_ok=True)
        return {} if data is None else parse(data, self._address, self._path)

    def _snapshot(self, data: bytes | None) -> Snapshot:
        table = {} if data is None else parse(data, self._address, self._path)
        units = in_force(table, self._fields[0], self._now)
        return Snapshot(
            path=self._path,
            address=self._address,
            sha256=files.sha256(data),
            literal=None if data is None else json.dumps(table, sort_keys=True),
            value=self._fallback.read().value if units is None else units,
        )

    def up_to_date(self, entries: Sequence[Entry], *, after: dt.datetime) -> bool:
        """The file already holds exactly ``entries`` among its entries starting after
        ``after`` (passed ones do not count)."""
        ahead = {k: v for k, v in self.table().items() if _start(k) > after}
        wanted = {key_of(e.start): dict.fromkeys(self._fields, e.units) for e in entries}
        return ahead == {k: v for k, v in wanted.items() if _start(k) > after}

    def propose_entries(self, entries: Sequence[Entry]) -> Edit:
        """The file holding exactly ``entries`` (nothing written)."""
        data = files.read_bytes(self._path, missing_ok=True)
        before = self._snapshot(data)
        new_bytes = render(self._address, entries, self._fields)
        table = parse(new_bytes, self._address, self._path)
        old_text = "" if data is None else data.decode("utf-8-sig")
        diff = "".join(
            difflib.unified_diff(
                old_text.splitlines(keepends=True),
                new_bytes.decode().splitlines(keepends=True),
                fromfile="/dev/null" if data is None else f"a/{self._path}",
                tofile=f"b/{self._path}",
            )
        )
        first = entries[0].units if entries else 0
        return Edit(
            before=before,
            units=first,
            literal=json.dumps(table, sort_keys=True),
            new_bytes=new_bytes,
            diff=diff,
        )

    def _edit(self, data: bytes | None, before: Snapshot, units: int) -> Edit:
        raise TfvarsError("a schedule is proposed as entries (propose_entries), not as units")

    def put(self, data: bytes, literal: str | None, *, file_was_absent: bool) -> bytes | None:
        if literal is None:
            return None if file_was_absent else render(self._address, (), self._fields)
        table = json.loads(literal)
        body = {self._address: table}
        return (json.dumps(body, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def key_after(key: str, when: dt.datetime) -> bool:
    """The entry with this key starts after ``when``."""
    return _start(key) > when


def _ceil_minute(when: dt.datetime) -> dt.datetime:
    when = when.astimezone(dt.UTC)
    floored = when.replace(second=0, microsecond=0)
    return floored if floored == when else floored + dt.timedelta(minutes=1)


def _start(key: str) -> dt.datetime:
    return dt.datetime.strptime(key, _KEY_FORMAT).replace(tzinfo=dt.UTC)
