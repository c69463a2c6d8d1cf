"""Act on the step due now: plan, guard, apply or commit — safely, once, with an audit trail.

The promise: whatever happens mid-run (a crash, a refusal, a terraform failure, a human
editing the file), the variable file, Terraform's state and the audit records end up telling
the same truth, and no human change is overwritten or recorded under forescale's name.

For each selected service, under a per-service lock file, isolated from the others (one
service's error becomes its own ``error`` outcome; the rest go on):

1. **Resume first.** The newest audit record that did not finish is continued from what it
   *recorded*, never from the file as it is now (see :func:`_Service.resume`): a run that
   died mid-way is marked ``interrupted``; a written but unapplied value is retried as a new
   attempt linked by ``retry_of``; a value changed by someone else since forescale wrote it
   is a ``conflict``: forescale drops its stale intent and plans afresh from the value it
   found (so a lowering from a human's 25 follows the scale-in policy as "25 → …").
2. **Plan** the step due now (``at <= now + tolerance``); nothing due: nothing happens.
3. **Record the intent before any write**: old → new, why, and what the file holds (its
   SHA-256 and the value's characters) and will hold after forescale's write.
4. ``apply``: write with compare-and-swap (the file must be exactly what forescale read),
   ``terraform plan -out``, the guard (allowed changes only, and the plan must have been made
   with forescale's value), a second compare-and-swap (the file must still be exactly what
   forescale wrote), then apply exactly the saved plan. A refused plan is never applied:
   forescale's change is undone from the record (byte for byte; or only the value's
   characters when someone edited other lines meanwhile; or not at all when someone changed
   the value itself — a conflict, left as found). A terraform failure leaves the file
   written and the attempt ``failed``: the next run retries it as a new attempt.
   ``plan``: the same on a private copy; nothing real changes. ``commit``: one commit on a
   branch of the IaC repository; nothing applied; a value someone set on the open
   proposal's branch is never overwritten (``conflict`` until the branch is merged or
   deleted). ``dry-run``: report only.

The audit is append-only: every attempt is its own record with its outcome and message; a
retry never overwrites the failure it retries, so ``forescale history`` shows both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forescale.config.settings import ServiceSettings, Settings
from forescale.errors import ForescaleError, PlanRefused, TerraformError, TfvarsConflict
from forescale.forecaster.types import CapacityStep
from forescale.iac_writer import files, scratch
from forescale.iac_writer.guard import GuardResult, check_plan
from forescale.iac_writer.schedule import Entry, ScheduleTarget, entries_for, key_of
from forescale.iac_writer.target import (
    Edit,
    MultiTarget,
    Target,
    Undo,
    UndoResult,
    Written,
    file_kind,
)
from forescale.records import NOT_APPLIED, UNFINISHED, ChangeRecord
from forescale.report.plan_view import ServiceReport
from forescale.store import Store, sqlite_file
from forescale.usecases.context import App, selected, service_target
from forescale.usecases.plan import plan_service, units_of

if TYPE_CHECKING:
    from forescale.iac_writer.gitcommit import ParentFile

__all__ = ["NOT_APPLIED", "ApplyOutcome", "apply_due", "guard_for", "service_lock"]

DUE_TOLERANCE = dt.timedelta(minutes=1)
log = logging.getLogger("forescale.apply")


@dataclass(frozen=True, kw_only=True, slots=True)
class ApplyOutcome:
    """What ``forescale apply`` did for one service (one per audit record it finished; a
    service may have two in one run, e.g. a conflict and then the fresh plan)."""

    service: str
    mode: str
    # nothing-due | dry-run | plan-ok | refused | applied | failed | committed | conflict
    # | superseded | error
    status: str
    message: str
    change_id: int | None = None
    from_units: int | None = None
    to_units: int | None = None
    diff: str = ""
    plan_summary: str = ""
    reasons: tuple[str, ...] = ()
    # from this run's plan (None: not planned, e.g. only an unfinished run was resumed):
    # the units it wants in force now and the lift of the forecast ahead (forecaster.lift)
    desired_units: int | None = None
    lift: float | None = None


def guard_for(
    service: ServiceSettings,
    *,
    expected: Mapping[str, object] | None = None,
    expected_change: bool = True,
) -> Callable[[object], GuardResult]:
    """The plan guard of ``service``; with ``expected`` ({variable address: value}) the
    plan must also have been made with exactly those values. In schedule mode the
    scheduled actions (``iac.schedule.resources``) may be created, updated and destroyed."""
    tf = service.iac.terraform
    scheduled = service.iac.schedule.resources if service.iac.write == "schedule" else ()

    def guard(plan_json: object) -> GuardResult:
        assert isinstance(plan_json, dict)
        return check_plan(
            plan_json,
            allowed_addresses=tf.allowed_addresses,
            expected_change=expected_change,
            allow_create=tf.allow_create,
            allow_delete=tf.allow_delete,
            allow_replace=tf.allow_replace,
            expected_variables=expected,
            schedule_addresses=scheduled,
        )

    return guard


def expected_values(service: ServiceSettings, record: ChangeRecord) -> dict[str, object]:
    """What the plan must have been made with for ``record``: the managed number, or in
    schedule mode the whole schedule forescale wrote."""
    if service.iac.write == "schedule":
        table = json.loads(record.literal_after) if record.literal_after else {}
        return {service.iac.schedule.variable: table}
    target = service_target(service)
    if isinstance(target, MultiTarget):
        return dict(target.expected(record.to_units))
    return {service.iac.address: record.to_units}


@contextlib.contextmanager
def service_lock(settings: Settings, name: str) -> Iterator[None]:
    """An OS file lock per service, so two ``apply`` runs never act at once."""
    db_file = sqlite_file(settings.store_url)
    base = db_file.parent if db_file is not None else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f".forescale-{name}.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def apply_due(
    app: App,
    *,
    now: dt.datetime,
    services: Sequence[str] | None = None,
    trigger: str = "cli",
    reuse_forecast_for: dt.timedelta | None = None,
) -> list[ApplyOutcome]:
    """Apply (or plan, or commit) the step due at ``now`` for each selected service.

    ``reuse_forecast_for``: plan from the newest stored forecast when it is at most this
    old (the daemon passes its refit interval) instead of fitting a new one. A service
    that cannot be handled gets an ``error`` outcome; the others still run."""
    now = now.astimezone(dt.UTC)
    scratch.sweep()  # plan files and copies left by a run that was killed
    outcomes: list[ApplyOutcome] = []
    for name in selected(app.settings, services):
        service = app.service(name)
        run = _Service(
            app=app,
            name=name,
            service=service,
            mode=app.mode_of(name),
            now=now,
            trigger=trigger,
            reuse_forecast_for=reuse_forecast_for,
        )
        try:
            with service_lock(app.settings, name):
                run.go()
        except ForescaleError as exc:
            run.outcomes.append(
                ApplyOutcome(service=name, mode=run.mode, status="error", message=str(exc))
            )
        outcomes.extend(run.outcomes)
    return outcomes


@dataclass
class _Service:
    """One service's apply run: resume what is unfinished, then act on the step due."""

    app: App
    name: str
    service: ServiceSettings
    mode: str
    now: dt.datetime
    trigger: str
    reuse_forecast_for: dt.timedelta | None
    outcomes: list[ApplyOutcome] = field(default_factory=list)
    target: Target = field(init=False)
    _open: ChangeRecord | None = field(default=None, init=False)
    # from this run's plan, for every outcome after it: the units it wants now, the lift
    _desired: int | None = field(default=None, init=False)
    _lift: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.target = service_target(self.service, now=self.now)

    @property
    def store(self) -> Store:
        return self.app.store

    # ------------------------------------------------------------------ the run
    def go(self) -> None:
        pending = self.store.pending_change(self.name)
        fresh = True
        if pending is not None:
            fresh = self.resume(pending)
        if fresh:
            self.fresh(replans=1)

    def resume(self, record: ChangeRecord) -> bool:
        """Continue an unfinished record from what it recorded; True: plan afresh after."""
        assert record.id is not None
        if record.mode != "apply":
            # plan and commit modes never write the working file: nothing to reconcile; a
            # record that already has its outcome (failed) keeps it
            if record.status in ("intent", "written", "undoing"):
                self._close(record, "interrupted", "the run stopped before it finished")
            return True
        written = _written(record, self.target)
        if record.status == "undoing":
            undo = self.target.undo(written)
            self._close(
                record,
                "conflict" if undo.outcome is Undo.CONFLICT else "refused",
                f"{record.message}; finished after a restart: {undo.describe(self.target)}",
            )
            return False
        if record.status in ("intent", "written"):
            doing = "writing" if record.status == "intent" else "planning or applying"
            self._close(
                record,
                "interrupted",
                f"the run stopped while {doing} (the process was killed or the host restarted)",
            )
        if self.mode != "apply":
            self._step_aside(record, written)
            return True
        snap = self.target.read()
        if snap.sha256 == written.sha_before:
            return True  # forescale's value is not in the file (never written, or reverted)
        if snap.sha256 == written.sha_after:
            attempt = self._retry(record, written, note="")
        elif snap.literal == written.literal_after:
            # forescale's value is there but other lines changed: retry on top of them
            data = files.read_bytes(self.target.path, missing_ok=True)
            assert data is not None  # it holds forescale's value
            before = self.target.put(
                data, written.literal_before, file_was_absent=written.sha_before is None
            )
            attempt = self._retry(
                record,
                replace(
                    written,
                    sha_before=files.sha256(before),
                    sha_after=str(snap.sha256),
                ),
                note=f"{self.target.path} changed outside forescale since run #{record.id} "
                "(other lines); forescale's value is still there: retrying on top of it",
            )
        else:
            self._record(
                replace(
                    _copy(record),
                    retry_of=record.id,
                    status="conflict",
                    message=(
                        f"{record.address} was changed outside forescale: run #{record.id} "
                        f"wrote {written.literal_after}, found {snap.literal or 'nothing'}; "
                        "forescale does not write over it and plans afresh from the value found"
                    ),
                    finished_at=self.now,
                ),
                outcome=True,
            )
            return True
        self._terraform(attempt, resumed=True)
        return False

    def fresh(self, *, replans: int) -> None:
        """Plan the step due now and act on it per the service's mode."""
        report = plan_service(self.app, self.name, now=self.now, reuse_for=self.reuse_forecast_for)
        desired = report.plan.desired["units"]
        self._desired = int(desired.iloc[0]) if len(desired) else None
        self._lift = report.lift
        if self.service.iac.write == "schedule":
            self._schedule(report)
            return
        step = report.next_step
        if step is None or step.at > self.now + DUE_TOLERANCE:
            when = "" if step is None else f"; next change at {step.at:%Y-%m-%d %H:%M}Z"
            self._say("nothing-due", f"nothing due now ({report.plan.current_units} units){when}")
            return
        if self.mode == "shadow":
            self._shadow(report, step)
            return
        if self.mode == "dry-run":
            self._say(
                "dry-run",
                f"dry-run: would {step.direction} {step.from_units}→{step.units}",
                from_units=step.from_units,
                to_units=step.units,
                diff=report.change.diff if report.change else "",
            )
            return
        if self.mode == "commit" and (why := self._not_to_propose(step)) is not None:
            self._say(*why)
            return
        edit = self.target.propose(step.units)
        if units_of(edit.before) != step.from_units:
            # the file changed between planning and now (someone is editing it)
            if replans > 0:
                self.fresh(replans=replans - 1)
            else:
                self._say("conflict", f"{self.target.path} keeps changing; not writing now")
            return
        written = edit.written()
        record = self._record(
            self._step_record(
                report,
                step,
                status="intent",
                diff=edit.diff,
                **written.record_fields(),
            )
        )
        with self._attempt(record):
            if self.mode == "plan":
                self._plan_only(record, edit)
            elif self.mode == "commit":
                self._commit(record, edit, report)
            else:
                try:
                    self.target.write(edit)
                except TfvarsConflict as exc:
                    self._close(record, "conflict", f"{exc}; nothing written")
                    if replans > 0:
                        self.fresh(replans=replans - 1)
                    return
                record = self._update(record, status="written")
                self._terraform(record, resumed=False)

    # ------------------------------------------------------------------ shadow mode
    def _shadow(self, report: ServiceReport, step: CapacityStep) -> None:
        """Record what apply would do now, from shadow mode's own capacity; write nothing."""
        message = (
            f"shadow: would {step.direction} {step.from_units}→{step.units} (nothing written; "
            f"the IaC holds {units_of(self.target.read())})"
        )
        self._record(
            self._step_record(
                report,
                step,
                status="shadowed",
                diff=report.change.diff if report.change else "",
                message=message,
                finished_at=self.now,
            ),
            outcome=True,
        )

    def _step_record(
        self, report: ServiceReport, step: CapacityStep, *, status: str, diff: str, **fields: Any
    ) -> ChangeRecord:
        """The audit record of acting on ``step`` of ``report`` in this run's mode."""
        return ChangeRecord(
            service=self.name,
            forecast_run_id=report.forecast_run_id,
            due_at=step.at,
            var_file=str(self.target.path),
            address=self.target.address,
            from_units=step.from_units,
            to_units=step.units,
            direction=step.direction,
            reason=step.reason,
            mode=self.mode,
            status=status,
            diff=diff,
            trigger=self.trigger,
            **fields,
        )

    # ------------------------------------------------------------------ schedule mode
    def _schedule(self, report: ServiceReport) -> None:
        """Write the plan of the horizon as scheduled actions (one apply per refit): only
        when the future entries differ from the file's; the same intent, CAS, guard and
        audit as a single change."""
        assert isinstance(self.target, ScheduleTarget)
        cfg = self.service.iac.schedule
        entries, notes = entries_for(
            [(s.at, s.units) for s in report.plan.steps],
            now=self.now,
            margin=cfg.margin,
            max_entries=cfg.max_entries,
        )
        edit = self.target.propose_entries(entries)
        until = f" until {key_of(entries[-1].start)}" if entries else ""
        if not edit.changed or self.target.up_to_date(entries, after=self.now + cfg.margin):
            self._say("nothing-due", f"schedule up to date: {len(entries)} entries{until}")
            self._warn_if_running_out(entries)
            return
        current = report.plan.current_units
        first = entries[0].units if entries else current
        summary = f"schedule: {len(entries)} entries{until}" + "".join(f"; {n}" for n in notes)
        if self.mode == "dry-run":
            self._say(
                "dry-run", f"dry-run: would write {summary}", from_units=current, diff=edit.diff
            )
            return
        if (edited := self._schedule_edited()) is not None:
            self._say("conflict", edited)
            return
        written = edit.written()
        record = self._record(
            ChangeRecord(
                service=self.name,
                forecast_run_id=report.forecast_run_id,
                due_at=entries[0].start if entries else self.now,
                var_file=str(self.target.path),
                address=cfg.variable,
                from_units=current,
                to_units=first,
                direction="schedule",
                reason=summary,
                mode=self.mode,
                status="intent",
                diff=edit.diff,
                trigger=self.trigger,
                **written.record_fields(),
            )
        )
        with self._attempt(record):
            if self.mode == "plan":
                self._plan_only(record, edit)
            elif self.mode == "commit":
                self._close(record, "refused", "commit mode needs iac.write: in_place")
            else:
                try:
                    self.target.write(edit)
                except TfvarsConflict as exc:
                    self._close(record, "conflict", f"{exc}; nothing written")
                    return
                record = self._update(record, status="written")
                self._terraform(record, resumed=False)

    def _schedule_edited(self) -> str | None:
        """Why the schedule file is not forescale's to rewrite now: it differs from what
        forescale's last applied write left there (someone edited an entry ahead, which a
        rewrite would silently undo). None: it is as forescale left it, or gone."""
        last = next(
            (
                r
                for r in self.store.list_changes(self.name, limit=20)
                if r.status == "applied"
                and r.file_sha_after is not None
                and r.var_file == str(self.target.path)
            ),
            None,
        )
        data = files.read_bytes(self.target.path, missing_ok=True)
        if last is None or data is None or files.sha256(data) == last.file_sha_after:
            return None
        return (
            f"{self.target.path} was changed outside forescale since run #{last.id} wrote "
            "it (an entry edited by hand?); forescale does not write over it: restore the "
            "file, or delete it and forescale writes the plan afresh"
        )

    def _warn_if_running_out(self, entries: Sequence[Entry]) -> None:
        """If forescale stopped now, the cloud would keep executing the written entries;
        warn when the last one is less than ``warn_before`` away."""
        cfg = self.service.iac.schedule
        last = entries[-1].start if entries else None
        if last is None or last - self.now < cfg.warn_before:
            when = "no entries left" if last is None else f"the last entry starts {key_of(last)}"
            log.warning(
                "schedule of %s runs out soon: %s (refits failing?)",
                self.name,
                when,
                extra={"service": self.name},
            )

    # ------------------------------------------------------------------ apply mode
    def _terraform(self, record: ChangeRecord, *, resumed: bool) -> None:
        """Plan, guard, check the file, apply the saved plan; record the outcome. A YAML
        file has no terraform: written is done (a GitOps controller rolls it out)."""
        if not file_kind(self.target.path).runs_terraform:
            self._close(
                record,
                "applied",
                f"wrote {record.from_units}→{record.to_units} to {self.target.path} (a "
                "Kubernetes YAML file: Argo CD, Flux or helm upgrade rolls it out; forescale "
                "runs no terraform for it)",
            )
            return
        with self._attempt(record):
            written = _written(record, self.target)
            runner = self.app.runner_factory(self.service, self.service.iac.working_dir)
            expected = expected_values(self.service, record)
            guard = guard_for(self.service, expected=expected)
            try:
                if self.service.iac.terraform.init:
                    runner.init()
                with runner.plan() as planned:
                    verdict = guard(planned.plan_json)
                    if resumed and not planned.has_changes:
                        settled = guard_for(self.service, expected=expected, expected_change=False)(
                            planned.plan_json
                        )
                        if settled.ok:
                            self._close(
                                record,
                                "applied",
                                f"{record.from_units}→{record.to_units} already in effect "
                                "(terraform plan shows no changes)",
                                plan_summary=settled.summary,
                                exit_code=0,
                            )
                            return
                    if not verdict.ok:
                        self._refuse(record, written, verdict.reasons, verdict.summary)
                        return
                    now_sha = files.sha256(files.read_bytes(self.target.path, missing_ok=True))
                    if now_sha != written.sha_after:
                        undo = self.target.undo(written)
                        self._close(
                            record,
                            "conflict",
                            f"{self.target.path} changed while terraform planned (someone else "
                            "wrote it): the saved plan was not applied; "
                            + undo.describe(self.target),
                            plan_summary=verdict.summary,
                        )
                        return
                    result = runner.apply(planned, guard=guard)
            except PlanRefused as exc:
                self._refuse(record, written, tuple(exc.reasons), exc.summary)
                return
            except TerraformError as exc:
                # The file stays written: the next run retries (a terraform failure is not a
                # reason to revert capacity that may be half-applied).
                self._close(
                    record,
                    "failed",
                    f"terraform failed; will retry: {exc}",
                    exit_code=exc.returncode,
                    output_tail=exc.stderr or exc.stdout_tail,
                )
                return
            self._close(
                record,
                "applied",
                f"applied {record.from_units}→{record.to_units}: {verdict.summary}",
                plan_summary=verdict.summary,
                exit_code=result.returncode,
                output_tail=result.output_tail,
            )

    def _refuse(
        self, record: ChangeRecord, written: Written, reasons: tuple[str, ...], summary: str
    ) -> None:
        """Never apply; undo forescale's change from the record (``undoing`` first, so a
        crash during the undo is finished by the next run)."""
        message = "plan refused: " + "; ".join(reasons)
        record = self._update(
            record, status="undoing", message=message, plan_summary=summary, guard_reasons=reasons
        )
        undo: UndoResult = self.target.undo(written)
        self._close(
            record,
            "refused",
            f"{message}; {_undo_words(undo, self.target)}",
            plan_summary=summary,
            guard_reasons=reasons,
            exit_code=2,
        )

    def _retry(self, record: ChangeRecord, written: Written, *, note: str) -> ChangeRecord:
        return self._record(
            replace(
                _copy(record),
                retry_of=record.id,
                status="written",
                trigger=self.trigger,
                **written.record_fields(),
                message=note or f"retries run #{record.id} ({record.status})",
            )
        )

    def _step_aside(self, record: ChangeRecord, written: Written) -> None:
        """The service is no longer in apply mode: undo forescale's unapplied write."""
        attempt = self._record(
            replace(
                _copy(record),
                retry_of=record.id,
                status="undoing",
                message=f"mode is now {self.mode}: undoing forescale's unapplied write",
            )
        )
        undo = self.target.undo(written)
        self._close(
            attempt,
            "conflict" if undo.outcome is Undo.CONFLICT else "superseded",
            f"{attempt.message}; {undo.describe(self.target)}",
        )

    # ------------------------------------------------------------------ other modes
    def _plan_only(self, record: ChangeRecord, edit: Edit) -> None:
        """Patch a private copy of the working directory and plan there."""
        working = self.service.iac.working_dir
        with scratch.Scratch("copy") as tmp:
            copy = tmp.path / working.name
            shutil.copytree(working, copy, symlinks=True)
            relative = edit.before.path.resolve().relative_to(working.resolve())
            (copy / relative).write_bytes(edit.new_bytes)
            runner = self.app.runner_factory(self.service, copy)
            try:
                if self.service.iac.terraform.init:
                    runner.init()
                with runner.plan() as planned:
                    verdict = guard_for(
                        self.service, expected=expected_values(self.service, record)
                    )(planned.plan_json)
            except TerraformError as exc:
                self._close(
                    record, "failed", str(exc), exit_code=exc.returncode, output_tail=exc.stderr
                )
                return
        self._close(
            record,
            "plan-ok" if verdict.ok else "refused",
            f"plan: {verdict.summary}"
            + ("" if verdict.ok else f"; refused: {'; '.join(verdict.reasons)}"),
            plan_summary=verdict.summary,
            guard_reasons=verdict.reasons,
            exit_code=0,
        )

    def _not_to_propose(self, step: CapacityStep) -> tuple[str, str] | None:
        """Commit mode: the outcome and message of a run that proposes nothing now, else
        None. The branch and its base are read once (``in_place`` files only: the others
        are not edited in a checkout). An uncommitted edit of the managed value first;
        then a reviewer's value on the branch, reported on every run, also while
        forescale's plan is the one it committed last; then that plan awaiting its merge.
        A branch that is gone (the PR closed unmerged, or merged and deleted) awaits
        nothing: forescale proposes again."""
        from forescale.iac_writer.gitcommit import parent_file

        parent = None
        if self.service.iac.write == "in_place":
            branch = self.service.iac.commit_branch.format(service=self.name)
            parent = parent_file(self.target.path, branch=branch)
            if (dirty := self._uncommitted_value(parent)) is not None:
                return "conflict", dirty
        last = _last_committed(self.store, self.name)
        if last is None:
            return None
        if parent is not None and (edited := self._proposal_edited(last, parent)) is not None:
            return "conflict", edited
        if last.to_units == step.units and (parent is None or parent.tip is not None):
            return (
                "nothing-due",
                f"{step.from_units}→{step.units} already committed; awaiting merge",
            )
        return None

    def _uncommitted_value(self, parent: ParentFile) -> str | None:
        """Why not to propose now: the checkout holds a managed value its commit does not
        (an uncommitted edit). forescale plans from the checkout but commits on the
        committed file, so the proposal and its audit would disagree."""
        committed = self.target.snapshot(parent.base_data)
        here = self.target.read()
        if committed.literal == here.literal:
            return None
        return (
            f"{self.target.path} holds {self.target.address} = {here.literal or 'nothing'}, "
            f"not the committed {committed.literal or 'nothing'}: an uncommitted edit; "
            "commit mode proposes on the committed file, so commit or revert the edit first"
        )

    def _proposal_edited(self, last: ChangeRecord, parent: ParentFile) -> str | None:
        """Why the open proposal is not forescale's to change any more (its branch holds
        a value other than the one ``last``, forescale's newest commit, put there: a
        reviewer set it), else None. Other lines changed on the branch do not count:
        forescale's next commit stacks on them and keeps them."""
        if last.literal_after is None or parent.tip is None:  # no proposal open
            return None
        found = self.target.snapshot(parent.data).literal
        if found == last.literal_after:
            return None
        branch = self.service.iac.commit_branch.format(service=self.name)
        return (
            f"{branch} holds {self.target.address} = {found or 'nothing'}, not the "
            f"{last.literal_after} "
            f"forescale committed there ({(last.commit_sha or '')[:12]}): someone changed it "
            "on the branch, and forescale does not overwrite a reviewer's value; merge or "
            "delete the branch and forescale proposes again"
        )

    def _commit(self, record: ChangeRecord, edit: Edit, report: ServiceReport) -> None:
        """One commit on the service's branch: the variable's characters (``edit``, made
        against the checkout: what the PR shows) and the proposal ``FORESCALE_PR.md``
        (from this run's ``report``) beside the file. An open proposal (the branch exists)
        gets one more commit: the value set on the branch's version, the description
        replaced."""
        from zoneinfo import ZoneInfo

        from forescale.iac_writer.gitcommit import (
            ExtraFile,
            ProposedFile,
            commit_change,
            parent_file,
        )
        from forescale.report.plan_view import build_service_view
        from forescale.report.proposal import PROPOSAL_FILE, Proposal, render_proposal
        from forescale.usecases.shadow import RECENT_WINDOW, recent_record

        if self.service.iac.write != "in_place":
            self._close(
                record,
                "refused",
                "commit mode needs iac.write: in_place (the team reviews their own variable file)",
            )
            return
        if not edit.changed:
            self._close(record, "committed", "the variable already holds the target")
            return
        branch = self.service.iac.commit_branch.format(service=self.name)
        # The branch may carry an earlier proposal: set the value's characters on its
        # version (commit_change still checks the branch holds exactly these bytes).
        on_branch = parent_file(edit.before.path, branch=branch).data
        new_bytes = edit.new_bytes
        if files.sha256(on_branch) != edit.before.sha256:
            stacked = self.target.put(on_branch, edit.literal, file_was_absent=False)
            assert stacked is not None  # only forescale's own auto var file is ever removed
            new_bytes = stacked
        change = ProposedFile(
            path=str(edit.before.path),
            address=edit.before.address,
            new_value=edit.units,
            old_sha256=str(files.sha256(on_branch)),
            new_bytes=new_bytes,
        )
        if not change.changed:
            self._close(record, "committed", f"{branch} already proposes {record.to_units}")
            return
        run_id = record.forecast_run_id
        run = self.store.forecast_run(run_id, points=False) if run_id is not None else None
        tz = ZoneInfo(self.app.settings.display_timezone)
        text = render_proposal(
            Proposal(
                view=build_service_view(report, tz),
                timezone=tz,
                made_at=self.now,
                diff=edit.diff,
                mode=self.mode,
                branch=branch,
                live=None if run is None else run.live,
                recent=recent_record(self.app, self.name, now=self.now),
                recent_days=RECENT_WINDOW.days,
            )
        )
        description = edit.before.path.parent / PROPOSAL_FILE
        message = (
            f"forescale: {self.name} {record.address} {record.from_units} -> {record.to_units}"
            f"\n\n{record.reason}\n\nWhy, the forecast and the schedule: {PROPOSAL_FILE} "
            f"beside {edit.before.path.name}. Planned at {self.now:%Y-%m-%d %H:%M}Z (mode "
            "commit); apply through your usual review."
        )
        result = commit_change(
            change,
            branch=branch,
            message=message,
            extra_files=(ExtraFile(path=str(description), data=text.encode("utf-8")),),
        )
        self._close(
            record,
            "committed",
            f"committed {result.commit_sha[:12]} on {result.branch} with {PROPOSAL_FILE}",
            commit_sha=result.commit_sha,
        )

    # ------------------------------------------------------------------ audit records
    @contextlib.contextmanager
    def _attempt(self, record: ChangeRecord) -> Iterator[None]:
        """Whatever stops an attempt, its record gets an outcome: an error is recorded
        (``failed`` once the file is written: the next run retries), an interruption
        (Ctrl-C, SIGTERM) as ``interrupted`` before it propagates."""
        self._open = record
        try:
            yield
        except ForescaleError as exc:
            current = self._open
            if current is not None and current.status in UNFINISHED:
                written = current.status in ("written", "undoing")
                self._close(current, "failed" if written else "error", str(exc))
                return
            raise
        except BaseException:
            current = self._open
            if current is not None and current.status in UNFINISHED:
                with contextlib.suppress(Exception):
                    self._close(current, "interrupted", "interrupted (Ctrl-C or SIGTERM)")
            raise

    def _record(self, record: ChangeRecord, *, outcome: bool = False) -> ChangeRecord:
        change_id = self.store.record_change(record, created_at=self.now)
        saved = replace(record, id=change_id, created_at=self.now)
        if outcome:
            self._report(saved)
        else:
            self._open = saved
        return saved

    def _update(self, record: ChangeRecord, **fields: object) -> ChangeRecord:
        assert record.id is not None
        self.store.update_change(record.id, **fields)
        updated = replace(record, **fields)  # type: ignore[arg-type]
        self._open = updated
        return updated

    def _close(self, record: ChangeRecord, status: str, message: str, **fields: object) -> None:
        """Record the attempt's outcome (once) and report it."""
        done = self._update(
            record, status=status, message=message, finished_at=dt.datetime.now(dt.UTC), **fields
        )
        self._open = None
        self._report(done)

    def _report(self, record: ChangeRecord) -> None:
        self.outcomes.append(
            ApplyOutcome(
                service=self.name,
                mode=record.mode,
                status=record.status,
                message=record.message,
                change_id=record.id,
                from_units=record.from_units,
                to_units=record.to_units,
                diff=record.diff,
                plan_summary=record.plan_summary,
                reasons=record.guard_reasons,
                desired_units=self._desired,
                lift=self._lift,
            )
        )

    def _say(self, status: str, message: str, **fields: object) -> None:
        """An outcome that leaves no audit record (nothing was attempted)."""
        outcome = ApplyOutcome(
            service=self.name,
            mode=self.mode,
            status=status,
            message=message,
            desired_units=self._desired,
            lift=self._lift,
        )
        self.outcomes.append(replace(outcome, **fields))  # type: ignore[arg-type]


