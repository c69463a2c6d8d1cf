"""Static checks of the deployment files in ``deploy/`` (no Docker, Helm or systemd here).

What can be checked without the engines is: every file parses, the Helm templates only use
keys that ``values.yaml`` defines, the alert rules and dashboard only query metrics the code
exposes (``forescale.metrics``), the systemd unit carries its hardening, the Dockerfile runs
as a non-root user with a verified terraform. ``promtool`` (when on PATH) checks and
unit-tests the alert rules.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from forescale.metrics import Metrics

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "forescale"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
DASHBOARD = DEPLOY / "grafana" / "forescale-dashboard.json"
UNIT = DEPLOY / "systemd" / "forescale.service"
DOCKERFILE = DEPLOY / "Dockerfile"

# The metrics the operations files must watch (each must appear in the alert rules).
ALERTED = {
    "forescale_job_last_success_timestamp_seconds",
    "forescale_data_age_seconds",
    "forescale_apply_total",
    "forescale_forecast_error_ratio",
    "forescale_collector_errors_total",
}
METRIC_NAME = re.compile(r"\bforescale_[a-z0-9_]+\b")


def exposed_metric_names() -> set[str]:
    """Every sample name forescale's metrics expose (counter ``_total``, histogram series)."""
    names: set[str] = set()
    for family in Metrics(CollectorRegistry()).registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{s}" for s in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return names


def _alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [
        v["definition"] for v in dash["templating"]["list"] if isinstance(v.get("definition"), str)
    ]
    return exprs


# -- Prometheus rules and Grafana dashboard --------------------------------------------------
def test_alert_rules_query_only_exposed_metrics_and_cover_the_required_ones() -> None:
    rules = _alert_rules()
    assert rules and all({"alert", "expr", "labels", "annotations"} <= r.keys() for r in rules)
    used = {name for r in rules for name in METRIC_NAME.findall(r["expr"])}
    assert used <= exposed_metric_names(), used - exposed_metric_names()
    assert used >= ALERTED, ALERTED - used
    applies = " ".join(r["expr"] for r in rules if "forescale_apply_total" in r["expr"])
    assert 'result="failed"' in applies and 'result="refused"' in applies
    assert all(r["labels"]["severity"] in {"warning", "critical"} for r in rules)


def test_dashboard_is_valid_and_queries_only_exposed_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    used = {name for e in _dashboard_exprs() for name in METRIC_NAME.findall(e)}
    assert used <= exposed_metric_names(), used - exposed_metric_names()
    # the panels the operators need
    for wanted in (
        "forescale_forecast_demand",
        "forescale_current_units",
        "forescale_desired_units",
        "forescale_data_age_seconds",
        "forescale_job_duration_seconds_bucket",
        "forescale_apply_total",
    ):
        assert wanted in used, wanted


PROMTOOL = shutil.which("promtool")


