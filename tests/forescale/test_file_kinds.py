"""Capacity kept outside Terraform variable files: a Helm values file (written in place,
no terraform: a GitOps tool rolls it out), Terragrunt ``inputs`` (committed for review) and
the settings that refuse what a kind of file cannot do. The CLI edits each kind by name."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forescale.cli import main
from forescale.config.settings import file_kind, load_settings
from forescale.errors import ConfigError
from forescale.iac_writer import target as target_module
from forescale.store import Store
from forescale.usecases.apply import apply_due
from forescale.usecases.collect import collect_all
from forescale.usecases.context import App
from forescale.usecases.plan import plan_all
from tests.fakes import FAST

NOW = dt.datetime(2024, 6, 3, 12, 0, tzinfo=dt.UTC)

VALUES = b"""# Helm values of the web chart
web:
  image: {repository: ghcr.io/acme/web, tag: "1.4.2"}
  autoscaling:
    enabled: true
    minReplicas: 4    # forescale raises it before peaks
    maxReplicas: 30
  resources: &res
    requests: {cpu: 500m}
worker:
  resources: *res
"""

DEPLOYMENT_AND_HPA = b"""apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  template: {}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 4
  maxReplicas: 30
"""

TERRAGRUNT = b"""include "root" {
  path = find_in_parent_folders("root.hcl")
}

terraform {
  source = "../../modules//asg"
}

inputs = {
  capacity = {
    web = {
      min_size = 4 # forescale raises it before peaks
      max_size = 30
    }
  }
}
"""


def settings_text(var_file: str, address: str, mode: str, extra: str = "") -> str:
    return f"""
