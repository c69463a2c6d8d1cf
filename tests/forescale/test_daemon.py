"""The daemon: jobs once, scheduler settings, leader lock and standby, shutdown, refit failure."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from forescale.config.settings import Settings, load_settings
from forescale.daemon import (
    ChangeWatch,
    Daemon,
    DaemonConfig,
    FileLeaderLock,
    JsonFormatter,
    PgLeaderLock,
    configure_logging,
    leader_lock_for,
    refit_job,
)
from forescale.errors import ConfigError, ForecastError
from forescale.forecaster.candidates import CandidateSet
from forescale.forecaster.types import Forecast
from forescale.store import Store
from forescale.usecases.context import App
from tests.conftest import ROOT, tree_hashes
from tests.fakes import FAST as CANDIDATES
from tests.forescale.test_store_postgres import PgCluster, pg_cluster  # noqa: F401 - fixture

NOW = dt.datetime(2014, 11, 26, 23, 0, tzinfo=dt.UTC)  # 18:00 in New York
FAST = DaemonConfig(standby_poll=dt.timedelta(seconds=0.05))


def failing_forecaster(*args: Any, **kwargs: Any) -> Forecast:
    raise ForecastError("model fit failed (test)")


@pytest.fixture
def settings(demo_dir: Path) -> Settings:
    return load_settings(demo_dir / "forescale.yaml")  # mode: dry-run, CSV source


@pytest.fixture
def jobs() -> list[tuple[str, bool]]:
    return []


FAILING = CandidateSet(fitters={"prophet": failing_forecaster})


def make(settings: Settings, jobs: list[tuple[str, bool]], **kwargs: Any) -> Daemon:
    kwargs.setdefault("candidates", CANDIDATES)
    return Daemon(
        settings,
        kwargs.pop("config", FAST),
        clock=lambda: NOW,
        on_job=lambda job, seconds, ok: jobs.append((job, ok)),
        **kwargs,
    )


def forecast_ids(settings: Settings) -> int | None:
    store = Store.open(settings.store_url)
    try:
        latest = store.latest_run_stamp("web")
        return None if latest is None else latest.id
    finally:
        store.close()


def test_once_collects_refits_and_applies_then_releases(
    demo_dir: Path, settings: Settings, jobs: list[tuple[str, bool]]
) -> None:
    before = tree_hashes(demo_dir)
    daemon = make(settings, jobs)
    assert daemon.run_once()
    assert jobs == [("collect", True), ("refit", True), ("apply", True)]
    assert tree_hashes(demo_dir) == before  # dry-run: no file written
    store = Store.open(settings.store_url)
    try:
        run = store.last_collect("web")
        assert run is not None and run.error is None and run.written == 10320
        assert run.at == NOW  # the injected clock
        latest = store.latest_forecast("web")
        assert latest is not None and latest.model == "seasonal_naive_1d"
        assert latest.as_of == NOW
        assert store.list_changes("web") == []  # refit records no plan; dry-run applies none
    finally:
        store.close()
    # The leader lock was released: a new daemon takes it at once.
    other = FileLeaderLock(demo_dir / ".forescale" / ".forescale-daemon.lock")
    assert other.try_acquire()
    other.release()


def test_scheduler_is_utc_single_instance_coalescing(
    settings: Settings, jobs: list[tuple[str, bool]]
) -> None:
    config = DaemonConfig(
        collect_every=dt.timedelta(minutes=5),
        refit_every=dt.timedelta(hours=6),
        apply_every=dt.timedelta(minutes=3),
        misfire_grace=dt.timedelta(seconds=90),
    )
    scheduler = make(settings, jobs, config=config).build_scheduler()
    assert str(scheduler.timezone) == "UTC"
    found = {job.id: job for job in scheduler.get_jobs()}
    assert sorted(found) == ["apply", "collect", "refit"]
    for job in found.values():
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time == 90
        assert str(job.trigger.timezone) == "UTC"
    assert found["collect"].trigger.interval == dt.timedelta(minutes=5)
    assert found["refit"].trigger.interval == dt.timedelta(hours=6)
    assert found["apply"].trigger.interval == dt.timedelta(minutes=3)


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ConfigError, match="collect-every"):
        DaemonConfig(collect_every=dt.timedelta(0))
    with pytest.raises(ConfigError, match="standby-poll"):
        DaemonConfig(standby_poll=dt.timedelta(minutes=5))


def test_second_daemon_waits_as_standby_and_takes_over(
    settings: Settings, jobs: list[tuple[str, bool]]
) -> None:
    first, second = make(settings, jobs), make(settings, jobs)
    assert first.lock.try_acquire()
    assert not second.lock.try_acquire()  # a separate open file description: contended
    with pytest.raises(ConfigError, match="another forescale daemon"):
        second.run_once()
    assert jobs == []  # the standby ran nothing

    stop = threading.Event()
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(second.wait_for_leadership(stop)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and not result  # still standby while the first holds the lock
    first.lock.release()
    waiter.join(2)
    assert result == [True]
    assert not first.lock.try_acquire()  # now the second one is the leader
    second.lock.release()


def test_standby_stops_when_asked(settings: Settings, jobs: list[tuple[str, bool]]) -> None:
    leader, standby = make(settings, jobs), make(settings, jobs)
    assert leader.lock.try_acquire()
    stop = threading.Event()
    stop.set()
    try:
        assert standby.run(stop) == 0  # stopped while standby: no job, no store
        assert jobs == [] and standby.store is None
    finally:
        leader.lock.release()


def test_run_collects_at_start_and_stops_cleanly(
    settings: Settings, jobs: list[tuple[str, bool]]
) -> None:
    daemon = make(settings, jobs)
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(daemon.run(stop)))
    thread.start()
    deadline = time.monotonic() + 20
    while not jobs and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and result == [0]
    assert jobs == [("collect", True)]  # refit/apply are hours/minutes away
    # No forecast existed, so the collect job refitted.
    assert forecast_ids(settings) is not None
    assert daemon.store is None and daemon.lock.try_acquire()  # closed and released
    daemon.lock.release()


def test_failed_refit_keeps_the_last_good_forecast(
    settings: Settings, jobs: list[tuple[str, bool]]
) -> None:
    assert make(settings, jobs).run_once()
    good = forecast_ids(settings)
    assert good is not None
    jobs.clear()
    assert not make(settings, jobs, candidates=FAILING).run_once()
    assert ("refit", False) in jobs
    assert forecast_ids(settings) == good  # nothing replaced it

    store = Store.open(settings.store_url)
    try:
        app = App(settings=settings, store=store, candidates=FAILING)
        outcome = refit_job(app, clock=lambda: NOW)
    finally:
        store.close()
    assert "model fit failed (test)" in (outcome["web"] or "")
    assert forecast_ids(settings) == good


def test_events_file_change_triggers_a_refit(
    demo_dir: Path, settings: Settings, jobs: list[tuple[str, bool]]
) -> None:
    assert make(settings, jobs).run_once()
    first = forecast_ids(settings)
    daemon = make(settings, jobs)
    assert daemon.lock.try_acquire()
    daemon.open_store()  # records the files' modification times
    try:
        assert daemon.collect()
        assert forecast_ids(settings) == first  # fresh forecast, nothing changed
        events = demo_dir / "events.yaml"
        later = events.stat().st_mtime + 10
        os.utime(events, (later, later))
        assert daemon.collect()
        second = forecast_ids(settings)
        assert second is not None and first is not None and second > first
    finally:
        daemon.close()


def test_change_watch_reports_changes_after_the_first_look(settings: Settings) -> None:
    watch = ChangeWatch()
    assert settings.config_path is not None
    assert watch.changed(settings) == []
    assert watch.changed(settings) == []
    later = settings.config_path.stat().st_mtime + 5
    os.utime(settings.config_path, (later, later))
    assert watch.changed(settings) == [settings.config_path]


def test_lock_location(tmp_path: Path) -> None:
    lock = leader_lock_for(f"sqlite:///{tmp_path}/db/f.db")
    assert isinstance(lock, FileLeaderLock)
    assert lock.path == tmp_path / "db" / ".forescale-daemon.lock"
    assert "secret" not in leader_lock_for("postgresql://u:secret@h/db").describe()
    with pytest.raises(ConfigError):
        leader_lock_for("sqlite:///:memory:")


def test_a_store_reached_through_a_symlink_shares_its_leader_lock(tmp_path: Path) -> None:
    """A second path to the same database (a symlink in another folder) made a second
    leader: the lock file sat beside the path as written."""
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "f.db").write_bytes(b"")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "f.db").symlink_to(tmp_path / "db" / "f.db")
    first = leader_lock_for(f"sqlite:///{tmp_path}/db/f.db")
    second = leader_lock_for(f"sqlite:///{tmp_path}/other/f.db")
    assert isinstance(first, FileLeaderLock) and isinstance(second, FileLeaderLock)
    assert first.path == second.path
    assert first.try_acquire()
    try:
        assert not second.try_acquire()
    finally:
        first.release()


@pytest.mark.external_service
def test_postgres_advisory_lock_admits_one_leader(pg_cluster: PgCluster) -> None:  # noqa: F811
    url = pg_cluster.url()
    first, second = leader_lock_for(url), leader_lock_for(url)
    assert isinstance(first, PgLeaderLock)
    try:
        assert first.try_acquire()
        assert first.try_acquire()  # re-entrant for its holder
        assert not second.try_acquire()  # another connection: refused, no waiting
        first.release()
        assert second.try_acquire()
    finally:
        first.release()
        second.release()


def test_json_formatter_writes_one_object_per_line() -> None:
    record = logging.LogRecord("forescale.daemon", logging.INFO, "x", 1, "hi %s", ("web",), None)
    record.service = "web"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["msg"] == "hi web" and data["level"] == "info" and data["service"] == "web"
    assert data["ts"].endswith("+00:00")


def _lines(stream: IO[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """Lines of ``stream`` as they arrive (a thread reads until EOF)."""
    found: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            found.put(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return found, thread


def _wait_for(found: queue.Queue[str], text: str, seen: list[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = found.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} not logged; got:\n{''.join(seen)}")


@pytest.fixture
def daemons(demo_dir: Path) -> Iterator[list[tuple[subprocess.Popen[str], threading.Thread]]]:
    started: list[tuple[subprocess.Popen[str], threading.Thread]] = []
    yield started
    for proc, pump in started:  # never leave one running, even when the test failed
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        pump.join(5)
        assert proc.stderr is not None
        proc.stderr.close()


def _free_port() -> int:
    """A port free right now, for two processes that must share it (closed again here)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str, text: str = "") -> bool:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and text in response.text


