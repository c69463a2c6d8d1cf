"""Plan: capacity from a stored forecast run, the history and ``now``.

The only place capacity is planned outside the core: ``forescale plan``, the API's
schedule, apply and the daemon all call :func:`plan_with_run` (or :func:`plan_service`,
which first finds or makes the run). So the API never shows a schedule the daemon would not
act on: same history (the stored samples on their own grid), same freshness rule (the
newest sample at most ``stale_after`` before ``now``), same current units (what the IaC
holds), same planner.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from forescale.codec import choice_json
from forescale.collectors.base import describe_source
from forescale.collectors.series import coverage, infer_step
from forescale.config.settings import MAX_UNITS, ServiceSettings
from forescale.errors import (
    DataError,
    ForescaleError,
    PlanError,
    PricingError,
    TfvarsTargetError,
)
from forescale.forecaster.capacity import floor_hold, held_newest, plan_capacity, planner_frame
from forescale.forecaster.cost import CostSummary, cost_of
from forescale.forecaster.lift import WINDOW as LIFT_WINDOW
from forescale.forecaster.lift import Lift, lift_forecast, lift_of
from forescale.forecaster.types import CapacityPlan, CapacityPolicy, Forecast
from forescale.iac_writer import files
from forescale.iac_writer.schedule import ScheduleTarget, entries_for, key_after
from forescale.iac_writer.target import Edit, FileKind, Snapshot, Target, file_kind
from forescale.records import ChangeRecord, ChangeStatus, ForecastRun
from forescale.report.plan_view import HistorySummary, PlanReport, ServiceFailure, ServiceReport
from forescale.usecases.context import App, capacity_policy, selected, service_target
from forescale.usecases.refit import refit

__all__ = [
    "Schedule",
    "fresh_run",
    "plan_all",
    "plan_service",
    "plan_with_run",
    "schedule",
    "units_of",
]

RECENT_HISTORY = dt.timedelta(days=3)  # how much history the report's plot shows


@dataclass(frozen=True, kw_only=True, slots=True)
class Schedule:
    """The planner's answer and the observations it was given."""

    plan: CapacityPlan
    observed_demand: float | None  # the newest sample when fresh, else None
    data_fresh: bool
    last_seen: dt.datetime
    lift: Lift = Lift()  # how the forecast ahead was lifted (forecaster.lift)


def units_of(snapshot: Snapshot) -> int:
    """A snapshot's value as whole units (refused for 2.5 or -1)."""
    raw = snapshot.value
    # float() of a huge int overflows: anything above the bound is refused as it is
    value = math.inf if isinstance(raw, int) and raw > MAX_UNITS else float(raw)
    if math.isinf(value) or value > MAX_UNITS:
        raise TfvarsTargetError(
            f"{snapshot.path}: {snapshot.address} = {_short(str(snapshot.literal))} is above "
            f"{MAX_UNITS:,}, the most units forescale manages; fix the value in the file"
        )
    if not math.isfinite(value) or value < 0 or not value.is_integer():
        raise TfvarsTargetError(
            f"{snapshot.path}: {snapshot.address} = {snapshot.literal} is not a whole number "
            "of units"
        )
    return int(value)


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def schedule(
    forecast: Forecast,
    history: pd.DataFrame,
    policy: CapacityPolicy,
    *,
    current_units: int,
    now: dt.datetime,
    stale_after: dt.timedelta,
    timezone: str,
    in_force: Sequence[tuple[dt.datetime, int]] = (),
    lift_basis: pd.DataFrame | None = None,
) -> Schedule:
    """Plan capacity (pure): ``history`` is the regular-grid history up to ``now``; the
    newest sample is the observed demand when it is at most ``stale_after`` old, and the
    floor serves it as :func:`held_newest` holds it (the highest of the stabilisation
    window); ``in_force`` the capacities applied in the last ``step_period`` (the step limits'
    memory across runs, see :func:`forescale.forecaster.capacity.plan_capacity`).
    ``lift_basis`` is the forecast in force over the last hour (``ds``, ``yhat``) when
    ``forecast`` holds only its rows from ``now`` on: the lift
    (:mod:`forescale.forecaster.lift`) compares the last hour's demand with it."""
    observed = history.dropna(subset=["y"])
    if observed.empty:
        raise DataError("no observed demand to plan from")
    last_seen = pd.Timestamp(observed["ds"].iloc[-1]).to_pydatetime()
    data_fresh = dt.timedelta(0) <= now - last_seen <= stale_after
    observed_demand = float(observed["y"].iloc[-1]) if data_fresh else None
    floor_demand = held_newest(observed, floor_hold(policy)) if data_fresh else None
    lift = (
        lift_of(
            observed=observed,
            forecast=forecast.frame if lift_basis is None else lift_basis,
            resolution=forecast.resolution,
            max_lift=policy.max_lift,
            ceiling=forecast.ceiling,
            made_at=forecast.fitted_at,
        )
        if data_fresh
        else Lift()
    )
    plan = plan_capacity(
        planner_frame(
            lift_forecast(forecast, lift, now), observed, policy.stabilization + policy.lead_time
        ),
        policy=policy,
        current_units=current_units,
        now=now,
        observed_demand=floor_demand,
        data_fresh=data_fresh,
        timezone=timezone,  # reasons read in the report's clock
        in_force=in_force,
        floor_cap=forecast.ceiling,
    )
    if lift.lifts:
        plan = replace(plan, notes=(*plan.notes, lift.describe()))
    return Schedule(
        plan=plan,
        observed_demand=observed_demand,
        data_fresh=data_fresh,
        last_seen=last_seen,
        lift=lift,
    )


