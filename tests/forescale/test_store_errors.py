"""A broken store is one line: what failed, which file, what to do (no SQL, no rows)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forescale.cli import main
from forescale.errors import StoreError
from forescale.store import Store, migrate

SETTINGS = """
store_url: sqlite:///{db}
services:
  web:
    source: {{type: csv, path: demand.csv}}
    capacity_per_unit: 100
    min_units: 1
    max_units: 10
    iac: {{working_dir: tf, address: web_min_size}}
"""


def one_line_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("forescale: error: ") and captured.err.count("\n") == 1
    assert "[SQL:" not in captured.err and "sqlalche.me" not in captured.err
    return captured.err


def test_a_corrupt_store_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "forescale.db"
    db.write_bytes(b"this is not sqlite\n" * 200)
    config = tmp_path / "forescale.yaml"
    config.write_text(SETTINGS.format(db=db))
    err = one_line_error(["status", "-c", str(config)], capsys)
    assert str(db) in err and "not a database" in err and "check store_url" in err
    assert db.read_bytes() == b"this is not sqlite\n" * 200  # nothing written over it


def test_a_full_store_is_one_line_with_what_to_do(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'full.db'}")
    migrate(engine)

    @sa.event.listens_for(engine, "connect")
    def tiny(dbapi_conn: object, record: object) -> None:  # a disk with no room left
        dbapi_conn.execute("PRAGMA max_page_count = 20")  # type: ignore[attr-defined]

    engine.dispose()
    store = Store(engine)
    ds = pd.date_range(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), periods=20_000, freq="min")
    with pytest.raises(StoreError) as info:
        store.upsert_samples("web", pd.DataFrame({"ds": ds, "y": np.ones(len(ds))}))
    message = str(info.value)
    assert "\n" not in message and "[SQL:" not in message and "INSERT" not in message
    assert "full.db" in message and "disk is full" in message and "free space" in message


def test_a_store_file_deleted_under_a_running_process_says_so(tmp_path: Path) -> None:
    """SQLite reports a write to a deleted file as "attempt to write a readonly
    database", and forescale advised giving it write access."""
    db = tmp_path / "s.db"
    store = Store.open(f"sqlite:///{db}")
    try:
        frame = pd.DataFrame(
            {"ds": pd.date_range("2024-01-01", periods=3, freq="5min", tz="UTC"), "y": [1.0] * 3}
        )
        store.upsert_samples("web", frame)
        db.unlink()
        with pytest.raises(StoreError, match="the store file is gone"):
            store.upsert_samples("web", frame.assign(ds=frame["ds"] + dt.timedelta(hours=1)))
    finally:
        store.close()
