"""The daemon serving its API in-process, and `forescale serve`, as real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

TOKEN = "s3cret-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], demo_dir: Path, port: int) -> subprocess.Popen[str]:
    config = demo_dir / "forescale.yaml"
    config.write_text(config.read_text() + f"\napi:\n  port: {port}\n  token: {TOKEN}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORESCALE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "forescale", *args, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_until(check: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"did not stop on SIGTERM: {err[-2000:]}") from None
    return proc.returncode, err


def test_daemon_serves_api_and_metrics_then_stops_on_sigterm(demo_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(
        [
            "daemon",
            "--collect-every",
            "1h",
            "--refit-every",
            "6h",
            "--apply-every",
            "1h",
            "--log-format",
            "json",
        ],
        demo_dir,
        port,
    )
    try:
        wait_until(lambda: httpx.get(f"{base}/healthz", timeout=2).status_code == 200)
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
        assert accepted.status_code == 202 and accepted.json()["run_id"]
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    finally:
        code, err = stop(proc)
    assert code == 0, err[-2000:]
    assert TOKEN not in err  # the token is never logged


def test_serve_alone(demo_dir: Path) -> None:
    port = free_port()
    proc = start(["serve"], demo_dir, port)
    try:
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/v1/services", timeout=2).status_code == 200
        )
        missing = httpx.get(f"http://127.0.0.1:{port}/v1/services/nope/forecast", timeout=5)
        assert missing.status_code == 404 and missing.json()["error"]["message"]
    finally:
        code, err = stop(proc)
    assert code == 0, err[-2000:]
