"""The backtest report: what a rolling-origin backtest says, for people and for tools.

Renderings of one :class:`forecaster.backtest.BacktestResult`: ``text`` (rich, for a
terminal), ``html`` (one self-contained page: the same tables and two SVG plots, no network
resources) and ``json`` (schema ``forescale.backtest/v1``, documented field by field in
``docs/backtest-json.md``; other tools read it). :func:`write_schedule_csv` writes the
``--schedule-out`` file, from which the JSON's under-provisioned shares can be recomputed.

Times are UTC in the JSON and the CSV (ISO 8601 with ``Z``) and in the display timezone
for people. Demand is in the service's own unit (e.g. requests/s), capacity in units.
Rendering is pure apart from writing to the given console; the CSV is written atomically.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import html
import io
import json
import math
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePath
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from config.durations import format_duration
from forecaster.backtest import (
    ApproachOutcome,
    BacktestResult,
    FoldResult,
    ModelMetrics,
    dominated_by,
)
from forescale.errors import ForescaleError
from iac_writer.report import fmt_time

__all__ = [
    "BACKTEST_SCHEMA",
    "SCHEDULE_COLUMNS",
    "backtest_json",
    "render_backtest",
    "render_backtest_html",
    "render_backtest_text",
    "schedule_columns",
    "write_schedule_csv",
]

BACKTEST_SCHEMA = "forescale.backtest/v1"
Format = Literal["json", "text", "html"]

FORESCALE = "forescale"
STATIC = "static_peak"
UNITS_PREFIX = "units_"  # schedule column of a baseline: units_<approach name>
# The schedule CSV starts with these, in this order; the baselines' unit columns follow.
SCHEDULE_COLUMNS = ("ts", "fold", "demand", "forecast", "upper", "units")

# One-line descriptions of the approaches run_backtest simulates; an approach not listed
# here is shown by its name alone.
_DESCRIPTIONS = {
    FORESCALE: "forecast with the headroom its record asks for, planned ahead, "
    "floored at observed demand",
    "seasonal_naive_x1_2": "demand one week earlier \u00d71.2, same planner",
    "reactive": "target tracking on observed demand",
    "reactive_headroom_20": "target tracking with 20 % headroom",
    STATIC: "the units the peak needs, all the time",
}

_PALETTE = ("#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


# ---------------------------------------------------------------------------------------
# json


def backtest_json(
    result: BacktestResult, *, service: str, source: str, settings: Mapping[str, object]
) -> dict[str, Any]:
    """The backtest as plain JSON-able data (schema in docs/backtest-json.md).

    ``settings`` is echoed under ``"settings"`` with its keys sorted; durations become
    ``{"seconds", "text"}``, datetimes UTC ISO strings, non-finite floats ``null``. Floats
    are not rounded, so the shares can be recomputed exactly from the schedule CSV.
    """
    own = _approach(result, FORESCALE)
    start, end = _span(result)
    return {
        "schema": BACKTEST_SCHEMA,
        "service": service,
        "source": source,
        "start": None if start is None else _iso(start),
        "end": None if end is None else _iso(end),
        "horizon": _duration(result.horizon),
        "sim_step": _duration(result.sim_step),
        "capacity_per_unit": _finite(result.capacity_per_unit),
        "capacity_per_unit_source": result.capacity_per_unit_source,
        "settings": _json_mapping(settings, "settings"),
        "folds": [_fold_dict(f, result.horizon) for f in result.folds],
        "metrics": [_metrics_dict(m) for m in result.metrics],
        "approaches": [_approach_dict(a) for a in result.approaches],
        "forescale_vs": [
            {
                "baseline": a.name,
                "unit_hours_ratio": _ratio(own.unit_hours, a.unit_hours) if own else None,
                "under_share_diff": _finite(own.under_share - a.under_share) if own else None,
            }
            for a in result.approaches
            if a.name != FORESCALE
        ],
        "dominated_by": dominated_by(result) if own else [],
        "notes": list(result.notes),
    }


def _fold_dict(fold: FoldResult, horizon: dt.timedelta) -> dict[str, Any]:
    return {
        "fold": fold.fold,
        "cutoff": _iso(fold.cutoff),
        "end": _iso(fold.cutoff + horizon),
        "model": fold.model,
        "band_factor": _finite(fold.band_factor),
        "reason": fold.reason,
        "error": fold.error,
        "metrics": [_metrics_dict(m) for m in fold.metrics],
    }


def _metrics_dict(m: ModelMetrics) -> dict[str, Any]:
    return {
        "model": m.model,
        "steps": int(m.steps),
        "mape": _finite(m.mape),
        "smape": _finite(m.smape),
        "mase": _finite(m.mase),
        "coverage": _finite(m.coverage),
        "under_band": _finite(m.under_band),
    }


def _approach_dict(a: ApproachOutcome) -> dict[str, Any]:
    return {
        "name": a.name,
        "steps": int(a.steps),
        "under_share": _finite(a.under_share),
        "unit_hours": _finite(a.unit_hours),
        "vs_static": _finite(a.vs_static),
        "mean_units": _finite(a.mean_units),
    }


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _ratio(numerator: float, denominator: float) -> float | None:
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator <= 0:
        return None
    return numerator / denominator


def _duration(span: dt.timedelta) -> dict[str, Any]:
    seconds = span.total_seconds()
    return {
        "seconds": int(seconds) if seconds.is_integer() else seconds,
        "text": format_duration(span),
    }


def _json_mapping(values: Mapping[str, object], where: str) -> dict[str, Any]:
    return {str(k): _json_value(values[k], f"{where}.{k}") for k in sorted(values, key=str)}


def _json_value(value: object, where: str) -> Any:
    """``value`` as JSON data; a type with no sensible JSON form is a caller's bug."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        return _json_value(value.item(), where)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dt.timedelta):
        return _duration(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise TypeError(f"{where}: naive datetime {value!r}; pass an aware one")
        return _iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Enum):
        return _json_value(value.value, where)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return _json_mapping(value, where)
    if isinstance(value, set | frozenset):
        return [_json_value(v, where) for v in sorted(value, key=str)]
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{where}: {type(value).__name__} has no JSON form in the backtest report")


