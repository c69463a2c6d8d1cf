"""Reading a file a user points forescale at, safely: regular files only, bounded in size.

The file is opened non-blocking and checked with ``fstat`` before a byte is read, so a
FIFO without a writer or a device such as ``/dev/zero`` is refused instead of blocking or
never ending, and no more than ``limit + 1`` bytes are ever read. :func:`read_regular`
says what went wrong as a :class:`Refusal`; each caller words it for its own kind of file
in its own error (a CSV source's ``CollectorError``, a variable file's ``TfvarsError``).
No dependencies: collectors and the IaC writer both use it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Literal

__all__ = ["Refusal", "kind_of", "read_regular", "words"]

_CHUNK = 1 << 20


@dataclass(frozen=True, kw_only=True, slots=True)
class Refusal:
    """Why a file was not read: ``missing``; ``os`` (``detail`` the OS's words);
    ``not-regular`` (``detail`` what it is instead, e.g. "a named pipe"); ``too-large``
    (``size`` bytes, ``grew``: it grew past the limit while being read)."""

    reason: Literal["missing", "os", "not-regular", "too-large"]
    detail: str = ""
    size: int = 0
    grew: bool = False


def read_regular(path: str | os.PathLike[str], *, limit: int) -> bytes | Refusal:
    """The content of the regular file at ``path`` if it is at most ``limit`` bytes."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return Refusal(reason="missing")
    except OSError as exc:
        return Refusal(reason="os", detail=str(exc.strerror or exc))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return Refusal(reason="not-regular", detail=kind_of(info.st_mode))
        if info.st_size > limit:
            return Refusal(reason="too-large", size=info.st_size)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            return Refusal(reason="too-large", size=size, grew=True)
        return b"".join(chunks)
    except OSError as exc:
        return Refusal(reason="os", detail=str(exc.strerror or exc))
    finally:
        os.close(fd)


def words(got: Refusal, *, limit: int) -> str:
    """Why a file was not read, in words, for after ``<file>: cannot read <what>: ``."""
    if got.reason == "missing":
        return "No such file or directory"
    if got.reason == "not-regular":
        return f"not a regular file ({got.detail})"
    if got.reason == "too-large":
        grew = "it grew to " if got.grew else ""
        return f"{grew}{got.size:,} bytes, larger than the {limit:,} forescale reads"
    return got.detail


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words ("a directory", "a named pipe", ...)."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"
