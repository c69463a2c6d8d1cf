"""Accuracy and capacity on the public series, against the published baselines.

    .venv/bin/python benchmarks/backtest.py [--series taxi cw tweets] [--workers 2]
        [--json results.json]

The data comes from ../shared/datasets (NAB, MIT licence) - nothing is downloaded:

* **taxi**: ``realKnownCause/nyc_taxi.csv`` at its native 30 minutes; the timestamps are
  naive New York wall-clock times and are read as they are (as the published baselines
  did: the fall-back night's 01:00 holds two hours, 39,197 rides, and that peak sizes the
  units); US holidays; 91 daily cutoffs 2014-11-01 .. 2015-01-30, 24 h horizon.
* **cw**: ``realAWSCloudwatch`` elb_request_count_8c0756 and the three
  ec2_cpu_utilization series at 5 minutes; a cutoff every midnight from day 7 on.
* **tweets**: ``realTweets`` AAPL, AMZN, FB at 5 minutes; a cutoff every 2nd midnight,
  the first after 14 days.

Timestamps of the 5-minute series are floored to the 5-minute grid (NAB's carry seconds).
Capacity is simulated at 5-minute steps (taxi: the 30-minute values interpolated
linearly) with ``capacity_per_unit`` = peak evaluated demand / 20, so the static peak
needs 20 units, and every approach is capped at max_units = 20. forescale plans exactly as
the daemon does: the forecast is fitted on the data before each cutoff; every 5 minutes
the daemon plans with it and the demand collected 10 minutes earlier as its observed
floor; raises serve 5 minutes after they are applied (and are paid from then).
Accuracy (sMAPE, MASE, coverage) is on each series' own grid; the hourly sMAPE of the taxi
series is also printed (means of the two half hours, as in the baselines).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forescale.executor import ExecutorSettings, FitExecutor  # noqa: E402
from forescale.forecaster.accuracy import smape  # noqa: E402
from forescale.forecaster.backtest import (  # noqa: E402
    BacktestConfig,
    BacktestResult,
    dominated_by,
    rolling_cutoffs,
)
from forescale.forecaster.types import CapacityPolicy, ForecastSettings  # noqa: E402
from forescale.usecases.backtest import FoldFitter, backtest_series  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "nab"
DAY = dt.timedelta(days=1)
FIVE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Case:
    group: str
    name: str
    series: pd.DataFrame
    cutoffs: tuple[dt.datetime, ...]
    holidays: str | None


def _read(path: Path, *, floor: str | None) -> pd.DataFrame:
    raw = pd.read_csv(path)
    ds = pd.to_datetime(raw["timestamp"]).dt.tz_localize("UTC")
    if floor:
        ds = ds.dt.floor(floor)
    frame = pd.DataFrame({"ds": ds, "y": raw["value"].astype(float)})
    frame = frame.groupby("ds")["y"].max().reset_index()
    step = pd.Timedelta(frame["ds"].diff().median())
    grid = pd.date_range(frame["ds"].iloc[0], frame["ds"].iloc[-1], freq=step)
    return frame.set_index("ds").reindex(grid).rename_axis("ds").reset_index()


def taxi() -> list[Case]:
    series = _read(DATA / "realKnownCause" / "nyc_taxi.csv", floor=None)
    days = pd.date_range("2014-11-01", "2015-01-30", freq="D", tz="UTC")
    return [Case("taxi", "nyc_taxi", series, tuple(d.to_pydatetime() for d in days), "US")]


def cw() -> list[Case]:
    out = []
    for name in (
        "elb_request_count_8c0756",
        "ec2_cpu_utilization_24ae8d",
        "ec2_cpu_utilization_5f5533",
        "ec2_cpu_utilization_825cc2",
    ):
        series = _read(DATA / "realAWSCloudwatch" / f"{name}.csv", floor="5min")
        cutoffs = rolling_cutoffs(
            pd.DatetimeIndex(series["ds"]), horizon=DAY, count=60, min_history=7 * DAY
        )
        out.append(Case("cw", name, series, cutoffs, None))
    return out


def tweets() -> list[Case]:
    out = []
    for name in ("AAPL", "AMZN", "FB"):
        series = _read(DATA / "realTweets" / f"Twitter_volume_{name}.csv", floor="5min")
        cutoffs = rolling_cutoffs(
            pd.DatetimeIndex(series["ds"]),
            horizon=DAY,
            count=60,
            spacing=2 * DAY,
            min_history=14 * DAY,
        )
        out.append(Case("tweets", name, series, cutoffs, None))
    return out


GROUPS: dict[str, Callable[[], list[Case]]] = {"taxi": taxi, "cw": cw, "tweets": tweets}
APPROACHES = ("forescale", "reactive", "reactive_headroom_20", "seasonal_naive_x1_2", "static_peak")


def policy(args: argparse.Namespace) -> CapacityPolicy:
    return CapacityPolicy(
        capacity_per_unit=0.0,  # peak / 20
        min_units=1,
        max_units=args.max_units,
        lead_time=dt.timedelta(minutes=15),
        stabilization=dt.timedelta(minutes=args.stabilization),
        observed_headroom=args.observed_headroom,
    )


def run_case(case: Case, args: argparse.Namespace, pool: FitExecutor) -> BacktestResult:
    fitter = FoldFitter(
        settings=ForecastSettings(
            horizon=DAY, country_holidays=case.holidays, timezone="UTC", interval_width=0.9
        ),
        min_history=dt.timedelta(days=3),
    )
    config = BacktestConfig(
        cutoffs=case.cutoffs,
        horizon=DAY,
        policy=policy(args),
        sim_step=FIVE,
        target_under=args.target_under,
    )
    return backtest_series(case.series, config, fitter, executor=pool)


def row(case: Case, result: BacktestResult) -> dict[str, object]:
    metrics = {m.model: m for m in result.metrics}
    out: dict[str, object] = {"group": case.group, "series": case.name, "folds": len(result.folds)}
    for model in ("forescale", "prophet", "seasonal_naive", "ensemble"):
        m = metrics.get(model)
        out[f"smape_{model}"] = None if m is None else round(m.smape, 2)
    fs = metrics["forescale"]
    out["coverage_forescale"] = round(fs.coverage, 3)
    for model in ("ensemble", "prophet", "seasonal_naive"):
        m = metrics.get(model)
        out[f"coverage_{model}"] = None if m is None else round(m.coverage, 3)
    out["mase_forescale"] = round(fs.mase, 3)
    for a in result.approaches:
        out[f"under_{a.name}"] = round(a.under_share * 100, 3)
        out[f"cost_{a.name}"] = round(a.vs_static, 3)
    out["dominated_by"] = dominated_by(result)
    if case.group == "taxi":
        p = result.points
        hours = p["ds"].dt.floor("1h")
        means = p.groupby(hours)[["actual", "forescale:yhat", "seasonal_naive:yhat"]].mean()
        out["hourly_smape_forescale"] = round(
            smape(means["actual"].to_numpy(), means["forescale:yhat"].to_numpy()), 2
        )
        out["hourly_smape_seasonal_naive"] = round(
            smape(means["actual"].to_numpy(), means["seasonal_naive:yhat"].to_numpy()), 2
        )
    chosen: dict[str, int] = {}
    for f in result.folds:
        if f.model:
            chosen[f.model] = chosen.get(f.model, 0) + 1
    out["models_chosen"] = chosen
    return out


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| series | folds | sMAPE forescale | sMAPE snaive 1w | sMAPE prophet | "
        "coverage (ensemble 90 % band / forescale headroom) | "
        + " | ".join(f"{a} under % / x static" for a in APPROACHES)
        + " | dominated by |",
        "|" + "---|" * (7 + len(APPROACHES)),
    ]
    for r in rows:
        cells = [
            f"{r['group']}:{r['series']}",
            str(r["folds"]),
            str(r["smape_forescale"]),
            str(r["smape_seasonal_naive"]),
            str(r["smape_prophet"]),
            f"{r['coverage_ensemble']} / {r['coverage_forescale']}",
            *(f"{r[f'under_{a}']} / {r[f'cost_{a}']}" for a in APPROACHES),
            ", ".join(r["dominated_by"]) or "-",  # type: ignore[arg-type]
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def group_means(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    out = []
    for group in dict.fromkeys(r["group"] for r in rows):
        members = [r for r in rows if r["group"] == group]
        folds = sum(int(str(r["folds"])) for r in members)
        mean: dict[str, object] = {"group": group, "series": "mean", "folds": folds}
        for key, value in members[0].items():
            if isinstance(value, float | int) and key != "folds":
                values = [float(r[key]) for r in members if isinstance(r.get(key), float | int)]  # type: ignore[arg-type]
                mean[key] = round(float(np.mean(values)), 3) if values else math.nan
        mean["dominated_by"] = sorted(
            {
                a
                for a in APPROACHES[1:]
                if mean[f"cost_{a}"] < mean["cost_forescale"]  # type: ignore[operator]
                and mean[f"under_{a}"] < mean["under_forescale"]  # type: ignore[operator]
            }
        )
        out.append(mean)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", nargs="+", choices=sorted(GROUPS), default=sorted(GROUPS))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--target-under", type=float, default=0.03)
    parser.add_argument(
        "--max-units", type=int, default=20, help="every approach is capped here (static: 20)"
    )
    parser.add_argument("--observed-headroom", type=float, default=0.3)
    parser.add_argument("--stabilization", type=float, default=15, help="minutes")
    parser.add_argument("--only", nargs="*", default=None, help="only these series names")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    cases = [c for g in args.series for c in GROUPS[g]() if not args.only or c.name in args.only]
    rows = []
    started = time.monotonic()
    settings = ExecutorSettings(kind="process", workers=args.workers, preload=("prophet",))
    with FitExecutor(settings) as pool:
        for case in cases:
            t0 = time.monotonic()
            result = run_case(case, args, pool)
            r = row(case, result)
            r["seconds"] = round(time.monotonic() - t0, 1)
            rows.append(r)
            print(json.dumps(r), flush=True)
    print()
    print(table(rows + group_means(rows)))
    took = time.monotonic() - started
    print(f"\n{len(cases)} series in {took:.0f} s with {args.workers} workers")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
