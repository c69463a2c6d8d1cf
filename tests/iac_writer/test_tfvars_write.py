"""apply_change: atomic replace, compare-and-swap on the planned SHA-256, mode and links kept."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from forescale.errors import TfvarsConflict, TfvarsError
from forescale.iac_writer.tfvars import apply_change, patch, plan_change

ORIGINAL = b"# capacity\r\nweb_min_size = 4 # peak\r\nweb_max_size = 9\r\n"
PATCHED = b"# capacity\r\nweb_min_size = 6 # peak\r\nweb_max_size = 9\r\n"


@pytest.fixture
def tfvars(tmp_path: Path) -> Path:
    path = tmp_path / "prod.tfvars"
    path.write_bytes(ORIGINAL)
    return path


def test_apply_replaces_the_file_atomically(tfvars: Path) -> None:
    inode = tfvars.stat().st_ino
    change = plan_change(tfvars, "web_min_size", 6)
    apply_change(change)
    assert tfvars.read_bytes() == PATCHED
    # os.replace swapped in a new inode instead of rewriting the old one in place.
    assert tfvars.stat().st_ino != inode
    assert os.listdir(tfvars.parent) == ["prod.tfvars"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664, 0o755])
def test_apply_keeps_the_file_mode(tfvars: Path, mode: int) -> None:
    tfvars.chmod(mode)
    apply_change(plan_change(tfvars, "web_min_size", 6))
    assert stat.S_IMODE(tfvars.stat().st_mode) == mode


def test_conflict_when_the_file_changed_after_planning(tfvars: Path) -> None:
    change = plan_change(tfvars, "web_min_size", 6)
    edited = ORIGINAL.replace(b"web_max_size = 9", b"web_max_size = 10")
    tfvars.write_bytes(edited)  # a human edits the file meanwhile
    with pytest.raises(TfvarsConflict, match="changed since it was read"):
        apply_change(change)
    assert tfvars.read_bytes() == edited
    assert os.listdir(tfvars.parent) == ["prod.tfvars"]


def test_conflict_when_the_file_disappeared(tfvars: Path) -> None:
    change = plan_change(tfvars, "web_min_size", 6)
    tfvars.unlink()
    with pytest.raises(TfvarsConflict, match="disappeared"):
        apply_change(change)
    assert os.listdir(tfvars.parent) == []


def test_applying_the_same_change_twice_conflicts(tfvars: Path) -> None:
    change = plan_change(tfvars, "web_min_size", 6)
    apply_change(change)
    with pytest.raises(TfvarsConflict):
        apply_change(change)
    assert tfvars.read_bytes() == PATCHED


def test_unchanged_value_is_a_no_op(tfvars: Path) -> None:
    change = plan_change(tfvars, "web_min_size", 4)
    assert change.diff == "" and change.new_bytes == ORIGINAL
    before = tfvars.stat()
    apply_change(change)
    after = tfvars.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_apply_to_an_explicit_path(tmp_path: Path) -> None:
    change = patch(ORIGINAL, "web_min_size", 6, filename="prod.tfvars")
    target = tmp_path / "copy.tfvars"
    target.write_bytes(ORIGINAL)
    apply_change(change, target)
    assert target.read_bytes() == PATCHED
    with pytest.raises(TfvarsConflict):  # the CAS is on content, not on the name
        apply_change(patch(b"web_min_size = 1\n", "web_min_size", 2), target)


def test_apply_writes_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "shared" / "common.tfvars"
    real.parent.mkdir()
    real.write_bytes(ORIGINAL)
    link = tmp_path / "prod.tfvars"
    link.symlink_to(real)
    apply_change(plan_change(link, "web_min_size", 6))
    assert link.is_symlink()
    assert real.read_bytes() == PATCHED
    assert sorted(os.listdir(real.parent)) == ["common.tfvars"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory_is_reported_and_leaves_the_file(tfvars: Path) -> None:
    change = plan_change(tfvars, "web_min_size", 6)
    tfvars.parent.chmod(0o500)
    try:
        with pytest.raises(TfvarsError, match="cannot write"):
            apply_change(change)
    finally:
        tfvars.parent.chmod(0o700)
    assert tfvars.read_bytes() == ORIGINAL
    assert os.listdir(tfvars.parent) == ["prod.tfvars"]


# ------------------------------------------------------------------ odd files (one line each)


def test_a_read_only_file_is_refused_not_rewritten(tfvars: Path) -> None:
    change = plan_change(tfvars, "web_min_size", 6)
    tfvars.chmod(0o444)
    with pytest.raises(TfvarsError, match=r"read-only \(mode 0444\)"):
        apply_change(change)
    assert tfvars.read_bytes() == ORIGINAL
    assert stat.S_IMODE(tfvars.stat().st_mode) == 0o444


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "prod.tfvars"
    os.mkfifo(fifo)  # opening it for reading would block forever without a writer
    with pytest.raises(TfvarsError, match="not a regular file \\(a named pipe\\)"):
        plan_change(fifo, "web_min_size", 6)


def test_a_link_to_an_endless_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "prod.tfvars"
    link.symlink_to("/dev/zero")
    with pytest.raises(TfvarsError, match="not a regular file \\(a character device\\)"):
        plan_change(link, "web_min_size", 6)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from forescale.iac_writer.files import MAX_BYTES

    big = tmp_path / "prod.tfvars"
    with open(big, "wb") as handle:
        handle.truncate(MAX_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(TfvarsError, match="too large for a variable file"):
        plan_change(big, "web_min_size", 6)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TfvarsError, match="not a regular file \\(a directory\\)|cannot read"):
        plan_change(tmp_path, "web_min_size", 6)
