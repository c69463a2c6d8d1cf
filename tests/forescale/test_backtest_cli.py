"""``forescale backtest`` end to end on a CSV (real Prophet) and its error paths."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forescale.cli import main

DATA = Path(__file__).resolve().parent.parent / "data" / "nyc_taxi.csv"


@pytest.fixture
def taxi_csv(tmp_path: Path) -> Path:
    """16 days of the 30-minute NYC taxi demand (2014-11-10 .. 11-25)."""
    raw = pd.read_csv(DATA)
    days = raw[(raw["timestamp"] >= "2014-11-10") & (raw["timestamp"] < "2014-11-26")]
    path = tmp_path / "taxi.csv"
    days.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_backtest_a_csv_to_json_and_a_schedule_anyone_can_recheck(
    taxi_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = tmp_path / "schedule.csv"
    code = main(
        [
            "backtest",
            "--csv",
            str(taxi_csv),
            "--timezone",
            "America/New_York",
            "--holidays",
            "US",
            "--folds",
            "2",
            "--workers",
            "1",
            "--lead-time",
            "15m",
            "--format",
            "json",
            "--schedule-out",
            str(schedule),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(out)
    assert report["schema"] == "forescale.backtest/v1"
    assert [f["cutoff"] for f in report["folds"]] == [
        "2014-11-24T05:00:00Z",
        "2014-11-25T05:00:00Z",
    ]
    assert all(f["model"] in ("ensemble", "prophet", "seasonal_naive") for f in report["folds"])
    names = {a["name"] for a in report["approaches"]}
    assert names == {
        "forescale",
        "seasonal_naive_x1_2",
        "reactive",
        "reactive_headroom_20",
        "static_peak",
    }
    assert report["capacity_per_unit_source"] == "peak/20"
    with schedule.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 288  # two 24 h folds of 5-minute steps (30-min data interpolated)
    cpu = report["capacity_per_unit"]
    scored = [r for r in rows if r["demand"] and r["units"]]
    under = sum(float(r["units"]) * cpu * (1 + 1e-9) < float(r["demand"]) for r in scored)
    own = next(a for a in report["approaches"] if a["name"] == "forescale")
    assert under / len(scored) == own["under_share"]
    static = next(a for a in report["approaches"] if a["name"] == "static_peak")
    assert static["under_share"] == 0.0 and static["vs_static"] == 1.0


@pytest.mark.slow
def test_a_cpu_pinned_at_100_is_never_planned_above_it_without_being_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new user's CSV of a CPU percentage that runs into 100 % every afternoon, with no
    --max-value: the history saturates, so nothing plans for more than 100."""
    ds = pd.date_range("2024-03-01", periods=14 * 288, freq="5min", tz="UTC")
    rng = np.random.default_rng(7)
    day = (ds.hour + ds.minute / 60) / 24
    cpu = np.minimum(72 + 45 * np.sin(2 * np.pi * (day - 0.3)) + rng.normal(0, 4, ds.size), 100)
    path = tmp_path / "cpu.csv"
    pd.DataFrame({"timestamp": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": cpu.round(3)}).to_csv(
        path, index=False
    )
    schedule = tmp_path / "schedule.csv"
    args = ["backtest", "--csv", str(path), "--folds", "2", "--workers", "1"]
    assert main([*args, "--format", "json", "--schedule-out", str(schedule)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["capacity_per_unit"] == 100 / 20  # the evaluated days reach 100 too
    units = pd.read_csv(schedule)["units"]
    assert units.max() == 20  # the units 100 needs, never the 22 that 100 x 1.1 would buy
    own = next(a for a in report["approaches"] if a["name"] == "forescale")
    assert own["vs_static"] < 1.0 and "static_peak" not in report["dominated_by"]
    # and the report says where the limit came from
    capped = [f["ceiling"] for f in report["folds"] if f["ceiling"]]
    assert capped and all("the level the history saturates at, 100" in c for c in capped)
    [note] = [n for n in report["notes"] if n.startswith("the credible ceiling capped")]
    assert f"on {len(capped)} of 2 folds" in note and capped[-1] in note


def test_backtest_needs_exactly_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest"]) == 1
    assert "give either --csv FILE or --service NAME" in capsys.readouterr().err


def test_a_malformed_csv_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2024-01-01 00:00:00,12\n2024-01-01 00:05:00,nan\n")
    assert main(["backtest", "--csv", str(bad), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "bad.csv: row 2" in err and "not finite" in err


def test_too_short_a_history_names_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = tmp_path / "short.csv"
    stamps = pd.date_range("2024-01-01", periods=48, freq="30min")
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "value": 10}).to_csv(
        short, index=False
    )
    assert main(["backtest", "--csv", str(short), "--workers", "1"]) == 1
    assert "no backtest cutoff leaves" in capsys.readouterr().err


@pytest.mark.slow
def test_backtest_a_configured_service_from_its_stored_history(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(demo_dir / "forescale.yaml")
    assert main(["collect", "--config", config]) == 0
    capsys.readouterr()
    code = main(
        ["backtest", "--config", config, "--service", "web", "--folds", "1", "--workers", "1"]
        + ["--format", "json"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(out)
    assert report["service"] == "web" and report["source"] == "csv demand.csv (value)"
    # The service's own capacity_per_unit is used, not a hindsight one.
    assert report["capacity_per_unit_source"] == "given" and report["capacity_per_unit"] == 100.0
    [fold] = report["folds"]
    assert fold["cutoff"] == "2015-01-31T05:00:00Z" and fold["error"] is None


@pytest.mark.parametrize(
    "content",
    [b"", b"timestamp,value\n", b"\xef\xbb\xbftimestamp,value\r\n\r\n"],
    ids=["0 bytes", "header only", "BOM, header, blank line"],
)
def test_an_empty_csv_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(content)
    assert main(["backtest", "--csv", str(empty), "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("forescale: error: ") and captured.err.count("\n") == 1
    assert "empty.csv" in captured.err and "add" in captured.err
    assert captured.out == ""
    assert empty.read_bytes() == content


def test_mixed_offsets_and_a_bad_timezone_in_a_backtest_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        "timestamp,value\n2024-01-01T00:00:00+01:00,1\n2024-01-01 00:30:00,2\n"  # offset, naive
    )
    assert main(["backtest", "--csv", str(mixed), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mixed.csv: row 2: timestamp '2024-01-01 00:30:00'" in err
    assert main(["backtest", "--csv", str(mixed), "--timezone", "Mars/Olympus"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--timezone 'Mars/Olympus'" in err


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--unit-price", "nan"], "'nan' is not a number"),
        (["--interval-width", "nan"], "'nan' is not a number"),
        (["--max-lift", "nan"], "'nan' is not a number"),
        (["--peak-allowance", "nan"], "'nan' is not a number"),
        (["--observed-headroom", "nan"], "'nan' is not a number"),
        (["--target-under", "nan"], "'nan' is not a number"),
        (["--unit-tolerance", "nan"], "'nan' is not a number"),
        (["--max-value", "nan"], "'nan' is not a number"),
        (["--capacity-per-unit", "inf"], "'inf' is not a number"),
        (["--stabilization", "8d"], "is too long"),
        (["--lead-time", "2d", "--horizon", "1d"], "--lead-time 2d must be shorter than"),
        (["--spacing", "0s"], "--spacing must be longer than 0"),
    ],
)
def test_options_that_are_not_numbers_or_do_not_fit_are_refused(
    taxi_csv: Path, capsys: pytest.CaptureFixture[str], options: list[str], fragment: str
) -> None:
    """Each ran before: NaN crashed (--unit-price: exit 3) or ran on without a word, a
    year of stabilisation ran for hours, a lead time past the horizon planned nothing."""
    assert main(["backtest", "--csv", str(taxi_csv), "--workers", "1", *options]) in (1, 2)
    err = capsys.readouterr().err
    assert fragment in err, err


def _folds_asked(path: Path, warned: list[str]) -> None:
    from forescale.usecases import backtest as usecase

    args = usecase.BacktestArgs(config=None, service=None, csv_path=path, folds=1000, workers=1)
    usecase.prepare(args, warn=warned.append)


def test_fewer_folds_than_asked_are_said(taxi_csv: Path) -> None:
    warned: list[str] = []
    _folds_asked(taxi_csv, warned)
    assert any("of the 1000 folds asked for fit in the history" in w for w in warned), warned


def test_samples_finer_than_a_minute_are_averaged_to_minutes(tmp_path: Path) -> None:
    from forescale.usecases import backtest as usecase

    path = tmp_path / "seconds.csv"
    stamps = pd.date_range("2024-01-01", periods=3 * 3600, freq="1s", tz="UTC")
    values = np.arange(len(stamps)) % 60  # each minute averages to 29.5
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": values}).to_csv(
        path, index=False
    )
    warned: list[str] = []
    series, _ = usecase._read_csv(
        usecase.BacktestArgs(config=None, service=None, csv_path=path), path, warned.append
    )
    minutes = usecase._at_least_a_minute(series, warned.append)
    assert len(minutes) == 180 and set(minutes["y"]) == {29.5}
    assert any("averaged to 1m" in w and "10,800 rows into 180" in w for w in warned), warned
