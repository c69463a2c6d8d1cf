"""``/v1/services`` and one service's ``forecast``, ``schedule`` and ``plan``.

Nothing is fitted on a request: the forecast is read from the store (rendered once per
forecast run, then served from :class:`~forescale.api.cache.ResponseCache`), and the
schedule is the pure capacity planner run on the stored forecast and the observed demand
(:func:`plan_schedule`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool

from forescale.api.cache import Rendered
from forescale.api.convert import iso, run_out, utc
from forescale.api.deps import ClockDep, ForecastCacheDep, ServiceName, SettingsDep, StoreDep
from forescale.api.errors import ApiError
from forescale.api.schemas import (
    ChoiceOut,
    CollectOut,
    DesiredOut,
    ForecastOut,
    LiveOut,
    PlanOut,
    PointOut,
    ScheduleOut,
    ServiceOut,
    ServicesOut,
    StepOut,
)
from forescale.api.security import require_read
from forescale.codec import choice_json
from forescale.config.settings import Settings
from forescale.errors import TfvarsError
from forescale.numbers import finite
from forescale.records import ForecastRun
from forescale.store import Store
from forescale.usecases.context import effective_mode

if TYPE_CHECKING:
    from forescale.forecaster.types import CapacityPlan

router = APIRouter(dependencies=[Depends(require_read)])

_POINT_COLUMNS = ("ds", "yhat", "yhat_lower", "yhat_upper")


def _latest(store: Store, name: str) -> ForecastRun:
    """The newest stored forecast run of ``name`` with its points; 404 when there is none."""
    run = store.latest_forecast(name)
    if run is None or run.frame is None:
        raise ApiError(404, "NotFound", f"no stored forecast for {name!r}; run a plan first")
    return run


# -- /v1/services -----------------------------------------------------------------------
def _service_out(settings: Settings, store: Store, name: str) -> ServiceOut:
    """One service's listing: the coverage is the one its last collect measured (up to the
    collect time), not recomputed per request."""
    service = settings.services[name]
    collect = store.last_collect(name)
    latest = store.latest_run_stamp(name)
    changes = store.list_changes(name, limit=1)
    moved = store.latest_mode_change(name)
    return ServiceOut(
        name=name,
        mode=effective_mode(settings, store, name),
        configured_mode=settings.mode_of(service),
        mode_since=None if moved is None else moved.at,
        mode_reason=None if moved is None else moved.reason,
        source=service.source.type,
        last_collect=None
        if collect is None
        else CollectOut(
            at=collect.at,
            written=collect.written,
            coverage=finite(collect.coverage),
            last_sample=collect.last_sample,
            error=collect.error,
        ),
        coverage=None if collect is None else finite(collect.coverage),
        last_sample=store.last_sample_time(name),
        last_forecast_run_id=None if latest is None else latest.id,
        last_forecast_as_of=None if latest is None else latest.as_of,
        last_change_id=changes[0].id if changes else None,
        last_change_status=changes[0].status if changes else None,
    )


@router.get("/v1/services", response_model=ServicesOut)
def services(settings: SettingsDep, store: StoreDep) -> ServicesOut:
    return ServicesOut(
        services=[_service_out(settings, store, n) for n in sorted(settings.services)]
    )


# -- /v1/services/{name}/forecast -------------------------------------------------------
@router.get(
    "/v1/services/{name}/forecast",
    response_model=ForecastOut,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def forecast(
    name: ServiceName,
    settings: SettingsDep,
    store: StoreDep,
    cache: ForecastCacheDep,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    format: Literal["json", "csv"] = "json",  # noqa: A002 - the query parameter's name
) -> Any:
    settings.service(name)
    for label, when in (("start", start), ("end", end)):
        if when is not None and when.tzinfo is None:
            raise ApiError(422, "ValidationError", f"{label}: give a UTC offset or Z")
    if start is not None and end is not None and start > end:
        raise ApiError(422, "ValidationError", "start is after end")
    # Responses are cached per forecast run: a request then costs one indexed query, off
    # the event loop too (a locked store waits there, not in every other request).
    run_id = await run_in_threadpool(store.latest_forecast_id, name)
    if run_id is None:
        raise ApiError(404, "NotFound", f"no stored forecast for {name!r}; run a plan first")
    key = (name, run_id, start, end, format)
    hit = cache.get(key)
    if hit is not None:
        return Response(hit[0], media_type=hit[1], headers=hit[2])
    # A miss renders once per forecast run, off the event loop.
    body, media_type, headers = await run_in_threadpool(
        _render_forecast, store, name, start, end, format
    )
    cache.put(key, (body, media_type, headers))
    return Response(body, media_type=media_type, headers=headers)


def _render_forecast(
    store: Store,
    name: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    format: str,  # noqa: A002 - the query parameter's name
) -> Rendered:
    """The newest stored forecast of ``name`` between ``start`` and ``end`` (inclusive),
    rendered as CSV or JSON."""
    run = _latest(store, name)
    frame = run.frame
    assert frame is not None  # _latest reads the points
    if start is not None:
        frame = frame[frame["ds"] >= pd.Timestamp(start)]
    if end is not None:
        frame = frame[frame["ds"] <= pd.Timestamp(end)]
    components = [c for c in frame.columns if c not in _POINT_COLUMNS]
    if format == "csv":
        return _forecast_csv(name, frame, components)
    return _forecast_json(name, run, frame, components)


def _forecast_csv(name: str, frame: pd.DataFrame, components: list[str]) -> Rendered:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*_POINT_COLUMNS, *components])
    for record in frame.to_dict("records"):
        cells = [finite(record[c]) for c in (*_POINT_COLUMNS[1:], *components)]
        writer.writerow([iso(utc(record["ds"])), *("" if v is None else v for v in cells)])
    return (
        buffer.getvalue().encode(),
        "text/csv; charset=utf-8",
        {"Content-Disposition": f'attachment; filename="{name}-forecast.csv"'},
    )


def _forecast_json(
    name: str, run: ForecastRun, frame: pd.DataFrame, components: list[str]
) -> Rendered:
    points = [
        PointOut(
            ds=utc(r["ds"]),
            yhat=finite(r["yhat"]),
            yhat_lower=finite(r["yhat_lower"]),
            yhat_upper=finite(r["yhat_upper"]),
            components={c: finite(r[c]) for c in components},
        )
        for r in frame.to_dict("records")
    ]
    out = ForecastOut(
        service=name,
        run_id=int(run.id or 0),
        created_at=run.created_at,
        as_of=run.as_of,
        history_end=run.history_end,
        model=run.model,
        resolution_seconds=int(run.resolution.total_seconds()),
        components=components,
        notes=list(run.notes),
        choice=None if run.choice is None else ChoiceOut.model_validate(choice_json(run.choice)),
        live=None if run.live is None else LiveOut.model_validate(asdict(run.live)),
        points=points,
    )
    return out.model_dump_json().encode(), "application/json", {}


# -- /v1/services/{name}/schedule -------------------------------------------------------
@router.get("/v1/services/{name}/schedule", response_model=ScheduleOut)
def schedule(
    name: ServiceName, settings: SettingsDep, store: StoreDep, clock: ClockDep
) -> ScheduleOut:
    now = clock().astimezone(dt.UTC)
    forecast_run_id, plan, written = plan_schedule(settings, store, name, now)
    return ScheduleOut(
        service=name,
        now=now,
        forecast_run_id=forecast_run_id,
        current_units=plan.current_units,
        steps=[
            StepOut(
                at=s.at,
                units=s.units,
                from_units=s.from_units,
                direction=s.direction,
                reason=s.reason,
                serves_at=s.serves_at,
                demand=finite(s.demand),
                constraints=list(s.constraints),
            )
            for s in plan.steps
        ],
        desired=[
            DesiredOut(ds=utc(r["ds"]), units=int(r["units"]))
            for r in plan.desired.to_dict("records")
        ],
        notes=[*plan.notes, *written],
    )


def plan_schedule(
    settings: Settings, store: Store, name: str, now: dt.datetime
) -> tuple[int, CapacityPlan, tuple[str, ...]]:
    """The capacity plan of ``name`` at ``now`` (UTC) from its newest stored forecast, by
    the same planning use case the daemon acts on, and that forecast's run id. 404:
    unknown service or no stored forecast; 409: the current units are unreadable or there
    is no history to plan from."""
    from forescale.usecases.context import App
    from forescale.usecases.plan import plan_with_run

    settings.service(name)
    run = _latest(store, name)
    try:
        report = plan_with_run(App(settings=settings, store=store), name, run, now=now)
    except TfvarsError as exc:
        raise ApiError(409, "IacError", f"cannot read current units: {exc}") from None
    return int(run.id or 0), report.plan, report.notes


# -- /v1/services/{name}/plan -----------------------------------------------------------
@router.get("/v1/services/{name}/plan", response_model=PlanOut)
def last_plan(name: ServiceName, settings: SettingsDep, store: StoreDep) -> PlanOut:
    settings.service(name)
    changes = store.list_changes(name, limit=1)
    if not changes:
        raise ApiError(404, "NotFound", f"no change recorded for {name!r}")
    pending = store.pending_change(name)
    return PlanOut(
        service=name,
        pending=pending is not None and pending.id == changes[0].id,
        change=run_out(changes[0]),
    )
