"""Run terraform (or OpenTofu): init, plan to a private file, check, apply that file.

Every command is an argument list with ``-input=false -no-color``, run in ``working_dir``
by :func:`forescale.iac_writer.process.run_process` (never a shell, its own process group, a time
limit, the SIGINT -> SIGTERM -> SIGKILL stop ladder, bounded output whose tails errors
show). Only flags that Terraform 1.0 already has are used (checked against 1.0.3 and
1.11.4).

The flow (research notes A4)::

    runner.init()
    with runner.plan() as plan:                    # plan -out + show -json; file removed on exit
        runner.apply(plan, guard=my_guard)         # guard(plan_json) must accept; then apply FILE

``apply`` asks the guard again itself and never applies a plan the guard refused. When
Terraform answers ``Saved plan is stale`` (someone changed the state after the plan was
made), it plans once more and applies the new plan only if the guard accepts it too; a
second stale plan raises :class:`~forescale.errors.StalePlan`.

Variable precedence trap
    Terraform reads, later winning: ``TF_VAR_*`` < ``terraform.tfvars`` <
    ``terraform.tfvars.json`` < ``*.auto.tfvars(.json)`` in file-name order < ``-var`` /
    ``-var-file`` in command-line order. **Any -var-file overrides every *.auto.tfvars
    file**, so a scaler-written ``zz-scaler.auto.tfvars.json`` is silently ignored for each
    variable that a user's ``-var-file=prod.tfvars`` also sets. The runner therefore passes
    the user's ``var_files`` in their order and forescale's own ``scaler_var_file`` LAST.
    Maps are replaced, not merged. ``TF_CLI_ARGS``/``TF_CLI_ARGS_*`` are dropped from the
    inherited environment (unless given explicitly in ``env``): Terraform appends them after
    our arguments, so a ``-var-file`` there would silently win over the scaler's file.

Plan files
    A plan file is a zip holding the state and the configuration: treat it as a secret. It
    is written in a fresh directory made with mode 0700
    (:class:`forescale.iac_writer.scratch.Scratch`) and removed when the
    :class:`PlanResult` is closed (``with`` block or :meth:`PlanResult.discard`); a run
    killed first leaves it for :func:`~forescale.iac_writer.scratch.sweep`.

Stopping terraform (cancel() or a time limit)
    Measured with Terraform 1.0.3 and 1.11.4 on a ``local-exec`` apply:

    * SIGINT to the whole process group is Terraform's graceful stop (what Ctrl-C in a
      terminal does): no new operations start, a running provisioner is interrupted, the
      resource is recorded as tainted, the state is written and the lock released.
      Sending SIGINT to the main PID only is not enough: Terraform 1.0's main process is a
      panicwrap wrapper that ignores SIGINT, and the apply simply ran to completion.
    * Terraform treats SIGTERM like SIGINT (1.11.4: SIGTERM alone stopped gracefully), and
      a second interrupt makes it "exit immediately. Note that data loss may have
      occurred", so SIGTERM after SIGINT is a hard stop. On 1.0.3 SIGTERM to the group
      alone already counted twice (the wrapper forwards it): the replaced resource was
      destroyed, never re-created, and gone from the state.
    * SIGKILL writes no state at all: infrastructure created so far is no longer tracked by
      Terraform (A4). The kernel drops the lock, a stale ``.terraform.tfstate.lock.info``
      remains (harmless for the local backend).

    So the runner sends SIGINT to the group, waits ``grace_seconds`` (default 60), then
    SIGTERM, waits ``term_grace_seconds`` (default 30), and only then SIGKILL
    (:class:`forescale.iac_writer.process.StopPolicy`). Each step is logged; the error records
    which signals it took (``signals_sent``), and a stop that needed more than SIGINT is
    logged as a warning that the state may not have been saved. Ctrl-C while a command
    runs is passed on the same way (Terraform runs in its own session and does not see
    the terminal's SIGINT), then re-raised as ``KeyboardInterrupt``.

Output
    Of each stream the last ``OUTPUT_KEEP_BYTES`` (1 MiB) are kept for tails and errors;
    ``show -json`` and ``version -json`` are read whole up to ``JSON_MAX_BYTES`` (512 MiB),
    a larger plan is an error rather than unbounded memory.

State locks
    ``plan`` and ``apply`` pass ``-lock-timeout``: Terraform itself waits that long for a
    lock held by someone else, then fails; the runner raises
    :class:`~forescale.errors.StateLocked` naming the holder (Lock Info: ID, Path,
    Operation, Who, Created).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from forescale.errors import (
    StalePlan,
    StateLocked,
    TerraformCancelled,
    TerraformError,
    TerraformNotFound,
    TerraformTimeout,
)
from forescale.iac_writer.guard import GuardResult
from forescale.iac_writer.process import (
    DEFAULT_KEEP_BYTES,
    TAIL_LINES,
    CancelFlag,
    ProcessResult,
    StopPolicy,
    run_process,
)
from forescale.iac_writer.scratch import Scratch

__all__ = [
    "TAIL_LINES",
    "ApplyResult",
    "CommandResult",
    "CommandTimeouts",
    "PlanGuard",
    "PlanResult",
    "TerraformRunner",
]

_log = logging.getLogger(__name__)

OUTPUT_KEEP_BYTES: Final = DEFAULT_KEEP_BYTES
"""Bytes of each stream kept for tails and errors (``TAIL_LINES`` lines are shown)."""
JSON_MAX_BYTES: Final = 512 * 1024 * 1024
"""The largest ``show -json`` / ``version -json`` output read (bytes)."""

PlanGuard = Callable[[Mapping[str, Any]], GuardResult]
"""Called with the ``show -json`` dict of a plan; apply proceeds only if ``.ok``."""

_FORCED_ENV: Final = {"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_INPUT": "0"}
_STALE_MARKER: Final = "Saved plan is stale"
_LOCK_MARKER: Final = "Error acquiring the state lock"
_LOCK_FIELD_RE: Final = re.compile(
    r"^\s*(ID|Path|Operation|Who|Version|Created|Info):[ \t]*(.*?)\s*$", re.MULTILINE
)
_ERROR_LINE_RE: Final = re.compile(r"^[│\s]*Error: (.+?)\s*$", re.MULTILINE)
_KILL_WAIT_SECONDS: Final = 10.0


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True, slots=True)
class CommandTimeouts:
    """Time limit of each command in seconds; past it the command is stopped (see module doc).

    ``plan`` and ``apply`` include the wait for the state lock, so they must exceed the
    runner's ``lock_timeout_seconds``.
    """

    init: float = 600.0
    plan: float = 1800.0
    show: float = 300.0
    apply: float = 3600.0
    version: float = 60.0


@dataclass(frozen=True, kw_only=True, slots=True)
class CommandResult:
    """A command that exited 0 (``init``): its argument list and the tails of its output."""

    cmd: tuple[str, ...]
    returncode: int
    output_tail: str
    stderr_tail: str
    duration_seconds: float


@dataclass(frozen=True, kw_only=True)
class PlanResult:
    """A saved plan and its ``show -json`` dict; a context manager that deletes the file.

    ``has_changes`` is ``-detailed-exitcode`` 2 (0 means Terraform found nothing to do).
    ``plan_file`` lives alone in a 0700 directory; :meth:`discard` (or leaving the ``with``
    block) removes that directory. ``plan_json`` is left out of ``repr``: plans are large
    and may hold secrets.
    """

    plan_file: Path
    has_changes: bool
    plan_json: dict[str, Any] = field(repr=False)
    cmd: tuple[str, ...]
    output_tail: str = field(repr=False)
    duration_seconds: float
    scratch: Scratch | None = field(default=None, repr=False, compare=False)

    def discard(self) -> None:
        """Delete the plan file and its private directory (idempotent)."""
        if self.scratch is not None:
            self.scratch.close()
        else:
            shutil.rmtree(self.plan_file.parent, ignore_errors=True)

    def __enter__(self) -> PlanResult:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()


@dataclass(frozen=True, kw_only=True, slots=True)
class ApplyResult:
    """What :meth:`TerraformRunner.apply` did.

    ``applied`` is False when the accepted plan had no changes (``terraform apply`` was not
    run; ``cmd`` is empty, ``returncode`` None). ``replanned`` is True when the given plan
    was stale and a fresh plan, accepted by the guard, was applied instead. ``guard`` is the
    verdict on the plan that was (or would have been) applied.
    """

    applied: bool
    replanned: bool
    guard: GuardResult
    cmd: tuple[str, ...]
    returncode: int | None
    output_tail: str
    stderr_tail: str
    duration_seconds: float


# --------------------------------------------------------------------------- runner


class TerraformRunner:
    """Runs one Terraform root module (``working_dir``); one command at a time.

    Arguments (times in seconds):

    ``binary``
        ``"terraform"`` or ``"tofu"`` (looked up on PATH) or a path to the executable.
    ``var_files``
        The user's ``-var-file`` arguments, in their order; relative paths are relative to
        ``working_dir``.
    ``scaler_var_file``
        forescale's own variable file; always passed last so it wins (module docstring).
    ``env``
        Added to the inherited environment (``inherit_env``); ``TF_IN_AUTOMATION=1``,
        ``CHECKPOINT_DISABLE=1`` and ``TF_INPUT=0`` are always set.
    ``lock_timeout_seconds``
        How long Terraform waits for a state lock held by someone else (``-lock-timeout``).
    ``timeouts``
        Per-command time limits (:class:`CommandTimeouts`).
    ``plugin_dirs`` / ``backend_config``
        ``init`` options: ``-plugin-dir=DIR`` (a provider mirror; disables downloads) and
        ``-backend-config=FILE_OR_KEY=VALUE``.
    ``grace_seconds`` / ``term_grace_seconds``
        How long to wait after SIGINT before SIGTERM, and after SIGTERM before SIGKILL.

    :meth:`cancel` may be called from any thread or a signal handler.
    """

    def __init__(
        self,
        working_dir: Path | str,
        *,
        binary: str = "terraform",
        var_files: Sequence[Path | str] = (),
        scaler_var_file: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        lock_timeout_seconds: float = 60.0,
        timeouts: CommandTimeouts = CommandTimeouts(),  # noqa: B008 (frozen, immutable)
        plugin_dirs: Sequence[Path | str] = (),
        backend_config: Sequence[str] = (),
        grace_seconds: float = 60.0,
        term_grace_seconds: float = 30.0,
    ) -> None:
        if isinstance(var_files, str | Path):
            raise TypeError("var_files must be a sequence of paths, not one path")
        if lock_timeout_seconds < 0:
            raise ValueError("lock_timeout_seconds must be >= 0")
        for name in ("plan", "apply"):
            limit = getattr(timeouts, name)
            if limit <= lock_timeout_seconds:
                raise ValueError(
                    f"timeouts.{name} ({limit:g} s) must exceed lock_timeout_seconds "
                    f"({lock_timeout_seconds:g} s), or a wait for the state lock is cut short"
                )
        if grace_seconds <= 0 or term_grace_seconds <= 0:
            raise ValueError("grace_seconds and term_grace_seconds must be > 0")

        self._working_dir = Path(working_dir)
        self._env = _build_env(env, inherit_env=inherit_env)
        self._binary_name = Path(binary).name  # for messages; cmd has the full path
        self._binary = _resolve_binary(binary, self._env.get("PATH"))
        self._var_files = tuple(self._in_working_dir(p) for p in var_files)
        self._scaler_var_file = (
            None if scaler_var_file is None else self._in_working_dir(scaler_var_file)
        )
        self._lock_timeout = lock_timeout_seconds
        self._timeouts = timeouts
        self._plugin_dirs = tuple(Path(p) for p in plugin_dirs)
        self._backend_config = tuple(backend_config)
        self._stop_policy = StopPolicy(
            interrupt_grace_seconds=grace_seconds,
            term_grace_seconds=term_grace_seconds,
            kill_wait_seconds=_KILL_WAIT_SECONDS,
        )
        self._cancel = CancelFlag()  # safe to set from a signal handler
        self._busy = threading.RLock()

    # ------------------------------------------------------------------ properties

    @property
    def binary(self) -> Path:
        """The resolved executable."""
        return self._binary

    @property
    def working_dir(self) -> Path:
        return self._working_dir

    @property
    def var_file_args(self) -> tuple[str, ...]:
        """The ``-var-file`` arguments in the order passed: user files, then the scaler's."""
        files = list(self._var_files)
        if self._scaler_var_file is not None:
            files.append(self._scaler_var_file)
        return tuple(f"-var-file={f}" for f in files)

    @property
    def cancelled(self) -> bool:
        """True after :meth:`cancel` until :meth:`reset_cancel`."""
        return self._cancel.is_set

    # ------------------------------------------------------------------ commands

    def version(self) -> tuple[int, int, int]:
        """The binary's version from ``version -json`` (available since Terraform 0.13)."""
        done = self._run(
            ["version", "-json"], timeout=self._timeouts.version, keep_stdout=JSON_MAX_BYTES
        )
        if done.returncode != 0:
            raise self._error(done, "version")
        try:
            text = str(json.loads(_whole(done))["terraform_version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TerraformError(
                f"{self._binary_name} version -json printed something unexpected",
                cmd=done.cmd,
                returncode=done.returncode,
                stdout_tail=done.stdout.tail(),
            ) from exc
        match = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
        if match is None:
            raise TerraformError(
                f"cannot read the version {text!r}", cmd=done.cmd, returncode=done.returncode
            )
        major, minor, patch = (int(g) for g in match.groups())
        return major, minor, patch

    def init(self) -> CommandResult:
        """``init -input=false -no-color`` with the configured plugin dirs and backend config."""
        args = [
            "init",
            "-input=false",
            "-no-color",
            *(f"-plugin-dir={d}" for d in self._plugin_dirs),
            *(f"-backend-config={c}" for c in self._backend_config),
        ]
        with self._busy:
            done = self._run(args, timeout=self._timeouts.init)
        if done.returncode != 0:
            raise self._error(done, "init")
        return CommandResult(
            cmd=done.cmd,
            returncode=0,
            output_tail=done.stdout.tail(),
            stderr_tail=done.stderr.tail(),
            duration_seconds=done.duration_seconds,
        )

    def plan(self, out_dir: Path | str | None = None) -> PlanResult:
        """``plan -out=FILE -detailed-exitcode`` then ``show -json FILE``.

        The file goes into a new 0700 directory under ``out_dir`` (default: the system temp
        directory); use the result as a context manager so the file is deleted. On any
        error the directory is removed before the exception propagates.
        """
        scratch = Scratch("plan", parent=out_dir)
        try:
            plan_file = scratch.path / "forescale.tfplan"
            args = [
                "plan",
                "-input=false",
                "-no-color",
                f"-out={plan_file}",
                "-detailed-exitcode",
                f"-lock-timeout={_go_duration(self._lock_timeout)}",
                *self.var_file_args,
            ]
            with self._busy:
                done = self._run(args, timeout=self._timeouts.plan)
                if done.returncode not in (0, 2):
                    raise self._error(done, "plan")
                shown = self._run(
                    ["show", "-json", "-no-color", str(plan_file)],
                    timeout=self._timeouts.show,
                    keep_stdout=JSON_MAX_BYTES,
                )
            if shown.returncode != 0:
                raise self._error(shown, "show")
            plan_json = _parse_plan_json(shown)
        except BaseException:
            scratch.close()
            raise
        return PlanResult(
            scratch=scratch,
            plan_file=plan_file,
            has_changes=done.returncode == 2,
            plan_json=plan_json,
            cmd=done.cmd,
            output_tail=done.stdout.tail(),
            duration_seconds=done.duration_seconds,
        )

    def apply(self, plan: PlanResult, *, guard: PlanGuard) -> ApplyResult:
        """Apply ``plan`` if ``guard`` accepts it; on a stale plan, plan once more.

        Raises :class:`~forescale.errors.PlanRefused` (nothing applied) when the guard
        refuses the plan or the fresh plan, ``StalePlan`` when the fresh plan is stale too,
        ``StateLocked``, ``TerraformTimeout``, ``TerraformCancelled`` or ``TerraformError``.
        After a failed apply the state may be partly changed: plan again before retrying.
        """
        with self._busy:
            verdict = _ask_guard(guard, plan)
            if not plan.has_changes:
                return _not_applied(verdict, replanned=False)
            try:
                return self._apply_file(plan, verdict, replanned=False)
            except StalePlan as exc:
                _log.warning("%s; planning again once", exc)
            with self.plan(out_dir=plan.plan_file.parent.parent) as fresh:
                verdict = _ask_guard(guard, fresh)
                if not fresh.has_changes:
                    return _not_applied(verdict, replanned=True)
                return self._apply_file(fresh, verdict, replanned=True)

    def cancel(self) -> None:
        """Stop the running command (SIGINT to its group, escalating; see module doc).

        Returns at once; the thread running the command does the stopping and raises
        :class:`~forescale.errors.TerraformCancelled`. Later commands are refused until
        :meth:`reset_cancel`. Safe from another thread or a signal handler.
        """
        self._cancel.set()

    def reset_cancel(self) -> None:
        """Allow commands again after :meth:`cancel`."""
        self._cancel.clear()

    # ------------------------------------------------------------------ internals

    def _in_working_dir(self, path: Path | str) -> Path:
        path = Path(path)
        return path if path.is_absolute() else self._working_dir / path

    def _apply_file(
        self, plan: PlanResult, verdict: GuardResult, *, replanned: bool
    ) -> ApplyResult:
        if not plan.plan_file.is_file():
            raise ValueError(f"plan file {plan.plan_file} is gone (was the plan discarded?)")
        args = [
            "apply",
            "-input=false",
            "-no-color",
            f"-lock-timeout={_go_duration(self._lock_timeout)}",
            str(plan.plan_file),
        ]
        done = self._run(args, timeout=self._timeouts.apply)
        if done.returncode != 0:
            raise self._error(done, "apply")
        return ApplyResult(
            applied=True,
            replanned=replanned,
            guard=verdict,
            cmd=done.cmd,
            returncode=0,
            output_tail=done.stdout.tail(),
            stderr_tail=done.stderr.tail(),
            duration_seconds=done.duration_seconds,
        )

    def _run(
        self, args: Sequence[str], *, timeout: float, keep_stdout: int = OUTPUT_KEEP_BYTES
    ) -> ProcessResult:
        """Run one command to its end; raise if it was stopped (timeout, cancel)."""
        cmd = (str(self._binary), *args)
        what = f"{self._binary_name} {args[0]}"
        if self._cancel.is_set:
            raise TerraformCancelled(
                f"{what} not started: the runner was cancelled",
                signals_sent=(),
                cmd=cmd,
                returncode=None,
            )
        _log.info("running %s in %s", " ".join(cmd), self._working_dir)
        try:
            done = run_process(
                cmd,
                cwd=self._working_dir,
                env=self._env,
                timeout=timeout,
                cancel=self._cancel,
                stop=self._stop_policy,
                keep_stdout=keep_stdout,
                keep_stderr=OUTPUT_KEEP_BYTES,
                label=what,
            )
        except OSError as exc:
            raise TerraformError(
                f"could not start {what} in {self._working_dir}: {exc}", cmd=cmd, returncode=None
            ) from exc
        _log.info("%s exited %s after %.1f s", what, done.returncode, done.duration_seconds)
        signals = " then ".join(done.signals_sent) or "no signal (it had just exited)"
        if len(done.signals_sent) > 1:
            _log.warning(
                "%s did not stop on SIGINT and needed %s: Terraform may have exited without "
                "saving its state (module docstring of forescale.iac_writer.terraform)",
                what,
                signals,
            )
        if done.stopped_by == "timeout":
            raise TerraformTimeout(
                f"{what} ran longer than {timeout:g} s and was stopped with {signals}"
                f"{_first_error(done.stderr.text(), prefix=': ')}",
                timeout_seconds=timeout,
                signals_sent=done.signals_sent,
                cmd=cmd,
                returncode=done.returncode,
                stderr=done.stderr.tail(),
                stdout_tail=done.stdout.tail(),
            )
        if done.stopped_by == "cancelled":
            raise TerraformCancelled(
                f"{what} was cancelled and stopped with {signals} (exit {done.returncode})",
                signals_sent=done.signals_sent,
                cmd=cmd,
                returncode=done.returncode,
                stderr=done.stderr.tail(),
                stdout_tail=done.stdout.tail(),
            )
        assert done.returncode is not None  # a child that exited by itself was reaped
        return done

    def _error(self, done: ProcessResult, sub: str) -> TerraformError:
        what = f"{self._binary_name} {sub}"
        stderr = done.stderr.text()
        common: dict[str, Any] = {
            "cmd": done.cmd,
            "returncode": done.returncode,
            "stderr": done.stderr.tail(),
            "stdout_tail": done.stdout.tail(),
        }
        text = stderr + "\n" + done.stdout.text()
        if _LOCK_MARKER in text:
            info = dict(_LOCK_FIELD_RE.findall(text.split("Lock Info:", 1)[-1]))
            holder = info.get("Who") or "an unknown holder"
            details = ", ".join(
                f"{label} {info[key]}"
                for key, label in (
                    ("Operation", "operation"),
                    ("Created", "since"),
                    ("ID", "lock ID"),
                    ("Path", "state"),
                )
                if info.get(key)
            )
            return StateLocked(
                f"{what}: the Terraform state is locked by {holder}"
                f"{f' ({details})' if details else ''}; gave up after waiting "
                f"{self._lock_timeout:g} s (lock_timeout). If that run is dead, a person can "
                f"release it with `terraform force-unlock {info.get('ID', '<ID>')}`",
                lock_id=info.get("ID"),
                lock_path=info.get("Path"),
                operation=info.get("Operation"),
                who=info.get("Who"),
                version=info.get("Version"),
                created=info.get("Created"),
                **common,
            )
        if _STALE_MARKER in text:
            return StalePlan(
                f"{what}: saved plan is stale (the state changed after the plan was made)",
                **common,
            )
        return TerraformError(
            f"{what} failed (exit {done.returncode}){_first_error(stderr, prefix=': ')}",
            **common,
        )


# --------------------------------------------------------------------------- helpers


def _ask_guard(guard: PlanGuard, plan: PlanResult) -> GuardResult:
    verdict = guard(plan.plan_json)
    verdict.raise_if_refused()
    return verdict


def _not_applied(verdict: GuardResult, *, replanned: bool) -> ApplyResult:
    return ApplyResult(
        applied=False,
        replanned=replanned,
        guard=verdict,
        cmd=(),
        returncode=None,
        output_tail="",
        stderr_tail="",
        duration_seconds=0.0,
    )


def _parse_plan_json(shown: ProcessResult) -> dict[str, Any]:
    try:
        parsed = json.loads(_whole(shown))
    except ValueError as exc:
        raise TerraformError(
            f"show -json printed invalid JSON ({exc})",
            cmd=shown.cmd,
            returncode=shown.returncode,
            stderr=shown.stderr.tail(),
        ) from exc
    if not isinstance(parsed, dict):
        raise TerraformError(
            "show -json did not print a JSON object", cmd=shown.cmd, returncode=shown.returncode
        )
    return parsed


def _build_env(extra: Mapping[str, str] | None, *, inherit_env: bool) -> dict[str, str]:
    env = dict(os.environ) if inherit_env else {}
    for key in list(env):
        if key == "TF_CLI_ARGS" or key.startswith("TF_CLI_ARGS_"):
            del env[key]
    env.update(extra or {})
    env.update(_FORCED_ENV)
    return env


def _resolve_binary(binary: str, path: str | None) -> Path:
    found = shutil.which(binary, path=path)
    if found is None:
        where = "that path" if os.sep in binary else "PATH"
        raise TerraformNotFound(
            f"cannot find the {binary!r} executable on {where}; install Terraform >= 1.0 "
            "(or OpenTofu) or set the binary to its full path",
            cmd=(binary,),
            returncode=None,
        )
    return Path(found).absolute()


def _go_duration(seconds: float) -> str:
    """``-lock-timeout`` takes a Go duration: whole seconds as ``60s``, else milliseconds."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def _whole(done: ProcessResult) -> str:
    """All of stdout, for JSON; refuses output cut to stay within ``JSON_MAX_BYTES``."""
    if done.stdout.truncated:
        raise TerraformError(
            f"{Path(done.cmd[0]).name} {done.cmd[1]} printed {done.stdout.total_bytes} "
            f"bytes, more than the {JSON_MAX_BYTES} forescale reads",
            cmd=done.cmd,
            returncode=done.returncode,
            stderr=done.stderr.tail(),
        )
    return done.stdout.text()


def _first_error(stderr: str, *, prefix: str) -> str:
    match = _ERROR_LINE_RE.search(stderr)
    return f"{prefix}{match.group(1)}" if match else ""