def _poll(check: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


@pytest.mark.slow
def test_sigterm_stops_the_daemon_and_the_standby_takes_over(
    demo_dir: Path, daemons: list[tuple[subprocess.Popen[str], threading.Thread]]
) -> None:
    """Two daemons on one host, one store, one API port: the standby cannot bind while the
    leader serves; after SIGTERM it becomes leader and serves /healthz and /metrics on
    that port. Every line either process writes to stderr is JSON."""
    config = demo_dir / "forescale.yaml"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    # A missing CSV: the start-up collect fails fast and the refit finds no data, so no
    # model is ever fitted; the daemon logs the failures and keeps running.
    config.write_text(
        config.read_text().replace("path: demand.csv", "path: missing.csv")
        + f"\napi:\n  port: {port}\n"
    )
    argv = [
        sys.executable,
        "-m",
        "forescale",
        "daemon",
        "-c",
        str(config),
        "--log-format",
        "json",
        "--collect-every",
        "1h",
        "--refit-every",
        "6h",
        "--apply-every",
        "1h",
        "--standby-poll",
        "0.2s",
    ]

    def start() -> tuple[subprocess.Popen[str], queue.Queue[str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORESCALE_")}
        proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stderr is not None
        found, pump = _lines(proc.stderr)
        daemons.append((proc, pump))
        return proc, found

    seen: list[str] = []
    leader, leader_log = start()
    _wait_for(leader_log, "daemon started", seen)
    _wait_for(leader_log, "refit failed for web", seen)  # the start-up collect ran
    assert httpx.get(f"{base}/readyz", timeout=5).json()["role"] == "leader"
    standby, standby_log = start()
    _wait_for(standby_log, "cannot listen on", seen)  # the port is the leader's: retried
    _wait_for(standby_log, "standby:", seen)
    assert httpx.get(f"{base}/readyz", timeout=5).json()["role"] == "leader"  # still it

    leader.send_signal(signal.SIGTERM)
    assert leader.wait(10) == 0
    _wait_for(standby_log, "took over", seen)
    _poll(lambda: _answers(f"{base}/healthz", '"ok"'))
    # The new leader's own metrics: its start-up collect ran after it took over.
    _poll(
        lambda: _answers(f"{base}/metrics", 'forescale_job_duration_seconds_count{job="collect"}')
    )
    ready = httpx.get(f"{base}/readyz", timeout=5).json()
    assert ready["role"] == "leader" and ready["bind_retries"] >= 1
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(10) == 0

    for _proc, pump in daemons:
        pump.join(5)  # both exited: the pumps reach EOF
    for found in (leader_log, standby_log):
        while not found.empty():
            seen.append(found.get())
    records = [json.loads(line) for line in seen]  # every line is JSON, none is blank
    messages = [r["msg"] for r in records]
    assert messages.count("daemon stopped") == 2
    assert sum("cannot listen on" in m for m in messages) == 1  # logged once, not per retry
    assert sum(m.startswith("API listening on") for m in messages) == 2  # each in its turn
    assert any(r["level"] == "warning" and r.get("service") == "web" for r in records)
    assert not any("Traceback" in line for line in seen)


def test_run_tells_each_change_of_role(settings: Settings, jobs: list[tuple[str, bool]]) -> None:
    leader, standby = make(settings, jobs), make(settings, jobs)
    assert leader.lock.try_acquire()
    roles: list[str] = []
    stop = threading.Event()

    def on_role(role: str) -> None:
        roles.append(role)
        if role == "standby":
            leader.lock.release()  # the leader goes away: the standby takes over
        elif role == "leader":
            stop.set()  # and then stops at once

    try:
        assert standby.run(stop, on_role=on_role) == 0
    finally:
        leader.lock.release()
    assert roles == ["standby", "leader", "stopping"]
    stopped: list[str] = []
    assert leader.lock.try_acquire()
    try:
        assert standby.run(stop, on_role=stopped.append) == 0  # stop already set: standby
    finally:
        leader.lock.release()
    assert stopped == ["standby", "stopping"]


def test_json_logging_takes_uvicorn_warnings_and_thread_crashes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """uvicorn's loggers, Python warnings and a crashed thread all become JSON lines."""
    import warnings

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, threading.excepthook)
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.addHandler(logging.StreamHandler())  # as uvicorn's default config does
    uvicorn_error.propagate = False
    try:
        configure_logging("json")
        uvicorn_error.error("[Errno 98] address already in use")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
        thread = threading.Thread(target=lambda: 1 / 0, name="doomed")
        thread.start()
        thread.join(5)
    finally:
        root.handlers[:], _, threading.excepthook = saved
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    lines = capsys.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert [r["logger"] for r in records] == ["uvicorn.error", "py.warnings", "forescale.thread"]
    assert "address already in use" in records[0]["msg"]
    assert "ZeroDivisionError" in records[2]["exc"] and "doomed" in records[2]["msg"]


def test_a_settings_reload_is_handed_to_the_api_it_serves(
    demo_dir: Path, settings: Settings, jobs: list[tuple[str, bool]]
) -> None:
    """The daemon replaced its own settings only; the API in its process kept serving the
    old token and limits (the cli wires ``on_reload`` to the API's ``follow``)."""
    followed: list[Settings] = []
    daemon = make(settings, jobs, on_reload=followed.append)
    assert daemon.lock.try_acquire()
    daemon.open_store()  # records the files' modification times
    try:
        path = settings.config_path
        assert path is not None
        path.write_text(path.read_text().replace("min_units: 4", "min_units: 5"))
        later = path.stat().st_mtime + 10
        os.utime(path, (later, later))
        assert daemon.collect()
        assert [s.services["web"].min_units for s in followed] == [5]
        assert daemon.settings is followed[0]
    finally:
        daemon.close()
