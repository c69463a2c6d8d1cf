"""Private scratch directories (plan files, plan-mode copies) that a killed run cannot leak.

A saved plan and a plan-mode copy of the working directory hold every variable's value,
secrets included. They live in 0700 directories named ``forescale-scratch-<kind>-*`` in the
system temp directory, each with a lock file held (``flock``) for as long as the directory is in
use. A run killed with SIGKILL cannot remove its directory, but its lock dies with it:
:func:`sweep` (called when ``forescale apply`` and the daemon start) removes every such
directory whose lock is free and that is older than a minute (a directory that another
process is creating right now has no lock yet). Directories of releases before this one
(``forescale-plan-*``, no lock) are removed once they are an hour old.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Final

__all__ = ["Scratch", "sweep"]

PREFIX: Final = "forescale-scratch-"
LEGACY_PREFIX: Final = "forescale-plan-"
LOCK_NAME: Final = ".forescale-in-use"
MIN_AGE_SECONDS: Final = 60.0
LEGACY_MIN_AGE_SECONDS: Final = 3600.0


class Scratch:
    """A private directory, removed by :meth:`close` (or at the next :func:`sweep` if the
    process dies first)."""

    def __init__(self, kind: str, parent: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-", dir=parent))
        os.chmod(self.path, 0o700)  # mkdtemp already does; keep it explicit
        self._fd: int | None = os.open(
            self.path / LOCK_NAME, os.O_CREAT | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600
        )
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sweep(parent: str | os.PathLike[str] | None = None, *, now: float | None = None) -> list[Path]:
    """Remove scratch directories left behind by runs that died; returns what was removed."""
    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    clock = time.time() if now is None else now
    removed = []
    with contextlib.suppress(OSError):
        for path in sorted(base.iterdir()):
            if path.name.startswith(PREFIX):
                stale = _stale(path, clock - MIN_AGE_SECONDS)
            elif path.name.startswith(LEGACY_PREFIX):
                stale = _stale(path, clock - LEGACY_MIN_AGE_SECONDS)
            else:
                continue
            if stale:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _stale(path: Path, cutoff: float) -> bool:
    try:
        st = path.lstat()
        if not path.is_dir() or path.is_symlink() or st.st_uid != os.getuid():
            return False
        if st.st_mtime > cutoff:
            return False
        fd = os.open(path / LOCK_NAME, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return True  # no lock file and old: made by a run that died while creating it
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # in use
    finally:
        os.close(fd)
    return True