store_url: sqlite:///state/forescale.db
mode: {mode}
services:
  web:
    source: {{type: csv, path: demand.csv}}
    capacity_per_unit: 100
    min_units: 2
    max_units: 40
    observed_headroom: 0
    scale_in: {{policy: after_peak, stabilization: 15m, tolerance: 0}}
    iac:
      working_dir: iac
      var_file: {var_file}
      address: {address}
{extra}"""


def project(tmp: Path, var_file: str, content: bytes, address: str, mode: str) -> Path:
    root = tmp / "project"
    (root / "iac" / Path(var_file).parent).mkdir(parents=True, exist_ok=True)
    (root / "iac" / var_file).write_bytes(content)
    (root / "forescale.yaml").write_text(settings_text(var_file, address, mode))
    ds = pd.date_range(NOW - dt.timedelta(days=3), NOW + dt.timedelta(hours=2), freq="5min")
    pd.DataFrame(
        {"timestamp": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": np.full(len(ds), 1000.0)}
    ).to_csv(root / "demand.csv", index=False)
    return root


def run(root: Path) -> list:  # type: ignore[type-arg]
    settings = load_settings(root / "forescale.yaml")
    store = Store.open(settings.store_url)
    try:
        collect_all(settings, store, since=NOW - dt.timedelta(days=4))
        return apply_due(App(settings=settings, store=store, candidates=FAST), now=NOW)
    finally:
        store.close()


def test_file_kind_rules_agree_between_settings_and_writer() -> None:
    for name in (
        "values.yaml",
        "hpa.YML",
        "terragrunt.hcl",
        "prod.tfvars",
        "x.tfvars.json",
        "values.yaml.bak",
        "terraform.tfvars",
    ):
        assert file_kind(Path(name)) == target_module.file_kind(Path(name)).value


def test_a_helm_values_file_is_written_in_place_without_terraform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, "values.yaml", VALUES, "web.autoscaling.minReplicas", "apply")
    monkeypatch.chdir(root)
    monkeypatch.setenv("PATH", "/nonexistent")  # no terraform to run, and none is run
    [outcome] = run(root)
    assert outcome.status == "applied", outcome.message
    assert "Kubernetes YAML" in outcome.message and "no terraform" in outcome.message
    after = (root / "iac" / "values.yaml").read_bytes()
    # 1,000 req/s / 100 per unit x the fast model's band: more than 4; only the number moves
    new = int(after.split(b"minReplicas: ")[1].split(b" ")[0])
    assert new > 4
    assert after == VALUES.replace(b"minReplicas: 4 ", f"minReplicas: {new} ".encode())


def test_a_deployment_beside_its_hpa_is_warned_about_in_the_plan_and_check_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    address = "doc[HorizontalPodAutoscaler/web].spec.minReplicas"
    root = project(tmp_path, "web.yaml", DEPLOYMENT_AND_HPA, address, "dry-run")
    monkeypatch.chdir(root)
    settings = load_settings(root / "forescale.yaml")
    store = Store.open(settings.store_url)
    try:
        collect_all(settings, store, since=NOW - dt.timedelta(days=4))
        report = plan_all(App(settings=settings, store=store, candidates=FAST), now=NOW)
    finally:
        store.close()
    [service] = report.services
    [warning] = service.notes
    assert "Deployment/web" in warning and "sets spec.replicas" in warning
    assert "HorizontalPodAutoscaler/web" in warning and "remove spec.replicas" in warning
    assert main(["check-config", "--config", str(root / "forescale.yaml")]) == 0
    captured = capsys.readouterr()
    assert "configuration OK" in captured.out
    assert "forescale: warning: web: " in captured.err and "sets spec.replicas" in captured.err


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30
    ).stdout


def test_terragrunt_inputs_are_committed_for_review_without_a_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    var_file = "prod/web/terragrunt.hcl"
    root = project(tmp_path, var_file, TERRAGRUNT, "capacity.web.min_size", "commit")
    monkeypatch.chdir(root)
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("state/\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "infra")
    head = git(root, "rev-parse", "HEAD").strip()
    [outcome] = run(root)
    assert outcome.status == "committed", outcome.message
    diff = git(root, "diff", head, "forescale/web", "--", f"iac/{var_file}")
    changed = [
        line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert len(changed) == 2
    assert changed[0] == "-      min_size = 4 # forescale raises it before peaks"
    assert changed[1].startswith("+      min_size = ") and changed[1] != changed[0]
    assert (root / "iac" / var_file).read_bytes() == TERRAGRUNT  # the checkout untouched


@pytest.mark.parametrize(
    ("var_file", "address", "mode", "extra", "words"),
    [
        ("values.yaml", "web.min", "plan", "", "mode plan runs terraform"),
        ("terragrunt.hcl", "web_min", "apply", "", "iac.terraform.binary: terragrunt"),
        ("terragrunt.hcl", "web_min", "plan", "", "reads its parent folders"),
        (
            "values.yaml",
            "web_min",
            "dry-run",
            "      write: auto_tfvars\n",
            "write: auto_tfvars needs a Terraform variable file",
        ),
        (
            "terragrunt.hcl",
            "web_min",
            "dry-run",
            "      write: schedule\n",
            "write: schedule needs a Terraform variable file",
        ),
        ("prod.tfvars", "doc[Deployment/web].spec.replicas", "dry-run", "", "doc[Kind/name]."),
    ],
)
def test_settings_refuse_what_the_kind_of_file_cannot_do(
    tmp_path: Path, var_file: str, address: str, mode: str, extra: str, words: str
) -> None:
    path = tmp_path / "forescale.yaml"
    path.write_text(settings_text(var_file, address, mode, extra))
    (tmp_path / "demand.csv").write_text("timestamp,value\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert words in message and "\n" not in message


def test_terragrunt_plan_and_apply_run_with_the_terragrunt_binary(tmp_path: Path) -> None:
    path = tmp_path / "forescale.yaml"
    extra = "      terraform: {binary: terragrunt}\n"
    path.write_text(settings_text("terragrunt.hcl", "web_min", "apply", extra))
    (tmp_path / "demand.csv").write_text("timestamp,value\n")
    settings = load_settings(path)
    assert settings.services["web"].iac.kind == "terragrunt"


# ----------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    ("name", "content", "address", "old", "new"),
    [
        (
            "values.yaml",
            VALUES,
            "web.autoscaling.minReplicas",
            b"minReplicas: 4 ",
            b"minReplicas: 9 ",
        ),
        (
            "hpa.yml",
            DEPLOYMENT_AND_HPA,
            "doc[HorizontalPodAutoscaler/web].spec.minReplicas",
            b"minReplicas: 4\n",
            b"minReplicas: 9\n",
        ),
        ("terragrunt.hcl", TERRAGRUNT, "capacity.web.min_size", b"min_size = 4 ", b"min_size = 9 "),
        ("prod.tfvars", b"web_min_size = 4 # x\n", "web_min_size", b"= 4 ", b"= 9 "),
    ],
)
def test_tfvars_get_and_set_work_on_every_kind_by_name(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes,
    address: str,
    old: bytes,
    new: bytes,
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["tfvars", "get", str(path), address]) == 0
    assert capsys.readouterr().out == "4\n"
    assert main(["tfvars", "set", "--dry-run", str(path), address, "9"]) == 0
    assert "+" in capsys.readouterr().out and path.read_bytes() == content
    assert main(["tfvars", "set", str(path), address, "9"]) == 0
    assert path.read_bytes() == content.replace(old, new, 1)


def test_tfvars_set_warns_about_a_deployment_beside_its_hpa(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "web.yaml"
    path.write_bytes(DEPLOYMENT_AND_HPA)
    assert main(["tfvars", "set", str(path), "doc[1].spec.minReplicas", "6"]) == 0
    assert "sets spec.replicas" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content", "address", "words"),
    [
        ("values.yaml", VALUES, "web.resources.requests.cpu", "anchored (&res)"),
        ("values.yaml", VALUES, "web.image.tag", "web.image.tag"),
        ("values.yaml", VALUES, "web.missing", "web.missing"),
        ("terragrunt.hcl", TERRAGRUNT, "capacity.web.desired", "capacity.web.desired"),
    ],
)
def test_tfvars_refusals_are_one_line_and_touch_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes,
    address: str,
    words: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["tfvars", "set", str(path), address, "9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("forescale: error: ") and err.count("\n") == 1, err
    assert words in err
    assert path.read_bytes() == content


def test_min_and_max_replicas_move_together_in_a_values_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, "values.yaml", VALUES, "web.autoscaling.minReplicas", "apply")
    text = (root / "forescale.yaml").read_text()
    text = text.replace(
        "address: web.autoscaling.minReplicas",
        "addresses: {min: web.autoscaling.minReplicas, max: web.autoscaling.maxReplicas}\n"
        "      max_base: 5",
    )
    (root / "forescale.yaml").write_text(text)
    monkeypatch.chdir(root)
    [outcome] = run(root)
    assert outcome.status == "applied", outcome.message
    after = (root / "iac" / "values.yaml").read_bytes()
    new = int(after.split(b"minReplicas: ")[1].split(b" ")[0])
    assert new > 5  # above the usual maximum: the ceiling is raised with it
    assert after == VALUES.replace(b"minReplicas: 4 ", f"minReplicas: {new} ".encode()).replace(
        b"maxReplicas: 30", f"maxReplicas: {new}".encode()
    )


def test_a_shadow_service_may_only_be_promoted_to_what_its_file_allows(tmp_path: Path) -> None:
    path = tmp_path / "forescale.yaml"
    text = settings_text("values.yaml", "web.min", "shadow")
    path.write_text(text.replace("    iac:\n", "    promote: {to: plan}\n    iac:\n"))
    (tmp_path / "demand.csv").write_text("timestamp,value\n")
    with pytest.raises(ConfigError, match="mode plan runs terraform"):
        load_settings(path)
    path.write_text(text.replace("    iac:\n", "    promote: {to: commit}\n    iac:\n"))
    assert load_settings(path).promote_of(load_settings(path).services["web"]).to == "commit"
