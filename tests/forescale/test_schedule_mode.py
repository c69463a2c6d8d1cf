"""iac.write: schedule with a real terraform: the plan of the horizon as scheduled actions,
written once per refit; a second refit touches only the entries that changed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import hcl2
import numpy as np
import pandas as pd
import pytest

from forescale.config.settings import load_settings
from forescale.store import Store
from forescale.usecases.apply import apply_due
from forescale.usecases.collect import collect_all
from forescale.usecases.context import App
from tests.conftest import ROOT
from tests.fakes import FAST
from tests.forescale.tf_project import (
    isolated_terraform,  # noqa: F401 - an autouse fixture
    records,
    state_values,
    terraform,
)

pytestmark = pytest.mark.external_service

NOW = dt.datetime(2024, 6, 3, 12, 0, tzinfo=dt.UTC)
MAIN_TF = """
variable "web_min_size" { type = number }
variable "forescale_schedule" {
  type    = map(object({ min_size = number }))
  default = {}
}

# stands in for aws_autoscaling_schedule (no AWS provider here): one per entry
resource "terraform_data" "forescale" {
  for_each = var.forescale_schedule
  input    = { start_time = each.key, min_size = each.value.min_size }
}

resource "terraform_data" "web_asg" {
  input = { min_size = var.web_min_size }
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
    max_units: 60
    observed_headroom: 0
    scale_in: {policy: after_peak, stabilization: 15m, tolerance: 0}
    iac:
      working_dir: tf
      var_file: terraform.tfvars
      address: web_min_size
      write: schedule
      schedule: {resources: ["terraform_data.forescale*"]}
      terraform: {lock_timeout: 5s, plan_timeout: 60s, apply_timeout: 60s}
"""


def demand(root: Path, peak: float) -> None:
    """Three days at 1,000 req/s with a daily peak at 14:00-16:00 (``peak`` req/s)."""
    ds = pd.date_range(NOW - dt.timedelta(days=3), NOW, freq="5min")
    hours = ds.hour
    y = np.where((hours >= 14) & (hours < 16), peak, 1000.0)
    pd.DataFrame({"timestamp": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": y}).to_csv(
        root / "demand.csv", index=False
    )


def project(tmp: Path) -> Path:
    root = tmp / "project"
    (root / "tf").mkdir(parents=True)
    (root / "tf" / "main.tf").write_text(MAIN_TF)
    (root / "tf" / "terraform.tfvars").write_text("web_min_size = 10\n")
    (root / "forescale.yaml").write_text(SETTINGS)
    demand(root, 3000.0)
    terraform(root / "tf", "init", "-input=false")
    terraform(root / "tf", "apply", "-input=false", "-auto-approve")
    return root


def run(root: Path, now: dt.datetime) -> list:  # type: ignore[type-arg]
    settings = load_settings(root / "forescale.yaml")
    store = Store.open(settings.store_url)
    try:
        collect_all(settings, store, since=NOW - dt.timedelta(days=4))  # re-read it all
        return apply_due(App(settings=settings, store=store, candidates=FAST), now=now)
    finally:
        store.close()


def scheduled(root: Path) -> dict[str, dict[str, object]]:
    return {
        address: values
        for address, values in state_values(root / "tf").items()
        if address.startswith("terraform_data.forescale[")
    }


def test_two_refits_write_the_schedule_and_touch_only_changed_entries(tmp_path: Path) -> None:
    root = project(tmp_path)
    [first] = run(root, NOW)
    assert first.status == "applied", first.message
    file = root / "tf" / "forescale.schedule.auto.tfvars.json"
    table = json.loads(file.read_text())["forescale_schedule"]
    # the raise 15 min before the 14:00 peak and the lower after it, as scheduled actions
    assert table["2024-06-03T13:45Z"] == {"min_size": 33}
    assert table["2024-06-03T16:15Z"] == {"min_size": 11}  # 1,000 req/s x 1.1 band
    before = scheduled(root)
    assert sorted(before) == sorted(f'terraform_data.forescale["{k}"]' for k in table)
    assert (root / "tf" / "terraform.tfvars").read_text() == "web_min_size = 10\n"  # the team's
    [record] = records(root)
    assert record.direction == "schedule" and record.status == "applied"
    assert record.plan_summary.startswith(f"0 to update, {len(table)} to create")

    # Nothing changed: nothing to apply (one apply per refit, not per step).
    [same] = run(root, NOW + dt.timedelta(minutes=5))
    assert same.status == "nothing-due" and "schedule up to date" in same.message

    # The peak grows: the refit changes the raise's entry and nothing else.
    demand(root, 4000.0)
    [second] = run(root, NOW + dt.timedelta(minutes=10))
    assert second.status == "applied", second.message
    after_table = json.loads(file.read_text())["forescale_schedule"]
    changed = {k for k in after_table if after_table[k] != table.get(k)}
    assert changed == {"2024-06-03T13:45Z", "2024-06-04T13:45Z"}  # today's and tomorrow's raise
    assert after_table["2024-06-03T13:45Z"] == {"min_size": 44}
    after = scheduled(root)
    for key in set(table) & set(after_table) - changed:
        address = f'terraform_data.forescale["{key}"]'
        assert after[address]["id"] == before[address]["id"]  # untouched: not recreated
    newest = records(root)[0].plan_summary
    assert newest.startswith("2 to update"), newest  # the two raises, nothing else
    assert "to create" in newest and "0 to create" in newest


def test_an_entry_edited_by_hand_is_never_written_over(tmp_path: Path) -> None:
    """Someone raised an entry ahead by hand; the next refit rewrote the file from its
    plan and the raise was gone, with no word in the audit."""
    root = project(tmp_path)
    [first] = run(root, NOW)
    assert first.status == "applied", first.message
    file = root / "tf" / "forescale.schedule.auto.tfvars.json"
    content = json.loads(file.read_text())
    content["forescale_schedule"]["2024-06-03T16:15Z"] = {"min_size": 30}
    file.write_text(json.dumps(content, indent=2) + "\n")
    edited = file.read_bytes()
    demand(root, 4000.0)  # a refit that would rewrite entries
    [second] = run(root, NOW + dt.timedelta(minutes=10))
    assert second.status == "conflict", second.message
    assert "changed outside forescale" in second.message and "restore the file" in second.message
    assert file.read_bytes() == edited
    # deleted: forescale writes the plan afresh
    file.unlink()
    [third] = run(root, NOW + dt.timedelta(minutes=15))
    assert third.status == "applied", third.message


def test_the_guard_still_refuses_anything_outside_the_schedule(tmp_path: Path) -> None:
    root = project(tmp_path)
    main = root / "tf" / "main.tf"
    main.write_text(main.read_text() + '\nresource "terraform_data" "extra" {}\n')
    [outcome] = run(root, NOW)
    assert outcome.status == "refused"
    assert any("terraform_data.extra would be created" in r for r in outcome.reasons)
    assert not (root / "tf" / "forescale.schedule.auto.tfvars.json").exists()  # undone


def test_the_example_modules_consume_the_schedule_with_for_each() -> None:
    """No AWS provider offline: check the shipped modules' structure with python-hcl2."""
    examples = ROOT / "config" / "examples" / "schedule"
    asg = hcl2.loads((examples / "asg.tf").read_text())
    [resource] = asg["resource"]
    action = resource['"aws_autoscaling_schedule"']['"forescale"']  # this hcl2 keeps quotes
    assert action["for_each"] == "${var.forescale_schedule}"
    assert "each.value.min_size" in action["min_size"]
    ecs = hcl2.loads((examples / "ecs.tf").read_text())
    scheduled_action = ecs["resource"][0]['"aws_appautoscaling_scheduled_action"']['"forescale"']
    assert scheduled_action["for_each"] == "${var.forescale_schedule}"
    assert scheduled_action["schedule"].startswith('"at(')
    settings = load_settings(examples / "forescale.yaml")
    assert settings.service("web").iac.write == "schedule"


def test_the_report_says_what_the_cloud_does_if_forescale_stops(tmp_path: Path) -> None:
    from forescale.usecases.plan import plan_service

    root = project(tmp_path)
    [first] = run(root, NOW)
    assert first.status == "applied", first.message
    settings = load_settings(root / "forescale.yaml")
    store = Store.open(settings.store_url)
    try:
        app = App(settings=settings, store=store, candidates=FAST)
        report = plan_service(app, "web", now=NOW + dt.timedelta(minutes=6))
    finally:
        store.close()
    [note] = report.notes
    assert note.startswith("schedule mode: 4 scheduled change(s) written")
    assert "the last starting 2024-06-04T16:15Z" in note and "keep carrying them out" in note
    assert report.change is None  # the written schedule is up to date
    assert report.plan.current_units == 11  # the 12:05 entry is in force
