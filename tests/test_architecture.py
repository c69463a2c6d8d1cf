"""The agreed layer rules hold, and breaking one fails the build naming the import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PARTS = ("forescale", "config", "collectors", "forecaster", "iac_writer")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_tree(tmp: Path) -> Path:
    """The package sources and pyproject in a private tree (the symlinks kept)."""
    tree = tmp / "tree"
    tree.mkdir()
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    ignore = shutil.ignore_patterns("__pycache__")
    for part in PARTS:
        shutil.copytree(ROOT / part, tree / part, symlinks=True, ignore=ignore)
    return tree


def test_the_contracts_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("forecaster/capacity.py", "import forescale.store", "The forecaster is pure"),
        ("collectors/csv_file.py", "import forescale.iac_writer.tfvars", "Collectors know"),
        ("iac_writer/guard.py", "import forescale.collectors.base", "The IaC writer"),
        ("forescale/usecases/plan.py", "import subprocess", "Only the process runner"),
        ("forescale/api/app.py", "import apscheduler", "Only the daemon imports APScheduler"),
        ("forescale/cli.py", "import prophet", "Prophet in one module"),
    ],
)
def test_a_planted_forbidden_import_breaks_the_build_naming_it(
    tmp_path: Path, module: str, planted: str, contract: str
) -> None:
    tree = copy_tree(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")
    done = lint_imports(tree)
    assert done.returncode != 0
    dotted = module.removesuffix(".py").replace("/", ".")
    name = dotted if dotted.startswith("forescale.") else f"forescale.{dotted}"
    assert contract in done.stdout and "BROKEN" in done.stdout
    assert name in done.stdout, done.stdout  # the report names the importer


def test_prophet_is_imported_lazily() -> None:
    """Importing every module the CLI, API and daemon use does not load Prophet (seconds of
    start-up): only a fit does."""
    code = (
        "import sys\n"
        "import forescale.cli, forescale.api, forescale.daemon, forescale.usecases.apply\n"
        "import forescale.usecases.refit, forescale.usecases.backtest\n"
        "import forescale.forecaster.model, forescale.forecaster.candidates\n"
        "print(sorted(m for m in ('prophet', 'cmdstanpy') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
