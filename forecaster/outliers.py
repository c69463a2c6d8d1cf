"""Samples far outside the recent distribution: flagged, kept out of every fit.

One bogus sample (1e9 among values around 1,000: a counter reset, a unit mix-up, a broken
exporter), or a short burst of them, must not drive capacity on its own - not now, and not
a week later through seasonal naive's memory or the credible ceiling. A sample is an
*outlier* when

1. it is more than ``FACTOR`` (10) times the highest of the ``WINDOW`` (7 days) of samples
   before it, leaving out the last ``GUARD`` (1 h) before it (at least ``MIN_BEFORE``
   samples: the start of a series is never judged) - a magnitude the last week never came
   near, judged by the week before the burst and not by the burst's own lead-in, and
2. it belongs to a short episode: such samples at most ``BRIDGE`` (2) ordinary samples
   apart form one episode, and an episode of at most ``MAX_RUN`` (3) of them followed by
   a sample back in range is flagged whole, with its shoulders: the samples within
   ``BRIDGE`` of it still above ``SHOULDER`` (2) times the week's high. The newest
   samples are never flagged - whether a jump at the end is a glitch or a new level cannot
   be told yet (the observed-demand floor follows it).

Bursts that repeat (a bursty CPU series reaching 99 % now and then) set the week's high
themselves and are not flagged; a sustained rise is not a short episode. Flagged samples
become gaps (NaN) in the history handed to the models, the record and the credible
ceiling; the report names each one. Pure: a frame in, a frame and the flags out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FACTOR", "MAX_RUN", "Outlier", "flag_outliers", "masked"]

FACTOR = 10.0
WINDOW = dt.timedelta(days=7)
GUARD = dt.timedelta(hours=1)
MIN_BEFORE = 48
MAX_RUN = 3
BRIDGE = 2
SHOULDER = 2.0


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
    ds = pd.DatetimeIndex(observed["ds"])
    reference = _week_high(pd.Series(y, index=ds))
    suspect = np.flatnonzero(
        np.isfinite(reference) & (y > FACTOR * np.maximum(reference, 0.0)) & (y > 0)
    )
    out: list[Outlier] = []
    i = 0
    while i < len(suspect):
        j = i  # the episode: suspects at most BRIDGE ordinary samples apart
        while j + 1 < len(suspect) and suspect[j + 1] - suspect[j] <= BRIDGE + 1:
            j += 1
        members = suspect[i : j + 1]
        after = int(members[-1]) + 1
        if len(members) <= MAX_RUN and after < len(y):  # short, and demand came back
            ref = float(reference[members[0]])  # the week before the episode
            # its shoulders: the samples around it still above SHOULDER x the week's high
            lo, hi = max(int(members[0]) - BRIDGE, 0), min(after + BRIDGE, len(y))
            span = np.arange(lo, hi)
            flagged = span[(y[span] > SHOULDER * max(ref, 0.0)) & (y[span] > 0)]
            out.extend(
                Outlier(at=ds[k].to_pydatetime(), value=float(y[k]), reference=ref)
                for k in np.union1d(flagged, members)
            )
        i = j + 1
    return tuple(out)


def _week_high(values: pd.Series) -> np.ndarray:
    """Per sample: the highest value of ``[ds - WINDOW, ds - GUARD)`` (NaN with fewer than
    ``MIN_BEFORE`` samples there)."""
    highs = values.rolling(WINDOW - GUARD, min_periods=MIN_BEFORE).max()
    ends = pd.DatetimeIndex(values.index)
    pos = ends.searchsorted(ends - pd.Timedelta(GUARD), side="left") - 1
    got = highs.to_numpy(dtype=float)[np.clip(pos, 0, None)]
    return np.where(pos >= 0, got, np.nan)


def masked(history: pd.DataFrame, outliers: tuple[Outlier, ...]) -> pd.DataFrame:
    """``history`` with the ``outliers`` turned into gaps (NaN)."""
    if not outliers:
        return history
    out = history.copy()
    at = pd.DatetimeIndex([o.at for o in outliers])
    out.loc[pd.DatetimeIndex(out["ds"]).isin(at), "y"] = np.nan
    return out
