"""Collect: fetch new samples for each service into the store and record the run.

Incremental (from shortly before the newest stored sample), idempotent, isolated per
service (a failing source is that service's error; stored history is never deleted), and
honest about every row a source read but did not store (:class:`CollectResult.account`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from forescale.collectors.base import MetricSource, build_source, describe_source
from forescale.collectors.series import (
    Fetched,
    RowAccount,
    coverage,
    fetch_accounted,
    infer_step,
    regularize,
)
from forescale.config.settings import (
    MetricSourceSettings,
    ServiceSettings,
    Settings,
    capacity_series,
)
from forescale.errors import DataError, ForescaleError
from forescale.store import Store
from forescale.usecases.context import selected

COLLECT_OVERLAP = dt.timedelta(hours=1)  # re-read this much before the last sample (late data)

SourceBuilder = Callable[[ServiceSettings], MetricSource]


@dataclass(frozen=True, kw_only=True, slots=True)
class CollectResult:
    """One service's collect run: samples written, or the error that stopped it.

    ``account``: what became of every row the source read, from sources that read rows
    (CSV); rows that are no sample of their own are counted there, never dropped unsaid.
    """

    service: str
    written: int
    coverage: float | None  # share of due grid slots with a sample over COVERAGE_WINDOW
    last_sample: dt.datetime | None
    error: str | None = None
    account: RowAccount | None = None

    @property
    def warning(self) -> str | None:
        """One line on the rows read but not stored as samples of their own (None: none)."""
        if self.error is not None or self.account is None:
            return None
        return self.account.summary()


COVERAGE_WINDOW = dt.timedelta(days=7)
log = logging.getLogger("forescale.collect")


def collect_all(
    settings: Settings,
    store: Store,
    *,
    services: Sequence[str] | None = None,
    since: dt.datetime | None = None,
    build: SourceBuilder | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    progress: Callable[[str], None] | None = None,
) -> list[CollectResult]:
    """Fetch new samples for each service into the store and record the run.

    Incremental: reads from shortly before the newest stored sample (or ``since``), so
    repeated runs are cheap and idempotent. A failing source is recorded as an error for
    that service and the others go on; stored history is never deleted or overwritten by
    an outage (nothing is written for a failed fetch). A source that returns points but
    not one value to store is an error too. Coverage is measured up to the collect time.
    """
    results = []
    for name in selected(settings, services):
        service = settings.service(name)
        start = _start(store, name, since)
        written, error, account = 0, None, None
        try:
            fetched = _fetch((build or (lambda s: build_source(s.source)))(service), start)
            account = fetched.account
            written = store.upsert_samples(name, fetched.series)
            if written == 0 and not fetched.series.empty:
                raise DataError(
                    f"{describe_source(service.source)}: {len(fetched.series)} point(s) read, "
                    "none with a value to store; check the source"
                )
        except ForescaleError as exc:
            error = str(exc)
        if error is None and service.capacity_source is not None:
            _collect_capacity(store, name, service.capacity_source, since)
        at = clock()
        coverage, newest = store_coverage(store, name, now=at, grace=settings.stale_after)
        store.record_collect(
            name, at=at, written=written, coverage=coverage, last_sample=newest, error=error
        )
        results.append(
            CollectResult(
                service=name,
                written=written,
                coverage=coverage,
                last_sample=newest,
                error=error,
                account=account,
            )
        )
        if progress is not None:
            progress(name)
    return results


def store_coverage(
    store: Store,
    name: str,
    *,
    now: dt.datetime | None = None,
    grace: dt.timedelta = dt.timedelta(0),
) -> tuple[float | None, dt.datetime | None]:
    """(coverage, newest stored sample) of ``name``.

    Coverage is the share of the sampling grid's slots in the COVERAGE_WINDOW before
    ``now`` that hold a stored sample. A slot counts once it is due: it has ended and
    ``grace`` (the lateness tolerated, ``stale_after``) has passed; so data that stopped
    12 days ago covers 0 % of the last 7 days. None when the step cannot be told (fewer
    than two samples) or no slot is due yet. Without ``now`` (a caller without a clock)
    it is the old measure of gaps alone: from the first to the newest sample in the
    COVERAGE_WINDOW before the newest.
    """
    newest = store.last_sample_time(name)
    if newest is None:
        return None, None
    if now is None:
        recent = store.load_samples(name, newest - COVERAGE_WINDOW, newest)
        if len(recent) < 2:
            return None, newest
        return coverage(regularize(recent, infer_step(recent["ds"]))), newest
    recent = store.load_samples(name, now - COVERAGE_WINDOW, now)
    known = recent if len(recent) >= 2 else store.load_samples(name, newest - COVERAGE_WINDOW)
    if len(known) < 2:
        return None, newest
    size = infer_step(known["ds"]).total_seconds()
    # Slot numbers since the epoch: the first starting in the window, the last one due.
    first = math.ceil((now - COVERAGE_WINDOW).timestamp() / size)
    last = math.floor(((now - grace).timestamp() - size) / size)
    if last < first:
        return None, newest
    slots = recent["ds"].astype("int64") // 10**9 // size
    held = slots[(slots >= first) & (slots <= last)].nunique()
    return held / (last - first + 1), newest


def _start(store: Store, series: str, since: dt.datetime | None) -> dt.datetime | None:
    """Where an incremental fetch of ``series`` starts: ``since``, else shortly before its
    newest stored sample, else the source's own default (None)."""
    if since is not None:
        return since
    last = store.last_sample_time(series)
    return last - COLLECT_OVERLAP if last else None


def _fetch(source: MetricSource, start: dt.datetime | None) -> Fetched:
    """Everything ``source`` has from ``start`` on, with its row account; closed after."""
    try:
        return fetch_accounted(source, start, None)
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()


def _collect_capacity(
    store: Store,
    name: str,
    source_settings: MetricSourceSettings,
    since: dt.datetime | None,
) -> None:
    """Store the units actually in force (``capacity_source``) as ``<name>#capacity``.
    Best effort: a failure is logged (shadow mode then compares with simulated target
    tracking); the demand collect stands."""
    series_name = capacity_series(name)
    try:
        fetched = _fetch(build_source(source_settings), _start(store, series_name, since))
        store.upsert_samples(series_name, fetched.series)
    except ForescaleError as exc:
        log.warning("collect: %s: capacity_source not collected: %s", name, exc)
