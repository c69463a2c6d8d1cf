"""Reading and writing the files forescale edits: regular files only, bounded, atomic, CAS.

One place for the file-system rules every writer follows (in-place ``.tfvars`` edits and
forescale's own ``*.auto.tfvars.json``):

1. Only regular files are read (after following symlinks): a FIFO would block forever and
   ``/dev/zero`` would be read without end. The file is opened non-blocking and checked
   with ``fstat`` on the open descriptor, so a swap between check and open cannot slip a
   device in. At most :data:`MAX_BYTES` are read.
2. A file whose owner-write bit is off (``chmod 0444``) is refused, not rewritten: the mode
   is the team saying "do not edit" (checked on the mode bits, because root may write
   anything).
3. Writes are compare-and-swap: the file must still hash to the SHA-256 forescale read it
   with (``None``: must not exist), checked before the temp file is written and again
   right before ``os.replace``. Without a lock shared with every other writer the last
   window (check → rename) cannot be closed entirely; it is as small as rename allows.
4. Writes are atomic: a temp file in the same directory with the original's mode (and
   owner/group when allowed), flushed and fsynced, ``os.replace``, then the directory is
   fsynced. A symlink is written through, so the link survives.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable
from typing import Final

from forescale.errors import TfvarsConflict, TfvarsError
from forescale.regular_files import Refusal, kind_of, read_regular

__all__ = [
    "MAX_BYTES",
    "fsync_directory",
    "read_bytes",
    "remove_if",
    "sha256",
    "write_atomic",
    "write_if",
]

MAX_BYTES: Final = 16 * 1024 * 1024
"""Largest variable file forescale reads (16 MiB; real ones are a few KiB)."""

NEW_FILE_MODE: Final = 0o644


def sha256(data: bytes | None) -> str | None:
    """Hex SHA-256 of ``data`` (None for an absent file)."""
    return None if data is None else hashlib.sha256(data).hexdigest()


def read_bytes(path: str | os.PathLike[str], *, missing_ok: bool = False) -> bytes | None:
    """The content of the regular file at ``path`` (None if absent and ``missing_ok``).

    Raises :class:`TfvarsError` with one line for a missing file, a non-regular file, a file
    over :data:`MAX_BYTES` or an OS error."""
    name = os.fspath(path)
    got = read_regular(name, limit=MAX_BYTES)
    if not isinstance(got, Refusal):
        return got
    if got.reason == "missing":
        if missing_ok:
            return None
        raise TfvarsError(f"{name}: cannot read: no such file")
    if got.reason == "not-regular":
        raise TfvarsError(
            f"{name}: not a regular file ({got.detail}); point forescale at the variable file "
            "itself"
        )
    if got.reason == "too-large":
        if got.grew:
            raise TfvarsError(f"{name}: grew past {MAX_BYTES} bytes while being read")
        raise TfvarsError(f"{name}: {got.size} bytes is too large for a variable file")
    raise TfvarsError(f"{name}: cannot read: {got.detail}")


def write_if(
    path: str | os.PathLike[str], data: bytes, *, expected_sha256: str | None, what: str = ""
) -> None:
    """Atomically replace the file at ``path`` with ``data`` if it still hashes to
    ``expected_sha256`` (None: it must not exist yet; it is then created 0644).

    Raises :class:`TfvarsConflict` when the file changed, :class:`TfvarsError` when it is
    read-only, not a regular file or cannot be written. ``what`` prefixes messages."""
    label = what or os.fspath(path)
    target = os.path.realpath(os.fspath(path))
    st = _check(target, expected_sha256, label)
    _replace(target, data, st, label, recheck=lambda: _check(target, expected_sha256, label))


def write_atomic(path: str | os.PathLike[str], data: bytes, *, what: str = "") -> None:
    """Atomically create or replace the file at ``path`` with ``data`` (no compare-and-swap:
    for output files forescale owns, such as reports). A new file gets the umask's mode, a
    replaced one keeps its mode. One line :class:`TfvarsError` on failure."""
    label = what or os.fspath(path)
    target = os.path.realpath(os.fspath(path))
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise TfvarsError(f"{label}: cannot write: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise TfvarsError(f"{label}: not a regular file ({kind_of(st.st_mode)})")
    _replace(target, data, st, label, recheck=None)


def _replace(
    target: str,
    data: bytes,
    st: os.stat_result | None,
    label: str,
    *,
    recheck: Callable[[], object] | None,
) -> None:
    """Temp file in the target's directory (the old file's mode and owner, else 0644 for a
    checked write or the umask's mode for an output file), fsync, ``os.replace``, fsync
    the directory; ``recheck`` runs right before the rename."""
    directory = os.path.dirname(target)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.", suffix=".forescale-tmp", dir=directory
        )
    except OSError as exc:
        raise TfvarsError(f"{label}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if st is not None:
                os.fchmod(handle.fileno(), stat.S_IMODE(st.st_mode))
                # Keep the group (and the owner when allowed) so shared checkouts stay usable.
                with contextlib.suppress(PermissionError):
                    os.fchown(handle.fileno(), st.st_uid, st.st_gid)
            else:
                os.fchmod(handle.fileno(), NEW_FILE_MODE if recheck else _umask_mode())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if recheck is not None:
            recheck()
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise TfvarsError(f"{label}: cannot write: {exc.strerror or exc}") from None
        raise
    fsync_directory(directory)


def _umask_mode() -> int:
    """0666 minus the process umask: the mode ``open(name, "w")`` would give."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def remove_if(path: str | os.PathLike[str], *, expected_sha256: str, what: str = "") -> None:
    """Remove the file at ``path`` if it still hashes to ``expected_sha256`` (CAS)."""
    name = os.fspath(path)
    label = what or name
    _check(name, expected_sha256, label)
    try:
        os.unlink(name)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise TfvarsError(f"{label}: cannot remove: {exc.strerror or exc}") from None
    fsync_directory(os.path.dirname(os.path.realpath(name)))


def fsync_directory(directory: str) -> None:
    """Make a rename durable. A file system that cannot fsync a directory (some network and
    FUSE mounts) only loses durability, so a failure here is not reported."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _check(target: str, expected_sha256: str | None, label: str) -> os.stat_result | None:
    """CAS check: the file is what the caller last saw; returns its stat (None: absent)."""
    current = read_bytes(target, missing_ok=True)
    if current is None:
        if expected_sha256 is not None:
            raise TfvarsConflict(f"{label}: file disappeared since it was read; not writing")
        return None
    if sha256(current) != expected_sha256:
        state = "exists now" if expected_sha256 is None else "changed since it was read"
        raise TfvarsConflict(
            f"{label}: file {state} (someone else wrote it); not writing over their change"
        )
    st = os.stat(target)
    if not st.st_mode & stat.S_IWUSR:
        raise TfvarsError(
            f"{label}: is read-only (mode {stat.S_IMODE(st.st_mode):04o}); forescale does not "
            "write a file its owner protected: make it writable (chmod u+w) if forescale "
            "should manage it"
        )
    return st
