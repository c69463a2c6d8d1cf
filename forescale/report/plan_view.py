"""The plan report (``forescale plan``): its records and the one view every format shows.

The records (:class:`PlanReport` of :class:`ServiceReport` and :class:`ServiceFailure`) are
what :mod:`forescale.pipeline` found: history, forecast, capacity plan and the diff the next
change would make. :func:`build_plan_view` turns them into a :class:`PlanView`, deciding
every line a reader is shown, once, for all formats (text, markdown, HTML, JSON):

1. The title: ``forescale plan as of <now> — mode <mode>``.
2. Per service, a headline: the next change (``raise 12 → 14 units at <when>``) or
   ``no change: <n> units covers the forecast horizon``.
3. Three summary lines: *history* (source, first and last sample, samples, step,
   coverage), *forecast* (model, step, band width, horizon end), *capacity* (units now,
   the variable file and address, per-unit demand, bounds, lead time, observed demand or
   ``unknown``).
4. The forecast peaks: the highest point forecast of each local day (at most three), its
   upper band and the first four components driving it (``trend`` when none does).
5. The calendar effects whose window meets the horizon, each with where its size comes
   from (expected uplift, learned from past occurrences, country holiday).
6. The capacity schedule: every planned change with its reason; one ``none`` row when
   current capacity covers the horizon.
7. The notes: first the warning that stale metrics block scale-in, then the planner's,
   the forecaster's (among them the model choice) and the pipeline's notes.
8. The diff the next change would make, each line marked added / deleted / context, or
   the sentence that no variable file change is due.
9. Services that could not be planned, with their one-line error; then the footer.

Times are shown in the report's display timezone; demand in the service's own unit
(e.g. requests/s), capacity in units. Building the view is pure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from forescale.config.durations import format_duration
from forescale.forecaster.cost import CostSummary
from forescale.forecaster.explain import Peak, daily_peaks, effects_in_horizon, percent
from forescale.forecaster.types import (
    CapacityPlan,
    CapacityPolicy,
    CapacityStep,
    EventEffect,
    Forecast,
)
from forescale.iac_writer.target import Edit
from forescale.report.blocks import Column, DiffLine, Phrase, Span, Table
from forescale.report.formatting import DASH, local_time, number, share

__all__ = [
    "DiffView",
    "EffectView",
    "FailureView",
    "HistorySummary",
    "PlanReport",
    "PlanView",
    "ServiceFailure",
    "ServiceReport",
    "ServiceView",
    "SummaryLine",
    "build_plan_view",
    "build_service_view",
]

# ---------------------------------------------------------------------------------------
# the records


@dataclass(frozen=True, kw_only=True, slots=True)
class HistorySummary:
    """The observed history a service was planned on."""

    start: dt.datetime  # first observed sample used (UTC)
    end: dt.datetime  # last observed sample at or before 'now' (UTC)
    points: int  # observed samples used
    coverage: float  # share of grid slots with a sample (0..1)
    step: dt.timedelta  # the samples' spacing


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
    # what the schedule costs over the horizon and per month (None: no price configured)
    cost: CostSummary | None = None
    # the lift of the forecast ahead while demand runs above it (1.0: none; forecaster.lift)
    lift: float = 1.0


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceFailure:
    """A service that could not be planned, with the one-line reason."""

    name: str
    error: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanReport:
    """One ``forescale plan`` run: every selected service, planned or failed."""

    as_of: dt.datetime  # the 'now' the plan was made for (UTC)
    mode: str
    display_timezone: str  # IANA name the report shows times in
    services: tuple[ServiceReport, ...]
    failures: tuple[ServiceFailure, ...] = ()

    @property
    def has_changes(self) -> bool:
        return any(s.change is not None and s.change.diff for s in self.services)


# ---------------------------------------------------------------------------------------
# the view


@dataclass(frozen=True, kw_only=True, slots=True)
class SummaryLine:
    """One summary line: ``label`` (``history``, ``forecast``, ``capacity``) and its text."""

    label: str
    text: Phrase


@dataclass(frozen=True, kw_only=True, slots=True)
class EffectView:
    """A calendar effect in the horizon: ``label`` (``Thanksgiving −30 %``, the plot's
    annotation) and ``line`` (label, window, where the size comes from)."""

    effect: EventEffect
    label: str
    line: str


@dataclass(frozen=True, kw_only=True, slots=True)
class DiffView:
    """The next change's diff: ``title`` and its lines, or (no lines) the sentence that no
    change is due as the title."""

    title: Phrase
    lines: tuple[DiffLine, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceView:
    """Rules 2-8 for one service; ``service`` is the record it was built from."""

    service: ServiceReport
    title: Phrase
    history: SummaryLine
    forecast: SummaryLine
    capacity: SummaryLine
    cost: SummaryLine | None  # None: no price configured
    forecast_start: dt.datetime | None  # first forecast step (UTC); None: empty forecast
    forecast_end: dt.datetime | None  # last forecast step (UTC)
    peaks: tuple[Peak, ...]
    peak_table: Table
    effects_title: str
    effects: tuple[EffectView, ...]
    schedule: Table
    notes: tuple[str, ...]
    diff: DiffView

    @property
    def summary(self) -> tuple[SummaryLine, ...]:
        lines = (self.history, self.forecast, self.capacity)
        return lines if self.cost is None else (*lines, self.cost)


@dataclass(frozen=True, kw_only=True, slots=True)
class FailureView:
    """Rule 9: a service that was not planned."""

    failure: ServiceFailure
    title: Phrase


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanView:
    """The whole report as every format shows it; ``report`` is the record behind it."""

    report: PlanReport
    timezone: ZoneInfo
    title: Phrase
    services: tuple[ServiceView, ...]
    failures: tuple[FailureView, ...]
    footer: str


PEAK_COLUMNS = (
    Column(header="when"),
    Column(header="demand", align="right"),
    Column(header="upper band", align="right"),
    Column(header="driven by"),
)
SCHEDULE_COLUMNS = (Column(header="apply at"), Column(header="change"), Column(header="why"))
NO_CHANGE_ROW = (DASH, "none", "current capacity covers the horizon")
STALE_WARNING = "metrics are stale or unavailable: forescale will not scale in on this data"
MAX_DRIVERS = 4  # drivers named per peak; the JSON lists them all


def build_plan_view(report: PlanReport) -> PlanView:
    """The view of ``report`` (rules 1-9 of the module docstring)."""
    tz = ZoneInfo(report.display_timezone)
    return PlanView(
        report=report,
        timezone=tz,
        title=(
            Span(text="forescale plan", style="strong"),
            Span(text=f" as of {local_time(report.as_of, tz)} \u2014 mode "),
            Span(text=report.mode, style="strong"),
        ),
        services=tuple(build_service_view(s, tz) for s in report.services),
        failures=tuple(
            FailureView(
                failure=f,
                title=(Span(text=f.name, style="strong"), Span(text=": not planned")),
            )
            for f in report.failures
        ),
        footer="dry-run: nothing was written to any Terraform file.",
    )


def build_service_view(service: ServiceReport, tz: ZoneInfo) -> ServiceView:
    """Rules 2-8 for one service, times on ``tz``'s clock."""
    start, end = _forecast_span(service.forecast)
    peaks = daily_peaks(service.forecast, tz)
    return ServiceView(
        service=service,
        title=(Span(text=service.name, style="strong"), Span(text=f": {_headline(service, tz)}")),
        history=_history_line(service, tz),
        forecast=_forecast_line(service.forecast, end, tz),
        capacity=_capacity_line(service),
        cost=None if service.cost is None else cost_line(service.cost),
        forecast_start=start,
        forecast_end=end,
        peaks=peaks,
        peak_table=Table(
            title="Forecast peaks",
            columns=PEAK_COLUMNS,
            rows=tuple(_peak_row(p, tz) for p in peaks),
        ),
        effects_title="Calendar effects in the horizon",
        effects=tuple(_effect(e, tz) for e in effects_in_horizon(service.forecast)),
        schedule=Table(
            title="Capacity schedule",
            columns=SCHEDULE_COLUMNS,
            rows=tuple(_step_row(s, tz) for s in service.plan.steps) or (NO_CHANGE_ROW,),
        ),
        notes=_notes(service),
        diff=_diff(service.change),
    )


