"""The API server (bound sockets, bind retries, Host check on the wire), the daemon serving
its API in-process, and `forescale serve`, as real processes."""

from __future__ import annotations

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from forescale.config.settings import load_settings
from forescale.service import ApiServer, build_app
from forescale.store import Store

TOKEN = "s3cret-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], object], seconds: float = 30.0) -> None:
    """Poll ``check`` until it is true (HTTP errors count as false), at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def raw_request(port: int, request: bytes) -> bytes:
    """Send ``request`` as bytes on a fresh connection; the whole answer (until close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# -- ApiServer in this process ----------------------------------------------------------
@pytest.fixture
def app(demo_dir: Path) -> Iterator[Any]:
    settings = load_settings(demo_dir / "forescale.yaml")
    store = Store.open(settings.store_url)
    yield build_app(settings, store, CollectorRegistry(), None)
    store.close()


@pytest.fixture
def servers() -> Iterator[list[ApiServer]]:
    started: list[ApiServer] = []
    yield started
    for server in started:
        server.stop()


def test_allowed_hosts_come_from_the_settings(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*install `httpx2` instead", category=Warning)
        from fastapi.testclient import TestClient

    monkeypatch.setenv("FORESCALE_API__ALLOWED_HOSTS", '["forescale.internal"]')
    settings = load_settings(demo_dir / "forescale.yaml")
    assert settings.api.allowed_hosts == ["forescale.internal"]
    store = Store.open(settings.store_url)
    try:
        client = TestClient(build_app(settings, store, CollectorRegistry(), None))
        assert (
            client.get("/healthz", headers={"Host": "forescale.internal:8080"}).status_code == 200
        )
        refused = client.get("/healthz", headers={"Host": "localhost"})
        assert refused.status_code == 400 and refused.json()["error"]["type"] == "InvalidHost"
    finally:
        store.close()


def test_reloaded_settings_reach_the_running_api(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon reloaded its settings but the API it serves kept the old ones: a
    rotated token stayed valid, the new one was refused, protect_reads did nothing."""
    import warnings

    from forescale.service import reconfigure

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*install `httpx2` instead", category=Warning)
        from fastapi.testclient import TestClient

    path = demo_dir / "forescale.yaml"
    original = path.read_text()
    path.write_text(original + "\napi:\n  token: old-leaked-token\n")
    settings = load_settings(path)
    store = Store.open(settings.store_url)
    try:
        api = build_app(settings, store, CollectorRegistry(), None)
        client = TestClient(api, base_url="http://localhost")
        assert client.get("/v1/services").status_code == 200
        refresh = "/v1/services/web/refresh"
        assert (
            client.post(refresh, headers={"Authorization": "Bearer new-token"}).status_code == 401
        )
        path.write_text(original + "\napi:\n  token: new-token\n  protect_reads: true\n")
        reconfigure(api, load_settings(path))
        old = client.post(refresh, headers={"Authorization": "Bearer old-leaked-token"})
        assert old.status_code == 401
        new = client.post(refresh, headers={"Authorization": "Bearer new-token"})
        assert new.status_code != 401  # 503 here: this app queues no refreshes
        assert client.get("/v1/services").status_code == 401  # reads need the token now
        listed = client.get("/v1/services", headers={"Authorization": "Bearer new-token"})
        assert listed.status_code == 200
    finally:
        store.close()


def test_binds_port_zero_and_checks_host_on_the_wire(app: Any, servers: list[ApiServer]) -> None:
    server = ApiServer(app, "127.0.0.1", 0)
    servers.append(server)
    assert server.start()  # bound at once
    port = server.port
    assert port is not None and port > 0 and server.bind_retries == 0
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{base}/healthz", timeout=2).status_code == 200)
    assert httpx.get(f"{base}/readyz", timeout=5).json() == {
        "status": "ready",
        "role": "api-only",
        "bind_retries": 0,
    }
    # A DNS-rebinding page: the browser sends the attacker's name as Host.
    rebound = httpx.get(
        f"{base}/v1/runs", headers={"Host": f"rebind.attacker.example:{port}"}, timeout=5
    )
    assert rebound.status_code == 400 and rebound.json()["error"]["type"] == "InvalidHost"
    assert httpx.get(f"{base}/v1/runs", headers={"Host": f"localhost:{port}"}).status_code == 200
    # HTTP/1.0 without Host: no browser sends that, so no rebinding page can: served.
    answer = raw_request(port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ok"}')
    twice = raw_request(port, b"GET /healthz HTTP/1.0\r\nHost: localhost\r\nHost: evil\r\n\r\n")
    assert twice.startswith(b"HTTP/1.1 400")
    server.stop()
    assert not server.running
    with socket.socket() as s:  # the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_a_taken_port_is_retried_in_the_background_and_logged_once(
    app: Any, servers: list[ApiServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="forescale.service")
    blocker = socket.socket()  # another process's listener on the port (the old leader)
    try:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = int(blocker.getsockname()[1])
        server = ApiServer(app, "127.0.0.1", port, retry_initial=0.01, retry_max=0.02)
        servers.append(server)
        assert not server.start()  # not bound: no exception, retried in the background
        assert server.port is None
        wait_until(lambda: server.bind_retries >= 5)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]  # once per state
        assert f"127.0.0.1:{port}" in warnings[0].getMessage()
        assert "retrying" in warnings[0].getMessage()
        assert warnings[0].errno == 98  # type: ignore[attr-defined]  # EADDRINUSE
    finally:
        blocker.close()
    server.retry_now()
    wait_until(lambda: server.port == port)
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    bound = [r.getMessage() for r in caplog.records if "listening" in r.getMessage()]
    assert len(bound) == 1 and "failed attempts to bind" in bound[0]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == warnings


def test_stop_ends_the_retries(app: Any, servers: list[ApiServer]) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        server = ApiServer(app, "127.0.0.1", int(blocker.getsockname()[1]), retry_initial=0.01)
        servers.append(server)
        assert not server.start()
        assert server.running
        server.stop()
        assert not server.running and server.port is None


# -- real processes ---------------------------------------------------------------------
class Proc:
    """A forescale subprocess whose stderr lines are collected as they arrive."""

    def __init__(self, args: list[str], config: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORESCALE_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forescale", *args, "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, check: Callable[[dict[str, Any]], bool], seconds: float = 30) -> Any:
        """The first JSON log record for which ``check`` is true (every line must be JSON)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.seen.append(line)
            record = json.loads(line)
            if check(record):
                return record
        raise AssertionError(f"not logged; got:\n{''.join(self.seen)}")

    def stop(self) -> tuple[int, list[str]]:
        """SIGTERM, wait (bounded, killed after), every stderr line."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"did not stop on SIGTERM: {''.join(self.seen)}") from None
        finally:
            self.pump.join(5)
            assert self.proc.stderr is not None
            self.proc.stderr.close()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code, self.seen


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:  # never leave one running, even when the test failed
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait(5)
        proc.pump.join(5)
        assert proc.proc.stderr is not None
        proc.proc.stderr.close()


def _configure(demo_dir: Path, port: int) -> Path:
    config = demo_dir / "forescale.yaml"
    config.write_text(config.read_text() + f"\napi:\n  port: {port}\n  token: {TOKEN}\n")
    return config


@pytest.mark.slow
def test_daemon_serves_api_and_metrics_then_stops_on_sigterm(
    demo_dir: Path, procs: list[Proc]
) -> None:
    port = free_port()
    args = ["daemon", "--collect-every", "1h", "--refit-every", "6h", "--apply-every", "1h"]
    proc = Proc([*args, "--log-format", "json"], _configure(demo_dir, port))
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"
    proc.wait_for(lambda r: r["msg"].startswith("API listening on"))
    services = httpx.get(f"{base}/v1/services", timeout=5).json()
    assert "web" in str(services)
    # The first collect job runs at start; its duration lands in /metrics.
    wait_until(
        lambda: (
            'forescale_job_duration_seconds_count{job="collect"} 1.0'
            in httpx.get(f"{base}/metrics", timeout=5).text
        )
    )
    assert httpx.post(f"{base}/v1/services/web/refresh", timeout=5).status_code == 401
    accepted = httpx.post(
        f"{base}/v1/services/web/refresh",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert accepted.status_code == 202 and accepted.json()["run_id"] == "refresh-1"
    # Its outcome is a run record to poll: the demo's history (2014) is far older than
    # max_history before the real clock, so this refit fails, and says why.
    url = f"{base}{accepted.headers['location']}"
    wait_until(lambda: httpx.get(url, timeout=5).json()["status"] in ("succeeded", "failed"))
    outcome = httpx.get(url, timeout=5).json()
    assert outcome["kind"] == "refresh" and outcome["service"] == "web"
    assert outcome["status"] == "failed" and "stored sample" in outcome["error"], outcome
    ready = httpx.get(f"{base}/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "role": "leader", "bind_retries": 0}
    code, lines = proc.stop()
    assert code == 0, "".join(lines[-20:])
    assert all(json.loads(line) for line in lines)  # every line is JSON
    assert TOKEN not in "".join(lines)  # the token is never logged


@pytest.mark.slow
def test_serve_alone_on_a_free_port(demo_dir: Path, procs: list[Proc]) -> None:
    proc = Proc(["serve", "--port", "0", "--log-format", "json"], _configure(demo_dir, 8080))
    procs.append(proc)
    listening = proc.wait_for(lambda r: r["msg"].startswith("API listening on"))
    port = listening["port"]
    assert port not in (0, 8080)  # --port 0 wins over api.port, and the real one is logged
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/v1/services", timeout=5).status_code == 200
    missing = httpx.get(f"{base}/v1/services/nope/forecast", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["message"]
    assert httpx.get(f"{base}/readyz", timeout=5).json()["role"] == "api-only"
    code, lines = proc.stop()
    assert code == 0, "".join(lines[-20:])
    assert all(json.loads(line) for line in lines)


def test_readyz_reads_the_store_file_itself(tmp_path: Path, demo_dir: Path) -> None:
    """SELECT 1 is answered by SQLite without opening the database file: /readyz said
    ready while every data request failed with "file is not a database"."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*install `httpx2` instead", category=Warning)
        from fastapi.testclient import TestClient

    settings = load_settings(demo_dir / "forescale.yaml")
    db = tmp_path / "store.db"
    store = Store.open(f"sqlite:///{db}")
    try:
        client = TestClient(
            build_app(settings, store, CollectorRegistry(), None), base_url="http://localhost"
        )
        assert client.get("/readyz").status_code == 200
        store.engine.dispose()
        db.write_bytes(b"this is not a database" * 100)
        answer = client.get("/readyz")
        assert answer.status_code == 503 and answer.json()["error"]["type"] == "StoreError"
        assert client.get("/healthz").status_code == 200  # alive all the same
    finally:
        store.close()
