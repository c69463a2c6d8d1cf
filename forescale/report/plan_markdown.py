"""The plan report as markdown (a PR comment): lays out a :class:`PlanView`, decides nothing.

Per service: a heading with the headline, the summary as a list, the chart of history,
forecast band and planned capacity (a Mermaid ``xychart-beta`` block that GitHub and GitLab
draw, :mod:`forescale.report.mermaid`) with its legend, the peaks table, the calendar
effects, the schedule table, the notes as quotes and the diff in a ``diff`` fence. File
paths and addresses are code spans; table cells escape ``|``.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from forescale.report.blocks import Phrase, Table
from forescale.report.mermaid import render_xychart, service_chart
from forescale.report.plan_view import PlanView, ServiceView

__all__ = ["chart_markdown", "inline_markdown", "markdown_table", "render_plan_markdown"]


def render_plan_markdown(view: PlanView) -> str:
    out = [f"# {inline_markdown(view.title)}", ""]
    for service in view.services:
        out += _service(service, view.timezone)
    for failure in view.failures:
        out += [f"## {inline_markdown(failure.title)}", "", f"error: {failure.failure.error}", ""]
    out.append(view.footer)
    return "\n".join(out) + "\n"


def _service(service: ServiceView, tz: ZoneInfo) -> list[str]:
    out = [f"## {inline_markdown(service.title)}", ""]
    out += [
        f"- {line.label.capitalize()}: {inline_markdown(line.text)}" for line in service.summary
    ]
    chart = chart_markdown(service, tz)
    if chart:
        out += ["", *chart]
    out += ["", *markdown_table(service.peak_table)]
    if service.effects:
        out += ["", f"{service.effects_title}:", ""]
        out += [f"- {effect.line}" for effect in service.effects]
    out += ["", *markdown_table(service.schedule)]
    if service.notes:
        out += [""] + [f"> note: {note}" for note in service.notes]
    out.append("")
    if service.diff.lines:
        out += [f"{inline_markdown(service.diff.title)}:", "", "```diff"]
        out += [line.text for line in service.diff.lines]
        out.append("```")
    else:
        out.append(inline_markdown(service.diff.title))
    out.append("")
    return out


def chart_markdown(service: ServiceView, tz: ZoneInfo) -> list[str]:
    """The service's Mermaid chart and its legend as markdown lines (none without data)."""
    chart = service_chart(service.service, tz)
    if chart is None:
        return []
    return [*render_xychart(chart).splitlines(), "", chart.legend]


def inline_markdown(phrase: Phrase) -> str:
    """``phrase`` as inline markdown: code spans in backticks."""
    # Headings and paragraphs are emphasis enough: strong spans stay plain.
    return "".join(f"`{s.text}`" if s.style == "code" else s.text for s in phrase)


def markdown_table(table: Table, *, titled: bool = True) -> list[str]:
    """``table`` as its title, a blank line and a pipe table (numbers right-aligned);
    without the title when not ``titled`` (a heading already names it)."""
    rule = "|".join("---:" if c.align == "right" else "---" for c in table.columns)
    lines = [f"{table.title}:", ""] if titled else []
    lines += [
        "| " + " | ".join(c.header for c in table.columns) + " |",
        f"|{rule}|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
