"""Scratch directories: private, removed on close, swept when a killed run left them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from forescale.iac_writer.scratch import LOCK_NAME, MIN_AGE_SECONDS, Scratch, sweep


def test_a_scratch_dir_is_private_and_removed_on_close(tmp_path: Path) -> None:
    with Scratch("plan", parent=tmp_path) as s:
        assert stat.S_IMODE(s.path.stat().st_mode) == 0o700
        assert (s.path / LOCK_NAME).exists()
        in_use = s.path
    assert not in_use.exists()


def test_sweep_removes_only_dirs_whose_owner_died(tmp_path: Path) -> None:
    # A child process makes a scratch dir and is killed before it can clean up.
    code = (
        "import os, sys\n"
        "from forescale.iac_writer.scratch import Scratch\n"
        f"s = Scratch('plan', parent={str(tmp_path)!r})\n"
        "(s.path / 'forescale.tfplan').write_text('secret')\n"
        "print(s.path, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    repo = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    leaked = Path(done.stdout.strip())
    assert leaked.is_dir()
    with Scratch("plan", parent=tmp_path) as live:
        unrelated = tmp_path / "forescale-demo.abc"  # not ours: never touched
        unrelated.mkdir()
        later = time.time() + MIN_AGE_SECONDS + 5
        for path in (leaked, live.path, unrelated):
            os.utime(path, (later - 2 * MIN_AGE_SECONDS, later - 2 * MIN_AGE_SECONDS))
        assert sweep(tmp_path, now=later) == [leaked]
        assert live.path.is_dir() and unrelated.is_dir() and not leaked.exists()


def test_a_fresh_dir_without_its_lock_yet_is_left_alone(tmp_path: Path) -> None:
    young = tmp_path / "forescale-scratch-plan-xyz"
    young.mkdir()  # being created by another process right now
    assert sweep(tmp_path) == []
    assert young.is_dir()
