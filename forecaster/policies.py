"""The simple policies teams run instead of a forecast, as candidates in the same contest.

Each is a "model" with a Forecast like any other, fitted at every refit, stored for the
record and judged by it (:mod:`forescale.forecaster.accuracy`): when its record holds the
target for less provisioned demand than every forecast, the record chooses it, and says so.

* ``recent_peak`` — hold the highest demand of the last ``PEAK_WINDOW`` (7 days) for the
  whole horizon: what a team sizes a static group for, but kept current. For series whose
  peaks are not predictable in time (bursty CPU, unforeseen spikes) a forecast cannot know
  when the next burst comes; holding the recent peak is then the honest answer.
* ``reactive`` — no forecast at all: capacity comes from the observed-demand floor alone
  (target tracking on the demand collected a few minutes earlier ×
  ``1 + observed_headroom``, which every plan applies anyway). Chosen when the record shows
  a forecast adds cost and nothing else.

Events with an ``expected_uplift`` raise ``recent_peak`` in their windows, as they raise
every other candidate. Pure: a history frame in, a Forecast out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from forescale.forecaster.challengers import expected_uplift
from forescale.forecaster.grid import observed_history
from forescale.forecaster.types import Event, Forecast, ForecastSettings

__all__ = [
    "PEAK_WINDOW",
    "REACTIVE",
    "RECENT_PEAK",
    "reactive_forecast",
    "recent_peak_forecast",
]

RECENT_PEAK = "recent_peak"
REACTIVE = "reactive"
PEAK_WINDOW = dt.timedelta(days=7)


def recent_peak_forecast(
    history: pd.DataFrame,
    *,
    settings: ForecastSettings,
    now: dt.datetime,
    events: Sequence[Event] = (),
    min_history: dt.timedelta = dt.timedelta(hours=24),
    window: dt.timedelta = PEAK_WINDOW,
) -> Forecast:
    """Hold the highest observed demand of ``window`` before ``now`` over the horizon."""
    observed, step = observed_history(history, now, min_history, RECENT_PEAK)
    recent = observed[observed["ds"] > pd.Timestamp(now - window)]
    peak = float(recent["y"].max())
    ds = _future(observed, step, now, settings.horizon)
    factor, components, effects = expected_uplift(events, ds, step)
    level = peak * factor
    frame = pd.DataFrame(
        {"ds": ds, "yhat": level, "yhat_lower": level, "yhat_upper": level, **components}
    )
    return Forecast(
        frame=frame,
        components=tuple(components),
        resolution=step,
        interval_width=settings.interval_width,
        fitted_at=now,
        history_end=pd.Timestamp(observed["ds"].iloc[-1]).to_pydatetime(),
        model=RECENT_PEAK,
        event_effects=effects,
        notes=(f"recent peak: hold {peak:,.6g}, the highest demand of the last {window.days} d",),
    )


def reactive_forecast(
    history: pd.DataFrame,
    *,
    settings: ForecastSettings,
    now: dt.datetime,
    events: Sequence[Event] = (),
    min_history: dt.timedelta = dt.timedelta(hours=24),
) -> Forecast:
    """No forecast (zero demand): capacity follows the observed-demand floor alone."""
    del events  # reacting is all it does
    observed, step = observed_history(history, now, min_history, REACTIVE)
    ds = _future(observed, step, now, settings.horizon)
    zero = np.zeros(len(ds))
    return Forecast(
        frame=pd.DataFrame({"ds": ds, "yhat": zero, "yhat_lower": zero, "yhat_upper": zero}),
        components=(),
        resolution=step,
        interval_width=settings.interval_width,
        fitted_at=now,
        history_end=pd.Timestamp(observed["ds"].iloc[-1]).to_pydatetime(),
        model=REACTIVE,
        notes=("reactive: no forecast; capacity follows the observed demand",),
    )


def _future(
    observed: pd.DataFrame, step: dt.timedelta, now: dt.datetime, horizon: dt.timedelta
) -> pd.DatetimeIndex:
    """The steps after the last sample up to ``now + horizon`` (as the models' frames)."""
    last = pd.Timestamp(observed["ds"].iloc[-1])
    count = max(1, int((pd.Timestamp(now + horizon) - last) / pd.Timedelta(step)))
    return pd.date_range(last + pd.Timedelta(step), periods=count, freq=pd.Timedelta(step))