def _copy(record: ChangeRecord) -> ChangeRecord:
    """A new record with ``record``'s change facts and no outcome yet."""
    return replace(
        record,
        id=None,
        created_at=None,
        finished_at=None,
        plan_summary="",
        guard_reasons=(),
        exit_code=None,
        output_tail="",
        commit_sha=None,
        message="",
    )


def _written(record: ChangeRecord, target: Target) -> Written:
    """What ``record`` says forescale's write was. Records made before these facts were
    kept (no ``file_sha_after``) assume the file held ``from_units`` before and
    ``to_units`` after, spelled as integers."""
    if record.file_sha_after is not None and record.literal_after is not None:
        return Written(
            sha_before=record.file_sha_before,
            literal_before=record.literal_before,
            sha_after=record.file_sha_after,
            literal_after=record.literal_after,
        )
    return Written(
        sha_before=None,
        literal_before=str(record.from_units),
        sha_after="",
        literal_after=str(record.to_units),
    )


def _undo_words(undo: UndoResult, target: Target) -> str:
    if undo.outcome is Undo.CONFLICT:
        return f"not restored: {undo.describe(target)}"
    return f"variable file {undo.outcome.value}"


def _last_committed(store: Store, name: str) -> ChangeRecord | None:
    """The newest commit forescale made for this service (None: none recently)."""
    return next((r for r in store.list_changes(name, limit=20) if r.status == "committed"), None)
