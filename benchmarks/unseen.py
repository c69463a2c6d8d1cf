"""Shapes the public corpus does not have: seeded synthetic series, one per class of traffic.

    .venv/bin/python benchmarks/unseen.py [--only CLASS ...] [--seed 1] [--workers 2]
        [--cache DIR] [--json FILE] [--markdown FILE]

The 16 public series of ``benchmarks/backtest.py`` are the corpus the engine was developed
on. This script asks the engine about classes of traffic that corpus lacks, or has only
once, as a user with such a service would meet them, with the same simulation and product
defaults (``backtest.product_default()``, ``backtest.config_for``: 24 h horizon, lead time
15 min, capacity per unit = peak evaluated demand / 20, observed floor held through the
stabilisation). Nothing here chooses a default: the knobs are chosen by
``benchmarks/backtest.py`` leaving whole public groups out. A class that shows a failure
and is then fixed becomes in-sample for that fix: docs/BENCHMARKS.md says which.

Each class is generated from its own seeded ``numpy.random.Generator`` (``--seed`` moves
all of them) on a 5-minute grid (``hourly``: 1 h) of 29 days from Monday 2024-01-01 00:00
UTC; 14 folds, one per midnight of the last 14 days (the first 15 days are history).
Parameters are drawn from ranges, not fixed, so another seed is another member of the
class. Fits are cached like the public series' (``backtest.fitted``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import backtest as B  # noqa: E402

START = pd.Timestamp("2024-01-01", tz="UTC")  # a Monday
DAYS = 29
FOLDS = 14

Rng = np.random.Generator


def _grid(step: str = "5min") -> pd.DatetimeIndex:
    return pd.date_range(START, START + pd.Timedelta(days=DAYS), freq=step, inclusive="left")


def _hours(ds: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(ds.hour + ds.minute / 60.0, dtype=float)


def _daily(ds: pd.DatetimeIndex, peak_hour: float, sharpness: float = 1.0) -> np.ndarray:
    """A daily shape in [0, 1]: 1 at ``peak_hour``, 0 twelve hours away."""
    phase = 2 * np.pi * (_hours(ds) - peak_hour) / 24.0
    return np.asarray(((1 + np.cos(phase)) / 2) ** sharpness)


def _weekend(ds: pd.DatetimeIndex, factor: float) -> np.ndarray:
    return np.where(np.asarray(ds.dayofweek) >= 5, factor, 1.0)


def _counts(rng: Rng, mean: np.ndarray) -> np.ndarray:
    """Request counts: Poisson around ``mean`` (``mean`` >= 0)."""
    return rng.poisson(np.maximum(mean, 0.0)).astype(float)


def _pct(values: np.ndarray) -> np.ndarray:
    return np.clip(values, 0.0, 100.0).round(3)


def cron_spikes(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """A quiet host (CPU ~2 %) with a job every 30 or 60 minutes lifting one sample."""
    base = rng.uniform(1.0, 4.0)
    y = base + rng.normal(0, base * 0.04, len(ds))
    every = int(rng.choice([6, 12]))  # samples between jobs
    offset = int(rng.integers(0, every))
    jobs = (np.arange(len(ds)) % every) == offset
    y[jobs] += rng.uniform(4.0, 25.0) * rng.uniform(0.8, 1.2, int(jobs.sum()))
    return _pct(y)


def bursty_cpu(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """Idle CPU with bursts to 90-99 % at unpredictable times (5-90 minutes each)."""
    y = rng.uniform(0.05, 2.0) + rng.exponential(0.2, len(ds))
    i, n = 0, len(ds)
    while i < n:
        i += int(rng.exponential(rng.uniform(150, 500)))  # ~0.5-2 bursts a day
        length = int(rng.integers(1, 19))
        y[i : i + length] = rng.uniform(90, 99.5, len(y[i : i + length]))
        i += length
    return _pct(y)


def smooth_daily(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """A database's CPU: a smooth daily cycle with light noise, weekends a little lower."""
    low, high = rng.uniform(5, 20), rng.uniform(35, 70)
    shape = _daily(ds, rng.uniform(12, 18), rng.uniform(1.0, 3.0))
    y = (low + (high - low) * shape) * _weekend(ds, rng.uniform(0.7, 0.95))
    return _pct(y * rng.normal(1.0, 0.03, len(ds)))


