"""The public series as a new user would backtest them: ``forescale backtest --csv FILE``
with nothing but the defaults, one process per file.

    .venv/bin/python benchmarks/newuser.py [--workers 2] [--only NAME ...] [--out DIR]
        [--markdown FILE] [--extra DIR ...] [--no-public]

``benchmarks/backtest.py`` gives every series what a careful team would: events, holidays,
the timezone, ``max_value`` 100 for a percentage, every midnight of the data as a fold
with three seeding days. A new user runs the command line with none of that: the CLI's
14 folds (fewer when the history is short: a week of history before the first), no
calendar, no maximum, UTC. This is the closest view to a check run by someone else on
series they hold back, so it is measured too, and nothing is chosen on it.

Per file the verdicts of the issue "robust on traffic it has never seen": not Pareto-
dominated by reactive target tracking (0 and 20 % headroom), seasonal naive x1.2 or the
static peak; at most the static peak's unit-hours; sMAPE at or below seasonal naive's (the
CLI's ``seasonal_naive`` model: the demand one week earlier). Data: ../shared/datasets
(NAB: MIT; traffic/: ITA and CC-BY 4.0, see their READMEs), read as it is.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "datasets"
# every public file, read as it is (nab/<corpus>/*.csv, traffic/*.csv)
PUBLIC = ("nab/*/*.csv", "traffic/*.csv")
BASELINES = ("reactive", "reactive_headroom_20", "seasonal_naive_x1_2", "static_peak")


@dataclass(frozen=True)
class Verdict:
    name: str
    folds: int
    under: float  # percent
    vs_static: float
    dominated_by: tuple[str, ...]
    smape: float
    smape_naive: float
    baselines: dict[str, tuple[float, float]]  # name: (under %, x static)

    @property
    def acceptable(self) -> bool:
        return not self.dominated_by and self.vs_static <= 1.0

    @property
    def smape_ok(self) -> bool:
        return self.smape <= self.smape_naive


def run(path: Path, out: Path) -> Verdict:
    """``forescale backtest --csv path --format json`` (the defaults), read back."""
    target = out / f"{path.stem}.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "forescale",
            "backtest",
            "--csv",
            str(path),
            "--workers",
            "1",
            "--format",
            "json",
            "--output",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{path.name}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    report = json.loads(target.read_text(encoding="utf-8"))
    metrics = {m["model"]: m for m in report["metrics"]}
    approaches = {a["name"]: a for a in report["approaches"]}
    own = approaches["forescale"]
    return Verdict(
        name=path.stem,
        folds=sum(1 for f in report["folds"] if f["model"] is not None),
        under=own["under_share"] * 100,
        vs_static=own["vs_static"],
        dominated_by=tuple(report["dominated_by"]),
        smape=metrics["forescale"]["smape"],
        smape_naive=metrics["seasonal_naive"]["smape"],
        baselines={
            b: (approaches[b]["under_share"] * 100, approaches[b]["vs_static"]) for b in BASELINES
        },
    )


def table(verdicts: Sequence[Verdict]) -> str:
    head = (
        "| series | folds | forescale under % / × static | reactive | reactive 80 % util. "
        "| seasonal naive ×1.2 | dominated by | ≤ 1.0× static | sMAPE forescale / seasonal "
        "naive |\n|---|---:|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for v in verdicts:
        cells = [f"{v.baselines[b][0]:.3f} / {v.baselines[b][1]:.3f}" for b in BASELINES[:3]]
        lines.append(
            f"| {v.name} | {v.folds} | **{v.under:.3f} / {v.vs_static:.3f}** | "
            + " | ".join(cells)
            + f" | {', '.join(v.dominated_by) or '—'} | {'✓' if v.vs_static <= 1.0 else '✗'} "
            f"| {'✓' if v.smape_ok else '✗'} {v.smape:.2f} / {v.smape_naive:.2f} |"
        )
    n = len(verdicts)
    mean_under = sum(v.under for v in verdicts) / n
    mean_cost = sum(v.vs_static for v in verdicts) / n
    lines.append(
        f"\n{sum(v.acceptable for v in verdicts)}/{n} acceptable (not dominated, at most the "
        f"static peak's unit-hours); sMAPE at or below seasonal naive on "
        f"{sum(v.smape_ok for v in verdicts)}/{n}; mean under-provisioned {mean_under:.3f} % "
        f"at {mean_cost:.4f}× static"
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="files backtested at once")
    parser.add_argument("--only", nargs="+", help="only these file stems")
    parser.add_argument(
        "--extra",
        type=Path,
        nargs="+",
        default=[],
        help="folders of more timestamp,value CSVs (e.g. benchmarks/unseen.py --csv-dir)",
    )
    parser.add_argument("--no-public", action="store_true", help="only the --extra files")
    parser.add_argument("--out", type=Path, default=Path("/tmp/forescale-newuser"))
    parser.add_argument("--markdown", type=Path)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    public = () if args.no_public else tuple(p for g in PUBLIC for p in sorted(DATA.glob(g)))
    extra = tuple(p for folder in args.extra for p in sorted(folder.glob("*.csv")))
    paths = [p for p in (*public, *extra) if args.only is None or p.stem in args.only]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        verdicts = list(pool.map(lambda p: run(p, args.out), paths))
    report = table(verdicts) + f"\n\n{len(verdicts)} files, {time.monotonic() - started:.0f} s wall"
    print(report)
    if args.markdown:
        args.markdown.write_text(report + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
