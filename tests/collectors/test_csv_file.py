from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forescale.collectors.base import REGISTRY, build_source
from forescale.collectors.csv_file import CsvFileSource
from forescale.collectors.series import check_history, coverage, infer_step, regularize
from forescale.config.settings import CsvSource
from forescale.errors import (
    CollectorError,
    ConfigError,
    DataError,
    InsufficientHistory,
    NonFiniteValue,
)

DATA = Path(__file__).parents[1] / "data"


def csv(tmp_path: Path, text: str) -> CsvFileSource:
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8")
    return CsvFileSource(path=path)


def test_regular_utc_series_with_gaps_kept_as_gaps(tmp_path: Path) -> None:
    source = csv(
        tmp_path,
        "timestamp,value\n"
        "2024-03-01T00:00:00Z,10\n"
        "2024-03-01T00:05:00Z,12\n"
        "2024-03-01T00:10:00Z,\n"  # empty cell: a gap
        "2024-03-01T00:25:00Z,0\n",  # 15 and 20 missing: gaps; zero is a real zero
    )
    series = source.fetch()
    assert list(series["ds"].dt.strftime("%H:%M")) == [
        "00:00",
        "00:05",
        "00:10",
        "00:15",
        "00:20",
        "00:25",
    ]
    assert str(series["ds"].dt.tz) == "UTC"
    assert series["y"].tolist()[:2] == [10.0, 12.0]
    assert np.isnan(series["y"].to_numpy()[2:5]).all()
    assert series["y"].iloc[-1] == 0.0
    assert coverage(series) == pytest.approx(3 / 6)


def test_naive_timestamps_are_wall_clock_in_the_source_timezone(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("timestamp,value\n2014-11-26 18:00:00,1\n2014-11-26 18:30:00,2\n")
    source = CsvFileSource(path=path, timezone="America/New_York", scale=0.5)
    series = source.fetch()
    assert series["ds"].iloc[0] == pd.Timestamp("2014-11-26T23:00:00Z")
    assert series["y"].tolist() == [0.5, 1.0]


@pytest.mark.parametrize(
    "stamps",
    [
        ("1709294400", "1709294700", "1709295000"),  # seconds
        ("1709294400.0", "1709294700.25", "1709295000"),  # with a fraction
        ("1709294400000", "1709294700000", "1709295000000"),  # milliseconds
    ],
)
def test_unix_time_is_read_as_utc_whatever_the_source_timezone(
    tmp_path: Path, stamps: tuple[str, str, str]
) -> None:
    path = tmp_path / "d.csv"
    path.write_text("timestamp,value\n" + "".join(f"{s},{i}\n" for i, s in enumerate(stamps)))
    series = CsvFileSource(path=path, timezone="America/New_York").fetch()
    assert series["ds"].tolist() == [
        pd.Timestamp("2024-03-01T12:00:00Z"),
        pd.Timestamp("2024-03-01T12:05:00Z"),
        pd.Timestamp("2024-03-01T12:10:00Z"),
    ]
    assert series["y"].tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("stamp", ["2024030112", "202403011200"])
def test_a_compact_date_is_never_read_as_unix_time(tmp_path: Path, stamp: str) -> None:
    # 2024030112 as seconds would be 2034, 202403011200 as milliseconds 1976: refused
    with pytest.raises(DataError, match=f"row 1: cannot parse timestamp '{stamp}'.*Unix"):
        csv(tmp_path, f"timestamp,value\n{stamp},1\n").fetch()


@pytest.mark.parametrize("token", ["NaN", "nan", "inf", "-Infinity"])
def test_non_finite_values_are_rejected_with_their_row(tmp_path: Path, token: str) -> None:
    source = csv(tmp_path, f"timestamp,value\n2024-03-01T00:00Z,1\n2024-03-01T00:05Z,{token}\n")
    with pytest.raises(NonFiniteValue, match=r"row 2: value .* is not finite") as info:
        source.fetch()
    assert info.value.row == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("timestamp,value\nyesterday,1\n", "row 1: cannot parse timestamp 'yesterday'"),
        ("timestamp,value\n2024-03-01T00:00Z,lots\n", "row 1: value 'lots' is not a number"),
        ("timestamp,value\n2024-03-01T00:00Z,-3\n", "row 1: demand -3.0 is negative"),
        ("time,value\n2024-03-01T00:00Z,1\n", "no column 'timestamp'"),
        ("timestamp,value\n", "no data rows"),
    ],
)
def test_bad_rows_are_clear_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        csv(tmp_path, body).fetch()


def test_missing_file_is_a_collector_error(tmp_path: Path) -> None:
    with pytest.raises(CollectorError, match="CSV file not found"):
        CsvFileSource(path=tmp_path / "missing.csv").fetch()


def test_minimum_history_rule() -> None:
    ds = pd.date_range("2024-03-01", periods=20 * 12, freq="5min", tz="UTC")
    series = pd.DataFrame({"ds": ds, "y": 1.0})
    with pytest.raises(
        InsufficientHistory, match=r"19\.9 h of data, at least 24\.0 h needed"
    ) as info:
        check_history(series)
    assert info.value.need_seconds == 86400
    check_history(series, min_history=dt.timedelta(hours=19))


def test_regularize_snaps_and_averages_duplicates() -> None:
    """Each timestamp goes to its slot (or the next, when a few seconds early: 00:01:57 is
    00:02's); two in one slot are averaged."""
    frame = pd.DataFrame(
        {
            "ds": pd.to_datetime(
                ["2024-01-01T00:00:10Z", "2024-01-01T00:00:50Z", "2024-01-01T00:01:57Z"]
            ),
            "y": [1.0, 3.0, 5.0],
        }
    )
    out = regularize(frame, dt.timedelta(minutes=1))
    assert out["y"].tolist()[0] == 2.0 and np.isnan(out["y"].iloc[1]) and out["y"].iloc[2] == 5.0
    assert infer_step(out["ds"]) == dt.timedelta(minutes=1)


def test_nyc_taxi_fall_back_hour_is_a_gap_not_a_duplicate() -> None:
    source = CsvFileSource(path=DATA / "nyc_taxi.csv", timezone="America/New_York")
    series = source.fetch()
    assert series["ds"].is_unique and series["ds"].is_monotonic_increasing
    assert infer_step(series["ds"]) == dt.timedelta(minutes=30)
    assert int(series["y"].isna().sum()) == 2  # the repeated 01:00-02:00 hour on 2014-11-02
    assert series["ds"].iloc[0] == pd.Timestamp("2014-07-01T04:00Z")


def test_registry_builds_a_csv_source_and_rejects_unknown(tmp_path: Path) -> None:
    source = build_source(CsvSource(path=tmp_path / "x.csv"))
    assert isinstance(source, CsvFileSource) and source.describe() == "csv x.csv (value)"
    assert "csv" in REGISTRY

    class Other:
        type = "graphite"

    with pytest.raises(ConfigError, match="unknown metric source type 'graphite'"):
        build_source(Other())
