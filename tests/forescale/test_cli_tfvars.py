"""`forescale tfvars set` on odd input: exit 1, one line on stderr, the file untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forescale.cli import main

ORIGINAL = b"web_min_size = 4\n"


def refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("forescale: error: ") and err.count("\n") == 1, err
    return err


def test_a_negative_capacity_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "prod.tfvars"
    f.write_bytes(ORIGINAL)
    err = refused(["tfvars", "set", str(f), "web_min_size", "--", "-1"], capsys)
    assert "negative" in err
    assert f.read_bytes() == ORIGINAL


def test_a_read_only_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "prod.tfvars"
    f.write_bytes(ORIGINAL)
    f.chmod(0o444)
    err = refused(["tfvars", "set", str(f), "web_min_size", "5"], capsys)
    assert "read-only" in err and str(f) in err
    assert f.read_bytes() == ORIGINAL and (f.stat().st_mode & 0o777) == 0o444
    assert main(["tfvars", "set", str(f), "web_min_size", "5"]) == 1
    assert capsys.readouterr().out == ""  # no diff for a change that was not made


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("7_0", "not a whole number"),  # int() reads 70
        ("+5", "not a whole number"),
        ("\u0663", "not a whole number"),  # an Arabic-Indic 3, which int() reads as 3
        ("5.0", "not a whole number"),
        ("1" * 5000, "above 1,000,000"),
        ("1000001", "above 1,000,000"),
    ],
)
def test_value_is_plain_digits_within_the_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, fragment: str
) -> None:
    f = tmp_path / "prod.tfvars"
    f.write_bytes(ORIGINAL)
    err = refused(["tfvars", "set", str(f), "web_min_size", value], capsys)
    assert fragment in err and len(err) < 200, err
    assert f.read_bytes() == ORIGINAL
    assert main(["tfvars", "set", str(f), "web_min_size", " 6 "]) == 0
    assert f.read_bytes() == b"web_min_size = 6\n"


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_not_a_regular_file_is_refused_without_hanging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    f = tmp_path / "prod.tfvars"
    if kind == "fifo":
        os.mkfifo(f)
    else:
        f.symlink_to("/dev/zero")
    for args in (["get", str(f), "web_min_size"], ["set", str(f), "web_min_size", "5"]):
        err = refused(["tfvars", *args], capsys)
        assert "not a regular file" in err
