"""API latency under load and the daemon's idle memory, with 100 services in the store.

    .venv/bin/python benchmarks/api.py [--services 100] [--rate 200[,400...]] [--clients 50]
        [--seconds 30] [--warmup 5] [--max-seconds 15] [--python-loadgen]

A store is filled with one 48 h forecast at 5-min steps per service (576 rows, bands and two
components). `forescale serve` runs as its own process on 127.0.0.1. Once its start-up
gauge refresh is over and every response has been rendered once, a load generator in a
second process keeps --clients keep-alive connections issuing
GET /v1/services/{name}/forecast, open loop at each --rate: request i is due at
i / rate after the start on connection i % clients, and its latency counts from that due
time even when it goes out late (no coordinated omission). --warmup seconds of requests
are not measured, then --seconds are; requests still unanswered --drain seconds after the
last due time count as timeouts. A closed-loop run (each connection sends again as soon as
its response is in) gives the maximum throughput, and Debian's `wrk` (closed loop), when
installed, cross-checks it.

The generator is benchmarks/loadgen.c, compiled here with gcc (epoll, pre-built requests,
responses read by Content-Length: a few % of a core at 200 req/s, so the server keeps the
two cores). Without gcc, or with --python-loadgen, the same schedule runs on raw asyncio
streams in this process instead (it says so in its output; it uses more CPU).
Finally `forescale daemon` starts on the same settings and its resident memory is read
from /proc once it has gone idle.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forescale.records import ForecastRun  # noqa: E402
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
        store.save_forecast_run(
            ForecastRun(
                service=f"svc{i:03d}",
                created_at=now,
                as_of=now,
                history_end=now,
                model="prophet",
                resolution=dt.timedelta(minutes=5),
                interval_width=0.9,
                components=("daily", "weekly"),
                frame=frame,
            )
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


@dataclass(frozen=True)
class LoadSpec:
    """A load run: --clients connections, paced at ``rate`` req/s or closed loop."""

    label: str
    rate: float | None  # None: closed loop
    clients: int
    warmup: float
    seconds: float
    drain: float


@dataclass
class Load:
    """One load run: measured latencies and counters (latency in seconds)."""

    label: str
    paced: bool
    generator: str
    latencies: np.ndarray
    due: np.ndarray  # due (paced) or send time of each, seconds into the measured window
    scheduled: int
    completed: int
    non200: int
    errors: int
    timeouts: int
    wall: float  # first measured due time to last measured response
    generator_cpu: float  # CPU seconds of the load generator over the whole run
    server_cpu: float  # CPU seconds of the server over the whole run
    other_cpu: float  # CPU seconds of everything else on the machine over the whole run
    elapsed: float  # wall seconds of the whole run (connect, warm-up, measure, drain)
    late_p99: float  # the generator's own send delay (paced): from due or free to sent
    late_max: float
    window_at: float = 0.0  # server uptime when the measured window opened


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds all processes spent busy since boot (all cores), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, limit: float, *, below: float = 0.05) -> float:
    """Wait (at most ``limit`` s) until ``pid`` uses under ``below`` of a core over 1 s."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < below:
            break
    return time.monotonic() - began


