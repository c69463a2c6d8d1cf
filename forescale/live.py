"""Live accuracy: how the forecast in force has done against what was collected since.

After each collect the daemon judges each service's newest stored forecast over the last
``forecast.live_window``: the weighted absolute error of its point forecast
(``sum |actual - yhat| / sum actual``, exported as ``forescale_forecast_error_ratio``) and
the share of steps whose demand went above the band capacity was planned on. Past either
limit (``live_max_error``, ``live_max_under``) the service is refitted at once instead of
at the next scheduled refit; the refit's record
(:func:`forescale.forecaster.candidates.live_record`)
then holds those misses, so the new headroom is wider - a forecast is never trusted more
than its record - and the refit's notes say why it happened.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from forescale.config.settings import ServiceSettings
from forescale.forecaster.accuracy import record_rows
from forescale.store import Store

__all__ = ["LiveAccuracy", "MIN_STEPS", "live_accuracy"]

MIN_STEPS = 6  # fewer judged steps than this say nothing yet


@dataclass(frozen=True, kw_only=True, slots=True)
class LiveAccuracy:
    service: str
    run_id: int
    since: dt.datetime
    steps: int
    error_ratio: float  # sum |actual - yhat| / sum actual (NaN when no demand)
    under_share: float  # share of steps with actual above the planned band
    refit_due: bool
    reason: str


def live_accuracy(
    store: Store, service: ServiceSettings, name: str, *, now: dt.datetime
) -> LiveAccuracy | None:
    """Judge the newest forecast of ``name`` on what was collected since it was made
    (within ``live_window`` before ``now``); None when there is nothing to judge yet."""
    run = store.latest_forecast(name)
    if run is None:
        return None
    start = max(run.as_of, now - service.forecast.live_window)
    if start >= now:
        return None
    actual = store.load_samples(name, start, now)
    forecast = run.to_forecast()
    rows = record_rows(actual, {"f": forecast}, start=start, end=now)
    a = rows["actual"].to_numpy(dtype=float)
    yhat = rows["f:yhat"].to_numpy(dtype=float)
    upper = rows["f:upper"].to_numpy(dtype=float)
    keep = np.isfinite(a) & np.isfinite(yhat) & np.isfinite(upper)
    a, yhat, upper = a[keep], yhat[keep], upper[keep]
    steps = int(a.size)
    total = float(a.sum())
    error = float(np.abs(a - yhat).sum() / total) if total > 0 else math.nan
    under = float(np.mean(a > upper)) if steps else math.nan
    fc = service.forecast
    reasons = []
    if steps >= MIN_STEPS:
        if under > fc.live_max_under:
            reasons.append(
                f"demand went above the planned band on {under:.0%} of the last {steps} steps "
                f"(limit {fc.live_max_under:.0%})"
            )
        if math.isfinite(error) and error > fc.live_max_error:
            reasons.append(
                f"weighted error {error:.0%} over the last {steps} steps "
                f"(limit {fc.live_max_error:.0%})"
            )
    return LiveAccuracy(
        service=name,
        run_id=int(run.id or 0),
        since=start,
        steps=steps,
        error_ratio=error,
        under_share=under,
        refit_due=bool(reasons),
        reason="; ".join(reasons),
    )
