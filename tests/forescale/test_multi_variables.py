"""Several variables per service: min, desired and max in one consistent edit (real
terraform), the ceiling raised ahead of a peak and returned to the team's maximum after."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forescale.config.settings import load_settings
from forescale.errors import ConfigError
from forescale.store import Store
from forescale.usecases.apply import apply_due
from forescale.usecases.collect import collect_all
from forescale.usecases.context import App
from tests.fakes import FAST
from tests.forescale.tf_project import (
    isolated_terraform,  # noqa: F401 - an autouse fixture
    records,
    state_values,
    terraform,
)

pytestmark = pytest.mark.external_service

NOW = dt.datetime(2024, 6, 3, 12, 0, tzinfo=dt.UTC)
TFVARS = """# capacity of the web tier
capacity = {
  web = {
    min_size = 4   # forescale raises it before peaks
    desired  = 4
    max_size = 10  # the team's usual ceiling
  }
}
"""
MAIN_TF = """
variable "capacity" {
  type = map(object({ min_size = number, desired = number, max_size = number }))
}
resource "terraform_data" "web_asg" {
  input = var.capacity["web"]
}
"""
SETTINGS = """
store_url: sqlite:///state/forescale.db
mode: apply
services:
  web:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 100
    min_units: 2
    max_units: 40
    observed_headroom: 0
    scale_in: {policy: after_peak, stabilization: 15m, tolerance: 0}
    iac:
      working_dir: tf
      var_file: terraform.tfvars
      addresses: {min: capacity.web.min_size, desired: capacity.web.desired,
                  max: capacity.web.max_size}
      max_base: 10
      terraform: {lock_timeout: 5s, plan_timeout: 60s, apply_timeout: 60s}
"""


def project(tmp: Path, level: float) -> Path:
    root = tmp / "project"
    (root / "tf").mkdir(parents=True)
    (root / "tf" / "main.tf").write_text(MAIN_TF)
    (root / "tf" / "terraform.tfvars").write_text(TFVARS)
    (root / "forescale.yaml").write_text(SETTINGS)
    demand(root, level)
    terraform(root / "tf", "init", "-input=false")
    terraform(root / "tf", "apply", "-input=false", "-auto-approve")
    return root


def demand(root: Path, level: float) -> None:
    ds = pd.date_range(NOW - dt.timedelta(days=3), NOW + dt.timedelta(hours=2), freq="5min")
    pd.DataFrame(
        {"timestamp": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": np.full(len(ds), level)}
    ).to_csv(root / "demand.csv", index=False)


def run(root: Path, now: dt.datetime) -> list:  # type: ignore[type-arg]
    settings = load_settings(root / "forescale.yaml")
    store = Store.open(settings.store_url)
    try:
        collect_all(settings, store, since=NOW - dt.timedelta(days=4))
        return apply_due(App(settings=settings, store=store, candidates=FAST), now=now)
    finally:
        store.close()


def test_min_desired_and_max_move_together_and_max_returns_to_the_teams(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, 1500.0)  # 1,500 req/s x 1.1 band -> 17 units: above max 10
    [raised] = run(root, NOW)
    assert raised.status == "applied", raised.message
    tfvars = (root / "tf" / "terraform.tfvars").read_text()
    assert tfvars == TFVARS.replace("min_size = 4", "min_size = 17").replace(
        "desired  = 4", "desired  = 17"
    ).replace("max_size = 10", "max_size = 17")  # only the three values' characters
    assert state_values(root / "tf")["terraform_data.web_asg"]["input"] == {
        "min_size": 17,
        "desired": 17,
        "max_size": 17,
    }
    [record] = records(root)
    assert json.loads(record.literal_before or "") == {"desired": "4", "max": "10", "min": "4"}
    assert json.loads(record.literal_after or "") == {"desired": "17", "max": "17", "min": "17"}

    demand(root, 500.0)  # the peak is over: 6 units; the ceiling goes back to the team's 10
    [lowered] = run(root, NOW + dt.timedelta(hours=1))
    assert lowered.status == "applied", lowered.message
    assert state_values(root / "tf")["terraform_data.web_asg"]["input"] == {
        "min_size": 6,
        "desired": 6,
        "max_size": 10,
    }


def test_managing_max_needs_the_teams_usual_maximum(tmp_path: Path) -> None:
    config = tmp_path / "forescale.yaml"
    config.write_text(SETTINGS.replace("      max_base: 10\n", ""))
    with pytest.raises(ConfigError, match="addresses.max needs max_base"):
        load_settings(config)
