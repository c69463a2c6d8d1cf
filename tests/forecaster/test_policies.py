"""The simple policies as candidates: recent peak hold and reactive-only."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from forescale.errors import InsufficientHistory
from forescale.forecaster.accuracy import Floor
from forescale.forecaster.candidates import CandidateSet
from forescale.forecaster.ceiling import Ceiling
from forescale.forecaster.decision import choose
from forescale.forecaster.policies import (
    REACTIVE,
    RECENT_PEAK,
    reactive_forecast,
    recent_peak_forecast,
)
from forescale.forecaster.types import Event, Forecast, ForecastSettings

NOW = dt.datetime(2024, 3, 15, 0, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=5)
SETTINGS = ForecastSettings(horizon=dt.timedelta(hours=6))


def series(days: int, *, spike_at: dt.datetime | None = None) -> pd.DataFrame:
    ds = pd.date_range(NOW - dt.timedelta(days=days), NOW, freq=STEP, inclusive="left")
    y = np.full(len(ds), 10.0)
    if spike_at is not None:
        y[ds == pd.Timestamp(spike_at)] = 90.0
    return pd.DataFrame({"ds": ds, "y": y})


def test_recent_peak_holds_the_highest_demand_of_the_last_week() -> None:
    history = series(14, spike_at=NOW - dt.timedelta(days=3))
    history.loc[0, "y"] = 500.0  # older than a week: forgotten
    out = recent_peak_forecast(history, settings=SETTINGS, now=NOW)
    assert out.model == RECENT_PEAK
    assert (out.frame["yhat_upper"] == 90.0).all() and (out.frame["yhat"] == 90.0).all()
    assert out.frame["ds"].iloc[0] == pd.Timestamp(NOW)
    assert out.frame["ds"].iloc[-1] == pd.Timestamp(NOW + SETTINGS.horizon)  # as the models
    assert "hold 90" in out.notes[0]


def test_recent_peak_is_raised_by_an_expected_uplift_event() -> None:
    sale = Event(
        name="sale",
        start=NOW + dt.timedelta(hours=1),
        end=NOW + dt.timedelta(hours=2),
        expected_uplift=1.0,
    )
    out = recent_peak_forecast(series(8), settings=SETTINGS, now=NOW, events=[sale])
    inside = (out.frame["ds"] >= pd.Timestamp(sale.start)) & (
        out.frame["ds"] < pd.Timestamp(sale.end)
    )
    assert (out.frame.loc[inside, "yhat_upper"] == 20.0).all()
    assert (out.frame.loc[~inside, "yhat_upper"] == 10.0).all()
    assert [e.name for e in out.event_effects] == ["sale"]


def test_reactive_forecasts_nothing_and_both_need_history() -> None:
    out = reactive_forecast(series(8), settings=SETTINGS, now=NOW)
    assert out.model == REACTIVE and (out.frame["yhat_upper"] == 0).all()
    with pytest.raises(InsufficientHistory):
        reactive_forecast(series(8).iloc[:1], settings=SETTINGS, now=NOW)
    with pytest.raises(InsufficientHistory):
        recent_peak_forecast(series(8).iloc[:10], settings=SETTINGS, now=NOW)


def _flat(level: float) -> object:
    def fit(history: pd.DataFrame, **kwargs: object) -> Forecast:
        now = kwargs["now"]
        assert isinstance(now, dt.datetime)
        ds = pd.date_range(now, periods=72, freq=STEP)
        values = np.full(len(ds), level)
        return Forecast(
            frame=pd.DataFrame(
                {"ds": ds, "yhat": values, "yhat_lower": values, "yhat_upper": values * 3}
            ),
            components=(),
            resolution=STEP,
            interval_width=0.9,
            fitted_at=now,
            history_end=now,
            model="prophet",
        )

    return fit


def test_a_chosen_policy_keeps_the_best_forecast_for_the_report() -> None:
    """The record shows the forecast costs twice the demand while holding the peak costs
    the floor's 1.25x: the policy plans capacity, the forecast still says what demand to
    expect."""
    history = series(14)
    candidates = CandidateSet(
        fitters={
            "prophet": _flat(10.0),  # type: ignore[dict-item]
            "recent_peak": lambda h, **k: recent_peak_forecast(h, **k),  # type: ignore[dict-item]
        }
    )
    fitted = candidates.fit(history, settings=SETTINGS, now=NOW, models=("prophet", RECENT_PEAK))
    ds = pd.date_range(NOW - dt.timedelta(days=1), NOW, freq=STEP, inclusive="left")
    record = pd.DataFrame(
        {
            "ds": ds,
            "actual": 10.0,
            "prophet:yhat": 20.0,  # a forecast that runs twice too high
            "prophet:upper": 30.0,
            "recent_peak:yhat": 10.0,
            "recent_peak:upper": 10.0,
        }
    )
    forecast, choice = choose(
        fitted,
        record,
        target_under=0.03,
        floor=Floor(headroom=0.3),
        ceiling=Ceiling(value=12.5, peak=10.0, allowance=1.25),
    )
    assert choice.model == RECENT_PEAK
    assert choice.reason.startswith("bursty: holding the recent peak")
    assert (forecast.frame["yhat_upper"] == 10.0).all()  # capacity: the held peak
    assert (forecast.frame["yhat"].dropna() == 10.0).all()  # demand: the forecast's point
    assert forecast.ceiling == 12.5
