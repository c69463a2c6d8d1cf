from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forescale.errors import StoreError
from forescale.records import ChangeRecord
from forescale.store import Store
from tests.fakes import forecast_run

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(f"sqlite:///{tmp_path}/sub/dir/f.db")
    yield s
    s.close()


def test_schema_created_on_first_use_and_samples_round_trip(store: Store) -> None:
    ds = pd.date_range(T0, periods=6, freq="5min")
    series = pd.DataFrame({"ds": ds, "y": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0]})
    assert store.upsert_samples("web", series) == 5  # the gap is not stored
    assert store.upsert_samples("web", series) == 5  # idempotent
    back = store.load_samples("web")
    assert len(back) == 5
    assert back["ds"].iloc[0] == pd.Timestamp(T0) and str(back["ds"].dt.tz) == "UTC"
    assert store.last_sample_time("web") == T0 + dt.timedelta(minutes=25)
    assert store.load_samples("other").empty and store.last_sample_time("other") is None


def test_upsert_replaces_late_corrections(store: Store) -> None:
    ds = pd.date_range(T0, periods=3, freq="5min")
    store.upsert_samples("web", pd.DataFrame({"ds": ds, "y": [1.0, 2.0, 3.0]}))
    store.upsert_samples("web", pd.DataFrame({"ds": ds[2:], "y": [30.0]}))
    assert store.load_samples("web")["y"].tolist() == [1.0, 2.0, 30.0]
    window = store.load_samples("web", T0 + dt.timedelta(minutes=5), T0 + dt.timedelta(minutes=5))
    assert window["y"].tolist() == [2.0]


def test_forecast_and_change_records(store: Store) -> None:
    ds = pd.date_range(T0, periods=2, freq="1h")
    frame = pd.DataFrame(
        {
            "ds": ds,
            "yhat": [1.0, 2.0],
            "yhat_lower": [0.5, 1.5],
            "yhat_upper": [1.5, 2.5],
            "weekly": [0.1, -0.2],
        }
    )
    run = store.save_forecast_run(
        forecast_run(
            "web",
            frame,
            at=T0,
            resolution=dt.timedelta(hours=1),
            model="prophet",
            components=("weekly",),
            notes=("a note",),
        )
    )
    info = store.latest_forecast("web")
    assert info is not None and info.id == run and info.model == "prophet"
    assert info.notes == ("a note",) and info.components == ("weekly",)
    back = info.frame
    assert back is not None
    assert back["weekly"].tolist() == [0.1, -0.2] and back["yhat_upper"].tolist() == [1.5, 2.5]
    light = store.latest_forecast("web", points=False)
    assert light is not None and light.frame is None and light.notes == ("a note",)
    stamp = store.latest_run_stamp("web")
    assert stamp is not None and (stamp.id, stamp.as_of) == (run, T0)
    change_id = store.record_change(
        ChangeRecord(
            service="web",
            due_at=T0,
            var_file="a.tfvars",
            address="x",
            from_units=2,
            to_units=4,
            direction="raise",
            reason="why",
            mode="dry-run",
            status="planned",
            diff="-x = 2\n+x = 4\n",
            forecast_run_id=run,
        ),
        created_at=T0,
    )
    [record] = store.list_changes("web")
    assert record.id == change_id and record.to_units == 4 and record.due_at == T0


def test_the_run_made_before_a_time(store: Store) -> None:
    frame = pd.DataFrame({"ds": [T0], "yhat": [1.0], "yhat_lower": [0.5], "yhat_upper": [1.5]})
    ids = [
        store.save_forecast_run(
            forecast_run(
                name, frame, at=T0 + dt.timedelta(hours=h), resolution=dt.timedelta(hours=1)
            )
        )
        for name, h in (("web", 0), ("web", 6), ("api", 9), ("web", 12))
    ]
    before = store.forecast_before("web", T0 + dt.timedelta(hours=12))
    assert before is not None and before.id == ids[1] and before.frame is not None
    light = store.forecast_before("web", T0 + dt.timedelta(hours=6), points=False)
    assert light is not None and light.id == ids[0] and light.frame is None
    assert store.forecast_before("web", T0) is None
    assert store.forecast_before("db", T0 + dt.timedelta(days=1)) is None


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="naive datetime"):
        store.load_samples("web", dt.datetime(2024, 1, 1))  # noqa: DTZ001


def test_unreachable_database_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open store"):
        Store.open("postgresql+nosuchdriver://u:secret@127.0.0.1:1/db")


