"""The CSV source on malformed files and rows: a clear error naming the row, or every row
accounted for (stored, a gap, averaged with another, outside the requested range)."""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forescale.collectors.csv_file import CsvFileSource
from forescale.collectors.series import infer_step
from forescale.errors import CollectorError, ConfigError, DataError, NonFiniteValue

UTC = dt.UTC


def write(tmp_path: Path, data: str | bytes, **kwargs: object) -> CsvFileSource:
    path = tmp_path / "d.csv"
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return CsvFileSource(path=path, **kwargs)  # type: ignore[arg-type]


def test_mixed_utc_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        "timestamp,value\n"
        "2024-01-01T00:00:00+01:00,1\n"
        "2023-12-31T18:05:00-05:00,2\n"
        "2023-12-31 23:10:00Z,3\n"
        "20231231T231500+0000,4\n",
    )
    series = source.fetch()
    assert series["ds"].tolist() == list(pd.date_range("2023-12-31T23:00Z", periods=4, freq="5min"))
    assert series["y"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_naive_timestamps_use_the_timezone_and_a_mix_with_offsets_names_the_row(
    tmp_path: Path,
) -> None:
    naive = write(tmp_path, "timestamp,value\n2024-07-01 12:00,1\n2024-07-01 12:05,2\n")
    assert CsvFileSource(path=naive.path, timezone="Europe/Berlin").fetch()["ds"].iloc[
        0
    ] == pd.Timestamp("2024-07-01T10:00Z")
    mixed = write(tmp_path, "timestamp,value\n2024-07-01 12:00,1\n2024-07-01T12:05Z,2\n")
    with pytest.raises(DataError, match=r"row 2: timestamp '2024-07-01T12:05Z' has a UTC offset"):
        mixed.fetch()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("timestamp,value\n2024-01-01T00:00Z,1\nnow,2\n", "row 2: cannot parse timestamp 'now'"),
        ("timestamp,value\n2024-01-01T00:00Z,1\ntoday,2\n", "cannot parse timestamp 'today'"),
        ("timestamp,value\n2024-01-01T00:00Z,1\n12:00,2\n", "cannot parse timestamp '12:00'"),
        ("timestamp,value\n2024-01-01T00:00Z,1\n5 5 5,2\n", "cannot parse timestamp '5 5 5'"),
        (
            "timestamp,value\n2024-01-01 00:00 EST,1\n",
            "row 1: cannot parse timestamp '2024-01-01 00:00 EST'",
        ),
        ("timestamp,value\n0001-01-01T00:00Z,1\n", "row 1: timestamp '0001-01-01T00:00Z' is out"),
        ("timestamp,value\n2024-01-01T00:00Z,1_000\n", "row 1: value '1_000' is not a number"),
        ("timestamp,value\n2024-01-01T00:00Z,1e999\n", "row 1: value '1e999' is too large"),
        ("timestamp,value\n2024-01-01T00:00Z,1,5\n", "row 1: 3 fields but the header has 2"),
        ("timestamp,value\n2024-01-01T00:00Z\n", "row 1: 1 field, so no 'value' field"),
        ("timestamp,value,value\n2024-01-01T00:00Z,1,2\n", "column 'value' appears twice"),
        ("timestamp,value\n2024-01-01T00:00Z,1\x002\n", "row 1: NUL byte"),
    ],
)
def test_malformed_rows_are_errors_naming_the_row(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        write(tmp_path, body).fetch()
    assert "\n" not in str(info.value)


def test_the_error_counts_the_other_bad_rows(tmp_path: Path) -> None:
    body = "timestamp,value\n" + "".join(f"2024-01-01T00:{m:02d}Z,x\n" for m in range(5))
    with pytest.raises(DataError, match=r"row 1: value 'x' is not a number \(4 more bad rows"):
        write(tmp_path, body).fetch()


def test_overflow_after_scale_is_a_non_finite_value_with_its_row(tmp_path: Path) -> None:
    source = write(
        tmp_path, "timestamp,value\n2024-01-01T00:00Z,1\n2024-01-01T00:05Z,1e300\n", scale=1e9
    )
    with pytest.raises(
        NonFiniteValue, match=r"row 2: value '1e300' x scale 1e\+09 overflows"
    ) as info:
        source.fetch()
    assert info.value.row == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"\xef\xbb\xbf", "is empty"),
        (b" \n\n", "is empty"),
        (b"timestamp,value\r\n\r\n", "no data rows"),
        (b"timestamp,value\n\xff\xfe,1\n", r"line 2: not UTF-8 \(byte 0xff\)"),
        ("timestamp,value\n".encode("utf-16"), "UTF-16"),
        (b"\x00\x01\x02\x03", "NUL byte"),
    ],
)
def test_unreadable_files_are_one_line_errors(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        write(tmp_path, data).fetch()
    assert "d.csv" in str(info.value) and "\n" not in str(info.value)


def test_a_header_with_spaces_quotes_and_crlf_is_read(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        b'\xef\xbb\xbf"timestamp" , value ,note\r\n'
        b'2024-01-01T00:00Z,1,"a, b"\r\n'
        b'2024-01-01T00:05Z,2,"two\r\nlines"\r\n'
        b"2024-01-01T00:10Z, 3 ,\r\n",
    )
    fetched = source.fetch_accounted(None, None)
    assert fetched.series["y"].tolist() == [1.0, 2.0, 3.0]
    assert fetched.account is not None and fetched.account.rows == 3


def test_a_row_error_after_a_multiline_field_gives_row_and_line(tmp_path: Path) -> None:
    source = write(tmp_path, 'timestamp,value,note\n2024-01-01T00:00Z,1,"x\ny"\nsoon,2,\n')
    with pytest.raises(DataError, match=r"row 2 \(line 4\): cannot parse timestamp 'soon'"):
        source.fetch()


def test_every_row_is_accounted_for(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        "timestamp,value\n"
        "2024-01-01T00:00:00Z,1\n"
        "2024-01-01T00:05:00Z,\n"
        "2024-01-01T00:10:00Z,3\n"
        "2024-01-01T00:10:00Z,5\n"
        "2024-01-01T00:15:00Z,4\n"
        "2024-01-01T00:16:00Z,6\n"
        "2024-01-01T00:20:00Z,\n",
    )
    fetched = source.fetch_accounted(None, None)
    account = fetched.account
    assert account is not None
    assert account.rows == 7 and account.samples == 3 and account.outside == 0
    by_reason = {group.reason: group.rows for group in account.not_stored}
    assert by_reason == {
        "empty value": (2, 7),
        "duplicate timestamp": (4,),
        "same slot": (6,),
    }
    assert account.samples + account.not_stored_count + account.outside == account.rows
    y = fetched.series["y"].to_numpy()
    assert int(np.isfinite(y).sum()) == account.samples
    assert y[0] == 1.0 and np.isnan(y[1]) and y[2] == 4.0 and y[3] == 5.0 and np.isnan(y[4])


def test_rows_outside_the_requested_range_are_counted_apart(tmp_path: Path) -> None:
    # Daily data: an incremental read of the last hour holds one row and must still work
    # (the step is told from the whole file).
    source = write(
        tmp_path,
        "timestamp,value\n2024-01-01,1\n2024-01-02,2\n2024-01-03,\n2024-01-04,4\n",
    )
    last = dt.datetime(2024, 1, 4, tzinfo=UTC)
    fetched = source.fetch_accounted(last - dt.timedelta(hours=1), None)
    assert fetched.series["y"].tolist() == [4.0]
    assert fetched.account is not None
    assert fetched.account.outside == 3 and fetched.account.samples == 1
    assert fetched.account.summary() is None  # nothing in range was set aside


def test_a_huge_span_at_a_fine_step_is_refused_not_a_hang(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        "timestamp,value\n1970-01-01T00:00:00Z,1\n1970-01-01T00:00:01Z,1\n2019-12-31T00:00:00Z,1\n",
    )
    with pytest.raises(DataError, match=r"rows 1 and 3 .* slots"):
        source.fetch()


def test_a_sub_second_step_is_refused(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        "timestamp,value\n2024-01-01T00:00:00.1Z,1\n2024-01-01T00:00:00.2Z,1\n"
        "2024-01-01T00:00:00.3Z,1\n",
    )
    with pytest.raises(DataError, match="less than a second apart"):
        source.fetch()


def test_millisecond_jitter_does_not_change_the_step() -> None:
    ds = pd.Series(
        pd.to_datetime(
            ["2024-01-01T00:00:00.003Z", "2024-01-01T00:05:00.001Z", "2024-01-01T00:09:59.998Z"]
        )
    )
    assert infer_step(ds) == dt.timedelta(minutes=5)


def test_a_one_row_file_says_why_it_cannot_be_used(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"d.csv: only one distinct timestamp"):
        write(tmp_path, "timestamp,value\n2024-01-01T00:00Z,1\n").fetch()


def test_an_unknown_timezone_is_a_config_error(tmp_path: Path) -> None:
    source = write(tmp_path, "timestamp,value\n2024-01-01 00:00,1\n", timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="'Mars/Olympus' is not an IANA time zone"):
        source.fetch()


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_only_regular_files_are_read_and_nothing_blocks(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "d.csv"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path = Path("/dev/zero")
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            CsvFileSource(path=path).fetch()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=30)
    if reader.is_alive() and kind == "fifo":
        with path.open("w"):  # unblock the reader so the test run does not hang
            pass
        reader.join(timeout=30)
        pytest.fail("reading a FIFO blocked")
    assert not reader.is_alive(), "the read did not finish"
    [error] = outcome
    assert isinstance(error, CollectorError)
    assert "not a regular file" in str(error)


def test_a_file_over_the_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forescale.collectors.csv_file as csv_file

    path = tmp_path / "d.csv"
    path.write_text("timestamp,value\n" + "2024-01-01T00:00Z,1\n" * 10)
    monkeypatch.setattr(csv_file, "MAX_BYTES", 64)
    with pytest.raises(CollectorError, match=r"d.csv: \d+ bytes is larger than the 64 bytes"):
        CsvFileSource(path=path).fetch()


# ------------------------------------------------------------- one date order per file


def _stamps(source: CsvFileSource) -> list[str]:
    return [f"{t:%Y-%m-%d %H:%M}" for t in source.fetch()["ds"] if not pd.isna(t)]


@pytest.mark.parametrize("sep", ["/", ".", "-"])
def test_day_first_dates_are_read_day_first_throughout(tmp_path: Path, sep: str) -> None:
    """11/07 and 12/07 were read as November and December once 13/07 showed the file is
    day-first: dateutil reads month-first whenever it can."""
    rows = "".join(f"{d:02d}{sep}07{sep}2024 00:00,{d}\n" for d in (11, 12, 13, 14))
    source = write(tmp_path, "timestamp,value\n" + rows, timezone="UTC")
    frame = source.fetch()
    assert f"{frame['ds'].iloc[0]:%Y-%m-%d}" == "2024-07-11"
    assert f"{frame['ds'].iloc[-1]:%Y-%m-%d}" == "2024-07-14" and len(frame) == 4


def test_month_first_dates_are_read_month_first_throughout(tmp_path: Path) -> None:
    rows = "".join(f"07/{d:02d}/2024 00:00,{d}\n" for d in (11, 12, 13, 14))
    frame = write(tmp_path, "timestamp,value\n" + rows, timezone="UTC").fetch()
    assert [f"{t:%m-%d}" for t in frame["ds"]] == ["07-11", "07-12", "07-13", "07-14"]


def test_dates_that_read_either_way_are_refused(tmp_path: Path) -> None:
    rows = "".join(f"{d:02d}/07/2024 00:00,{d}\n" for d in (1, 2, 3))
    with pytest.raises(DataError, match=r"day or month first.*2024-07-01"):
        write(tmp_path, "timestamp,value\n" + rows, timezone="UTC").fetch()


def test_day_first_and_month_first_in_one_file_are_refused(tmp_path: Path) -> None:
    body = "timestamp,value\n13/07/2024 00:00,1\n07/14/2024 00:00,2\n"
    with pytest.raises(DataError, match=r"row 2.*row 1"):
        write(tmp_path, body, timezone="UTC").fetch()


@pytest.mark.parametrize(
    ("stamp", "utc"),
    [
        ("2024-07-01 12:00:00 GMT+02:00", "2024-07-01 10:00"),
        ("2024-07-01 12:00:00 UTC+2", "2024-07-01 10:00"),
        ("Mon Jul 01 2024 12:00:00 GMT+0200", "2024-07-01 10:00"),
        ("2024-07-01 12:00:00 UTC-05:00", "2024-07-01 17:00"),
        ("2024-07-01 12:00:00 GMT", "2024-07-01 12:00"),
    ],
)
def test_gmt_plus_is_east_of_greenwich(tmp_path: Path, stamp: str, utc: str) -> None:
    """dateutil reads "GMT+2" the POSIX way (two hours west); people, JavaScript's
    Date.toString() and every export mean UTC+02:00."""
    body = f"timestamp,value\n{stamp},1\n"
    later = stamp.replace("12:00:00", "12:30:00")
    source = write(tmp_path, body + f"{later},2\n")
    assert _stamps(source)[0] == utc


def test_a_timestamp_in_the_future_is_refused_naming_its_row(tmp_path: Path) -> None:
    """A mistyped year (2190 for 2019) was stored as the newest sample; every later
    collect then started after it and dropped the new rows without a word."""
    body = "timestamp,value\n2019-03-01 00:00,1\n2042-03-01 00:30,2\n2019-03-01 01:00,3\n"
    now = dt.datetime(2019, 3, 1, 2, 0, tzinfo=UTC)
    with pytest.raises(DataError, match=r"row 2: timestamp '2042-03-01 00:30' is in the future"):
        write(tmp_path, body, timezone="UTC", clock=lambda: now).fetch()


@pytest.mark.parametrize("jitter", [5, 30])
def test_jittered_timestamps_go_to_their_own_slot(tmp_path: Path, jitter: int) -> None:
    """Samples a few seconds either side of a 5-minute grid: each is its slot's sample.
    Snapped down, 12:04:58 joined 12:00 (averaged away) and left 12:05 a gap; at +-30 s
    the step came out as 5m1s."""
    rng = np.random.default_rng(7)
    grid = pd.date_range("2024-03-01", periods=2016, freq="5min", tz="UTC")
    stamps = grid + pd.to_timedelta(rng.integers(-jitter, jitter + 1, len(grid)), unit="s")
    body = "timestamp,value\n" + "".join(
        f"{t:%Y-%m-%dT%H:%M:%SZ},{i}\n" for i, t in enumerate(stamps)
    )
    fetched = write(tmp_path, body).fetch_accounted()
    assert fetched.account is not None and fetched.account.step == dt.timedelta(minutes=5)
    assert fetched.account.not_stored == ()
    assert fetched.series["ds"].tolist() == list(grid)
    assert fetched.series["y"].tolist() == [float(i) for i in range(len(grid))]


@pytest.mark.parametrize(
    ("seconds", "step"),
    [
        ([301, 299, 302, 298, 300, 301], 300),
        ([61, 59, 60, 62], 60),
        ([450, 450, 449, 451], 450),
        ([299] * 400, 299),
    ],
)
def test_the_step_is_a_round_one_when_the_spacing_is_within_a_few_percent(
    seconds: list[int], step: int
) -> None:
    ds = pd.Series(
        pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.cumsum([0, *seconds]), unit="s")
    )
    assert infer_step(ds) == dt.timedelta(seconds=step)


@pytest.mark.parametrize(("sep", "word"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_file_separated_otherwise_says_so(tmp_path: Path, sep: str, word: str) -> None:
    body = f"timestamp{sep}value\n2024-01-01 00:00{sep}1,5\n"
    with pytest.raises(DataError, match=f"separates fields with {word}; save it comma-separated"):
        write(tmp_path, body).fetch()
