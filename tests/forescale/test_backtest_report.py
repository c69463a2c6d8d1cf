from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.backtest import BacktestConfig, BacktestResult, rolling_cutoffs, run_backtest
from forecaster.challengers import SEASONAL_NAIVE, seasonal_naive_forecast
from forecaster.types import CapacityPolicy, Forecast, ForecastSettings
from forescale.backtest_report import (
    BACKTEST_SCHEMA,
    backtest_json,
    render_backtest,
    write_schedule_csv,
)
from forescale.errors import ForecastError, ForescaleError

HORIZON = dt.timedelta(days=1)
FORECAST = ForecastSettings(horizon=HORIZON, interval_width=0.8)
SETTINGS: dict[str, object] = {
    "lead_time": dt.timedelta(minutes=15),
    "interval_width": 0.8,
    "holidays": None,
    "target_under": 0.01,
    "events": ["launch", "sale"],
    "nan_setting": math.nan,
}
SERVICE = "web"
SOURCE = "synthetic daily pattern (5 min)"
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


def _series(days: int = 12) -> pd.DataFrame:
    """5-minute demand: a base of 100 with a midday hump to ~180, plus noise."""
    ds = pd.date_range("2024-03-01", periods=days * 288, freq="5min", tz="UTC")
    hours = (ds.hour + ds.minute / 60).to_numpy(dtype=float)
    rng = np.random.default_rng(7)
    hump = np.clip(np.sin(2 * np.pi * (hours - 6) / 24), 0, None)
    return pd.DataFrame({"ds": ds, "y": 100 + 80 * hump + rng.normal(0, 5, len(ds))})


def _naive_only(history: pd.DataFrame, cutoff: dt.datetime) -> dict[str, Forecast]:
    return {SEASONAL_NAIVE: seasonal_naive_forecast(history, settings=FORECAST, now=cutoff)}


def _backtest(candidates: object = _naive_only) -> BacktestResult:
    series = _series()
    cutoffs = rolling_cutoffs(
        pd.DatetimeIndex(series["ds"]), horizon=HORIZON, count=3, min_history=dt.timedelta(days=4)
    )
    config = BacktestConfig(
        cutoffs=cutoffs,
        horizon=HORIZON,
        policy=CapacityPolicy(capacity_per_unit=0, min_units=1, max_units=1000),
        models=(SEASONAL_NAIVE,),
        record_folds=2,
    )
    return run_backtest(series, config, candidates)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return _backtest()


@pytest.fixture(scope="module")
def partly_failed() -> BacktestResult:
    """The middle fold's fit fails: its steps have no units and are not scored."""

    def candidates(history: pd.DataFrame, cutoff: dt.datetime) -> dict[str, Forecast]:
        if cutoff == dt.datetime(2024, 3, 11, tzinfo=dt.UTC):
            raise ForecastError("cannot fit <this> fold")
        return _naive_only(history, cutoff)

    return _backtest(candidates)


def _json(result: BacktestResult, service: str = SERVICE) -> dict[str, object]:
    return backtest_json(result, service=service, source=SOURCE, settings=SETTINGS)


def test_json_round_trips_without_nan_and_names_every_approach(result: BacktestResult) -> None:
    data = _json(result)
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert data["schema"] == BACKTEST_SCHEMA
    approaches = data["approaches"]
    assert isinstance(approaches, list)
    assert [a["name"] for a in approaches] == [
        "forescale",
        "seasonal_naive_x1_2",
        "reactive",
        "reactive_headroom_20",
        "static_peak",
    ]
    assert data["horizon"] == {"seconds": 86400, "text": "1d"}
    assert data["sim_step"] == {"seconds": 300, "text": "5m"}
    assert data["capacity_per_unit"] == result.capacity_per_unit
    assert data["capacity_per_unit_source"] == "peak/20"
    assert data["settings"] == {
        "events": ["launch", "sale"],
        "holidays": None,
        "interval_width": 0.8,
        "lead_time": {"seconds": 900, "text": "15m"},
        "nan_setting": None,
        "target_under": 0.01,
    }
    folds = data["folds"]
    assert isinstance(folds, list)
    assert [f["cutoff"] for f in folds] == [
        "2024-03-10T00:00:00Z",
        "2024-03-11T00:00:00Z",
        "2024-03-12T00:00:00Z",
    ]
    assert data["start"] == "2024-03-10T00:00:00Z"
    assert data["end"] == "2024-03-13T00:00:00Z"
    assert {m["model"] for m in data["metrics"]} == {"forescale", SEASONAL_NAIVE}  # type: ignore[attr-defined]


