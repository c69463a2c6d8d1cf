"""`forescale apply` with a real terraform: raise applied, refusals restore the file,
failures are retried, a crash between write and apply recovers, and runs are idempotent."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forescale.config.settings import load_settings
from forescale.forecaster.candidates import CandidateSet
from forescale.store import Store
from forescale.usecases.apply import apply_due
from forescale.usecases.collect import collect_all
from forescale.usecases.context import App, default_runner
from forescale.usecases.plan import plan_all
from tests.fakes import FAST, seasonal_naive
from tests.forescale.tf_project import (
    HOOK_TF,
    MAIN_TF,
    NOW,
    REPLACE_TF,
    TFVARS,
    isolated_terraform,  # noqa: F401 - an autouse fixture
    make_project,
    records,
    state_values,
    terraform,
)

pytestmark = pytest.mark.external_service


def run_apply(root: Path, *, now: dt.datetime = NOW, **kwargs: object) -> list:
    settings = load_settings(root / "forescale.yaml")
    store = Store.open(settings.store_url)
    try:
        collect_all(settings, store)
        runner = kwargs.pop("runner_factory", default_runner)
        app = App(settings=settings, store=store, candidates=FAST, runner_factory=runner)  # type: ignore[arg-type]
        return apply_due(app, now=now, **kwargs)  # type: ignore[arg-type]
    finally:
        store.close()


def test_a_due_raise_is_applied_visible_in_state_and_applied_once(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    [outcome] = run_apply(root)
    assert outcome.status == "applied", outcome.message
    assert (outcome.from_units, outcome.to_units) == (4, 11)  # 1000 req/s * 1.1 band / 100
    assert state_values(root / "tf")["terraform_data.web_asg"]["input"]["min_size"] == 11
    assert (root / "tf" / "terraform.tfvars").read_bytes() == TFVARS.replace(
        b"web_min_size = 4 #", b"web_min_size = 11 #"
    )
    # Same minute again: nothing is due any more, nothing is applied twice.
    [again] = run_apply(root, now=NOW + dt.timedelta(seconds=20))
    assert again.status == "nothing-due"
    [record] = records(root)
    assert record.status == "applied" and record.exit_code == 0
    assert record.plan_summary.startswith("1 to update (terraform_data.web_asg)")
    assert record.trigger == "cli" and "needs 11 units" in record.reason


def test_a_plan_that_would_replace_is_refused_and_the_file_restored(tmp_path: Path) -> None:
    root = make_project(tmp_path, main_tf=REPLACE_TF)
    before = state_values(root / "tf")
    [outcome] = run_apply(root)
    assert outcome.status == "refused"
    assert any("replace" in r for r in outcome.reasons), outcome.reasons
    assert (root / "tf" / "terraform.tfvars").read_bytes() == TFVARS  # byte for byte
    assert state_values(root / "tf") == before  # never applied
    [record] = records(root)
    assert record.status == "refused" and record.guard_reasons


def test_terraform_failure_is_recorded_and_the_next_run_retries(tmp_path: Path) -> None:
    root = make_project(tmp_path, main_tf=MAIN_TF + HOOK_TF, allow_replace=True)
    (root / "tf" / "FAIL").write_text("make the provisioner fail")
    [failed] = run_apply(root)
    assert failed.status == "failed" and "terraform failed; will retry" in failed.message
    [record] = records(root)
    assert record.status == "failed" and record.exit_code == 1 and record.output_tail
    assert b"web_min_size = 11" in (root / "tf" / "terraform.tfvars").read_bytes()

    (root / "tf" / "FAIL").unlink()
    [retried] = run_apply(root, now=NOW + dt.timedelta(minutes=5))
    assert retried.status == "applied"
    assert state_values(root / "tf")["terraform_data.web_asg"]["input"]["min_size"] == 11
    # The audit is append-only: the retry is its own record, linked to the failure it retries.
    retry, failure = records(root)
    assert (retry.id, retry.retry_of, retry.status) == (retried.change_id, record.id, "applied")
    assert failure.status == "failed" and failure.message == record.message


class Crash(BaseException):
    """Stands in for the process being killed."""


def test_a_crash_between_writing_and_applying_recovers_on_the_next_run(tmp_path: Path) -> None:
    root = make_project(tmp_path)

    def dies(*args: object) -> object:
        raise Crash

    with pytest.raises(Crash):
        run_apply(root, runner_factory=dies)
    assert b"web_min_size = 11" in (root / "tf" / "terraform.tfvars").read_bytes()
    assert state_values(root / "tf")["terraform_data.web_asg"]["input"]["min_size"] == 4
    [record] = records(root)
    assert record.status == "interrupted"  # an exception that stops the run is recorded

    [resumed] = run_apply(root, now=NOW + dt.timedelta(minutes=1), runner_factory=default_runner)
    assert resumed.status == "applied"
    assert state_values(root / "tf")["terraform_data.web_asg"]["input"]["min_size"] == 11
    retry, crashed = records(root)
    assert (retry.retry_of, retry.status) == (record.id, "applied")
    assert crashed.status == "interrupted"


def test_plan_mode_changes_nothing_real(tmp_path: Path) -> None:
    root = make_project(tmp_path, mode="plan")
    before = state_values(root / "tf")
    [outcome] = run_apply(root)
    assert outcome.status == "plan-ok", outcome.message
    assert "1 to update (terraform_data.web_asg)" in outcome.plan_summary
    assert (root / "tf" / "terraform.tfvars").read_bytes() == TFVARS
    assert state_values(root / "tf") == before


def test_dry_run_mode_only_reports(tmp_path: Path) -> None:
    root = make_project(tmp_path, mode="dry-run")
    [outcome] = run_apply(root)
    assert outcome.status == "dry-run" and outcome.to_units == 11
    assert (root / "tf" / "terraform.tfvars").read_bytes() == TFVARS
    assert records(root) == []


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30
    ).stdout


def test_commit_mode_makes_exactly_one_commit_with_only_the_variable_line(
    tmp_path: Path,
) -> None:
    """One commit: the variable line and the proposal FORESCALE_PR.md beside it, nothing else."""
    root = make_project(tmp_path, mode="commit")
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("state/\n.terraform/\n*.tfstate*\n.terraform.lock.hcl\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "infra")
    head = git(root, "rev-parse", "HEAD").strip()
    before = state_values(root / "tf")

    [outcome] = run_apply(root)
    assert outcome.status == "committed", outcome.message
    [record] = records(root)
    assert record.commit_sha and record.status == "committed"
    assert git(root, "rev-list", "--count", f"{head}..forescale/web").strip() == "1"
    assert git(root, "diff", "--name-only", head, "forescale/web").split() == [
        "tf/FORESCALE_PR.md",
        "tf/terraform.tfvars",
    ]
    assert _changed(git(root, "diff", head, "forescale/web", "--", "tf/terraform.tfvars")) == [
        "-web_min_size = 4 # raised before peaks",  # text mode reads CRLF as LF
        "+web_min_size = 11 # raised before peaks",
    ]
    proposal = git(root, "show", "forescale/web:tf/FORESCALE_PR.md")
    assert proposal.startswith("# forescale: web: raise 4 \u2192 11 units at ")
    assert "-web_min_size = 4 # raised before peaks" in proposal  # the diff
    assert "+web_min_size = 11 # raised before peaks" in proposal
    for part in (
        "## Why",
        "Forecast peaks:",
        "```mermaid\n",
        "xychart-beta",
        "## Capacity schedule",
    ):
        assert part in proposal, part
    assert f"- Forecast run: #{record.forecast_run_id} " in proposal
    assert "Recent record (the last 14 days of stored demand" in proposal
    assert "| static peak (" in proposal
    message = git(root, "log", "-1", "--format=%B", "forescale/web")
    assert "web_min_size 4 -> 11" in message and "needs 11 units" in message
    assert "FORESCALE_PR.md beside terraform.tfvars" in message
    assert len(message.strip().splitlines()) <= 8  # short: the description is in the file
    # forescale does not apply in commit mode, and the checkout is untouched.
    assert git(root, "rev-parse", "HEAD").strip() == head
    assert git(root, "status", "--porcelain") == ""
    assert (root / "tf" / "terraform.tfvars").read_bytes() == TFVARS
    assert not (root / "tf" / "FORESCALE_PR.md").exists()
    assert state_values(root / "tf") == before

    # The next run proposes nothing new while the branch awaits its merge.
    [again] = run_apply(root, now=NOW + dt.timedelta(minutes=5))
    assert again.status == "nothing-due" and "awaiting merge" in again.message

    # The PR is closed unmerged and its branch deleted: nothing awaits a merge any more,
    # so the same plan is proposed again (it said "awaiting merge" for ever).
    git(root, "branch", "-D", "forescale/web")
    [anew] = run_apply(root, now=NOW + dt.timedelta(minutes=10))
    assert anew.status == "committed", anew.message
    assert "+web_min_size = 11 # raised before peaks" in _changed(
        git(root, "diff", head, "forescale/web", "--", "tf/terraform.tfvars")
    )


def _changed(diff: str) -> list[str]:
    return [
        line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]


def test_commit_mode_updates_the_open_proposal_on_the_same_branch(tmp_path: Path) -> None:
    """A different plan while the proposal is open: one more commit on the same branch,
    the variable set to the new value there and FORESCALE_PR.md replaced; no new branch."""
    root = make_project(tmp_path, mode="commit")
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("state/\n.terraform/\n*.tfstate*\n.terraform.lock.hcl\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "infra")
    head = git(root, "rev-parse", "HEAD").strip()
    [first] = run_apply(root)
    assert first.status == "committed", first.message
    tip = git(root, "rev-parse", "forescale/web").strip()

    # Each unit now serves twice the demand: 1,000 req/s * 1.1 / 200 -> 6 units.
    settings = root / "forescale.yaml"
    settings.write_text(
        settings.read_text().replace("capacity_per_unit: 100", "capacity_per_unit: 200")
    )
    [second] = run_apply(root, now=NOW + dt.timedelta(minutes=10))
    assert second.status == "committed", second.message
    assert (second.from_units, second.to_units) == (4, 6)

    heads = git(root, "for-each-ref", "--format=%(refname)", "refs/heads").split()
    assert heads == ["refs/heads/forescale/web", "refs/heads/main"]
    assert git(root, "rev-list", "--count", f"{head}..forescale/web").strip() == "2"
    assert git(root, "log", "-1", "--format=%P", "forescale/web").split() == [tip]
    assert git(root, "diff", "--name-only", tip, "forescale/web").split() == [
        "tf/FORESCALE_PR.md",
        "tf/terraform.tfvars",
    ]
    assert _changed(git(root, "diff", tip, "forescale/web", "--", "tf/terraform.tfvars")) == [
        "-web_min_size = 11 # raised before peaks",
        "+web_min_size = 6 # raised before peaks",
    ]
    # Against the base, the open proposal is one line: 4 -> 6.
    assert _changed(git(root, "diff", head, "forescale/web", "--", "tf/terraform.tfvars")) == [
        "-web_min_size = 4 # raised before peaks",
        "+web_min_size = 6 # raised before peaks",
    ]
    proposal = git(root, "show", "forescale/web:tf/FORESCALE_PR.md")
    assert proposal.startswith("# forescale: web: raise 4 \u2192 6 units at ")
    assert "+web_min_size = 6 # raised before peaks" in proposal
    assert "= 11 #" not in proposal  # the old proposal is replaced, not kept
    assert (root / "tf" / "terraform.tfvars").read_bytes() == TFVARS
    assert git(root, "status", "--porcelain") == " M forescale.yaml\n"  # this test's edit


def test_commit_mode_never_overwrites_a_value_someone_set_on_the_open_proposal(
    tmp_path: Path,
) -> None:
    """A reviewer edits the open proposal's branch. Other lines: forescale's next commit
    stacks on top and keeps them. The value itself: forescale steps aside (no commit, no
    audit record) and says why, until the branch is merged or deleted."""
    root = make_project(tmp_path, mode="commit")
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("state/\n.terraform/\n*.tfstate*\n.terraform.lock.hcl\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "infra")
    [first] = run_apply(root)
    assert first.status == "committed", first.message

    def review(edit: Callable[[str], str]) -> str:
        """A commit on forescale/web made by someone else (a worktree of the branch)."""
        tree = tmp_path / "review"
        git(root, "worktree", "add", "-q", str(tree), "forescale/web")
        path = tree / "tf" / "terraform.tfvars"
        path.write_bytes(edit(path.read_bytes().decode()).encode())
        git(tree, "-c", "user.name=r", "-c", "user.email=r@r", "commit", "-qam", "review")
        git(root, "worktree", "remove", str(tree))
        return git(root, "rev-parse", "forescale/web").strip()

    settings = root / "forescale.yaml"
    per_unit = settings.read_text()

    # Another line: stacked on, the reviewer's line kept.
    review(lambda text: text + "# reviewed\n")
    settings.write_text(per_unit.replace("capacity_per_unit: 100", "capacity_per_unit: 200"))
    [second] = run_apply(root, now=NOW + dt.timedelta(minutes=10))
    assert second.status == "committed", second.message
    on_branch = git(root, "show", "forescale/web:tf/terraform.tfvars")
    assert "web_min_size = 6 # raised before peaks" in on_branch and "# reviewed" in on_branch

    # The value: never overwritten.
    tip = review(lambda text: text.replace("web_min_size = 6 ", "web_min_size = 9 "))
    audited = len(records(root))
    settings.write_text(per_unit.replace("capacity_per_unit: 100", "capacity_per_unit: 150"))
    [third] = run_apply(root, now=NOW + dt.timedelta(minutes=20))
    assert third.status == "conflict", third.message
    assert "forescale/web" in third.message and "9" in third.message
    assert "merge or delete the branch" in third.message
    assert git(root, "rev-parse", "forescale/web").strip() == tip
    assert "web_min_size = 9 " in git(root, "show", "forescale/web:tf/terraform.tfvars")
    assert len(records(root)) == audited  # nothing attempted: no audit record
    # ... also while forescale's own plan is what it last committed (it said "awaiting
    # merge" then, hiding the reviewer's value until the plan changed)
    settings.write_text(per_unit.replace("capacity_per_unit: 100", "capacity_per_unit: 200"))
    [same] = run_apply(root, now=NOW + dt.timedelta(minutes=25))
    assert same.status == "conflict", same.message

    # Merged and deleted: forescale proposes again, from the merged value.
    git(root, "merge", "-q", "--ff-only", "forescale/web")
    git(root, "branch", "-q", "-d", "forescale/web")
    settings.write_text(per_unit)  # 11 units needed: a raise from the reviewer's 9
    [fourth] = run_apply(root, now=NOW + dt.timedelta(minutes=30))
    assert fourth.status == "committed", fourth.message
    assert (fourth.from_units, fourth.to_units) == (9, 11)


AUTO_SETTINGS = """
store_url: sqlite:///state/forescale.db
mode: apply
services:
  web:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 100
    min_units: 2
    max_units: 20
    observed_headroom: 0
    iac:
      working_dir: tf
      var_file: prod.tfvars
      address: web_min_size
      write: auto_tfvars
      terraform:
        var_files: [prod.tfvars]   # the team passes -var-file: it would override auto files
        lock_timeout: 5s
        plan_timeout: 60s
        apply_timeout: 60s
