from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from forescale.config.settings import Settings, load_settings
from forescale.metrics import Metrics
from forescale.store import Store
from tests.fakes import forecast_run

NOW = dt.datetime(2024, 3, 1, 12, 7, tzinfo=dt.UTC)

SETTINGS_YAML = """\
store_url: sqlite:///store/forescale.db
services:
  web:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 10
    min_units: 1
    max_units: 20
    iac: {working_dir: tf, address: web_min_size}
  api:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 10
    min_units: 1
    max_units: 5
    iac: {working_dir: missing, address: api_min_size}
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "terraform.tfvars").write_text("web_min_size = 4 # managed\n")
    (tmp_path / "demand.csv").write_text("timestamp,value\n2024-03-01T00:00:00Z,1\n")
    (tmp_path / "forescale.yaml").write_text(SETTINGS_YAML)
    return load_settings(tmp_path / "forescale.yaml")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_fresh_registry_and_names_exposed(registry: CollectorRegistry) -> None:
    Metrics(registry)
    Metrics(CollectorRegistry())  # a second instance on its own registry does not clash
    text = generate_latest(registry).decode()
    for name in (
        "forescale_forecast_demand",
        "forescale_desired_units",
        "forescale_current_units",
        "forescale_forecast_error_ratio",
        "forescale_forecast_lift",
        "forescale_job_last_success_timestamp_seconds",
        "forescale_job_duration_seconds",
        "forescale_apply_total",
        "forescale_collector_errors_total",
        "forescale_data_age_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert REGISTRY.get_sample_value("forescale_desired_units", {"service": "web"}) is None


def test_setters(registry: CollectorRegistry) -> None:
    m = Metrics(registry)
    m.set_service("web", desired_units=7, current_units=4, forecast_error_ratio=0.12)
    m.set_service("web", forecast_error_ratio=math.nan)  # ignored, keeps 0.12
    m.set_service("web", lift=1.2)
    m.set_service("web", lift=math.nan)  # ignored, keeps 1.2
    assert value(registry, "forescale_forecast_lift", service="web") == 1.2
    assert value(registry, "forescale_desired_units", service="web") == 7
    assert value(registry, "forescale_current_units", service="web") == 4
    assert value(registry, "forescale_forecast_error_ratio", service="web") == 0.12
    m.set_forecast_demand("web", yhat=50, lower=40, upper=60)
    assert value(registry, "forescale_forecast_demand", service="web", bound="upper") == 60
    m.count_apply("web", "applied")
    m.count_apply("web", "applied")
    m.count_apply("web", "refused")
    assert value(registry, "forescale_apply_total", service="web", result="applied") == 2
    m.count_collector_error("prometheus")
    assert value(registry, "forescale_collector_errors_total", source="prometheus") == 1
    text = generate_latest(registry).decode()
    assert 'forescale_apply_total{result="refused",service="web"} 1.0' in text


def test_observe_job(registry: CollectorRegistry) -> None:
    m = Metrics(registry)
    m.observe_job("plan", 3.0, ok=True, finished_at=NOW)
    m.observe_job("plan", 0.2, ok=False, finished_at=NOW + dt.timedelta(hours=1))
    assert value(registry, "forescale_job_duration_seconds_count", job="plan") == 2
    assert value(registry, "forescale_job_duration_seconds_sum", job="plan") == pytest.approx(3.2)
    assert value(registry, "forescale_job_duration_seconds_bucket", job="plan", le="0.5") == 1
    # the failed run does not move the last-success time
    assert value(registry, "forescale_job_last_success_timestamp_seconds", job="plan") == (
        NOW.timestamp()
    )


def test_refresh_from_store(settings: Settings, registry: CollectorRegistry) -> None:
    store = Store.open(settings.store_url)
    try:
        ds = pd.date_range(NOW - dt.timedelta(hours=1), periods=11, freq="5min")  # 11:07 .. 11:57
        store.upsert_samples("web", pd.DataFrame({"ds": ds, "y": [30.0] * len(ds)}))
        future = pd.date_range("2024-03-01T11:45Z", periods=4, freq="15min")
        store.save_forecast_run(
            forecast_run(
                "web",
                pd.DataFrame(
                    {
                        "ds": future,
                        "yhat": [10.0, 20.0, 30.0, 40.0],
                        "yhat_lower": [5.0, 15.0, 25.0, 35.0],
                        "yhat_upper": [15.0, 25.0, 35.0, 45.0],
                    }
                ),
                at=NOW,
                resolution=dt.timedelta(minutes=15),
            )
        )
        m = Metrics(registry)
        m.refresh_from_store(settings, store, NOW)
        assert value(registry, "forescale_data_age_seconds", service="web") == 10 * 60
        assert value(registry, "forescale_current_units", service="web") == 4
        # 12:07 lies in the 12:00 step
        assert value(registry, "forescale_forecast_demand", service="web", bound="yhat") == 20
        assert value(registry, "forescale_forecast_demand", service="web", bound="lower") == 15
        assert value(registry, "forescale_forecast_demand", service="web", bound="upper") == 25
        # "api" has no samples, no readable IaC file and no forecast: skipped, no error
        assert value(registry, "forescale_data_age_seconds", service="api") is None
        assert value(registry, "forescale_current_units", service="api") is None
        # past the forecast's end: the demand gauge keeps its last value
        m.refresh_from_store(settings, store, NOW + dt.timedelta(days=1))
        assert value(registry, "forescale_forecast_demand", service="web", bound="yhat") == 20
    finally:
        store.close()


def test_refresh_from_store_survives_an_unreachable_store(
    settings: Settings, registry: CollectorRegistry, tmp_path: Path
) -> None:
    import sqlalchemy as sa

    broken = Store(sa.create_engine(f"sqlite:///{tmp_path}/nowhere/x.db"))
    try:
        Metrics(registry).refresh_from_store(settings, broken, NOW)
    finally:
        broken.close()
    assert value(registry, "forescale_current_units", service="web") == 4  # from the IaC
    assert value(registry, "forescale_data_age_seconds", service="web") is None


def test_current_units_are_parsed_again_only_when_the_file_changes(
    settings: Settings, registry: CollectorRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forescale.iac_writer.target import TfvarsTarget

    calls: list[str] = []
    real = TfvarsTarget.read

    def counting(self: TfvarsTarget) -> Any:
        calls.append(self.address)
        return real(self)

    monkeypatch.setattr(TfvarsTarget, "read", counting)
    store = Store.open(settings.store_url)
    try:
        m = Metrics(registry)
        m.refresh_from_store(settings, store, NOW)
        m.refresh_from_store(settings, store, NOW)
        assert value(registry, "forescale_current_units", service="web") == 4
        # "api" has no file: its failed read is tried again each time, never cached
        assert calls.count("web_min_size") == 1 and calls.count("api_min_size") == 2
        (tmp_path / "tf" / "terraform.tfvars").write_text("web_min_size = 12 # managed\n")
        m.refresh_from_store(settings, store, NOW)
        assert value(registry, "forescale_current_units", service="web") == 12
        assert calls.count("web_min_size") == 2
    finally:
        store.close()


def test_the_exposition_passes_promtool_once_a_forecast_is_set() -> None:
    """forescale_forecast_demand had a ``quantile`` label, which Prometheus reserves for
    summaries: ``promtool check metrics`` failed as soon as a forecast was current."""
    import shutil
    import subprocess

    from prometheus_client import generate_latest

    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is installed by scripts/test-setup.sh"
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.set_forecast_demand("web", yhat=20, lower=15, upper=25)
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
