"""API latency under load and the daemon's idle memory, with 100 services in the store.

    .venv/bin/python benchmarks/api.py [--services 100] [--rate 200] [--clients 50] [--seconds 15]

A store is filled with one 48 h forecast at 5-min steps per service (576 rows, bands and two
components). `forescale serve` runs as its own process on 127.0.0.1; a load generator in a
second process (this one) keeps --clients concurrent clients issuing
GET /v1/services/{name}/forecast at a total of --rate requests/s (open loop: requests are
scheduled on a fixed clock, latency counts from the scheduled time), then once more with
no rate limit for the maximum throughput. Finally `forescale daemon` starts on the same
settings and its resident memory is read from /proc after it has gone idle.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forescale.store import Store  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(root: Path, services: int, port: int) -> Path:
    (root / "tf").mkdir(parents=True)
    (root / "tf" / "terraform.tfvars").write_text(
        "".join(f"svc{i:03d}_min = 4\n" for i in range(services))
    )
    ds = pd.date_range("2024-01-01", periods=600, freq="5min", tz="UTC")
    pd.DataFrame({"timestamp": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": 100.0}).to_csv(
        root / "demand.csv", index=False
    )
    lines = [
        "store_url: sqlite:///state/forescale.db",
        f"api: {{port: {port}}}",
        "services:",
    ]
    for i in range(services):
        lines += [
            f"  svc{i:03d}:",
            "    source: {type: csv, path: demand.csv}",
            "    capacity_per_unit: 10",
            "    min_units: 1",
            "    max_units: 100",
            f"    iac: {{working_dir: tf, address: svc{i:03d}_min}}",
        ]
    config = root / "forescale.yaml"
    config.write_text("\n".join(lines) + "\n")
    store = Store.open(f"sqlite:///{root}/state/forescale.db")
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    grid = pd.date_range(now, periods=576, freq="5min")
    rng = np.random.default_rng(1)
    for i in range(services):
        yhat = 100 + 50 * np.sin(np.arange(576) / 288 * 2 * np.pi) + rng.normal(0, 2, 576)
        frame = pd.DataFrame(
            {
                "ds": grid,
                "yhat": yhat,
                "yhat_lower": yhat * 0.9,
                "yhat_upper": yhat * 1.1,
                "daily": np.sin(np.arange(576) / 288 * 2 * np.pi) * 0.4,
                "weekly": 0.05,
            }
        )
        store.save_forecast(
            f"svc{i:03d}",
            frame,
            components=("daily", "weekly"),
            created_at=now,
            as_of=now,
            history_end=now,
            model="prophet",
            resolution=dt.timedelta(minutes=5),
            meta={
                "components": ["daily", "weekly"],
                "notes": [],
                "interval_width": 0.9,
                "event_effects": [],
            },
        )
    store.close()
    return config


def start(args: list[str], config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORESCALE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "forescale", *args, "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become ready")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(
    base: str, names: list[str], rate: float | None, clients: int, seconds: float
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    total = int(rate * seconds) if rate else None
    start = time.perf_counter()
    counter = 0

    async def client(c: httpx.AsyncClient) -> None:
        nonlocal counter, errors
        while True:
            index = counter
            counter += 1
            if total is not None:
                if index >= total:
                    return
                scheduled = start + index / rate  # type: ignore[operator]
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                if time.perf_counter() - start > seconds:
                    return
                scheduled = time.perf_counter()
            name = names[index % len(names)]
            try:
                response = await c.get(f"{base}/v1/services/{name}/forecast")
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - scheduled)
            if response.status_code != 200:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as c:
        await asyncio.gather(*(client(c) for _ in range(clients)))
    return latencies, errors, time.perf_counter() - start


def report(label: str, lat: list[float], errors: int, wall: float) -> str:
    q = np.quantile(lat, [0.5, 0.99]) * 1000
    return (
        f"| {label} | {len(lat) / wall:.0f} | {q[0]:.1f} | {q[1]:.1f} | "
        f"{max(lat) * 1000:.1f} | {errors} |"
    )


def run_wrk(base: str, clients: int, seconds: float) -> list[str]:
    """The same paths from Debian's wrk (C, closed loop), when it is installed."""
    import shutil

    if shutil.which("wrk") is None:
        return ["wrk not installed (apt-get install wrk) - skipped"]
    script = Path(tempfile.mkdtemp()) / "paths.lua"
    script.write_text(
        "counter = 0\nrequest = function()\n counter = counter + 1\n"
        ' return wrk.format("GET", string.format("/v1/services/svc%03d/forecast", '
        "counter % 100))\nend\n"
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{int(seconds)}s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    ).stdout
    keep = ("50%", "90%", "99%", "Requests/sec", "requests in", "Socket errors")
    return [line.strip() for line in out.splitlines() if line.strip().startswith(keep)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="forescale-bench-api-"))
    port = free_port()
    config = setup(root, args.services, port)
    base = f"http://127.0.0.1:{port}"
    names = [f"svc{i:03d}" for i in range(args.services)]
    server = start(
        ["serve"],
        config,
    )
    rows = []
    try:
        wait_ready(base)
        size = len(httpx.get(f"{base}/v1/services/{names[0]}/forecast").content)
        asyncio.run(load(base, names, None, args.clients, 2.0))  # warm-up
        rows.append(
            report(
                f"paced {args.rate:.0f} req/s",
                *asyncio.run(load(base, names, args.rate, args.clients, args.seconds)),
            )
        )
        rows.append(
            report(
                "unpaced (max)", *asyncio.run(load(base, names, None, args.clients, args.seconds))
            )
        )
        serve_rss = rss_mib(server.pid)
        wrk_lines = run_wrk(base, args.clients, args.seconds)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    daemon = start(
        ["daemon", "--collect-every", "1h", "--refit-every", "6h", "--apply-every", "1h"], config
    )
    try:
        wait_ready(base)
        time.sleep(20)  # the start-up collect + refit of every service, then idle
        daemon_rss = rss_mib(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    print(
        f"{args.services} services, {args.clients} concurrent clients, response "
        f"{size:,} bytes (576 rows), 2-core machine, server and load generator share it"
    )
    print("| load | achieved req/s | p50 ms | p99 ms | max ms | non-200 |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print(f"\nwrk -t1 -c{args.clients} -d{int(args.seconds)}s (closed loop, same paths):")
    print("\n".join(f"    {line}" for line in wrk_lines))
    print(
        f"\nRSS: `forescale serve` after the load {serve_rss:.0f} MiB; "
        f"`forescale daemon` idle with {args.services} services {daemon_rss:.0f} MiB"
    )


if __name__ == "__main__":
    main()
