"""The typed records that travel between forescale's parts (the store returns these).

No dict rows or JSON blobs cross a module line: a stored forecast is a :class:`ForecastRun`
(:func:`forescale.codec` owns its JSON), an apply attempt a :class:`ChangeRecord`, a collect
a :class:`CollectRun`, a refresh asked through the API a :class:`RefreshRun`. Modes and
statuses are enums whose values are the strings stored and shown.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pandas as pd

from forescale.forecaster.accuracy import Choice
from forescale.forecaster.candidates import CompactForecast
from forescale.forecaster.types import EventEffect, Forecast

__all__ = [
    "FINAL",
    "NOT_APPLIED",
    "UNFINISHED",
    "ChangeRecord",
    "ChangeStatus",
    "CollectRun",
    "ForecastPoint",
    "ForecastRun",
    "LiveJudgement",
    "Mode",
    "ModeChange",
    "RefreshRun",
    "RunStamp",
    "StoredPrice",
    "WriteMode",
]


class Mode(enum.StrEnum):
    """What forescale does with a planned change (``mode``, per service ``mode_of``)."""

    DRY_RUN = "dry-run"  # report only
    PLAN = "plan"  # patch a private copy, terraform plan there
    APPLY = "apply"  # write, plan, guard, apply the saved plan
    COMMIT = "commit"  # one commit on a branch of the IaC repository
    SHADOW = "shadow"  # plan as apply would, write nothing, score what it would have done


class WriteMode(enum.StrEnum):
    """How the managed number is written (``iac.write``)."""

    IN_PLACE = "in_place"
    AUTO_TFVARS = "auto_tfvars"


class ChangeStatus(enum.StrEnum):
    """Where an apply attempt stands (see :mod:`forescale.usecases.apply`)."""

    PLANNED = "planned"  # shown in a dry-run report
    INTENT = "intent"  # recorded, nothing written yet
    WRITTEN = "written"  # the file holds forescale's value; terraform pending
    UNDOING = "undoing"  # refused: forescale is undoing its write
    PLAN_OK = "plan-ok"
    REFUSED = "refused"
    APPLIED = "applied"
    FAILED = "failed"  # terraform failed: the file stays written, the next run retries
    COMMITTED = "committed"
    CONFLICT = "conflict"  # someone else changed the file: forescale stepped aside
    INTERRUPTED = "interrupted"  # the run stopped mid-way (Ctrl-C, SIGTERM, a kill)
    SUPERSEDED = "superseded"  # dropped: the mode changed, forescale's write undone
    ERROR = "error"  # could not be attempted (nothing written)
    SHADOWED = "shadowed"  # shadow mode: what apply would have done (nothing written)


UNFINISHED = frozenset(
    {
        ChangeStatus.INTENT,
        ChangeStatus.WRITTEN,
        ChangeStatus.UNDOING,
        ChangeStatus.FAILED,
        ChangeStatus.INTERRUPTED,
    }
)
"""A run the next apply resumes: it stopped mid-way, or its write is not applied yet."""

NOT_APPLIED = frozenset(
    {ChangeStatus.FAILED, ChangeStatus.REFUSED, ChangeStatus.CONFLICT, ChangeStatus.ERROR}
)
"""Outcomes that mean the due change did not happen (``forescale apply`` exits 1)."""

FINAL = frozenset(ChangeStatus) - {ChangeStatus.INTENT, ChangeStatus.WRITTEN, ChangeStatus.UNDOING}


@dataclass(frozen=True, kw_only=True, slots=True)
class LiveJudgement:
    """How the previous forecast did against what arrived (stored with the next run)."""

    run_id: int
    steps: int
    error_ratio: float | None  # sum |actual - yhat| / sum actual; None: no demand
    under_share: float | None  # share of steps above the planned band
    refit_due: bool
    reason: str


_EMPTY: Mapping[str, str] = MappingProxyType({})
_NO_CANDIDATES: Mapping[str, CompactForecast] = MappingProxyType({})


@dataclass(frozen=True, kw_only=True, slots=True)
class ForecastRun:
    """One stored refit: the forecast that plans capacity and what came with it.

    ``frame`` holds the points (``ds`` UTC, ``yhat``, ``yhat_lower``, ``yhat_upper`` and
    one column per component); it is None when the run was read without them."""

    service: str
    created_at: dt.datetime
    as_of: dt.datetime
    history_end: dt.datetime
    model: str
    resolution: dt.timedelta
    interval_width: float
    components: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    event_effects: tuple[EventEffect, ...] = ()
    choice: Choice | None = None
    live: LiveJudgement | None = None
    candidates: Mapping[str, CompactForecast] = field(default_factory=lambda: _NO_CANDIDATES)
    candidate_errors: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    ceiling: float | None = None  # the credible ceiling the forecast was capped at
    frame: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    id: int | None = None

    @classmethod
    def of(
        cls,
        service: str,
        forecast: Forecast,
        *,
        created_at: dt.datetime,
        choice: Choice | None = None,
        live: LiveJudgement | None = None,
        candidates: Mapping[str, CompactForecast] | None = None,
        candidate_errors: Mapping[str, str] | None = None,
    ) -> ForecastRun:
        """The run to store for ``forecast`` (made as of ``forecast.fitted_at``)."""
        return cls(
            service=service,
            created_at=created_at,
            as_of=forecast.fitted_at,
            history_end=forecast.history_end,
            model=forecast.model,
            resolution=forecast.resolution,
            interval_width=forecast.interval_width,
            components=forecast.components,
            notes=forecast.notes,
            event_effects=forecast.event_effects,
            choice=choice,
            live=live,
            candidates=candidates or _NO_CANDIDATES,
            candidate_errors=candidate_errors or _EMPTY,
            ceiling=forecast.ceiling,
            frame=forecast.frame,
        )

    def to_forecast(self, *, since: dt.datetime | None = None) -> Forecast:
        """The forecast (rows from the step holding ``since`` on, when given)."""
        if self.frame is None:
            raise ValueError(f"forecast run #{self.id} was read without its points")
        frame = self.frame
        if since is not None:
            end = frame["ds"] + pd.Timedelta(self.resolution)
            frame = frame[end > pd.Timestamp(since)].reset_index(drop=True)
        return Forecast(
            frame=frame,
            components=tuple(c for c in self.components if c in frame.columns),
            resolution=self.resolution,
            interval_width=self.interval_width,
            fitted_at=self.as_of,
            history_end=self.history_end,
            model=self.model,
            event_effects=self.event_effects,
            notes=self.notes,
            ceiling=self.ceiling,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class RunStamp:
    """A stored forecast run without its points or metadata: for listings and staleness."""

    id: int
    service: str
    created_at: dt.datetime
    as_of: dt.datetime
    history_end: dt.datetime
    model: str
    resolution: dt.timedelta


@dataclass(frozen=True, kw_only=True, slots=True)
class ForecastPoint:
    """One step of a stored forecast (demand units)."""

    ts: dt.datetime
    yhat: float
    yhat_lower: float
    yhat_upper: float


@dataclass(frozen=True, kw_only=True, slots=True)
class ChangeRecord:
    """One planned/applied change: the audit record of a plan, apply or commit attempt."""

    service: str
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
    forecast_run_id: int | None = None
    trigger: str = "cli"
    plan_summary: str = ""
    guard_reasons: tuple[str, ...] = ()
    exit_code: int | None = None
    output_tail: str = ""
    commit_sha: str | None = None
    finished_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    id: int | None = None
    retry_of: int | None = None  # the attempt this one continues
    file_sha_before: str | None = None  # what the file held before forescale wrote ...
    literal_before: str | None = None  # ... (None: the variable was absent)
    file_sha_after: str | None = None  # ... and what forescale wrote
    literal_after: str | None = None
    message: str = ""  # the outcome as the operator saw it


@dataclass(frozen=True, kw_only=True, slots=True)
class CollectRun:
    """One collect of one service: what was stored, the coverage, or the error."""

    service: str
    at: dt.datetime
    written: int
    coverage: float | None
    last_sample: dt.datetime | None
    error: str | None = None
    id: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RefreshRun:
    """A refit asked for through ``POST /v1/services/{name}/refresh``."""

    id: int
    service: str
    status: str  # queued | running | succeeded | failed
    requested_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    error: str | None = None
    forecast_run_id: int | None = None
    owner: str | None = None  # the server process that queued it; None: before migration 0006
    heartbeat_at: dt.datetime | None = None  # its owner's last sign of life (UTC); None: ditto


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredPrice:
    """A unit's on-demand price looked up once with the AWS Pricing API (``prices``)."""

    key: str  # aws:ec2:<instance type>:<region>:<os>:<tenancy>
    per_hour: float
    currency: str
    fetched_at: dt.datetime
    description: str  # what the price list says the price is for


@dataclass(frozen=True, kw_only=True, slots=True)
class ModeChange:
    """A shadow service entering shadow mode, promoted out of it or demoted back
    (``mode_changes``): the audit of what mode forescale acts in and why."""

    service: str
    at: dt.datetime  # UTC
    from_mode: str | None  # None: the first record of this service
    to_mode: str
    reason: str
    id: int | None = None
