"""Format name -> renderer, for both reports: one explicit dict each, no if-chains.

A new format is one renderer module and one line here. (matplotlib is imported only when
an HTML page draws its plots.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from forescale.forecaster.backtest import BacktestResult
from forescale.forecaster.cost import Price
from forescale.report.backtest_html import render_backtest_html
from forescale.report.backtest_json import render_backtest_json
from forescale.report.backtest_text import render_backtest_text
from forescale.report.backtest_view import BacktestView, build_backtest_view
from forescale.report.plan_html import render_plan_html
from forescale.report.plan_json import render_plan_json
from forescale.report.plan_markdown import render_plan_markdown
from forescale.report.plan_text import render_plan_text
from forescale.report.plan_view import PlanReport, PlanView, build_plan_view

__all__ = [
    "BACKTEST_RENDERERS",
    "PLAN_RENDERERS",
    "BacktestFormat",
    "PlanFormat",
    "render_backtest",
    "render_plan",
]

PlanFormat = Literal["text", "markdown", "html", "json"]
BacktestFormat = Literal["text", "html", "json"]

PLAN_RENDERERS: Mapping[PlanFormat, Callable[[PlanView], str]] = {
    "text": render_plan_text,
    "markdown": render_plan_markdown,
    "html": render_plan_html,
    "json": render_plan_json,
}
BACKTEST_RENDERERS: Mapping[BacktestFormat, Callable[[BacktestView], str]] = {
    "text": render_backtest_text,
    "html": render_backtest_html,
    "json": render_backtest_json,
}


def render_plan(report: PlanReport, fmt: PlanFormat) -> str:
    """The plan report as a ``fmt`` document (``text`` laid out 140 columns wide)."""
    return PLAN_RENDERERS[fmt](build_plan_view(report))


def render_backtest(
    result: BacktestResult,
    fmt: BacktestFormat,
    *,
    service: str,
    source: str,
    settings: Mapping[str, object],
    timezone: str,
    price: Price | None = None,
) -> str:
    """The backtest report as a ``fmt`` document; times shown in ``timezone`` (IANA name);
    cost columns when ``price`` is known."""
    view = build_backtest_view(
        result, service=service, source=source, settings=settings, timezone=timezone, price=price
    )
    return BACKTEST_RENDERERS[fmt](view)
