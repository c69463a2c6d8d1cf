"""The product's candidate models, fitted side by side, and their record over time.

:func:`fit_candidates` fits Prophet and seasonal naive on the same history and adds their
mean (the *ensemble*, the primary: more accurate than either, see
:func:`forescale.forecaster.challengers.ensemble_forecast`). A model that fails is left out (its
error is returned); only when all fail does the caller have nothing to plan with.

:func:`forescale.forecaster.decision.choose` turns them and their record into the forecast
that plans capacity.

The live record: every refit stores each candidate's first ``RECORD_SPAN`` of forecast
compactly (:func:`compact`); :func:`live_record` lines them up against what was collected
since, each step judged by the forecast that was in force when it happened. The backtest
builds the same record from its folds, so live selection and backtests agree.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from forescale.errors import ForescaleError
from forescale.forecaster.challengers import (
    ENSEMBLE,
    SEASONAL_NAIVE,
    ensemble_forecast,
    seasonal_naive_forecast,
)
from forescale.forecaster.outliers import Outlier, flag_outliers, masked
from forescale.forecaster.policies import (
    REACTIVE,
    RECENT_PEAK,
    reactive_forecast,
    recent_peak_forecast,
)
from forescale.forecaster.types import Event, Forecast, ForecastSettings

__all__ = [
    "DEFAULT_MODELS",
    "PROPHET",
    "PRODUCT",
    "CandidateSet",
    "CompactForecast",
    "ModelFitter",
    "Fitted",
    "compact",
    "fit_candidates",
    "live_record",
]

PROPHET = "prophet"
DEFAULT_MODELS = (ENSEMBLE, PROPHET, SEASONAL_NAIVE, RECENT_PEAK, REACTIVE)
RECORD_SPAN = dt.timedelta(hours=24)


@dataclass(frozen=True, kw_only=True, slots=True)
class Fitted:
    forecasts: dict[str, Forecast]
    errors: dict[str, str]
    outliers: tuple[Outlier, ...] = ()  # samples kept out of every fit (forecaster.outliers)


class ModelFitter(Protocol):
    """Fits one model: the signature of :func:`forescale.forecaster.model.fit_forecast`."""

    def __call__(
        self,
        history: pd.DataFrame,
        *,
        events: Sequence[Event],
        settings: ForecastSettings,
        now: dt.datetime,
        min_history: dt.timedelta,
    ) -> Forecast: ...


def _prophet(
    history: pd.DataFrame,
    *,
    events: Sequence[Event],
    settings: ForecastSettings,
    now: dt.datetime,
    min_history: dt.timedelta,
) -> Forecast:
    from forescale.forecaster.model import fit_forecast
    from forescale.forecaster.runtime import configure_fitting

    configure_fitting()  # the one set-up point for Prophet's libraries (idempotent)
    return fit_forecast(history, events=events, settings=settings, now=now, min_history=min_history)


@dataclass(frozen=True, kw_only=True, slots=True)
class CandidateSet:
    """The base models fitted side by side at every refit, by name; the ensemble is the
    mean of Prophet and seasonal naive when both are in the set and fitted.

    The product's set is :data:`PRODUCT`. Tests inject a set whose fitters are cheap
    stand-ins and so run the product's own path (choice by record, storage, planning).
    Picklable when the fitters are module-level functions (worker processes get it)."""

    fitters: Mapping[str, ModelFitter]

    def fit(
        self,
        history: pd.DataFrame,
        *,
        events: Sequence[Event] = (),
        settings: ForecastSettings,
        now: dt.datetime,
        min_history: dt.timedelta = dt.timedelta(hours=24),
        models: Sequence[str] = DEFAULT_MODELS,
    ) -> Fitted:
        """Fit the ``models`` this set has on ``history`` as of ``now``; a model that
        fails is left out with its error, one the set lacks is skipped."""
        outliers = flag_outliers(history)
        history = masked(history, outliers)
        out: dict[str, Forecast] = {}
        errors: dict[str, str] = {}
        wanted = set(models)
        base = {PROPHET, SEASONAL_NAIVE} if ENSEMBLE in wanted else set()
        for name, fitter in self.fitters.items():
            if name not in wanted | base:
                continue
            try:
                out[name] = fitter(
                    history, events=events, settings=settings, now=now, min_history=min_history
                )
            except ForescaleError as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
        if ENSEMBLE in wanted and {PROPHET, SEASONAL_NAIVE} <= set(self.fitters):
            if PROPHET in out and SEASONAL_NAIVE in out:
                try:
                    out[ENSEMBLE] = ensemble_forecast([out[PROPHET], out[SEASONAL_NAIVE]])
                except ForescaleError as exc:
                    errors[ENSEMBLE] = f"{type(exc).__name__}: {exc}"
            else:
                errors[ENSEMBLE] = "needs both prophet and seasonal_naive"
        ordered = {m: out[m] for m in models if m in out}
        return Fitted(forecasts=ordered, errors=errors, outliers=outliers)


PRODUCT = CandidateSet(
    fitters={
        PROPHET: _prophet,
        SEASONAL_NAIVE: seasonal_naive_forecast,
        RECENT_PEAK: recent_peak_forecast,
        REACTIVE: reactive_forecast,
    }
)
"""What every refit fits: Prophet and seasonal naive (and their ensemble, the primary),
and the simple policies teams run instead (:mod:`forescale.forecaster.policies`)."""


def fit_candidates(
    history: pd.DataFrame,
    *,
    events: Sequence[Event] = (),
    settings: ForecastSettings,
    now: dt.datetime,
    min_history: dt.timedelta = dt.timedelta(hours=24),
    models: Sequence[str] = DEFAULT_MODELS,
) -> Fitted:
    """Fit the product's ``models`` (:data:`PRODUCT`) on ``history`` as of ``now``."""
    return PRODUCT.fit(
        history,
        events=events,
        settings=settings,
        now=now,
        min_history=min_history,
        models=models,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class CompactForecast:
    """A candidate's first ``RECORD_SPAN`` as stored for the live record: point and upper
    edge per ``step`` from ``start`` (UTC), 6 significant digits, None where not finite."""

    start: dt.datetime
    step: dt.timedelta
    yhat: tuple[float | None, ...]
    upper: tuple[float | None, ...]

    def at(self, ds: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        """(point, upper edge) in force at each of ``ds``: the stored step whose
        ``[start + k step, start + (k + 1) step)`` holds it; NaN outside the span."""
        point = np.array(self.yhat, dtype=float)
        upper = np.array(self.upper, dtype=float)
        if not len(point):
            return np.full(len(ds), np.nan), np.full(len(ds), np.nan)
        offset = (ds - pd.Timestamp(self.start)) // pd.Timedelta(self.step)
        pos = np.asarray(offset, dtype=np.int64)
        inside = (pos >= 0) & (pos < len(point))
        picked = np.clip(pos, 0, len(point) - 1)
        return (
            np.where(inside, point[picked], np.nan),
            np.where(inside, upper[picked], np.nan),
        )

    def expand(self, model: str, as_of: dt.datetime) -> Forecast:
        """The stored span as a forecast (NaN where nothing was stored)."""
        n = len(self.yhat)
        frame = pd.DataFrame(
            {
                "ds": pd.date_range(
                    pd.Timestamp(self.start), periods=n, freq=pd.Timedelta(self.step)
                ),
                "yhat": np.array([np.nan if v is None else v for v in self.yhat], dtype=float),
                "yhat_upper": np.array(
                    [np.nan if v is None else v for v in self.upper], dtype=float
                ),
            }
        )
        return Forecast(
            frame=frame,
            components=(),
            resolution=self.step,
            interval_width=0.0,
            fitted_at=as_of,
            history_end=as_of,
            model=model,
        )


def compact(fitted: Fitted, *, span: dt.timedelta = RECORD_SPAN) -> dict[str, CompactForecast]:
    """Each candidate's first ``span`` of point and upper edge, for the live record."""
    out: dict[str, CompactForecast] = {}
    for name, fc in fitted.forecasts.items():
        frame = fc.frame
        start = pd.Timestamp(frame["ds"].iloc[0])
        frame = frame[frame["ds"] < start + pd.Timedelta(span)]
        out[name] = CompactForecast(
            start=start.to_pydatetime(),
            step=fc.resolution,
            yhat=tuple(_num(v) for v in frame["yhat"].to_numpy(dtype=float)),
            upper=tuple(_num(v) for v in frame["yhat_upper"].to_numpy(dtype=float)),
        )
    return out


def _num(v: float) -> float | None:
    return float(f"{v:.6g}") if math.isfinite(v) else None


def live_record(
    runs: Sequence[tuple[dt.datetime, Mapping[str, CompactForecast]]],
    actual: pd.DataFrame,
    *,
    now: dt.datetime,
    window: dt.timedelta,
) -> pd.DataFrame:
    """The record over ``[now - window, now)``: ``runs`` are (as_of, compact candidates)
    in any order; each step is judged by the newest run made before it. (The rows
    :func:`forescale.forecaster.accuracy.record_rows` gives for each run's expanded
    forecasts, read straight from the stored values: a 28-day record is 112 runs.)"""
    ordered = sorted(runs, key=lambda r: r[0])
    observed = actual[actual["y"].notna()]
    stamps = pd.DatetimeIndex(observed["ds"])
    values = observed["y"].to_numpy(dtype=float)
    parts: list[pd.DataFrame] = []
    for i, (as_of, candidates) in enumerate(ordered):
        until = ordered[i + 1][0] if i + 1 < len(ordered) else now
        start = max(as_of, now - window)
        if until <= start or not candidates:
            continue
        lo = stamps.searchsorted(pd.Timestamp(start))
        hi = stamps.searchsorted(pd.Timestamp(until))
        ds = stamps[lo:hi]
        part: dict[str, object] = {"ds": ds, "actual": values[lo:hi]}
        for name, candidate in candidates.items():
            part[f"{name}:yhat"], part[f"{name}:upper"] = candidate.at(ds)
        parts.append(pd.DataFrame(part))
    if not parts:
        return pd.DataFrame(columns=["ds", "actual"])
    return pd.concat(parts, ignore_index=True)
