"""Apply stays correct through crashes, refusals, failures and humans.

Each test drives ``forescale apply`` in a child process (as an operator runs it) against a
real Terraform project with local state, through a terraform wrapper that injects a fault
at a chosen moment (tests/forescale/tf_project.py), and then checks the three truths: the
variable file's bytes, ``terraform show -json`` state, and the audit records.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import time
from pathlib import Path

import pytest

from forescale.cli import main
from tests.forescale.tf_project import (
    HOOK_TF,
    MAIN_TF,
    NOW,
    REPLACE_TF,
    TFVARS,
    fault_wrapper,
    forescale_apply,
    inject,
    isolated_terraform,  # noqa: F401 - an autouse fixture
    make_project,
    records,
    state_values,
    terraform,
)

pytestmark = pytest.mark.external_service

LATER = NOW + dt.timedelta(minutes=1)
RAISED = TFVARS.replace(b"web_min_size = 4 #", b"web_min_size = 11 #")
OWNER_LINE = "# capacity, owned by forescale"
HUMAN_LINE = "# capacity, owned by the web team"


def project(tmp_path: Path, **kwargs: object) -> tuple[Path, Path, Path]:
    """(project root, the variable file, the wrapper's faults file)."""
    wrapper, faults = fault_wrapper(tmp_path / "wrapper")
    root = make_project(tmp_path, binary=str(wrapper), **kwargs)  # type: ignore[arg-type]
    return root, root / "tf" / "terraform.tfvars", faults


def min_size(root: Path) -> object:
    values = state_values(root / "tf")["terraform_data.web_asg"]
    assert isinstance(values, dict)
    got = values["input"]
    return got["min_size"] if isinstance(got, dict) else values["triggers_replace"]


def plain_plan_changes(root: Path) -> bool:
    """Whether a plain ``terraform plan`` in the directory would change anything."""
    done = subprocess.run(
        ["terraform", "plan", "-detailed-exitcode", "-input=false", "-no-color"],
        cwd=root / "tf",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 2), done.stderr
    return done.returncode == 2


def wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


# ----------------------------------------------------------------------- refusals


def test_killed_while_planning_a_refused_change_the_next_run_restores_the_file(
    tmp_path: Path,
) -> None:
    root, tfvars, faults = project(tmp_path, main_tf=REPLACE_TF)
    before = state_values(root / "tf")
    inject(faults, "plan", before=(["kill_parent"],))
    killed = forescale_apply(root)
    assert killed.returncode == -signal.SIGKILL
    assert tfvars.read_bytes() == RAISED and state_values(root / "tf") == before
    [first] = records(root)
    assert first.status == "written"

    resumed = forescale_apply(root, now=LATER)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "refused" in resumed.stdout and "restored byte for byte" in resumed.stdout
    assert tfvars.read_bytes() == TFVARS  # from the record, not from the file as it was
    assert state_values(root / "tf") == before
    assert not plain_plan_changes(root)  # the replace the guard exists to prevent is gone
    retry, crashed = records(root)
    assert (retry.retry_of, retry.status) == (first.id, "refused") and retry.guard_reasons
    assert crashed.status == "interrupted"

    # The run after that does not believe the refused value is in force: it tries the
    # raise again from 4 and is refused again; the file stays as the team wrote it.
    again = forescale_apply(root, now=LATER + dt.timedelta(minutes=5))
    assert again.returncode == 1 and tfvars.read_bytes() == TFVARS
    assert records(root)[0].from_units == 4


def test_a_refusal_keeps_a_humans_edit_of_another_line(tmp_path: Path) -> None:
    root, tfvars, faults = project(tmp_path, main_tf=REPLACE_TF)
    before = state_values(root / "tf")
    inject(faults, "plan", before=(["edit", str(tfvars), OWNER_LINE, HUMAN_LINE],))
    refused = forescale_apply(root)
    assert refused.returncode == 1
    # only forescale's characters were undone; the human's line stays
    assert tfvars.read_bytes() == TFVARS.replace(OWNER_LINE.encode(), HUMAN_LINE.encode())
    assert state_values(root / "tf") == before
    [record] = records(root)
    assert record.status == "refused" and "other edits in the file kept" in record.message


def test_killed_while_undoing_the_next_run_finishes_the_undo(tmp_path: Path) -> None:
    root, tfvars, _faults = project(tmp_path, main_tf=REPLACE_TF)
    before = state_values(root / "tf")
    killed = forescale_apply(root, env={"FORESCALE_TEST_DIE_IN": "undo"})
    assert killed.returncode == -signal.SIGKILL
    assert tfvars.read_bytes() == RAISED
    [record] = records(root)
    assert record.status == "undoing" and "plan refused" in record.message

    resumed = forescale_apply(root, now=LATER)
    assert resumed.returncode == 1
    assert tfvars.read_bytes() == TFVARS and state_values(root / "tf") == before
    [record] = records(root)
    assert record.status == "refused" and "finished after a restart" in record.message


# ----------------------------------------------------------------------- humans


def test_a_retry_never_overwrites_a_human_who_changed_the_value(tmp_path: Path) -> None:
    root, tfvars, _faults = project(
        tmp_path, main_tf=MAIN_TF + HOOK_TF, allow_replace=True, extra="    max_step_down: 2\n"
    )
    (root / "tf" / "FAIL").write_text("make the provisioner fail")
    failed = forescale_apply(root)
    assert failed.returncode == 1 and "terraform failed; will retry" in failed.stdout
    assert tfvars.read_bytes() == RAISED
    # During the incident a human raises the value by hand.
    tfvars.write_bytes(RAISED.replace(b"= 11 #", b"= 25 #"))
    (root / "tf" / "FAIL").unlink()

    later = forescale_apply(root, now=LATER)
    assert b"web_min_size = 11" not in tfvars.read_bytes()  # never written over the human
    newest, *older = records(root)
    conflict = next(r for r in older if r.status == "conflict")
    assert "found 25" in conflict.message and conflict.retry_of == older[-1].id
    assert older[-1].status == "failed"  # the failure is still on record
    # Planned afresh from the human's value: a lowering that follows the step limit.
    assert (newest.from_units, newest.to_units, newest.direction) == (25, 23, "lower")
    assert newest.status == "applied", later.stdout
    assert b"web_min_size = 23 #" in tfvars.read_bytes() and min_size(root) == 23


def test_a_value_changed_while_terraform_plans_is_never_applied(tmp_path: Path) -> None:
    root, tfvars, faults = project(tmp_path)
    inject(
        faults, "plan", before=(["edit", str(tfvars), "web_min_size = 11", "web_min_size = 33"],)
    )
    run = forescale_apply(root)
    assert run.returncode == 1
    assert min_size(root) == 4  # neither 33 nor 11 was applied
    assert b"web_min_size = 33 #" in tfvars.read_bytes()  # the human's value is kept
    [record] = records(root)
    assert record.status == "refused"
    assert "web_min_size = 33, not forescale's 11" in record.message
    assert "changed outside forescale (now 33)" in record.message


def test_a_file_changed_between_plan_and_apply_is_not_applied(tmp_path: Path) -> None:
    root, tfvars, faults = project(tmp_path)
    inject(faults, "plan", after=(["edit", str(tfvars), OWNER_LINE, HUMAN_LINE],))
    run = forescale_apply(root)
    assert run.returncode == 1
    assert min_size(root) == 4
    # forescale's value is undone, the human's other edit stays
    assert tfvars.read_bytes() == TFVARS.replace(OWNER_LINE.encode(), HUMAN_LINE.encode())
    [record] = records(root)
    assert record.status == "conflict" and "saved plan was not applied" in record.message

    # the next run plans afresh on top of the human's file and applies
    again = forescale_apply(root, now=LATER)
    assert again.returncode == 0, again.stdout + again.stderr
    assert min_size(root) == 11
    assert tfvars.read_bytes() == RAISED.replace(OWNER_LINE.encode(), HUMAN_LINE.encode())


def test_two_applies_at_once_with_a_human_edit_in_between(tmp_path: Path) -> None:
    root, tfvars, faults = project(tmp_path)
    ready, go = tmp_path / "a-planning", tmp_path / "a-go"
    inject(faults, "plan", before=(["touch", str(ready)], ["wait", str(go)]))
    first = forescale_apply(root, wait=False)
    assert isinstance(first, subprocess.Popen)
    try:
        wait_for(ready, first)
        second = forescale_apply(root, now=NOW + dt.timedelta(seconds=30), wait=False)
        assert isinstance(second, subprocess.Popen)
        try:
            tfvars.write_bytes(
                tfvars.read_bytes().replace(OWNER_LINE.encode(), HUMAN_LINE.encode())
            )
            go.write_text("")
            out_a, _ = first.communicate(timeout=300)
            out_b, _ = second.communicate(timeout=300)
        finally:
            second.kill()
    finally:
        first.kill()
    assert first.returncode == 1 and "conflict" in out_a
    assert second.returncode == 0 and "applied" in out_b
    assert min_size(root) == 11
    assert tfvars.read_bytes() == RAISED.replace(OWNER_LINE.encode(), HUMAN_LINE.encode())
    applied, conflict = records(root)
    assert (applied.status, conflict.status) == ("applied", "conflict")


# ----------------------------------------------------------------------- crashes


def test_killed_between_plan_and_apply_the_next_run_applies(tmp_path: Path) -> None:
    root, tfvars, faults = project(tmp_path)
    inject(faults, "apply", before=(["kill_parent"], ["exit", 1]))
    assert forescale_apply(root).returncode == -signal.SIGKILL
    assert tfvars.read_bytes() == RAISED and min_size(root) == 4
    resumed = forescale_apply(root, now=LATER)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert min_size(root) == 11 and tfvars.read_bytes() == RAISED
    retry, crashed = records(root)
    assert (retry.status, retry.retry_of, crashed.status) == ("applied", crashed.id, "interrupted")


def test_killed_after_terraform_applied_the_next_run_finds_it_in_effect(tmp_path: Path) -> None:
    root, tfvars, faults = project(tmp_path)
    # terraform applied, then forescale died before it could record the outcome
    inject(faults, "apply", after=(["kill_parent"],))
    assert forescale_apply(root).returncode == -signal.SIGKILL
    assert min_size(root) == 11
    resumed = forescale_apply(root, now=LATER)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "already in effect" in resumed.stdout
    assert min_size(root) == 11 and tfvars.read_bytes() == RAISED
    assert [r.status for r in records(root)] == ["applied", "interrupted"]


def test_sigterm_stops_terraform_gracefully_and_is_recorded(tmp_path: Path) -> None:
    root, tfvars, faults = project(tmp_path)
    ready, never = tmp_path / "applying", tmp_path / "never"
    inject(faults, "apply", before=(["touch", str(ready)], ["wait", str(never)]))
    run = forescale_apply(root, wait=False)
    assert isinstance(run, subprocess.Popen)
    try:
        wait_for(ready, run)
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 130 and "interrupted" in err
    [record] = records(root)
    assert record.status == "interrupted" and min_size(root) == 4
    assert tfvars.read_bytes() == RAISED
    assert forescale_apply(root, now=LATER).returncode == 0
    assert min_size(root) == 11


# ----------------------------------------------------------------------- isolation

BROKEN = """
  broken:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 100
    min_units: 2
    max_units: 20
    iac: {working_dir: tf-broken, var_file: terraform.tfvars, address: web_min_size}
  newbie:
    source: {type: csv, path: not-collected-yet.csv}
    capacity_per_unit: 100
    min_units: 2
    max_units: 20
    iac: {working_dir: tf-newbie, var_file: terraform.tfvars, address: web_min_size}"""


def test_one_broken_service_does_not_stop_the_others(tmp_path: Path) -> None:
    root, tfvars, _faults = project(tmp_path, more_services=BROKEN)
    for name, content in (
        ("tf-broken", "web_min_size = 4\nweb_min_size = 5\n"),
        ("tf-newbie", "web_min_size = 4\n"),
    ):
        (root / name).mkdir()
        (root / name / "terraform.tfvars").write_text(content)
    run = forescale_apply(root)
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert any(
        line.startswith("broken [apply] error:") and "web_min_size" in line for line in lines
    ), lines
    assert any(line.startswith("newbie [apply] error:") for line in lines), lines
    assert any(line.startswith("web [apply] applied") for line in lines), lines
    assert min_size(root) == 11 and tfvars.read_bytes() == RAISED


def test_history_shows_a_failure_after_its_successful_retry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _tfvars, _faults = project(tmp_path, main_tf=MAIN_TF + HOOK_TF, allow_replace=True)
    (root / "tf" / "FAIL").write_text("")
    assert forescale_apply(root).returncode == 1
    (root / "tf" / "FAIL").unlink()
    assert forescale_apply(root, now=LATER).returncode == 0
    assert main(["history", "--config", str(root / "forescale.yaml")]) == 0
    out = capsys.readouterr().out
    assert "#2" in out and "applied (retries #1)" in out
    assert "#1" in out and "failed" in out and "terraform failed; will retry" in out
    terraform(root / "tf", "plan", "-input=false")  # the project is still healthy
