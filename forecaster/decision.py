"""The decision at every refit and every backtest fold: which candidate plans capacity,
with how much headroom, capped where.

:func:`choose` turns a refit's candidates (:mod:`forescale.forecaster.candidates`) and
their record into the forecast that plans capacity: the chosen model with the headroom its
record asks for (:mod:`forescale.forecaster.accuracy`), capped at the credible ceiling
(:mod:`forescale.forecaster.ceiling`). :func:`decide` is the one decision the backtest
replays fold by fold, so live selection and backtests agree. Pure.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from forescale.errors import ForecastError
from forescale.forecaster.accuracy import (
    OUTLIER,
    Choice,
    Floor,
    Serving,
    choose_model,
    headroom,
    on_grid,
    smape,
)
from forescale.forecaster.candidates import Fitted
from forescale.forecaster.ceiling import Ceiling, capped
from forescale.forecaster.policies import REACTIVE, RECENT_PEAK
from forescale.forecaster.types import Forecast

__all__ = ["choose", "decide"]


def choose(
    fitted: Fitted,
    record: pd.DataFrame,
    *,
    target_under: float,
    max_factor: float = 3.0,
    min_steps: int = 48,
    floor: Floor | None = None,
    ceiling: Ceiling | None = None,
    serving: Serving | None = None,
) -> tuple[Forecast, Choice]:
    """The forecast that plans capacity and the choice behind it (with its evidence)."""
    if not fitted.forecasts:
        raise ForecastError(
            "no model could be fitted: " + "; ".join(f"{m}: {e}" for m, e in fitted.errors.items())
        )
    forecast, choice = decide(
        fitted.forecasts,
        list(fitted.forecasts),
        record,
        target_under=target_under,
        max_factor=max_factor,
        min_steps=min_steps,
        floor=floor,
        ceiling=ceiling,
        serving=serving,
        outliers=tuple(o.at for o in fitted.outliers),
    )
    for outlier in fitted.outliers:
        forecast = forecast.noted(f"outlier kept out of the fit: {outlier.describe()}")
    return forecast, choice


def decide(
    forecasts: dict[str, Forecast],
    names: list[str],
    record: pd.DataFrame,
    *,
    target_under: float,
    max_factor: float,
    min_steps: int,
    floor: Floor | None,
    ceiling: Ceiling | None,
    serving: Serving | None = None,
    outliers: Sequence[dt.datetime] = (),
) -> tuple[Forecast, Choice]:
    """One decision, shared by refits and backtests: the model and headroom the record
    asks for (:func:`forescale.forecaster.accuracy.choose_model`, the floor replayed as
    the daemon gives it, capped as the plan will be), that model's forecast with that
    headroom - a chosen policy keeps the best model's demand forecast for the report - and
    capped at the credible ceiling (:mod:`forescale.forecaster.ceiling`). The record's
    steps at ``outliers`` judge no model."""
    if outliers and not record.empty:
        at = pd.DatetimeIndex(list(outliers))
        record = record.assign(**{OUTLIER: pd.DatetimeIndex(record["ds"]).isin(at)})
    if floor is not None and ceiling is not None:
        floor = replace(floor, cap=ceiling.value)
    choice = choose_model(
        record,
        names,
        target_under=target_under,
        max_factor=max_factor,
        min_steps=min_steps,
        primary=names[0],
        floor=floor,
        serving=serving,
    )
    forecast = headroom(forecasts[choice.model], choice)
    if choice.model in _POLICY_WHY:
        choice = replace(choice, reason=f"{_POLICY_WHY[choice.model]}: {choice.reason}")
    demand, why = _demand_model(choice, forecasts, names, min_steps, record)
    if demand is not None and demand != choice.model:
        forecast = _explained(forecast, forecasts[demand]).noted(why)
    forecast = capped(forecast, ceiling)
    return forecast.noted(f"model: {choice.reason}"), choice


DEMAND_MARGIN = 0.2
"""How much lower (relatively) another forecasting model's sMAPE over the record's last
:data:`DEMAND_WINDOW` must be for the report to show its demand instead of the
primary's: a week of record is noisy, and the primary (the ensemble, by default) is the
robust forecast. Chosen by leaving whole groups of series out (docs/BENCHMARKS.md)."""
DEMAND_WINDOW = dt.timedelta(days=7)
"""The demand shown is judged on the record's last week, whatever the record window
capacity is chosen on (the margin was chosen on a week of record:
benchmarks/demand_margin.py)."""

_POLICY_WHY = {
    RECENT_PEAK: "bursty: holding the recent peak (no forecast held the target for less)",
    REACTIVE: "reacting only: the record shows a forecast adds cost and nothing else",
}


def _demand_model(
    choice: Choice,
    forecasts: dict[str, Forecast],
    names: list[str],
    min_steps: int,
    record: pd.DataFrame,
) -> tuple[str | None, str]:
    """The forecast whose point the report shows as the expected demand, and why: capacity
    comes from the cheapest candidate that held the target, but the demand shown is a
    forecasting model's (not a policy's): the primary (the first forecasting model in
    ``names``), unless another was more accurate over the record's last
    :data:`DEMAND_WINDOW` by more than :data:`DEMAND_MARGIN` (lowest sMAPE). With a
    record too short to judge: the chosen model, or the first forecasting model when a
    policy was chosen."""
    errors = _recent_errors(
        record, [n for n in names if n not in _POLICY_WHY and n in forecasts], min_steps
    )
    if errors:
        first = next((n for n in names if n not in _POLICY_WHY), None)
        best = min(errors, key=lambda m: (errors[m], m != choice.model))
        if first in errors and errors[best] >= (1 - DEMAND_MARGIN) * errors[first]:
            best = first
        if best == choice.model:
            return best, ""
        why = "the primary" if best == first else "the most accurate on the record"
        if choice.model not in errors:
            return best, f"demand forecast: {best}, {why} (sMAPE {errors[best]:.1f} %)"
        return best, (
            f"demand forecast: {best}, {why} (sMAPE {errors[best]:.1f} % against "
            f"{errors[choice.model]:.1f} % for {choice.model}, which plans the capacity)"
        )
    if choice.model not in _POLICY_WHY:
        return choice.model, ""
    first = next((n for n in names if n not in _POLICY_WHY and n in forecasts), None)
    return first, f"demand forecast: {first} (the record is too short to compare accuracy)"


def _recent_errors(record: pd.DataFrame, models: list[str], min_steps: int) -> dict[str, float]:
    """Each model's sMAPE over the record's last :data:`DEMAND_WINDOW` (models with fewer
    than ``min_steps`` judged steps there are left out)."""
    if record.empty:
        return {}
    ds = pd.DatetimeIndex(record["ds"])
    recent = record[ds >= ds.max() - pd.Timedelta(DEMAND_WINDOW)]
    actual = recent["actual"].to_numpy(dtype=float)
    out: dict[str, float] = {}
    for model in models:
        column = f"{model}:yhat"
        if column not in recent.columns:
            continue
        point = recent[column].to_numpy(dtype=float)
        keep = np.isfinite(actual) & np.isfinite(point)
        error = smape(actual[keep], point[keep]) if int(keep.sum()) >= min_steps else math.nan
        if math.isfinite(error):
            out[model] = error
    return out


def _explained(capacity: Forecast, demand: Forecast) -> Forecast:
    """``capacity`` plans the units (``yhat_upper``); the report shows the expected demand
    (the point forecast, its lower edge and components) of ``demand``, on the finer of the
    two grids when it divides the other (an hourly capacity forecast holds each hour's
    value through the 5-minute steps of the demand it explains, so the units are the
    same and the demand keeps its shape)."""
    step = capacity.resolution
    ds = pd.DatetimeIndex(capacity.frame["ds"])
    if demand.resolution < step and step % demand.resolution == dt.timedelta(0):
        start, end = ds[0], ds[-1] + pd.Timedelta(step)
        ds = pd.date_range(start, end, freq=pd.Timedelta(demand.resolution), inclusive="left")
        step = demand.resolution
    frame = on_grid(capacity.frame[["ds", "yhat_upper"]], ds, capacity.resolution)
    mapped = on_grid(demand.frame, ds, demand.resolution)
    frame["yhat"] = mapped["yhat"].to_numpy(dtype=float)
    frame["yhat_lower"] = mapped["yhat_lower"].to_numpy(dtype=float)
    for column in demand.components:
        frame[column] = mapped[column].to_numpy(dtype=float)
    return replace(
        capacity,
        frame=frame[["ds", "yhat", "yhat_lower", "yhat_upper", *demand.components]],
        resolution=step,
        components=demand.components,
        event_effects=demand.event_effects or capacity.event_effects,
        notes=(*demand.notes, *capacity.notes),
    )
