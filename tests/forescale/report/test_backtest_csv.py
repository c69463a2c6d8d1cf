"""The backtest's schedule CSV: columns, exact floats, atomic replacement."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from forescale.errors import ForescaleError
from forescale.forecaster.backtest import BacktestResult
from forescale.report.backtest_csv import write_schedule_csv
from tests.forescale.report.conftest import as_json as _json

HEADER = [
    "ts",
    "fold",
    "demand",
    "forecast",
    "upper",
    "units",
    "units_seasonal_naive_x1_2",
    "units_reactive",
    "units_reactive_headroom_20",
    "units_static_peak",
    "paid_forescale",
    "paid_seasonal_naive_x1_2",
    "paid_reactive",
    "paid_reactive_headroom_20",
    "paid_static_peak",
]


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_schedule_csv_header_and_rows(result: BacktestResult, tmp_path: Path) -> None:
    out = tmp_path / "schedule.csv"
    write_schedule_csv(result, out)
    header, rows = _read_csv(out)
    assert header == HEADER
    assert len(rows) == len(result.schedule) == 3 * 288
    assert rows[0]["ts"] == "2024-03-10T00:00:00Z"
    assert rows[-1]["ts"] == "2024-03-12T23:55:00Z"
    assert [r["fold"] for r in rows[287:289]] == ["0", "1"]
    # repr precision: the floats read back exactly.
    demand = [float(r["demand"]) for r in rows]
    assert demand == result.schedule["demand"].tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["schedule.csv"]  # no temp file left


def test_under_share_and_unit_hours_recomputed_from_the_csv_match_the_json(
    partly_failed: BacktestResult, tmp_path: Path
) -> None:
    out = tmp_path / "schedule.csv"
    write_schedule_csv(partly_failed, out)
    header, rows = _read_csv(out)
    data = _json(partly_failed)
    cpu = data["capacity_per_unit"]
    assert isinstance(cpu, float)
    hours = data["sim_step"]["seconds"] / 3600  # type: ignore[index]
    # The failed fold's steps have no units (empty cells) and are not evaluated.
    assert any(r["units"] == "" for r in rows)
    evaluated = [r for r in rows if r["demand"] != "" and r["units"] != ""]
    by_name = {a["name"]: a for a in data["approaches"]}  # type: ignore[attr-defined]
    for column in [c for c in header[5:] if not c.startswith("paid_")]:
        name = "forescale" if column == "units" else column.removeprefix("units_")
        under = [float(r[column]) * cpu * (1 + 1e-9) < float(r["demand"]) for r in evaluated]
        assert sum(under) / len(under) == by_name[name]["under_share"], name
        unit_hours = sum(float(r[f"paid_{name}"]) for r in evaluated) * hours
        assert by_name[name]["unit_hours"] == pytest.approx(unit_hours), name
    assert by_name["forescale"]["steps"] == len(evaluated)


def test_reactive_pays_for_units_before_they_serve(result: BacktestResult) -> None:
    """The documented caveat is real on this input: paid unit-hours exceed serving ones."""
    reactive = next(a for a in result.approaches if a.name == "reactive")
    hours = result.sim_step.total_seconds() / 3600
    serving = float(result.schedule["units_reactive"].sum()) * hours
    assert reactive.unit_hours > serving


def test_schedule_csv_replaces_atomically_and_keeps_the_mode(
    result: BacktestResult, tmp_path: Path
) -> None:
    out = tmp_path / "schedule.csv"
    out.write_text("old\n", encoding="utf-8")
    out.chmod(0o640)
    write_schedule_csv(result, out)
    assert out.read_text(encoding="utf-8").startswith(",".join(HEADER) + "\n")
    assert out.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schedule.csv"]


def test_schedule_csv_unwritable_place_is_a_forescale_error(
    result: BacktestResult, tmp_path: Path
) -> None:
    with pytest.raises(ForescaleError, match="missing/schedule.csv: cannot write"):
        write_schedule_csv(result, tmp_path / "missing" / "schedule.csv")
    assert list(tmp_path.iterdir()) == []