def test_schema_is_migrated_with_alembic_and_old_stores_are_refused(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from forescale.store import metadata

    s = Store.open(f"sqlite:///{tmp_path}/new.db")
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    s.close()
    Store.open(f"sqlite:///{tmp_path}/new.db").close()  # reopening is a no-op upgrade

    old = sa.create_engine(f"sqlite:///{tmp_path}/old.db")
    metadata.create_all(old)  # as the first release did, without alembic_version
    old.dispose()
    with pytest.raises(StoreError, match="created before schema migrations"):
        Store.open(f"sqlite:///{tmp_path}/old.db")


# -- refresh runs: owner, heartbeat, sweep (migration 0006) -------------------------------
LEASE = dt.timedelta(minutes=2)


def _abandoned(owner: str, since: str) -> str:
    return (
        f"abandoned: the server that ran this refresh ({owner}) stopped without finishing it "
        f"(no heartbeat since {since}); ask again"
    )


def test_refresh_runs_beat_per_owner_and_stale_ones_are_abandoned(store: Store) -> None:
    second = dt.timedelta(seconds=1)
    mine = store.create_refresh_run("web", requested_at=T0, owner="a:1:0001")
    assert (mine.owner, mine.heartbeat_at) == ("a:1:0001", T0)
    theirs = store.create_refresh_run("api", requested_at=T0, owner="b:2:0002")
    done = store.create_refresh_run("db", requested_at=T0, owner="a:1:0001")
    assert store.finish_refresh_run(done.id, finished_at=T0, owner="a:1:0001")
    store.start_refresh_run(mine.id, started_at=T0 + 5 * second, owner="a:1:0001")

    assert store.beat_refresh_runs("a:1:0001", T0 + 60 * second) == 1  # its one unfinished run
    beaten = store.refresh_run(mine.id)
    assert beaten is not None and beaten.heartbeat_at == T0 + 60 * second
    assert beaten.status == "running" and beaten.started_at == T0 + 5 * second
    other = store.refresh_run(theirs.id)
    assert other is not None and other.heartbeat_at == T0  # another owner's run: untouched

    assert store.abandon_stale_refresh_runs(T0, at=T0 + LEASE) == []  # not older than T0
    [swept] = store.abandon_stale_refresh_runs(T0 + second, at=T0 + LEASE + second)
    assert swept.id == theirs.id and swept.status == "failed"
    assert swept.error == _abandoned("b:2:0002", "2024-03-01T00:00:00Z")
    assert swept.finished_at == T0 + LEASE + second and swept.owner == "b:2:0002"
    assert store.abandon_stale_refresh_runs(T0 + second, at=T0 + LEASE) == []  # once
    finished = store.refresh_run(done.id)
    assert finished is not None and finished.status == "succeeded"  # finished runs stay

    assert store.beat_refresh_runs("b:2:0002", T0 + LEASE) == 0  # a swept run is not revived
    assert not store.finish_refresh_run(theirs.id, finished_at=T0, owner="a:1:0001")
    assert store.finish_refresh_run(theirs.id, finished_at=T0 + LEASE, owner="b:2:0002")
    back = store.refresh_run(theirs.id)
    assert back is not None and (back.status, back.error) == ("succeeded", None)


def test_migration_0006_keeps_unfinished_refresh_runs_for_the_sweep(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path}/old.db"
    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).parents[2] / "forescale" / "migrations")
    )
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a store as the release before 0006 left it
        config.attributes["connection"] = conn
        command.upgrade(config, "0005")
        conn.exec_driver_sql(
            "INSERT INTO refresh_runs (service, requested_at, started_at, status) "
            f"VALUES ('web', {int(T0.timestamp())}, NULL, 'queued'), "
            f"('api', {int(T0.timestamp())}, {int(T0.timestamp()) + 30}, 'running')"
        )
    engine.dispose()

    store = Store.open(url)  # upgrades to head
    try:
        web, api = sorted(store.list_refresh_runs(), key=lambda r: r.id)
        assert (web.status, web.owner, web.heartbeat_at) == ("queued", None, None)
        assert api.status == "running" and api.started_at == T0 + dt.timedelta(seconds=30)
        # No heartbeat: the later of requested_at and started_at stands for the last one.
        swept = store.abandon_stale_refresh_runs(T0 + dt.timedelta(seconds=30), at=T0 + LEASE)
        assert [r.id for r in swept] == [web.id]
        [api_swept] = store.abandon_stale_refresh_runs(T0 + dt.timedelta(seconds=31), at=T0 + LEASE)
        assert api_swept.error == _abandoned("an older version", "2024-03-01T00:00:30Z")
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0005")
        columns = {c["name"] for c in sa.inspect(store.engine).get_columns("refresh_runs")}
        assert not columns & {"owner", "heartbeat_at"} and "status" in columns
        with store.engine.connect() as conn:
            kept = conn.exec_driver_sql("SELECT status FROM refresh_runs ORDER BY id").all()
        assert [row[0] for row in kept] == ["failed", "failed"]  # rows survive the downgrade
    finally:
        store.close()
