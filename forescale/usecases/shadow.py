"""Shadow mode's record, promotion and demotion (after each collect).

A ``mode: shadow`` service is planned as apply would plan it, but nothing is written: each
would-be change is an audit record (status ``shadowed``). After each collect,
:func:`review_modes` scores what forescale had in force (its would-be changes, and after a
promotion its applied ones) against the demand that arrived, beside simulated reactive
target tracking (:mod:`forescale.forecaster.shadow`), and

* promotes the service to ``promote.to`` once it has been in shadow mode for
  ``promote.after`` and the record since then meets ``max_under`` and ``max_cost_ratio``;
* demotes a promoted service back to shadow mode when its record over the trailing
  ``promote.after`` breaks either bar (it then has to earn promotion again, from then).

Each promotion and demotion is a :class:`~forescale.records.ModeChange` in the store (the
mode forescale acts in is read from there: :func:`forescale.usecases.context.effective_mode`),
a log line and, through the metrics, ``forescale_service_mode{service,mode}``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from forescale.collectors.series import infer_step
from forescale.config.settings import capacity_series
from forescale.errors import ForescaleError
from forescale.forecaster.capacity import units_for
from forescale.forecaster.shadow import (
    PromotionBar,
    RecordRow,
    ShadowScore,
    Verdict,
    judge,
    record_rows,
    score,
)
from forescale.records import ChangeStatus, ModeChange
from forescale.usecases.context import (
    App,
    capacity_policy,
    selected,
    service_target,
    shadow_mode_after,
)
from forescale.usecases.plan import units_of

__all__ = ["RECENT_WINDOW", "ShadowStatus", "recent_record", "review_modes", "shadow_status"]

log = logging.getLogger("forescale.shadow")

_COUNTED = frozenset({ChangeStatus.SHADOWED, ChangeStatus.APPLIED})
RECENT_WINDOW = dt.timedelta(days=14)  # a proposal's "recent record"


@dataclass(frozen=True, kw_only=True, slots=True)
class ShadowStatus:
    """Where a ``mode: shadow`` service stands: the mode it acts in, since when, its
    record and the verdict against its bar (None: nothing to score yet)."""

    service: str
    mode: str  # shadow, or the promote.to mode it was promoted to
    since: dt.datetime | None  # when it entered that mode (None: not reviewed yet)
    bar: PromotionBar
    record: ShadowScore | None
    verdict: Verdict | None

    def describe(self) -> str:
        since = "" if self.since is None else f" since {self.since:%Y-%m-%d %H:%M}Z"
        head = f"mode {self.mode}{since}"
        if self.record is None or self.verdict is None:
            return f"{head}; no demand scored yet"
        return f"{head}; {self.record.describe()}; {self.verdict.reason}"


def shadow_status(app: App, name: str, *, now: dt.datetime) -> ShadowStatus | None:
    """The record of ``name`` as of ``now``; None when it is not configured ``mode: shadow``."""
    service = app.service(name)
    if app.settings.mode_of(service) != "shadow":
        return None
    promote = app.settings.promote_of(service)
    bar = PromotionBar(
        after=promote.after, max_under=promote.max_under, max_cost_ratio=promote.max_cost_ratio
    )
    latest = app.store.latest_mode_change(name)
    mode = shadow_mode_after(app.settings, service, latest)
    since = None if latest is None else latest.at
    if since is None:
        return ShadowStatus(service=name, mode=mode, since=None, bar=bar, record=None, verdict=None)
    # in shadow: the record since entering it; promoted: the trailing window
    start = max(now - bar.after, since) if mode == "shadow" else now - bar.after
    record = _score(app, name, start=start, end=now)
    if record is None:
        return ShadowStatus(
            service=name, mode=mode, since=since, bar=bar, record=None, verdict=None
        )
    covered = now - since if mode == "shadow" else bar.after
    verdict = judge(record, bar, covered=covered)
    return ShadowStatus(
        service=name, mode=mode, since=since, bar=bar, record=record, verdict=verdict
    )


def review_modes(
    app: App, *, now: dt.datetime, services: Sequence[str] | None = None
) -> list[ModeChange]:
    """Promote or demote each selected ``mode: shadow`` service by its record as of
    ``now``; returns the mode changes made. A service that cannot be scored is logged and
    left in its mode."""
    changes: list[ModeChange] = []
    for name in selected(app.settings, services):
        try:
            change = _review(app, name, now)
        except ForescaleError as exc:
            log.warning("shadow: %s: not reviewed: %s", name, exc)
            continue
        if change is not None:
            change = ModeChange(
                id=app.store.record_mode_change(change),
                service=change.service,
                at=change.at,
                from_mode=change.from_mode,
                to_mode=change.to_mode,
                reason=change.reason,
            )
            log.info(
                "shadow: %s: %s → %s: %s",
                name,
                change.from_mode or "(new)",
                change.to_mode,
                change.reason,
            )
            changes.append(change)
    return changes


def recent_record(
    app: App, name: str, *, now: dt.datetime, window: dt.timedelta = RECENT_WINDOW
) -> tuple[RecordRow, ...] | None:
    """What forescale had in force over the ``window`` before ``now`` (its applied and
    would-be changes, else the IaC's value) against the stored demand, beside the
    comparison (the capacity in force from ``capacity_source``, else simulated target
    tracking) and the static peak; with the cost when a price is configured. None: less
    than two samples stored in the window. Reads only the store: no fit."""
    start = now - window
    record = _score(app, name, start=start, end=now)
    if record is None:
        return None
    service = app.service(name)
    policy = capacity_policy(service)
    demand = app.store.load_samples(name, start, now)
    peak = float(demand["y"].max())
    units = min(max(units_for(peak, policy.capacity_per_unit), policy.min_units), policy.max_units)
    price = None
    with contextlib.suppress(ForescaleError):  # a failed lookup: the record without cost
        price = app.price_of(service, now=now)
    return record_rows(record, units, per_unit_hour=None if price is None else price.per_unit_hour)


def _review(app: App, name: str, now: dt.datetime) -> ModeChange | None:
    if app.settings.mode_of(app.service(name)) != "shadow":
        return None  # no store read for the services shadow mode does not concern
    if app.store.latest_mode_change(name) is None:
        return ModeChange(
            service=name,
            at=now,
            from_mode=None,
            to_mode="shadow",
            reason="mode: shadow: planning as apply would, writing nothing, scoring the record",
        )
    status = shadow_status(app, name, now=now)
    if status is None or status.verdict is None:
        return None
    promote_to = app.settings.promote_of(app.service(name)).to
    if status.mode == "shadow" and status.verdict.qualifies:
        return ModeChange(
            service=name,
            at=now,
            from_mode="shadow",
            to_mode=promote_to,
            reason=f"promoted: {status.verdict.reason}",
        )
    if status.mode != "shadow" and status.verdict.breaks:
        return ModeChange(
            service=name,
            at=now,
            from_mode=status.mode,
            to_mode="shadow",
            reason=f"demoted: {status.verdict.reason}",
        )
    return None


def _score(app: App, name: str, *, start: dt.datetime, end: dt.datetime) -> ShadowScore | None:
    """forescale's capacity in force on ``[start, end)`` against the stored demand."""
    demand = app.store.load_samples(name, start, end)
    if len(demand) < 2:
        return None
    changes = sorted(
        (r.created_at, r.to_units)
        for r in app.store.list_changes(name, limit=5000)
        if r.status in _COUNTED and r.created_at is not None and r.created_at < end
    )
    before = [units for when, units in changes if when <= start]
    initial = before[-1] if before else units_of(service_target(app.service(name)).read())
    in_force = None
    if app.service(name).capacity_source is not None:
        # from a day before: the sample in force at the window's start
        in_force = app.store.load_samples(capacity_series(name), start - dt.timedelta(days=1), end)
    return score(
        demand,
        [(when, units) for when, units in changes if when > start],
        initial,
        capacity_policy(app.service(name)),
        start=start,
        end=end,
        step=infer_step(demand["ds"]),
        in_force=in_force,
    )
