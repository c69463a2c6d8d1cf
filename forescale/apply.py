"""Act on the step due now: plan, guard, apply or commit — safely, once, with an audit trail.

For each service in mode ``plan``, ``apply`` or ``commit`` (``dry-run`` only reports):

1. Under a per-service lock file, resume an unfinished run (status ``intent``, ``written``
   or ``failed``: a crash or a terraform failure last time) or ask the planner for the
   step due now (``at <= now + tolerance``). Nothing due: nothing happens.
2. Record the *intent* before acting (service, due time, old -> new, why), the outcome
   after. Running twice in the same minute applies once: after the first run the
   variable file holds the new value, so nothing is due any more.
3. ``plan``: patch a private copy of the working directory and run ``terraform plan``
   there; nothing real changes. ``apply``: patch the variable file (atomic,
   compare-and-swap), ``terraform plan``, the plan guard, ``terraform apply`` of the saved
   plan. A refused plan is never applied and the file is restored. A terraform failure
   leaves the file written and the run ``failed``; the next run retries it. ``commit``:
   one commit on a branch of the IaC repository, nothing applied.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from config.settings import ServiceSettings, Settings
from forescale import pipeline
from forescale.errors import ForescaleError, PlanRefused, TerraformError
from forescale.store import ChangeRecord, Store, sqlite_file
from iac_writer.autovars import (
    AutoVarsChange,
    apply_auto_change,
    plan_auto_change,
    restore_auto_change,
)
from iac_writer.guard import GuardResult, check_plan
from iac_writer.terraform import CommandTimeouts, TerraformRunner
from iac_writer.tfvars import TfvarsChange, apply_change, patch

DUE_TOLERANCE = dt.timedelta(minutes=1)

RunnerFactory = Callable[[ServiceSettings, Path], TerraformRunner]


@dataclass(frozen=True, kw_only=True, slots=True)
class ApplyOutcome:
    """What ``forescale apply`` did for one service."""

    service: str
    mode: str
    status: str  # nothing-due | dry-run | plan-ok | refused | applied | failed | committed
    message: str
    change_id: int | None = None
    from_units: int | None = None
    to_units: int | None = None
    diff: str = ""
    plan_summary: str = ""
    reasons: tuple[str, ...] = ()


def default_runner(service: ServiceSettings, working_dir: Path) -> TerraformRunner:
    """A runner configured from the service's ``iac.terraform`` settings."""
    tf = service.iac.terraform
    return TerraformRunner(
        working_dir,
        binary=tf.binary,
        var_files=tuple(str(p) for p in tf.var_files),
        lock_timeout_seconds=tf.lock_timeout.total_seconds(),
        timeouts=CommandTimeouts(
            plan=max(tf.plan_timeout.total_seconds(), tf.lock_timeout.total_seconds() + 60),
            apply=max(tf.apply_timeout.total_seconds(), tf.lock_timeout.total_seconds() + 60),
        ),
        plugin_dirs=tuple(str(p) for p in tf.plugin_dirs),
        backend_config=tuple(tf.backend_config),
        # forescale's own file goes last: a -var-file overrides *.auto.tfvars*
        scaler_var_file=(
            str(service.iac.auto_tfvars_file) if service.iac.write == "auto_tfvars" else None
        ),
    )


def guard_for(service: ServiceSettings) -> Callable[[object], GuardResult]:
    tf = service.iac.terraform

    def guard(plan_json: object) -> GuardResult:
        assert isinstance(plan_json, dict)
        return check_plan(
            plan_json,
            allowed_addresses=tf.allowed_addresses,
            expected_change=True,
            allow_create=tf.allow_create,
            allow_delete=tf.allow_delete,
            allow_replace=tf.allow_replace,
        )

    return guard


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
    settings: Settings,
    store: Store,
    *,
    now: dt.datetime,
    services: Sequence[str] | None = None,
    forecaster: pipeline.Forecaster | None = None,
    runner_factory: RunnerFactory = default_runner,
    trigger: str = "cli",
    reuse_forecast_for: dt.timedelta | None = None,
) -> list[ApplyOutcome]:
    """Apply (or plan, or commit) the step due at ``now`` for each selected service.

    ``reuse_forecast_for``: plan from the newest stored forecast when it is at most this
    old (the daemon passes its refit interval) instead of fitting a new one."""
    now = now.astimezone(dt.UTC)
    fit = forecaster or pipeline.default_forecaster()
    events = pipeline.EventsCache(timezone=settings.display_timezone)
    outcomes = []
    for name in pipeline.selected(settings, services):
        with service_lock(settings, name):
            outcomes.append(
                _apply_service(
                    settings,
                    store,
                    name,
                    now=now,
                    fit=fit,
                    events=events,
                    runner_factory=runner_factory,
                    trigger=trigger,
                    reuse_forecast_for=reuse_forecast_for,
                )
            )
    return outcomes


