"""The plan report in every format: the same view, laid out four ways.

The JSON is a documented schema (docs/report-json.md) and the text is what ``make demo``
prints: both are pinned byte for byte by golden files (written by the renderers this
package replaced). Markdown and HTML must show every line the view gives them.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from forescale.report.blocks import Span
from forescale.report.plan_view import PlanView, SummaryLine, build_plan_view
from forescale.report.render import PLAN_RENDERERS, render_plan
from tests.forescale.report import samples

GOLDEN = Path(__file__).parent / "golden"
PEOPLE = ("text", "markdown", "html")  # the formats a person reads


def _visible(fmt: str, document: str) -> str:
    """What a reader sees: HTML without tags, entities decoded, plots dropped."""
    if fmt != "html":
        return document
    document = re.sub(r"<svg.*?</svg>", "", document, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", document))


@pytest.fixture(scope="module")
def view() -> PlanView:
    return build_plan_view(samples.report())


@pytest.fixture(scope="module")
def documents(view: PlanView) -> dict[str, str]:
    return {fmt: render(view) for fmt, render in PLAN_RENDERERS.items()}


def test_json_is_byte_for_byte_the_documented_schema(documents: dict[str, str]) -> None:
    assert documents["json"] == (GOLDEN / "plan.json").read_text(encoding="utf-8")
    doc = json.loads(documents["json"])
    assert doc["schema_version"] == 1 and doc["written"] is False
    assert [s["name"] for s in doc["services"]] == ["web", "api"]


def test_text_is_byte_for_byte_what_the_demo_prints(documents: dict[str, str]) -> None:
    assert documents["text"] == (GOLDEN / "plan.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", PEOPLE)
def test_every_format_shows_the_history_forecast_and_capacity_lines(
    fmt: str, documents: dict[str, str]
) -> None:
    seen = _visible(fmt, documents[fmt])
    history = (
        "csv demand.csv (value): Tue 2014-09-30 19:00 EDT \u2192 Wed 2014-11-26 18:00 EST, "
        "2,735 samples every 30m, 99.9% coverage"
    )
    assert seen.count(history) == 2  # web and api
    assert seen.count("ensemble, 30m steps, 90% band, until Fri 2014-11-28 18:00 EST") == 2
    assert "100 per unit; bounds [4, 30]; lead time 15m; observed demand 1,051" in seen
    assert "lead time 15m; observed demand unknown" in seen  # api: stale metrics
    code = {"text": "{}", "markdown": "`{}`", "html": "{}"}[fmt]
    assert f"12 units now ({code.format('terraform/terraform.tfvars')}: " in seen


@pytest.mark.parametrize("fmt", PEOPLE)
def test_every_format_shows_the_same_tables_effects_notes_and_diff(
    fmt: str, documents: dict[str, str]
) -> None:
    seen = _visible(fmt, documents[fmt])
    for title in ("Forecast peaks", "Capacity schedule", "Calendar effects in the horizon"):
        assert title in seen
    assert "Wed 2014-11-26 20:00 EST" in seen and "1,440" in seen
    assert "Launch <beta> +25 %: Thu 2014-11-27 19:00 EST" in seen
    assert "Halloween" not in seen  # its window is long before the horizon
    assert "demand stayed \u2264 960 [1h]" in seen
    assert "current capacity covers the horizon" in seen  # api's schedule: one 'none' row
    assert "metrics are stale or unavailable" in seen
    assert "note" in seen and "model: record too short" in seen
    assert "+web_min_size = 15" in seen and "-web_min_size = 12" in seen
    assert "no variable file change is due" in seen  # api
    assert "worker: not planned" in seen
    assert "cannot read [bold]<q.csv>[/bold] & co" in seen
    assert seen.rstrip().endswith("dry-run: nothing was written to any Terraform file.")


def test_renderers_lay_out_the_view_they_are_given(view: PlanView) -> None:
    """No renderer recomputes a line: change it in the view and every format follows."""
    web = view.services[0]
    web = replace(
        web,
        title=(Span(text="SENTINEL-TITLE"),),
        history=SummaryLine(label="history", text=(Span(text="SENTINEL-HISTORY"),)),
        schedule=replace(web.schedule, rows=(("SENTINEL-AT", "1 \u2192 2", "SENTINEL-WHY"),)),
        notes=("SENTINEL-NOTE",),
    )
    changed = replace(view, services=(web,), footer="SENTINEL-FOOTER")
    for fmt in PEOPLE:
        seen = _visible(fmt, PLAN_RENDERERS[fmt](changed))
        for sentinel in ("TITLE", "HISTORY", "AT", "WHY", "NOTE", "FOOTER"):
            assert f"SENTINEL-{sentinel}" in seen, (fmt, sentinel)
        assert "raise 12 \u2192 15 units" not in seen, fmt
    doc = json.loads(PLAN_RENDERERS["json"](changed))
    assert doc["services"][0]["notes"] == ["SENTINEL-NOTE"]


def test_markdown_lays_out_code_spans_and_escapes_table_cells(view: PlanView) -> None:
    web = view.services[0]
    web = replace(web, schedule=replace(web.schedule, rows=(("a|b", "1 \u2192 2", "why"),)))
    text = PLAN_RENDERERS["markdown"](replace(view, services=(web,)))
    assert "(`terraform/terraform.tfvars`: `web_min_size`)" in text
    assert "| a\\|b | 1 \u2192 2 | why |" in text
    assert "```diff\n--- a/terraform/terraform.tfvars\n" in text


def test_html_is_self_contained_escaped_and_deterministic(documents: dict[str, str]) -> None:
    page = documents["html"]
    assert page == render_plan(samples.report(), "html")  # same input, same bytes
    assert page.count("<svg") == 2
    assert "<beta>" not in page and "Launch &lt;beta&gt; +25 %" in page
    assert "&lt;q.csv&gt;" in page and "<q.csv>" not in page
    for tag in ("<script", "<link", "<img", "<iframe", "@import"):
        assert tag not in page
    assert re.findall(r"""(?:src|href)=["'](?!#)|url\((?!#)""", page) == []
