"""TerraformRunner against the real terraform binary (and a few fake binaries for signals).

Modules (tests/iac_writer/tf_fixtures): ``data_update`` updates terraform_data in place
(Terraform >= 1.4), ``null_replace`` replaces a null_resource on every change and can make
its create slow (works with Terraform 1.0.3). Tests parametrized over both run twice.
"""

from __future__ import annotations

import _thread
import functools
import json
import signal
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from forescale.errors import (
    PlanRefused,
    StalePlan,
    StateLocked,
    TerraformCancelled,
    TerraformError,
    TerraformNotFound,
    TerraformTimeout,
)
from forescale.iac_writer import process
from forescale.iac_writer.guard import GuardResult, check_plan
from forescale.iac_writer.scratch import LOCK_NAME
from forescale.iac_writer.terraform import ApplyResult, CommandTimeouts, PlanResult, TerraformRunner
from tests.iac_writer.conftest import SCALER_FILE, Workspace, wait_for

external = pytest.mark.external_service


def guard_for(ws: Workspace, **overrides: Any) -> functools.partial[GuardResult]:
    return functools.partial(check_plan, **{**ws.kind.guard_kwargs, **overrides})


class CountingGuard:
    """A guard that records every plan it was asked about."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.seen: list[GuardResult] = []

    def __call__(self, plan_json: Any) -> GuardResult:
        verdict = check_plan(plan_json, **self.kwargs)
        self.seen.append(verdict)
        return verdict


# --------------------------------------------------------------------------- no terraform


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TerraformNotFound, match=r"cannot find the 'no-such-terraform-x' .*PATH"):
        TerraformRunner(tmp_path, binary="no-such-terraform-x")
    with pytest.raises(TerraformNotFound, match="that path") as info:
        TerraformRunner(tmp_path, binary=str(tmp_path / "bin" / "terraform"))
    assert info.value.returncode is None


def test_time_limits_must_leave_room_for_the_lock_wait(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"timeouts.plan \(30 s\) must exceed lock_timeout"):
        TerraformRunner(
            tmp_path,
            binary="/bin/sh",
            lock_timeout_seconds=60,
            timeouts=CommandTimeouts(plan=30),
        )


def test_arguments_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """User var files in order, the scaler's last; TF_CLI_ARGS* dropped; automation env set."""
    monkeypatch.setenv("TF_CLI_ARGS_plan", "-var-file=sneaky.tfvars")
    script = _fake_binary(tmp_path, 'env | grep -E "^(TF_|CHECKPOINT_)" | sort; echo "ARGS $*"')
    runner = TerraformRunner(
        tmp_path,
        binary=str(script),
        var_files=["prod.tfvars", tmp_path / "abs.tfvars"],
        scaler_var_file="zz-scaler.auto.tfvars.json",
        env={"TF_IN_AUTOMATION": "0", "EXTRA": "1"},
        plugin_dirs=[tmp_path / "plugins"],
        backend_config=["path=x.tfstate"],
    )
    assert runner.var_file_args == (
        f"-var-file={tmp_path / 'prod.tfvars'}",
        f"-var-file={tmp_path / 'abs.tfvars'}",
        f"-var-file={tmp_path / 'zz-scaler.auto.tfvars.json'}",
    )
    result = runner.init()
    out = result.output_tail.splitlines()
    assert "TF_IN_AUTOMATION=1" in out  # forced, even over the caller's "0"
    assert "CHECKPOINT_DISABLE=1" in out
    assert "TF_INPUT=0" in out
    assert not any(line.startswith("TF_CLI_ARGS") for line in out)
    assert out[-1] == (
        f"ARGS init -input=false -no-color -plugin-dir={tmp_path / 'plugins'} "
        "-backend-config=path=x.tfstate"
    )


