"""The backtest use case (forescale/usecases/backtest.py) with stand-in candidate models:
the product's path (CSV or stored history, fold fitting through the executor, the engine,
the report) without Prophet's cost."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from forescale.cli import main
from forescale.collectors.series import infer_step
from forescale.errors import ConfigError, DataError, ForecastError
from forescale.forecaster.candidates import CandidateSet
from forescale.forecaster.types import Event, Forecast, ForecastSettings
from forescale.usecases import backtest as usecase

DATA = Path(__file__).resolve().parent.parent / "data" / "nyc_taxi.csv"
LEVEL = 12_345.0  # what the stand-in forecasts: no real model says this


def flat(
    history: pd.DataFrame,
    *,
    events: Sequence[Event],
    settings: ForecastSettings,
    now: dt.datetime,
    min_history: dt.timedelta,
) -> Forecast:
    """``LEVEL`` at every step of the horizon after ``now`` (band ±10 %); a module-level
    function, so worker processes can unpickle a set holding it."""
    del events, min_history
    step = infer_step(history["ds"])
    ds = pd.date_range(pd.Timestamp(now), pd.Timestamp(now) + settings.horizon, freq=step)
    frame = pd.DataFrame(
        {"ds": ds, "yhat": LEVEL, "yhat_lower": LEVEL * 0.9, "yhat_upper": LEVEL * 1.1}
    )
    return Forecast(
        frame=frame,
        components=(),
        resolution=step,
        interval_width=settings.interval_width,
        fitted_at=now,
        history_end=pd.Timestamp(history["ds"].iloc[-1]).to_pydatetime(),
        model="flat",
    )


FLAT = CandidateSet(fitters={"prophet": flat})


@pytest.fixture
def taxi_csv(tmp_path: Path) -> Path:
    """16 days of the 30-minute NYC taxi demand (2014-11-10 .. 11-25)."""
    raw = pd.read_csv(DATA)
    days = raw[(raw["timestamp"] >= "2014-11-10") & (raw["timestamp"] < "2014-11-26")]
    path = tmp_path / "taxi.csv"
    days.to_csv(path, index=False)
    return path


def csv_args(path: Path, **overrides: object) -> usecase.BacktestArgs:
    options: dict[str, object] = {"config": None, "service": None, "csv_path": path}
    options.update({"folds": 2, "workers": 1, **overrides})
    return usecase.BacktestArgs(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("workers", [1, 2], ids=["in this process", "in worker processes"])
def test_the_folds_are_fitted_with_the_injected_candidates(taxi_csv: Path, workers: int) -> None:
    done = usecase.backtest(csv_args(taxi_csv, workers=workers), candidates=FLAT)
    result = done.result
    assert [f.error for f in result.folds] == [None, None]
    assert {f.model for f in result.folds} == {"prophet"}  # the set's only model
    assert (result.points["prophet:yhat"] == LEVEL).all()
    assert len(result.points) == 2 * 48  # two 24 h folds of 30-minute steps
    assert done.name == "taxi" and done.source == f"csv {taxi_csv.name} (value)"
    assert done.timezone == "UTC"


def test_the_report_and_the_schedule_csv_come_from_the_same_result(
    taxi_csv: Path, tmp_path: Path
) -> None:
    done = usecase.backtest(csv_args(taxi_csv, capacity_per_unit=1000.0), candidates=FLAT)
    schedule = tmp_path / "schedule.csv"
    report = json.loads(usecase.report(done, "json", schedule_out=schedule))
    assert report["service"] == "taxi" and report["capacity_per_unit"] == 1000.0
    assert report["settings"]["folds"] == 2 and report["settings"]["timezone"] == "UTC"
    with schedule.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 288  # 5-minute sim steps
    assert {float(r["forecast"]) for r in rows} == {LEVEL}


def test_progress_is_open_while_every_fit_is_reported(taxi_csv: Path) -> None:
    events: list[str] = []

    @contextmanager
    def progress(total: int) -> Iterator[Callable[[int], None]]:
        events.append(f"start {total}")
        yield lambda n: events.append(f"+{n}")
        events.append("end")

    usecase.backtest(csv_args(taxi_csv, folds=2), candidates=FLAT, progress=progress)
    # 2 folds and the record's 3 seed folds before them, each fitted once
    assert events == ["start 5", "+1", "+1", "+1", "+1", "+1", "end"]


def test_a_fit_that_crashes_fails_its_fold_only(taxi_csv: Path) -> None:
    crash_at = pd.Timestamp("2014-11-25", tz="UTC")

    def crashing(
        history: pd.DataFrame,
        *,
        events: Sequence[Event],
        settings: ForecastSettings,
        now: dt.datetime,
        min_history: dt.timedelta,
    ) -> Forecast:
        if pd.Timestamp(now) == crash_at:
            raise RuntimeError("segfault stand-in")
        return flat(history, events=events, settings=settings, now=now, min_history=min_history)

    done = usecase.backtest(
        csv_args(taxi_csv), candidates=CandidateSet(fitters={"prophet": crashing})
    )
    first, second = done.result.folds
    assert first.error is None
    assert second.cutoff == crash_at and second.error is not None
    assert "segfault stand-in" in second.error
    assert any("1 of 2 folds failed" in n for n in done.result.notes)


def test_skipped_rows_are_said_once_before_anything_else(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(
        "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:00:00,3\n2024-01-01 00:30:00,2\n"
    )
    told: list[str] = []
    with pytest.raises(ForecastError, match="no backtest cutoff leaves"):
        usecase.backtest(csv_args(path), candidates=FLAT, warn=told.append)
    assert len(told) == 1 and "1 duplicate timestamp" in told[0] and "row 2" in told[0]


def test_the_cli_prints_the_skipped_rows_warning_then_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(
        "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:00:00,3\n2024-01-01 00:30:00,2\n"
    )
    assert main(["backtest", "--csv", str(path), "--workers", "1"]) == 1
    captured = capsys.readouterr()
    warning, error = captured.err.splitlines()
    assert warning.startswith("forescale: warning: ") and "dup.csv" in warning
    assert error.startswith("forescale: error: no backtest cutoff leaves")
    assert captured.out == ""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"csv_path": None}, "give either --csv FILE or --service NAME"),
        ({"service": "web"}, "give either --csv FILE or --service NAME"),
        ({"timezone": "Mars/Olympus"}, "--timezone 'Mars/Olympus'"),
        ({"capacity_per_unit": -1.0}, "--capacity-per-unit must be > 0"),
        ({"min_units": 9, "max_units": 3}, "--min-units is above --max-units"),
    ],
)
def test_bad_arguments_are_config_errors(
    taxi_csv: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        usecase.prepare(csv_args(taxi_csv, **overrides))


def test_a_configured_service_is_backtested_from_its_stored_history(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_dir / "forescale.yaml"
    args = usecase.BacktestArgs(config=config, service="web", csv_path=None, folds=1, workers=1)
    with pytest.raises(DataError, match="'web' has no stored history; run `forescale collect`"):
        usecase.backtest(args, candidates=FLAT)
    assert main(["collect", "--config", str(config)]) == 0
    capsys.readouterr()
    done = usecase.backtest(args, candidates=FLAT)
    assert done.name == "web" and done.source == "csv demand.csv (value)"
    result = done.result
    assert result.capacity_per_unit_source == "given" and result.capacity_per_unit == 100.0
    [fold] = result.folds
    assert fold.error is None and fold.model == "prophet"
    assert (result.points["prophet:yhat"] == LEVEL).all()
