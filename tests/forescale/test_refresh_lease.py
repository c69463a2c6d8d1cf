"""Refresh runs carry a lease: their server beats while it lives, and any server on the same
store fails the runs of a server that stopped beating (killed, out of memory, power lost) as
``abandoned``, so ``GET /v1/runs/refresh-<n>`` never polls a dead run forever.

Time is injected (a :class:`Clock` moved by hand) and heartbeats are called explicitly, so
the lease is tested without sleeping; the last test kills a real server process."""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from forescale.config.settings import Settings, load_settings
from forescale.errors import StoreError
from forescale.records import RefreshRun
from forescale.service import REFRESH_LEASE, Refresher, build_app
from forescale.store import Store, refresh_runs
from tests.fakes import forecast_run

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*install `httpx2` instead", category=Warning)
    from fastapi.testclient import TestClient

T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)
MINUTE = dt.timedelta(minutes=1)
DRIVER = Path(__file__).with_name("refresh_driver.py")
REPO = Path(__file__).parents[2]

SETTINGS_YAML = """\
store_url: sqlite:///store/forescale.db
services:
  web:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 10
    min_units: 2
    max_units: 20
    iac: {working_dir: tf, address: web_min_size}
"""


def abandoned(owner: str, since: str) -> str:
    """The error of a run swept from a server that stopped beating at ``since``."""
    return (
        f"abandoned: the server that ran this refresh ({owner}) stopped without finishing it "
        f"(no heartbeat since {since}); ask again"
    )


