"""The credible ceiling: capacity from a forecast never exceeds what the history justifies.

A forecast can explode: a log-scale fit of a bursty 0.1 %-idle CPU series put its upper
band at 75,677 for a percentage, and the plan would have pinned the group at ``max_units``.
The ceiling bounds what a forecast may ask for, in demand units:

1. ``peak`` — the highest demand observed in the fitted window (the history handed to the
   fit, up to ``now``);
2. ``value = peak × allowance`` (``forecast.peak_allowance``, a bounded headroom over the
   peak for demand that grows), never above the source's ``max_value`` (e.g. 100 for a
   percentage) — which caps the forecast on its own even without a peak allowance;
3. raised only by a stated reason: inside the window of a calendar event with an
   ``expected_uplift`` (an event history has not seen), the ceiling of those rows is
   ``value × (1 + uplift)`` (still never above ``max_value``).

Without a ``max_value``, a history that *saturates* supplies one: when the demand is not
whole numbers (a percentage, a ratio, a rate - not a count) and its highest value was
reached exactly in at least :data:`SATURATION_RUNS` separate runs covering at least
:data:`SATURATION_SHARE` of the samples, something clips it there (a CPU at 100 %, a
connection pool at its size): continuous demand does not return to the same maximum to
the last digit, again and again, by chance (a perfectly periodic signal touches its
maximum once a period: too few samples). That level is then the source's maximum
(:func:`saturated_at`), and the report says how it was inferred.

:func:`capped` clips the forecast's upper band (and point) to the ceiling row by row and
says so in a note, naming the peak and the allowance; when the band went more than
``EXPLODED`` times above the ceiling it says the band exploded. The planner also keeps the
observed-demand floor at the ceiling while the observed demand is below it (so a floor with
30 % headroom over a demand at its peak does not buy 30 % more than the peak needs); once
demand breaks through the ceiling, the floor follows it with its full headroom — the
ceiling was wrong and the record will show it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forescale.forecaster.outliers import Outlier, flag_outliers, masked
from forescale.forecaster.types import Forecast

__all__ = [
    "CAPPED",
    "EXPLODED",
    "PEAK_ALLOWANCE",
    "SATURATION_RUNS",
    "SATURATION_SHARE",
    "Ceiling",
    "capped",
    "credible_ceiling",
    "saturated_at",
]

CAPPED = "capped at the credible ceiling"
"""How the note of a capped forecast begins (:func:`capped`)."""
EXPLODED = 3.0
PEAK_ALLOWANCE = 1.1
"""The default allowance over the fitted window's peak (chosen by leaving whole groups of
series out: docs/BENCHMARKS.md)."""
SATURATION_RUNS = 5
"""How many separate runs at exactly the highest value make a non-integer history
saturated (:func:`saturated_at`)..."""
SATURATION_SHARE = 0.005
"""... and what share of its samples they must hold at least."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Ceiling:
    """The most demand a forecast may plan for (demand units), and where it comes from."""

    value: float
    peak: float
    allowance: float
    max_value: float | None = None
    # max_value was inferred: the history reached it exactly in this many separate runs
    saturated_runs: int | None = None

    def describe(self) -> str:
        if self.max_value is not None and self.value >= self.max_value:
            if self.saturated_runs is not None:
                return (
                    f"the level the history saturates at, {self.max_value:,.6g}: reached "
                    f"exactly in {self.saturated_runs} separate runs, never passed"
                )
            return f"the source's maximum {self.max_value:,.6g}"
        return f"the fitted window's peak {self.peak:,.6g} × {self.allowance:g}"


def saturated_at(values: np.ndarray) -> tuple[float, int] | None:
    """(the level, its runs) when ``values`` (finite, in time order) saturate: not all
    whole numbers, and the highest value reached exactly in at least
    :data:`SATURATION_RUNS` separate runs holding at least :data:`SATURATION_SHARE` of the
    samples; else None."""
    y = np.asarray(values, dtype=float)
    if y.size == 0 or bool(np.all(y == np.round(y))):
        return None  # counts tie at their maximum by chance
    top = y == y.max()
    runs = int(top[0]) + int(np.count_nonzero(top[1:] & ~top[:-1]))
    if runs < SATURATION_RUNS or np.count_nonzero(top) < SATURATION_SHARE * y.size:
        return None
    return float(y.max()), runs


def credible_ceiling(
    history: pd.DataFrame,
    *,
    allowance: float,
    max_value: float | None = None,
    outliers: Sequence[Outlier] | None = None,
) -> Ceiling | None:
    """The ceiling for a forecast fitted on ``history`` (``ds``, ``y``; outliers do not
    count: :mod:`forescale.forecaster.outliers`, flagged here unless the caller already
    has them as ``outliers``); None when the history has no positive demand to judge by
    (and no ``max_value``). Without a ``max_value`` a saturated history supplies one
    (:func:`saturated_at`)."""
    flagged = flag_outliers(history) if outliers is None else tuple(outliers)
    ordered = masked(history, flagged).sort_values("ds", kind="stable")
    values = ordered["y"].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    peak = float(values.max()) if values.size else math.nan
    if not math.isfinite(peak) or peak <= 0:
        if max_value is None:
            return None
        return Ceiling(value=max_value, peak=math.nan, allowance=allowance, max_value=max_value)
    runs = None
    if max_value is None and (saturated := saturated_at(values)) is not None:
        max_value, runs = saturated
    value = peak * allowance
    if max_value is not None:
        value = min(value, max_value)
    return Ceiling(
        value=value, peak=peak, allowance=allowance, max_value=max_value, saturated_runs=runs
    )


def capped(forecast: Forecast, ceiling: Ceiling | None) -> Forecast:
    """``forecast`` with its band and point clipped to ``ceiling`` (raised in the windows
    of expected-uplift events), noted when anything was clipped; ``forecast.ceiling`` is
    set either way (the planner caps the observed floor with it)."""
    if ceiling is None:
        return forecast
    frame = forecast.frame
    limit = np.full(len(frame), ceiling.value)
    ds = pd.DatetimeIndex(frame["ds"])
    for effect in forecast.event_effects:
        if effect.source != "expected_uplift" or effect.effect <= 0:
            continue
        inside = np.asarray((ds >= pd.Timestamp(effect.start)) & (ds < pd.Timestamp(effect.end)))
        limit[inside] *= 1 + effect.effect
    if ceiling.max_value is not None:
        limit = np.minimum(limit, ceiling.max_value)
    upper = frame["yhat_upper"].to_numpy(dtype=float)
    over = np.isfinite(upper) & (upper > limit)
    if not over.any():
        return replace(forecast, ceiling=ceiling.value)
    out = frame.copy()
    for column in ("yhat", "yhat_lower", "yhat_upper"):
        out[column] = np.minimum(out[column].to_numpy(dtype=float), limit)
    highest = float(upper[over].max())
    exploded = highest > EXPLODED * float(limit[over].max())
    what = "the band exploded (upper edge up to" if exploded else "the upper band reached"
    note = (
        f"{CAPPED} {ceiling.value:,.6g} ({ceiling.describe()}): "
        f"{what} {highest:,.6g} on {int(over.sum())} of {len(over)} steps"
        + (")" if exploded else "")
    )
    return replace(forecast.noted(note, frame=out), ceiling=ceiling.value)
