"""One exception tree for forescale.

::

    ForescaleError                    anything forescale reports to a user (CLI exit 1)
    ├── ConfigError                   settings file / environment invalid
    ├── EventsError                   events calendar malformed or overlapping
    ├── DataError                     demand history unusable
    │   ├── InsufficientHistory       less history than the minimum rule allows
    │   └── NonFiniteValue            NaN / inf in the input, with its row
    ├── CollectorError                a metric source failed (vendor errors wrapped)
    ├── PricingError                  a unit's price could not be looked up (never guessed)
    ├── ForecastError                 model fitting / prediction failed
    ├── PlanError                     capacity policy cannot be satisfied / bad input
    ├── StoreError                    database unreachable or inconsistent
    ├── TfvarsError                   a variable file cannot be edited safely
    │   ├── TfvarsParseError          the file does not parse (left untouched)
    │   ├── TfvarsTargetError         target missing, duplicated or not a number literal
    │   └── TfvarsConflict            the file changed since it was read (compare-and-swap)
    ├── TerraformError                terraform/tofu failed: cmd, returncode, stderr, stdout_tail
    │   ├── TerraformNotFound         the binary is not on PATH (nothing was run)
    │   ├── TerraformTimeout          a command ran past its time limit and was stopped
    │   ├── TerraformCancelled        cancel() stopped the command (e.g. daemon shutdown)
    │   ├── StalePlan                 the saved plan no longer matches the state
    │   └── StateLocked               another run holds the state lock; names the holder
    ├── GitError                      commit mode: git failed or refused; cmd, returncode, stderr
    └── PlanRefused                   the plan guard refused a plan; ``reasons`` say why

Vendor exceptions (botocore, httpx, lark, sqlalchemy, cmdstanpy, subprocess) are translated
at the edge with ``raise XError(...) from exc``; none escapes its package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ForescaleError(Exception):
    """Base class: an error a user can act on. ``str(err)`` is a one-line message.

    Errors pickle with their type, message and attributes intact (a fit in a worker
    process or on a Dask worker raises them across the process boundary), also the
    subclasses whose ``__init__`` takes keyword-only fields.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[ForescaleError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(ForescaleError):
    """Settings are invalid. The message names the file and the field."""


class EventsError(ForescaleError):
    """The events calendar is malformed or has overlapping events.

    ``source`` is the file name (or ``"<string>"``), ``line`` the 1-based line of the
    offending event when known.
    """

    def __init__(self, message: str, *, source: str = "<string>", line: int | None = None) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line


class DataError(ForescaleError):
    """Demand history cannot be used as given."""


class InsufficientHistory(DataError):
    """Less history than the minimum-history rule requires (default 24 h, as AWS)."""

    def __init__(self, message: str, *, have_seconds: float, need_seconds: float) -> None:
        super().__init__(message)
        self.have_seconds = have_seconds
        self.need_seconds = need_seconds


class NonFiniteValue(DataError):
    """A NaN or infinite demand value; ``row`` is the 1-based data row (header excluded)."""

    def __init__(self, message: str, *, row: int) -> None:
        super().__init__(message)
        self.row = row


class CollectorError(ForescaleError):
    """A metric source failed; the message says what to fix."""


class PricingError(ForescaleError):
    """A unit's price could not be looked up; the message says what to fix."""


class ForecastError(ForescaleError):
    """The forecaster could not fit or predict."""


class PlanError(ForescaleError):
    """The capacity planner got inputs it cannot plan with."""


class StoreError(ForescaleError):
    """The store is unreachable or inconsistent."""


class TfvarsError(ForescaleError):
    """A Terraform variable file cannot be edited safely; the file is left untouched."""


class TfvarsParseError(TfvarsError):
    """The variable file does not parse."""


class TfvarsTargetError(TfvarsError):
    """The target variable is missing, appears twice, or is not a number literal."""


class TfvarsConflict(TfvarsError):
    """The file changed between reading it and writing it (compare-and-swap failed)."""


class TerraformError(ForescaleError):
    """A terraform (or OpenTofu) command failed.

    ``cmd`` is the argument list that ran (the binary's full path first), ``returncode`` its
    exit status (``None`` if it never started or could not be reaped), ``stderr`` and
    ``stdout_tail`` the last ~40 lines of each stream. The full plan is never kept here:
    plan output can be long and plan files hold state.
    """

    def __init__(
        self,
        message: str,
        *,
        cmd: Sequence[str],
        returncode: int | None,
        stderr: str = "",
        stdout_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.cmd = tuple(cmd)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout_tail = stdout_tail


class TerraformNotFound(TerraformError):
    """The terraform/tofu binary is not on PATH (or the given path is not executable)."""


class TerraformTimeout(TerraformError):
    """A command ran longer than its limit and was stopped.

    ``timeout_seconds`` is the limit; ``signals_sent`` the signals it took to stop the
    process group, in order (``("SIGINT",)`` when Terraform shut down gracefully).
    """

    def __init__(
        self,
        message: str,
        *,
        timeout_seconds: float,
        signals_sent: Sequence[str],
        cmd: Sequence[str],
        returncode: int | None,
        stderr: str = "",
        stdout_tail: str = "",
    ) -> None:
        super().__init__(
            message, cmd=cmd, returncode=returncode, stderr=stderr, stdout_tail=stdout_tail
        )
        self.timeout_seconds = timeout_seconds
        self.signals_sent = tuple(signals_sent)


class TerraformCancelled(TerraformError):
    """``cancel()`` stopped the command, or refused to start one after a cancel.

    ``signals_sent`` is empty when no process was running.
    """

    def __init__(
        self,
        message: str,
        *,
        signals_sent: Sequence[str],
        cmd: Sequence[str],
        returncode: int | None,
        stderr: str = "",
        stdout_tail: str = "",
    ) -> None:
        super().__init__(
            message, cmd=cmd, returncode=returncode, stderr=stderr, stdout_tail=stdout_tail
        )
        self.signals_sent = tuple(signals_sent)


class StalePlan(TerraformError):
    """Terraform refused a saved plan: the state changed after it was made."""


class StateLocked(TerraformError):
    """Another run holds the state lock and did not release it within ``lock_timeout``.

    The holder, as Terraform's ``Lock Info`` block gives it: ``lock_id``, ``lock_path``,
    ``operation`` (e.g. ``OperationTypeApply``), ``who`` (``user@host``), ``version`` (of
    the holder's Terraform) and ``created`` (text, UTC). Each is ``None`` when not printed.
    """

    def __init__(
        self,
        message: str,
        *,
        lock_id: str | None,
        lock_path: str | None,
        operation: str | None,
        who: str | None,
        version: str | None,
        created: str | None,
        cmd: Sequence[str],
        returncode: int | None,
        stderr: str = "",
        stdout_tail: str = "",
    ) -> None:
        super().__init__(
            message, cmd=cmd, returncode=returncode, stderr=stderr, stdout_tail=stdout_tail
        )
        self.lock_id = lock_id
        self.lock_path = lock_path
        self.operation = operation
        self.who = who
        self.version = version
        self.created = created


class GitError(ForescaleError):
    """Commit mode could not commit the change; no branch was moved.

    Either a git command failed (bad branch name, repository not found, the branch moved
    while committing, a time limit) or a check refused to commit (the path is not a tracked
    regular file, the branch is checked out in a worktree). ``cmd`` is the argument list
    that ran or revealed the problem (empty if nothing ran), ``returncode`` its exit status
    (negative: stopped by that signal; ``None``: it never started or did not fail) and
    ``stderr`` the last ~40 lines of its standard error. A file on the branch that differs
    from the one the change was planned on raises :class:`TfvarsConflict` instead.
    """

    def __init__(
        self, message: str, *, cmd: Sequence[str], returncode: int | None, stderr: str = ""
    ) -> None:
        super().__init__(message)
        self.cmd = tuple(cmd)
        self.returncode = returncode
        self.stderr = stderr


class PlanRefused(ForescaleError):
    """The plan guard refused a plan; nothing was applied.

    ``reasons`` are sentences for a reviewer; ``summary`` counts the changes
    ("1 to update (terraform_data.web_asg), 0 to create, 0 to destroy").
    """

    def __init__(self, reasons: Sequence[str], *, summary: str = "") -> None:
        self.reasons = tuple(reasons)
        self.summary = summary
        detail = " ".join(self.reasons) or "no reason given"
        super().__init__(
            f"plan refused ({summary}): {detail}" if summary else f"plan refused: {detail}"
        )