def _headline(service: ServiceReport, tz: ZoneInfo) -> str:
    if service.next_step is None:
        units = service.plan.current_units
        return f"no change: {units} unit{'s' if units != 1 else ''} covers the forecast horizon"
    step = service.next_step
    return (
        f"{step.direction} {step.from_units} \u2192 {step.units} units at {local_time(step.at, tz)}"
    )


def _forecast_span(forecast: Forecast) -> tuple[dt.datetime | None, dt.datetime | None]:
    ds = forecast.frame["ds"]
    if ds.empty:
        return None, None
    return pd.Timestamp(ds.iloc[0]).to_pydatetime(), pd.Timestamp(ds.iloc[-1]).to_pydatetime()


def _history_line(service: ServiceReport, tz: ZoneInfo) -> SummaryLine:
    hist = service.history
    text = (
        f"{service.source}: {local_time(hist.start, tz)} \u2192 {local_time(hist.end, tz)}, "
        f"{hist.points:,} samples every {format_duration(hist.step)}, "
        f"{share(hist.coverage)} coverage"
    )
    return SummaryLine(label="history", text=(Span(text=text),))


def _forecast_line(forecast: Forecast, end: dt.datetime | None, tz: ZoneInfo) -> SummaryLine:
    until = DASH if end is None else local_time(end, tz)
    text = (
        f"{forecast.model}, {format_duration(forecast.resolution)} steps, "
        f"{forecast.interval_width:.0%} band, until {until}"
    )
    return SummaryLine(label="forecast", text=(Span(text=text),))


