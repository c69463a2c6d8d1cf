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

import numpy as np
import pandas as pd

from forescale.collectors.base import MetricSource, build_source, describe_source
from forescale.collectors.series import (
    Fetched,
    RowAccount,
    coverage,
    fetch_accounted,
    infer_step,
    regularize,
)
from forescale.config.durations import format_duration
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
    unasked: str | None = None  # points the source returned outside the range asked for

    @property
    def warning(self) -> str | None:
        """One line on the rows read but not stored as samples of their own (None: none)."""
        if self.error is not None:
            return None
        notes = [n for n in (self.account.summary() if self.account else None, self.unasked) if n]
        return "; ".join(notes) or None


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
    wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    progress: Callable[[str], None] | None = None,
) -> list[CollectResult]:
    """Fetch new samples for each service into the store and record the run.

    Incremental: reads from shortly before the newest stored sample (or ``since``), so
    repeated runs are cheap and idempotent. A failing source is recorded as an error for
    that service and the others go on; stored history is never deleted or overwritten by
    an outage (nothing is written for a failed fetch). A source that returns points but
    not one value to store is an error too. Coverage is measured up to the collect time
    (``clock``). Points a source returns outside what was asked (before ``start``, or
    later than the real time ``wall`` + :data:`FUTURE_SKEW`) are not stored and are said
    in the result's warning: one point a day ahead would become the newest sample, and
    every later incremental collect would start after it and fetch nothing.
    """
    results = []
    for name in selected(settings, services):
        service = settings.service(name)
        start = _start(store, name, since)
        written, error, account, unasked = 0, None, None, None
        try:
            fetched = _fetch((build or (lambda s: build_source(s.source)))(service), start)
            account = fetched.account
            series, unasked = _asked_for(fetched.series, start, wall() + FUTURE_SKEW)
            series, coarser = _not_over_finer(store, name, series)
            unasked = "; ".join(n for n in (unasked, coarser) if n) or None
            written = store.upsert_samples(name, series)
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
                unasked=unasked,
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


FUTURE_SKEW = dt.timedelta(minutes=30)  # clocks disagree this much; later is not history


def _asked_for(
    series: pd.DataFrame, start: dt.datetime | None, latest: dt.datetime
) -> tuple[pd.DataFrame, str | None]:
    """``series`` without the points outside ``[start, latest]``, and what was left out."""
    if series.empty:
        return series, None
    ds = pd.DatetimeIndex(series["ds"])
    observed = series["y"].notna().to_numpy()
    # a sample's slot may start before ``start`` (a grid slot holds its whole step)
    slot = pd.Timedelta(infer_step(series["ds"])) if len(series) >= 2 else pd.Timedelta(0)
    early = (
        (ds < pd.Timestamp(start) - slot) if start is not None else np.zeros(len(ds), dtype=bool)
    )
    late = ds > pd.Timestamp(latest)
    dropped = int(((early | late) & observed).sum())
    if not dropped:
        return series, None
    kept = series[~(early | late)].reset_index(drop=True)
    parts = []
    if start is not None and (n := int((early & observed).sum())) > 0:
        parts.append(f"{n} before {pd.Timestamp(start):%Y-%m-%d %H:%M}Z, which was not asked for")
    if (n := int((late & observed).sum())) > 0:
        parts.append(
            f"{n} later than now ({pd.Timestamp(latest):%Y-%m-%d %H:%M}Z; the newest at "
            f"{ds[late & observed].max():%Y-%m-%d %H:%M}Z): a clock or timestamp problem at "
            "the source"
        )
    return kept, f"{dropped} point(s) the source returned were not stored: " + "; ".join(parts)


def _not_over_finer(
    store: Store, name: str, series: pd.DataFrame
) -> tuple[pd.DataFrame, str | None]:
    """``series`` without the points that would overwrite stored samples of a finer step
    (a long ``--since`` backfill at a coarser automatic period over 5-minute history
    would replace each hour's first sample with the hour's aggregate), and what was
    left out."""
    observed = series[series["y"].notna()]
    if len(observed) < 2:
        return series, None
    first, last = observed["ds"].iloc[0].to_pydatetime(), observed["ds"].iloc[-1].to_pydatetime()
    stored = store.load_samples(name, first, last)
    if len(stored) < 2:
        return series, None
    step, held = infer_step(observed["ds"]), infer_step(stored["ds"])
    if step <= held:
        return series, None
    oldest = stored["ds"].iloc[0]
    inside = series["ds"] >= oldest
    dropped = int((inside & series["y"].notna()).sum())
    return series[~inside].reset_index(drop=True), (
        f"{dropped} point(s) at the source's {format_duration(step)} period were not stored "
        f"over the {format_duration(held)} samples already held from {oldest:%Y-%m-%d %H:%M}Z "
        "on (only older ones were)"
    )


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
        start = _start(store, series_name, since)
        fetched = _fetch(build_source(source_settings), start)
        series, unasked = _asked_for(fetched.series, start, dt.datetime.now(dt.UTC) + FUTURE_SKEW)
        if unasked is not None:
            log.warning("collect: %s: capacity_source: %s", name, unasked)
        store.upsert_samples(series_name, series)
    except ForescaleError as exc:
        log.warning("collect: %s: capacity_source not collected: %s", name, exc)
