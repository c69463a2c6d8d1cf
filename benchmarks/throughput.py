"""Services fitted per minute: one process vs the local pool vs a Dask LocalCluster.

    .venv/bin/python benchmarks/throughput.py [--services 1000] [--serial 40]
        [--modes serial process dask] [--workers 2]

Each service is a 2-week, 5-minute demand history (4,032 points) cut from the real
series in ../shared/datasets (the four NAB CloudWatch series of the accuracy benchmark and
the three tweet-volume series, sliding 2-week windows, scaled by a per-service factor so
no two services are the same), and a refit is exactly the daemon's: every default candidate
(``DEFAULT_MODELS``: Prophet, seasonal naive, their ensemble and the simple policies,
:func:`forescale.usecases.refit.run_fit_job`) with the default settings, 24 h horizon.
"serial" fits ``--serial`` services in this process (imports excluded), "process" the
whole set in the ``fit: {executor: process}`` pool, "dask" in a ``distributed.LocalCluster``
(2 workers x 1 thread, 127.0.0.1) started here. Wall time includes the pool/cluster start
and shipping the histories; it prints services per minute and the time for 1,000 services
at that rate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forescale.executor import ExecutorSettings, FitExecutor  # noqa: E402
from forescale.forecaster.candidates import DEFAULT_MODELS, PRODUCT  # noqa: E402
from forescale.forecaster.types import ForecastSettings  # noqa: E402
from forescale.usecases.refit import FitJob, run_fit_job  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "nab"
WEEKS2 = 14 * 288
FILES = [
    DATA / "realAWSCloudwatch" / f"{n}.csv"
    for n in (
        "elb_request_count_8c0756",
        "ec2_cpu_utilization_24ae8d",
        "ec2_cpu_utilization_5f5533",
        "ec2_cpu_utilization_825cc2",
    )
] + [DATA / "realTweets" / f"Twitter_volume_{n}.csv" for n in ("AAPL", "AMZN", "FB")]


def _series(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path)
    ds = pd.to_datetime(raw["timestamp"]).dt.tz_localize("UTC").dt.floor("5min")
    frame = pd.DataFrame({"ds": ds, "y": raw["value"].astype(float)})
    frame = frame.groupby("ds", as_index=False)["y"].max()
    grid = pd.date_range(frame["ds"].iloc[0], frame["ds"].iloc[-1], freq="5min")
    return frame.set_index("ds").reindex(grid).rename_axis("ds").reset_index()


def jobs(count: int) -> list[FitJob]:
    """``count`` 2-week histories: windows of the real series, one day apart."""
    windows: list[pd.DataFrame] = []
    for path in FILES:
        series = _series(path)
        windows.extend(
            series.iloc[start : start + WEEKS2].reset_index(drop=True)
            for start in range(0, len(series) - WEEKS2 + 1, 288)
        )
    settings = ForecastSettings(horizon=dt.timedelta(hours=24))
    out = []
    for i in range(count):
        window = windows[i % len(windows)]
        scale = 1.0 + 0.01 * (i // len(windows))
        history = window.assign(y=window["y"] * scale)
        now = history["ds"].iloc[-1].to_pydatetime() + dt.timedelta(minutes=5)
        out.append(
            FitJob(
                name=f"svc-{i:04d}",
                history=history,
                events=(),
                settings=settings,
                now=now,
                min_history=dt.timedelta(hours=24),
                models=DEFAULT_MODELS,
                candidates=PRODUCT,
            )
        )
    return out


def run(kind: str, work: list[FitJob], workers: int) -> tuple[float, int]:
    started = time.monotonic()
    failed = 0
    if kind == "serial":
        for job in work:
            fitted = run_fit_job(job)
            failed += not fitted.forecasts
        return time.monotonic() - started, failed
    if kind == "process":
        settings = ExecutorSettings(kind="process", workers=workers, preload=("prophet",))
        with FitExecutor(settings) as pool:
            for outcome in pool.map_unordered(run_fit_job, work):
                failed += outcome.error is not None
        return time.monotonic() - started, failed
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        settings = ExecutorSettings(kind="dask", preload=("prophet",))
        with FitExecutor(settings, client=cluster) as pool:
            for outcome in pool.map_unordered(run_fit_job, work):
                failed += outcome.error is not None
    return time.monotonic() - started, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--serial", type=int, default=40, help="services for the serial run")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--modes", nargs="+", choices=["serial", "process", "dask"], default=["serial", "process"]
    )
    args = parser.parse_args()
    work = jobs(max(args.services, args.serial))
    print(f"{len(work)} services x {WEEKS2} points (2 weeks of 5 min), {args.workers} workers")
    if "serial" in args.modes:
        run_fit_job(work[0])  # imports and CmdStan warm-up are not the fits' cost
    for kind in args.modes:
        subset = work[: args.serial] if kind == "serial" else work[: args.services]
        seconds, failed = run(kind, subset, args.workers)
        rate = len(subset) / seconds * 60
        print(
            f"{kind:8s} {len(subset):5d} services in {seconds:7.1f} s = {rate:6.1f} services/min "
            f"({seconds / len(subset):.3f} s each; 1,000 services: {1000 / rate:.1f} min); "
            f"{failed} failed",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
