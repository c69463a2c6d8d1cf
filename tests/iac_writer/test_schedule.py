"""The schedule's pure rules: stable keys, future starts, the per-group limit."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from forescale.errors import TfvarsParseError
from forescale.iac_writer.schedule import (
    Entry,
    ScheduleTarget,
    entries_for,
    in_force,
    key_of,
    parse,
    render,
)
from forescale.iac_writer.target import TfvarsTarget, Undo

NOW = dt.datetime(2025, 11, 28, 6, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def test_keys_are_utc_minutes_and_steps_due_now_start_after_the_margin() -> None:
    steps = [(NOW, 9), (NOW + 2 * MIN, 10), (NOW + 45 * MIN + dt.timedelta(seconds=30), 6)]
    entries, notes = entries_for(steps, now=NOW, margin=5 * MIN)
    assert [(key_of(e.start), e.units) for e in entries] == [
        ("2025-11-28T06:05Z", 10),  # both early steps start at now + 5 min; the later wins
        ("2025-11-28T06:46Z", 6),  # rounded up to the minute
    ]
    assert "2 change(s) due before 2025-11-28T06:05Z start then" in notes[0]


def test_at_most_max_entries_and_the_report_says_so() -> None:
    steps = [(NOW + k * 10 * MIN, k) for k in range(1, 201)]
    entries, notes = entries_for(steps, now=NOW, max_entries=125)
    assert len(entries) == 125 and entries[-1].units == 125
    assert "75 later change(s) left out: at most 125 scheduled actions" in notes[0]


def test_the_file_round_trips_and_bad_content_is_refused(tmp_path: Path) -> None:
    entries = (Entry(start=NOW + 10 * MIN, units=9), Entry(start=NOW + 70 * MIN, units=6))
    data = render("forescale_schedule", entries, ["min_size", "desired_capacity"])
    table = parse(data, "forescale_schedule", tmp_path / "f.json")
    assert table == {
        "2025-11-28T06:10Z": {"desired_capacity": 9, "min_size": 9},
        "2025-11-28T07:10Z": {"desired_capacity": 6, "min_size": 6},
    }
    assert in_force(table, "min_size", NOW) is None
    assert in_force(table, "min_size", NOW + 30 * MIN) == 9
    with pytest.raises(TfvarsParseError, match="must map fields to whole numbers"):
        parse(b'{"forescale_schedule": {"k": {"min_size": "9"}}}', "forescale_schedule", tmp_path)
    # a key edited by hand into another form was a traceback (exit 3) in every run
    for key in ("soon", "2014-11-27T10:00:00Z"):
        with pytest.raises(TfvarsParseError, match=rf"key '{key}' is not a start time in the form"):
            parse(
                json.dumps({"forescale_schedule": {key: {"min_size": 20}}}).encode(),
                "forescale_schedule",
                tmp_path,
            )


def test_the_target_reads_the_units_in_force_and_undoes_a_write(tmp_path: Path) -> None:
    team = tmp_path / "terraform.tfvars"
    team.write_text("web_min_size = 4\n")
    path = tmp_path / "forescale.schedule.auto.tfvars.json"
    target = ScheduleTarget(
        path,
        "forescale_schedule",
        ["min_size"],
        now=NOW + 30 * MIN,
        fallback=TfvarsTarget(team, "web_min_size"),
    )
    assert target.read().value == 4  # nothing written yet: the team's variable
    entries = (Entry(start=NOW + 10 * MIN, units=9), Entry(start=NOW + 70 * MIN, units=6))
    edit = target.propose_entries(entries)
    target.write(edit)
    assert target.read().value == 9  # the entry in force at 06:30
    assert target.up_to_date(entries, after=NOW + 30 * MIN)
    assert not target.up_to_date(entries[:1], after=NOW)
    assert json.loads(path.read_text())["forescale_schedule"]["2025-11-28T07:10Z"] == {
        "min_size": 6
    }
    assert target.undo(edit.written()).outcome is Undo.RESTORED
    assert not path.exists() and team.read_text() == "web_min_size = 4\n"
