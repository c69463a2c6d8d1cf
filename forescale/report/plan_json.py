"""The plan report as JSON for other tools: lays out a :class:`PlanView`'s records.

Schema version 1, documented field by field in ``docs/report-json.md``: keys in a fixed
order, times UTC ISO 8601 with ``Z``, floats rounded to 6 decimals, NaN/infinity ``null``.
"""

from __future__ import annotations

import json
from typing import Any

from forescale.forecaster.cost import CostFigures, CostSummary
from forescale.forecaster.explain import Peak
from forescale.forecaster.types import CapacityStep
from forescale.report.formatting import finite, iso_utc
from forescale.report.plan_view import EffectView, PlanView, ServiceView

__all__ = ["REPORT_SCHEMA_VERSION", "plan_json", "render_plan_json"]

REPORT_SCHEMA_VERSION = 1
_DIGITS = 6  # decimals kept in floats derived from a fit


def render_plan_json(view: PlanView) -> str:
    return json.dumps(plan_json(view), indent=2, sort_keys=False, allow_nan=False) + "\n"


def plan_json(view: PlanView) -> dict[str, Any]:
    """The report as plain JSON-able data (schema in docs/report-json.md)."""
    report = view.report
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "as_of": iso_utc(report.as_of),
        "mode": report.mode,
        "display_timezone": report.display_timezone,
        "written": False,
        "services": [_service(s) for s in view.services],
        "failures": [{"name": f.failure.name, "error": f.failure.error} for f in view.failures],
    }


def _service(view: ServiceView) -> dict[str, Any]:
    service = view.service
    history, fc, policy = service.history, service.forecast, service.policy
    return {
        "name": service.name,
        "source": service.source,
        "history": {
            "start": iso_utc(history.start),
            "end": iso_utc(history.end),
            "points": history.points,
            "coverage": round(history.coverage, _DIGITS),
            "step_seconds": int(history.step.total_seconds()),
        },
        "forecast": {
            "model": fc.model,
            "forecast_run_id": service.forecast_run_id,
            "resolution_seconds": int(fc.resolution.total_seconds()),
            "interval_width": fc.interval_width,
            "start": None if view.forecast_start is None else iso_utc(view.forecast_start),
            "end": None if view.forecast_end is None else iso_utc(view.forecast_end),
            "peaks": [_peak(p) for p in view.peaks],
            "calendar_effects": [_effect(e) for e in view.effects],
            "notes": list(fc.notes),
        },
        "capacity": {
            "current_units": service.plan.current_units,
            "capacity_per_unit": policy.capacity_per_unit,
            "min_units": policy.min_units,
            "max_units": policy.max_units,
            "lead_time_seconds": int(policy.lead_time.total_seconds()),
            "observed_demand": finite(service.observed_demand, ndigits=_DIGITS),
            "data_fresh": service.data_fresh,
            "lift": finite(service.lift, ndigits=_DIGITS),
            "max_lift": policy.max_lift,
            "var_file": service.var_file,
            "address": service.address,
        },
        "model_choice": service.model_choice,
        "cost": None if service.cost is None else cost_json(service.cost),
        "schedule": [_step(s) for s in service.plan.steps],
        "next_change": None if service.next_step is None else _step(service.next_step),
        "diff": service.change.diff if service.change is not None else "",
        "notes": list(view.notes),
    }


def cost_json(cost: CostSummary) -> dict[str, Any]:
    """``services[].cost`` (docs/report-json.md)."""

    def figures(f: CostFigures) -> dict[str, float]:
        return {
            "schedule": round(f.schedule, _DIGITS),
            "current_flat": round(f.current_flat, _DIGITS),
            "static_peak": round(f.static_peak, _DIGITS),
        }

    return {
        "currency": cost.price.currency,
        "per_unit_hour": cost.price.per_unit_hour,
        "price_source": cost.price.source,
        "start": iso_utc(cost.start),
        "end": iso_utc(cost.end),
        "hours": round(cost.hours, _DIGITS),
        "unit_hours": figures(cost.unit_hours),
        "average_units": round(cost.average_units, _DIGITS),
        "peak_units": cost.peak_units,
        "horizon": figures(cost.horizon),
        "monthly": figures(cost.monthly),
    }


def _peak(peak: Peak) -> dict[str, Any]:
    return {
        "at": iso_utc(peak.at),
        "yhat": finite(peak.yhat, ndigits=_DIGITS),
        "yhat_upper": finite(peak.yhat_upper, ndigits=_DIGITS),
        "drivers": [
            {
                "component": d.component,
                "effect": finite(d.effect, ndigits=_DIGITS),
                "label": d.label,
            }
            for d in peak.drivers
        ],
    }


def _effect(view: EffectView) -> dict[str, Any]:
    effect = view.effect
    return {
        "name": effect.name,
        "start": iso_utc(effect.start),
        "end": iso_utc(effect.end),
        "effect": finite(effect.effect, ndigits=_DIGITS),
        "source": effect.source,
        "occurrences_in_history": effect.occurrences_in_history,
    }


def _step(step: CapacityStep) -> dict[str, Any]:
    return {
        "at": iso_utc(step.at),
        "direction": step.direction,
        "from_units": step.from_units,
        "units": step.units,
        "serves_at": iso_utc(step.serves_at),
        "demand": finite(step.demand, ndigits=_DIGITS),
        "reason": step.reason,
        "constraints": list(step.constraints),
    }