def _render_json(
    result: BacktestResult, *, service: str, source: str, settings: Mapping[str, object]
) -> str:
    data = backtest_json(result, service=service, source=source, settings=settings)
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------------------
# shared wording


@dataclass(frozen=True, kw_only=True, slots=True)
class _Choices:
    """How often the record chose ``model`` and how far it widened its band on average."""

    model: str
    folds: int
    mean_band_factor: float


def _approach(result: BacktestResult, name: str) -> ApproachOutcome | None:
    return next((a for a in result.approaches if a.name == name), None)


def _span(result: BacktestResult) -> tuple[dt.datetime | None, dt.datetime | None]:
    if not result.folds:
        return None, None
    cutoffs = [f.cutoff for f in result.folds]
    return min(cutoffs), max(cutoffs) + result.horizon


def _choices(result: BacktestResult) -> list[_Choices]:
    factors: dict[str, list[float]] = {}
    for fold in result.folds:
        if fold.model is not None and fold.error is None:
            factors.setdefault(fold.model, []).append(fold.band_factor)
    out = [
        _Choices(model=m, folds=len(v), mean_band_factor=float(np.mean(v)))
        for m, v in factors.items()
    ]
    return sorted(out, key=lambda c: (-c.folds, c.model))


def _choices_line(result: BacktestResult) -> str:
    parts = [
        f"{c.model} {c.folds} of {len(result.folds)} folds "
        f"(mean band factor \u00d7{c.mean_band_factor:.2f})"
        for c in _choices(result)
    ]
    failed = sum(1 for f in result.folds if f.error is not None or f.model is None)
    if failed:
        parts.append(f"failed {failed} of {len(result.folds)} folds")
    return "; ".join(parts) if parts else "no folds"


def _dominance_line(result: BacktestResult) -> str:
    if _approach(result, FORESCALE) is None:
        return "forescale was not simulated"
    worse = dominated_by(result)
    if worse:
        return (
            f"forescale is dominated by {', '.join(worse)}: each is both cheaper (unit-hours) "
            "and less often under-provisioned"
        )
    return (
        "forescale is not dominated: no baseline is both cheaper (unit-hours) and less often "
        "under-provisioned"
    )


def _headline(result: BacktestResult, *, source: str, tz: ZoneInfo) -> tuple[str, str]:
    """Two lines: what was backtested over which span, and the unit size."""
    count = len(result.folds)
    when = (
        f"cutoffs {fmt_time(min(f.cutoff for f in result.folds), tz)} \u2192 "
        f"{fmt_time(max(f.cutoff for f in result.folds), tz)}"
        if result.folds
        else "no cutoffs"
    )
    history = (
        f"{source}: {count} fold{'s' if count != 1 else ''}, {when}, horizon "
        f"{format_duration(result.horizon)}, capacity simulated every "
        f"{format_duration(result.sim_step)}"
    )
    cpu = (
        f"capacity per unit {_num(result.capacity_per_unit)} "
        f"({_cpu_source(result.capacity_per_unit_source)})"
    )
    return history, cpu


