"""Samples far outside the recent distribution: flagged, kept out of every fit.

One bogus sample (1e9 among values around 1,000: a counter reset, a unit mix-up, a broken
exporter) must not drive capacity on its own - not now, and not a week later through
seasonal naive's memory. A sample is an *outlier* when

1. it is more than ``FACTOR`` (10) times the highest of the ``WINDOW`` (7 days) of samples
   before it (at least ``MIN_BEFORE`` of them: the start of a series is never judged) -
   a magnitude the last week never came near, and
2. it is isolated: at most ``MAX_RUN`` (2) such samples in a row, followed by a sample
   back in range. The newest samples are never flagged - whether a jump at the end is a
   glitch or a new level cannot be told yet (the observed-demand floor follows it).

Bursts that repeat (a bursty CPU series reaching 99 % now and then) set the week's high
themselves and are not flagged; a sustained rise is not isolated. Flagged samples become
gaps (NaN) in the history handed to the models, the record and the credible ceiling; the
report names each one. Pure: a frame in, a frame and the flags out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FACTOR", "MAX_RUN", "Outlier", "flag_outliers", "masked"]

FACTOR = 10.0
WINDOW = dt.timedelta(days=7)
MIN_BEFORE = 48
MAX_RUN = 2


@dataclass(frozen=True, kw_only=True, slots=True)
class Outlier:
    """One flagged sample: when, its value, and the week's high it was judged by."""

    at: dt.datetime
    value: float
    reference: float

    def describe(self) -> str:
        return (
            f"{self.value:,.6g} at {self.at:%Y-%m-%d %H:%M}Z (the week before peaked at "
            f"{self.reference:,.6g})"
        )


def flag_outliers(history: pd.DataFrame) -> tuple[Outlier, ...]:
    """The outliers in ``history`` (``ds`` ascending, ``y``; NaN = gap)."""
    observed = history[history["y"].notna()]
    if len(observed) <= MIN_BEFORE + 1:
        return ()
    y = observed["y"].to_numpy(dtype=float)
    values = pd.Series(y, index=pd.DatetimeIndex(observed["ds"]))
    reference = values.rolling(WINDOW, closed="left", min_periods=MIN_BEFORE).max().to_numpy()
    suspect = np.isfinite(reference) & (y > FACTOR * np.maximum(reference, 0.0)) & (y > 0)
    out: list[Outlier] = []
    i, n = 0, len(y)
    while i < n:
        if not suspect[i]:
            i += 1
            continue
        limit = FACTOR * max(float(reference[i]), 0.0)
        j = i
        while j < n and y[j] > limit:  # judged by the week before the run, not by the run
            j += 1
        if j - i <= MAX_RUN and j < n:  # isolated, and demand came back after it
            out.extend(
                Outlier(
                    at=pd.Timestamp(observed["ds"].iloc[k]).to_pydatetime(),
                    value=float(y[k]),
                    reference=float(reference[i]),
                )
                for k in range(i, j)
            )
        i = j
    return tuple(out)


def masked(history: pd.DataFrame, outliers: tuple[Outlier, ...]) -> pd.DataFrame:
    """``history`` with the ``outliers`` turned into gaps (NaN)."""
    if not outliers:
        return history
    out = history.copy()
    at = pd.DatetimeIndex([o.at for o in outliers])
    out.loc[pd.DatetimeIndex(out["ds"]).isin(at), "y"] = np.nan
    return out