class Clock:
    """A clock that stands still until the test moves it."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class Gate:
    """A refit that blocks until ``release`` is set, then returns ``result``."""

    def __init__(self, result: int | None = None) -> None:
        self.result = result
        self.release = threading.Event()
        self.started: queue.Queue[str] = queue.Queue()

    def __call__(self, name: str) -> int | None:
        self.started.put(name)
        if not self.release.wait(30):
            raise RuntimeError("the test never released the refit")
        return self.result


def never(name: str) -> int | None:
    raise AssertionError(f"no refit expected ({name})")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path}/forescale.db")
    yield s
    s.close()


Make = Callable[..., Refresher]


@pytest.fixture
def refreshers() -> Iterator[Make]:
    """Real refreshers; every gate released and every refresher closed at the end."""
    made: list[tuple[Refresher, Gate | None]] = []

    def make(refit: Callable[[str], int | None], store: Store, **kwargs: object) -> Refresher:
        refresher = Refresher(refit, store, **kwargs)  # type: ignore[arg-type]
        made.append((refresher, refit if isinstance(refit, Gate) else None))
        return refresher

    yield make
    for refresher, gate in made:
        if gate is not None:
            gate.release.set()
        refresher.close()


def _run(store: Store, run_id: int) -> RefreshRun:
    run = store.refresh_run(run_id)
    assert run is not None
    return run


def _forecast(store: Store) -> int:
    frame = pd.DataFrame(
        {"ds": [pd.Timestamp(T0)], "yhat": [1.0], "yhat_lower": [0.5], "yhat_upper": [1.5]}
    )
    return store.save_forecast_run(forecast_run("web", frame, at=T0, resolution=MINUTE))


# -- the lease, with an injected clock -------------------------------------------------------
def test_runs_record_their_owner_and_a_live_owner_keeps_its_run_past_the_lease(
    store: Store, refreshers: Make
) -> None:
    gate = Gate()
    clock = Clock(T0)
    live = refreshers(gate, store, clock=clock, owner="host-a:101:aaaa0001")
    run = live.submit("web").run
    assert (run.owner, run.heartbeat_at, run.status) == ("host-a:101:aaaa0001", T0, "queued")
    assert gate.started.get(timeout=10) == "web"
    for minutes in range(1, 6):  # five minutes of beats, every minute: past two leases
        clock.now = T0 + minutes * MINUTE
        live.heartbeat()
    assert _run(store, run.id).heartbeat_at == T0 + 5 * MINUTE
    # Another server on the store sweeps exactly one lease after the last beat: not stale.
    sweeper = refreshers(never, store, clock=lambda: T0 + 5 * MINUTE + REFRESH_LEASE)
    assert sweeper.heartbeat() == []
    assert _run(store, run.id).status == "running"
    gate.release.set()
    assert live.wait_idle(10)
    assert _run(store, run.id).status == "succeeded"


def test_a_stopped_owner_s_runs_fail_as_abandoned_after_the_lease_and_not_before(
    store: Store, refreshers: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="forescale.service")
    dead = "host-b:202:bbbb0002"  # stopped beating: its rows are all that is left of it
    running = store.create_refresh_run("web", requested_at=T0, owner=dead)
    store.start_refresh_run(running.id, started_at=T0 + 10 * SECOND, owner=dead)
    queued = store.create_refresh_run("api", requested_at=T0 + 20 * SECOND, owner=dead)
    clock = Clock(T0 + 10 * SECOND + REFRESH_LEASE)  # the running one's lease, to the second
    sweeper = refreshers(never, store, clock=clock, owner="host-c:303:cccc0003")
    assert [_run(store, r.id).status for r in (running, queued)] == ["running", "queued"]
    assert caplog.records == []

    clock.now += SECOND
    swept = sweeper.heartbeat()
    assert [r.id for r in swept] == [running.id]  # the queued one was asked later
    after = _run(store, running.id)
    assert after.status == "failed" and after.finished_at == clock.now
    assert after.error == abandoned(dead, "2024-03-01T12:00:10Z")
    assert after.forecast_run_id is None
    assert _run(store, queued.id).status == "queued"

    clock.now += 10 * SECOND
    assert [r.id for r in sweeper.heartbeat()] == [queued.id]
    assert _run(store, queued.id).error == abandoned(dead, "2024-03-01T12:00:20Z")
    assert sweeper.heartbeat() == []  # each run is abandoned once
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all(r.levelno == logging.WARNING for r in caplog.records)
    assert f"refresh-{running.id}" in messages[0] and f"refresh-{queued.id}" in messages[1]
    assert dead in messages[0]


def test_a_swept_owner_that_was_only_paused_records_its_real_outcome(
    store: Store, refreshers: Make
) -> None:
    forecast_id = _forecast(store)
    gate = Gate(result=forecast_id)
    paused = refreshers(gate, store, clock=lambda: T0, owner="host-d:404:dddd0004")
    run = paused.submit("web").run
    assert gate.started.get(timeout=10) == "web"
    # The owner stalls (a long GC pause, a stopped VM) past the lease: a new server sweeps.
    refreshers(never, store, clock=lambda: T0 + REFRESH_LEASE + SECOND)
    assert _run(store, run.id).status == "failed"
    paused.heartbeat()  # beating again does not revive a swept run ...
    assert _run(store, run.id).status == "failed"
    gate.release.set()  # ... but its outcome is the truth: it did run
    assert paused.wait_idle(10)
    done = _run(store, run.id)
    assert done.status == "succeeded" and done.error is None
    assert done.forecast_run_id == forecast_id and done.finished_at == T0


def test_another_owner_cannot_finish_a_run(store: Store) -> None:
    run = store.create_refresh_run("web", requested_at=T0, owner="host-e:505:eeee0005")
    assert not store.finish_refresh_run(
        run.id, finished_at=T0, error="not mine", owner="host-f:606:ffff0006"
    )
    assert not store.finish_refresh_run(run.id, finished_at=T0, error="no owner given")
    assert _run(store, run.id).status == "queued"
    assert store.finish_refresh_run(run.id, finished_at=T0, owner="host-e:505:eeee0005")
    assert _run(store, run.id).status == "succeeded"


def test_a_legacy_row_without_owner_or_heartbeat_is_swept(store: Store, refreshers: Make) -> None:
    """Rows written before migration 0006: no owner, no heartbeat; their last sign of life
    is when they were asked for or started, whichever is later."""
    with store.engine.begin() as conn:
        ids = [
            conn.execute(
                refresh_runs.insert().values(
                    service=service, requested_at=requested, started_at=started, status=status
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            for service, requested, started, status in (
                ("web", int(T0.timestamp()), int(T0.timestamp()) + 30, "running"),
                ("api", int(T0.timestamp()) + 40, None, "queued"),
            )
        ]
    clock = Clock(T0 + 30 * SECOND + REFRESH_LEASE)
    sweeper = refreshers(never, store, clock=clock)
    assert [_run(store, i).status for i in ids] == ["running", "queued"]
    clock.now = T0 + 40 * SECOND + REFRESH_LEASE + SECOND
    assert sorted(r.id for r in sweeper.heartbeat()) == sorted(ids)
    web, api = (_run(store, i) for i in ids)
    assert web.error == abandoned("an older version", "2024-03-01T12:00:30Z")
    assert api.error == abandoned("an older version", "2024-03-01T12:00:40Z")
    assert web.owner is None and web.status == api.status == "failed"


# -- the owner and the heartbeat thread -----------------------------------------------------
def test_the_default_owner_names_host_and_process_in_64_characters(
    store: Store, refreshers: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = refreshers(never, store).owner
    second = refreshers(never, store).owner
    assert re.fullmatch(rf"{re.escape(socket.gethostname())}:{os.getpid()}:[0-9a-f]{{8}}", first)
    assert first != second  # two refreshers of one process are two owners
    monkeypatch.setattr(socket, "gethostname", lambda: "h" * 200)
    long_host = refreshers(never, store).owner
    assert len(long_host) == 64 and re.fullmatch(rf"h+:{os.getpid()}:[0-9a-f]{{8}}", long_host)
    with pytest.raises(ValueError, match="64"):
        Refresher(never, store, owner="x" * 65)
    with pytest.raises(ValueError, match="lease"):
        Refresher(never, store, lease=dt.timedelta(0))


def test_the_heartbeat_thread_survives_store_errors_and_close_joins_it(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[dt.datetime] = []
    beating = threading.Event()
    real_beat = store.beat_refresh_runs

    def flaky_beat(owner: str, at: dt.datetime) -> int:
        calls.append(at)
        if len(calls) <= 3:  # the construction's beat and the thread's first two
            raise StoreError("store forescale.db: database is locked")
        if len(calls) >= 5:
            beating.set()
        return real_beat(owner, at)

    monkeypatch.setattr(store, "beat_refresh_runs", flaky_beat)
    before = set(threading.enumerate())
    refresher = Refresher(never, store, clock=lambda: T0, lease=dt.timedelta(milliseconds=40))
    try:
        assert beating.wait(30), calls  # every lease/4 = 10 ms, errors notwithstanding
    finally:
        refresher.close()
    assert [t for t in threading.enumerate() if t not in before] == []  # none left behind
    errors = [r for r in caplog.records if "database is locked" in r.getMessage()]
    assert len(errors) == 3 and all(r.levelno == logging.ERROR for r in errors)
    assert all(r.exc_info is None for r in errors)  # a store error, not a bug: no traceback


# -- the real thing: a server SIGKILLed mid-refresh ------------------------------------------
def _settings(tmp_path: Path) -> Settings:
    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "terraform.tfvars").write_text("web_min_size = 4\n")
    (tmp_path / "demand.csv").write_text("timestamp,value\n2024-03-01T00:00:00Z,1\n")
    (tmp_path / "forescale.yaml").write_text(SETTINGS_YAML)
    return load_settings(tmp_path / "forescale.yaml")


def _first_line(proc: subprocess.Popen[str], seconds: float) -> str:
    """The first line ``proc`` writes to stdout, waiting at most ``seconds`` ('' if none)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        lines.put(proc.stdout.readline())

    threading.Thread(target=read, daemon=True).start()
    try:
        return lines.get(timeout=seconds)
    except queue.Empty:
        return ""


