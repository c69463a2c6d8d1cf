"""Which forecast's demand the report shows: the primary's, unless another forecasting
model is more accurate on the record by more than a margin (``DEMAND_MARGIN`` in
forescale/forecaster/decision.py) over its last days (``DEMAND_WINDOW``). Chosen here by
leaving whole groups of series out.

    .venv/bin/python benchmarks/demand_margin.py [--cache DIR] [--synthetic-seeds 1 2]

Every series of benchmarks/backtest.py is replayed once at the product's defaults (on the
fits cached there: run that benchmark first) for each forecasting model's point forecast
on every fold. Each rule (a window of folds, a margin) then picks, fold by fold, the model
whose demand is shown from the previous folds' sMAPE (the record; the first fold, without
one, shows the primary) and is scored by its sMAPE over all folds against seasonal
naive's. A rule is better when the report's demand is at or below seasonal naive's sMAPE
on more series, then when its mean ratio to seasonal naive is lower; each group's rule is
chosen on the other groups. With ``--synthetic-seeds`` the classes of
benchmarks/unseen.py (fits cached by running it) are scored too, as one more group. This
replays the choice outside the engine (its record also has three seeding days and uses
the engine's own record window), so the engine's numbers differ a little:
docs/BENCHMARKS.md gives both.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import backtest as bench  # noqa: E402

from forescale.forecaster.accuracy import smape  # noqa: E402
from forescale.forecaster.backtest import run_backtest  # noqa: E402
from forescale.forecaster.decision import mix_weight  # noqa: E402
from forescale.usecases.backtest import fitted_candidates  # noqa: E402

MODELS = ("ensemble", "prophet", "seasonal_naive")  # the forecasting models; the first is primary
MARGINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
WINDOWS = (7, 14, 28)  # folds (days) of record the rule judges
Rule = tuple[str, int, float]  # (kind, window, margin)
RULES: tuple[Rule, ...] = (
    *(("pick", w, m) for w in WINDOWS for m in MARGINS),
    *(("mix", w, m) for w in (7, 28) for m in (0.0, 0.05, 0.1, 0.2)),
)
"""``pick``: the forecasting model with the lowest sMAPE when it beats the primary's by
more than the margin (the rule before the mix); ``mix``: Prophet's weight in a mix with
seasonal naive (:func:`forescale.forecaster.decision.mix_weight`)."""
SYNTHETIC = "synthetic"


def shown(folds: list[pd.DataFrame], rule: Rule) -> np.ndarray:
    """The demand the report would show on every fold under ``rule``."""
    kind, window, margin = rule
    if kind == "mix":
        return mixed(folds, window, margin)
    out = []
    for i, fold in enumerate(folds):
        record = folds[max(0, i - window) : i]
        pick = MODELS[0]
        if record:
            actual = np.concatenate([f["actual"].to_numpy(dtype=float) for f in record])
            errors = {m: smape(actual, _points(record, m)) for m in MODELS}
            best = min(errors, key=lambda m: errors[m])
            if errors[best] < (1 - margin) * errors[MODELS[0]]:
                pick = best
        out.append(fold[f"{pick}:yhat"].to_numpy(dtype=float))
    return np.concatenate(out)


def mixed(folds: list[pd.DataFrame], window: int, margin: float) -> np.ndarray:
    """The mix :func:`mix_weight` picks on the previous ``window`` folds, fold by fold
    (the ensemble's even mix on the first)."""
    out = []
    for i, fold in enumerate(folds):
        record = folds[max(0, i - window) : i]
        weight = 0.5
        if record:
            actual = np.concatenate([f["actual"].to_numpy(dtype=float) for f in record])
            prophet, naive = _points(record, "prophet"), _points(record, "seasonal_naive")
            keep = np.isfinite(actual) & np.isfinite(prophet) & np.isfinite(naive)
            if keep.any():
                weight, _ = mix_weight(actual[keep], prophet[keep], naive[keep], margin)
        p = fold["prophet:yhat"].to_numpy(dtype=float)
        out.append(weight * p + (1 - weight) * fold["seasonal_naive:yhat"].to_numpy(dtype=float))
    return np.concatenate(out)


def _points(folds: list[pd.DataFrame], model: str) -> np.ndarray:
    return np.concatenate([f[f"{model}:yhat"].to_numpy(dtype=float) for f in folds])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/forescale-backtest-cache"))
    parser.add_argument(
        "--synthetic-seeds",
        type=int,
        nargs="*",
        default=[],
        help="also score benchmarks/unseen.py's classes at these seeds (held out only)",
    )
    args = parser.parse_args(argv)
    events = bench.EventFiles(args.cache / "events")
    cases = [c for loader in bench.LOADERS.values() for c in loader(events)]
    if args.synthetic_seeds:
        import unseen

        cases += [unseen.case(n, s) for s in args.synthetic_seeds for n in sorted(unseen.CLASSES)]
    scores: dict[Rule, dict[str, tuple[float, float]]] = {r: {} for r in RULES}
    groups: dict[str, str] = {}
    for case in cases:
        path = bench.cache_path(args.cache, case)
        if not path.exists():
            print(f"{case.name}: no cached fits at {path}; run its benchmark first")
            return 2
        fits = pickle.loads(path.read_bytes())
        config = bench.config_for(case, bench.product_default(), bench.CLI.max_units)
        points = run_backtest(case.series, config, fitted_candidates(fits)).points
        folds = [f for _, f in points.groupby("fold")]
        actual = np.concatenate([f["actual"].to_numpy(dtype=float) for f in folds])
        naive = smape(actual, points["seasonal_naive:yhat"].to_numpy(dtype=float))
        groups[case.name] = case.group
        for rule in RULES:
            scores[rule][case.name] = (smape(actual, shown(folds, rule)), naive)
    real = [n for n in groups if groups[n] != SYNTHETIC]
    synthetic = [n for n in groups if groups[n] == SYNTHETIC]

    def rank(rule: Rule, series: list[str]) -> tuple[int, float]:
        s = scores[rule]
        return (
            -sum(s[n][0] <= s[n][1] for n in series),
            float(np.mean([s[n][0] / s[n][1] for n in series])),
        )

    def chosen(series: list[str]) -> Rule:  # ties: the shorter window, then the larger margin
        return min(RULES, key=lambda r: (rank(r, series), r[1], -r[2]))

    head = "| rule | window (days) | margin | public series at or below s. naive | mean ratio |"
    print(head + (" synthetic | mean ratio |" if synthetic else ""))
    print("|---|---:|---:|---:|---:|" + ("---:|---:|" if synthetic else ""))
    for rule in RULES:
        beats, ratio = rank(rule, real)
        line = f"| {rule[0]} | {rule[1]} | {rule[2]:g} | {-beats}/{len(real)} | {ratio:.3f} |"
        if synthetic:
            s_beats, s_ratio = rank(rule, synthetic)
            line += f" {-s_beats}/{len(synthetic)} | {s_ratio:.3f} |"
        print(line)
    print()
    everything = list(groups)
    print("| group left out | rule chosen on the others | **held out: at or below s. naive** |")
    print("|---|---:|---:|")
    for group in sorted(set(groups.values())):
        inside = [n for n in everything if groups[n] == group]
        others = [n for n in everything if groups[n] != group]
        rule = chosen(others)
        beats, ratio = rank(rule, inside)
        print(
            f"| {group} | {rule[0]} {rule[1]} d, {rule[2]:g} | "
            f"**{-beats}/{len(inside)}** (mean ratio {ratio:.3f}) |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
