"""The daemon's plan (usecases.plan.schedule) lifts the forecast ahead while the demand runs
above it (forecaster.lift): a morning 20 % busier than forecast is planned 20 % higher for
the ramp still to come, up to last week's peak, and the plan says so."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from forescale.forecaster.types import CapacityPolicy
from forescale.usecases.plan import Schedule, schedule
from tests.fakes import known_forecast

FIVE = dt.timedelta(minutes=5)
NINE = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
NOW = NINE + dt.timedelta(hours=1)
POLICY = CapacityPolicy(
    capacity_per_unit=100.0,
    min_units=1,
    max_units=50,
    lead_time=dt.timedelta(minutes=15),
    stabilization=dt.timedelta(minutes=15),
    scale_in_tolerance=0.0,
    observed_headroom=0.0,
    max_lift=1.5,
)
# the forecast made at 09:00: 300 until 10:30, then the ramp to 600 from 10:30
RAMP = [300.0] * 18 + [600.0] * 30


def history(last_hour: float, week_peak: float) -> pd.DataFrame:
    """Two days of 5-minute demand at 300, ``week_peak`` once a day before, and
    ``last_hour`` from 09:00 until now."""
    ds = pd.date_range(NINE - dt.timedelta(days=2), NOW, freq=FIVE, inclusive="left")
    y = np.where(ds >= pd.Timestamp(NINE), last_hour, 300.0)
    y[ds == pd.Timestamp(NINE - dt.timedelta(days=1))] = week_peak
    return pd.DataFrame({"ds": ds, "y": y})


def plan(last_hour: float, *, week_peak: float = 1000.0, max_lift: float = 1.5) -> Schedule:
    return schedule(
        known_forecast(NINE, RAMP, FIVE),
        history(last_hour, week_peak),
        dataclasses.replace(POLICY, max_lift=max_lift),
        current_units=4,
        now=NOW,
        stale_after=dt.timedelta(minutes=15),
        timezone="UTC",
    )


def units_at(made: Schedule, at: dt.datetime) -> int:
    desired = made.plan.desired
    return int(desired.loc[desired["ds"] <= pd.Timestamp(at), "units"].iloc[-1])


def test_a_busier_morning_is_planned_higher_for_the_ramp_still_to_come() -> None:
    ramp = NINE + dt.timedelta(hours=1, minutes=30)
    lifted = plan(360.0)  # 20 % above the forecast's 300
    assert units_at(lifted, ramp) == 8  # 600 x 1.2 = 720
    assert lifted.plan.notes[-1] == (
        "demand ran 20% above the forecast over the last 1 h: the forecast ahead is lifted "
        "by 20%, up to the recent peak 1,000"
    )
    unlifted = plan(360.0, max_lift=1.0)
    assert units_at(unlifted, ramp) == 6
    assert not any("above the forecast" in n for n in unlifted.plan.notes)


def test_the_lift_stays_under_last_weeks_peak() -> None:
    made = plan(360.0, week_peak=650.0)
    assert units_at(made, NINE + dt.timedelta(hours=1, minutes=30)) == 7  # 650, not 720


def test_a_quieter_morning_is_not_planned_lower() -> None:
    made = plan(240.0)
    assert units_at(made, NINE + dt.timedelta(hours=1, minutes=30)) == 6
    assert not any("above the forecast" in n for n in made.plan.notes)
