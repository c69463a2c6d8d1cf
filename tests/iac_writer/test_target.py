"""The IaC target: read, propose, CAS write, and undo from the record alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forescale.errors import TfvarsConflict, TfvarsError
from forescale.iac_writer import files
from forescale.iac_writer.target import AutoVarsTarget, TfvarsTarget, Undo, target_for

ORIGINAL = b'# capacity\r\nweb_min_size = 4.0 # peak\r\nregion = "eu"\r\n'


@pytest.fixture
def tfvars(tmp_path: Path) -> Path:
    path = tmp_path / "prod.tfvars"
    path.write_bytes(ORIGINAL)
    return path


def test_read_propose_write_and_undo_byte_for_byte(tfvars: Path) -> None:
    target = TfvarsTarget(tfvars, "web_min_size")
    snap = target.read()
    assert (snap.literal, snap.value, snap.sha256) == ("4.0", 4.0, files.sha256(ORIGINAL))
    edit = target.propose(11)
    assert edit.changed and "+web_min_size = 11 # peak" in edit.diff
    target.write(edit)
    assert b"web_min_size = 11 # peak" in tfvars.read_bytes()
    undo = target.undo(edit.written())
    assert undo.outcome is Undo.RESTORED
    assert tfvars.read_bytes() == ORIGINAL  # "4.0" comes back, not a re-spelled "4"
    assert target.undo(edit.written()).outcome is Undo.ALREADY


def test_undo_keeps_a_humans_other_lines(tfvars: Path) -> None:
    target = TfvarsTarget(tfvars, "web_min_size")
    edit = target.propose(11)
    target.write(edit)
    tfvars.write_bytes(tfvars.read_bytes().replace(b'"eu"', b'"us"'))
    undo = target.undo(edit.written())
    assert undo.outcome is Undo.VALUE_ONLY
    assert tfvars.read_bytes() == ORIGINAL.replace(b'"eu"', b'"us"')


def test_undo_never_touches_a_value_a_human_changed(tfvars: Path) -> None:
    target = TfvarsTarget(tfvars, "web_min_size")
    edit = target.propose(11)
    target.write(edit)
    human = tfvars.read_bytes().replace(b"= 11 #", b"= 25 #")
    tfvars.write_bytes(human)
    undo = target.undo(edit.written())
    assert (undo.outcome, undo.found) == (Undo.CONFLICT, "25")
    assert tfvars.read_bytes() == human
    assert "changed outside forescale (now 25)" in undo.describe(target)


def test_write_is_compare_and_swap(tfvars: Path) -> None:
    target = TfvarsTarget(tfvars, "web_min_size")
    edit = target.propose(11)
    tfvars.write_bytes(ORIGINAL.replace(b"# capacity", b"# edited"))
    with pytest.raises(TfvarsConflict, match="not writing over their change"):
        target.write(edit)
    assert tfvars.read_bytes() == ORIGINAL.replace(b"# capacity", b"# edited")


def test_propose_refuses_a_negative_capacity(tfvars: Path) -> None:
    with pytest.raises(TfvarsError, match=">= 0"):
        TfvarsTarget(tfvars, "web_min_size").propose(-1)


def test_auto_target_reads_the_team_file_until_it_owns_the_value(tmp_path: Path) -> None:
    team = tmp_path / "prod.tfvars"
    team.write_bytes(ORIGINAL)
    auto = tmp_path / "forescale.auto.tfvars.json"
    target = target_for(
        write="auto_tfvars", var_file=team, auto_tfvars_file=auto, address="web_min_size"
    )
    assert isinstance(target, AutoVarsTarget)
    snap = target.read()
    assert (snap.sha256, snap.literal, snap.value) == (None, None, 4.0)
    edit = target.propose(11)
    target.write(edit)
    assert json.loads(auto.read_text()) == {"web_min_size": 11}
    assert target.read().value == 11
    # undo removes the file forescale created; the team's file was never touched
    assert target.undo(edit.written()).outcome is Undo.RESTORED
    assert not auto.exists() and team.read_bytes() == ORIGINAL


def test_auto_target_undo_keeps_other_variables_added_meanwhile(tmp_path: Path) -> None:
    team = tmp_path / "prod.tfvars"
    team.write_bytes(ORIGINAL)
    auto = tmp_path / "forescale.auto.tfvars.json"
    auto.write_text('{\n  "web_min_size": 5\n}\n')
    target = AutoVarsTarget(auto, "web_min_size", TfvarsTarget(team, "web_min_size"))
    edit = target.propose(9)
    target.write(edit)
    auto.write_text(json.dumps({"api_min_size": 3, "web_min_size": 9}))
    assert target.undo(edit.written()).outcome is Undo.VALUE_ONLY
    assert json.loads(auto.read_text()) == {"api_min_size": 3, "web_min_size": 5}


MULTI = b'capacity = {\n  web = { min_size = 4, desired = 4.0, max_size = 10 }\n}\nregion = "eu"\n'


def test_several_variables_in_one_edit_and_one_undo(tmp_path: Path) -> None:
    from forescale.iac_writer.target import MultiTarget

    path = tmp_path / "prod.tfvars"
    path.write_bytes(MULTI)
    roles = {"min": "capacity.web.min_size", "desired": "capacity.web.desired"}
    target = MultiTarget(path, {**roles, "max": "capacity.web.max_size"}, max_base=10)
    assert target.read().value == 4
    edit = target.propose(12)
    assert edit.new_bytes == MULTI.replace(b"min_size = 4", b"min_size = 12").replace(
        b"desired = 4.0", b"desired = 12"
    ).replace(b"max_size = 10", b"max_size = 12")
    target.write(edit)
    path.write_bytes(path.read_bytes().replace(b'"eu"', b'"us"'))  # a human, elsewhere
    assert target.undo(edit.written()).outcome is Undo.VALUE_ONLY
    assert path.read_bytes() == MULTI.replace(b'"eu"', b'"us"')  # "4.0" back, human kept
    lower = target.propose(6)
    assert b"max_size = 10" in lower.new_bytes  # never below the team's usual maximum
    target.write(lower)
    path.write_bytes(path.read_bytes().replace(b"max_size = 10", b"max_size = 20"))
    assert target.undo(lower.written()).outcome is Undo.CONFLICT  # one value changed: hands off
    with pytest.raises(TfvarsError, match="needs max_base"):
        MultiTarget(path, {"min": "a", "max": "b"})
