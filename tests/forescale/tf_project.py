"""A small real Terraform project for the apply tests, and a terraform wrapper that
injects faults (a human edit, a killed forescale, a failure) at a chosen command.

The wrapper (:func:`fault_wrapper`) runs the real terraform; before or after a named
subcommand (``plan``, ``apply``) it performs the steps listed in ``faults.json`` beside
it, each fault firing once: ``["edit", path, old, new]`` replaces bytes in a file (a human
editing it), ``["kill_parent"]`` SIGKILLs the process that started terraform (forescale),
``["touch", path]`` and ``["wait", path]`` let a test step in at that moment, ``["exit",
code]`` fails the command.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forescale.config.settings import load_settings
from forescale.records import ChangeRecord
from forescale.store import Store

NOW = dt.datetime(2024, 6, 3, 12, 0, tzinfo=dt.UTC)
TFVARS = (
    b"# capacity, owned by forescale\r\n"
    b'region       = "eu-west-1"\r\n'
    b"web_min_size = 4 # raised before peaks\r\n"
)

MAIN_TF = """
variable "region" { type = string }
variable "web_min_size" { type = number }

resource "terraform_data" "web_asg" {
  input = { min_size = var.web_min_size, region = var.region }
}
"""
REPLACE_TF = """
variable "region" { type = string }
variable "web_min_size" { type = number }

resource "terraform_data" "web_asg" {
  triggers_replace = [var.web_min_size]
}
"""
HOOK_TF = """
resource "terraform_data" "hook" {
  triggers_replace = [var.web_min_size]
  provisioner "local-exec" {
    command = "test ! -e ${path.module}/FAIL"
  }
}
"""

SETTINGS = """
store_url: sqlite:///state/forescale.db
mode: {mode}
services:{more_services}
  web:
    source: {{type: csv, path: demand.csv}}
    capacity_per_unit: 100
    min_units: 2
    max_units: 20
    lead_time: 15m
    observed_headroom: 0  # these tests are about applying the forecast's step
    iac:
      working_dir: tf
      var_file: terraform.tfvars
      address: web_min_size
      terraform:
        binary: {binary}
        lock_timeout: 5s
        plan_timeout: 60s
        apply_timeout: 60s
        allow_replace: {allow_replace}
{extra}"""


def terraform(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("terraform")
    assert binary, "terraform must be on PATH (make test installs it)"
    return subprocess.run(
        [binary, *args, "-no-color"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def state_values(workdir: Path) -> dict[str, object]:
    shown = json.loads(terraform(workdir, "show", "-json").stdout)
    resources = shown["values"]["root_module"]["resources"]
    return {r["address"]: r["values"] for r in resources}


@pytest.fixture(autouse=True)
def isolated_terraform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    rc = tmp_path / "terraformrc"
    rc.write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(rc))
    monkeypatch.setenv("TF_IN_AUTOMATION", "1")
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    for key in [k for k in __import__("os").environ if k.startswith("FORESCALE_")]:
        monkeypatch.delenv(key)


def make_project(
    tmp: Path,
    *,
    main_tf: str = MAIN_TF,
    mode: str = "apply",
    allow_replace: bool = False,
    binary: str = "terraform",
    extra: str = "",
    more_services: str = "",
) -> Path:
    """A Terraform project (local state, applied at 4 units) with 3 days of flat demand
    (1,000 req/s: the cheap forecaster's band asks for 11 units at 100 per unit)."""
    root = tmp / "project"
    (root / "tf").mkdir(parents=True)
    (root / "tf" / "main.tf").write_text(main_tf)
    (root / "tf" / "terraform.tfvars").write_bytes(TFVARS)
    ds = pd.date_range(NOW - dt.timedelta(days=3), NOW, freq="5min")
    pd.DataFrame(
        {"timestamp": ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": np.full(len(ds), 1000.0)}
    ).to_csv(root / "demand.csv", index=False)
    (root / "forescale.yaml").write_text(
        SETTINGS.format(
            mode=mode,
            allow_replace=str(allow_replace).lower(),
            binary=binary,
            extra=extra,
            more_services=more_services,
        )
    )
    terraform(root / "tf", "init", "-input=false")
    terraform(root / "tf", "apply", "-input=false", "-auto-approve")
    return root


def records(root: Path, service: str = "web") -> list[ChangeRecord]:
    settings = load_settings(root / "forescale.yaml")
    store = Store.open(settings.store_url)
    try:
        return store.list_changes(service)
    finally:
        store.close()


WRAPPER = """#!{python}
import json, os, pathlib, signal, subprocess, sys, time
REAL = {real!r}
FAULTS = pathlib.Path({faults!r})
sub = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
faults = json.loads(FAULTS.read_text()) if FAULTS.exists() else {{}}
fault = faults.pop(sub, None)
FAULTS.write_text(json.dumps(faults))

def act(steps):
    for step in steps:
        kind = step[0]
        if kind == "edit":
            path = pathlib.Path(step[1])
            data = path.read_bytes()
            assert step[2].encode() in data, (step, data)
            path.write_bytes(data.replace(step[2].encode(), step[3].encode()))
        elif kind == "kill_parent":
            os.kill(os.getppid(), signal.SIGKILL)
        elif kind == "touch":
            pathlib.Path(step[1]).write_text("")
        elif kind == "wait":
            deadline = time.monotonic() + 120
            while not pathlib.Path(step[1]).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        elif kind == "exit":
            print("Error: injected failure", file=sys.stderr)
            sys.exit(step[1])

act((fault or {{}}).get("before", []))
# While terraform runs, signals reach the whole process group: let terraform decide.
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda *a: None)
rc = subprocess.call([REAL, *sys.argv[1:]])
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_DFL)
act((fault or {{}}).get("after", []))
sys.exit(rc)
"""


def fault_wrapper(directory: Path) -> tuple[Path, Path]:
    """A terraform wrapper script and its (empty) faults file."""
    real = shutil.which("terraform")
    assert real, "terraform must be on PATH (make test installs it)"
    directory.mkdir(parents=True, exist_ok=True)
    faults = directory / "faults.json"
    faults.write_text("{}")
    script = directory / "terraform-faults"
    script.write_text(WRAPPER.format(python=sys.executable, real=real, faults=str(faults)))
    script.chmod(0o755)
    return script, faults


def inject(
    faults: Path,
    command: str,
    *,
    before: tuple[list[object], ...] = (),
    after: tuple[list[object], ...] = (),
) -> None:
    """Arm a fault for the next ``terraform <command>``."""
    armed = json.loads(faults.read_text())
    armed[command] = {"before": list(before), "after": list(after)}
    faults.write_text(json.dumps(armed))


DRIVER = Path(__file__).with_name("apply_driver.py")
REPO = Path(__file__).parents[2]


def forescale_apply(
    root: Path, *, now: dt.datetime = NOW, env: dict[str, str] | None = None, wait: bool = True
) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    """``forescale apply`` in a child process (the cheap forecaster), as an operator runs it."""
    cmd = [
        sys.executable,
        str(DRIVER),
        "apply",
        "--config",
        str(root / "forescale.yaml"),
        "--at",
        now.isoformat(),
    ]
    scratch = root.parent / "tmp"  # plan files a killed run leaves stay in the test's dir
    scratch.mkdir(exist_ok=True)
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(REPO), "TMPDIR": str(scratch)}
    if not wait:
        return subprocess.Popen(
            cmd, cwd=root, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(cmd, cwd=root, env=full_env, capture_output=True, text=True, timeout=300)
