"""Shadow mode on a simulated clock over recorded demand: nothing is written, every
would-be change is recorded, the service is promoted exactly when its record qualifies and
demoted when the live record stops qualifying; each change is audited, logged and exported."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from forescale.config.settings import load_settings
from forescale.metrics import Metrics
from forescale.records import ChangeStatus
from forescale.store import Store
from forescale.usecases.apply import apply_due
from forescale.usecases.collect import collect_all
from forescale.usecases.context import App
from forescale.usecases.plan import plan_all
from forescale.usecases.shadow import review_modes, shadow_status
from tests.fakes import FAST

T0 = dt.datetime(2024, 6, 10, 0, 0, tzinfo=dt.UTC)  # the first review
HOUR = dt.timedelta(hours=1)
TFVARS = b"web_min_size = 4 # raised before peaks\n"


def settings_text(after: str = "12h") -> str:
    return f"""
store_url: sqlite:///state/forescale.db
mode: shadow
promote: {{to: commit, after: {after}, max_under: 0.02, max_cost_ratio: 1.5}}
services:
  web:
    source: {{type: csv, path: demand.csv}}
    capacity_per_unit: 100
    min_units: 2
    max_units: 60
    scale_in: {{policy: after_peak, stabilization: 15m, tolerance: 0}}
    iac: {{working_dir: tf, address: web_min_size}}
