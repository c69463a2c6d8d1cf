"""The backtest report (``forescale backtest``): the one view every format shows.

:func:`build_backtest_view` turns a :class:`forescale.forecaster.backtest.BacktestResult` into a
:class:`BacktestView`, deciding every line a reader is shown, once, for all formats (text,
HTML, JSON):

1. The title ``forescale backtest — <service>``; what was backtested (source, folds,
   first and last cutoff, horizon, simulation step); the demand one unit serves and where
   that number comes from; the settings the backtest ran with (sorted by name).
2. Forecast accuracy over all folds, one row per model (MAPE, sMAPE, MASE, band coverage,
   share above the band); one empty row when no fold was scored.
3. Capacity outcomes over the simulated steps, one row per approach (under-provisioned
   share, unit-hours, ratio to the static peak, mean units, what the approach does).
4. forescale against each other approach (unit-hours ratio, difference of the
   under-provisioned shares) and the approaches that dominate it (Pareto: at least as
   good on both under-provisioning and unit-hours, strictly better on one), in one
   sentence.
5. How often the record chose each model, with its mean band factor, and how many folds
   failed.
6. One line per failed fold, then the backtest's notes.
7. One row per fold (cutoff, chosen model, band factor, forescale's sMAPE and share above
   the band, why or the error).

Times are shown in the given display timezone; demand in the service's own unit, capacity
in units. Building the view is pure.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from forescale.config.durations import format_duration
from forescale.forecaster.backtest import ApproachOutcome, BacktestResult, FoldResult, dominated_by
from forescale.forecaster.cost import Price
from forescale.report.blocks import Column, Phrase, Span, Table
from forescale.report.formatting import DASH, factor, iso_utc, local_time, number, share

__all__ = ["FORESCALE", "UNITS_PREFIX", "BacktestView", "Comparison", "build_backtest_view"]

FORESCALE = "forescale"
UNITS_PREFIX = "units_"  # schedule column of a baseline's units: units_<approach name>

# One-line descriptions of the approaches run_backtest simulates; an approach not listed
# here is shown by its name alone.
_DESCRIPTIONS = {
    FORESCALE: "forecast with the headroom its record asks for, planned ahead, "
    "floored at observed demand",
    "seasonal_naive_x1_2": "demand one week earlier \u00d71.2, same planner",
    "reactive": "target tracking on observed demand",
    "reactive_headroom_20": "target tracking with 20 % headroom",
    "static_peak": "the units the peak needs, all the time",
    "hindsight": "a bound, not a policy: the exact units each step needed, known only "
    "afterwards (the least any plan could pay without being short)",
}


def _columns(*headers: str, left: tuple[str, ...]) -> tuple[Column, ...]:
    return tuple(Column(header=h, align="left" if h in left else "right") for h in headers)


METRIC_COLUMNS = _columns(
    "model", "steps", "MAPE %", "sMAPE %", "MASE", "band coverage", "above band", left=("model",)
)
APPROACH_COLUMNS = _columns(
    "approach",
    "under-provisioned",
    "unit-hours",
    "\u00d7 static",
    "mean units",
    "what",
    left=("approach", "what"),
)
FOLD_COLUMNS = _columns(
    "fold",
    "cutoff",
    "model",
    "band",
    "forescale sMAPE %",
    "above band",
    "why / error",
    left=("cutoff", "model", "why / error"),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Comparison:
    """Rule 4: forescale against one ``baseline`` (None: not defined)."""

    baseline: str
    unit_hours_ratio: float | None  # forescale's unit-hours / the baseline's
    under_share_diff: float | None  # forescale's under-provisioned share - the baseline's


@dataclass(frozen=True, kw_only=True, slots=True)
class BacktestView:
    """The whole backtest report as every format shows it; ``result`` is behind it."""

    result: BacktestResult
    service: str
    source: str
    settings: Mapping[str, object]  # as given; the JSON echoes it
    timezone: ZoneInfo
    title: Phrase
    history: str
    capacity_per_unit: str
    settings_line: str | None  # None: no settings to show
    start: dt.datetime | None  # first cutoff (UTC); None without folds
    end: dt.datetime | None  # last cutoff + horizon (UTC)
    metrics: Table
    approaches: Table
    price: Price | None  # cost columns when known
    comparisons: tuple[Comparison, ...]
    dominated_by: tuple[str, ...]
    dominance: str
    choices: str
    failures: tuple[str, ...]
    notes: tuple[str, ...]
    folds: Table


def build_backtest_view(
    result: BacktestResult,
    *,
    service: str,
    source: str,
    settings: Mapping[str, object],
    timezone: str,
    price: Price | None = None,
) -> BacktestView:
    """The view of ``result`` (rules 1-7 of the module docstring); times in ``timezone``
    (an IANA name)."""
    tz = ZoneInfo(timezone)
    own = next((a for a in result.approaches if a.name == FORESCALE), None)
    worse = tuple(dominated_by(result)) if own is not None else ()
    cutoffs = [f.cutoff for f in result.folds]
    return BacktestView(
        result=result,
        service=service,
        source=source,
        settings=settings,
        timezone=tz,
        title=(
            Span(text="forescale backtest", style="strong"),
            Span(text=" \u2014 "),
            Span(text=service, style="strong"),
        ),
        history=_history(result, source, tz),
        capacity_per_unit=(
            f"capacity per unit {number(result.capacity_per_unit)} "
            f"({_cpu_source(result.capacity_per_unit_source)})"
        ),
        settings_line=_settings_line(settings) if settings else None,
        start=min(cutoffs) if cutoffs else None,
        end=max(cutoffs) + result.horizon if cutoffs else None,
        metrics=_metrics(result),
        approaches=_approaches(result, price),
        price=price,
        comparisons=tuple(_compare(own, a) for a in result.approaches if a.name != FORESCALE),
        dominated_by=worse,
        dominance=_dominance(own, worse),
        choices=f"model choices: {_choices(result)}",
        failures=tuple(_failure(f, tz) for f in result.folds if _failed(f)),
        notes=tuple(result.notes),
        folds=Table(
            title="Folds", columns=FOLD_COLUMNS, rows=tuple(_fold_row(f, tz) for f in result.folds)
        ),
    )


def _history(result: BacktestResult, source: str, tz: ZoneInfo) -> str:
    count = len(result.folds)
    when = (
        f"cutoffs {local_time(min(f.cutoff for f in result.folds), tz)} \u2192 "
        f"{local_time(max(f.cutoff for f in result.folds), tz)}"
        if result.folds
        else "no cutoffs"
    )
    return (
        f"{source}: {count} fold{'s' if count != 1 else ''}, {when}, horizon "
        f"{format_duration(result.horizon)}, capacity simulated every "
        f"{format_duration(result.sim_step)}"
    )


def _cpu_source(source: str) -> str:
    if source.startswith("peak/"):
        return f"peak evaluated demand / {source.removeprefix('peak/')}"
    return source


def _settings_line(settings: Mapping[str, object]) -> str:
    return ", ".join(f"{k} {_setting_text(settings[k])}" for k in sorted(settings, key=str))


def _setting_text(value: object) -> str:
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return iso_utc(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(_setting_text(v) for v in value) + "]"
    return str(value)


def _metrics(result: BacktestResult) -> Table:
    rows = tuple(
        (
            m.model,
            f"{m.steps:,}",
            number(m.mape),
            number(m.smape),
            number(m.mase),
            share(m.coverage),
            share(m.under_band),
        )
        for m in result.metrics
    )
    return Table(
        title="Forecast accuracy over all folds",
        columns=METRIC_COLUMNS,
        rows=rows or ((DASH, "0", *(DASH,) * 5),),
    )


def _approaches(result: BacktestResult, price: Price | None) -> Table:
    steps = max((a.steps for a in result.approaches), default=0)
    rows = tuple(
        (
            a.name,
            share(a.under_share),
            number(a.unit_hours),
            *(() if price is None else (_money(a.unit_hours * price.per_unit_hour),)),
            factor(a.vs_static),
            number(a.mean_units),
            _DESCRIPTIONS.get(a.name, ""),
        )
        for a in (
            *result.approaches,
            *(() if result.hindsight is None else (result.hindsight,)),
        )
    )
    columns = APPROACH_COLUMNS
    title = f"Capacity over {steps:,} simulated steps"
    if price is not None:
        cost = Column(header=f"cost {price.currency}", align="right")
        columns = (*APPROACH_COLUMNS[:3], cost, *APPROACH_COLUMNS[3:])
        title += f" (cost at {price.per_unit_hour:g} {price.currency} per unit-hour)"
    return Table(title=title, columns=columns, rows=rows)


def _money(amount: float) -> str:
    return DASH if not math.isfinite(amount) else f"{amount:,.2f}"


def _compare(own: ApproachOutcome | None, other: ApproachOutcome) -> Comparison:
    if own is None:
        return Comparison(baseline=other.name, unit_hours_ratio=None, under_share_diff=None)
    ratio = (
        own.unit_hours / other.unit_hours
        if math.isfinite(own.unit_hours)
        and math.isfinite(other.unit_hours)
        and other.unit_hours > 0
        else None
    )
    return Comparison(
        baseline=other.name,
        unit_hours_ratio=ratio,
        under_share_diff=own.under_share - other.under_share,
    )


def _dominance(own: ApproachOutcome | None, worse: tuple[str, ...]) -> str:
    if own is None:
        return "forescale was not simulated"
    if worse:
        return (
            f"forescale is dominated by {', '.join(worse)}: each is at least as good on both "
            "under-provisioning and unit-hours, and strictly better on one"
        )
    return (
        "forescale is not dominated: no baseline is at least as good on both "
        "under-provisioning and unit-hours and strictly better on one"
    )


def _failed(fold: FoldResult) -> bool:
    return fold.error is not None or fold.model is None


def _choices(result: BacktestResult) -> str:
    """How often the record chose each model (most often first) and its mean band factor."""
    factors: dict[str, list[float]] = {}
    for fold in result.folds:
        if not _failed(fold):
            factors.setdefault(str(fold.model), []).append(fold.band_factor)
    total = len(result.folds)
    parts = [
        f"{model} {len(values)} of {total} folds "
        f"(mean band factor \u00d7{float(np.mean(values)):.2f})"
        for model, values in sorted(factors.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    failed = sum(1 for f in result.folds if _failed(f))
    if failed:
        parts.append(f"failed {failed} of {total} folds")
    return "; ".join(parts) if parts else "no folds"


def _failure(fold: FoldResult, tz: ZoneInfo) -> str:
    return (
        f"fold {fold.fold} (cutoff {local_time(fold.cutoff, tz)}) failed: "
        f"{fold.error or 'no model'}"
    )


def _fold_row(fold: FoldResult, tz: ZoneInfo) -> tuple[str, ...]:
    own = next((m for m in fold.metrics if m.model == FORESCALE), None)
    return (
        str(fold.fold),
        local_time(fold.cutoff, tz),
        fold.model or DASH,
        factor(fold.band_factor) if fold.model else DASH,
        number(own.smape) if own else DASH,
        share(own.under_band) if own else DASH,
        fold.error or fold.reason,
    )
