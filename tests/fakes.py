"""Fakes for tests that need a forecaster but not Prophet's cost."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from collectors.series import infer_step
from forecaster.types import Event, Forecast, ForecastSettings


def seasonal_naive(
    history: pd.DataFrame,
    *,
    events: Sequence[Event] = (),
    settings: ForecastSettings,
    now: dt.datetime,
    min_history: dt.timedelta = dt.timedelta(hours=24),
) -> Forecast:
    """Value one day earlier, band ±10 %; signature of ``forecaster.model.fit_forecast``."""
    del events, min_history
    past = history[history["ds"] <= pd.Timestamp(now)].dropna(subset=["y"])
    step = infer_step(history["ds"])
    end = pd.Timestamp(past["ds"].iloc[-1])
    ds = pd.date_range(end + step, pd.Timestamp(now) + settings.horizon, freq=step)
    lookup = past.set_index("ds")["y"]
    day = pd.Timedelta(days=1)
    values = []
    for t in ds:
        back = t - day
        while back > end:
            back -= day
        values.append(float(lookup.get(back, np.nan)))
    yhat = pd.Series(values).ffill().bfill().to_numpy()
    frame = pd.DataFrame(
        {"ds": ds, "yhat": yhat, "yhat_lower": yhat * 0.9, "yhat_upper": yhat * 1.1}
    )
    return Forecast(
        frame=frame,
        components=(),
        resolution=step,
        interval_width=settings.interval_width,
        fitted_at=now,
        history_end=end.to_pydatetime(),
        model="seasonal_naive_1d",
    )
