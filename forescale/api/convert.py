"""Store values to API values: finite floats, UTC datetimes, and the run records as their
response models. Pure; no I/O."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pandas as pd

from forescale.api.contract import refresh_id
from forescale.api.schemas import RefreshRunOut, RunOut
from forescale.records import ChangeRecord, RefreshRun


def utc(value: Any) -> dt.datetime:
    """A tz-aware timestamp (pandas or datetime) as a UTC :class:`datetime.datetime`."""
    return pd.Timestamp(value).tz_convert("UTC").to_pydatetime()


def iso(value: dt.datetime) -> str:
    """ISO 8601 in UTC with ``Z``: ``2024-03-01T12:00:00Z``."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def from_epoch(seconds: float) -> dt.datetime:
    """A Unix time (seconds, as the store keeps it) as a UTC datetime."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def run_out(record: ChangeRecord) -> RunOut:
    """A change record as the API serves it (``kind: "change"``)."""
    # RunOut mirrors ChangeRecord field for field; only the id and the tuple differ.
    fields = dataclasses.asdict(record)
    fields.update(id=record.id or 0, guard_reasons=list(record.guard_reasons))
    return RunOut(**fields)


def refresh_out(run: RefreshRun) -> RefreshRunOut:
    """A refresh run as the API serves it (``kind: "refresh"``, id ``refresh-<n>``)."""
    return RefreshRunOut(
        id=refresh_id(run.id),
        service=run.service,
        status=run.status,  # type: ignore[arg-type]  # pydantic checks the literal
        requested_at=run.requested_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        error=run.error,
        forecast_run_id=run.forecast_run_id,
    )
