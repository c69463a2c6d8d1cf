"""The API's read-only web page (``GET /`` and ``GET /services/{name}``) as HTML: typed view
records in, one self-contained HTML string out (inline CSS, inline SVG, no JavaScript).

1. The index: one table row per configured service — its name (linking to its page), its
   mode, data freshness (newest sample and its age, ``fresh`` or ``stale``; the last
   collect and its error), the newest forecast's model and its stored live accuracy (or
   ``no forecast yet``), the next planned change (when, from → to) and the cost line
   when a price is configured. A service that could not be planned shows its one-line
   error in place of the change and the cost.
2. A service page: the same facts as a list, the plan report's plot (history, band,
   planned capacity, event windows), the capacity schedule, the planner's notes, the
   audit history (newest first: when, status, from → to, due, message) and one line about
   shadow mode.
3. An unknown service: a small page saying so, linking back.

Pure: the records carry the facts (times UTC, capacity in units); times are shown on the
display clock ``tz``. Every text is escaped here; the plot is trusted SVG markup made by
:func:`forescale.report.plan_plot.plan_svg`. Same records, same page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape
from urllib.parse import quote
from zoneinfo import ZoneInfo

from forescale.config.durations import format_duration
from forescale.forecaster.cost import CostSummary
from forescale.report.blocks import Table
from forescale.report.formatting import DASH, local_time, share
from forescale.report.html_blocks import html_table, inline, page
from forescale.report.plan_view import cost_line

__all__ = [
    "AuditRow",
    "NextChange",
    "ServicePage",
    "ServiceRow",
    "render_index",
    "render_not_found",
    "render_service_page",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class NextChange:
    """The next planned change: set capacity from ``from_units`` to ``to_units`` at ``at``
    (UTC)."""

    at: dt.datetime
    direction: str  # raise | lower
    from_units: int
    to_units: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceRow:
    """What the index says about one service (rule 1)."""

    name: str
    mode: str  # the mode it acts in now
    configured_mode: str  # settings.mode_of(service)
    last_sample: dt.datetime | None  # newest stored sample (UTC); None: no data
    last_collect: dt.datetime | None  # when the last collect ran (UTC)
    collect_error: str | None  # that collect's error
    stale: bool  # no sample, or the newest is older than settings.stale_after
    forecast: bool  # a forecast run is stored
    model: str | None = None  # the newest forecast run's model
    live_error: float | None = None  # stored live error ratio (0..1) of the previous run
    live_under: float | None = None  # its share of steps above the band (0..1)
    live_steps: int | None = None  # how many steps were judged
    current_units: int | None = None  # what the IaC holds (None: not planned)
    next_change: NextChange | None = None
    cost: CostSummary | None = None  # None: no price configured (or not planned)
    error: str | None = None  # why it could not be planned (one line)


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditRow:
    """One audit record of the service (``store.list_changes``)."""

    at: dt.datetime | None  # when it was recorded (UTC)
    status: str
    from_units: int
    to_units: int
    due_at: dt.datetime  # when the change was due (UTC)
    message: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ServicePage:
    """A service's page (rule 2); ``plot_svg`` and ``schedule`` are None when it was not
    planned."""

    row: ServiceRow
    plot_svg: str | None
    schedule: Table | None
    notes: tuple[str, ...]
    audit: tuple[AuditRow, ...]  # newest first
    shadow: str  # the shadow-mode line


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    "vertical-align:top;text-align:left}caption{text-align:left;font-weight:bold;padding:4px 0}"
    ".stale{color:#b31d28;font-weight:bold}.fresh{color:#22863a}.error{color:#b31d28}"
    ".muted{color:#666}svg{max-width:100%;height:auto}"
)
_INDEX_HEAD = ("service", "mode", "data", "forecast", "next change", "cost")


def render_index(rows: tuple[ServiceRow, ...], *, now: dt.datetime, tz: ZoneInfo) -> str:
    """The index page (rule 1) as of ``now``."""
    head = "".join(f"<th>{h}</th>" for h in _INDEX_HEAD)
    body = [
        "<h1>forescale</h1>",
        f"<p class='muted'>{escape(_as_of(now, tz))}</p>",
        f"<table><tr>{head}</tr>",
        *(_index_row(row, now, tz) for row in rows),
        "</table>",
    ]
    return page("forescale services", _STYLE, body)


def _index_row(row: ServiceRow, now: dt.datetime, tz: ZoneInfo) -> str:
    cells = [
        f"<td><a href='{_href(row.name)}'><strong>{escape(row.name)}</strong></a></td>",
        f"<td>{escape(_mode(row))}</td>",
        f"<td>{_data(row, now, tz)}</td>",
        f"<td>{_forecast(row)}</td>",
    ]
    if row.error is not None:
        cells.append(f"<td colspan='2' class='error'>{escape(_error(row.error))}</td>")
    else:
        cells.append(f"<td>{escape(_change(row, tz))}</td>")
        cells.append(f"<td>{_cost(row)}</td>")
    return f"<tr id='service-{escape(row.name)}'>{''.join(cells)}</tr>"


def render_service_page(service: ServicePage, *, now: dt.datetime, tz: ZoneInfo) -> str:
    """One service's page (rule 2) as of ``now``."""
    row = service.row
    body = [
        "<p><a href='/'>\u2190 all services</a></p>",
        f"<h1>{escape(row.name)}</h1>",
        f"<p class='muted'>{escape(_as_of(now, tz))}</p>",
        "<ul>",
        f"<li>Mode: {escape(_mode(row))}</li>",
        f"<li>Data: {_data(row, now, tz)}</li>",
        f"<li>Forecast: {_forecast(row)}</li>",
    ]
    if row.error is not None:
        body.append(f"<li class='error'>{escape(_error(row.error))}</li>")
    else:
        body.append(f"<li>Next change: {escape(_change(row, tz))}</li>")
        body.append(f"<li>Cost: {_cost(row)}</li>")
    body.append("</ul>")
    if service.plot_svg is not None:
        body.append(f"<figure>{service.plot_svg}</figure>")
    if service.schedule is not None:
        body.append(html_table(service.schedule))
    body += [f"<p><em>note:</em> {escape(note)}</p>" for note in service.notes]
    body.append("<h2>Audit history</h2>")
    body.append(_audit(service.audit, tz))
    body.append(f"<p>{escape(service.shadow)}</p>")
    return page(f"forescale: {row.name}", _STYLE, body)


