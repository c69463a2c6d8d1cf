"""What a plan costs: the report's cost recomputes exactly from its own schedule, the
Infracost usage file carries the same average, and a failed price lookup never stops a
plan."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from forescale.cli import main
from forescale.config.settings import PricingLookup, load_settings
from forescale.errors import PricingError
from forescale.report.plan_json import plan_json
from forescale.report.plan_text import render_plan_text
from forescale.report.plan_view import build_plan_view
from forescale.store import Store
from forescale.usecases.collect import collect_all
from forescale.usecases.context import App
from forescale.usecases.plan import plan_all
from tests.fakes import FAST

NOW = dt.datetime(2024, 6, 5, 12, 0, tzinfo=dt.UTC)


def project(tmp: Path, price: str) -> Path:
    root = tmp / "project"
    (root / "tf").mkdir(parents=True)
    (root / "tf" / "terraform.tfvars").write_text("web_min_size = 3\n")
    (root / "forescale.yaml").write_text(
        f"""
store_url: sqlite:///state/forescale.db
services:
  web:
    source: {{type: csv, path: demand.csv}}
    capacity_per_unit: 100
    min_units: 2
    max_units: 40
    scale_in: {{policy: after_peak, stabilization: 15m, tolerance: 0}}
    forecast: {{horizon: 24h}}
    {price}
    infracost_resource: aws_autoscaling_group.web
    iac: {{working_dir: tf, address: web_min_size}}
"""
    )
    ds = pd.date_range(NOW - dt.timedelta(days=7), NOW, freq="5min", tz="UTC")
    hours = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    demand = 600 + 500 * np.sin((hours - 6) / 24 * 2 * np.pi).clip(0)  # a daytime peak
    pd.DataFrame({"timestamp": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": demand}).to_csv(
        root / "demand.csv", index=False
    )
    return root


def report_of(root: Path, **app: Any) -> Any:
    settings = load_settings(root / "forescale.yaml")
    store = Store.open(settings.store_url)
    try:
        collect_all(settings, store, since=NOW - dt.timedelta(days=8))
        return plan_all(App(settings=settings, store=store, candidates=FAST, **app), now=NOW)
    finally:
        store.close()


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_cost_recomputes_exactly_from_the_reported_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, "unit_price: {per_hour: 0.25, currency: EUR}")
    monkeypatch.chdir(root)
    report = report_of(root)
    [service] = plan_json(build_plan_view(report))["services"]
    cost = service["cost"]
    assert service["schedule"], "the daytime peak needs changes"
    # integrate the schedule as a reader of the JSON would
    start, end = at(cost["start"]), at(cost["end"])
    assert start == NOW
    units, cursor, unit_hours = service["capacity"]["current_units"], start, 0.0
    for step in service["schedule"]:
        when = min(max(at(step["at"]), start), end)
        unit_hours += units * (when - cursor).total_seconds() / 3600
        cursor, units = when, step["units"]
    unit_hours += units * (end - cursor).total_seconds() / 3600
    hours = (end - start).total_seconds() / 3600
    peak = max([service["capacity"]["current_units"]] + [s["units"] for s in service["schedule"]])
    assert cost["unit_hours"]["schedule"] == pytest.approx(unit_hours, abs=1e-6)
    assert cost["horizon"]["schedule"] == pytest.approx(unit_hours * 0.25, abs=1e-6)
    assert cost["monthly"]["schedule"] == pytest.approx(unit_hours * 0.25 * 730 / hours, abs=1e-6)
    assert cost["horizon"]["current_flat"] == pytest.approx(3 * hours * 0.25, abs=1e-6)
    assert cost["peak_units"] == peak
    assert cost["horizon"]["static_peak"] == pytest.approx(peak * hours * 0.25, abs=1e-6)
    assert (cost["currency"], cost["per_unit_hour"]) == ("EUR", 0.25)
    assert cost["horizon"]["schedule"] < cost["horizon"]["static_peak"]
    text = render_plan_text(build_plan_view(report))
    assert "cost     schedule " in text and "EUR" in text and "static peak" in text


def test_no_price_no_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, "")
    monkeypatch.chdir(root)
    [service] = plan_json(build_plan_view(report_of(root)))["services"]
    assert service["cost"] is None
    assert "cost" not in render_plan_text(build_plan_view(report_of(root))).split("capacity")[1][:9]


def test_a_failed_lookup_is_a_note_and_the_plan_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, "pricing: {aws_instance_type: m6i.xlarge, region: eu-west-1}")
    monkeypatch.chdir(root)

    def refusing(lookup: PricingLookup) -> Any:
        raise PricingError("the AWS Pricing API (us-east-1) refused GetProducts (Throttling)")

    report = report_of(root, pricing_client=refusing)
    [service] = report.services
    assert service.cost is None
    assert any(n.startswith("cost unknown: the AWS Pricing API") for n in service.notes)
    assert service.plan.steps  # planned all the same


def test_the_infracost_usage_file_holds_the_schedules_average(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, "unit_price: {per_hour: 0.25}")
    monkeypatch.chdir(root)
    usage = root / "infracost-usage.yml"
    now = NOW.isoformat()
    args = ["plan", "--config", str(root / "forescale.yaml"), "--now", now]
    assert main([*args, "-f", "json", "--infracost-usage", str(usage)]) in (0, 2)
    cost = json.loads(capsys.readouterr().out)["services"][0]["cost"]
    text = usage.read_text()
    data = yaml.safe_load(text)
    assert data["version"] == 0.1  # as Infracost writes it
    instances = data["resource_usage"]["aws_autoscaling_group.web"]["instances"]
    assert instances == int(cost["average_units"] + 0.5)
    assert f"{cost['average_units']:.4f} on average" in text
