from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "config" / "examples" / "demo"


@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    """A private copy of the bundled demo (settings, CSV, events, Terraform project)."""
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns(".forescale"))
    return target


def tree_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` except the store, keyed by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".forescale" not in p.parts
    }


def _restore_sigint() -> None:
    """CI and `cmd &` start us with SIGINT ignored; children would inherit that and the
    tests of graceful cancellation (SIGINT to terraform's process group) could not run."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_restore_sigint()
