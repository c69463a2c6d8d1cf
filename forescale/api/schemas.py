"""The API's response models (pydantic, the boundary), and the error responses every
operation documents (:data:`ERROR_RESPONSES`).

Datetimes are ISO 8601 UTC with ``Z``; floats are finite (NaN/inf are sent as ``null``,
see :func:`forescale.api.convert.finite`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field


class CollectOut(BaseModel):
    at: dt.datetime
    written: int
    coverage: float | None
    last_sample: dt.datetime | None
    error: str | None


class ServiceOut(BaseModel):
    name: str
    mode: str  # the mode it acts in now (a mode: shadow service may have been promoted)
    configured_mode: str  # the settings' mode
    mode_since: dt.datetime | None  # mode: shadow: when it entered its mode
    mode_reason: str | None  # mode: shadow: why (the newest promotion/demotion)
    source: str
    last_collect: CollectOut | None
    coverage: float | None  # share of grid slots with a sample over the last 7 days
    last_sample: dt.datetime | None
    last_forecast_run_id: int | None
    last_forecast_as_of: dt.datetime | None
    last_change_id: int | None
    last_change_status: str | None


class ServicesOut(BaseModel):
    services: list[ServiceOut]


class PointOut(BaseModel):
    ds: dt.datetime
    yhat: float | None
    yhat_lower: float | None
    yhat_upper: float | None
    components: dict[str, float | None]


class EvidenceOut(BaseModel):
    model: str
    steps: int
    smape: float | None
    under_share: float | None
    basis: str
    factor: float | None
    under_share_widened: float | None
    provisioned_ratio: float | None
    floor_headroom: float | None = None


class ChoiceOut(BaseModel):
    """Which candidate model plans capacity, with how much headroom, and why."""

    model: str
    basis: str
    factor: float | None
    reason: str
    floor_headroom: float | None = None  # the observed floor's headroom the record chose
    evidence: list[EvidenceOut]


class LiveOut(BaseModel):
    """How the previous forecast did against what was collected since (at this refit)."""

    run_id: int
    steps: int
    error_ratio: float | None
    under_share: float | None
    refit_due: bool
    reason: str


class ForecastOut(BaseModel):
    service: str
    run_id: int
    created_at: dt.datetime
    as_of: dt.datetime
    history_end: dt.datetime
    model: str
    resolution_seconds: int
    components: list[str]
    notes: list[str]
    choice: ChoiceOut | None = None
    live: LiveOut | None = None
    points: list[PointOut]


class StepOut(BaseModel):
    at: dt.datetime
    units: int
    from_units: int
    direction: str
    reason: str
    serves_at: dt.datetime
    demand: float | None
    constraints: list[str]


class DesiredOut(BaseModel):
    ds: dt.datetime
    units: int


class ScheduleOut(BaseModel):
    service: str
    now: dt.datetime
    forecast_run_id: int
    current_units: int
    steps: list[StepOut]
    desired: list[DesiredOut]
    notes: list[str]


class RunOut(BaseModel):
    """A change record: a planned, applied or committed capacity change."""

    kind: Literal["change"] = "change"
    id: int
    service: str
    created_at: dt.datetime | None
    forecast_run_id: int | None
    due_at: dt.datetime
    var_file: str
    address: str
    from_units: int
    to_units: int
    direction: str
    reason: str
    mode: str
    status: str
    diff: str
    trigger: str
    plan_summary: str
    guard_reasons: list[str]
    exit_code: int | None
    output_tail: str
    commit_sha: str | None
    finished_at: dt.datetime | None


class PlanOut(BaseModel):
    service: str
    pending: bool  # the change did not finish; the next apply resumes it
    change: RunOut


RefreshStatus = Literal["queued", "running", "succeeded", "failed"]


class RefreshRunOut(BaseModel):
    """A refresh run: a refit asked for with ``POST /v1/services/{name}/refresh``."""

    kind: Literal["refresh"] = "refresh"
    id: str  # refresh-<n>
    service: str
    status: RefreshStatus
    requested_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None  # failed: what went wrong
    forecast_run_id: int | None  # succeeded: the forecast the refit stored


AnyRunOut = Annotated[RunOut | RefreshRunOut, Field(discriminator="kind")]


class RunsOut(BaseModel):
    items: list[AnyRunOut]
    limit: int
    offset: int
    next_offset: int | None


class RefreshOut(BaseModel):
    service: str
    run_id: str  # refresh-<n>: poll GET /v1/runs/{run_id} (``url``)
    status: RefreshStatus
    coalesced: bool  # a refresh of this service was already queued or running: that run
    url: str


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    role: str  # leader | standby | api-only
    bind_retries: int  # failed attempts to bind the API port before it listened


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


# Documented on every operation (the app's ``responses``).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}
