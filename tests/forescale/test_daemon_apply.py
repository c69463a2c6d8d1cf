"""The daemon's apply job isolates services: one broken service is logged and counted,
the others are applied (real terraform)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from forescale.config.settings import load_settings
from forescale.daemon import Daemon, DaemonConfig
from forescale.metrics import Metrics
from tests.fakes import FAST
from tests.forescale.tf_project import (
    NOW,
    isolated_terraform,  # noqa: F401 - an autouse fixture
    make_project,
    state_values,
)

pytestmark = pytest.mark.external_service

BROKEN = """
  broken:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 100
    min_units: 2
    max_units: 20
    iac: {working_dir: tf-broken, var_file: terraform.tfvars, address: web_min_size}"""


def test_one_broken_service_is_logged_and_counted_and_the_others_applied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_project(tmp_path, more_services=BROKEN)
    (root / "tf-broken").mkdir()
    (root / "tf-broken" / "terraform.tfvars").write_text("web_min_size = 4\nweb_min_size = 5\n")
    settings = load_settings(root / "forescale.yaml")
    metrics = Metrics(CollectorRegistry())
    daemon = Daemon(
        settings,
        DaemonConfig(lock_path=tmp_path / "leader.lock"),
        clock=lambda: NOW,
        candidates=FAST,
        metrics=metrics,
    )
    daemon.open_store()
    try:
        assert daemon.collect(auto_refit=False)
        with caplog.at_level(logging.INFO, logger="forescale"):
            assert daemon.apply() is False  # the job reports that not everything was applied
    finally:
        daemon.close()
    assert state_values(root / "tf")["terraform_data.web_asg"]["input"]["min_size"] == 11
    broken = [r for r in caplog.records if getattr(r, "service", None) == "broken"]
    assert broken and broken[0].levelno == logging.ERROR and "error" in broken[0].getMessage()
    registry = metrics.registry
    assert (
        registry.get_sample_value("forescale_apply_total", {"service": "broken", "result": "error"})
        == 1
    )
    assert (
        registry.get_sample_value("forescale_apply_total", {"service": "web", "result": "applied"})
        == 1
    )
    # the gauges of the plan the run acted on; none for the service that could not plan
    assert registry.get_sample_value("forescale_desired_units", {"service": "web"}) == 11
    lift = registry.get_sample_value("forescale_forecast_lift", {"service": "web"})
    assert lift is not None and 1.0 <= lift <= 1.5
    assert registry.get_sample_value("forescale_desired_units", {"service": "broken"}) is None
