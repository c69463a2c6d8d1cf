"""Run one child process to its end: the only module in forescale that imports subprocess.

:func:`run_process` is what :mod:`forescale.iac_writer.terraform` and
:mod:`forescale.iac_writer.gitcommit` use for every command (pre-commit's
``cmd_output_b`` idea, with a stop ladder). Its contract, in order:

1. **An argument list, never a shell.** ``cmd[0]`` is the program (an absolute path is
   best: a bare name is looked up on ``env``'s ``PATH``). A string is refused.
2. **cwd, env, stdin.** ``env`` is the child's whole environment (``None``: ours);
   ``stdin`` is bytes written to the child by a thread (``None``: ``/dev/null``), so a
   child that writes much before it reads cannot block us, and one that never reads it is
   fine.
3. **Its own session** (``setsid``): the child leads a new process group with no
   controlling terminal. Signals go to the *group*, so they reach its helpers too
   (Terraform 1.0's main process is a wrapper that ignores SIGINT; see
   :mod:`forescale.iac_writer.terraform`). A side effect: Ctrl-C in a terminal reaches only
   forescale, never the child; rule 7 passes it on.
4. **A time limit**, ``timeout`` seconds from the start (monotonic clock), and a
   cooperative **cancel**: a :class:`CancelFlag` set from any thread or a signal handler.
   Both are checked every 50 ms. The flag is checked only after the start: check it
   yourself first if a cancelled run must not start at all.
5. **The stop ladder** (:class:`StopPolicy`), when the limit passes or the flag is set:
   SIGINT to the group (what Ctrl-C does: the polite stop that lets a program save its
   state), wait ``interrupt_grace_seconds``; SIGTERM to the group, wait
   ``term_grace_seconds``; SIGKILL, wait ``kill_wait_seconds``. Each step is taken only if
   the child (the group leader) is still running, each is logged, and the result records
   the signals sent (``signals_sent``). SIGKILL lets nothing clean up (Terraform: no
   state written), so it comes last. Once the leader has exited, members of its group
   that are still there (a helper that ignored the signal) get SIGKILL: a stopped command
   leaves no process behind (``killed_leftovers``). A command that exits by itself is not
   touched, nor are its leftovers.
6. **Bounded output.** A thread per stream reads as the child writes (a full pipe never
   blocks the child). Of each stream only the last ``keep_stdout`` / ``keep_stderr`` bytes
   are kept, and the total is counted (:class:`Captured`): memory stays bounded whatever
   the child prints. Keep enough for what you parse (``show -json``, ``cat-file``) and
   check :attr:`Captured.truncated`. A grandchild that keeps a pipe open after the child
   exited is not waited for beyond 5 s: what was read by then is returned.
7. **KeyboardInterrupt** (or any other exception) while waiting: the child is stopped the
   same graceful way, reaped, and the exception re-raised. A second Ctrl-C while it is
   being stopped skips the rest of the current wait and moves on to the next signal
   (Terraform itself reads a second interrupt as "exit now"), so the child is never left
   running.

Raises :class:`OSError` when the program cannot be started (missing, not executable,
``cwd`` missing); callers translate it into their own error. A timeout or a cancel is not
an exception: :attr:`ProcessResult.stopped_by` says which happened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Final, Literal

__all__ = [
    "DEFAULT_KEEP_BYTES",
    "TAIL_LINES",
    "CancelFlag",
    "Captured",
    "ProcessResult",
    "StopPolicy",
    "StopReason",
    "run_process",
]

_log = logging.getLogger(__name__)

TAIL_LINES: Final = 40
"""How many trailing lines :meth:`Captured.tail` (and so errors) keep by default."""

DEFAULT_KEEP_BYTES: Final = 1024 * 1024
"""Bytes of each stream kept by default (1 MiB): far more than :data:`TAIL_LINES` lines."""

StopReason = Literal["timeout", "cancelled"]

_POLL_SECONDS: Final = 0.05
_READ_CHUNK: Final = 65536
_READER_JOIN_SECONDS: Final = 5.0

# The clock the time limit is measured on. A module attribute so that a test can make
# time "pass" at a chosen moment (tests/iac_writer/test_terraform.py); durations in the
# result always use time.monotonic.
_clock: Callable[[], float] = time.monotonic


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True, slots=True)
class StopPolicy:
    """The stop ladder's waits, in seconds (module docstring, rule 5); each > 0.

    ``interrupt_grace_seconds`` after SIGINT, ``term_grace_seconds`` after SIGTERM,
    ``kill_wait_seconds`` after SIGKILL (for the kernel to end the process).
    """

    interrupt_grace_seconds: float = 60.0
    term_grace_seconds: float = 30.0
    kill_wait_seconds: float = 10.0

    def __post_init__(self) -> None:
        for name in ("interrupt_grace_seconds", "term_grace_seconds", "kill_wait_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    def ladder(self) -> tuple[tuple[signal.Signals, float], ...]:
        """The signals in order, each with the wait that follows it."""
        return (
            (signal.SIGINT, self.interrupt_grace_seconds),
            (signal.SIGTERM, self.term_grace_seconds),
            (signal.SIGKILL, self.kill_wait_seconds),
        )


class CancelFlag:
    """A request to stop the running command; :func:`run_process` polls it.

    A plain attribute, not a :class:`threading.Event`: :meth:`set` must be safe inside a
    signal handler, which may interrupt the main thread while it holds an Event's lock.
    """

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        """Ask the running (and every later) command to stop; returns at once."""
        self._set = True

    def clear(self) -> None:
        self._set = False

    @property
    def is_set(self) -> bool:
        return self._set


@dataclass(frozen=True, kw_only=True, slots=True)
class Captured:
    """What a child wrote to one stream: the last ``len(data)`` of ``total_bytes`` bytes."""

    data: bytes
    total_bytes: int

    @property
    def truncated(self) -> bool:
        """True when the start of the stream was dropped to keep memory bounded."""
        return self.total_bytes > len(self.data)

    def text(self) -> str:
        """``data`` as UTF-8 (undecodable bytes replaced)."""
        return self.data.decode("utf-8", "replace")

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The last ``lines`` lines, without the final newline.

        When the stream was truncated, the first kept line is a fragment and is left out.
        """
        text = self.text()
        if self.truncated and "\n" in text:
            text = text.split("\n", 1)[1]
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])


