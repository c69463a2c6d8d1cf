"""The store against a real PostgreSQL, started on 127.0.0.1 by a fixture and torn down.

The cluster is a throwaway: ``initdb -A trust -U forescale`` into a temporary directory,
``postgres -c fsync=off`` on a free port, one fresh database per test. ``initdb`` refuses to
run as root, so under root (containers, CI) both binaries run as an existing unprivileged
user (``postgres`` if it exists, else ``nobody``) that owns the temporary directory. The
directory is made with :func:`tempfile.mkdtemp` directly under the system temp dir because
pytest's ``tmp_path`` lives under a root-only (0700) parent the unprivileged user cannot enter.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from forescale.records import ChangeRecord
from forescale.store import Store
from tests.fakes import forecast_run

pytestmark = pytest.mark.external_service

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
READY_TIMEOUT_S = 15.0
APT_HINT = "apt-get install -y postgresql"


def _find_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]  # the newest installed major version
    pytest.fail(
        f"PostgreSQL binary {name!r} not found on PATH or in /usr/lib/postgresql/*/bin; "
        f"install it with: {APT_HINT}"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> dict[str, Any]:
    """``subprocess`` keyword arguments dropping root to an unprivileged existing user."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    pytest.fail(
        "running as root and neither a 'postgres' nor a 'nobody' user exists; "
        "initdb refuses to run as root"
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class PgCluster:
    port: int
    datadir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://forescale@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=forescale dbname={database}"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    initdb, postgres = _find_bin("initdb"), _find_bin("postgres")
    drop = _run_as()
    root = Path(tempfile.mkdtemp(prefix="forescale-pg-"))
    datadir = root / "data"
    log = root / "postgres.log"
    if drop:
        os.chown(root, drop["user"], drop["group"])
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    proc: subprocess.Popen[bytes] | None = None
    try:
        init = subprocess.run(
            [
                initdb,
                "-D",
                str(datadir),
                "-A",
                "trust",
                "-U",
                "forescale",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            cwd=root,
            env=env,
            timeout=60,
            check=False,
            **drop,
        )
        if init.returncode != 0:
            pytest.fail(f"initdb failed ({init.returncode}): {init.stderr.decode()[-2000:]}")
        port = _free_port()
        with log.open("wb") as log_file:
            if drop:
                os.chown(log, drop["user"], drop["group"])
            proc = subprocess.Popen(
                [
                    postgres,
                    "-D",
                    str(datadir),
                    "-k",
                    str(root),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "synchronous_commit=off",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=root,
                env=env,
                **drop,
            )
        cluster = PgCluster(port=port, datadir=datadir)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"postgres exited with {proc.returncode}: "
                    f"{log.read_text(errors='replace')[-2000:]}"
                )
            try:
                with psycopg.connect(cluster.conninfo(), connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"postgres not ready after {READY_TIMEOUT_S} s: "
                        f"{log.read_text(errors='replace')[-2000:]}"
                    )
                time.sleep(0.1)
        yield cluster
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()  # SIGTERM: "smart" shutdown; fast enough with no clients left
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_store(pg_cluster: PgCluster) -> Iterator[Store]:
    """A Store on a fresh, empty database of the shared cluster."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    store = Store.open(pg_cluster.url(name))
    assert store.engine.dialect.name == "postgresql"
    yield store
    store.close()
    with psycopg.connect(pg_cluster.conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}"')


def _change(**overrides: Any) -> ChangeRecord:
    fields: dict[str, Any] = {
        "service": "web",
        "due_at": T0,
        "var_file": "a.tfvars",
        "address": "web_min_size",
        "from_units": 2,
        "to_units": 4,
        "direction": "raise",
        "reason": "peak at 19:00",
        "mode": "apply",
        "status": "intent",
        "diff": "-2\n+4\n",
    }
    fields.update(overrides)
    return ChangeRecord(**fields)


def test_schema_created_and_upsert_is_idempotent(pg_store: Store) -> None:
    ds = pd.date_range(T0, periods=6, freq="5min")
    series = pd.DataFrame({"ds": ds, "y": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0]})
    assert pg_store.upsert_samples("web", series) == 5  # the gap is not stored
    assert pg_store.upsert_samples("web", series) == 5  # ON CONFLICT: no duplicate rows
    back = pg_store.load_samples("web")
    assert back["y"].tolist() == [1.0, 2.0, 4.0, 5.0, 6.0]
    assert back["ds"].iloc[0] == pd.Timestamp(T0) and str(back["ds"].dt.tz) == "UTC"
    assert pg_store.last_sample_time("web") == T0 + dt.timedelta(minutes=25)
    assert pg_store.load_samples("db").empty and pg_store.last_sample_time("db") is None
    # a late correction replaces the stored value and touches no other service
    pg_store.upsert_samples("db", pd.DataFrame({"ds": ds[:1], "y": [9.0]}))
    pg_store.upsert_samples("web", pd.DataFrame({"ds": ds[5:], "y": [60.0]}))
    assert pg_store.load_samples("web")["y"].tolist()[-1] == 60.0
    assert pg_store.load_samples("db")["y"].tolist() == [9.0]


def test_load_window_is_inclusive_and_chunked_upsert(pg_store: Store) -> None:
    ds = pd.date_range(T0, periods=12_001, freq="1min")  # > 2 chunks of 5,000 rows
    assert pg_store.upsert_samples("web", pd.DataFrame({"ds": ds, "y": np.arange(12_001.0)})) == (
        12_001
    )
    window = pg_store.load_samples(
        "web", T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(minutes=12)
    )
    assert window["y"].tolist() == [10.0, 11.0, 12.0]
    assert len(pg_store.load_samples("web", start=T0 + dt.timedelta(minutes=12_000))) == 1
    assert len(pg_store.load_samples("web", end=T0)) == 1


def test_forecast_round_trip_keeps_components_and_newest_wins(pg_store: Store) -> None:
    ds = pd.date_range(T0, periods=3, freq="1h")
    frame = pd.DataFrame(
        {
            "ds": ds,
            "yhat": [1.0, 2.0, 3.0],
            "yhat_lower": [0.5, 1.5, 2.5],
            "yhat_upper": [1.5, 2.5, 3.5],
            "weekly": [0.1, -0.2, 0.3],
            "daily": [0.0, 0.5, -0.5],
        }
    )
    assert pg_store.latest_forecast("web") is None
    hour = dt.timedelta(hours=1)
    first = pg_store.save_forecast_run(
        forecast_run(
            "web",
            frame,
            at=T0,
            resolution=hour,
            model="prophet",
            components=("weekly", "daily"),
            notes=("a",),
            history_end=T0 - dt.timedelta(minutes=5),
        )
    )
    second = pg_store.save_forecast_run(
        forecast_run(
            "web",
            frame.assign(yhat=[7.0, 8.0, 9.0]),
            at=T0,
            resolution=hour,
            model="prophet",
            components=("weekly",),
            notes=("n",),
        )
    )
    assert second > first
    info = pg_store.latest_forecast("web")
    assert info is not None and info.id == second and info.notes == ("n",)
    assert info.resolution == hour
    back = info.frame
    assert back is not None
    assert back["yhat"].tolist() == [7.0, 8.0, 9.0] and back["weekly"].tolist() == [0.1, -0.2, 0.3]
    assert "daily" not in back.columns
    assert back["ds"].tolist() == list(ds)


def test_change_records_and_pending_change(pg_store: Store) -> None:
    assert pg_store.pending_change("web") is None
    planned = pg_store.record_change(_change(status="planned", mode="dry-run"), created_at=T0)
    assert pg_store.pending_change("web") is None  # a dry-run report is never resumed
    intent = pg_store.record_change(
        _change(guard_reasons=("ok",), trigger="daemon"), created_at=T0 + dt.timedelta(minutes=1)
    )
    assert intent > planned
    pending = pg_store.pending_change("web")
    assert pending is not None and pending.id == intent and pending.status == "intent"
    assert pending.guard_reasons == ("ok",) and pending.trigger == "daemon"
    assert pending.created_at == T0 + dt.timedelta(minutes=1)
    done = T0 + dt.timedelta(minutes=3)
    pg_store.update_change(
        intent, status="applied", exit_code=0, guard_reasons=["a", "b"], finished_at=done
    )
    assert pg_store.pending_change("web") is None
    history = pg_store.list_changes("web")
    assert [c.id for c in history] == [intent, planned]
    assert history[0].finished_at == done and history[0].guard_reasons == ("a", "b")
    pg_store.update_change(intent, status="failed", exit_code=1)
    failed = pg_store.pending_change("web")
    assert failed is not None and failed.exit_code == 1  # a failure is resumed
    assert pg_store.list_changes("db") == [] and len(pg_store.list_changes(limit=1)) == 1


def test_record_collect_and_last_collect(pg_store: Store) -> None:
    assert pg_store.last_collect("web") is None
    pg_store.record_collect(
        "web",
        at=T0,
        written=10,
        coverage=0.98,
        last_sample=T0 - dt.timedelta(minutes=1),
        error=None,
    )
    pg_store.record_collect(
        "web",
        at=T0 + dt.timedelta(minutes=5),
        written=0,
        coverage=None,
        last_sample=None,
        error="timeout",
    )
    last = pg_store.last_collect("web")
    assert last is not None
    assert last.at == T0 + dt.timedelta(minutes=5) and last.error == "timeout"
    assert last.last_sample is None and last.written == 0
    assert pg_store.last_collect("db") is None


ALEMBIC_INI = Path(__file__).parents[2] / "alembic.ini"


@contextlib.contextmanager
def scratch_engine(pg_cluster: PgCluster) -> Iterator[sa.Engine]:
    """An engine on a new, empty database, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(pg_cluster.url(name), poolclass=sa.pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(pg_cluster.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}"')


def test_alembic_head_equals_store_metadata_and_downgrades(pg_cluster: PgCluster) -> None:
    """``alembic upgrade head`` builds exactly ``store.metadata``; ``downgrade base`` empties."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    from forescale.store import metadata

    with scratch_engine(pg_cluster) as engine:
        config = Config(str(ALEMBIC_INI))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        store = Store(engine)  # the migrated schema serves the store
        store.upsert_samples("web", pd.DataFrame({"ds": [pd.Timestamp(T0)], "y": [1.0]}))
        assert store.last_sample_time("web") == T0
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}


def test_refresh_run_heartbeats_and_the_sweep(pg_store: Store) -> None:
    """The sweep's one UPDATE writes its message in SQL: PostgreSQL formats the time too."""
    second = dt.timedelta(seconds=1)
    lease = dt.timedelta(minutes=2)
    live = pg_store.create_refresh_run("web", requested_at=T0, owner="a:1:0001")
    dead = pg_store.create_refresh_run("api", requested_at=T0, owner="b:2:0002")
    pg_store.start_refresh_run(dead.id, started_at=T0 + 7 * second, owner="b:2:0002")
    assert pg_store.beat_refresh_runs("a:1:0001", T0 + 90 * second) == 1
    assert pg_store.abandon_stale_refresh_runs(T0 + 7 * second, at=T0 + lease) == []
    [swept] = pg_store.abandon_stale_refresh_runs(T0 + 8 * second, at=T0 + lease)
    assert swept.id == dead.id and swept.status == "failed" and swept.finished_at == T0 + lease
    assert swept.error == (
        "abandoned: the server that ran this refresh (b:2:0002) stopped without finishing it "
        "(no heartbeat since 2024-03-01T00:00:07Z); ask again"
    )
    beaten = pg_store.refresh_run(live.id)
    assert beaten is not None and beaten.status == "queued"
    assert beaten.heartbeat_at == T0 + 90 * second
    assert not pg_store.finish_refresh_run(dead.id, finished_at=T0 + lease, owner="a:1:0001")
    forecast_id = pg_store.save_forecast_run(
        forecast_run(
            "api",
            pd.DataFrame(
                {"ds": [pd.Timestamp(T0)], "yhat": [1.0], "yhat_lower": [1.0], "yhat_upper": [1.0]}
            ),
            at=T0,
            resolution=dt.timedelta(hours=1),
        )
    )
    assert pg_store.finish_refresh_run(
        dead.id, finished_at=T0 + lease, forecast_run_id=forecast_id, owner="b:2:0002"
    )
    back = pg_store.refresh_run(dead.id)
    assert back is not None and (back.status, back.forecast_run_id) == ("succeeded", forecast_id)


def test_migration_0006_on_postgres_keeps_a_queued_run_for_the_sweep(
    pg_cluster: PgCluster,
) -> None:
    from alembic import command
    from alembic.config import Config

    with scratch_engine(pg_cluster) as engine:
        config = Config(str(ALEMBIC_INI))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0005")
            conn.exec_driver_sql(
                "INSERT INTO refresh_runs (service, requested_at, status) "
                f"VALUES ('web', {int(T0.timestamp())}, 'queued')"
            )
            command.upgrade(config, "head")
        store = Store(engine)
        [run] = store.list_refresh_runs()
        assert (run.status, run.owner, run.heartbeat_at) == ("queued", None, None)
        [swept] = store.abandon_stale_refresh_runs(
            T0 + dt.timedelta(seconds=1), at=T0 + dt.timedelta(minutes=2)
        )
        assert swept.id == run.id and swept.error is not None
        assert "(an older version)" in swept.error and "2024-03-01T00:00:00Z" in swept.error
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0005")
        columns = {c["name"] for c in sa.inspect(engine).get_columns("refresh_runs")}
        assert not columns & {"owner", "heartbeat_at"}
