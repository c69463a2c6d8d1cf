"""The small records a report view is made of: phrases, tables and diff lines.

A view says *what* is shown, already worded; a renderer decides only how it looks in its
format (rich markup, markdown, HTML). Emphasis is part of the view (``strong`` for a name,
``code`` for a file path or an address, shown verbatim), so no renderer decides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Column", "DiffLine", "Phrase", "Span", "Table", "plain"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Span:
    """A run of text: ``plain``, ``strong`` (a name worth the eye) or ``code`` (a path or an
    address: markdown backticks, HTML ``<code>``)."""

    text: str
    style: Literal["plain", "strong", "code"] = "plain"


Phrase = tuple[Span, ...]


def plain(phrase: Phrase) -> str:
    """The phrase's text without emphasis."""
    return "".join(span.text for span in phrase)


@dataclass(frozen=True, kw_only=True, slots=True)
class Column:
    """A table column: its header and how its cells align (numbers to the right)."""

    header: str
    align: Literal["left", "right"] = "left"


@dataclass(frozen=True, kw_only=True, slots=True)
class Table:
    """A titled table of worded cells; every row has one cell per column."""

    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class DiffLine:
    """One line of a unified diff: ``add`` (``+``), ``delete`` (``-``) or ``context``."""

    text: str
    kind: Literal["add", "delete", "context"]