@dataclass(frozen=True, kw_only=True, slots=True)
class ProcessResult:
    """How a command ended.

    ``returncode`` follows :mod:`subprocess`: the exit status, or ``-N`` when signal ``N``
    ended it; ``None`` only when the child was still there after SIGKILL and its wait (a
    process stuck in the kernel). ``stopped_by`` is ``None`` when the child exited by
    itself, else why the runner stopped it; ``signals_sent`` the signals that took, in
    order (empty if it exited just before the first). ``killed_leftovers`` is True when
    members of the child's process group outlived a stopped child and got SIGKILL.
    ``duration_seconds`` runs from the start to the end of the wait (monotonic clock).
    """

    cmd: tuple[str, ...]
    returncode: int | None
    stdout: Captured
    stderr: Captured
    duration_seconds: float
    stopped_by: StopReason | None
    signals_sent: tuple[str, ...]
    killed_leftovers: bool


# --------------------------------------------------------------------------- the runner


def run_process(
    cmd: Sequence[str],
    *,
    timeout: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    cancel: CancelFlag | None = None,
    stop: StopPolicy = StopPolicy(),  # noqa: B008 (frozen, immutable)
    keep_stdout: int = DEFAULT_KEEP_BYTES,
    keep_stderr: int = DEFAULT_KEEP_BYTES,
    label: str | None = None,
) -> ProcessResult:
    """Run ``cmd`` to its end within ``timeout`` seconds (module docstring, rules 1-7).

    ``label`` names the command in log messages (default: the program's file name).
    Raises ``OSError`` if it cannot start; ``TypeError``/``ValueError`` for caller bugs (a
    string command, an empty one, ``timeout`` <= 0, a negative ``keep_*``).
    """
    if isinstance(cmd, str | bytes):
        raise TypeError("cmd must be an argument list, not a string (no shell is used)")
    argv = tuple(os.fspath(a) for a in cmd)
    if not argv:
        raise ValueError("cmd is empty: give the program and its arguments")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    for name, keep in (("keep_stdout", keep_stdout), ("keep_stderr", keep_stderr)):
        if keep < 0:
            raise ValueError(f"{name} must be >= 0 bytes, got {keep}")
    what = label or os.path.basename(argv[0])

    started = time.monotonic()
    deadline = _clock() + timeout
    proc = subprocess.Popen(  # noqa: S603 (argument list, no shell)
        argv,
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # own session and process group (rule 3)
    )
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Sink(keep_stdout), _Sink(keep_stderr)
    threads = [
        _start(_drain, proc.stdout, out),
        _start(_drain, proc.stderr, err),
    ]
    if stdin is not None:
        assert proc.stdin is not None
        threads.append(_start(_feed, proc.stdin, stdin))
    _log.debug("started %s (pid %d)", what, proc.pid)

    stopped_by: StopReason | None = None
    try:
        while proc.poll() is None:
            if cancel is not None and cancel.is_set:
                stopped_by = "cancelled"
                break
            remaining = deadline - _clock()
            if remaining <= 0:
                stopped_by = "timeout"
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=min(_POLL_SECONDS, remaining))
    except BaseException as exc:
        # Ctrl-C (or anything else leaving this frame): the child has its own session and
        # never saw the terminal's SIGINT. Stop it the graceful way, then re-raise.
        _log.warning("%s while waiting for %s; stopping it", type(exc).__name__, what)
        _stop(proc, stop, what)
        raise

    signals_sent: tuple[str, ...] = ()
    killed_leftovers = False
    if stopped_by is not None:
        _log.warning(
            "%s %s; stopping its process group (pid %d)",
            what,
            "was cancelled" if stopped_by == "cancelled" else f"ran longer than {timeout:g} s",
            proc.pid,
        )
        signals_sent, killed_leftovers = _stop(proc, stop, what)
    # A grandchild that kept a pipe open must not hang us: one bound for all the streams,
    # then take what was read.
    join_until = time.monotonic() + _READER_JOIN_SECONDS
    for thread in threads:
        thread.join(timeout=max(0.0, join_until - time.monotonic()))
    duration = time.monotonic() - started
    _log.debug("%s exited %s after %.2f s", what, proc.returncode, duration)
    return ProcessResult(
        cmd=argv,
        returncode=proc.returncode,
        stdout=out.captured(),
        stderr=err.captured(),
        duration_seconds=duration,
        stopped_by=stopped_by,
        signals_sent=signals_sent,
        killed_leftovers=killed_leftovers,
    )