def _cpu_source(source: str) -> str:
    if source == "given":
        return "given"
    if source.startswith("peak/"):
        return f"peak evaluated demand / {source.removeprefix('peak/')}"
    return source


def _settings_line(settings: Mapping[str, object]) -> str:
    return ", ".join(f"{k} {_setting_text(settings[k])}" for k in sorted(settings, key=str))


def _setting_text(value: object) -> str:
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return _iso(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(_setting_text(v) for v in value) + "]"
    return str(value)


def _num(value: float) -> str:
    if not math.isfinite(value):
        return "\u2014"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _pct(value: float) -> str:
    return f"{value:.1%}" if math.isfinite(value) else "\u2014"


def _times(value: float) -> str:
    return f"\u00d7{value:.2f}" if math.isfinite(value) else "\u2014"


def _metric_rows(result: BacktestResult) -> list[tuple[str, ...]]:
    return [
        (
            m.model,
            f"{m.steps:,}",
            _num(m.mape),
            _num(m.smape),
            _num(m.mase),
            _pct(m.coverage),
            _pct(m.under_band),
        )
        for m in result.metrics
    ]


_METRIC_HEADERS = ("model", "steps", "MAPE %", "sMAPE %", "MASE", "band coverage", "above band")


def _approach_rows(result: BacktestResult) -> list[tuple[str, ...]]:
    return [
        (
            a.name,
            _pct(a.under_share),
            _num(a.unit_hours),
            _times(a.vs_static),
            _num(a.mean_units),
            _DESCRIPTIONS.get(a.name, ""),
        )
        for a in result.approaches
    ]


_APPROACH_HEADERS = (
    "approach",
    "under-provisioned",
    "unit-hours",
    "\u00d7 static",
    "mean units",
    "what",
)
_LEFT = {"model", "approach", "what"}


def _steps(result: BacktestResult) -> int:
    return max((a.steps for a in result.approaches), default=0)


def _failures(result: BacktestResult, tz: ZoneInfo) -> list[str]:
    return [
        f"fold {f.fold} (cutoff {fmt_time(f.cutoff, tz)}) failed: {f.error or 'no model'}"
        for f in result.folds
        if f.error is not None or f.model is None
    ]


# ---------------------------------------------------------------------------------------
# text (rich)


def render_backtest_text(
    result: BacktestResult,
    console: Console,
    *,
    service: str,
    source: str,
    settings: Mapping[str, object],
    timezone: str,
) -> None:
    """Print the backtest for a terminal; times in ``timezone`` (an IANA name)."""
    tz = ZoneInfo(timezone)
    history, cpu = _headline(result, source=source, tz=tz)
    console.print(f"[bold]forescale backtest[/bold] \u2014 [bold]{escape(service)}[/bold]")
    console.print(f"history  {escape(history)}")
    console.print(escape(cpu))
    if settings:
        console.print(f"settings {escape(_settings_line(settings))}")
    console.print()
    metrics = Table(title="Forecast accuracy over all folds", title_justify="left", show_edge=False)
    for header in _METRIC_HEADERS:
        metrics.add_column(header, justify="left" if header in _LEFT else "right")
    for row in _metric_rows(result):
        metrics.add_row(*(escape(c) for c in row))
    if not result.metrics:
        metrics.add_row("\u2014", "0", *("\u2014",) * 5)
    console.print(metrics)
    console.print()
    capacity = Table(
        title=f"Capacity over {_steps(result):,} simulated steps",
        title_justify="left",
        show_edge=False,
    )
    for header in _APPROACH_HEADERS:
        capacity.add_column(header, justify="left" if header in _LEFT else "right")
    for row in _approach_rows(result):
        capacity.add_row(*(escape(c) for c in row))
    console.print(capacity)
    console.print(escape(_dominance_line(result)))
    console.print(f"model choices: {escape(_choices_line(result))}")
    for line in _failures(result, tz):
        console.print(f"[red]error[/red] {escape(line)}")
    for note in result.notes:
        console.print(f"[yellow]note[/yellow] {escape(note)}")


# ---------------------------------------------------------------------------------------
# html


def _utc_naive(values: Iterable[Any]) -> np.ndarray:
    """UTC wall times as naive datetime64 (matplotlib reads them as UTC)."""
    index = pd.DatetimeIndex(pd.Series(values))
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.to_numpy()


def _svg(draw: Any, tz: ZoneInfo) -> str:
    """Run ``draw(ax)`` on a fresh figure and return it as an ``<svg>`` element."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    # A fixed hash salt keeps the SVG ids (and so the page) identical run to run.
    with plt.rc_context({"svg.hashsalt": "forescale-backtest"}):
        fig, ax = plt.subplots(figsize=(10, 3.6), dpi=100)
        try:
            draw(ax)
            # Times are plotted as UTC and labelled in the display timezone by the axis,
            # so a DST change does not fold the line back on itself.
            locator = mdates.AutoDateLocator(tz=tz)  # type: ignore[no-untyped-call]
            formatter = mdates.ConciseDateFormatter(locator, tz=tz)  # type: ignore[no-untyped-call]
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(formatter)
            ax.set_xlabel(f"time ({tz.key})")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                # Above the axes: inside, it would hide the peaks it is about.
                ax.legend(
                    loc="lower left", bbox_to_anchor=(0, 1.01), fontsize=8, ncol=3, frameon=False
                )
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
        finally:
            plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _forecast_svg(result: BacktestResult, tz: ZoneInfo) -> str:
    points = result.points

    def draw(ax: Any) -> None:
        needed = ("ds", "fold", "actual")
        if points.empty or any(c not in points.columns for c in needed):
            ax.text(0.5, 0.5, "no fold was scored", ha="center", transform=ax.transAxes)
            return
        series = [
            ("actual", "actual", "#444444", "-"),
            (f"{FORESCALE}:yhat", "forescale forecast", "#1f77b4", "-"),
            (
                f"{FORESCALE}:upper",
                "forescale upper band (planned on, scaled by the record)",
                "#1f77b4",
                "--",
            ),
        ]
        for k, (_, frame) in enumerate(points.groupby("fold", sort=True)):
            x = _utc_naive(frame["ds"])
            for column, label, color, style in series:
                if column in frame.columns:
                    ax.plot(
                        x,
                        frame[column].to_numpy(dtype=float),
                        color=color,
                        ls=style,
                        lw=1.0,
                        label=label if k == 0 else None,
                    )
        for fold in result.folds:
            ax.axvline(_utc_naive([fold.cutoff])[0], color="black", ls=":", lw=0.6)
        ax.set_ylabel("demand")

    return _svg(draw, tz)


def _capacity_svg(result: BacktestResult, tz: ZoneInfo) -> str:
    schedule = result.schedule

    def draw(ax: Any) -> None:
        if schedule.empty or result.capacity_per_unit <= 0:
            ax.text(0.5, 0.5, "no step was simulated", ha="center", transform=ax.transAxes)
            return
        baselines = [c for c in schedule.columns if c.startswith(UNITS_PREFIX)]
        for k, (_, frame) in enumerate(schedule.groupby("fold", sort=True)):
            x = _utc_naive(frame["ts"])
            needed = frame["demand"].to_numpy(dtype=float) / result.capacity_per_unit
            first = k == 0
            ax.plot(
                x,
                needed,
                color="#444444",
                lw=1.0,
                label="units needed (demand / capacity per unit)" if first else None,
            )
            for j, column in enumerate(["units", *baselines]):
                name = FORESCALE if column == "units" else column.removeprefix(UNITS_PREFIX)
                ax.step(
                    x,
                    frame[column].to_numpy(dtype=float),
                    where="post",
                    color="#1f77b4" if j == 0 else _PALETTE[(j - 1) % len(_PALETTE)],
                    lw=1.6 if j == 0 else 1.0,
                    alpha=1.0 if j == 0 else 0.8,
                    zorder=3 if j == 0 else 2,
                    label=name if first else None,
                )
        ax.set_ylabel("units")

    return _svg(draw, tz)


def _html_table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fold_rows(result: BacktestResult, tz: ZoneInfo) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for fold in result.folds:
        own = next((m for m in fold.metrics if m.model == FORESCALE), None)
        rows.append(
            (
                str(fold.fold),
                fmt_time(fold.cutoff, tz),
                fold.model or "\u2014",
                _times(fold.band_factor) if fold.model else "\u2014",
                _num(own.smape) if own else "\u2014",
                _pct(own.under_band) if own else "\u2014",
                fold.error or fold.reason,
            )
        )
    return rows


def render_backtest_html(
    result: BacktestResult,
    *,
    service: str,
    source: str,
    settings: Mapping[str, object],
    timezone: str,
) -> str:
    """A self-contained HTML page: the text report's tables, the folds and two SVG plots."""
    tz = ZoneInfo(timezone)
    history, cpu = _headline(result, source=source, tz=tz)
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>forescale backtest {esc(service)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 8px}td{font-variant-numeric:tabular-nums}svg{max-width:100%;"
        "height:auto}.error{color:#b31d28}</style>",
        "</head><body>",
        f"<h1>forescale backtest \u2014 {esc(service)}</h1>",
        f"<p>{esc(history)}<br>{esc(cpu)}</p>",
    ]
    if settings:
        parts.append(f"<p>settings: {esc(_settings_line(settings))}</p>")
    parts += [
        "<h2>Forecast vs actual</h2>",
        f"<figure>{_forecast_svg(result, tz)}</figure>",
        "<h2>Forecast accuracy over all folds</h2>",
        _html_table(_METRIC_HEADERS, _metric_rows(result)),
        "<h2>Capacity vs demand</h2>",
        f"<figure>{_capacity_svg(result, tz)}</figure>",
        f"<p>{_steps(result):,} simulated steps.</p>",
        _html_table(_APPROACH_HEADERS, _approach_rows(result)),
        f"<p><strong>{esc(_dominance_line(result))}</strong></p>",
        f"<p>model choices: {esc(_choices_line(result))}</p>",
    ]
    parts += [f"<p class='error'>error: {esc(line)}</p>" for line in _failures(result, tz)]
    parts += [f"<p><em>note:</em> {esc(note)}</p>" for note in result.notes]
    parts += [
        "<details><summary>Folds</summary>",
        _html_table(
            (
                "fold",
                "cutoff",
                "model",
                "band",
                "forescale sMAPE %",
                "above band",
                "why / error",
            ),
            _fold_rows(result, tz),
        ),
        "</details>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------
# all formats


def render_backtest(
    result: BacktestResult,
    fmt: Format,
    *,
    service: str,
    source: str,
    settings: Mapping[str, object],
    timezone: str,
) -> str:
    """Render to a string (``text`` through a recording console 140 columns wide)."""
    if fmt == "json":
        return _render_json(result, service=service, source=source, settings=settings)
    if fmt == "html":
        return render_backtest_html(
            result, service=service, source=source, settings=settings, timezone=timezone
        )
    console = Console(file=io.StringIO(), width=140, record=True, highlight=False)
    render_backtest_text(
        result, console, service=service, source=source, settings=settings, timezone=timezone
    )
    return console.export_text()


# ---------------------------------------------------------------------------------------
# the schedule CSV


def schedule_columns(schedule: pd.DataFrame) -> list[str]:
    """The CSV's columns: :data:`SCHEDULE_COLUMNS`, the ``units_<approach>`` columns in the
    schedule's order, then any other column the schedule has."""
    missing = [c for c in SCHEDULE_COLUMNS if c not in schedule.columns]
    if missing:
        raise ValueError(f"the backtest schedule lacks columns {missing}")
    names = [str(c) for c in schedule.columns]
    baselines = [c for c in names if c.startswith(UNITS_PREFIX)]
    rest = [c for c in names if c not in SCHEDULE_COLUMNS and c not in baselines]
    return [*SCHEDULE_COLUMNS, *baselines, *rest]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, pd.Timestamp | dt.datetime):
        return _iso(pd.Timestamp(value).to_pydatetime()) if not pd.isna(value) else ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else repr(float(value))
    return str(value)


def write_schedule_csv(result: BacktestResult, path: str | os.PathLike[str]) -> None:
    """Write ``result.schedule`` as CSV to ``path`` atomically (the ``--schedule-out`` file).

    One row per simulated step of every fold. Columns: ``ts`` (UTC ISO 8601 with ``Z``),
    ``fold``, ``demand``, ``forecast``, ``upper``, ``units``, then ``units_<approach>`` per
    baseline (see docs/backtest-json.md). Floats are written with ``repr`` precision, so
    they read back to the same doubles; NaN is an empty cell. The text goes to a temporary
    file in the same directory (created with the umask's permissions, or the mode of the
    file it replaces), fsynced, then ``os.replace``-d over ``path``.
    """
    name = os.fspath(path)
    columns = schedule_columns(result.schedule)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    frame = result.schedule[columns]
    for row in frame.itertuples(index=False, name=None):
        writer.writerow([_cell(v) for v in row])
    data = buffer.getvalue().encode("utf-8")

    directory = os.path.dirname(os.path.abspath(name))
    tmp = os.path.join(directory, f".{os.path.basename(name)}.{secrets.token_hex(6)}.forescale-tmp")
    try:
        mode = os.stat(name).st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise ForescaleError(f"{name}: cannot write: {exc.strerror or exc}") from exc
    try:
        # os.open applies the umask, as open(name, "w") would; mkstemp would leave 0600.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise ForescaleError(f"{name}: cannot write: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, name)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ForescaleError(f"{name}: cannot write: {exc.strerror or exc}") from exc
        raise
    # The rename is done; a directory that cannot be fsynced only loses durability.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