@pytest.mark.external_service
@pytest.mark.skipif(PROMTOOL is None, reason="promtool not on PATH (apt-get install prometheus)")
def test_promtool_checks_the_rules() -> None:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.external_service
@pytest.mark.skipif(PROMTOOL is None, reason="promtool not on PATH (apt-get install prometheus)")
def test_promtool_rule_behaviour(tmp_path: Path) -> None:
    """A failed apply alerts, a success does not; stale data alerts only after `for`."""
    assert PROMTOOL is not None
    tests = tmp_path / "alerts_test.yaml"
    tests.write_text(
        textwrap.dedent(
            f"""\
            rule_files: [{ALERTS}]
            evaluation_interval: 1m
            tests:
              - interval: 1m
                input_series:
                  - series: 'forescale_apply_total{{service="web",result="failed"}}'
                    values: '0 0 1 1 1'
                  - series: 'forescale_apply_total{{service="web",result="applied"}}'
                    values: '0 1 2 3 4'
                  - series: 'forescale_data_age_seconds{{service="web"}}'
                    values: '60+0x10 3600+60x30'
                alert_rule_test:
                  - eval_time: 4m
                    alertname: ForescaleApplyFailed
                    exp_alerts:
                      - exp_labels: {{severity: critical, service: web, result: failed}}
                        exp_annotations:
                          summary: terraform apply failed for web
                          description: >-
                            An apply run of web failed; the next run resumes it. See
                            `forescale history --service web` for the exit code and output.
                  - eval_time: 15m
                    alertname: ForescaleDataStale
                    exp_alerts: []
                  - eval_time: 30m
                    alertname: ForescaleDataStale
                    exp_alerts:
                      - exp_labels: {{severity: warning, service: web}}
                        exp_annotations:
                          summary: forescale demand data for web is stale
                          description: >-
                            The newest stored sample of web is 1h 19m 0s old; scale-in
                            is suspended until data is fresh.
            """
        )
    )
    done = subprocess.run(
        [PROMTOOL, "test", "rules", str(tests)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- Helm chart ---------------------------------------------------------------------------
def _values() -> dict[str, Any]:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert isinstance(values, dict)
    return values


def test_chart_and_values_parse_with_leader_standby_on_postgres() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == CHART.name and chart["version"]
    values = _values()
    assert values["replicaCount"] == 2  # one leader + one standby
    assert values["store"]["url"].startswith("postgresql+psycopg://")  # shared lock/store
    assert values["securityContext"]["runAsNonRoot"] is True
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["serviceMonitor"]["enabled"] is False  # a toggle, off without the CRD
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= values["resources"][kind].keys()
    assert set(values["config"]) == {"forescale.yaml", "events.yaml"}
    for body in values["config"].values():
        yaml.safe_load(body)


TEMPLATES = ("deployment", "configmap", "secret", "service", "servicemonitor", "pvc")


def test_templates_exist_and_reference_only_defined_values() -> None:
    values = _values()
    for name in TEMPLATES:
        assert (CHART / "templates" / f"{name}.yaml").is_file(), name
    for path in (CHART / "templates").iterdir():
        text = path.read_text()
        refs = re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text)
        for ref in refs:
            node: Any = values
            for key in ref.strip(".").split("."):
                assert isinstance(node, dict) and key in node, f"{path.name}: .Values{ref}"
                node = node[key]
        # every block action is closed: a cheap stand-in for `helm lint`
        opened = len(re.findall(r"\{\{-?\s*(?:if|range|with|define)\b", text))
        closed = len(re.findall(r"\{\{-?\s*end\s*-?\}\}", text))
        assert opened == closed, f"{path.name}: {opened} blocks opened, {closed} closed"
        assert text.count("{{") == text.count("}}"), path.name


def test_deployment_refuses_two_replicas_on_sqlite_and_wires_the_token() -> None:
    text = (CHART / "templates" / "deployment.yaml").read_text()
    assert "fail" in text and "replicaCount" in text and "PostgreSQL" in text
    assert "FORESCALE_API__TOKEN" in text and "secretKeyRef" in text
    assert ".Values.securityContext" in text and ".Values.resources" in text
    secret = (CHART / "templates" / "secret.yaml").read_text()
    assert "b64enc" in secret and ".Values.api.token" in secret


# -- systemd ------------------------------------------------------------------------------
def _unit() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None and "=" in line, raw
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _seconds(span: str) -> float:
    units = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+)\s*([a-z]*)", span):
        total += int(number) * units[unit or "s"]
    return total


def test_systemd_unit_is_hardened() -> None:
    service = _unit()["Service"]
    expected = {
        "Type": "simple",
        "User": "forescale",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ReadWritePaths": "/var/lib/forescale",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter": "@system-service",
        "KillSignal": "SIGTERM",
        "Restart": "on-failure",
    }
    for key, value in expected.items():
        assert service.get(key) == [value], (key, service.get(key))
    # long enough for a terraform apply (default apply timeouts are minutes) to finish
    assert _seconds(service["TimeoutStopSec"][0]) >= 600
    assert service["EnvironmentFile"] and service["ExecStart"][0].split()[1:2] == ["daemon"]
    assert _unit()["Install"]["WantedBy"] == ["multi-user.target"]


# -- Dockerfile ---------------------------------------------------------------------------
def test_dockerfile_non_root_verified_terraform_and_entrypoint() -> None:
    text = DOCKERFILE.read_text()
    lines = [ln.strip() for ln in text.replace("\\\n", " ").splitlines()]
    stages = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(stages) >= 2 and " AS builder" in stages[0]
    assert "ARG PYTHON_VERSION=3.11" in lines and stages[-1] == "FROM python:${PYTHON_VERSION}-slim"
    builder = text[text.index(" AS builder") : text.index(f"\n{stages[1]}\n")]
    assert re.search(r"^ARG TERRAFORM_VERSION=\d+\.\d+\.\d+$", builder, re.M)
    assert "releases.hashicorp.com/terraform/${TERRAFORM_VERSION}" in builder
    assert "SHA256SUMS" in builder and "sha256sum -c" in builder
    final = text[text.index(f"\n{stages[-1]}\n") :]
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"} and "USER" in final
    assert users[-1].split(":")[0] == "forescale"
    assert "EXPOSE 8080" in lines
    assert 'ENTRYPOINT ["forescale"]' in lines
    cmd = next(ln for ln in lines if ln.startswith("CMD "))
    assert json.loads(cmd[4:]) == ["daemon", "--config", "/etc/forescale/forescale.yaml"]
    health = next(ln for ln in lines if ln.startswith("HEALTHCHECK "))
    assert "urllib.request" in health and "/healthz" in health and ":8080" in health
    # every source the build copies exists (the build context is the repository root)
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for item in src.split():
            assert (ROOT / item).exists(), item
