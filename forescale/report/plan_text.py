"""The plan report for a terminal (rich): lays out a :class:`PlanView`, decides nothing.

Per service: a rule with the headline, the history and forecast lines, the peaks table,
the calendar effects, the capacity line, the schedule table, the notes and the diff
(green additions, red deletions).
"""

from __future__ import annotations

from functools import partial

from rich.console import Console
from rich.markup import escape

from forescale.report.plan_view import PlanView, ServiceView, SummaryLine
from forescale.report.text_blocks import markup, record, rich_table

__all__ = ["print_plan", "render_plan_text"]

_DIFF_STYLE = {"add": "green", "delete": "red", "context": None}


def render_plan_text(view: PlanView) -> str:
    """The text report as a string (what :func:`print_plan` prints to a file or a pipe)."""
    return record(partial(print_plan, view))


def print_plan(view: PlanView, console: Console) -> None:
    """Print the report to ``console`` (styled when it is a terminal)."""
    console.print(markup(view.title))
    for service in view.services:
        console.print()
        _print_service(service, console)
    for failure in view.failures:
        console.print()
        console.rule(markup(failure.title, strong="bold red"))
        console.print(f"[red]error[/red] {escape(failure.failure.error)}")
    console.print()
    console.print(escape(view.footer))


def _print_service(service: ServiceView, console: Console) -> None:
    console.rule(markup(service.title))
    console.print(_summary(service.history))
    console.print(_summary(service.forecast))
    console.print(rich_table(service.peak_table))
    if service.effects:
        console.print(f"[bold]{escape(service.effects_title)}[/bold]")
        for effect in service.effects:
            console.print(f"  {escape(effect.line)}")
    console.print(_summary(service.capacity))
    if service.cost is not None:
        console.print(_summary(service.cost))
    console.print(rich_table(service.schedule))
    for note in service.notes:
        console.print(f"[yellow]note[/yellow] {escape(note)}")
    console.print(markup(service.diff.title))
    for line in service.diff.lines:
        console.print(escape(line.text), style=_DIFF_STYLE[line.kind], highlight=False)


def _summary(line: SummaryLine) -> str:
    return f"{line.label:<8} {markup(line.text)}"
