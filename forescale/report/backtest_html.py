"""The backtest report as one self-contained HTML page: lays out a :class:`BacktestView`.

The text report's lines and tables, two plots (forecast vs actual per fold; planned units
of every approach vs the units demand needed) and the folds in a collapsed table. Nothing
is fetched from the network.
"""

from __future__ import annotations

from html import escape

from forescale.report.backtest_plot import capacity_svg, forecast_svg
from forescale.report.backtest_view import BacktestView
from forescale.report.html_blocks import html_table, inline, page

__all__ = ["render_backtest_html"]

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
    "padding:4px 8px}td{font-variant-numeric:tabular-nums}svg{max-width:100%;"
    "height:auto}caption{text-align:left;font-weight:bold;padding:4px 0}"
    ".error{color:#b31d28}"
)


def render_backtest_html(view: BacktestView) -> str:
    body = [
        f"<h1>{inline(view.title, strong=False)}</h1>",
        f"<p>{escape(view.history)}<br>{escape(view.capacity_per_unit)}</p>",
    ]
    if view.settings_line is not None:
        body.append(f"<p>settings: {escape(view.settings_line)}</p>")
    body += [
        "<h2>Forecast vs actual</h2>",
        f"<figure>{forecast_svg(view)}</figure>",
        html_table(view.metrics),
        "<h2>Capacity vs demand</h2>",
        f"<figure>{capacity_svg(view)}</figure>",
        html_table(view.approaches),
        f"<p><strong>{escape(view.dominance)}</strong></p>",
        f"<p>{escape(view.choices)}</p>",
    ]
    body += [f"<p class='error'>error: {escape(line)}</p>" for line in view.failures]
    body += [f"<p><em>note:</em> {escape(note)}</p>" for note in view.notes]
    body += [
        f"<details><summary>{escape(view.folds.title)}</summary>",
        html_table(view.folds, caption=False),
        "</details>",
    ]
    return page(f"forescale backtest {view.service}", _STYLE, body)
