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