def business_weekly(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """Requests of a business app: busy weekday office hours, quiet nights and weekends."""
    peak = rng.uniform(300, 3000)
    shape = _daily(ds, rng.uniform(10, 15), rng.uniform(2.0, 4.0))
    mean = peak * (0.05 + 0.95 * shape) * _weekend(ds, rng.uniform(0.15, 0.4))
    return _counts(rng, mean * rng.lognormal(0, 0.1, len(ds)))


def viral_spikes(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """Mentions with a daily cycle and a few unannounced spikes (3-8x, 1-3 hours)."""
    base = rng.uniform(20, 200)
    mean = base * (0.4 + 0.6 * _daily(ds, rng.uniform(14, 22), 1.5))
    for _ in range(int(rng.integers(3, 6))):
        at = int(rng.integers(0, len(ds) - 40))
        length = int(rng.integers(12, 37))
        mean[at : at + length] *= rng.uniform(3, 8) * np.exp(-np.arange(length) / (length / 2))
        mean[at : at + length] = np.maximum(mean[at : at + length], base * 0.4)
    return _counts(rng, mean * rng.lognormal(0, 0.15, len(ds)))


def _stepped(
    rng: Rng, ds: pd.DatetimeIndex, day: tuple[int, int], factor: tuple[float, float]
) -> np.ndarray:
    """Request counts on a daily cycle whose level is multiplied by a factor drawn from
    ``factor`` from a midnight drawn from ``day`` (days after START) on."""
    peak = rng.uniform(200, 2000)
    level = np.ones(len(ds))
    level[ds >= START + pd.Timedelta(days=int(rng.integers(*day)))] = rng.uniform(*factor)
    mean = peak * level * (0.3 + 0.7 * _daily(ds, rng.uniform(11, 20), 1.5))
    return _counts(rng, mean * rng.lognormal(0, 0.08, len(ds)))


def regime_up(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """A daily cycle whose level steps up 2-3x on one day of the evaluation (a launch)."""
    return _stepped(rng, ds, (17, 23), (2.0, 3.0))


def regime_down(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """A daily cycle whose level drops to 20-40 % on one day (a job moved elsewhere)."""
    return _stepped(rng, ds, (13, 18), (0.2, 0.4))


def growth(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """A daily and weekly cycle on a level growing 2-5 % a day."""
    peak = rng.uniform(100, 1000)
    days = np.asarray((ds - START) / pd.Timedelta(days=1), dtype=float)
    level = (1 + rng.uniform(0.02, 0.05)) ** days
    mean = peak * level * (0.3 + 0.7 * _daily(ds, rng.uniform(11, 20), 2.0))
    return _counts(
        rng, mean * _weekend(ds, rng.uniform(0.6, 0.9)) * rng.lognormal(0, 0.08, len(ds))
    )


def pinned_cpu(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """A saturated host: CPU at 95-99.5 % with short dips now and then."""
    y = rng.uniform(96, 99) + rng.normal(0, 0.6, len(ds))
    dips = rng.random(len(ds)) < rng.uniform(0.01, 0.04)
    y[dips] -= rng.uniform(10, 60, int(dips.sum()))
    return _pct(np.minimum(y, 99.6))


def heavy_tail_bytes(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """Network bytes in: a daily cycle under heavy-tailed (lognormal, sigma ~1) noise."""
    peak = rng.uniform(1e5, 1e7)
    mean = peak * (0.2 + 0.8 * _daily(ds, rng.uniform(8, 20), 1.0))
    return np.round(mean * rng.lognormal(0, rng.uniform(0.6, 1.1), len(ds)))


def single_outlier(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """A weekly business cycle with one bogus sample of 1e9 eight to twelve days before the
    first fold (a counter glitch)."""
    y = business_weekly(rng, ds)
    at = START + pd.Timedelta(days=int(rng.integers(3, 7)), hours=int(rng.integers(8, 18)))
    y[int((at - START) / pd.Timedelta(minutes=5))] = 1e9
    return y


def night_off(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """A batch pipeline: no demand at all from 00:00 to 06:00, a busy day otherwise."""
    peak = rng.uniform(50, 500)
    mean = peak * (0.3 + 0.7 * _daily(ds, rng.uniform(12, 16), 1.5))
    mean[_hours(ds) < 6] = 0.0
    return _counts(rng, mean * rng.lognormal(0, 0.1, len(ds)))


def hourly_counts(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """Hourly request totals of a consumer site: evening peak, busier weekends."""
    peak = rng.uniform(1e4, 1e6)
    mean = peak * (0.2 + 0.8 * _daily(ds, rng.uniform(18, 22), 2.0))
    return _counts(
        rng, mean * _weekend(ds, rng.uniform(1.1, 1.5)) * rng.lognormal(0, 0.05, len(ds))
    )


def gappy(rng: Rng, ds: pd.DatetimeIndex) -> np.ndarray:
    """A daily cycle with 3 % of samples missing and a 6-hour outage of the collector."""
    y = smooth_daily(rng, ds)
    y[rng.random(len(ds)) < 0.03] = np.nan
    at = int(rng.integers(3 * 288, 12 * 288))
    y[at : at + 72] = np.nan
    return y


CLASSES: dict[str, tuple[Callable[[Rng, pd.DatetimeIndex], np.ndarray], str, float | None]] = {
    "cron_spikes": (cron_spikes, "5min", 100.0),
    "bursty_cpu": (bursty_cpu, "5min", 100.0),
    "smooth_daily": (smooth_daily, "5min", 100.0),
    "business_weekly": (business_weekly, "5min", None),
    "viral_spikes": (viral_spikes, "5min", None),
    "regime_up": (regime_up, "5min", None),
    "regime_down": (regime_down, "5min", None),
    "growth": (growth, "5min", None),
    "pinned_cpu": (pinned_cpu, "5min", 100.0),
    "heavy_tail_bytes": (heavy_tail_bytes, "5min", None),
    "single_outlier": (single_outlier, "5min", None),
    "night_off": (night_off, "5min", None),
    "hourly_counts": (hourly_counts, "1h", None),
    "gappy": (gappy, "5min", 100.0),
}


def case(name: str, seed: int) -> B.Case:
    make, step, max_value = CLASSES[name]
    rng = np.random.default_rng([seed, sorted(CLASSES).index(name)])
    ds = _grid(step)
    frame = pd.DataFrame({"ds": ds, "y": make(rng, ds)})
    cutoffs = tuple(
        (START + pd.Timedelta(days=DAYS - FOLDS - 1 + k)).to_pydatetime() for k in range(FOLDS)
    )
    return B.Case(
        group="synthetic",
        name=f"{name}_s{seed}",
        series=frame,
        cutoffs=cutoffs,
        max_value=max_value,
        about=(make.__doc__ or "").split("\n\n")[0].replace("\n", " "),
    )


def table(rows: Sequence[dict[str, object]], cases: Sequence[B.Case]) -> str:
    about = {c.name: c.about for c in cases}
    lines = [
        "| class | what | forescale under % / × static | reactive | reactive 80 % util. | "
        "seasonal naive ×1.2 | dominated by | > 1.0× static | models chosen (folds) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        over = B.cost(r) > 1.0 + 1e-9
        lines.append(
            "| "
            + " | ".join(
                [
                    str(r["series"]),
                    about[str(r["series"])],
                    f"**{B._approach_cell(r, 'forescale')}**",
                    *(B._approach_cell(r, a) for a in B.BASELINES[:3]),
                    ", ".join(r["dominated_by"]) or "—",  # type: ignore[arg-type]
                    ("stated" if B.reason(r) else "**no reason**") if over else "—",
                    B._counts(r["models"]),
                ]
            )
            + " |"
        )
    acceptable = sum(B.acceptable(r) for r in rows)
    mean_u = float(np.mean([B.under(r) for r in rows]))
    mean_c = float(np.mean([B.cost(r) for r in rows]))
    lines.append("")
    lines.append(
        f"{acceptable}/{len(rows)} acceptable (not dominated, at most the static peak's "
        f"unit-hours); mean under-provisioned {mean_u:.3f} % at {mean_c:.3f}× static"
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(CLASSES), default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/forescale-backtest-cache"))
    parser.add_argument("--csv-dir", type=Path, default=None, help="also write each series")
    parser.add_argument("--unit-tolerance", type=float, default=None, help="default: the engine's")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    cases = [case(name, args.seed) for name in (args.only or CLASSES)]
    if args.csv_dir:
        args.csv_dir.mkdir(parents=True, exist_ok=True)
        for c in cases:
            frame = c.series.rename(columns={"ds": "timestamp", "y": "value"})
            frame.to_csv(args.csv_dir / f"{c.name}.csv", index=False)
    default = B.product_default()
    if args.unit_tolerance is not None:
        default = dataclasses.replace(default, unit_tolerance=args.unit_tolerance)
    exec_settings = B.ExecutorSettings(kind="process", workers=args.workers, preload=("prophet",))
    with B.FitExecutor(exec_settings) as pool:
        paths = {}
        for c in cases:
            paths[c.name], took = B.fitted(c, args.cache, pool)
            state = "cached" if took is None else f"fitted in {took:.0f} s"
            print(f"  {c.name}: {len(c.cutoffs)} folds {state}", flush=True)
        jobs = [B.ReplayJob(c, paths[c.name], default, B.CLI.max_units) for c in cases]
        rows: list[dict[str, object]] = [{} for _ in jobs]
        for outcome in pool.map_unordered(B.replay, jobs):
            if outcome.error is not None or outcome.value is None:
                raise SystemExit(f"replay of {jobs[outcome.index].case.name}: {outcome.error}")
            rows[outcome.index] = outcome.value
    report = (
        f"Setting: {default.label()}, seed {args.seed}\n\n"
        + table(rows, cases)
        + "\n\n"
        + B.engine_table(rows)
        + f"\n\n{len(cases)} series, {time.monotonic() - started:.0f} s wall"
    )
    print(report)
    if args.markdown:
        args.markdown.write_text(report + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
