"""Benchmark: collecting many services from a local, backfilled Prometheus into SQLite.

Backfills 50 services x 4 weeks of 5-minute samples (one counter series per ``service``
label) with promtool, starts Prometheus on 127.0.0.1, then times

* a full backfill fetch of every service through ``PrometheusMetricSource`` into a fresh
  SQLite store (``Store.upsert_samples``), and
* an incremental fetch of the newest ~10 minutes per service, starting one hour before
  the newest stored sample (the pipeline's overlap),

and prints wall time, HTTP requests (counted with an httpx event hook) and peak RSS as a
markdown table. Needs the Debian ``prometheus`` package (``prometheus`` and ``promtool``).

    .venv/bin/python benchmarks/collect.py [--services 50] [--days 28]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from forescale.collectors.prometheus import PrometheusMetricSource
from forescale.store import Store

UTC = dt.UTC
STEP = 300  # seconds between samples and between evaluations
DAY = 86_400


def binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else "")
    if not found:
        raise SystemExit(f"{name} not found: apt-get install -y --no-install-recommends prometheus")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_history(path: Path, *, services: int, start: int, end: int) -> int:
    """Counters whose rate has a daily and weekly shape, a different scale per service."""
    t = np.arange(start, end + 1, STEP, dtype=float)
    shape = (1 + 0.5 * np.sin(2 * np.pi * (t - 8 * 3600) / DAY)) * (
        1 + 0.2 * np.sin(2 * np.pi * t / (7 * DAY))
    )
    lines = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("# TYPE service_requests counter\n")
        for index in range(services):
            rate = 20.0 + 5.0 * index
            counter = np.concatenate([[0.0], np.cumsum(rate * shape[:-1] * STEP)])
            name = f'service_requests_total{{service="svc-{index:02d}"}}'
            out.write(
                "\n".join(f"{name} {v:.3f} {int(ts)}" for ts, v in zip(t, counter, strict=True))
            )
            out.write("\n")
            lines += len(t)
        out.write("# EOF\n")
    return lines


@contextmanager
def prometheus(work: Path, history: Path) -> Iterator[str]:
    subprocess.run(
        [
            binary("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=24h",
            str(history),
            str(work / "data"),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (work / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n", encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (work / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                "--storage.tsdb.retention.time=400d",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(
                    f"prometheus exited: {(work / 'prometheus.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{url}/-/ready", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("prometheus not ready after 60 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--days", type=int, default=28)
    args = parser.parse_args()

    end = (int(time.time()) - 120) // STEP * STEP  # the newest sample, before Prometheus' now
    start = end - args.days * DAY
    backfilled_until = dt.datetime.fromtimestamp(end - 600, UTC)  # the full fetch's "now"
    now = dt.datetime.fromtimestamp(end, UTC)  # the incremental fetch's "now", 10 min later

    with tempfile.TemporaryDirectory(prefix="forescale-bench-") as tmp:
        work = Path(tmp)
        began = time.perf_counter()
        samples = write_history(work / "history.om", services=args.services, start=start, end=end)
        generated = time.perf_counter() - began
        began = time.perf_counter()
        with prometheus(work, work / "history.om") as url:
            ready = time.perf_counter() - began
            print(
                f"setup: {samples:,} samples generated in {generated:.1f} s; "
                f"promtool backfill + Prometheus start {ready:.1f} s\n"
            )
            requests: list[httpx.Request] = []
            client = httpx.Client(
                timeout=60, trust_env=False, event_hooks={"request": [requests.append]}
            )
            store = Store.open(f"sqlite:///{work / 'bench.db'}")
            rows = []
            try:

                def source(index: int, clock: dt.datetime) -> PrometheusMetricSource:
                    return PrometheusMetricSource(
                        client=client,
                        url=url,
                        query=f'sum(rate(service_requests_total{{service="svc-{index:02d}"}}[15m]))',
                        step=dt.timedelta(seconds=STEP),
                        clock=lambda: clock,
                    )

                for phase in ("full backfill", "incremental"):
                    requests.clear()
                    written = 0
                    fetching = 0.0
                    began = time.perf_counter()
                    for index in range(args.services):
                        name = f"svc-{index:02d}"
                        fetch_began = time.perf_counter()
                        if phase == "full backfill":
                            first = dt.datetime.fromtimestamp(start, UTC)
                            series = source(index, backfilled_until).fetch(first, None)
                        else:
                            last = store.last_sample_time(name)
                            assert last is not None
                            series = source(index, now).fetch(last - dt.timedelta(hours=1), None)
                        fetching += time.perf_counter() - fetch_began
                        written += store.upsert_samples(name, series)
                    wall = time.perf_counter() - began
                    rows.append((phase, len(requests), written, wall, fetching, peak_rss_mib()))
            finally:
                client.close()
                store.close()

    print(f"{args.services} services x {args.days} days of {STEP}-s samples, SQLite store\n")
    print(
        "| phase | services | HTTP requests | samples stored | wall | of which fetch | peak RSS |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for phase, sent, written, wall, fetching, rss in rows:
        print(
            f"| {phase} | {args.services} | {sent} | {written:,} | {wall:.2f} s "
            f"| {fetching:.2f} s | {rss:.0f} MiB |"
        )


if __name__ == "__main__":
    main()
