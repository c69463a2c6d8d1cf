"""The decision shared by refits and backtests (forecaster/decision.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from forescale.forecaster.decision import decide
from forescale.forecaster.types import Forecast

T0 = dt.datetime(2024, 3, 4, tzinfo=dt.UTC)
FIVE_MIN = dt.timedelta(minutes=5)


def flat(model: str, level: float) -> Forecast:
    ds = pd.date_range(T0 + dt.timedelta(days=1), periods=12, freq=FIVE_MIN)
    frame = pd.DataFrame(
        {"ds": ds, "yhat": level, "yhat_lower": level, "yhat_upper": level}, index=range(12)
    )
    return Forecast(
        frame=frame,
        components=(),
        resolution=FIVE_MIN,
        interval_width=0.9,
        fitted_at=T0,
        history_end=T0,
        model=model,
    )


def test_an_outlier_in_the_record_judges_no_model() -> None:
    """A bogus sample in the record is a miss for every forecast: left in, it would buy
    the primary headroom it never needed; named as an outlier, it is not judged."""
    ds = pd.date_range(T0, periods=288, freq=FIVE_MIN)
    actual = np.full(288, 100.0)
    actual[100] = 1e9
    record = pd.DataFrame({"ds": ds, "actual": actual, "m:yhat": 100.0, "m:upper": 100.0})
    options = {
        "target_under": 0.001,
        "max_factor": 3.0,
        "min_steps": 48,
        "floor": None,
        "ceiling": None,
    }
    forecasts = {"m": flat("m", 100.0)}
    _, judged = decide(forecasts, ["m"], record, **options)
    assert judged.factor == 3.0  # nothing holds the bogus sample: the widest headroom
    _, clean = decide(forecasts, ["m"], record, outliers=(ds[100].to_pydatetime(),), **options)
    assert clean.factor == 1.0
    [evidence] = clean.evidence
    assert evidence.under_share_widened == 0.0 and evidence.steps == 287


def test_the_demand_shown_is_the_most_accurate_forecast_capacity_the_cheapest() -> None:
    """``spiky`` is exact but half the demand on one step in twenty: the most accurate
    point by point, yet holding the target with it takes twice the capacity. ``high`` is
    5 % above demand everywhere: less accurate, and the cheapest cover. Capacity comes from
    ``high``; the demand the report shows is ``spiky``'s."""
    ds = pd.date_range(T0, periods=288, freq=FIVE_MIN)
    actual = np.full(288, 100.0)
    spiky = np.where(np.arange(288) % 20 == 0, 50.0, 100.0)
    record = pd.DataFrame(
        {
            "ds": ds,
            "actual": actual,
            "high:yhat": 105.0,
            "high:upper": 106.0,
            "spiky:yhat": spiky,
            "spiky:upper": spiky,
        }
    )
    forecasts = {"high": flat("high", 105.0), "spiky": flat("spiky", 100.0)}
    forecasts["high"].frame["yhat_upper"] = 106.0
    forecast, choice = decide(
        forecasts,
        ["high", "spiky"],
        record,
        target_under=0.01,
        max_factor=3.0,
        min_steps=48,
        floor=None,
        ceiling=None,
    )
    assert (choice.model, choice.basis, choice.factor) == ("high", "point", 1.0)
    assert forecast.model == "high"
    np.testing.assert_array_equal(forecast.frame["yhat_upper"], 105.0)
    np.testing.assert_array_equal(forecast.frame["yhat"], 100.0)
    [note] = [n for n in forecast.notes if n.startswith("demand forecast")]
    assert note == (
        "demand forecast: spiky, the most accurate on the record (sMAPE 3.5 % against "
        "4.9 % for high, which plans the capacity)"
    )
