"""Server fixtures for the collector tests: moto_server (CloudWatch), a backfilled
Prometheus, and a tiny recording HTTP server for canned answers.

Every server listens on 127.0.0.1 on a free port, readiness is polled with a deadline,
and the process is stopped at teardown. A missing binary fails loudly with the install
command (deselect with ``-m "not external_service"`` to run without them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

UTC = dt.UTC
DAY = 86_400
WEEK = 7 * DAY


# -- process helpers -------------------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str, hint: str) -> Path:
    """``name`` from PATH or /usr/bin; fail with the install hint when it is missing."""
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else "")
    if not found:
        pytest.fail(f"{name} not found on PATH or in /usr/bin: {hint}", pytrace=False)
    return Path(found)


def wait_until_ready(
    url: str, proc: subprocess.Popen[bytes], log: Path, *, timeout: float = 30.0
) -> None:
    """Poll ``url`` until it answers 200, the process dies, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{url}: server exited with {proc.returncode}:\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0, trust_env=False).status_code == 200:
                return
        time.sleep(0.1)
    stop_process(proc)
    pytest.fail(f"{url}: not ready after {timeout} s:\n{_tail(log)}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-3000:]
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def running(
    cmd: list[str], *, cwd: Path, ready_url: str, log: Path, timeout: float = 30.0
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_ready(ready_url, proc, log, timeout=timeout)
        yield proc
    finally:
        stop_process(proc)


# -- moto_server -----------------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto_server on 127.0.0.1 for the whole session; yields its base URL."""
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        pytest.fail(f"{exe} missing: pip install 'moto[server]'", pytrace=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    work = tmp_path_factory.mktemp("moto")
    with running(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        cwd=work,
        ready_url=f"{url}/moto-api/data.json",
        log=work / "moto.log",
    ):
        yield url


@pytest.fixture
def moto_url(moto_server: str) -> str:
    """The session's moto_server, emptied for this test."""
    httpx.post(f"{moto_server}/moto-api/reset", timeout=10, trust_env=False).raise_for_status()
    return moto_server


# -- Prometheus with backfilled history --------------------------------------------------
def demand_shape(t: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Relative demand at Unix seconds ``t``: daily peak at 14:00 UTC (+-50 %), weekly
    swing +-20 % (peak Thursday noon UTC)."""
    daily = 1.0 + 0.5 * np.sin(2 * np.pi * (t - 8 * 3600) / DAY)
    weekly = 1.0 + 0.2 * np.sin(2 * np.pi * (t - 5 * 3600 * 24 - 6 * 3600) / WEEK)
    return np.asarray(daily * weekly, dtype=float)


def peak_hours(ds: Any, y: Any) -> list[int]:
    """The hour (UTC) of the busiest sample in each day's 10:00-18:00 window that was read
    back whole (every slot present, none missing). Only whole windows count, so where the
    gap and the ends of the history fall, which moves with the wall clock, cannot move the
    answer: :func:`demand_shape` peaks within half an hour of 14:00 on every day."""
    frame = pd.DataFrame({"ds": ds, "y": y})
    step = frame["ds"].diff().min()
    window = frame[(frame["ds"].dt.hour >= 10) & (frame["ds"].dt.hour < 18)]
    hours = []
    for _, day in window.groupby(window["ds"].dt.floor("D")):
        if len(day) == dt.timedelta(hours=8) / step and day["y"].notna().all():
            hours.append(int(day["ds"].iloc[int(day["y"].to_numpy().argmax())].hour))
    return hours


RATES = {"a": 100.0, "b": 50.0}  # requests/s at shape 1.0, per instance


def gauge_values(t: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.round(10.0 + 5.0 * demand_shape(t), 4)


@dataclass(frozen=True)
class PromHistory:
    """What was backfilled: 1-minute samples on ``[start, end]`` (Unix seconds on the
    minute grid) with no samples in ``[gap_start, gap_end)``."""

    url: str
    start: int
    end: int
    gap_start: int
    gap_end: int

    @property
    def end_time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.end, UTC)

    @property
    def start_time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.start, UTC)

    def clock(self) -> dt.datetime:
        """A fixed "now" at the last sample, for the collectors' clock injection."""
        return self.end_time


def write_openmetrics(
    path: Path,
    *,
    start: int,
    end: int,
    step: int,
    series: dict[str, tuple[str, dict[str, str], Callable[[np.ndarray[Any, Any]], Any]]],
    keep: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]] | None = None,
) -> None:
    """Write OpenMetrics text for promtool: per family a TYPE line and its samples.

    ``series`` maps a family to ``(type, labels, values_of(t))``; counters get the
    ``_total`` suffix and their values are cumulative sums of ``values_of(t) * step``
    (so their rate is ``values_of``). ``keep(t)`` masks samples away (gaps)."""
    t = np.arange(start, end + 1, step, dtype=float)
    mask = np.ones(len(t), dtype=bool) if keep is None else keep(t)
    families: dict[str, list[str]] = {}
    types: dict[str, str] = {}
    for key, (kind, labels, values_of) in series.items():
        family = key.split("|")[0]
        types[family] = kind
        values = np.asarray(values_of(t), dtype=float)
        if kind == "counter":
            values = np.concatenate([[0.0], np.cumsum(values[:-1] * step)])
        name = f"{family}_total" if kind == "counter" else family
        label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        prefix = f"{name}{{{label_text}}}" if label_text else name
        families.setdefault(family, []).extend(
            f"{prefix} {value:.4f} {int(ts)}"
            for ts, value in zip(t[mask], values[mask], strict=True)
        )
    with path.open("w", encoding="utf-8") as out:
        for family, lines in families.items():
            out.write(f"# TYPE {family} {types[family]}\n")
            out.write("\n".join(lines))
            out.write("\n")
        out.write("# EOF\n")


@contextlib.contextmanager
def prometheus_with_history(work: Path, openmetrics: Path) -> Iterator[str]:
    """Backfill ``openmetrics`` into a fresh TSDB under ``work`` and run Prometheus on it."""
    hint = "apt-get install -y --no-install-recommends prometheus"
    prometheus = find_binary("prometheus", hint)
    promtool = find_binary("promtool", hint)
    data = work / "data"
    done = subprocess.run(
        [
            str(promtool),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=24h",
            str(openmetrics),
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"promtool backfill failed ({done.returncode}):\n{done.stderr[-3000:]}")
    config = work / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n", encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        [
            str(prometheus),
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=400d",  # longer than any backfill: keep old blocks
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=work,
        ready_url=f"{url}/-/ready",
        log=work / "prometheus.log",
        timeout=60,
    ):
        yield url


@pytest.fixture(scope="session")
def prom_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromHistory]:
    """22 days of 1-minute samples ending shortly before the real now (so they are
    inside Prometheus' retention, which counts from its own clock): counters
    ``http_requests_total{instance="a"|"b"}`` whose rates follow :func:`demand_shape`, and a
    gauge ``web_desired_capacity``; two hours without samples three days before the end."""
    work = tmp_path_factory.mktemp("prometheus")
    end = (int(time.time()) - 300) // 3600 * 3600  # on the hour, 5 to 65 minutes ago
    start = end - 22 * DAY
    gap_start = end - 3 * DAY
    gap_end = gap_start + 2 * 3600
    openmetrics = work / "history.om"
    write_openmetrics(
        openmetrics,
        start=start,
        end=end,
        step=60,
        series={
            f"http_requests|{inst}": (
                "counter",
                {"instance": inst, "job": "web"},
                lambda t, rate=rate: rate * demand_shape(t),
            )
            for inst, rate in RATES.items()
        }
        | {"web_desired_capacity": ("gauge", {"job": "web"}, gauge_values)},
        keep=lambda t: (t < gap_start) | (t >= gap_end),
    )
    with prometheus_with_history(work, openmetrics) as url:
        yield PromHistory(url=url, start=start, end=end, gap_start=gap_start, gap_end=gap_end)


# -- a recording HTTP server with canned answers ----------------------------------------
@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class CannedServer:
    """Answers every request with ``status``/``body`` after ``delay`` seconds and records
    the requests (headers lower-cased)."""

    url: str = ""
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    requests: list[Recorded] = field(default_factory=list)

    def reply(
        self, status: int, payload: Any, *, delay: float = 0.0, content_type: str | None = None
    ) -> None:
        self.status = status
        self.delay = delay
        if isinstance(payload, str | bytes):
            self.body = payload.encode() if isinstance(payload, str) else payload
            self.content_type = content_type or "text/plain"
        else:
            self.body = json.dumps(payload).encode()
            self.content_type = content_type or "application/json"


@pytest.fixture
def canned_server() -> Iterator[CannedServer]:
    canned = CannedServer()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            canned.requests.append(
                Recorded(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
            )
            if canned.delay:
                time.sleep(canned.delay)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(canned.status)
                self.send_header("Content-Type", canned.content_type)
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    canned.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield canned
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients built from settings honour proxy variables; loopback must never use one."""
    current = os.environ.get("NO_PROXY", "")
    monkeypatch.setenv("NO_PROXY", ",".join(p for p in (current, "127.0.0.1,localhost") if p))
