"""The report package's rules, checked on the source: renderers lay out, views decide."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import forescale.report

PACKAGE = Path(forescale.report.__file__).parent
RENDERERS = (
    "plan_text",
    "plan_markdown",
    "plan_html",
    "plan_json",
    "backtest_text",
    "backtest_html",
    "backtest_json",
)
# What only a view may call: choosing peaks, effects and dominance, wording times and numbers.
DECIDING = {
    "daily_peaks",
    "effects_in_horizon",
    "drivers_at",
    "percent",
    "dominated_by",
    "local_time",
    "number",
    "share",
    "factor",
}


def _imports(module: str) -> set[tuple[str, str]]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {(node.module, alias.name) for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {(alias.name, "") for alias in node.names}
    return found


@pytest.mark.parametrize("module", RENDERERS)
def test_a_renderer_calls_nothing_that_decides_what_is_shown(module: str) -> None:
    assert {name for _, name in _imports(module)} & DECIDING == set()


@pytest.mark.parametrize("module", RENDERERS)
def test_a_renderer_does_not_import_another_format(module: str) -> None:
    others = {f"forescale.report.{m}" for m in RENDERERS if m != module}
    assert {source for source, _ in _imports(module)} & others == set()


@pytest.mark.parametrize("view", ["plan_view", "backtest_view"])
def test_a_view_imports_no_renderer_and_no_output_library(view: str) -> None:
    sources = {source for source, _ in _imports(view)}
    assert not sources & {f"forescale.report.{m}" for m in RENDERERS}
    assert not {s for s in sources if s.split(".")[0] in {"rich", "matplotlib", "json", "html"}}


def test_the_iac_writer_holds_no_report_code() -> None:
    iac_writer = PACKAGE.parent.parent / "iac_writer"
    assert not (iac_writer / "report.py").exists()
    for path in iac_writer.glob("*.py"):
        assert "forescale.report" not in path.read_text(encoding="utf-8"), path.name