def in_force(
    app: App,
    name: str,
    *,
    now: dt.datetime,
    period: dt.timedelta,
    current: int,
    statuses: frozenset[ChangeStatus] = frozenset({ChangeStatus.APPLIED}),
) -> list[tuple[dt.datetime, int]]:
    """The capacities forescale applied to ``name`` in the ``period`` before ``now`` (and
    the one in force at its start), from the audit trail: the step limits hold across
    runs, not only inside one plan. Each applied change counts from its run's ``now``.
    When the IaC holds something else now (a human changed it), that value counts from
    ``now``."""
    by_time: dict[dt.datetime, tuple[int, int]] = {}
    for r in reversed(app.store.list_changes(name, limit=200)):  # oldest first
        if r.status in statuses and r.created_at is not None and r.created_at < now:
            by_time[r.created_at] = (r.from_units, r.to_units)  # the later record wins
    start = now - period
    applied = sorted(by_time.items())
    older = [(t, units) for t, (_, units) in applied if t <= start]
    recent = [(t, before, units) for t, (before, units) in applied if t > start]
    trail = older[-1:]
    if not trail and recent:  # what was in force before the first change in the period
        trail.append((start, recent[0][1]))
    trail += [(t, units) for t, _, units in recent]
    if not trail or trail[-1][1] != current:
        trail.append((now, current))
    return trail


def shadow_units(app: App, name: str, *, fallback: int) -> int:
    """The capacity shadow mode would have in force now: its newest would-be change since
    it (re-)entered shadow mode, else ``fallback`` (what the IaC holds)."""
    entered = app.store.latest_mode_change(name)
    if entered is not None and entered.from_mode is None:
        entered = None  # the first review: shadow runs before it count too
    for record in app.store.list_changes(name, limit=200):  # newest first
        if entered is not None and record.created_at is not None and record.created_at < entered.at:
            break
        if record.status == ChangeStatus.SHADOWED:
            return record.to_units
    return fallback


def fresh_run(
    app: App, name: str, *, now: dt.datetime, max_age: dt.timedelta
) -> ForecastRun | None:
    """The newest stored run of ``name`` made within ``max_age`` before ``now`` that still
    reaches past ``now``, or None."""
    run = app.store.latest_forecast(name)
    if run is None or not now - max_age <= run.as_of <= now or run.frame is None:
        return None
    ends = run.frame["ds"] + pd.Timedelta(run.resolution)
    return run if int((ends > pd.Timestamp(now)).sum()) >= 2 else None


