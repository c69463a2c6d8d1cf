"""A hand-made plan report: every part a renderer shows, with nothing left to chance.

Built without the pipeline or Prophet so the report tests need no store or fit, and so the
numbers (and the JSON golden file) do not move when the planner's wording does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from forescale.forecaster.types import (
    CapacityPlan,
    CapacityPolicy,
    CapacityStep,
    EventEffect,
    Forecast,
)
from forescale.iac_writer.target import Edit, Snapshot
from forescale.report.plan_view import HistorySummary, PlanReport, ServiceFailure, ServiceReport

AS_OF = dt.datetime(2014, 11, 26, 23, 0, tzinfo=dt.UTC)  # 18:00 in New York
TIMEZONE = "America/New_York"
STEP = dt.timedelta(minutes=30)
DIFF = (
    "--- a/terraform/terraform.tfvars\n"
    "+++ b/terraform/terraform.tfvars\n"
    "@@ -1,3 +1,3 @@\n"
    " # capacity [web] <managed>\n"
    "-web_min_size = 12\n"
    "+web_min_size = 15\n"
    " other = 1\n"
)


def _forecast() -> Forecast:
    """48 h of half-hourly demand peaking at 20:00 local each day, with two calendar effects
    in the horizon and one outside it."""
    ds = pd.date_range(AS_OF + STEP, periods=96, freq=STEP, tz="UTC")
    local_hour = ds.tz_convert(TIMEZONE).hour.to_numpy(dtype=float) + ds.minute / 60
    shape = np.cos((local_hour - 20) / 24 * 2 * np.pi)  # 1 at 20:00, -1 at 08:00
    day2 = (ds >= pd.Timestamp("2014-11-27 05:00", tz="UTC")).astype(float)
    yhat = np.round(800 + 400 * shape - 250 * day2, 3)
    frame = pd.DataFrame(
        {
            "ds": ds,
            "yhat": yhat,
            "yhat_lower": np.round(yhat * 0.85, 3),
            "yhat_upper": np.round(yhat * 1.2, 3),
            "daily_weekday": np.round(0.5 * shape, 4),
            "event:Thanksgiving": -0.3 * day2,
        }
    )
    thanksgiving = EventEffect(
        name="Thanksgiving",
        start=dt.datetime(2014, 11, 27, 5, tzinfo=dt.UTC),
        end=dt.datetime(2014, 11, 28, 5, tzinfo=dt.UTC),
        effect=-0.3,
        source="expected_uplift",
    )
    return Forecast(
        frame=frame,
        components=("daily_weekday", "event:Thanksgiving"),
        resolution=STEP,
        interval_width=0.9,
        fitted_at=AS_OF,
        history_end=AS_OF,
        model="ensemble",
        event_effects=(
            thanksgiving,
            EventEffect(
                name="Launch <beta>",
                start=dt.datetime(2014, 11, 28, 0, tzinfo=dt.UTC),
                end=dt.datetime(2014, 11, 28, 2, tzinfo=dt.UTC),
                effect=0.25,
                source="learned",
                occurrences_in_history=2,
            ),
            EventEffect(
                name="Halloween",  # long before the horizon: not shown
                start=dt.datetime(2014, 10, 31, 4, tzinfo=dt.UTC),
                end=dt.datetime(2014, 11, 1, 4, tzinfo=dt.UTC),
                effect=0.1,
                source="holiday",
            ),
        ),
        notes=("ensemble: the mean of prophet + seasonal_naive", "model: record too short"),
    )


def _plan() -> CapacityPlan:
    raise_at = AS_OF + dt.timedelta(minutes=45)
    lower_at = AS_OF + dt.timedelta(hours=6)
    steps = (
        CapacityStep(
            at=raise_at,
            units=15,
            from_units=12,
            reason="raise 12\u219215 at 18:45 EST: forecast upper band 1440 needs 15 units",
            direction="raise",
            serves_at=raise_at + dt.timedelta(minutes=15),
            demand=1440.0,
            constraints=("step-limited: max_step_up 8 units",),
        ),
        CapacityStep(
            at=lower_at,
            units=10,
            from_units=15,
            reason="lower 15\u219210 at 2014-11-27 00:00 EST: demand stayed \u2264 960 [1h]",
            direction="lower",
            serves_at=lower_at,
            demand=960.123456789,
        ),
    )
    desired = pd.DataFrame(
        {"ds": pd.DatetimeIndex([AS_OF, raise_at, lower_at]), "units": [12, 15, 10]}
    )
    return CapacityPlan(
        steps=steps,
        desired=desired,
        current_units=12,
        now=AS_OF,
        notes=("ignored lower 15\u219214 at 23:00 EST: frees 1 of 15 units",),
    )


def _history() -> pd.DataFrame:
    ds = pd.date_range(AS_OF - dt.timedelta(hours=12), AS_OF, freq=STEP, tz="UTC")
    return pd.DataFrame({"ds": ds, "y": np.linspace(600.0, 1051.25, len(ds))})


def web() -> ServiceReport:
    """A fresh service with a pending raise, a diff and a recorded model choice."""
    plan = _plan()
    var_file = Path("terraform/terraform.tfvars")
    change = Edit(
        before=Snapshot(
            path=var_file, address="web_min_size", sha256="0" * 64, literal="12", value=12
        ),
        units=15,
        literal="15",
        new_bytes=b"web_min_size = 15\n",
        diff=DIFF,
    )
    return ServiceReport(
        name="web",
        source="csv demand.csv (value)",
        history=HistorySummary(
            start=dt.datetime(2014, 9, 30, 23, 0, tzinfo=dt.UTC),
            end=AS_OF,
            points=2735,
            coverage=0.99890123456,
            step=STEP,
        ),
        recent_history=_history(),
        forecast=_forecast(),
        plan=plan,
        policy=CapacityPolicy(
            capacity_per_unit=100.0,
            min_units=4,
            max_units=30,
            lead_time=dt.timedelta(minutes=15),
            max_lift=1.5,
        ),
        observed_demand=1051.25,
        lift=1.2,
        data_fresh=True,
        var_file=str(var_file),
        address="web_min_size",
        next_step=plan.steps[0],
        change=change,
        forecast_run_id=7,
        notes=("pipeline note",),
        model_choice={"model": "ensemble", "basis": "own band", "factor": 1.0, "evidence": []},
    )


def stale() -> ServiceReport:
    """Metrics stopped: no observed demand, nothing to change, no diff."""
    base = web()
    plan = replace(base.plan, steps=(), notes=())
    return replace(
        base,
        name="api",
        plan=plan,
        observed_demand=None,
        data_fresh=False,
        lift=1.0,  # stale metrics: nothing to compare the forecast with
        next_step=None,
        change=None,
        forecast_run_id=None,
        notes=(),
        model_choice=None,
    )


def report() -> PlanReport:
    """Two planned services and one failure (with characters every format must escape)."""
    return PlanReport(
        as_of=AS_OF,
        mode="dry-run",
        display_timezone=TIMEZONE,
        services=(web(), stale()),
        failures=(ServiceFailure(name="worker", error="cannot read [bold]<q.csv>[/bold] & co"),),
    )
