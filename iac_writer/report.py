"""The dry-run diff report: what would change, when, and why.

Four renderings of one :class:`PlanReport`: ``text`` (rich, for a terminal), ``markdown``,
``html`` (with a plot: history, forecast band, capacity schedule, event markers) and
``json`` (stable, documented in ``docs/report-json.md``; other tools read it).
Rendering is pure apart from writing to the given console.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import math
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from config.durations import format_duration
from forecaster.explain import Peak, daily_peaks, effects_in_horizon, percent
from forecaster.types import CapacityPlan, CapacityPolicy, CapacityStep, Forecast
from iac_writer.target import Edit

REPORT_SCHEMA_VERSION = 1
Format = Literal["text", "markdown", "html", "json"]


@dataclass(frozen=True, kw_only=True, slots=True)
class HistorySummary:
    start: dt.datetime
    end: dt.datetime  # last observed sample at or before 'now'
    points: int  # observed samples used
    coverage: float  # share of grid slots with a sample
    step: dt.timedelta


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceReport:
    """Everything the report says about one service."""

    name: str
    source: str
    history: HistorySummary
    recent_history: pd.DataFrame  # ds, y: the last days before 'now', for the plot
    forecast: Forecast
    plan: CapacityPlan
    policy: CapacityPolicy
    observed_demand: float | None
    data_fresh: bool
    var_file: str
    address: str
    next_step: CapacityStep | None
    change: Edit | None
    forecast_run_id: int | None = None
    notes: tuple[str, ...] = ()
    # which candidate model plans capacity and why (forescale.pipeline.choice_json)
    model_choice: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceFailure:
    name: str
    error: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanReport:
    as_of: dt.datetime  # the 'now' the plan was made for (UTC)
    mode: str
    display_timezone: str
    services: tuple[ServiceReport, ...]
    failures: tuple[ServiceFailure, ...] = ()

    @property
    def has_changes(self) -> bool:
        return any(s.change is not None and s.change.diff for s in self.services)


# ---------------------------------------------------------------------------------------
# shared wording


def _tz(report: PlanReport) -> ZoneInfo:
    return ZoneInfo(report.display_timezone)


def fmt_time(when: dt.datetime, tz: ZoneInfo, *, with_date: bool = True) -> str:
    local = when.astimezone(tz)
    return local.strftime("%a %Y-%m-%d %H:%M %Z" if with_date else "%H:%M %Z")


def fmt_num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _peaks(service: ServiceReport, tz: ZoneInfo) -> tuple[Peak, ...]:
    return daily_peaks(service.forecast, tz)


def _headline(service: ServiceReport, tz: ZoneInfo) -> str:
    if service.next_step is None:
        units = service.plan.current_units
        return f"no change: {units} unit{'s' if units != 1 else ''} covers the forecast horizon"
    step = service.next_step
    return (
        f"{step.direction} {step.from_units} \u2192 {step.units} units at {fmt_time(step.at, tz)}"
    )


def _sentences(service: ServiceReport) -> list[str]:
    lines = []
    if not service.data_fresh:
        lines.append("metrics are stale or unavailable: forescale will not scale in on this data")
    lines.extend(service.plan.notes)
    lines.extend(service.forecast.notes)
    lines.extend(service.notes)
    return lines


# ---------------------------------------------------------------------------------------
# text (rich)


def render_text(report: PlanReport, console: Console) -> None:
    """Print the report for a terminal."""
    tz = _tz(report)
    console.print(
        f"[bold]forescale plan[/bold] as of {fmt_time(report.as_of, tz)} — mode "
        f"[bold]{report.mode}[/bold]"
    )
    for service in report.services:
        console.print()
        console.rule(f"[bold]{escape(service.name)}[/bold]: {escape(_headline(service, tz))}")
        hist = service.history
        console.print(
            f"history  {escape(service.source)}: {fmt_time(hist.start, tz)} \u2192 "
            f"{fmt_time(hist.end, tz)}, {hist.points:,} samples every "
            f"{format_duration(hist.step)}, {hist.coverage:.1%} coverage"
        )
        fc = service.forecast
        console.print(
            f"forecast {fc.model}, {format_duration(fc.resolution)} steps, "
            f"{fc.interval_width:.0%} band, until "
            f"{fmt_time(pd.Timestamp(fc.frame['ds'].iloc[-1]).to_pydatetime(), tz)}"
        )
        peaks = Table(title="Forecast peaks", title_justify="left", show_edge=False)
        peaks.add_column("when")
        peaks.add_column("demand", justify="right")
        peaks.add_column("upper band", justify="right")
        peaks.add_column("driven by")
        for peak in _peaks(service, tz):
            peaks.add_row(
                fmt_time(peak.at, tz),
                fmt_num(peak.yhat),
                fmt_num(peak.yhat_upper),
                escape("; ".join(d.label for d in peak.drivers[:4]) or "trend"),
            )
        console.print(peaks)
        effects = effects_in_horizon(fc)
        if effects:
            console.print("[bold]Calendar effects in the horizon[/bold]")
            for effect in effects:
                console.print(f"  {escape(_effect_line(effect, tz))}")
        console.print(
            f"capacity {service.plan.current_units} units now ({escape(service.var_file)}: "
            f"{escape(service.address)}); {service.policy.capacity_per_unit:g} per unit; "
            f"bounds [{service.policy.min_units}, {service.policy.max_units}]; lead time "
            f"{format_duration(service.policy.lead_time)}; observed demand "
            f"{_observed(service)}"
        )
        schedule = Table(title="Capacity schedule", title_justify="left", show_edge=False)
        schedule.add_column("apply at")
        schedule.add_column("change")
        schedule.add_column("why")
        for step in service.plan.steps:
            schedule.add_row(
                fmt_time(step.at, tz),
                f"{step.from_units} \u2192 {step.units}",
                escape(step.reason),
            )
        if not service.plan.steps:
            schedule.add_row("\u2014", "none", "current capacity covers the horizon")
        console.print(schedule)
        for line in _sentences(service):
            console.print(f"[yellow]note[/yellow] {escape(line)}")
        if service.change is not None and service.change.diff:
            console.print("[bold]Diff for the next change[/bold] (not written: dry-run)")
            for line in service.change.diff.splitlines():
                style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
                console.print(escape(line), style=style or None, highlight=False)
        else:
            console.print("no variable file change is due")
    for failure in report.failures:
        console.print()
        console.rule(f"[bold red]{escape(failure.name)}[/bold red]: not planned")
        console.print(f"[red]error[/red] {escape(failure.error)}")
    console.print()
    console.print("dry-run: nothing was written to any Terraform file.")


def _observed(service: ServiceReport) -> str:
    if service.observed_demand is None:
        return "unknown"
    return fmt_num(service.observed_demand)


def _effect_line(effect: Any, tz: ZoneInfo) -> str:
    source = {
        "expected_uplift": "expected uplift from the calendar (first occurrence)",
        "learned": f"learned from {effect.occurrences_in_history} past occurrence(s)",
        "holiday": "country holiday, learned from history",
    }[effect.source]
    return (
        f"{effect.name} {percent(effect.effect)}: {fmt_time(effect.start, tz)} \u2192 "
        f"{fmt_time(effect.end, tz)}, {source}"
    )


# ---------------------------------------------------------------------------------------
# markdown


def render_markdown(report: PlanReport) -> str:
    tz = _tz(report)
    out = [f"# forescale plan as of {fmt_time(report.as_of, tz)} ({report.mode})", ""]
    for service in report.services:
        hist, fc = service.history, service.forecast
        out += [f"## {service.name}: {_headline(service, tz)}", ""]
        out.append(
            f"- History: {service.source}, {fmt_time(hist.start, tz)} \u2192 "
            f"{fmt_time(hist.end, tz)}, {hist.points:,} samples, {hist.coverage:.1%} coverage"
        )
        out.append(
            f"- Forecast: {fc.model}, {format_duration(fc.resolution)} steps, "
            f"{fc.interval_width:.0%} band"
        )
        out.append(
            f"- Capacity: {service.plan.current_units} units now (`{service.var_file}`: "
            f"`{service.address}`), {service.policy.capacity_per_unit:g} per unit, bounds "
            f"[{service.policy.min_units}, {service.policy.max_units}], lead time "
            f"{format_duration(service.policy.lead_time)}, observed demand {_observed(service)}"
        )
        out += ["", "| peak | demand | upper band | driven by |", "|---|---:|---:|---|"]
        for peak in _peaks(service, tz):
            drivers = "; ".join(d.label for d in peak.drivers[:4]) or "trend"
            out.append(
                f"| {fmt_time(peak.at, tz)} | {fmt_num(peak.yhat)} | "
                f"{fmt_num(peak.yhat_upper)} | {drivers} |"
            )
        effects = effects_in_horizon(fc)
        if effects:
            out += ["", "Calendar effects in the horizon:", ""]
            out += [f"- {_effect_line(e, tz)}" for e in effects]
        out += ["", "| apply at | change | why |", "|---|---|---|"]
        for step in service.plan.steps:
            out.append(
                f"| {fmt_time(step.at, tz)} | {step.from_units} \u2192 {step.units} | "
                f"{step.reason} |"
            )
        if not service.plan.steps:
            out.append("| \u2014 | none | current capacity covers the horizon |")
        notes = _sentences(service)
        if notes:
            out += [""] + [f"> note: {n}" for n in notes]
        if service.change is not None and service.change.diff:
            out += ["", "Diff for the next change (not written: dry-run):", "", "```diff"]
            out += [service.change.diff.rstrip("\n"), "```"]
        out.append("")
    for failure in report.failures:
        out += [f"## {failure.name}: not planned", "", f"error: {failure.error}", ""]
    out.append("dry-run: nothing was written to any Terraform file.")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------
# json


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)


def report_dict(report: PlanReport) -> dict[str, Any]:
    """The report as plain JSON-able data (schema in docs/report-json.md)."""
    tz = _tz(report)
    services = []
    for service in report.services:
        fc = service.forecast
        services.append(
            {
                "name": service.name,
                "source": service.source,
                "history": {
                    "start": _iso(service.history.start),
                    "end": _iso(service.history.end),
                    "points": service.history.points,
                    "coverage": round(service.history.coverage, 6),
                    "step_seconds": int(service.history.step.total_seconds()),
                },
                "forecast": {
                    "model": fc.model,
                    "forecast_run_id": service.forecast_run_id,
                    "resolution_seconds": int(fc.resolution.total_seconds()),
                    "interval_width": fc.interval_width,
                    "start": _iso(pd.Timestamp(fc.frame["ds"].iloc[0]).to_pydatetime()),
                    "end": _iso(pd.Timestamp(fc.frame["ds"].iloc[-1]).to_pydatetime()),
                    "peaks": [
                        {
                            "at": _iso(p.at),
                            "yhat": _finite(p.yhat),
                            "yhat_upper": _finite(p.yhat_upper),
                            "drivers": [
                                {
                                    "component": d.component,
                                    "effect": _finite(d.effect),
                                    "label": d.label,
                                }
                                for d in p.drivers
                            ],
                        }
                        for p in _peaks(service, tz)
                    ],
                    "calendar_effects": [
                        {
                            "name": e.name,
                            "start": _iso(e.start),
                            "end": _iso(e.end),
                            "effect": _finite(e.effect),
                            "source": e.source,
                            "occurrences_in_history": e.occurrences_in_history,
                        }
                        for e in effects_in_horizon(fc)
                    ],
                    "notes": list(fc.notes),
                },
                "capacity": {
                    "current_units": service.plan.current_units,
                    "capacity_per_unit": service.policy.capacity_per_unit,
                    "min_units": service.policy.min_units,
                    "max_units": service.policy.max_units,
                    "lead_time_seconds": int(service.policy.lead_time.total_seconds()),
                    "observed_demand": _finite(service.observed_demand),
                    "data_fresh": service.data_fresh,
                    "var_file": service.var_file,
                    "address": service.address,
                },
                "model_choice": service.model_choice,
                "schedule": [_step_dict(s) for s in service.plan.steps],
                "next_change": None if service.next_step is None else _step_dict(service.next_step),
                "diff": service.change.diff if service.change is not None else "",
                "notes": _sentences(service),
            }
        )
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "as_of": _iso(report.as_of),
        "mode": report.mode,
        "display_timezone": report.display_timezone,
        "written": False,
        "services": services,
        "failures": [{"name": f.name, "error": f.error} for f in report.failures],
    }


def _step_dict(step: CapacityStep) -> dict[str, Any]:
    return {
        "at": _iso(step.at),
        "direction": step.direction,
        "from_units": step.from_units,
        "units": step.units,
        "serves_at": _iso(step.serves_at),
        "demand": _finite(step.demand),
        "reason": step.reason,
        "constraints": list(step.constraints),
    }


def render_json(report: PlanReport) -> str:
    return json.dumps(report_dict(report), indent=2, sort_keys=False, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------------------
# html


def _plot_svg(service: ServiceReport, tz: ZoneInfo) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fc = service.forecast.frame
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    try:
        hist = service.recent_history

        def local(series: pd.Series) -> Any:
            return series.dt.tz_convert(tz).dt.tz_localize(None)

        def wall(when: dt.datetime) -> Any:
            return pd.Timestamp(when).tz_convert(tz).tz_localize(None)

        if not hist.empty:
            ax.plot(local(hist["ds"]), hist["y"], color="#444444", lw=1, label="history")
        ax.fill_between(
            local(fc["ds"]),
            fc["yhat_lower"],
            fc["yhat_upper"],
            color="#1f77b4",
            alpha=0.2,
            label=f"forecast {service.forecast.interval_width:.0%} band",
        )
        ax.plot(local(fc["ds"]), fc["yhat"], color="#1f77b4", lw=1.2, label="forecast")
        desired = service.plan.desired
        if not desired.empty:
            ax.step(
                local(desired["ds"]),
                desired["units"] * service.policy.capacity_per_unit,
                where="post",
                color="#d62728",
                lw=1.5,
                label="planned capacity (units \u00d7 per-unit)",
            )
        for effect in effects_in_horizon(service.forecast):
            ax.axvspan(
                wall(effect.start),
                wall(effect.end),
                color="#ff7f0e",
                alpha=0.12,
            )
            ax.annotate(
                f"{effect.name} {percent(effect.effect)}",
                xy=(wall(effect.start), 0),
                xycoords=("data", "axes fraction"),
                xytext=(3, 5),
                textcoords="offset points",
                fontsize=8,
                color="#b35900",
            )
        ax.axvline(
            wall(service.plan.now),
            color="black",
            ls="--",
            lw=0.8,
        )
        ax.set_ylabel("demand")
        ax.set_xlabel(f"time ({tz.key})")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def render_html(report: PlanReport) -> str:
    """A self-contained HTML page: the markdown content plus one plot per service."""
    tz = _tz(report)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>forescale plan {html.escape(_iso(report.as_of))}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "pre{background:#f6f8fa;padding:1em}.add{color:#22863a}.del{color:#b31d28}</style>",
        "</head><body>",
        f"<h1>forescale plan as of {html.escape(fmt_time(report.as_of, tz))} "
        f"({html.escape(report.mode)})</h1>",
    ]
    for service in report.services:
        parts.append(f"<h2>{html.escape(service.name)}: {html.escape(_headline(service, tz))}</h2>")
        parts.append(f"<figure>{_plot_svg(service, tz)}</figure>")
        parts.append(
            "<table><tr><th>peak</th><th>demand</th><th>upper band</th><th>driven by</th></tr>"
        )
        for peak in _peaks(service, tz):
            drivers = "; ".join(d.label for d in peak.drivers[:4]) or "trend"
            parts.append(
                f"<tr><td>{html.escape(fmt_time(peak.at, tz))}</td><td>{fmt_num(peak.yhat)}</td>"
                f"<td>{fmt_num(peak.yhat_upper)}</td><td>{html.escape(drivers)}</td></tr>"
            )
        parts.append("</table>")
        effects = effects_in_horizon(service.forecast)
        if effects:
            parts.append("<p>Calendar effects in the horizon:</p><ul>")
            parts += [f"<li>{html.escape(_effect_line(e, tz))}</li>" for e in effects]
            parts.append("</ul>")
        parts.append("<table><tr><th>apply at</th><th>change</th><th>why</th></tr>")
        for step in service.plan.steps:
            parts.append(
                f"<tr><td>{html.escape(fmt_time(step.at, tz))}</td>"
                f"<td>{step.from_units} \u2192 {step.units}</td>"
                f"<td>{html.escape(step.reason)}</td></tr>"
            )
        parts.append("</table>")
        for note in _sentences(service):
            parts.append(f"<p><em>note:</em> {html.escape(note)}</p>")
        if service.change is not None and service.change.diff:
            lines = []
            for line in service.change.diff.splitlines():
                css = "add" if line.startswith("+") else "del" if line.startswith("-") else ""
                lines.append(f"<span class='{css}'>{html.escape(line)}</span>")
            parts.append("<p>Diff for the next change (not written: dry-run):</p>")
            parts.append("<pre>" + "\n".join(lines) + "</pre>")
    for failure in report.failures:
        parts.append(f"<h2>{html.escape(failure.name)}: not planned</h2>")
        parts.append(f"<p>error: {html.escape(failure.error)}</p>")
    parts.append("<p>dry-run: nothing was written to any Terraform file.</p></body></html>")
    return "\n".join(parts) + "\n"


def render(report: PlanReport, fmt: Format, console: Console | None = None) -> str:
    """Render to a string (``text`` renders through a recording console)."""
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report)
    target = console or Console(file=io.StringIO(), width=140, record=True)
    render_text(report, target)
    return target.export_text() if target.record else ""
