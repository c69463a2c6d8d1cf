"""Odd CLI input is one line and exit 1, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from forescale.cli import main

SETTINGS = """
events_file: events.yaml
services:
  web:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 100
    min_units: 1
    max_units: 10
    iac: {working_dir: tf, address: web_min_size}
"""


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("forescale: error: ") and err.count("\n") == 1, err
    return err


def test_a_now_out_of_range_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "forescale.yaml").write_text(SETTINGS.replace("events_file: events.yaml", ""))
    config = str(tmp_path / "forescale.yaml")
    assert main(["status", "-c", config, "--now", "0001-01-01T00:00+14:00"]) == 1
    assert "out of range" in one_line(capsys)


def test_an_events_file_that_is_not_utf8_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "forescale.yaml").write_text(SETTINGS)
    (tmp_path / "events.yaml").write_bytes(b"events:\n  - name: caf\xe9\n")
    assert main(["check-config", "-c", str(tmp_path / "forescale.yaml")]) == 1
    assert "not UTF-8" in one_line(capsys)