def _apply_service(
    settings: Settings,
    store: Store,
    name: str,
    *,
    now: dt.datetime,
    fit: pipeline.Forecaster,
    events: pipeline.EventsCache,
    runner_factory: RunnerFactory,
    trigger: str,
    reuse_forecast_for: dt.timedelta | None = None,
) -> ApplyOutcome:
    service = settings.service(name)
    mode = settings.mode_of(service)
    var_file = (
        service.iac.auto_tfvars_path
        if service.iac.write == "auto_tfvars"
        else (service.iac.var_file_path)
    )
    pending = store.pending_change(name) if mode in ("apply", "commit") else None
    if pending is not None:
        change_id, target = pending.id, pending.to_units
        assert change_id is not None
        from_units, reason = pending.from_units, f"resumes run #{change_id}: {pending.reason}"
    else:
        report = pipeline.plan_service(
            settings,
            store,
            name,
            now=now,
            events=events,
            forecaster=fit,
            record_plan=False,
            reuse_forecast_for=reuse_forecast_for,
        )
        step = report.next_step
        if step is None or step.at > now + DUE_TOLERANCE:
            when = "" if step is None else f"; next change at {step.at:%Y-%m-%d %H:%M}Z"
            return ApplyOutcome(
                service=name,
                mode=mode,
                status="nothing-due",
                message=f"nothing due now ({report.plan.current_units} units){when}",
            )
        if mode == "dry-run":
            return ApplyOutcome(
                service=name,
                mode=mode,
                status="dry-run",
                message=f"dry-run: would {step.direction} {step.from_units}→{step.units}",
                from_units=step.from_units,
                to_units=step.units,
                diff=report.change.diff if report.change else "",
            )
        if mode == "commit" and _already_proposed(store, name, step.units):
            return ApplyOutcome(
                service=name,
                mode=mode,
                status="nothing-due",
                message=f"{step.from_units}→{step.units} already committed; awaiting merge",
            )
        target, from_units, reason = step.units, step.from_units, step.reason
        change_id = store.record_change(
            ChangeRecord(
                service=name,
                forecast_run_id=report.forecast_run_id,
                due_at=step.at,
                var_file=str(var_file),
                address=service.iac.address,
                from_units=step.from_units,
                to_units=step.units,
                direction=step.direction,
                reason=step.reason,
                mode=mode,
                status="intent",
                diff=report.change.diff if report.change else "",
                trigger=trigger,
            ),
            created_at=now,
        )
    edit = _edit_for(service, target)
    base = ApplyOutcome(
        service=name,
        mode=mode,
        status="",
        message="",
        change_id=change_id,
        from_units=from_units,
        to_units=target,
        diff=edit.diff,
    )
    if mode == "plan":
        return _plan_only(store, service, base, edit, runner_factory)
    if mode == "commit":
        return _commit(store, service, base, edit, reason=reason, now=now)
    return _apply(store, service, base, edit, runner_factory)


def _already_proposed(store: Store, name: str, units: int) -> bool:
    """Commit mode: the newest commit for this service already proposes ``units``."""
    for record in store.list_changes(name, limit=20):
        if record.status == "committed":
            return record.to_units == units
    return False


def _finish(
    store: Store, base: ApplyOutcome, status: str, message: str, **extra: object
) -> ApplyOutcome:
    assert base.change_id is not None
    fields = {
        k: v
        for k, v in extra.items()
        if k in {"plan_summary", "guard_reasons", "exit_code", "output_tail", "commit_sha"}
    }
    store.update_change(
        base.change_id, status=status, finished_at=dt.datetime.now(dt.UTC), **fields
    )
    raw_reasons = extra.get("guard_reasons", ())
    reasons = tuple(str(r) for r in raw_reasons) if isinstance(raw_reasons, tuple) else ()
    return ApplyOutcome(
        service=base.service,
        mode=base.mode,
        status=status,
        message=message,
        change_id=base.change_id,
        from_units=base.from_units,
        to_units=base.to_units,
        diff=base.diff,
        plan_summary=str(extra.get("plan_summary", "")),
        reasons=reasons,
    )


def _plan_only(
    store: Store,
    service: ServiceSettings,
    base: ApplyOutcome,
    edit: _Edit,
    runner_factory: RunnerFactory,
) -> ApplyOutcome:
    """Patch a private copy of the working directory and plan there."""
    working = service.iac.working_dir
    with tempfile.TemporaryDirectory(prefix="forescale-plan-") as tmp:
        copy = Path(tmp) / working.name
        shutil.copytree(working, copy, symlinks=True)
        relative = edit.path.resolve().relative_to(working.resolve())
        (copy / relative).write_bytes(edit.change.new_bytes)
        runner = runner_factory(service, copy)
        try:
            if service.iac.terraform.init:
                runner.init()
            with runner.plan() as planned:
                verdict = guard_for(service)(planned.plan_json)
        except TerraformError as exc:
            return _finish(
                store, base, "failed", str(exc), exit_code=exc.returncode, output_tail=exc.stderr
            )
    status = "plan-ok" if verdict.ok else "refused"
    return _finish(
        store,
        base,
        status,
        f"plan: {verdict.summary}"
        + ("" if verdict.ok else f"; refused: {'; '.join(verdict.reasons)}"),
        plan_summary=verdict.summary,
        guard_reasons=verdict.reasons,
        exit_code=0,
    )


