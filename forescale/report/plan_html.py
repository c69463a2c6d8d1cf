"""The plan report as one self-contained HTML page: lays out a :class:`PlanView`.

Per service: the headline, the history / forecast / capacity summary, a plot (history,
forecast band, planned capacity, event windows), the peaks table, the calendar effects,
the schedule table, the notes and the diff. Nothing is fetched from the network.
"""

from __future__ import annotations

from html import escape

from forescale.report.formatting import iso_utc
from forescale.report.html_blocks import html_table, inline, page
from forescale.report.plan_plot import plan_svg
from forescale.report.plan_view import PlanView, ServiceView

__all__ = ["render_plan_html"]

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
    "caption{text-align:left;font-weight:bold;padding:4px 0}"
    "pre{background:#f6f8fa;padding:1em}.add{color:#22863a}.del{color:#b31d28}"
)
_DIFF_CLASS = {"add": "add", "delete": "del", "context": ""}


def render_plan_html(view: PlanView) -> str:
    body = [f"<h1>{inline(view.title, strong=False)}</h1>"]
    for service in view.services:
        body += _service(service, view)
    for failure in view.failures:
        body.append(f"<h2>{inline(failure.title, strong=False)}</h2>")
        body.append(f"<p>error: {escape(failure.failure.error)}</p>")
    body.append(f"<p>{escape(view.footer)}</p>")
    return page(f"forescale plan {iso_utc(view.report.as_of)}", _STYLE, body)


def _service(service: ServiceView, view: PlanView) -> list[str]:
    parts = [f"<h2>{inline(service.title, strong=False)}</h2>", "<ul>"]
    parts += [
        f"<li>{escape(line.label.capitalize())}: {inline(line.text)}</li>"
        for line in service.summary
    ]
    parts += ["</ul>", f"<figure>{plan_svg(service, view.timezone)}</figure>"]
    parts.append(html_table(service.peak_table))
    if service.effects:
        parts.append(f"<p>{escape(service.effects_title)}:</p><ul>")
        parts += [f"<li>{escape(effect.line)}</li>" for effect in service.effects]
        parts.append("</ul>")
    parts.append(html_table(service.schedule))
    parts += [f"<p><em>note:</em> {escape(note)}</p>" for note in service.notes]
    if service.diff.lines:
        lines = [
            f"<span class='{_DIFF_CLASS[line.kind]}'>{escape(line.text)}</span>"
            for line in service.diff.lines
        ]
        parts.append(f"<p>{inline(service.diff.title)}:</p>")
        parts.append("<pre>" + "\n".join(lines) + "</pre>")
    else:
        parts.append(f"<p>{inline(service.diff.title)}</p>")
    return parts
