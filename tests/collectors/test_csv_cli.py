"""A CSV demand source as a user meets it: ``forescale collect``, ``plan`` and ``status``
on real files, through :func:`forescale.cli.main`.

Every bad file is exit 1 with one ``forescale: error: ...`` line naming the file (and the
row) and what to do; no file of the project changes; rows that are not stored are counted.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from forescale.cli import main
from forescale.store import Store
from tests.conftest import tree_hashes


@dataclass(frozen=True)
class Project:
    root: Path
    config: Path

    @property
    def csv(self) -> Path:
        return self.root / "d.csv"

    def samples(self, service: str = "web") -> pd.DataFrame:
        store = Store.open(f"sqlite:///{self.root}/.forescale/s.db")
        try:
            return store.load_samples(service)
        finally:
            store.close()


def make_project(root: Path, *, scale: float = 1.0, extra: bool = False) -> Project:
    """A settings file with service ``web`` reading ``d.csv`` (and, with ``extra``, a second
    service ``api`` reading a good ``api.csv``), a store under ``.forescale/``, a tfvars file."""
    (root / "tf").mkdir()
    (root / "tf" / "terraform.tfvars").write_text("web_min = 2\napi_min = 1\n")
    text = (
        "store_url: sqlite:///.forescale/s.db\n"
        "services:\n"
        "  web:\n"
        f"    source: {{type: csv, path: d.csv, scale: {scale!r}}}\n"
        "    capacity_per_unit: 100\n"
        "    min_units: 1\n"
        "    max_units: 30\n"
        "    iac: {working_dir: tf, address: web_min}\n"
    )
    if extra:
        text += (
            "  api:\n"
            "    source: {type: csv, path: api.csv}\n"
            "    capacity_per_unit: 100\n"
            "    min_units: 1\n"
            "    max_units: 30\n"
            "    iac: {working_dir: tf, address: api_min}\n"
        )
        (root / "api.csv").write_text(
            "timestamp,value\n2024-03-01T00:00:00Z,5\n2024-03-01T00:05:00Z,6\n"
        )
    (root / "forescale.yaml").write_text(text)
    return Project(root=root, config=root / "forescale.yaml")


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def one_error_line(err: str) -> str:
    assert err.startswith("forescale: error: "), err
    assert err.count("\n") == 1, err
    return err


EMPTY = {
    "0 bytes": b"",
    "header only": b"timestamp,value\n",
    "BOM and header": b"\xef\xbb\xbftimestamp,value\r\n",
    "blank lines": b"\n\r\n\n",
}


@pytest.mark.parametrize("content", list(EMPTY.values()), ids=list(EMPTY))
@pytest.mark.parametrize("command", ["collect", "plan"])
def test_an_empty_csv_is_one_error_line(tmp_path: Path, content: bytes, command: str) -> None:
    project = make_project(tmp_path)
    project.csv.write_bytes(content)
    before = tree_hashes(tmp_path)
    args = ["--config", str(project.config)]
    if command == "plan":
        args += ["--now", "2024-03-02T00:00:00Z"]
    code, _out, err = run(command, *args)
    assert code == 1
    line = one_error_line(err)
    assert "d.csv" in line and ("no data rows" in line or "empty" in line)
    assert "web: web:" not in line  # the service is named once
    assert "add" in line  # ... and what to do
    assert tree_hashes(tmp_path) == before


def test_timestamps_with_different_utc_offsets_are_converted(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.csv.write_text(
        "timestamp,value\n"
        "2024-01-01T00:00:00+01:00,1\n"  # 2023-12-31 23:00Z
        "2023-12-31T18:05:00-05:00,2\n"  # 2023-12-31 23:05Z
        "2023-12-31T23:10:00Z,3\n"
    )
    code, out, err = run("collect", "--config", str(project.config))
    assert code == 0, err
    assert "web: 3 samples stored" in out and err == ""
    stored = project.samples()
    assert stored["ds"].dt.strftime("%Y-%m-%d %H:%MZ").tolist() == [
        "2023-12-31 23:00Z",
        "2023-12-31 23:05Z",
        "2023-12-31 23:10Z",
    ]
    assert stored["y"].tolist() == [1.0, 2.0, 3.0]


def test_naive_and_offset_timestamps_mixed_is_an_error_naming_the_row(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.csv.write_text(
        "timestamp,value\n"
        "2024-01-01T00:00:00Z,1\n"
        "2024-01-01T00:05:00+00:00,1\n"
        "2024-01-01 00:10:00,1\n"  # no offset
        "2024-01-01 00:15:00,1\n"
    )
    before = tree_hashes(tmp_path)
    code, _out, err = run("collect", "--config", str(project.config))
    assert code == 1
    line = one_error_line(err)
    assert "d.csv: row 3: timestamp '2024-01-01 00:10:00' has no UTC offset" in line
    assert "row 1" in line  # the row it differs from
    assert tree_hashes(tmp_path) == before
    assert project.samples().empty


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("2024-01-01T00:05:00Z,1e300", "overflows"),  # x scale 1e9 = inf
        ("2024-01-01T00:05:00Z,1\x002", "NUL byte"),
        ("2024-01-01T00:05:00Z\x00,2", "NUL byte"),
        ("2024-01-01T00:05:00Z,1,234", "3 fields"),  # a thousands separator
        ("2024-01-01T00:05:00Z", "no 'value' field"),
        ("now,1", "cannot parse timestamp 'now'"),
        ("12:00,1", "cannot parse timestamp '12:00'"),
        ("9999-12-31T00:00:00Z,1", "out of range"),
    ],
)
def test_a_bad_row_fails_that_service_only_and_is_named(
    tmp_path: Path, row: str, fragment: str
) -> None:
    project = make_project(tmp_path, scale=1e9, extra=True)
    project.csv.write_text(
        f"timestamp,value\n2024-01-01T00:00:00Z,1\n{row}\n2024-01-01T00:10:00Z,1\n"
    )
    before = tree_hashes(tmp_path)
    code, out, err = run("collect", "--config", str(project.config))
    assert code == 1
    line = one_error_line(err)
    assert "collect failed for web: " in line and "d.csv: row 2" in line and fragment in line
    assert "api: 2 samples stored" in out  # the other service was still collected
    assert len(project.samples("api")) == 2 and project.samples("web").empty
    assert tree_hashes(tmp_path) == before
    store = Store.open(f"sqlite:///{tmp_path}/.forescale/s.db")
    try:
        run_info = store.last_collect("web")
    finally:
        store.close()
    assert run_info is not None and run_info.written == 0
    assert fragment in (run_info.error or "")


def test_rows_not_stored_are_counted_in_one_warning_line(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.csv.write_text(
        "timestamp,value\n"
        "2024-01-01T00:00:00Z,1\n"
        "2024-01-01T00:05:00Z,\n"  # empty: a gap
        "2024-01-01T00:10:00Z,3\n"
        "2024-01-01T00:10:00Z,5\n"  # the same timestamp again: averaged
        "2024-01-01T00:15:00Z,4\n"
        "2024-01-01T00:15:20Z,6\n"  # same 5-minute slot as the row before: averaged
        "2024-01-01T00:20:00Z,\n"
    )
    code, out, err = run("collect", "--config", str(project.config))
    assert code == 0, err
    assert "web: 3 samples stored" in out
    assert err.count("\n") == 1 and err.startswith("forescale: warning: web: ")
    assert "4 of 7 rows of d.csv not stored as samples of their own" in err
    assert "2 empty values (gaps; rows 2, 7)" in err
    assert "1 duplicate timestamp (averaged with an earlier row; row 4)" in err
    assert "1 in the 5m slot of another row (averaged; row 6)" in err
    assert project.samples()["y"].tolist() == [1.0, 4.0, 5.0]


def test_a_source_without_a_single_value_is_an_error(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.csv.write_text("timestamp,value\n2024-01-01T00:00:00Z,\n2024-01-01T00:05:00Z, \n")
    code, _out, err = run("collect", "--config", str(project.config))
    assert code == 1
    line = one_error_line(err)
    assert "d.csv: none of the 2 data rows has a value" in line


def test_status_counts_coverage_up_to_now_not_up_to_the_newest_sample(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    stamps = pd.date_range("2024-03-01", "2024-03-10", freq="30min", tz="UTC", inclusive="left")
    project.csv.write_text(
        "timestamp,value\n" + "".join(f"{t:%Y-%m-%dT%H:%M:%SZ},10\n" for t in stamps)
    )
    assert run("collect", "--config", str(project.config))[0] == 0
    # The data ended 12 days before "now": the last 7 days hold no sample.
    code, out, err = run("status", "--config", str(project.config), "--now", "2024-03-22T00:00Z")
    assert code == 0, err
    assert "newest sample 2024-03-09 23:30Z (12d30m old), coverage 0.0% over the last 7 days" in (
        out
    )
    # The data stopped 3.5 days ago: of the 335 slots of the last 7 days that are due (a
    # slot is due once it has ended and stale_after, 30m, has passed), 168 hold a sample.
    code, out, err = run("status", "--config", str(project.config), "--now", "2024-03-13T12:00Z")
    assert code == 0, err
    assert f"coverage {168 / 335:.1%} over the last 7 days" in out


def test_plan_on_history_older_than_the_forecast_window_says_so(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    stamps = pd.date_range("2024-01-01", "2024-01-04", freq="h", tz="UTC", inclusive="left")
    project.csv.write_text(
        "timestamp,value\n" + "".join(f"{t:%Y-%m-%dT%H:%M:%SZ},10\n" for t in stamps)
    )
    before = tree_hashes(tmp_path)
    code, _out, err = run("plan", "--config", str(project.config), "--now", "2024-06-01T00:00Z")
    assert code == 1
    line = one_error_line(err)
    assert line.startswith(
        "forescale: error: web: the newest stored sample is at 2024-01-03 23:00Z"
    )
    assert "older than the 57d" in line and "forecast.max_history" in line
    assert "0 stored sample" not in line
    assert tree_hashes(tmp_path) == before