def test_a_killed_server_s_run_is_failed_by_the_next_server_and_the_api_says_so(
    tmp_path: Path, refreshers: Make
) -> None:
    settings = _settings(tmp_path)
    Store.open(settings.store_url).close()  # migrated before the child opens it
    stderr = (tmp_path / "driver.stderr").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), settings.store_url, T0.isoformat()],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        line = _first_line(proc, 60)
    finally:
        proc.kill()  # SIGKILL: no cleanup, no finally, no close() in the server
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()
        stderr.close()
    assert line.startswith("running "), (line, (tmp_path / "driver.stderr").read_text())
    _, run_id, owner = line.split()
    assert f":{proc.pid}:" in owner and proc.returncode == -signal.SIGKILL

    store = Store.open(settings.store_url)
    try:
        left = _run(store, int(run_id))
        assert (left.status, left.owner) == ("running", owner)  # what the dead server left
        later = T0 + REFRESH_LEASE + SECOND
        refresher = refreshers(never, store, clock=lambda: later)  # construction alone sweeps
        expected = abandoned(owner, "2024-03-01T12:00:00Z")
        swept = _run(store, int(run_id))
        assert (swept.status, swept.error, swept.finished_at) == ("failed", expected, later)

        client = TestClient(
            build_app(settings, store, CollectorRegistry(), refresher), base_url="http://localhost"
        )
        with client:
            answer = client.get(f"/v1/runs/refresh-{run_id}")
            assert answer.status_code == 200
            assert answer.json() == {
                "kind": "refresh",
                "id": f"refresh-{run_id}",
                "service": "web",
                "status": "failed",
                "requested_at": "2024-03-01T12:00:00Z",
                "started_at": "2024-03-01T12:00:00Z",
                "finished_at": "2024-03-01T12:02:01Z",
                "error": expected,
                "forecast_run_id": None,
            }
            [listed] = client.get("/v1/runs", params={"kind": "refresh"}).json()["items"]
            assert (listed["status"], listed["error"]) == ("failed", expected)
    finally:
        store.close()
