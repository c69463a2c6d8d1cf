"""The one process runner, with real child processes (Python children, so the signal
handling of each is known exactly).

Timing: no test asserts how long something took. A child that must be running (with its
handlers installed) before the test acts writes a marker file first, and the test waits for
it with a bounded loop. Every child's process group is killed at teardown if it is still
there.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from forescale.iac_writer.process import (
    TAIL_LINES,
    CancelFlag,
    Captured,
    ProcessResult,
    StopPolicy,
    run_process,
)
from tests.iac_writer.conftest import wait_for

# Short ladders so escalation tests finish quickly; long waits where a step must NOT be
# reached (the child is expected to stop before it).
QUICK = StopPolicy(interrupt_grace_seconds=0.2, term_grace_seconds=0.2, kill_wait_seconds=10)
PATIENT = StopPolicy(interrupt_grace_seconds=30, term_grace_seconds=30, kill_wait_seconds=10)
LONG = 120.0  # a time limit that is never meant to be reached


def python(script: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(script)]


@pytest.fixture
def pids(tmp_path: Path) -> Iterator[Callable[[str], int]]:
    """``read(name)``: the pid a child wrote to ``tmp_path/name``; all such groups are
    killed at teardown (a failing test leaves no process behind)."""
    seen: list[int] = []

    def read(name: str) -> int:
        path = tmp_path / name
        wait_for(lambda: path.exists() and path.read_text().strip() != "", timeout=30, what=name)
        pid = int(path.read_text().split()[0])
        seen.append(pid)
        return pid

    yield read
    for pid in seen:
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(pid, signal.SIGKILL)


def gone(pid: int) -> bool:
    """The process no longer runs (absent, or a zombie waiting for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def in_thread(fn: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


# A child that notes each signal in a file, then ignores it (keeps sleeping).
NOTING_CHILD = """
    import os, signal, sys, time
    log = sys.argv[1]
    def note(signum, frame):
        with open(log, "a") as f:
            f.write(signal.Signals(signum).name + "\\n")
    for name in sys.argv[2:]:
        signal.signal(getattr(signal, name), note)
    with open(log + ".pid", "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)
"""


def noting_child(tmp_path: Path, *ignored: str) -> list[str]:
    return [*python(NOTING_CHILD), str(tmp_path / "signals"), *ignored]


def received(tmp_path: Path) -> list[str]:
    path = tmp_path / "signals"
    return path.read_text().split() if path.exists() else []


def cancel_when_ready(tmp_path: Path, flag: CancelFlag) -> threading.Thread:
    """Set ``flag`` once the child has installed its handlers (from another thread)."""

    def run() -> None:
        marker = tmp_path / "signals.pid"
        wait_for(marker.exists, timeout=30, what="the child's handlers")
        flag.set()

    return in_thread(run)


# --------------------------------------------------------------------------- plain runs


def test_a_run_returns_exit_code_output_and_timing(tmp_path: Path) -> None:
    result = run_process(
        python("""
            import sys
            print("out one"); print("out two")
            print("err", file=sys.stderr)
            sys.exit(3)
        """),
        timeout=LONG,
    )
    assert isinstance(result, ProcessResult)
    assert result.returncode == 3
    assert result.stdout == Captured(data=b"out one\nout two\n", total_bytes=16)
    assert result.stdout.text() == "out one\nout two\n"
    assert result.stdout.tail() == "out one\nout two"
    assert result.stderr.tail() == "err"
    assert not result.stdout.truncated
    assert result.stopped_by is None
    assert result.signals_sent == ()
    assert result.duration_seconds > 0
    assert result.cmd[0] == sys.executable


def test_arguments_are_never_a_shell_and_cwd_env_are_used(tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    literal = f"; touch {marker} $(touch {marker})"
    result = run_process(
        [
            *python("""
                import json, os, sys
                print(sys.argv[1]); print(os.getcwd()); print(json.dumps(sorted(os.environ)))
                print(os.environ["ONLY"])
            """),
            literal,
        ],
        cwd=tmp_path,
        env={"ONLY": "this"},
        timeout=LONG,
    )
    arg, cwd, names, value = result.stdout.text().splitlines()
    assert arg == literal
    assert not marker.exists()
    assert cwd == str(tmp_path)
    # exactly the given environment (Python may add LC_CTYPE on a C locale)
    assert set(json.loads(names)) <= {"ONLY", "LC_CTYPE"}
    assert value == "this"


def test_the_child_has_its_own_session_and_process_group(tmp_path: Path) -> None:
    result = run_process(
        python("import os; print(os.getpid(), os.getpgrp(), os.getsid(0))"), timeout=LONG
    )
    pid, pgrp, sid = map(int, result.stdout.text().split())
    assert pgrp == pid == sid  # leader of a new session: a terminal's Ctrl-C is ours alone
    assert pgrp != os.getpgrp()


def test_stdin_bytes_reach_the_child_while_its_output_is_drained(tmp_path: Path) -> None:
    """8 MiB in and out at once: more than any pipe buffer, so writing and reading must
    overlap or the child and the runner would block each other."""
    data = os.urandom(8 * 2**20)
    result = run_process(
        python("""
            import sys
            sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])
        """),
        stdin=data,
        keep_stdout=len(data),
        timeout=LONG,
    )
    assert result.returncode == 0
    assert result.stdout.data == data[::-1]


def test_a_child_that_does_not_read_its_stdin_is_fine(tmp_path: Path) -> None:
    result = run_process(
        python("print('ignored my input')"), stdin=b"x" * (4 * 2**20), timeout=LONG
    )
    assert result.returncode == 0
    assert result.stdout.tail() == "ignored my input"


def test_without_stdin_the_child_reads_end_of_file(tmp_path: Path) -> None:
    result = run_process(python("import sys; print(repr(sys.stdin.read()))"), timeout=LONG)
    assert result.stdout.tail() == "''"


def test_output_is_kept_in_bounded_memory_with_exact_tails(tmp_path: Path) -> None:
    """~39 MB on each stream; only the last 64 KiB of each is kept, the tail is exact."""
    lines = 400_000
    result = run_process(
        python(f"""
            import sys
            out, err = sys.stdout, sys.stderr
            for i in range({lines}):
                out.write(f"line {{i:07d}} " + "x" * 80 + "\\n")
                err.write(f"err {{i:07d}} " + "y" * 80 + "\\n")
        """),
        keep_stdout=64 * 1024,
        keep_stderr=64 * 1024,
        timeout=LONG,
    )
    assert result.returncode == 0
    line_bytes = len("line 0000000 ") + 80 + 1
    assert result.stdout.total_bytes == lines * line_bytes
    assert len(result.stdout.data) == 64 * 1024
    assert result.stdout.truncated
    tail = result.stdout.tail().splitlines()
    assert len(tail) == TAIL_LINES
    assert tail[0] == f"line {lines - TAIL_LINES:07d} " + "x" * 80
    assert tail[-1] == f"line {lines - 1:07d} " + "x" * 80
    # The first kept line is cut in the middle: a long tail never starts with a fragment.
    everything = result.stdout.tail(lines=10**6).splitlines()
    assert everything[0].startswith("line ")
    assert len(everything) == 64 * 1024 // line_bytes
    assert result.stderr.tail(lines=1) == f"err {lines - 1:07d} " + "y" * 80


def test_keep_nothing_still_counts(tmp_path: Path) -> None:
    result = run_process(python("print('x' * 999)"), keep_stdout=0, timeout=LONG)
    assert result.stdout == Captured(data=b"", total_bytes=1000)
    assert result.stdout.tail() == ""


# --------------------------------------------------------------------------- stopping


def test_a_time_limit_stops_the_child_with_sigint(tmp_path: Path) -> None:
    result = run_process(
        python("""
            import time
            print("started", flush=True)
            time.sleep(600)
        """),
        timeout=0.5,
        stop=PATIENT,
    )
    assert result.stopped_by == "timeout"
    assert result.signals_sent == ("SIGINT",)
    assert result.returncode == -signal.SIGINT  # Python's default: die of the SIGINT
    assert result.duration_seconds >= 0.5


def test_sigint_ignored_escalates_to_sigterm(tmp_path: Path, pids: Callable[[str], int]) -> None:
    flag = CancelFlag()
    helper = cancel_when_ready(tmp_path, flag)
    result = run_process(noting_child(tmp_path, "SIGINT"), timeout=LONG, cancel=flag, stop=QUICK)
    helper.join(timeout=30)
    pid = pids("signals.pid")
    assert result.stopped_by == "cancelled"
    assert result.signals_sent == ("SIGINT", "SIGTERM")
    assert received(tmp_path) == ["SIGINT"]  # it got SIGINT, ignored it, died of SIGTERM
    assert result.returncode == -signal.SIGTERM
    assert gone(pid)


def test_sigkill_is_the_last_resort(tmp_path: Path, pids: Callable[[str], int]) -> None:
    flag = CancelFlag()
    helper = cancel_when_ready(tmp_path, flag)
    result = run_process(
        noting_child(tmp_path, "SIGINT", "SIGTERM"), timeout=LONG, cancel=flag, stop=QUICK
    )
    helper.join(timeout=30)
    pid = pids("signals.pid")
    assert result.signals_sent == ("SIGINT", "SIGTERM", "SIGKILL")
    assert received(tmp_path) == ["SIGINT", "SIGTERM"]
    assert result.returncode == -signal.SIGKILL
    assert gone(pid)


def test_cancel_from_another_thread_stops_gracefully(
    tmp_path: Path, pids: Callable[[str], int]
) -> None:
    """A child that exits cleanly on SIGINT gets nothing more; its output is kept."""
    flag = CancelFlag()
    helper = cancel_when_ready(tmp_path, flag)
    result = run_process(
        python(f"""
            import os, signal, sys, time
            def bye(signum, frame):
                print("saving state, bye", flush=True)
                sys.exit(130)
            signal.signal(signal.SIGINT, bye)
            print("working", flush=True)
            with open({str(tmp_path / "signals.pid")!r}, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(600)
        """),
        timeout=LONG,
        cancel=flag,
        stop=PATIENT,
    )
    helper.join(timeout=30)
    pids("signals.pid")
    assert flag.is_set
    assert result.stopped_by == "cancelled"
    assert result.signals_sent == ("SIGINT",)
    assert result.returncode == 130
    assert result.stdout.tail() == "working\nsaving state, bye"


def test_the_whole_process_group_is_signalled_and_leftovers_are_killed(
    tmp_path: Path, pids: Callable[[str], int]
) -> None:
    """SIGINT goes to the group (not only the leader), and a member that outlives the
    stopped leader (here: one that ignores SIGINT) is killed, not left behind."""
    flag = CancelFlag()
    grandchild = python(f"""
        import os, signal, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with open({str(tmp_path / "grandchild.pid")!r}, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(600)
    """)

    def cancel_when_both_run() -> None:
        for name in ("grandchild.pid", "signals.pid"):
            path = tmp_path / name
            wait_for(path.exists, timeout=30, what=name)
        flag.set()

    helper = in_thread(cancel_when_both_run)
    result = run_process(
        python(f"""
            import os, subprocess, sys, time
            subprocess.Popen({grandchild!r})
            with open({str(tmp_path / "signals.pid")!r}, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(600)
        """),
        timeout=LONG,
        cancel=flag,
        stop=PATIENT,
    )
    helper.join(timeout=30)
    leader, member = pids("signals.pid"), pids("grandchild.pid")
    assert result.signals_sent == ("SIGINT",)
    assert result.returncode == -signal.SIGINT
    assert result.killed_leftovers
    assert gone(leader)
    wait_for(lambda: gone(member), timeout=30, what="the grandchild to die of SIGKILL")


def test_keyboard_interrupt_while_waiting_stops_the_child_the_same_way(
    tmp_path: Path, pids: Callable[[str], int]
) -> None:
    """Ctrl-C in a terminal reaches only us (the child has its own session): the runner
    passes it on as SIGINT, waits for the child, and re-raises."""
    interrupter = _interrupt_main_when(lambda: (tmp_path / "signals.pid").exists())
    with _python_sigint_handler(), pytest.raises(KeyboardInterrupt):
        run_process(
            python(f"""
                import os, signal, sys, time
                log = {str(tmp_path / "signals")!r}
                def bye(signum, frame):
                    open(log, "w").write("SIGINT")
                    sys.exit(130)
                signal.signal(signal.SIGINT, bye)
                open(log + ".pid", "w").write(str(os.getpid()))
                time.sleep(600)
            """),
            timeout=LONG,
            stop=PATIENT,
        )
    interrupter.join(timeout=30)
    pid = pids("signals.pid")
    assert received(tmp_path) == ["SIGINT"]
    assert gone(pid)  # reaped: the runner waited for it before re-raising


def test_a_second_keyboard_interrupt_while_stopping_escalates_at_once(
    tmp_path: Path, pids: Callable[[str], int]
) -> None:
    """The child ignores SIGINT and the grace after it is 10 minutes: a second Ctrl-C moves
    on to SIGTERM at once instead of waiting (or of leaving the child running)."""
    stopped: list[bool] = []

    def interrupt_twice() -> None:
        pid_file = tmp_path / "signals.pid"
        wait_for(pid_file.exists, timeout=30, what="the child's handlers")
        pid = int(pid_file.read_text())
        _thread.interrupt_main()
        wait_for(lambda: "SIGINT" in received(tmp_path), timeout=30, what="the SIGINT")
        _thread.interrupt_main()
        try:
            wait_for(lambda: gone(pid), timeout=60, what="the child after the second Ctrl-C")
            stopped.append(True)
        except AssertionError:
            stopped.append(False)
            os.kill(pid, signal.SIGKILL)  # let the runner return; the assert below fails

    helper = in_thread(interrupt_twice)
    never = StopPolicy(interrupt_grace_seconds=600, term_grace_seconds=600, kill_wait_seconds=10)
    with _python_sigint_handler(), pytest.raises(KeyboardInterrupt):
        run_process(noting_child(tmp_path, "SIGINT"), timeout=LONG, stop=never)
    helper.join(timeout=90)
    pids("signals.pid")
    assert stopped == [True]
    assert received(tmp_path) == ["SIGINT"]  # then SIGTERM, which it does not catch


# --------------------------------------------------------------------------- refusals


def test_a_program_that_cannot_start_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        run_process([str(tmp_path / "no-such-program")], timeout=LONG)
    with pytest.raises(FileNotFoundError):
        run_process([sys.executable, "-c", "pass"], cwd=tmp_path / "missing", timeout=LONG)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"cmd": "echo hi", "timeout": 1}, TypeError, "argument list"),
        ({"cmd": [], "timeout": 1}, ValueError, "empty"),
        ({"cmd": ["true"], "timeout": 0}, ValueError, "timeout"),
        ({"cmd": ["true"], "timeout": 1, "keep_stdout": -1}, ValueError, "keep_stdout"),
    ],
)
def test_caller_bugs_are_refused(kwargs: dict[str, object], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        run_process(**kwargs)  # type: ignore[arg-type]


def test_stop_policy_waits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="term_grace_seconds"):
        StopPolicy(term_grace_seconds=0)


def test_cancel_flag_can_be_cleared() -> None:
    flag = CancelFlag()
    assert not flag.is_set
    flag.set()
    assert flag.is_set
    flag.clear()
    assert not flag.is_set


# --------------------------------------------------------------------------- helpers


class _python_sigint_handler:
    """A shell that starts a job in the background (CI, ``cmd &``) leaves SIGINT ignored,
    and then ``interrupt_main()`` does nothing: install Python's handler meanwhile."""

    def __enter__(self) -> None:
        self._previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _interrupt_main_when(
    ready: Callable[[], bool], *, after: threading.Thread | None = None
) -> threading.Thread:
    """Simulate Ctrl-C in the main thread once ``ready()`` (and ``after`` has finished)."""

    def run() -> None:
        if after is not None:
            after.join(timeout=30)
        wait_for(ready, timeout=30, what="the child")
        _thread.interrupt_main()

    return in_thread(run)