def _capacity_line(service: ServiceReport) -> SummaryLine:
    policy = service.policy
    observed = "unknown" if service.observed_demand is None else number(service.observed_demand)
    rest = (
        f"); {policy.capacity_per_unit:g} per unit; bounds [{policy.min_units}, "
        f"{policy.max_units}]; lead time {format_duration(policy.lead_time)}; "
        f"observed demand {observed}"
    )
    return SummaryLine(
        label="capacity",
        text=(
            Span(text=f"{service.plan.current_units} units now ("),
            Span(text=service.var_file, style="code"),
            Span(text=": "),
            Span(text=service.address, style="code"),
            Span(text=rest),
        ),
    )


def cost_line(cost: CostSummary) -> SummaryLine:
    """``schedule 412.80 USD over 48 h (6,278/month); today's 5 units flat …; static peak
    11 units …; 0.192 USD per unit-hour (unit_price)``."""
    cur, horizon, month = cost.price.currency, cost.horizon, cost.monthly
    hours = f"{cost.hours:g} h" if cost.hours < 100 else f"{cost.hours / 24:g} d"
    units_now = round(cost.unit_hours.current_flat / cost.hours) if cost.hours else 0
    text = (
        f"schedule {money(horizon.schedule)} {cur} over {hours} ({money(month.schedule)}"
        f"/month, {cost.average_units:.1f} units on average); today's {units_now} units "
        f"flat {money(horizon.current_flat)} ({money(month.current_flat)}/month); static "
        f"peak {cost.peak_units} units {money(horizon.static_peak)} "
        f"({money(month.static_peak)}/month); {cost.price.per_unit_hour:g} {cur} per "
        f"unit-hour ({cost.price.source})"
    )
    return SummaryLine(label="cost", text=(Span(text=text),))


def money(amount: float) -> str:
    """Money for reading: two decimals below 1,000, whole units with separators above."""
    return f"{amount:,.2f}" if abs(amount) < 1000 else f"{amount:,.0f}"


def _peak_row(peak: Peak, tz: ZoneInfo) -> tuple[str, ...]:
    drivers = "; ".join(d.label for d in peak.drivers[:MAX_DRIVERS]) or "trend"
    return (local_time(peak.at, tz), number(peak.yhat), number(peak.yhat_upper), drivers)


def _effect(effect: EventEffect, tz: ZoneInfo) -> EffectView:
    source = {
        "expected_uplift": "expected uplift from the calendar (first occurrence)",
        "learned": f"learned from {effect.occurrences_in_history} past occurrence(s)",
        "holiday": "country holiday, learned from history",
    }[effect.source]
    label = f"{effect.name} {percent(effect.effect)}"
    line = f"{label}: {local_time(effect.start, tz)} \u2192 {local_time(effect.end, tz)}, {source}"
    return EffectView(effect=effect, label=label, line=line)


def _step_row(step: CapacityStep, tz: ZoneInfo) -> tuple[str, ...]:
    return (local_time(step.at, tz), f"{step.from_units} \u2192 {step.units}", step.reason)


def _notes(service: ServiceReport) -> tuple[str, ...]:
    warning = () if service.data_fresh else (STALE_WARNING,)
    return (*warning, *service.plan.notes, *service.forecast.notes, *service.notes)


def _diff(change: Edit | None) -> DiffView:
    if change is None or not change.diff:
        return DiffView(title=(Span(text="no variable file change is due"),), lines=())
    lines = tuple(
        DiffLine(
            text=line,
            kind="add" if line.startswith("+") else "delete" if line.startswith("-") else "context",
        )
        for line in change.diff.splitlines()
    )
    return DiffView(
        title=(
            Span(text="Diff for the next change", style="strong"),
            Span(text=" (not written: dry-run)"),
        ),
        lines=lines,
    )
