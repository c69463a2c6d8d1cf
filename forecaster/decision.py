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

from forescale.errors import ForecastError, InsufficientHistory
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
from forescale.forecaster.candidates import PROPHET, Fitted
from forescale.forecaster.ceiling import Ceiling, capped
from forescale.forecaster.challengers import ENSEMBLE, SEASONAL_NAIVE, ensemble_forecast
from forescale.forecaster.policies import REACTIVE, RECENT_PEAK
from forescale.forecaster.types import Forecast

__all__ = ["choose", "decide", "mix_weight"]


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
    demand, why = _demand(choice, forecasts, names, min_steps, record)
    if demand is not None:
        forecast = _explained(forecast, demand).noted(why)
    forecast = capped(forecast, ceiling)
    return forecast.noted(f"model: {choice.reason}"), choice


DEMAND_MARGIN = 0.2
"""Without both of the ensemble's members (a service that forecasts with other models):
how much lower (relatively) another forecasting model's sMAPE over the record's last
:data:`DEMAND_WINDOW` must be for the report to show its demand instead of the
primary's: a week of record is noisy, and the primary (the ensemble, by default) is the
robust forecast. Chosen by leaving whole groups of series out (docs/BENCHMARKS.md)."""
DEMAND_WINDOW = dt.timedelta(days=7)
"""The margin rule judges the record's last week (the margin was chosen on a week of
record: benchmarks/demand_margin.py)."""
MIX_WINDOW = dt.timedelta(days=28)
"""The demand shown, with Prophet and seasonal naive both fitted: their weighted mean
(:func:`mix_weight`) most accurate over the record's last 28 days."""
MIX_WEIGHTS = tuple(i / 10 for i in range(11))
"""Prophet's weights the mix may take (seasonal naive has the rest): 0.5 is the ensemble,
1 Prophet alone, 0 seasonal naive alone."""
MIX_MARGIN = 0.05
"""How much lower (relatively) another mix's sMAPE must be than the ensemble's for the
report to show it. Chosen with benchmarks/demand_margin.py and the engine's backtests,
on the public series and benchmarks/unseen.py's synthetic classes (docs/BENCHMARKS.md)."""


def mix_weight(
    actual: np.ndarray,
    prophet: np.ndarray,
    naive: np.ndarray,
    margin: float = MIX_MARGIN,
) -> tuple[float, float]:
    """Prophet's weight in the mix with seasonal naive (:data:`MIX_WEIGHTS`) whose sMAPE
    over ``actual`` is lowest, and that sMAPE: 0.5 (the ensemble) unless another weight
    is more than ``margin`` (relatively) more accurate; on a tie the weight nearest 0.5.
    The arrays are the recorded steps, all finite."""
    errors = {w: smape(actual, w * prophet + (1 - w) * naive) for w in MIX_WEIGHTS}
    weight = min(MIX_WEIGHTS, key=lambda w: (round(errors[w], 9), abs(w - 0.5)))
    if errors[weight] >= (1 - margin) * errors[0.5]:
        weight = 0.5
    return weight, errors[weight]


_POLICY_WHY = {
    RECENT_PEAK: "bursty: holding the recent peak (no forecast held the target for less)",
    REACTIVE: "reacting only: the record shows a forecast adds cost and nothing else",
}


def _demand(
    choice: Choice,
    forecasts: dict[str, Forecast],
    names: list[str],
    min_steps: int,
    record: pd.DataFrame,
) -> tuple[Forecast | None, str]:
    """The forecast whose point the report shows as the expected demand (None: the
    capacity forecast's own), and why: the mix of Prophet and seasonal naive most accurate
    on the record (:func:`_mixed`) when both are fitted and recorded, else
    :func:`_demand_model`'s."""
    mixed = _mixed(choice, forecasts, min_steps, record)
    if mixed is not None:
        return mixed
    name, why = _demand_model(choice, forecasts, names, min_steps, record)
    if name is None or name == choice.model:
        return None, ""
    return forecasts[name], why


def _mixed(
    choice: Choice, forecasts: dict[str, Forecast], min_steps: int, record: pd.DataFrame
) -> tuple[Forecast | None, str] | None:
    """The weighted mean of Prophet and seasonal naive :func:`mix_weight` picks over the
    record's last :data:`MIX_WINDOW` (None in the first place: the capacity forecast's
    own), and why; None when either is not fitted or the window holds fewer than
    ``min_steps`` steps both forecast (outliers judge no model)."""
    columns = (f"{PROPHET}:yhat", f"{SEASONAL_NAIVE}:yhat")
    if record.empty or PROPHET not in forecasts or SEASONAL_NAIVE not in forecasts:
        return None
    if any(c not in record.columns for c in columns):
        return None
    ds = pd.DatetimeIndex(record["ds"])
    recent = record[ds >= ds.max() - pd.Timedelta(MIX_WINDOW)]
    actual = recent["actual"].to_numpy(dtype=float)
    prophet, naive = (recent[c].to_numpy(dtype=float) for c in columns)
    keep = np.isfinite(actual) & np.isfinite(prophet) & np.isfinite(naive)
    if OUTLIER in recent.columns:  # judges no model
        keep &= ~recent[OUTLIER].to_numpy(dtype=bool)
    if int(keep.sum()) < min_steps:
        return None
    actual, prophet, naive = actual[keep], prophet[keep], naive[keep]
    weight, error = mix_weight(actual, prophet, naive)
    if weight == 0.5 and ENSEMBLE in forecasts:
        name, demand = ENSEMBLE, forecasts[ENSEMBLE]
    elif weight in (0.0, 1.0):
        name = PROPHET if weight == 1.0 else SEASONAL_NAIVE
        demand = forecasts[name]
    else:
        name = f"{weight:.1f} x {PROPHET} + {1 - weight:.1f} x {SEASONAL_NAIVE}"
        try:
            demand = ensemble_forecast(
                [forecasts[PROPHET], forecasts[SEASONAL_NAIVE]],
                model=name,
                weights=(weight, 1 - weight),
            )
        except InsufficientHistory:  # the two do not overlap: the margin rule decides
            return None
    if name == choice.model:
        return None, ""
    days = MIX_WINDOW.total_seconds() / 86400
    if weight == 0.5:
        why = (
            f"demand forecast: {name} (no other mix of {PROPHET} and {SEASONAL_NAIVE} was "
            f"{MIX_MARGIN:.0%} more accurate over the record's last {days:g} days; sMAPE "
            f"{error:.1f} %"
        )
    else:
        why = (
            f"demand forecast: {name}, the most accurate mix of {PROPHET} and "
            f"{SEASONAL_NAIVE} over the record's last {days:g} days (sMAPE {error:.1f} %"
        )
    own = f"{choice.model}:yhat"
    if choice.model not in _POLICY_WHY and own in recent.columns:
        point = recent[own].to_numpy(dtype=float)[keep]
        if np.isfinite(point).all():
            why += (
                f" against {smape(actual, point):.1f} % for {choice.model}, "
                "which plans the capacity"
            )
    return demand, why + ")"


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