def plan_with_run(
    app: App,
    name: str,
    run: ForecastRun,
    *,
    now: dt.datetime,
    history: pd.DataFrame | None = None,
    reused: bool = False,
) -> ServiceReport:
    """Plan ``name`` from ``run`` as of ``now``; compute (never write) the next change."""
    service = app.service(name)
    target = service_target(service, now=now)
    current = units_of(target.read())  # the IaC is the source of truth: read it first
    shadow_notes: tuple[str, ...] = ()
    counted = frozenset({ChangeStatus.APPLIED})
    if app.mode_of(name) == "shadow":
        # shadow mode writes nothing: plan from forescale's own would-be capacity
        in_iac, current = current, shadow_units(app, name, fallback=current)
        counted = frozenset({ChangeStatus.SHADOWED})
        shadow_notes = (
            f"shadow mode: planned from forescale's would-be capacity ({current} units; the "
            f"IaC holds {in_iac}); nothing is written",
        )
    history = app.history(name, now=now) if history is None else history
    forecast = run.to_forecast(since=now)
    if reused:
        forecast = forecast.noted(f"forecast run #{run.id} reused (made {run.as_of:%H:%M}Z)")
    policy = capacity_policy(service)
    if run.choice is not None and run.choice.floor_headroom is not None:
        # the observed floor's headroom the record asked for (never above the setting)
        headroom = min(run.choice.floor_headroom, policy.observed_headroom)
        policy = replace(policy, observed_headroom=headroom)
    planned = schedule(
        forecast,
        history,
        policy,
        current_units=current,
        now=now,
        stale_after=app.settings.stale_after,
        timezone=app.settings.display_timezone,
        in_force=in_force(
            app, name, now=now, period=policy.step_period, current=current, statuses=counted
        ),
        lift_basis=_forecast_in_force(app, name, run, now),
    )
    next_step = planned.plan.steps[0] if planned.plan.steps else None
    cost, cost_notes = _cost(app, service, planned.plan, forecast, now)
    observed = history.dropna(subset=["y"])
    recent = history[history["ds"] >= pd.Timestamp(now - RECENT_HISTORY)]
    return ServiceReport(
        name=name,
        source=describe_source(service.source),
        history=HistorySummary(
            start=pd.Timestamp(observed["ds"].iloc[0]).to_pydatetime(),
            end=planned.last_seen,
            points=len(observed),
            coverage=coverage(history),
            step=infer_step(history["ds"]),
        ),
        recent_history=recent.reset_index(drop=True),
        forecast=forecast,
        plan=planned.plan,
        policy=policy,
        observed_demand=planned.observed_demand,
        data_fresh=planned.data_fresh,
        var_file=str(target.path),
        address=service.iac.address,
        next_step=next_step,
        change=_change(service, target, planned.plan, now),
        forecast_run_id=run.id,
        model_choice=None if run.choice is None else choice_json(run.choice),
        notes=_written_schedule(target, now)
        + autoscaler_warnings(target.path)
        + cost_notes
        + shadow_notes,
        cost=cost,
        lift=planned.lift.factor,
    )


def _forecast_in_force(
    app: App, name: str, run: ForecastRun, now: dt.datetime
) -> pd.DataFrame | None:
    """The forecast (``ds``, ``yhat``) in force over the hour before ``now``, for the lift:
    ``run``'s rows, preceded by the previous run's when ``run`` was made within that hour
    (a refit does not blind the lift for an hour). The previous run counts only on the
    same step; None when ``run`` has no points."""
    if run.frame is None:
        return None
    frame = run.frame[["ds", "yhat"]]
    if run.as_of <= now - LIFT_WINDOW:
        return frame
    before = app.store.forecast_before(name, run.as_of)
    if before is None or before.frame is None or before.resolution != run.resolution:
        return frame
    earlier = before.frame[["ds", "yhat"]]
    earlier = earlier[earlier["ds"] < frame["ds"].iloc[0]]
    return pd.concat([earlier, frame], ignore_index=True)


def _cost(
    app: App, service: ServiceSettings, plan: CapacityPlan, forecast: Forecast, now: dt.datetime
) -> tuple[CostSummary | None, tuple[str, ...]]:
    """The plan's cost from ``now`` to the forecast's end, when a price is configured. A
    failed price lookup never stops planning or applying: the report says why it has no
    cost (the lookup is tried again at the next plan)."""
    if forecast.frame.empty:
        return None, ()
    try:
        price = app.price_of(service, now=now)
    except PricingError as exc:
        return None, (f"cost unknown: {exc}",)
    if price is None:
        return None, ()
    end = pd.Timestamp(forecast.frame["ds"].iloc[-1]).to_pydatetime() + forecast.resolution
    return cost_of(plan, price, now, end), ()


