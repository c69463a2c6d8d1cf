"""The plan report as markdown (a PR comment): lays out a :class:`PlanView`, decides nothing.

Per service: a heading with the headline, the summary as a list, the peaks table, the
calendar effects, the schedule table, the notes as quotes and the diff in a ``diff`` fence.
File paths and addresses are code spans; table cells escape ``|``.
"""

from __future__ import annotations

from forescale.report.blocks import Phrase, Table
from forescale.report.plan_view import PlanView, ServiceView

__all__ = ["markdown_table", "render_plan_markdown"]


def render_plan_markdown(view: PlanView) -> str:
    out = [f"# {_inline(view.title)}", ""]
    for service in view.services:
        out += _service(service)
    for failure in view.failures:
        out += [f"## {_inline(failure.title)}", "", f"error: {failure.failure.error}", ""]
    out.append(view.footer)
    return "\n".join(out) + "\n"


def _service(service: ServiceView) -> list[str]:
    out = [f"## {_inline(service.title)}", ""]
    out += [f"- {line.label.capitalize()}: {_inline(line.text)}" for line in service.summary]
    out += ["", *markdown_table(service.peak_table)]
    if service.effects:
        out += ["", f"{service.effects_title}:", ""]
        out += [f"- {effect.line}" for effect in service.effects]
    out += ["", *markdown_table(service.schedule)]
    if service.notes:
        out += [""] + [f"> note: {note}" for note in service.notes]
    out.append("")
    if service.diff.lines:
        out += [f"{_inline(service.diff.title)}:", "", "```diff"]
        out += [line.text for line in service.diff.lines]
        out.append("```")
    else:
        out.append(_inline(service.diff.title))
    out.append("")
    return out


def _inline(phrase: Phrase) -> str:
    # Headings and paragraphs are emphasis enough: strong spans stay plain.
    return "".join(f"`{s.text}`" if s.style == "code" else s.text for s in phrase)


def markdown_table(table: Table) -> list[str]:
    """``table`` as its title, a blank line and a pipe table (numbers right-aligned)."""
    rule = "|".join("---:" if c.align == "right" else "---" for c in table.columns)
    lines = [
        f"{table.title}:",
        "",
        "| " + " | ".join(c.header for c in table.columns) + " |",
        f"|{rule}|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
