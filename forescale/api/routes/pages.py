"""``GET /`` and ``GET /services/{name}``: the read-only web page (HTML rendered on the
server, no JavaScript; :mod:`forescale.report.page_html` lays it out).

Same rules as every other read (:func:`~forescale.api.security.require_read`), not in the
OpenAPI schema (HTML, like ``/docs``). Nothing is fitted on a page load: each service is
planned from its newest stored forecast run by the one planning use case
(:func:`forescale.usecases.plan.plan_with_run`, as ``GET /v1/services/{name}/schedule``).
A service with no forecast says so; one that cannot be planned (a broken variable file,
no recent history) shows its one-line error and the others still render.
"""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from forescale.api.deps import ClockDep, ServiceName, SettingsDep, StoreDep
from forescale.api.security import require_read
from forescale.config.settings import Settings
from forescale.errors import ConfigError, ForescaleError
from forescale.report.blocks import Table
from forescale.report.page_html import (
    AuditRow,
    NextChange,
    ServicePage,
    ServiceRow,
    render_index,
    render_not_found,
    render_service_page,
)
from forescale.report.plan_view import ServiceReport, build_service_view
from forescale.store import Store
from forescale.usecases.context import App, effective_mode

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_read)])

AUDIT_ROWS = 50  # audit records shown on a service page, newest first
_PLOT_LOCK = threading.Lock()  # pyplot's figure machinery is not thread-safe


@router.get("/", response_class=HTMLResponse)
def index(settings: SettingsDep, store: StoreDep, clock: ClockDep) -> HTMLResponse:
    now = clock().astimezone(dt.UTC)
    rows = tuple(_state(settings, store, n, now)[0] for n in sorted(settings.services))
    return HTMLResponse(render_index(rows, now=now, tz=ZoneInfo(settings.display_timezone)))


@router.get("/services/{name}", response_class=HTMLResponse)
def service_page(
    name: ServiceName, settings: SettingsDep, store: StoreDep, clock: ClockDep
) -> HTMLResponse:
    try:
        settings.service(name)
    except ConfigError as exc:
        return HTMLResponse(render_not_found(str(exc)), status_code=404)
    now = clock().astimezone(dt.UTC)
    tz = ZoneInfo(settings.display_timezone)
    row, report = _state(settings, store, name, now)
    plot: str | None = None
    schedule: Table | None = None
    notes: tuple[str, ...] = ()
    if report is not None:
        from forescale.report.plan_plot import plan_svg  # matplotlib: only when drawn

        view = build_service_view(report, tz)
        with _PLOT_LOCK:
            plot = plan_svg(view, tz)
        schedule, notes = view.schedule, view.notes
    from forescale.usecases.shadow import shadow_status

    status = shadow_status(App(settings=settings, store=store), name, now=now)
    page = ServicePage(
        row=row,
        plot_svg=plot,
        schedule=schedule,
        notes=notes,
        audit=tuple(
            AuditRow(
                at=r.created_at,
                status=r.status,
                from_units=r.from_units,
                to_units=r.to_units,
                due_at=r.due_at,
                message=r.message,
            )
            for r in store.list_changes(name, limit=AUDIT_ROWS)
        ),
        shadow="shadow mode not enabled for this service"
        if status is None
        else f"shadow record: {status.describe()}",
    )
    return HTMLResponse(render_service_page(page, now=now, tz=tz))


def _state(
    settings: Settings, store: Store, name: str, now: dt.datetime
) -> tuple[ServiceRow, ServiceReport | None]:
    """``name``'s row as of ``now`` (UTC) and its plan (None: no forecast, or it could
    not be planned: the row says why)."""
    from forescale.usecases.plan import plan_with_run

    last_sample = store.last_sample_time(name)
    collect = store.last_collect(name)
    run = store.latest_forecast(name)
    report, error = None, None
    if run is not None and run.frame is not None:
        try:
            report = plan_with_run(App(settings=settings, store=store), name, run, now=now)
        except ForescaleError as exc:
            error = str(exc)
    step = None if report is None else report.next_step
    live = None if run is None else run.live
    row = ServiceRow(
        name=name,
        mode=effective_mode(settings, store, name),
        configured_mode=settings.mode_of(settings.service(name)),
        last_sample=last_sample,
        last_collect=None if collect is None else collect.at,
        collect_error=None if collect is None else collect.error,
        stale=last_sample is None or now - last_sample > settings.stale_after,
        forecast=run is not None,
        model=None if run is None else run.model,
        live_error=None if live is None else live.error_ratio,
        live_under=None if live is None else live.under_share,
        live_steps=None if live is None else live.steps,
        current_units=None if report is None else report.plan.current_units,
        next_change=None
        if step is None
        else NextChange(
            at=step.at, direction=step.direction, from_units=step.from_units, to_units=step.units
        ),
        cost=None if report is None else report.cost,
        error=error,
    )
    return row, report