def build_loadgen(workdir: Path) -> tuple[Path | None, str]:
    """Compile benchmarks/loadgen.c with gcc; (None, why) when that is not possible."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None, "gcc not found"
    binary = workdir / "loadgen"
    done = subprocess.run(
        [gcc, "-O2", "-o", str(binary), str(Path(__file__).with_name("loadgen.c"))],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None, f"gcc failed: {done.stderr.strip()[:300]}"
    return binary, "C (benchmarks/loadgen.c, epoll)"


def run_c(binary: Path, port: int, paths: Path, server: int, spec: LoadSpec) -> Load:
    """The C generator in its own process; it prints latencies (us) and a summary line."""
    cpu0, busy0, began = cpu_seconds(server), busy_seconds(), time.monotonic()
    out = subprocess.run(
        [
            str(binary),
            str(port),
            str(paths),
            str(spec.clients),
            str(spec.rate or 0),
            str(spec.warmup),
            str(spec.seconds),
            str(spec.drain),
        ],
        capture_output=True,
        text=True,
        timeout=spec.warmup + spec.seconds + spec.drain + 60,
        check=True,
    ).stdout.splitlines()
    summary = dict(item.split("=") for item in out[-1].lstrip("# ").split())
    rows = np.array([line.split() for line in out[:-1]], dtype=float).reshape(len(out) - 1, 2)
    load = Load(
        label=spec.label,
        paced=spec.rate is not None,
        generator="C",
        latencies=rows[:, 1] / 1e6,
        due=rows[:, 0] / 1e3,
        scheduled=int(summary["scheduled"]),
        completed=int(summary["completed"]),
        non200=int(summary["non200"]),
        errors=int(summary["errors"]),
        timeouts=int(summary["timeouts"]),
        wall=float(summary["wall"]),
        generator_cpu=float(summary["cpu"]),
        server_cpu=cpu_seconds(server) - cpu0,
        other_cpu=0.0,
        elapsed=time.monotonic() - began,
        late_p99=float(summary["gen_late_p99"]),
        late_max=float(summary["gen_late_max"]),
    )
    load.other_cpu = busy_seconds() - busy0 - load.server_cpu - load.generator_cpu
    return load


async def py_load(port: int, paths: list[str], spec: LoadSpec) -> Load:
    """The fallback generator, same schedule as loadgen.c: raw asyncio streams, pre-built
    keep-alive requests, responses read by Content-Length (no HTTP library)."""
    loop = asyncio.get_running_loop()
    requests = [
        f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n\r\n".encode() for p in paths
    ]
    rate, clients = spec.rate, spec.clients
    total = int(rate * (spec.warmup + spec.seconds)) if rate else 0
    first = int(rate * spec.warmup) if rate else 0
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(clients)]
    t0 = loop.time() + 0.05
    measure_from, stop_at = t0 + spec.warmup, t0 + spec.warmup + spec.seconds
    lat: list[float] = []
    dues: list[float] = []
    count = {"completed": 0, "non200": 0, "errors": 0, "timeouts": 0, "counter": 0}
    # paced: this client's next index not yet answered; closed: 1 while a measured one is out
    current = [0] * clients
    last_done = 0.0
    late: list[float] = []

    async def client(c: int) -> None:
        nonlocal last_done
        reader, writer = conns[c]
        index, idle_at = c, loop.time()
        while True:
            if rate:
                if index >= total:
                    return
                current[c] = index
                due = t0 + index / rate
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                measured = index >= first
                if measured:
                    late.append(loop.time() - max(due, idle_at))
                request = requests[index % len(requests)]
                index += clients
            else:
                due = loop.time()
                if due >= stop_at:
                    return
                current[c] = int(due >= measure_from)
                measured = due >= measure_from
                request = requests[count["counter"] % len(requests)]
                count["counter"] += 1
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                marker = head.lower().index(b"content-length:") + 15
                await reader.readexactly(int(head[marker : head.index(b"\r\n", marker)]))
            except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                count["errors"] += 1
                current[c] = index if rate else 0
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                idle_at = loop.time()
                continue
            idle_at = loop.time()
            if measured:
                lat.append(idle_at - due)
                dues.append(due - measure_from)
                count["completed"] += 1
                count["non200"] += status != 200
                last_done = idle_at
            current[c] = index if rate else 0

    cpu0 = time.process_time()
    end = (t0 + (total - 1) / rate if rate else stop_at) + spec.drain
    tasks = [asyncio.ensure_future(client(c)) for c in range(clients)]
    await asyncio.wait(tasks, timeout=max(0.0, end - loop.time()))
    for c, task in enumerate(tasks):
        if not task.done():
            task.cancel()
            if rate:  # the one due or in flight, and the rest of this client's schedule
                count["timeouts"] += sum(1 for j in range(current[c], total, clients) if j >= first)
            else:
                count["timeouts"] += current[c]
    await asyncio.gather(*tasks, return_exceptions=True)
    for _, writer in conns:
        writer.close()
    return Load(
        label=spec.label,
        paced=spec.rate is not None,
        generator="Python",
        latencies=np.array(lat),
        due=np.array(dues),
        scheduled=total - first if rate else count["completed"] + count["timeouts"],
        completed=count["completed"],
        non200=count["non200"],
        errors=count["errors"],
        timeouts=count["timeouts"],
        wall=(last_done - measure_from) if rate and last_done else spec.seconds,
        generator_cpu=time.process_time() - cpu0,
        server_cpu=0.0,  # filled in by run_py
        other_cpu=0.0,
        elapsed=0.0,
        late_p99=float(np.quantile(late, 0.99)) if late else 0.0,
        late_max=max(late, default=0.0),
    )


def run_py(port: int, paths: list[str], server: int, spec: LoadSpec) -> Load:
    """The asyncio generator in this process (the server is another process)."""
    cpu0, busy0, began = cpu_seconds(server), busy_seconds(), time.monotonic()
    own0 = time.process_time()
    load = asyncio.run(py_load(port, paths, spec))
    load.server_cpu = cpu_seconds(server) - cpu0
    load.other_cpu = busy_seconds() - busy0 - load.server_cpu - (time.process_time() - own0)
    load.elapsed = time.monotonic() - began
    return load


def report(load: Load) -> str:
    lat = load.latencies * 1000
    if lat.size:
        p50, p90, p99 = np.quantile(lat, [0.5, 0.9, 0.99])
        ms = f"{p50:.1f} | {p90:.1f} | {p99:.1f} | {lat.max():.1f}"
    else:
        ms = "- | - | - | -"
    return (
        f"| {load.label} | {load.generator} | {load.scheduled} | "
        f"{load.completed / load.wall:.0f} | {ms} | {load.non200} | "
        f"{load.errors} / {load.timeouts} | "
        f"{load.late_p99 * 1000:.1f} / {load.late_max * 1000:.1f} | "
        f"{100 * load.generator_cpu / load.elapsed:.0f} % | "
        f"{100 * load.server_cpu / load.elapsed:.0f} % | "
        f"{100 * max(0.0, load.other_cpu) / load.elapsed:.0f} % |"
    )


def slow_seconds(load: Load, limit: float = 0.05) -> str:
    """The seconds of the measured window holding a request over ``limit`` (by due time)."""
    seconds = sorted(
        {int(d) for d, lat in zip(load.due, load.latencies, strict=True) if lat > limit}
    )
    spans: list[list[int]] = []
    for second in seconds:
        if spans and second == spans[-1][1] + 1:
            spans[-1][1] = second
        else:
            spans.append([second, second])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans[:12])
    more = " ..." if len(spans) > 12 else ""
    return (
        f"{load.label}, window opened {load.window_at:.0f} s after the server started: "
        f"{len(seconds)} of {int(np.ceil(load.due.max(initial=0)))} s had a request over "
        f"{limit * 1000:.0f} ms" + (f" (s {text}{more})" if seconds else "")
    )


def run_wrk(base: str, clients: int, seconds: float, workdir: Path, services: int) -> list[str]:
    """The same paths from Debian's wrk (C, closed loop), when it is installed."""
    if shutil.which("wrk") is None:
        return ["wrk not installed (apt-get install wrk) - skipped"]
    script = workdir / "paths.lua"
    script.write_text(
        "counter = 0\nrequest = function()\n counter = counter + 1\n"
        ' return wrk.format("GET", string.format("/v1/services/svc%03d/forecast", '
        f"counter % {services}))\nend\n"
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
    parser.add_argument(
        "--rate", default="200", help="paced rate(s) in req/s, comma-separated (default 200)"
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured, per paced run")
    parser.add_argument("--warmup", type=float, default=5.0, help="per run, not measured")
    parser.add_argument("--drain", type=float, default=10.0, help="grace after the last due")
    parser.add_argument("--max-seconds", type=float, default=15.0, help="closed-loop runs")
    parser.add_argument(
        "--python-loadgen", action="store_true", help="use the asyncio generator, not loadgen.c"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="forescale-bench-api-"))
    try:
        measure(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(args: argparse.Namespace, root: Path) -> None:
    rates = [float(r) for r in args.rate.split(",")]
    port = free_port()
    config = setup(root, args.services, port)
    base = f"http://127.0.0.1:{port}"
    names = [f"svc{i:03d}" for i in range(args.services)]
    paths = [f"/v1/services/{name}/forecast" for name in names]
    paths_file = root / "paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    binary, generator = (None, "--python-loadgen") if args.python_loadgen else build_loadgen(root)
    if binary is None:
        generator = f"Python (asyncio streams, in the benchmark process; C not used: {generator})"
    specs = [
        LoadSpec(f"paced {r:.0f} req/s", r, args.clients, args.warmup, args.seconds, args.drain)
        for r in rates
    ]
    specs.append(
        LoadSpec("closed loop (max)", None, args.clients, 2.0, args.max_seconds, args.drain)
    )
    server = start(["serve"], config)
    server_started = time.monotonic()
    loads: list[Load] = []
    try:
        wait_ready(base)
        # The start-up gauge refresh (every service's forecast and tfvars) runs for a few
        # seconds of CPU: measure after it. Then render every response once (the cache).
        settle = wait_idle(server.pid, 60)
        size = 0
        with httpx.Client(timeout=30) as client:
            for path in paths:
                size = len(client.get(base + path).content)
        for spec in specs:
            wait_idle(server.pid, 30)
            uptime = time.monotonic() - server_started
            if binary is not None:
                loads.append(run_c(binary, port, paths_file, server.pid, spec))
            else:
                loads.append(run_py(port, paths, server.pid, spec))
            loads[-1].window_at = uptime + spec.warmup
        serve_rss = rss_mib(server.pid)
        wrk_lines = run_wrk(base, args.clients, args.max_seconds, root, args.services)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    daemon = start(
        ["daemon", "--collect-every", "1h", "--refit-every", "6h", "--apply-every", "1h"], config
    )
    try:
        wait_ready(base)
        time.sleep(10)
        daemon_idle_after = 10 + wait_idle(daemon.pid, 600)  # start-up collect, then idle
        daemon_rss = rss_mib(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    print(
        f"{args.services} services, {args.clients} keep-alive connections, response "
        f"{size:,} bytes (576 rows), {os.cpu_count()} CPUs shared by server and generator; "
        f"server idle {settle:.0f} s after ready"
    )
    print(f"generator: {generator}")
    print(
        f"paced runs: {args.warmup:g} s warm-up, then {args.seconds:g} s measured, "
        f"{args.drain:g} s drain; closed loop: 2 s warm-up, {args.max_seconds:g} s"
    )
    print(
        "| load | gen | measured requests | achieved req/s | p50 ms | p90 ms | p99 ms | max ms "
        "| non-200 | errors / timeouts | gen late p99 / max ms | gen CPU | server CPU "
        "| other CPU |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(report(load) for load in loads))
    print("\n".join(slow_seconds(load) for load in loads if load.paced))
    print(f"\nwrk -t1 -c{args.clients} -d{int(args.max_seconds)}s (closed loop, same paths):")
    print("\n".join(f"    {line}" for line in wrk_lines))
    print(
        f"\nRSS: `forescale serve` after the load {serve_rss:.0f} MiB; "
        f"`forescale daemon` idle ({daemon_idle_after:.0f} s after ready) with "
        f"{args.services} services {daemon_rss:.0f} MiB"
    )


if __name__ == "__main__":
    main()
