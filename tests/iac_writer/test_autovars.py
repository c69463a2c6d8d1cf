from __future__ import annotations

import json
from pathlib import Path

import pytest

from forescale.errors import TfvarsConflict, TfvarsError, TfvarsParseError
from forescale.iac_writer.autovars import (
    apply_auto_change,
    plan_auto_change,
    read_auto,
    restore_auto_change,
)


def test_creates_updates_and_keeps_other_variables(tmp_path: Path) -> None:
    path = tmp_path / "forescale.auto.tfvars.json"
    first = plan_auto_change(path, "web_min_size", 7)
    assert first.old_bytes is None and "--- /dev/null" in first.diff
    apply_auto_change(first)
    path.write_text(json.dumps({"web_min_size": 7, "worker_min_size": 3}))
    second = plan_auto_change(path, "web_min_size", 9)
    apply_auto_change(second)
    assert json.loads(path.read_text()) == {"web_min_size": 9, "worker_min_size": 3}
    assert read_auto(path, "web_min_size") == 9 and read_auto(path, "other") is None
    restore_auto_change(second)
    assert json.loads(path.read_text()) == {"web_min_size": 7, "worker_min_size": 3}
    assert list(tmp_path.iterdir()) == [path]  # no temp files left


def test_compare_and_swap(tmp_path: Path) -> None:
    path = tmp_path / "forescale.auto.tfvars.json"
    change = plan_auto_change(path, "web_min_size", 7)
    path.write_text('{"web_min_size": 5}\n')  # someone else wrote it meanwhile
    with pytest.raises(TfvarsConflict):
        apply_auto_change(change)
    assert path.read_text() == '{"web_min_size": 5}\n'


@pytest.mark.parametrize("content", ['{"web_min_size": NaN}', "{not json", "[1, 2]"])
def test_invalid_file_is_refused_and_left_untouched(tmp_path: Path, content: str) -> None:
    path = tmp_path / "forescale.auto.tfvars.json"
    path.write_text(content)
    with pytest.raises(TfvarsParseError):
        plan_auto_change(path, "web_min_size", 7)
    assert path.read_text() == content


@pytest.mark.parametrize("value", [True, 7.5, float("nan")])
def test_only_whole_numbers_are_written(tmp_path: Path, value: object) -> None:
    with pytest.raises(TfvarsError):
        plan_auto_change(tmp_path / "x.auto.tfvars.json", "v", value)  # type: ignore[arg-type]