def test_json_compares_forescale_with_each_baseline(result: BacktestResult) -> None:
    data = _json(result)
    by_name = {a["name"]: a for a in data["approaches"]}  # type: ignore[attr-defined]
    own = by_name["forescale"]
    versus = data["forescale_vs"]
    assert [v["baseline"] for v in versus] == [n for n in by_name if n != "forescale"]  # type: ignore[attr-defined]
    for v in versus:  # type: ignore[attr-defined]
        other = by_name[v["baseline"]]
        assert v["unit_hours_ratio"] == pytest.approx(own["unit_hours"] / other["unit_hours"])
        assert v["under_share_diff"] == pytest.approx(own["under_share"] - other["under_share"])
    dominated = [
        n
        for n, a in by_name.items()
        if n != "forescale"
        and a["unit_hours"] < own["unit_hours"]
        and a["under_share"] < own["under_share"]
    ]
    assert data["dominated_by"] == dominated


def test_json_key_order_is_stable(result: BacktestResult) -> None:
    first = json.dumps(_json(result), allow_nan=False)
    again = json.dumps(
        backtest_json(
            result,
            service=SERVICE,
            source=SOURCE,
            settings=dict(reversed(list(SETTINGS.items()))),
        ),
        allow_nan=False,
    )
    assert first == again
    assert list(json.loads(first))[:3] == ["schema", "service", "source"]


def test_a_failed_fold_is_reported_and_nothing_is_nan(partly_failed: BacktestResult) -> None:
    text = render_backtest(
        partly_failed,
        "json",
        service=SERVICE,
        source=SOURCE,
        settings=SETTINGS,
        timezone="UTC",
    )
    data = json.loads(text)
    failed = [f for f in data["folds"] if f["error"]]
    assert len(failed) == 1
    assert failed[0]["model"] is None
    assert "cannot fit <this> fold" in failed[0]["error"]
    assert failed[0]["metrics"] == []
    assert any("1 of 3 folds failed" in n for n in data["notes"])
    # Two scored folds of 288 five-minute steps each.
    assert {a["steps"] for a in data["approaches"]} == {2 * 288}


def test_unsupported_setting_types_are_refused(result: BacktestResult) -> None:
    with pytest.raises(TypeError, match="settings.weird"):
        backtest_json(result, service=SERVICE, source=SOURCE, settings={"weird": object()})


def test_text_names_every_approach_and_says_whether_forescale_is_dominated(
    result: BacktestResult,
) -> None:
    text = render_backtest(
        result,
        "text",
        service=SERVICE,
        source=SOURCE,
        settings=SETTINGS,
        timezone="Europe/Berlin",
    )
    for a in result.approaches:
        assert a.name in text
    assert "forescale is not dominated" in text or "forescale is dominated by" in text
    assert "seasonal_naive 3 of 3 folds (mean band factor \u00d7" in text
    # Cutoffs at UTC midnight are shown on the display clock.
    assert "Sun 2024-03-10 01:00 CET" in text
    assert "lead_time 15m" in text
    for note in result.notes:
        assert note[:40] in text


def test_text_shows_the_failed_fold(partly_failed: BacktestResult) -> None:
    text = render_backtest(
        partly_failed, "text", service=SERVICE, source=SOURCE, settings={}, timezone="UTC"
    )
    assert "fold 1 (cutoff Mon 2024-03-11 00:00 UTC) failed" in text
    assert "failed 1 of 3 folds" in text


def test_html_is_self_contained_with_plots_and_escapes_text(result: BacktestResult) -> None:
    page = render_backtest(
        result,
        "html",
        service="<b>web</b>",
        source="csv <demand>.csv",
        settings={"holidays": "<US>"},
        timezone="America/New_York",
    )
    assert page.count("<svg") == 2
    assert "<b>" not in page
    assert "&lt;b&gt;web&lt;/b&gt;" in page
    assert "csv &lt;demand&gt;.csv" in page
    assert "&lt;US&gt;" in page
    for a in result.approaches:
        assert a.name in page
    # No network resources: nothing to fetch, only in-page references (#id).
    for tag in ("<script", "<link", "<img", "<iframe", "@import"):
        assert tag not in page
    assert re.findall(r"""(?:src|href)=["'](?!#)|url\((?!#)""", page) == []
    assert len(page) < 1_500_000


def test_html_is_deterministic(result: BacktestResult) -> None:
    def page() -> str:
        return render_backtest(
            result, "html", service=SERVICE, source=SOURCE, settings={}, timezone="UTC"
        )

    assert page() == page()


def test_html_renders_a_failed_fold(partly_failed: BacktestResult) -> None:
    page = render_backtest(
        partly_failed, "html", service=SERVICE, source=SOURCE, settings={}, timezone="UTC"
    )
    assert page.count("<svg") == 2
    assert "cannot fit &lt;this&gt; fold" in page


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