def _change(
    service: ServiceSettings, target: Target, plan: CapacityPlan, now: dt.datetime
) -> Edit | None:
    """The edit the next change would make (never written): the managed number set to the
    next step's units, or in schedule mode the whole schedule of the horizon."""
    if isinstance(target, ScheduleTarget):
        cfg = service.iac.schedule
        entries, _ = entries_for(
            [(s.at, s.units) for s in plan.steps],
            now=now,
            margin=cfg.margin,
            max_entries=cfg.max_entries,
        )
        edit = target.propose_entries(entries)
        same = not edit.changed or target.up_to_date(entries, after=now + cfg.margin)
        return None if same else edit
    return target.propose(plan.steps[0].units) if plan.steps else None


def autoscaler_warnings(path: Path) -> tuple[str, ...]:
    """For a Kubernetes YAML file: each Deployment/StatefulSet that sets spec.replicas
    while an HPA or KEDA ScaledObject in the file scales it (they would fight)."""
    if file_kind(path) is not FileKind.YAML:
        return ()
    from forescale.iac_writer.yamlvalues import autoscaler_conflicts

    data = files.read_bytes(path, missing_ok=True)
    return () if data is None else autoscaler_conflicts(data, filename=str(path))


def _written_schedule(target: Target, now: dt.datetime) -> tuple[str, ...]:
    """In schedule mode: what the cloud would do if forescale stopped now."""
    if not isinstance(target, ScheduleTarget):
        return ()
    ahead = sorted(k for k in target.table() if key_after(k, now))
    if not ahead:
        return ("schedule mode: no scheduled change is written after now",)
    return (
        f"schedule mode: {len(ahead)} scheduled change(s) written, the last starting "
        f"{ahead[-1]}; if forescale stopped now, the cloud would keep carrying them out "
        "until then",
    )


def plan_service(
    app: App, name: str, *, now: dt.datetime, reuse_for: dt.timedelta | None = None
) -> ServiceReport:
    """Plan ``name`` from its newest run when it is at most ``reuse_for`` old, else from a
    fresh refit."""
    history = app.history(name, now=now)
    run = fresh_run(app, name, now=now, max_age=reuse_for) if reuse_for is not None else None
    if run is not None:
        return plan_with_run(app, name, run, now=now, history=history, reused=True)
    run = refit(app, name, now=now, history=history)
    return plan_with_run(app, name, run, now=now, history=history)


def plan_all(
    app: App, *, now: dt.datetime, services: Sequence[str] | None = None, record: bool = True
) -> PlanReport:
    """``forescale plan``: refit and plan every selected service as of ``now``; with
    ``record``, the next change of each is recorded as ``planned`` (the dry-run audit). A
    service that cannot be planned is reported as a failure; the others still are."""
    if now.tzinfo is None:
        raise PlanError("'now' must be timezone-aware")
    now = now.astimezone(dt.UTC)
    reports, failures = [], []
    for name in selected(app.settings, services):
        try:
            report = plan_service(app, name, now=now)
        except ForescaleError as exc:
            failures.append(ServiceFailure(name=name, error=str(exc)))
            continue
        reports.append(report)
        if record:
            _record_planned(app, report, now=now)
    return PlanReport(
        as_of=now,
        mode=app.settings.mode,
        display_timezone=app.settings.display_timezone,
        services=tuple(reports),
        failures=tuple(failures),
    )


def _record_planned(app: App, report: ServiceReport, *, now: dt.datetime) -> None:
    step, change = report.next_step, report.change
    if step is None or change is None:
        return
    app.store.record_change(
        ChangeRecord(
            service=report.name,
            forecast_run_id=report.forecast_run_id,
            due_at=step.at,
            var_file=report.var_file,
            address=report.address,
            from_units=step.from_units,
            to_units=step.units,
            direction=step.direction,
            reason=step.reason,
            mode=app.settings.mode_of(app.service(report.name)),
            status=ChangeStatus.PLANNED,
            diff=change.diff,
        ),
        created_at=now,
    )