def _commit(
    store: Store,
    service: ServiceSettings,
    base: ApplyOutcome,
    edit: _Edit,
    *,
    reason: str,
    now: dt.datetime,
) -> ApplyOutcome:
    from iac_writer.gitcommit import commit_change

    change = edit.change
    if isinstance(change, AutoVarsChange):
        return _finish(
            store,
            base,
            "refused",
            "commit mode needs iac.write: in_place (the team reviews their own variable file)",
        )

    branch = service.iac.commit_branch.format(service=base.service)
    message = (
        f"forescale: {base.service} {service.iac.address} {base.from_units} -> {base.to_units}\n\n"
        f"{reason}\n\nPlanned at {now:%Y-%m-%d %H:%M}Z by forescale (mode commit); "
        "apply through your usual review."
    )
    if not change.changed:
        return _finish(store, base, "committed", "the variable already holds the target")
    result = commit_change(change, branch=branch, message=message)
    return _finish(
        store,
        base,
        "committed",
        f"committed {result.commit_sha[:12]} on {result.branch}",
        commit_sha=result.commit_sha,
    )


def _apply(
    store: Store,
    service: ServiceSettings,
    base: ApplyOutcome,
    edit: _Edit,
    runner_factory: RunnerFactory,
) -> ApplyOutcome:
    assert base.change_id is not None
    edit.write()  # no-op when a crashed run already wrote it
    store.update_change(base.change_id, status="written")
    runner = runner_factory(service, service.iac.working_dir)
    guard = guard_for(service)
    try:
        if service.iac.terraform.init:
            runner.init()
        with runner.plan() as planned:
            verdict = guard(planned.plan_json)
            if not verdict.ok:
                edit.restore()
                return _finish(
                    store,
                    base,
                    "refused",
                    "plan refused, variable file restored: " + "; ".join(verdict.reasons),
                    plan_summary=verdict.summary,
                    guard_reasons=verdict.reasons,
                    exit_code=2,
                )
            result = runner.apply(planned, guard=guard)
    except PlanRefused as exc:
        edit.restore()
        return _finish(
            store,
            base,
            "refused",
            f"plan refused, variable file restored: {exc}",
            guard_reasons=tuple(exc.reasons),
            plan_summary=exc.summary,
        )
    except TerraformError as exc:
        # The file stays written: the next run retries (a terraform failure is not a reason
        # to revert capacity that may be half-applied).
        return _finish(
            store,
            base,
            "failed",
            f"terraform failed; will retry: {exc}",
            exit_code=exc.returncode,
            output_tail=exc.stderr or exc.stdout_tail,
        )
    return _finish(
        store,
        base,
        "applied",
        f"applied {base.from_units}→{base.to_units}: {verdict.summary}",
        plan_summary=verdict.summary,
        exit_code=result.returncode,
        output_tail=result.output_tail,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class _Edit:
    """The file change of one run, whichever way the service writes (in place or auto)."""

    change: TfvarsChange | AutoVarsChange
    path: Path
    original: bytes | None  # None: forescale's auto file did not exist yet

    @property
    def diff(self) -> str:
        return self.change.diff

    def write(self) -> None:
        if isinstance(self.change, AutoVarsChange):
            apply_auto_change(self.change)
        else:
            apply_change(self.change)

    def restore(self) -> None:
        if isinstance(self.change, AutoVarsChange):
            restore_auto_change(self.change)
        else:
            assert self.original is not None
            _restore(self.path, self.change, self.original)


def _edit_for(service: ServiceSettings, units: int) -> _Edit:
    iac = service.iac
    if iac.write == "auto_tfvars":
        auto = plan_auto_change(iac.auto_tfvars_path, iac.address, units)
        return _Edit(change=auto, path=iac.auto_tfvars_path, original=auto.old_bytes)
    original = iac.var_file_path.read_bytes()
    change = patch(original, iac.address, units, filename=str(iac.var_file_path))
    return _Edit(change=change, path=iac.var_file_path, original=original)


def _restore(path: Path, change: TfvarsChange, original: bytes) -> None:
    """Put the variable file back as it was, unless someone changed it since (CAS)."""
    current = path.read_bytes()
    if hashlib.sha256(current).hexdigest() != hashlib.sha256(change.new_bytes).hexdigest():
        raise ForescaleError(
            f"{path}: changed by someone else while forescale planned; not restoring it"
        )
    back = TfvarsChange(
        path=str(path),
        address=change.address,
        old=change.old,
        new_value=change.new_value,
        old_sha256=hashlib.sha256(current).hexdigest(),
        new_bytes=original,
        diff="",
    )
    apply_change(back)