def _fake_binary(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-terraform"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _fake_runner(tmp_path: Path, body: str, *, init_timeout: float = 0.5) -> TerraformRunner:
    return TerraformRunner(
        tmp_path,
        binary=str(_fake_binary(tmp_path, body)),
        lock_timeout_seconds=0,
        timeouts=CommandTimeouts(init=init_timeout),
        grace_seconds=0.3,
        term_grace_seconds=0.3,
    )


def test_stop_escalates_to_sigterm_when_sigint_is_ignored(tmp_path: Path) -> None:
    runner = _fake_runner(tmp_path, "trap '' INT\necho working\nexec sleep 30")
    started = time.monotonic()
    with pytest.raises(TerraformTimeout) as info:
        runner.init()
    assert time.monotonic() - started < 5
    err = info.value
    assert err.signals_sent == ("SIGINT", "SIGTERM")
    assert err.timeout_seconds == 0.5
    assert err.stdout_tail == "working"
    assert "ran longer than 0.5 s" in str(err)
    assert "\n" not in str(err)


def test_stop_uses_sigkill_only_as_last_resort(tmp_path: Path) -> None:
    runner = _fake_runner(tmp_path, "trap '' INT TERM\nexec sleep 30")
    started = time.monotonic()
    with pytest.raises(TerraformTimeout) as info:
        runner.init()
    assert time.monotonic() - started < 5
    assert info.value.signals_sent == ("SIGINT", "SIGTERM", "SIGKILL")


def test_cancel_before_a_command_refuses_to_start_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    runner = _fake_runner(tmp_path, f"touch {marker}")
    runner.cancel()
    assert runner.cancelled
    with pytest.raises(TerraformCancelled, match="not started") as info:
        runner.init()
    assert info.value.signals_sent == ()
    assert not marker.exists()
    runner.reset_cancel()
    runner.init()
    assert marker.exists()


def test_keyboard_interrupt_stops_the_child_gracefully(tmp_path: Path) -> None:
    """Ctrl-C reaches only forescale (terraform has its own session): pass it on as SIGINT."""
    marker = tmp_path / "got-sigint"
    runner = _fake_runner(
        tmp_path, f"trap 'echo yes > {marker}; exit 130' INT\nsleep 30 &\nwait", init_timeout=30
    )
    # A shell that starts a job in the background (CI, `cmd &`) leaves SIGINT ignored, and
    # then interrupt_main() does nothing: install Python's handler for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.init()
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 5
    assert marker.read_text() == "yes\n"


def test_failure_keeps_only_the_tail(tmp_path: Path) -> None:
    runner = _fake_runner(
        tmp_path,
        'i=0; while [ $i -lt 100 ]; do echo "line $i"; echo "err $i" >&2; i=$((i+1)); done\n'
        'echo "Error: Something broke" >&2; exit 1',
    )
    with pytest.raises(TerraformError) as info:
        runner.init()
    err = info.value
    assert str(err) == "fake-terraform init failed (exit 1): Something broke"
    assert err.returncode == 1
    assert err.cmd[1:] == ("init", "-input=false", "-no-color")
    assert len(err.stderr.splitlines()) == 40
    assert err.stderr.splitlines()[-1] == "Error: Something broke"
    assert err.stdout_tail.splitlines()[0] == "line 60"


# --------------------------------------------------------------------------- real terraform


@external
def test_version_is_read(terraform_version: tuple[int, int, int]) -> None:
    assert terraform_version >= (1, 0, 0)


@external
def test_plan_without_changes_exits_0_and_is_not_applied(any_workspace: Workspace) -> None:
    ws = any_workspace
    ws.bootstrap(capacity=2)
    ws.write_vars(web_capacity=2)
    runner = ws.runner()
    with runner.plan(out_dir=ws.dir.parent) as plan:
        assert not plan.has_changes
        assert plan.plan_json["format_version"].split(".")[0] in {"0", "1"}
        verdict = check_plan(plan.plan_json, allowed_addresses=["*"], expected_change=False)
        assert verdict.ok, verdict.reasons
        assert verdict.summary == "0 to update, 0 to create, 0 to destroy"
        result = runner.apply(plan, guard=guard_for(ws, expected_change=False))
    assert result == ApplyResult(
        applied=False,
        replanned=False,
        guard=verdict,
        cmd=(),
        returncode=None,
        output_tail="",
        stderr_tail="",
        duration_seconds=0.0,
    )


@external
def test_update_is_accepted_applied_and_recorded(data_workspace: Workspace) -> None:
    ws = data_workspace
    ws.bootstrap(capacity=2)
    ws.write_vars(web_capacity=5)
    runner = ws.runner()
    plans = ws.dir.parent / "plans"
    plans.mkdir()
    with runner.plan(out_dir=plans) as plan:
        private = plan.plan_file.parent
        assert plan.plan_file.is_file()
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert plan.has_changes
        verdict = check_plan(plan.plan_json, allowed_addresses=["terraform_data.web_asg"])
        assert verdict.ok, verdict.reasons
        assert verdict.summary == (
            "1 to update (terraform_data.web_asg), 0 to create, 0 to destroy; "
            "outputs changed: web_capacity: 2 -> (known after apply)"
        )
        assert verdict.changes[0].changed_attributes == ("input", "output")
        result = runner.apply(plan, guard=guard_for(ws))
    assert not private.exists()
    assert list(plans.iterdir()) == []
    assert result.applied and not result.replanned
    assert result.returncode == 0
    assert result.cmd[1:4] == ("apply", "-input=false", "-no-color")
    assert result.cmd[-1] == str(plan.plan_file)
    assert "Apply complete! Resources: 0 added, 1 changed, 0 destroyed." in result.output_tail
    assert ws.capacity() == "5"
    shown = json.loads(ws.terraform("show", "-json").stdout)
    assert shown["values"]["outputs"]["web_capacity"]["value"] == 5


@external
def test_scaler_var_file_wins_because_it_is_passed_last(any_workspace: Workspace) -> None:
    ws = any_workspace
    ws.bootstrap(capacity=2)
    (ws.dir / "terraform.tfvars").write_text("web_capacity = 1\n")
    (ws.dir / "prod.tfvars").write_text("web_capacity = 3\n")
    ws.write_vars("zz-scaler.auto.tfvars.json", web_capacity=7)

    # The trap: with the scaler's value only in an *.auto.tfvars file, the user's
    # -var-file silently overrides it.
    trapped = ws.runner(var_files=["prod.tfvars"], scaler_var_file=None)
    with trapped.plan() as plan:
        assert plan.plan_json["variables"]["web_capacity"]["value"] == 3
    # Passed explicitly and last, the scaler's file wins.
    runner = ws.runner(var_files=["prod.tfvars"], scaler_var_file="zz-scaler.auto.tfvars.json")
    with runner.plan() as plan:
        assert plan.plan_json["variables"]["web_capacity"]["value"] == 7


@external
def test_replacement_is_refused_and_never_applied(null_workspace: Workspace) -> None:
    ws = null_workspace
    ws.bootstrap(capacity=2)
    before = ws.instance()
    ws.write_vars(web_capacity=5)
    runner = ws.runner()
    strict = functools.partial(check_plan, allowed_addresses=["null_resource.web_asg"])
    with runner.plan() as plan:
        assert plan.has_changes
        verdict = strict(plan.plan_json)
        assert not verdict.ok
        (reason,) = verdict.reasons
        assert reason.startswith("null_resource.web_asg would be replaced")
        assert "allow_replace=False" in reason
        assert "triggers" in reason
        assert verdict.summary.startswith(
            "0 to update, 0 to create, 0 to destroy, 1 to replace (null_resource.web_asg)"
        )
        with pytest.raises(PlanRefused, match="would be replaced") as info:
            runner.apply(plan, guard=strict)
        assert info.value.reasons == verdict.reasons
    # terraform apply never ran: same resource, same trigger, no provisioner marker.
    assert ws.instance() == before
    assert ws.capacity() == "2"
    assert not (ws.dir / "provisioning-5").exists()


@external
def test_no_change_when_one_was_expected_is_refused(any_workspace: Workspace) -> None:
    """lifecycle.ignore_changes swallows forescale's new value: refuse and say why."""
    ws = any_workspace
    rtype, name = ws.address.split(".")
    header = f'resource "{rtype}" "{name}" {{\n'
    attribute = "input" if rtype == "terraform_data" else "triggers"
    main = ws.dir / "main.tf"
    assert header in main.read_text()
    main.write_text(
        main.read_text().replace(
            header, f"{header}  lifecycle {{\n    ignore_changes = [{attribute}]\n  }}\n\n"
        )
    )
    ws.bootstrap(capacity=2)
    ws.write_vars(web_capacity=9)
    runner = ws.runner()
    with runner.plan() as plan:
        verdict = guard_for(ws)(plan.plan_json)
        assert not verdict.ok
        (reason,) = verdict.reasons
        assert "changes no resources although forescale expected a change" in reason
        assert "lifecycle.ignore_changes" in reason
        assert "second controller" in reason
        assert "variable the module does not use" in reason
        with pytest.raises(PlanRefused, match="ignore_changes"):
            runner.apply(plan, guard=guard_for(ws))
    assert ws.capacity() == "2"


@external
def test_stale_plan_is_planned_again_once_and_applied(any_workspace: Workspace) -> None:
    ws = any_workspace
    ws.bootstrap(capacity=2)
    ws.write_vars(web_capacity=5)
    runner = ws.runner()
    guard = CountingGuard(**ws.kind.guard_kwargs)
    plans = ws.dir.parent / "plans"
    plans.mkdir()
    with runner.plan(out_dir=plans) as plan:
        # Behind forescale's back: someone applies capacity 3.
        ws.terraform("apply", "-input=false", "-no-color", "-auto-approve", "-var=web_capacity=3")
        assert ws.capacity() == "3"
        result = runner.apply(plan, guard=guard)
        assert [p.name for p in plans.iterdir()] == [plan.plan_file.parent.name]
    assert result.applied and result.replanned
    assert len(guard.seen) == 2  # the stale plan and the fresh one
    assert result.guard is guard.seen[-1]
    assert ws.capacity() == "5"
    assert list(plans.iterdir()) == []


@external
def test_stale_plan_is_not_applied_when_the_fresh_plan_is_refused(
    any_workspace: Workspace,
) -> None:
    """Someone else already set the value: the fresh plan is empty, the guard says so."""
    ws = any_workspace
    ws.bootstrap(capacity=2)
    ws.write_vars(web_capacity=5)
    runner = ws.runner()
    with runner.plan() as plan:
        ws.terraform("apply", "-input=false", "-no-color", "-auto-approve", "-var=web_capacity=5")
        serial = ws.state()["serial"]
        with pytest.raises(PlanRefused, match="second controller"):
            runner.apply(plan, guard=guard_for(ws))
    assert ws.state()["serial"] == serial
    assert ws.capacity() == "5"


@external
def test_a_second_stale_plan_raises_stale_plan(any_workspace: Workspace) -> None:
    """Only one re-plan: if the fresh plan is stale too, StalePlan reaches the caller."""
    ws = any_workspace
    ws.bootstrap(capacity=2)
    ws.write_vars(web_capacity=5)
    runner = ws.runner()
    calls = 0

    def guard(plan_json: Any) -> GuardResult:
        nonlocal calls
        calls += 1
        if calls == 2:  # while the fresh plan is being checked, the state moves again
            ws.terraform(
                "apply", "-input=false", "-no-color", "-auto-approve", "-var=web_capacity=4"
            )
        return guard_for(ws)(plan_json)

    with runner.plan() as plan:
        ws.terraform("apply", "-input=false", "-no-color", "-auto-approve", "-var=web_capacity=3")
        with pytest.raises(StalePlan, match="saved plan is stale") as info:
            runner.apply(plan, guard=guard)
    assert calls == 2
    assert info.value.returncode == 1
    assert "Saved plan is stale" in info.value.stderr
    assert ws.capacity() == "4"


@external
def test_state_lock_names_the_holder_and_a_long_timeout_waits(null_workspace: Workspace) -> None:
    ws = null_workspace
    ws.bootstrap(capacity=2)
    holder = ws.popen(
        "apply",
        "-input=false",
        "-no-color",
        "-auto-approve",
        "-var=web_capacity=3",
        "-var=provision_seconds=4",
    )
    try:
        wait_for(
            lambda: (ws.dir / "provisioning-3").exists(), timeout=30, what="the holder's apply"
        )
        lock = json.loads(ws.lock_file.read_text())

        ws.write_vars(web_capacity=4)
        impatient = ws.runner(lock_timeout_seconds=0.5)
        # It gave up on the lock: had it waited for the holder, it would have planned.
        with pytest.raises(StateLocked) as info:
            impatient.plan()
        err = info.value
        assert err.lock_id == lock["ID"]
        assert err.who == lock["Who"]
        assert err.operation == "OperationTypeApply"
        assert err.lock_path is not None and err.lock_path.endswith("terraform.tfstate")
        assert err.created
        assert lock["Who"] in str(err) and lock["ID"] in str(err)
        assert "\n" not in str(err)
        assert err.returncode == 1
        assert "-lock-timeout=500ms" in err.cmd

        patient = ws.runner(lock_timeout_seconds=30)
        with patient.plan() as plan:  # waits for the holder, then plans against its state
            assert holder.poll() is not None
            result = patient.apply(plan, guard=guard_for(ws))
        assert result.applied
    finally:
        if holder.poll() is None:
            holder.terminate()
        holder.communicate(timeout=30)
    assert holder.returncode == 0
    assert ws.capacity() == "4"


@external
def test_cancel_interrupts_apply_with_sigint_and_releases_the_lock(
    null_workspace: Workspace,
) -> None:
    ws = null_workspace
    ws.bootstrap(capacity=2)
    ws.write_vars(web_capacity=3, provision_seconds=30)
    grace = 20.0
    runner = ws.runner(grace_seconds=grace)
    outcome: list[BaseException | ApplyResult] = []

    def apply_in_thread(plan: PlanResult) -> None:
        try:
            outcome.append(runner.apply(plan, guard=guard_for(ws)))
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    with runner.plan() as plan:
        worker = threading.Thread(target=apply_in_thread, args=(plan,))
        worker.start()
        wait_for(lambda: (ws.dir / "provisioning-3").exists(), timeout=30, what="the apply")
        assert ws.lock_file.exists()
        started = time.monotonic()
        runner.cancel()  # as the daemon's SIGTERM handler would
        worker.join(timeout=grace + 10)
        elapsed = time.monotonic() - started
    assert not worker.is_alive()
    assert elapsed < grace  # Terraform stopped on SIGINT, before any escalation
    (err,) = outcome
    assert isinstance(err, TerraformCancelled)
    assert err.signals_sent == ("SIGINT",)
    assert err.returncode == 1
    assert "Interrupt received" in err.stdout_tail
    assert not ws.lock_file.exists()
    # Terraform recorded the interrupted create as tainted (not lost, not untracked).
    assert ws.instance()["status"] == "tainted"

    with pytest.raises(TerraformCancelled):
        runner.plan()
    runner.reset_cancel()
    with ws.runner(lock_timeout_seconds=0).plan() as plan:
        assert plan.has_changes
        verdict = check_plan(plan.plan_json, allowed_addresses=[ws.address])
        assert any("replaced" in r for r in verdict.reasons)


@external
def test_timeout_stops_terraform_and_keeps_the_tail(
    null_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The apply's time limit passes while the provisioner sleeps: SIGINT alone stops it.

    Terraform needs a varying time to reach the provisioner (seconds, on a loaded machine),
    so a short real limit could fire before it. Instead the runner's clock (the one the
    limit is measured on, nothing else) jumps an hour ahead once the provisioner has
    written its marker: the limit passes exactly while the provisioner runs, and never
    before.
    """
    ws = null_workspace
    ws.bootstrap(capacity=2)
    ws.write_vars(web_capacity=6, provision_seconds=300)
    marker = ws.dir / "provisioning-6"
    runner = ws.runner(lock_timeout_seconds=1, timeouts=CommandTimeouts(plan=60, show=30, apply=60))
    with monkeypatch.context() as clock:
        clock.setattr(
            process, "_clock", lambda: time.monotonic() + (3600.0 if marker.exists() else 0.0)
        )
        with runner.plan() as plan, pytest.raises(TerraformTimeout) as info:
            runner.apply(plan, guard=guard_for(ws))
    assert marker.exists()
    err = info.value
    assert err.signals_sent == ("SIGINT",)
    assert err.timeout_seconds == 60
    assert str(err).startswith(f"{Path(ws.binary).name} apply ran longer than 60 s")
    assert "sleep 300" in err.stdout_tail
    assert "Interrupt received" in err.stdout_tail
    assert err.stdout_tail.count("\n") < 40
    assert not ws.lock_file.exists()
    with ws.runner(lock_timeout_seconds=0).plan() as plan:  # the state is usable again
        assert plan.has_changes


@external
def test_plan_error_carries_command_and_tail(any_workspace: Workspace) -> None:
    ws = any_workspace
    ws.bootstrap(capacity=2)
    ws.write_vars(web_capacity="lots")
    plans = ws.dir.parent / "plans"
    plans.mkdir()
    with pytest.raises(TerraformError) as info:
        ws.runner().plan(out_dir=plans)
    err = info.value
    assert type(err) is TerraformError
    assert err.returncode == 1
    assert err.cmd[1] == "plan"
    assert "-detailed-exitcode" in err.cmd
    assert err.cmd[-1] == f"-var-file={ws.dir / SCALER_FILE}"
    assert "Invalid value for input variable" in str(err) or "Invalid value" in err.stderr
    assert "\n" not in str(err)
    assert list(plans.iterdir()) == []  # the private plan directory was removed


@external
def test_plan_result_deletes_its_private_directory(null_workspace: Workspace) -> None:
    ws = null_workspace
    ws.bootstrap(capacity=2)
    ws.write_vars(web_capacity=2)
    plan = ws.runner().plan(out_dir=ws.dir.parent)
    private = plan.plan_file.parent
    assert private.parent == ws.dir.parent
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert sorted(p.name for p in private.iterdir()) == [LOCK_NAME, plan.plan_file.name]
    assert "plan_json" not in repr(plan)
    plan.discard()
    plan.discard()
    assert not private.exists()
    with pytest.raises(ValueError, match="discarded"):
        ws.runner().apply(
            PlanResult(
                plan_file=plan.plan_file,
                has_changes=True,
                plan_json=plan.plan_json,
                cmd=plan.cmd,
                output_tail="",
                duration_seconds=0,
            ),
            guard=guard_for(ws, expected_change=False),
        )
