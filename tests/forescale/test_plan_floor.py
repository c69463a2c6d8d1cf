"""The observed-demand floor in the daemon's plan (usecases.plan.schedule) holds what it
saw through the scale-in stabilisation, as the forecast's needs are held: a burst raises
the floor at once and lowers it only once the demand has been lower for the whole window."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from forescale.forecaster.types import CapacityPolicy, Forecast
from forescale.usecases.plan import schedule
from tests.fakes import known_forecast

FIVE = dt.timedelta(minutes=5)
NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
POLICY = CapacityPolicy(
    capacity_per_unit=100.0,
    min_units=1,
    max_units=20,
    lead_time=dt.timedelta(0),
    stabilization=dt.timedelta(minutes=15),
    scale_in_tolerance=0.0,
    observed_headroom=0.0,
)


def flat_forecast(level: float) -> Forecast:
    return known_forecast(NOON, [level] * 72, FIVE)


def history_until(end: dt.datetime, burst_at: dt.datetime) -> pd.DataFrame:
    ds = pd.date_range(NOON - dt.timedelta(hours=1), end, freq=FIVE)
    y = np.where(ds == pd.Timestamp(burst_at), 800.0, 300.0)
    return pd.DataFrame({"ds": ds, "y": y})


def units_now(now: dt.datetime, policy: CapacityPolicy = POLICY) -> tuple[int, str]:
    history = history_until(now, burst_at=NOON + dt.timedelta(minutes=5))
    made = schedule(
        flat_forecast(300.0),
        history,
        policy,
        current_units=8,
        now=now,
        stale_after=dt.timedelta(minutes=15),
        timezone="UTC",
    )
    assert made.observed_demand == history["y"].iloc[-1]  # the report shows the newest sample
    reasons = " ".join(step.reason for step in made.plan.steps)
    return int(made.plan.desired["units"].iloc[0]), reasons


def test_a_burst_holds_the_floor_for_the_stabilisation_window() -> None:
    # the burst at 12:05 is in the window until 12:20: 8 units are held
    for minutes in (5, 10, 15, 20):
        units, reasons = units_now(NOON + dt.timedelta(minutes=minutes))
        assert units == 8, (minutes, reasons)
    # at 12:25 the demand has been 300 for the whole 15 minutes: lowered to 3
    units, reasons = units_now(NOON + dt.timedelta(minutes=25))
    assert units == 3
    assert "lower 8→3" in reasons


def test_without_a_stabilisation_window_the_floor_follows_the_newest_sample() -> None:
    policy = dataclasses.replace(POLICY, stabilization=dt.timedelta(0))
    units, _ = units_now(NOON + dt.timedelta(minutes=10), policy)
    assert units == 3


def test_the_reason_names_the_held_demand() -> None:
    made = schedule(
        flat_forecast(300.0),
        history_until(NOON + dt.timedelta(minutes=10), burst_at=NOON + dt.timedelta(minutes=5)),
        POLICY,
        current_units=3,
        now=NOON + dt.timedelta(minutes=10),
        stale_after=dt.timedelta(minutes=15),
        timezone="UTC",
    )
    step = made.plan.steps[0]
    assert step.reason.startswith(
        "raise 3→8 at 12:10Z: observed demand up to 800.0 in the last 15m needs 8 units"
    )
