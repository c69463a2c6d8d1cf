"""Fakes for tests that need a forecaster but not Prophet's cost."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from forescale.collectors.series import infer_step
from forescale.forecaster.accuracy import Choice
from forescale.forecaster.candidates import CandidateSet
from forescale.forecaster.types import Event, Forecast, ForecastSettings
from forescale.records import ForecastRun


def seasonal_naive(
    history: pd.DataFrame,
    *,
    events: Sequence[Event] = (),
    settings: ForecastSettings,
    now: dt.datetime,
    min_history: dt.timedelta = dt.timedelta(hours=24),
) -> Forecast:
    """Value one day earlier, band ±10 %; signature of
    ``forescale.forecaster.model.fit_forecast``."""
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


def known_forecast(
    start: dt.datetime,
    values: Sequence[float] | np.ndarray,
    step: dt.timedelta,
    *,
    model: str = "m",
) -> Forecast:
    """A forecast that knows exactly ``values`` from ``start`` every ``step``: point,
    lower and upper edge all the same, fitted at ``start`` on history up to one step
    before it."""
    ds = pd.date_range(start, periods=len(values), freq=step)
    v = np.asarray(values, dtype=float)
    return Forecast(
        frame=pd.DataFrame({"ds": ds, "yhat": v, "yhat_lower": v, "yhat_upper": v}),
        components=(),
        resolution=step,
        interval_width=0.9,
        fitted_at=start,
        history_end=start - step,
        model=model,
    )


FAST = CandidateSet(fitters={"prophet": seasonal_naive})
"""A candidate set whose only model is :func:`seasonal_naive` standing in for Prophet: the
product's path (choice by record, storage, planning) without Prophet's cost."""


def forecast_run(
    service: str,
    frame: pd.DataFrame,
    *,
    at: dt.datetime,
    resolution: dt.timedelta,
    model: str = "fake",
    components: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
    choice: Choice | None = None,
    history_end: dt.datetime | None = None,
) -> ForecastRun:
    """A hand-made forecast run made at ``at`` (to store with ``Store.save_forecast_run``)."""
    return ForecastRun(
        service=service,
        created_at=at,
        as_of=at,
        history_end=at if history_end is None else history_end,
        model=model,
        resolution=resolution,
        interval_width=0.9,
        components=components,
        notes=notes,
        choice=choice,
        frame=frame,
    )