def render_not_found(message: str) -> str:
    """Rule 3: the page of a service that is not configured."""
    body = [
        "<h1>Not found</h1>",
        f"<p class='error'>{escape(message)}</p>",
        "<p><a href='/'>\u2190 all services</a></p>",
    ]
    return page("forescale: not found", _STYLE, body)


# -- the wording -------------------------------------------------------------------------
def _href(name: str) -> str:
    return escape(f"/services/{quote(name, safe='')}")


def _as_of(now: dt.datetime, tz: ZoneInfo) -> str:
    return f"as of {local_time(now, tz)}; read-only, planned from the stored forecasts"


def _mode(row: ServiceRow) -> str:
    if row.mode == row.configured_mode:
        return row.mode
    return f"{row.mode} (configured {row.configured_mode}, promoted)"


def _error(error: str) -> str:
    return "error: " + " ".join(error.split())


def _data(row: ServiceRow, now: dt.datetime, tz: ZoneInfo) -> str:
    badge = "<span class='stale'>stale</span>" if row.stale else "<span class='fresh'>fresh</span>"
    if row.last_sample is None:
        text = "no data yet"
    else:
        age = format_duration(max(now - row.last_sample, dt.timedelta(0)))
        text = f"last sample {local_time(row.last_sample, tz)} ({age} ago)"
    if row.last_collect is not None:
        text += f"; last collect {local_time(row.last_collect, tz)}"
    if row.collect_error is not None:
        text += f" failed: {' '.join(row.collect_error.split())}"
    return f"{badge}, {escape(text)}"


def _forecast(row: ServiceRow) -> str:
    if not row.forecast or row.model is None:
        return "no forecast yet"
    text = row.model
    if row.live_steps is not None:
        error = DASH if row.live_error is None else share(row.live_error)
        under = DASH if row.live_under is None else share(row.live_under)
        text += f"; live error {error} over {row.live_steps} steps, {under} above the band"
    return escape(text)


def _change(row: ServiceRow, tz: ZoneInfo) -> str:
    if not row.forecast:
        return DASH
    change = row.next_change
    if change is None:
        units = DASH if row.current_units is None else str(row.current_units)
        return f"none: {units} units cover the forecast horizon"
    return (
        f"{change.direction} {change.from_units} \u2192 {change.to_units} at "
        f"{local_time(change.at, tz)}"
    )


def _cost(row: ServiceRow) -> str:
    if row.cost is None:
        return "<span class='muted'>no price configured</span>" if row.forecast else DASH
    return inline(cost_line(row.cost).text)


def _audit(rows: tuple[AuditRow, ...], tz: ZoneInfo) -> str:
    if not rows:
        return "<p class='muted'>no change recorded</p>"
    head = "".join(f"<th>{h}</th>" for h in ("recorded", "status", "change", "due", "message"))
    lines = [f"<table><tr>{head}</tr>"]
    for r in rows:
        cells = (
            DASH if r.at is None else local_time(r.at, tz),
            r.status,
            f"{r.from_units} \u2192 {r.to_units}",
            local_time(r.due_at, tz),
            r.message,
        )
        lines.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)
