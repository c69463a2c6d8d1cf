"""The one codec of a stored forecast run's metadata (the ``forecast_runs.meta`` JSON).

Everything a :class:`~forescale.records.ForecastRun` holds beyond its columns and points is
written here and read back here, with one set of defaults: a run stored by an older
release (no ``interval_width``, no ``choice``) reads with the documented defaults below,
never with each reader's own guess. Numbers are finite or ``null``; times ISO 8601.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

from forescale.forecaster.accuracy import Choice, ModelEvidence
from forescale.forecaster.candidates import CompactForecast
from forescale.forecaster.types import EventEffect
from forescale.numbers import finite
from forescale.records import LiveJudgement

__all__ = [
    "DEFAULT_INTERVAL_WIDTH",
    "MetaFields",
    "choice_from_json",
    "choice_json",
    "decode_meta",
    "encode_meta",
]

DEFAULT_INTERVAL_WIDTH = 0.9
"""The band width of runs stored before the width was recorded (the setting's default)."""

MetaFields = dict[str, Any]


def encode_meta(
    *,
    components: tuple[str, ...],
    notes: tuple[str, ...],
    interval_width: float,
    event_effects: tuple[EventEffect, ...],
    choice: Choice | None,
    live: LiveJudgement | None,
    candidates: Mapping[str, CompactForecast],
    candidate_errors: Mapping[str, str],
    ceiling: float | None = None,
) -> str:
    """The meta JSON of a run (sorted keys, no NaN)."""
    meta: dict[str, Any] = {
        "ceiling": finite(ceiling),
        "components": list(components),
        "notes": list(notes),
        "interval_width": interval_width,
        "event_effects": [_effect_json(e) for e in event_effects],
    }
    if choice is not None:
        meta["choice"] = choice_json(choice)
    if live is not None:
        meta["live"] = {
            "run_id": live.run_id,
            "steps": live.steps,
            "error_ratio": finite(live.error_ratio),
            "under_share": finite(live.under_share),
            "refit_due": live.refit_due,
            "reason": live.reason,
        }
    if candidates:
        meta["candidates"] = {name: _compact_json(c) for name, c in candidates.items()}
    if candidate_errors:
        meta["candidate_errors"] = dict(candidate_errors)
    return json.dumps(meta, sort_keys=True, allow_nan=False)


def decode_meta(text: str) -> MetaFields:
    """The run's fields from its meta JSON (keyword arguments of ForecastRun)."""
    meta = json.loads(text) if text else {}
    return {
        "components": tuple(str(c) for c in meta.get("components", ())),
        "notes": tuple(str(n) for n in meta.get("notes", ())),
        "interval_width": float(meta.get("interval_width", DEFAULT_INTERVAL_WIDTH)),
        "event_effects": tuple(
            _effect(e)
            for e in meta.get("event_effects", ())
            if isinstance(e, dict) and "start" in e
        ),
        "choice": choice_from_json(meta.get("choice")),
        "live": _live(meta.get("live")),
        "candidates": {
            str(name): _compact(entry)
            for name, entry in (meta.get("candidates") or {}).items()
            if isinstance(entry, dict)
        },
        "candidate_errors": {
            str(k): str(v) for k, v in (meta.get("candidate_errors") or {}).items()
        },
        "ceiling": None if meta.get("ceiling") is None else float(meta["ceiling"]),
    }


def choice_json(choice: Choice) -> dict[str, Any]:
    """A model choice as JSON (the report and the API show this shape)."""
    return {
        "model": choice.model,
        "basis": choice.basis,
        "factor": finite(choice.factor, ndigits=6),
        "reason": choice.reason,
        "floor_headroom": finite(choice.floor_headroom, ndigits=6),
        "evidence": [
            {
                "model": e.model,
                "steps": e.steps,
                "smape": finite(e.smape, ndigits=6),
                "under_share": finite(e.under_share, ndigits=6),
                "basis": e.basis,
                "factor": finite(e.factor, ndigits=6),
                "under_share_widened": finite(e.under_share_widened, ndigits=6),
                "provisioned_ratio": finite(e.provisioned_ratio, ndigits=6),
                "floor_headroom": finite(e.floor_headroom, ndigits=6),
            }
            for e in choice.evidence
        ],
    }


# -- pieces ------------------------------------------------------------------------------
def _maybe(value: Any) -> float | None:
    return None if value is None else float(value)


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _effect_json(e: EventEffect) -> dict[str, Any]:
    return {
        "name": e.name,
        "start": e.start.isoformat(),
        "end": e.end.isoformat(),
        "effect": e.effect,
        "source": e.source,
        "occurrences_in_history": e.occurrences_in_history,
    }


def _effect(e: dict[str, Any]) -> EventEffect:
    return EventEffect(
        name=str(e["name"]),
        start=dt.datetime.fromisoformat(e["start"]),
        end=dt.datetime.fromisoformat(e["end"]),
        effect=float(e["effect"]),
        source=e["source"],
        occurrences_in_history=int(e.get("occurrences_in_history", 0)),
    )


def choice_from_json(raw: Any) -> Choice | None:
    """A model choice from its JSON (None for anything else)."""
    if not isinstance(raw, dict):
        return None
    return Choice(
        model=str(raw["model"]),
        basis=raw.get("basis", "band"),
        factor=_float(raw.get("factor")),
        reason=str(raw.get("reason", "")),
        evidence=tuple(
            ModelEvidence(
                model=str(e["model"]),
                steps=int(e["steps"]),
                smape=_float(e.get("smape")),
                under_share=_float(e.get("under_share")),
                basis=e.get("basis", "band"),
                factor=_float(e.get("factor")),
                under_share_widened=_float(e.get("under_share_widened")),
                provisioned_ratio=_float(e.get("provisioned_ratio")),
                floor_headroom=_maybe(e.get("floor_headroom")),
            )
            for e in raw.get("evidence", ())
        ),
        floor_headroom=_maybe(raw.get("floor_headroom")),
    )


def _live(raw: Any) -> LiveJudgement | None:
    if not isinstance(raw, dict):
        return None
    return LiveJudgement(
        run_id=int(raw["run_id"]),
        steps=int(raw["steps"]),
        error_ratio=None if raw.get("error_ratio") is None else float(raw["error_ratio"]),
        under_share=None if raw.get("under_share") is None else float(raw["under_share"]),
        refit_due=bool(raw.get("refit_due", False)),
        reason=str(raw.get("reason", "")),
    )


def _compact_json(c: CompactForecast) -> dict[str, Any]:
    return {
        "start": int(c.start.timestamp()),
        "step_s": int(c.step.total_seconds()),
        "yhat": list(c.yhat),
        "upper": list(c.upper),
    }


def _compact(raw: dict[str, Any]) -> CompactForecast:
    return CompactForecast(
        start=dt.datetime.fromtimestamp(int(raw["start"]), dt.UTC),
        step=dt.timedelta(seconds=int(raw["step_s"])),
        yhat=tuple(None if v is None else float(v) for v in raw.get("yhat", ())),
        upper=tuple(None if v is None else float(v) for v in raw.get("upper", ())),
    )
