"""Blocks (:mod:`forescale.report.blocks`) as HTML, and the page around them.

Every text is escaped here; the pages are self-contained (inline CSS and SVG, nothing
fetched).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from forescale.report.blocks import Phrase, Table

__all__ = ["html_table", "inline", "page"]


def inline(phrase: Phrase, *, strong: bool = True) -> str:
    """``phrase`` as escaped HTML: code spans in ``<code>``, strong spans in ``<strong>``
    (plain when ``strong`` is false, e.g. inside a heading)."""
    parts = []
    for span in phrase:
        text = escape(span.text)
        if span.style == "code":
            text = f"<code>{text}</code>"
        elif span.style == "strong" and strong:
            text = f"<strong>{text}</strong>"
        parts.append(text)
    return "".join(parts)


def html_table(table: Table, *, caption: bool = True) -> str:
    """``table`` as HTML, one row per line; its title is the caption unless ``caption`` is
    false."""
    title = f"<caption>{escape(table.title)}</caption>" if caption else ""
    head = "".join(f"<th>{escape(c.header)}</th>" for c in table.columns)
    rows = [
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in table.rows
    ]
    return "\n".join([f"<table>{title}<tr>{head}</tr>", *rows, "</table>"])


def page(title: str, style: str, body: Iterable[str]) -> str:
    """A whole HTML document: ``title`` (escaped), the ``style`` sheet and ``body``'s parts,
    one per line."""
    head = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title>",
        f"<style>{style}</style>",
        "</head><body>",
    ]
    return "\n".join([*head, *body, "</body></html>"]) + "\n"
