"""A service's ``unit_tolerance`` from its settings file reaches the planner and the
record (usecases.context.capacity_policy), and the daemon's plan says when it rounded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from forescale.config.settings import load_settings
from forescale.forecaster.accuracy import Serving
from forescale.forecaster.types import CapacityPolicy
from forescale.usecases.context import capacity_policy
from forescale.usecases.plan import schedule
from tests.fakes import known_forecast

FIVE = dt.timedelta(minutes=5)
NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def service_policy(tmp_path: Path, **extra: object) -> CapacityPolicy:
    web = {
        "source": {"type": "csv", "path": "demand.csv"},
        "capacity_per_unit": 100,
        "min_units": 1,
        "max_units": 40,
        "observed_headroom": 0,
        "scale_in": {"policy": "after_peak", "stabilization": "15m", "tolerance": 0},
        "iac": {"working_dir": "tf", "var_file": "prod.tfvars", "address": "web_min"},
        **extra,
    }
    path = tmp_path / "forescale.yaml"
    path.write_text(yaml.safe_dump({"services": {"web": web}}), encoding="utf-8")
    return capacity_policy(load_settings(path).services["web"])


def planned_units(policy: CapacityPolicy, level: float) -> tuple[int, str]:
    ds = pd.date_range(NOON - dt.timedelta(hours=1), NOON, freq=FIVE)
    history = pd.DataFrame({"ds": ds, "y": np.full(len(ds), 100.0)})
    made = schedule(
        known_forecast(NOON, [level] * 72, FIVE),
        history,
        policy,
        current_units=1,
        now=NOON,
        stale_after=dt.timedelta(minutes=15),
        timezone="UTC",
    )
    return int(made.plan.desired["units"].max()), " ".join(s.reason for s in made.plan.steps)


def test_the_default_tolerance_plans_20_01_units_of_demand_at_20(tmp_path: Path) -> None:
    policy = service_policy(tmp_path)
    assert policy.unit_tolerance == 0.02
    assert Serving.of(policy).tolerance == 0.02
    units, reasons = planned_units(policy, 2001.0)
    assert units == 20
    assert "needs 20 units at 100.0 per unit (within the unit tolerance, 0.02 of a unit)" in reasons
    assert planned_units(policy, 2003.0)[0] == 21


def test_a_configured_tolerance_of_zero_always_rounds_up(tmp_path: Path) -> None:
    policy = service_policy(tmp_path, unit_tolerance=0)
    units, reasons = planned_units(policy, 2001.0)
    assert units == 21
    assert "unit tolerance" not in reasons
