"""The backtest report for a terminal (rich): lays out a :class:`BacktestView`.

What was backtested, the accuracy table, the capacity table, whether forescale is
dominated, the model choices, failed folds and notes.
"""

from __future__ import annotations

from functools import partial

from rich.console import Console
from rich.markup import escape

from forescale.report.backtest_view import BacktestView
from forescale.report.text_blocks import markup, record, rich_table

__all__ = ["print_backtest", "render_backtest_text"]


def render_backtest_text(view: BacktestView) -> str:
    """The text report as a string (what :func:`print_backtest` prints to a file)."""
    return record(partial(print_backtest, view), highlight=False)


def print_backtest(view: BacktestView, console: Console) -> None:
    console.print(markup(view.title))
    console.print(f"history  {escape(view.history)}")
    console.print(escape(view.capacity_per_unit))
    if view.settings_line is not None:
        console.print(f"settings {escape(view.settings_line)}")
    console.print()
    console.print(rich_table(view.metrics))
    console.print()
    console.print(rich_table(view.approaches))
    console.print(escape(view.dominance))
    console.print(escape(view.choices))
    for line in view.failures:
        console.print(f"[red]error[/red] {escape(line)}")
    for note in view.notes:
        console.print(f"[yellow]note[/yellow] {escape(note)}")
