"""Blocks (:mod:`forescale.report.blocks`) as rich markup and tables, for the text reports."""

from __future__ import annotations

import io
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from forescale.report.blocks import Phrase, Table

__all__ = ["TEXT_WIDTH", "markup", "record", "rich_table"]

TEXT_WIDTH = 140  # columns of text written to a file or a pipe


def markup(phrase: Phrase, *, strong: str = "bold") -> str:
    """``phrase`` as rich markup: strong spans in the ``strong`` style, all text escaped."""
    return "".join(
        f"[{strong}]{escape(s.text)}[/{strong}]" if s.style == "strong" else escape(s.text)
        for s in phrase
    )


def rich_table(table: Table) -> RichTable:
    """``table`` as a rich table: title on the left, no outer edge, cells escaped."""
    out = RichTable(title=table.title, title_justify="left", show_edge=False)
    for column in table.columns:
        out.add_column(column.header, justify=column.align)
    for row in table.rows:
        out.add_row(*(escape(cell) for cell in row))
    return out


def record(print_to: Callable[[Console], None], *, highlight: bool = True) -> str:
    """What ``print_to(console)`` prints, as plain text ``TEXT_WIDTH`` columns wide."""
    console = Console(file=io.StringIO(), width=TEXT_WIDTH, record=True, highlight=highlight)
    print_to(console)
    return console.export_text()