"""


def project(tmp: Path, *, surge_from: dt.datetime | None) -> Path:
    """A daily cycle for 6 days before T0 and 2 days after; from ``surge_from`` on, the
    demand is three times what its history says (a surge no forecast can know)."""
    root = tmp / "project"
    (root / "tf").mkdir(parents=True)
    (root / "tf" / "terraform.tfvars").write_bytes(TFVARS)
    (root / "forescale.yaml").write_text(settings_text())
    ds = pd.date_range(T0 - dt.timedelta(days=6), T0 + dt.timedelta(days=2), freq="5min")
    hours = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    y = 800 + 400 * np.sin((hours - 8) / 24 * 2 * np.pi)
    if surge_from is not None:
        y = np.where(ds >= pd.Timestamp(surge_from), 3 * y, y)
    pd.DataFrame({"timestamp": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": y}).to_csv(
        root / "demand.csv", index=False
    )
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True, timeout=30)
    (root / ".gitignore").write_text("state/\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, timeout=30)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "infra"],
        cwd=root,
        check=True,
        timeout=30,
    )
    return root


@contextlib.contextmanager
def collected(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    """The project's app (fast candidates) with its demand collected; the store is closed
    after."""
    monkeypatch.chdir(root)
    settings = load_settings(root / "forescale.yaml")
    store = Store.open(settings.store_url)
    try:
        collect_all(settings, store, since=T0 - dt.timedelta(days=7))
        yield App(settings=settings, store=store, candidates=FAST)
    finally:
        store.close()


def tick(app: App, now: dt.datetime) -> list[str]:
    """One hour of the daemon: apply the step due (reusing a 6 h forecast), then review."""
    apply_due(app, now=now, trigger="daemon", reuse_forecast_for=6 * HOUR)
    return [f"{c.from_mode}->{c.to_mode}" for c in review_modes(app, now=now)]


def test_promoted_exactly_when_the_record_qualifies_and_demoted_when_it_breaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    surge = T0 + dt.timedelta(hours=20)
    root = project(tmp_path, surge_from=surge)
    caplog.set_level(logging.INFO, logger="forescale.shadow")
    with collected(root, monkeypatch) as app:
        store = app.store
        changes: dict[dt.datetime, list[str]] = {}
        verdicts: dict[dt.datetime, bool] = {}
        for hour in range(0, 30):
            now = T0 + hour * HOUR
            before = shadow_status(app, "web", now=now)
            if before is not None and before.verdict is not None and before.mode == "shadow":
                verdicts[now] = before.verdict.qualifies
            made = tick(app, now)
            if made:
                changes[now] = made
            if now == T0 + 11 * HOUR:
                status = shadow_status(app, "web", now=now)
                assert status is not None and status.verdict is not None
                assert "covers 11.0 h of the 12 h needed" in status.verdict.reason
        records = store.list_changes("web", limit=1000)
        audit = list(reversed(store.list_mode_changes("web")))
        registry = CollectorRegistry()
        metrics = Metrics(registry)
        metrics.refresh_from_store(app.settings, store, T0 + 30 * HOUR)

    # entering shadow at T0, promoted at the first review whose record qualifies: the
    # 12 h of record are complete at T0 + 12 h, and the calm days qualify
    assert changes[T0] == ["None->shadow"]
    promoted_at = T0 + 12 * HOUR
    assert changes[promoted_at] == ["shadow->commit"]
    assert [t for t, ok in sorted(verdicts.items()) if ok][0] == promoted_at
    assert not any(ok for t, ok in verdicts.items() if t < promoted_at)
    # demoted once the surge's shortfalls break max_under in the trailing 12 h
    [demoted_at] = [t for t, made in changes.items() if made == ["commit->shadow"]]
    assert surge < demoted_at <= surge + 6 * HOUR
    assert [(c.from_mode, c.to_mode) for c in audit] == [
        (None, "shadow"),
        ("shadow", "commit"),
        ("commit", "shadow"),
    ]
    assert audit[1].reason.startswith("promoted: under-provisioned")
    assert audit[2].reason.startswith("demoted: under-provisioned")
    assert "max_under" in audit[2].reason
    logged = [r.getMessage() for r in caplog.records]
    assert any("web: shadow → commit: promoted" in m for m in logged)
    assert any("web: commit → shadow: demoted" in m for m in logged)

    # shadow mode never wrote the variable file; its would-be changes are on record
    assert (root / "tf" / "terraform.tfvars").read_bytes() == TFVARS
    shadowed = [r for r in records if r.status == ChangeStatus.SHADOWED]
    assert shadowed and all(r.mode == "shadow" for r in shadowed)
    assert all("nothing written" in r.message for r in shadowed)
    # while promoted to commit mode, it proposed on a branch instead
    committed = [r for r in records if r.status == ChangeStatus.COMMITTED]
    # (the apply of the demoting review's hour still ran in commit mode: <=)
    assert all(promoted_at <= (r.created_at or T0) <= demoted_at for r in committed)
    value = registry.get_sample_value
    assert value("forescale_service_mode", {"service": "web", "mode": "shadow"}) == 1
    assert value("forescale_service_mode", {"service": "web", "mode": "commit"}) == 0


def test_the_plan_of_a_shadow_service_says_so_and_starts_from_its_own_capacity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with collected(project(tmp_path, surge_from=None), monkeypatch) as app:
        for hour in range(0, 4):
            tick(app, T0 + hour * HOUR)
        changes = app.store.list_changes("web")
        shadowed = [r for r in changes if r.status == ChangeStatus.SHADOWED]
        report = plan_all(app, now=T0 + 4 * HOUR, record=False)
    assert shadowed, "the daily cycle moves capacity within four hours"
    [service] = report.services
    assert service.plan.current_units == shadowed[0].to_units  # the newest would-be change
    [note] = [n for n in service.notes if n.startswith("shadow mode:")]
    assert f"({shadowed[0].to_units} units; the IaC holds 4)" in note


def test_the_api_lists_the_mode_a_shadow_service_acts_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    with warnings.catch_warnings():
        # starlette asks for the `httpx2` fork; plain httpx is what is installed and works
        warnings.filterwarnings("ignore", message=r".*install `httpx2` instead", category=Warning)
        from fastapi.testclient import TestClient

    from forescale.api import ApiConfig, create_app
    from forescale.records import ModeChange

    root = project(tmp_path, surge_from=None)
    monkeypatch.chdir(root)
    settings = load_settings(root / "forescale.yaml")
    store = Store.open(settings.store_url)
    try:
        app = create_app(
            settings=settings,
            store=store,
            config=ApiConfig(token="t"),
            registry=CollectorRegistry(),
            clock=lambda: T0,
        )
        with TestClient(app, base_url="http://localhost") as client:
            auth = {"Authorization": "Bearer t"}
            [web] = client.get("/v1/services", headers=auth).json()["services"]
            assert (web["mode"], web["configured_mode"], web["mode_since"]) == (
                "shadow",
                "shadow",
                None,
            )
            store.record_mode_change(
                ModeChange(
                    service="web",
                    at=T0,
                    from_mode="shadow",
                    to_mode="commit",
                    reason="promoted: ok",
                )
            )
            [web] = client.get("/v1/services", headers=auth).json()["services"]
            assert (web["mode"], web["configured_mode"]) == ("commit", "shadow")
            assert web["mode_since"] == "2024-06-10T00:00:00Z"
            assert web["mode_reason"] == "promoted: ok"
    finally:
        store.close()


def test_a_configured_capacity_source_is_collected_and_is_the_comparison(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forescale.config.settings import capacity_series

    root = project(tmp_path, surge_from=None)
    monkeypatch.chdir(root)
    # the group ran a flat 20 instances (GroupInServiceInstances, as a CSV here)
    ds = pd.date_range(T0 - dt.timedelta(days=6), T0 + dt.timedelta(days=2), freq="5min")
    pd.DataFrame({"timestamp": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": 20}).to_csv(
        root / "in_service.csv", index=False
    )
    text = (
        (root / "forescale.yaml")
        .read_text()
        .replace(
            "    iac: {working_dir: tf",
            "    capacity_source: {type: csv, path: in_service.csv}\n    iac: {working_dir: tf",
        )
    )
    (root / "forescale.yaml").write_text(text)
    with collected(root, monkeypatch) as app:
        assert len(app.store.load_samples(capacity_series("web"))) == len(ds)
        for hour in range(0, 7):
            tick(app, T0 + hour * HOUR)
        status = shadow_status(app, "web", now=T0 + 6 * HOUR)
    assert status is not None and status.record is not None
    record = status.record
    assert record.comparison == "the capacity actually in force (capacity_source)"
    assert record.comparison_unit_hours == pytest.approx(20 * 6)
    assert record.cost_ratio is not None and record.cost_ratio < 1  # 20 flat is generous


def test_a_capacity_source_needs_room_for_its_stored_name(tmp_path: Path) -> None:
    from forescale.errors import ConfigError

    (tmp_path / "tf").mkdir()
    (tmp_path / "demand.csv").write_text("timestamp,value\n")
    source = (
        "capacity_source: {type: cloudwatch, region: eu-west-1, namespace: AWS/AutoScaling, "
        "metric_name: GroupInServiceInstances, dimensions: {AutoScalingGroupName: web-prod}, "
        "statistic: Average, period: 5m}"
    )
    text = settings_text().replace(
        "    iac: {working_dir: tf", f"    {source}\n    iac: {{working_dir: tf"
    )
    (tmp_path / "ok.yaml").write_text(text)
    assert load_settings(tmp_path / "ok.yaml").services["web"].capacity_source is not None
    (tmp_path / "long.yaml").write_text(text.replace("  web:", "  " + "w" * 55 + ":"))
    with pytest.raises(ConfigError, match="at most 54 characters with a capacity_source"):
        load_settings(tmp_path / "long.yaml")


def test_would_be_changes_before_the_first_review_are_shadow_modes_capacity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with collected(project(tmp_path, surge_from=None), monkeypatch) as app:
        apply_due(app, now=T0, trigger="daemon")  # before any review
        changes = app.store.list_changes("web")
        [first] = [r for r in changes if r.status == ChangeStatus.SHADOWED]
        assert review_modes(app, now=T0 + HOUR)  # the service enters shadow mode now
        report = plan_all(app, now=T0 + HOUR, record=False)
    assert report.services[0].plan.current_units == first.to_units
