"""Time from "step due" to "apply finished" for a terraform_data module, and the overhead
forescale adds on top of terraform's own plan + show + apply.

    .venv/bin/python benchmarks/apply.py [--runs 5]

Each run: a fresh raise is due (demand steps up), forescale collects, forecasts (seasonal
naive, so the number is about the apply path, not Prophet), plans, writes the tfvars,
runs terraform plan/show/apply and records the audit. The baseline runs the same three
terraform commands by hand on an identical project.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forescale.config.settings import load_settings  # noqa: E402
from forescale.store import Store  # noqa: E402
from forescale.usecases.apply import apply_due  # noqa: E402
from forescale.usecases.collect import collect_all  # noqa: E402
from forescale.usecases.context import App  # noqa: E402
from tests.fakes import FAST  # noqa: E402

MAIN_TF = """
variable "web_min_size" { type = number }
resource "terraform_data" "web_asg" { input = { min_size = var.web_min_size } }
"""
SETTINGS = """
store_url: sqlite:///state/forescale.db
mode: apply
services:
  web:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 100
    min_units: 1
    max_units: 500
    iac: {working_dir: tf, address: web_min_size}
"""
NOW = dt.datetime(2024, 6, 3, 12, 0, tzinfo=dt.UTC)


def tf(workdir: Path, *args: str) -> None:
    subprocess.run(["terraform", *args], cwd=workdir, check=True, capture_output=True, timeout=300)


def project(root: Path) -> None:
    (root / "tf").mkdir(parents=True)
    (root / "tf" / "main.tf").write_text(MAIN_TF)
    (root / "tf" / "terraform.tfvars").write_text("web_min_size = 1 # forescale\n")
    (root / "forescale.yaml").write_text(SETTINGS)
    tf(root / "tf", "init", "-input=false", "-no-color")
    tf(root / "tf", "apply", "-input=false", "-no-color", "-auto-approve")


def demand(root: Path, level: float) -> None:
    ds = pd.date_range(NOW - dt.timedelta(days=2), NOW, freq="5min")
    frame = pd.DataFrame({"timestamp": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": level})
    frame.to_csv(root / "demand.csv", index=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="forescale-bench-apply-"))
    rc = work / "terraformrc"
    rc.write_text("")
    os.environ.update(
        {
            "TF_CLI_CONFIG_FILE": str(rc),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
            "HOME": str(work),
        }
    )
    ours, baseline = work / "forescale", work / "baseline"
    project(ours)
    project(baseline)
    totals, raw = [], []
    for run in range(args.runs):
        level = 1000.0 * (run + 2)
        demand(ours, level)
        settings = load_settings(ours / "forescale.yaml")
        start = time.perf_counter()
        store = Store.open(settings.store_url)
        with store.engine.begin() as conn:  # a fresh history each run: demand stepped up
            conn.exec_driver_sql("DELETE FROM samples")
        collect_all(settings, store)
        [outcome] = apply_due(App(settings=settings, store=store, candidates=FAST), now=NOW)
        store.close()
        totals.append(time.perf_counter() - start)
        assert outcome.status == "applied", outcome.message

        (baseline / "tf" / "terraform.tfvars").write_text(f"web_min_size = {run + 10} # x\n")
        start = time.perf_counter()
        tf(
            baseline / "tf",
            "plan",
            "-input=false",
            "-no-color",
            "-out=p.tfplan",
            "-lock-timeout=60s",
        )
        tf(baseline / "tf", "show", "-json", "p.tfplan")
        tf(baseline / "tf", "apply", "-input=false", "-no-color", "p.tfplan")
        raw.append(time.perf_counter() - start)
    version = subprocess.run(["terraform", "version"], capture_output=True, text=True).stdout
    print(f"terraform: {version.splitlines()[0]}; runs: {args.runs}")
    print("| measure | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    for label, values in (
        ("forescale apply (collect+forecast+plan+write+terraform+audit)", totals),
        ("terraform plan + show -json + apply alone", raw),
    ):
        print(
            f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |"
        )
    print(
        f"| overhead added by forescale (median difference) | "
        f"{statistics.median(totals) - statistics.median(raw):.2f} | | |"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
