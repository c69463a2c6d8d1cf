"""The backtest report as JSON for other tools: lays out a :class:`BacktestView`'s records.

Schema ``forescale.backtest/v1``, documented field by field in ``docs/backtest-json.md``:
keys in a fixed order (settings sorted by name), times UTC ISO 8601 with ``Z``, durations
``{"seconds", "text"}``, NaN/infinity ``null``. Floats are not rounded, so the shares can
be recomputed exactly from the schedule CSV.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any

import numpy as np

from forescale.config.durations import format_duration
from forescale.forecaster.backtest import ApproachOutcome, FoldResult, ModelMetrics
from forescale.forecaster.cost import Price
from forescale.report.backtest_view import BacktestView
from forescale.report.formatting import finite, iso_utc

__all__ = ["BACKTEST_SCHEMA", "backtest_json", "render_backtest_json"]

BACKTEST_SCHEMA = "forescale.backtest/v1"


def render_backtest_json(view: BacktestView) -> str:
    data = backtest_json(view)
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def backtest_json(view: BacktestView) -> dict[str, Any]:
    """The backtest as plain JSON-able data (schema in docs/backtest-json.md).

    The view's ``settings`` are echoed under ``"settings"`` with their keys sorted; a
    setting whose type has no JSON form is a caller's bug (``TypeError`` naming it)."""
    result = view.result
    return {
        "schema": BACKTEST_SCHEMA,
        "service": view.service,
        "source": view.source,
        "start": None if view.start is None else iso_utc(view.start),
        "end": None if view.end is None else iso_utc(view.end),
        "horizon": _duration(result.horizon),
        "sim_step": _duration(result.sim_step),
        "capacity_per_unit": finite(result.capacity_per_unit),
        "capacity_per_unit_source": result.capacity_per_unit_source,
        "settings": _mapping(view.settings, "settings"),
        "folds": [_fold(f, result.horizon) for f in result.folds],
        "metrics": [_metrics(m) for m in result.metrics],
        "price": None
        if view.price is None
        else {
            "per_unit_hour": view.price.per_unit_hour,
            "currency": view.price.currency,
            "source": view.price.source,
        },
        "approaches": [_approach(a, view.price) for a in result.approaches],
        # the least any plan could have paid (a bound; in no comparison)
        "hindsight": None if result.hindsight is None else _approach(result.hindsight, view.price),
        "forescale_vs": [
            {
                "baseline": c.baseline,
                "unit_hours_ratio": finite(c.unit_hours_ratio),
                "under_share_diff": finite(c.under_share_diff),
            }
            for c in view.comparisons
        ],
        "dominated_by": list(view.dominated_by),
        "notes": list(view.notes),
    }


def _fold(fold: FoldResult, horizon: dt.timedelta) -> dict[str, Any]:
    return {
        "fold": fold.fold,
        "cutoff": iso_utc(fold.cutoff),
        "end": iso_utc(fold.cutoff + horizon),
        "model": fold.model,
        "band_factor": finite(fold.band_factor),
        "reason": fold.reason,
        "error": fold.error,
        "ceiling": fold.ceiling,
        "lifted_steps": fold.lifted_steps,
        "most_lift": finite(fold.most_lift),
        "metrics": [_metrics(m) for m in fold.metrics],
    }


def _metrics(m: ModelMetrics) -> dict[str, Any]:
    return {
        "model": m.model,
        "steps": int(m.steps),
        "mape": finite(m.mape),
        "smape": finite(m.smape),
        "mase": finite(m.mase),
        "coverage": finite(m.coverage),
        "under_band": finite(m.under_band),
    }


def _approach(a: ApproachOutcome, price: Price | None) -> dict[str, Any]:
    return {
        "name": a.name,
        "steps": int(a.steps),
        "under_share": finite(a.under_share),
        "unit_hours": finite(a.unit_hours),
        "cost": None if price is None else finite(a.unit_hours * price.per_unit_hour),
        "vs_static": finite(a.vs_static),
        "mean_units": finite(a.mean_units),
    }


def _duration(span: dt.timedelta) -> dict[str, Any]:
    seconds = span.total_seconds()
    return {
        "seconds": int(seconds) if seconds.is_integer() else seconds,
        "text": format_duration(span),
    }


def _mapping(values: Mapping[str, object], where: str) -> dict[str, Any]:
    return {str(k): _value(values[k], f"{where}.{k}") for k in sorted(values, key=str)}


def _value(value: object, where: str) -> Any:
    """``value`` as JSON data; a type with no sensible JSON form is a caller's bug."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        return _value(value.item(), where)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, dt.timedelta):
        return _duration(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise TypeError(f"{where}: naive datetime {value!r}; pass an aware one")
        return iso_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Enum):
        return _value(value.value, where)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return _mapping(value, where)
    if isinstance(value, set | frozenset):
        return [_value(v, where) for v in sorted(value, key=str)]
    if isinstance(value, list | tuple):
        return [_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{where}: {type(value).__name__} has no JSON form in the backtest report")