def _stop(
    proc: subprocess.Popen[bytes], policy: StopPolicy, what: str
) -> tuple[tuple[str, ...], bool]:
    """Walk the ladder on ``proc``'s group; return (signals sent, leftovers killed).

    A KeyboardInterrupt during a step ends that step's wait (the next signal follows at
    once) and is re-raised once the child is gone.
    """
    sent: list[str] = []
    interrupted: KeyboardInterrupt | None = None
    for sig, wait in policy.ladder():
        try:
            if proc.poll() is not None:
                break
            if sent:
                _log.warning(
                    "%s is still running after %s; sending %s to its process group",
                    what,
                    sent[-1],
                    sig.name,
                )
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:  # the whole group is already gone
                break
            sent.append(sig.name)
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt as exc:  # a second Ctrl-C: do not wait, escalate
            _log.warning("%s: interrupted again while stopping it; escalating", what)
            interrupted = exc
            continue
        else:
            break
    killed = _kill_leftovers(proc, what) if proc.returncode is not None else False
    if interrupted is not None:
        raise interrupted
    return tuple(sent), killed


def _kill_leftovers(proc: subprocess.Popen[bytes], what: str) -> bool:
    """SIGKILL what is left of a stopped child's process group; True if anything was.

    The leader is reaped, but while any member lives the kernel keeps its pid as the
    group's id and does not hand it out again, so this cannot hit another group.
    """
    try:
        os.killpg(proc.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    _log.warning("%s exited but left processes in its group; sending them SIGKILL", what)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return True


# --------------------------------------------------------------------------- streams


class _Sink:
    """The last ``keep`` bytes of a stream and its total length; filled by one thread."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._buffer = bytearray()
        self._total = 0
        self._lock = threading.Lock()

    def add(self, chunk: bytes) -> None:
        with self._lock:
            self._total += len(chunk)
            self._buffer += chunk
            excess = len(self._buffer) - self._keep
            if excess > 0:
                del self._buffer[:excess]  # cheap: bytearray drops from the front in place

    def captured(self) -> Captured:
        with self._lock:
            return Captured(data=bytes(self._buffer), total_bytes=self._total)


def _start(target: Callable[..., None], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _drain(stream: IO[bytes], sink: _Sink) -> None:
    fd = stream.fileno()
    with contextlib.suppress(OSError):
        while chunk := os.read(fd, _READ_CHUNK):
            sink.add(chunk)
    stream.close()


def _feed(stream: IO[bytes], data: bytes) -> None:
    # A child that exits (or is stopped) without reading everything closes the pipe:
    # BrokenPipeError (SIGPIPE is ignored in Python), which is not our error.
    with contextlib.suppress(OSError):
        stream.write(data)
    with contextlib.suppress(OSError):
        stream.close()
