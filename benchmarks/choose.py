"""The record's choice at every refit: milliseconds per ``choose_model`` call.

    .venv/bin/python benchmarks/choose.py [--repeat 20] [--days 28]

``--days`` of 5-minute record (28: the default record window, 8,064 steps) of a daily
cycle with noise, the five default candidates (each a point within ±10 % of the demand
and a band 10 % above it), the default floor (+30 %, held over the 15-minute
stabilisation, as the daemon serves it) and the default serving (15-minute lead time,
whole units). One process, after one warm-up call; the median of ``--repeat`` calls. The
fleet benchmark (throughput.py) times the fits; this is what each refit adds after them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from forescale.forecaster.accuracy import Floor, Serving, choose_model
from forescale.forecaster.candidates import DEFAULT_MODELS, CompactForecast, live_record
from forescale.forecaster.types import CapacityPolicy


def record(days: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=days * 288, freq="5min", tz="UTC")
    day = np.sin(np.arange(len(ds)) / 288 * 2 * np.pi)
    actual = 100 + 30 * day + rng.normal(0, 5, len(ds))
    out = pd.DataFrame({"ds": ds, "actual": actual})
    for model in DEFAULT_MODELS:
        point = actual * rng.uniform(0.9, 1.1, len(ds))
        out[f"{model}:yhat"], out[f"{model}:upper"] = point, point * 1.1
    return out


def stored_runs(rows: pd.DataFrame, every: dt.timedelta) -> list[tuple[dt.datetime, dict]]:
    """The refits' stored candidates (24 h each, one run every ``every``) that made
    ``rows``, as the store hands them to the live record."""
    ds = pd.DatetimeIndex(rows["ds"])
    runs = []
    for as_of in pd.date_range(ds[0], ds[-1], freq=pd.Timedelta(every)):
        span = rows[(ds >= as_of) & (ds < as_of + pd.Timedelta(days=1))]
        runs.append(
            (
                as_of.to_pydatetime(),
                {
                    m: CompactForecast(
                        start=as_of.to_pydatetime(),
                        step=dt.timedelta(minutes=5),
                        yhat=tuple(span[f"{m}:yhat"].round(3)),
                        upper=tuple(span[f"{m}:upper"].round(3)),
                    )
                    for m in DEFAULT_MODELS
                },
            )
        )
    return runs


def timed(call: Callable[[], object], times: int) -> list[float]:
    """Seconds per call of ``call``, ``times`` times."""
    out = []
    for _ in range(times):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--days", type=int, default=28, help="days of record (default: 28)")
    args = parser.parse_args(argv)
    rows = record(args.days)
    policy = CapacityPolicy(
        capacity_per_unit=10.0,
        min_units=1,
        max_units=100,
        lead_time=dt.timedelta(minutes=15),
        stabilization=dt.timedelta(minutes=15),
    )
    floor, serving, models = Floor(headroom=0.3), Serving.of(policy), list(DEFAULT_MODELS)
    choose_model(rows, models, floor=floor, serving=serving)  # warm-up
    times = timed(lambda: choose_model(rows, models, floor=floor, serving=serving), args.repeat)
    print(
        f"choose_model: {len(DEFAULT_MODELS)} candidates, {len(rows)} record steps: "
        f"median {statistics.median(times) * 1000:.1f} ms, min {min(times) * 1000:.1f} ms "
        f"({args.repeat} calls)"
    )
    runs = stored_runs(rows, dt.timedelta(hours=6))  # the daemon's refit_every
    actual = rows[["ds", "actual"]].rename(columns={"actual": "y"})
    now = pd.Timestamp(rows["ds"].iloc[-1]).to_pydatetime() + dt.timedelta(minutes=5)
    window = dt.timedelta(days=args.days)
    built = timed(
        lambda: live_record(runs, actual, now=now, window=window), max(3, args.repeat // 4)
    )
    print(
        f"live_record: {len(runs)} stored runs (one every 6 h): median "
        f"{statistics.median(built) * 1000:.1f} ms ({len(built)} calls)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