"""


def make_auto_project(tmp: Path, main_tf: str = MAIN_TF) -> Path:
    root = make_project(tmp, main_tf=main_tf)
    tf = root / "tf"
    (tf / "terraform.tfvars").rename(tf / "prod.tfvars")
    (root / "forescale.yaml").write_text(AUTO_SETTINGS)
    terraform(tf, "apply", "-input=false", "-auto-approve", "-var-file=prod.tfvars")
    return root


def test_auto_tfvars_mode_owns_its_file_and_passes_it_last(tmp_path: Path) -> None:
    root = make_auto_project(tmp_path)
    tf = root / "tf"
    [outcome] = run_apply(root)
    assert outcome.status == "applied", outcome.message
    auto = tf / "forescale.auto.tfvars.json"
    assert json.loads(auto.read_text()) == {"web_min_size": 11}
    assert (tf / "prod.tfvars").read_bytes() == TFVARS  # the team's file is untouched
    # Applied although -var-file=prod.tfvars (which says 4) is on the command line.
    assert state_values(tf)["terraform_data.web_asg"]["input"]["min_size"] == 11
    [again] = run_apply(root, now=NOW + dt.timedelta(seconds=30))
    assert again.status == "nothing-due"  # current units now read from forescale's file


def test_auto_tfvars_refusal_removes_the_file_it_created(tmp_path: Path) -> None:
    root = make_auto_project(tmp_path, main_tf=REPLACE_TF)
    [outcome] = run_apply(root)
    assert outcome.status == "refused"
    assert not (root / "tf" / "forescale.auto.tfvars.json").exists()
    assert (root / "tf" / "prod.tfvars").read_bytes() == TFVARS


def test_apply_reuses_a_fresh_stored_forecast_instead_of_refitting(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    settings = load_settings(root / "forescale.yaml")
    calls: list[dt.datetime] = []

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(kwargs["now"])  # type: ignore[arg-type]
        return seasonal_naive(*args, **kwargs)  # type: ignore[arg-type]

    store = Store.open(settings.store_url)
    app = App(
        settings=settings, store=store, candidates=CandidateSet(fitters={"prophet": counting})
    )  # type: ignore[dict-item]
    try:
        collect_all(settings, store)
        plan_all(app, now=NOW - dt.timedelta(minutes=10))
        assert len(calls) == 1  # the refit
        [outcome] = apply_due(app, now=NOW, reuse_forecast_for=dt.timedelta(hours=6))
        assert len(calls) == 1  # no second fit: the stored forecast was used
        assert outcome.status == "applied" and outcome.to_units == 11
        apply_due(app, now=NOW + dt.timedelta(hours=7), reuse_forecast_for=dt.timedelta(hours=6))
        assert len(calls) == 2  # too old: fitted again
    finally:
        store.close()


def test_a_failed_plan_mode_run_keeps_its_outcome_when_the_next_run_plans(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path, mode="plan")
    main_tf = root / "tf" / "main.tf"
    good = main_tf.read_text()
    main_tf.write_text(good + "\nthis is not HCL\n")
    [failed] = run_apply(root)
    assert failed.status == "failed"
    main_tf.write_text(good)
    [again] = run_apply(root, now=NOW + dt.timedelta(minutes=5))
    assert again.status == "plan-ok"
    newest, first = records(root)
    assert (first.status, newest.status) == ("failed", "plan-ok")
    assert first.message == failed.message


def test_step_limits_hold_across_apply_runs(tmp_path: Path) -> None:
    """A 25 % lower at 12:00 and another run at 12:05: the second may not lower again until
    the step period (15 min) since the first has passed."""
    root = make_project(tmp_path)
    tfvars = root / "tf" / "terraform.tfvars"
    tfvars.write_bytes(TFVARS.replace(b"web_min_size = 4 #", b"web_min_size = 20 #"))
    config = root / "forescale.yaml"
    config.write_text(config.read_text() + "    max_step_down: 25%\n")
    ds = pd.date_range(NOW - dt.timedelta(days=3), NOW + dt.timedelta(hours=1), freq="5min")
    pd.DataFrame(  # fresh data at every run (each plans from the data before its now)
        {"timestamp": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": np.full(len(ds), 1000.0)}
    ).to_csv(root / "demand.csv", index=False)
    [first] = run_apply(root)
    assert (first.status, first.from_units, first.to_units) == ("applied", 20, 15)
    [soon] = run_apply(root, now=NOW + dt.timedelta(minutes=5))
    assert soon.status == "nothing-due", soon.message  # 15 -> 12 would be -40 % in 15 min
    [later] = run_apply(root, now=NOW + dt.timedelta(minutes=15))
    assert (later.status, later.from_units, later.to_units) == ("applied", 15, 12), later.message
    assert state_values(root / "tf")["terraform_data.web_asg"]["input"]["min_size"] == 12


def test_commit_mode_refuses_an_uncommitted_edit_of_the_managed_value(tmp_path: Path) -> None:
    """The checkout held min 25, uncommitted: forescale planned 25 -> 19 and audited that,
    while its commit on the committed file read 4 -> 19 (or, when the committed file
    already held the value, audited a commit it never made)."""
    root = make_project(tmp_path, mode="commit")
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("state/\n.terraform/\n*.tfstate*\n.terraform.lock.hcl\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "infra")
    tfvars = root / "tf" / "terraform.tfvars"
    tfvars.write_bytes(TFVARS.replace(b"web_min_size = 4 ", b"web_min_size = 25 "))
    audited = len(records(root)) if (root / "state").exists() else 0
    [first] = run_apply(root)
    assert first.status == "conflict", first.message
    assert "web_min_size = 25, not the committed 4: an uncommitted edit" in first.message
    assert git(root, "branch", "--list", "forescale/web").strip() == ""
    assert len(records(root)) == audited  # nothing attempted
    tfvars.write_bytes(TFVARS)  # reverted: the proposal goes ahead
    [second] = run_apply(root, now=NOW + dt.timedelta(minutes=5))
    assert second.status == "committed", second.message
