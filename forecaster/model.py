"""Fit Prophet to one service's demand and forecast the next hours, as capacity needs them.

Pure: a history frame, the events calendar, settings and ``now`` in; a
:class:`~forescale.forecaster.types.Forecast` out. No I/O of ours, no clock (CmdStan itself writes
temporary files). Prophet (0.7-1.3 s to import) is imported inside :func:`fit_forecast`, so
importing this module stays cheap.

What the model is
-----------------
* **Window**: samples with ``now - max_history < ds <= now``; NaN ``y`` are gaps (never
  fill them with zeros) and are left out of the fit. Less than ``min_history`` (24 h) of
  observed span -> :class:`~forescale.errors.InsufficientHistory`.
* **Resolution**: the native step while the window has <= 1500 points, else the finest of
  10 min, 15 min, 30 min, 1 h, 2 h, 3 h, 6 h, 12 h, 1 d that gives <= 1500. Samples are
  aggregated by the bucket **maximum**, not the mean: capacity has to cover the highest
  demand inside each step, and a mean would hide the short peaks inside a bucket.
  Buckets are UTC-aligned (floor since the epoch) below one day and local calendar days
  from one day up. A partial bucket at either end of the window is dropped (its maximum
  would be biased low); the forecast then starts with the bucket ``now`` is in.
* **Wall clock**: Prophet sees ``ds`` as naive local time in ``settings.timezone``, so the
  daily/weekly shapes, the weekday/weekend split, business hours and holiday dates follow
  the users' day (DST included). Output ``ds`` is the UTC instant of each step (mapped by
  position; the repeated hour at the end of DST simply gives two rows with the same local
  time).
* **Log transform** (default): Prophet fits ``log(y + eps)`` with ``eps`` = 1 % of the
  median positive demand (1.0 if there is none), so that seasonality and events are
  multiplicative, forecasts stay positive and spikes pull the trend far less.
  ``yhat``/bounds are back-transformed with ``exp(.) - eps`` (``yhat`` is then close to
  the median, not the mean, of the predictive distribution) and clipped at 0. Component
  columns are fractions: ``exp(component) - 1`` (0.22 = +22 %); without the log transform
  the components are additive and reported as ``component / trend``.
* **Seasonality**: ``daily`` (sub-daily data only; split into ``daily_weekday`` and
  ``daily_weekend`` conditional seasonalities when ``weekend_daily_split`` - additive
  daily + weekly terms cannot draw a Saturday whose shape differs from a Tuesday's, which
  is why default Prophet loses to seasonal naive on taxi-like demand), ``weekly``,
  ``yearly`` and a ``business_hours`` indicator (Mon-Fri, local ``[start, end)`` hours).
  Fourier orders: daily 10 (Prophet: 4; a taxi or office day has sharp edges), weekly 6
  with 4+ weeks of sub-daily history (else Prophet's 3), yearly 10. As in Prophet's
  "auto" rule, daily needs 2 days of history, weekly 2 weeks, the weekday/weekend split
  one week with both kinds of day, yearly 2 years; a seasonality left out for lack of
  history is named in ``Forecast.notes``. Trend: Prophet's linear trend and changepoint
  defaults (25 in the first 80 %, prior scale 0.05).
* **Holidays**: the ``holidays`` package's public holidays for
  ``settings.country_holidays``, on local dates, as Prophet holidays (one whole local day
  each) - only those that occur in the fitted history: a holiday never seen cannot be
  learned, its coefficient would stay at the prior's 0; such a holiday in the horizon
  gets a note (put it in the events calendar with an ``expected_uplift``). Named
  ``holiday:<name>``; an ``EventEffect`` with source "holiday" per horizon holiday.
* **Events** (:mod:`forescale.forecaster.events`): a name with an occurrence inside the fitted
  history is *learned* as a 0/1 regressor active on the steps that meet its window
  (sub-day precise), also when it does not recur in the horizon (so the past spike is
  explained by the event instead of bending trend and seasonality). A name with no
  occurrence in the history is not given to Prophet; in the horizon its
  ``expected_uplift`` multiplies ``yhat`` and both bounds during its active window
  (``event:<name>`` = the uplift there, 0 elsewhere). Without an uplift it is not applied
  and a note says so. A learned event wins over its ``expected_uplift``. A holiday and an
  event on the same day both apply (they multiply).
* **Dips** (a second fit): steps more than 4 robust standard deviations (1.4826 x MAD of
  the residuals) *below* the first fit - an outage, a storm, a collector hiccup not in the
  calendar - are left out and the model is fitted again, warm-started from the first fit.
  In log space such a dip is a huge outlier that drags trend and seasonality down for
  weeks (on nyc_taxi, after the blizzard of 2015-01-26/27 the next three days' forecasts
  had 49-65 % sMAPE without the refit, 24-32 % with it).
  Only dips: a high spike may be real demand capacity must serve. Event and holiday steps
  are never dropped, and if more than 5 % of the steps qualify it is a level change, not
  dips, and nothing is dropped. The count is in ``Forecast.notes``.

Fit time
--------
Measured on the 2-core reference machine (Python 3.11, prophet 1.5.0, one process, median
of 3 runs, ±20 % run to run), fit + forecast, US holidays, log, 300 samples:

==================================================  ==========  =============
history                                             points      seconds
==================================================  ==========  =============
nyc_taxi 30 min, 56 days (default max_history)      2688        1.6 (0.7 without the dip refit)
nyc_taxi hourly, 56 days (the backtest below)       1344        1.0
nyc_taxi 30 min, all 149 days -> 1 h (auto)         3576        2.4
nyc_taxi 30 min, all 149 days, forced 30 min        7152        6.1
5-min synthetic, 56 days -> 30 min (auto)           2688        1.2
5-min synthetic, 14 days, native                    4032        2.3
5-min synthetic, 56 days, forced 5 min              16128       10.1
==================================================  ==========  =============

(The table predates the two cuts below; see docs/BENCHMARKS.md for the current numbers.)

* Cost grows with points x features, so the choices are about points: ``max_history``
  (default 56 days: eight repetitions of the weekly shape) and the point cap with
  bucket-maximum aggregation. The cap is 1500 (it was 5000): a 2-week 5-minute history is
  fitted at 15 minutes (1344 points), 8 weeks of 30-minute or 5-minute data hourly. With
  the cuts below a fleet refit of 2-week 5-minute services costs 0.36 s per service
  instead of 1.3 s (one process, Prophet + seasonal naive + ensemble), and the public
  benchmark stays above its bars (docs/BENCHMARKS.md has both runs).
* Much of the time was not the optimiser: Prophet hands CmdStan its design matrix as
  nested Python lists, which ``stanio`` walked element by element (~40 % of a 2-week
  5-minute fit). :func:`forescale.forecaster.runtime.configure_fitting` (called where fitting
  starts, not here) converts them in C (same JSON), and ``ujson`` (a dependency) writes
  it: 2.15 -> 0.95 s for that fit with ujson alone.
* A second fit for dips only when there are at least ``MIN_DIPS`` (3) of them: a single
  low step barely moves the fit and the refit doubled the time.
* L-BFGS (Prophet's default for >= 100 points; Newton is 11-20x slower) with
  ``tol_rel_grad`` 1e9 instead of CmdStan's 1e7: 342 instead of 1039 iterations on taxi,
  forecasts within 0.7 %, backtest sMAPE unchanged (16.15 vs 16.16 %; measured while the
  weekly order was 10), hourly fits 1.2 instead of 1.6 s.
* ``uncertainty_samples`` (default 300) costs little because only the future rows are
  predicted with samples (the in-sample pass of the dip check runs with 0 samples).

Accuracy (nyc_taxi hourly means, 91 midnight cutoffs 2014-11-01 .. 2015-01-30, next 24 h,
``country_holidays="US"``, no events): sMAPE 16.5 % vs 16.7 % for seasonal naive (one week),
28.5 % for default Prophet (reproduced by the same harness); 17.7 % without the dip refit;
13.6 % vs 13.9 % over Nov-Dec alone.

Determinism: CmdStan's seed is ``settings.seed`` and the predictive simulation runs with
NumPy's global RNG seeded with it, restoring the caller's RNG state afterwards: the same
inputs give the same frame.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from forescale.errors import DataError, ForecastError, InsufficientHistory, NonFiniteValue
from forescale.forecaster.events import event_indicators, holiday_table
from forescale.forecaster.grid import native_step, step_text
from forescale.forecaster.types import Event, EventEffect, Forecast, ForecastSettings

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["MAX_POINTS", "fit_forecast"]

MAX_POINTS = 1500  # most points given to one Prophet fit (see "Fit time" above)
AGGREGATION_STEPS = tuple(
    dt.timedelta(minutes=m) for m in (10, 15, 30, 60, 120, 180, 360, 720, 1440)
)
LOG_EPS_FRACTION = 0.01  # eps = 1 % of the median positive demand
DAILY_FOURIER_ORDER = 10  # a taxi/web day has sharp edges; Prophet's default 4 smooths them
# Weekly detail: with 4+ weeks of sub-daily history, 6 terms draw each weekday's level and
# part of its own shape (Friday night vs Monday night). Not 7 or more: harmonic 7 of a week
# *is* the daily period, and the daily shape would leak into "weekly". With less history,
# or daily data (7 points a week), Prophet's default 3.
WEEKLY_FOURIER_ORDER = 6
WEEKLY_FOURIER_ORDER_SHORT = 3
YEARLY_FOURIER_ORDER = 10
CHANGEPOINT_PRIOR_SCALE = 0.05  # Prophet's default
CHANGEPOINT_RANGE = 0.8  # Prophet's default
# CmdStan L-BFGS stops when the gradient is small *relative* to the objective: 1e9 x machine
# epsilon instead of CmdStan's 1e7 (see "Fit time").
LBFGS_OPTIONS: dict[str, float] = {"tol_rel_grad": 1e9}
DIP_SIGMAS: float | None = 4.0
MAX_DIP_FRACTION = 0.05
# Fewer dips than this are not worth a second fit: one low step barely moves the fit
# (on a 2-week 5-minute series the second fit doubles the time for a single dip).
MIN_DIPS = 3
_DAY = dt.timedelta(days=1)
_WEEKDAY = "_weekday"  # condition columns for the conditional daily seasonalities
_WEEKEND = "_weekend"


@dataclass(frozen=True, slots=True)
class _Series:
    """The demand Prophet is fitted on: one row per step, ``ds`` UTC, ``y`` maybe NaN."""

    ds: pd.DatetimeIndex
    y: npt.NDArray[np.float64]
    step: dt.timedelta
    local_days: bool  # steps are local calendar days (bucket labels at local midnight)


def fit_forecast(
    history: pd.DataFrame,
    *,
    events: Sequence[Event] = (),
    settings: ForecastSettings,
    now: dt.datetime,
    min_history: dt.timedelta = dt.timedelta(hours=24),
) -> Forecast:
    """Fit Prophet on ``history`` as of ``now`` (UTC) and forecast until ``now + horizon``.

    ``history`` has columns ``ds`` (tz-aware UTC, regular grid) and ``y`` (demand in the
    service's unit, >= 0 with the log transform; NaN = no sample). Rows after ``now`` are
    ignored. The forecast frame has one row per step from the first step after the
    fitted history (so it also covers any gap up to ``now``) until ``now + horizon``.

    Raises :class:`InsufficientHistory` (less than ``min_history`` observed),
    :class:`DataError` (unusable history), :class:`ForecastError` (Prophet/CmdStan
    failed). ``ValueError`` for a naive ``now`` (a programming error).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(dt.UTC)
    if not 0 < settings.interval_width < 1:
        raise ForecastError(f"interval_width must be in (0, 1), got {settings.interval_width}")
    try:
        tz = ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ForecastError(f"unknown timezone {settings.timezone!r}") from exc

    frame = _validated(history, log_transform=settings.log_transform)
    frame = frame[frame["ds"] <= pd.Timestamp(now)]
    native = native_step(pd.DatetimeIndex(frame["ds"]))
    frame = frame[frame["ds"] > pd.Timestamp(now - settings.max_history)]
    observed = frame[frame["y"].notna()]
    have = (
        (observed["ds"].iloc[-1] - observed["ds"].iloc[0]).to_pytimedelta() + native
        if len(observed) >= 2
        else dt.timedelta(0)
    )
    if have < min_history:
        raise InsufficientHistory(
            f"{have.total_seconds() / 3600:.1f} h of demand history before {now.isoformat()} "
            f"(within max_history {settings.max_history}); at least "
            f"{min_history.total_seconds() / 3600:.1f} h are needed",
            have_seconds=have.total_seconds(),
            need_seconds=min_history.total_seconds(),
        )
    history_end = observed["ds"].iloc[-1].to_pydatetime()
    notes: list[str] = []

    step = _resolution(settings.resolution, native, have, settings.max_points or MAX_POINTS)
    if step == native:
        series = _Series(
            ds=pd.DatetimeIndex(frame["ds"]),
            y=frame["y"].to_numpy(dtype=float),
            step=native,
            local_days=False,
        )
    else:
        series = _aggregate(frame, native=native, step=step, tz=tz, last_sample=history_end)
        notes.append(
            f"demand aggregated from {step_text(native)} samples to {step_text(step)} steps by the "
            "maximum in each step (capacity must cover the highest demand inside a step)"
        )
    fit_rows = ~np.isnan(series.y)
    if fit_rows.sum() < 2:
        raise InsufficientHistory(
            f"fewer than 2 complete {step_text(step)} steps of demand history",
            have_seconds=have.total_seconds(),
            need_seconds=min_history.total_seconds(),
        )
    fit_ds = series.ds[fit_rows]
    fit_y = series.y[fit_rows]
    future_ds = _future_grid(fit_ds[-1], step, now + settings.horizon, tz, series.local_days)

    eps = 0.0
    if settings.log_transform:
        positive = fit_y[fit_y > 0]
        eps = float(np.median(positive)) * LOG_EPS_FRACTION if positive.size else 1.0
        notes.append(
            f"fitted on log(y + {eps:.4g}) so seasonality and events are multiplicative; "
            "components are fractions exp(component) - 1"
        )
        fit_target = np.log(fit_y + eps)
    else:
        fit_target = fit_y

    design = _Design.build(
        fit_ds=fit_ds,
        future_ds=future_ds,
        step=step,
        tz=tz,
        span=have,
        events=events,
        settings=settings,
        notes=notes,
    )
    raw = _run_prophet(design, fit_target, settings, notes)

    return _assemble(
        raw=raw,
        design=design,
        future_ds=future_ds,
        eps=eps,
        settings=settings,
        step=step,
        now=now,
        history_end=history_end,
        notes=notes,
    )


# ----------------------------------------------------------------------- input checks


def _validated(history: pd.DataFrame, *, log_transform: bool) -> pd.DataFrame:
    """``ds`` (UTC) and ``y`` (float) sorted by ``ds``; raises DataError if unusable."""
    missing = [c for c in ("ds", "y") if c not in history.columns]
    if missing:
        raise DataError(f"history needs columns 'ds' and 'y' (missing {', '.join(missing)})")
    ds = history["ds"]
    if not isinstance(ds.dtype, pd.DatetimeTZDtype):
        raise DataError(f"history.ds must be timezone-aware UTC timestamps, got dtype {ds.dtype}")
    try:
        y = pd.to_numeric(history["y"]).astype(float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"history.y must be numbers: {exc}") from exc
    frame = pd.DataFrame({"ds": ds.dt.tz_convert("UTC"), "y": y.to_numpy()})
    infinite = np.flatnonzero(np.isinf(frame["y"].to_numpy()))
    if infinite.size:
        raise NonFiniteValue(
            f"history.y is infinite at row {infinite[0] + 1} ({frame['ds'].iloc[infinite[0]]})",
            row=int(infinite[0]) + 1,
        )
    frame = frame.sort_values("ds", kind="mergesort").reset_index(drop=True)
    duplicated = frame["ds"].duplicated()
    if duplicated.any():
        raise DataError(f"history.ds repeats {frame['ds'][duplicated].iloc[0]}")
    if log_transform and (frame["y"] < 0).any():
        raise DataError(
            "history.y has negative demand; demand must be >= 0 for the log transform "
            "(or set log_transform: false)"
        )
    return frame


def _resolution(
    wanted: dt.timedelta | None,
    native: dt.timedelta,
    span: dt.timedelta,
    max_points: int = MAX_POINTS,
) -> dt.timedelta:
    """The fitting step: ``wanted`` if given, else the native step or the finest
    aggregation step that keeps the window at <= ``max_points`` points."""
    if wanted is not None:
        if wanted < native:
            raise DataError(
                f"resolution {step_text(wanted)} is finer than the history's step "
                f"{step_text(native)}"
            )
        return wanted
    if span / native <= max_points:
        return native
    for candidate in AGGREGATION_STEPS:
        if candidate > native and span / candidate <= max_points:
            return candidate
    return max(AGGREGATION_STEPS[-1], native)


# ------------------------------------------------------------------------ aggregation


def _aggregate(
    frame: pd.DataFrame,
    *,
    native: dt.timedelta,
    step: dt.timedelta,
    tz: ZoneInfo,
    last_sample: dt.datetime,
) -> _Series:
    """Bucket maxima of ``frame.y``; partial buckets at either end are dropped."""
    ds = pd.DatetimeIndex(frame["ds"])
    local_days = step >= _DAY and step % _DAY == dt.timedelta(0)
    if local_days:
        local = ds.tz_convert(tz).tz_localize(None)
        epoch = pd.Timestamp("1970-01-01")
        days = step // _DAY
        labels_local = epoch + pd.to_timedelta(((local - epoch).days // days) * days, unit="D")
        labels = _localize(pd.DatetimeIndex(labels_local), tz)
    else:
        labels = ds.floor(f"{int(step.total_seconds())}s")
    grouped = pd.Series(frame["y"].to_numpy(), index=labels).groupby(level=0).max()
    buckets = pd.DatetimeIndex(grouped.index)
    ends = _bucket_ends(buckets, step, tz, local_days)
    complete = (buckets >= ds[0]) & (ends <= pd.Timestamp(last_sample + native))
    return _Series(
        ds=buckets[complete],
        y=grouped.to_numpy(dtype=float)[complete],
        step=step,
        local_days=local_days,
    )


def _localize(local: pd.DatetimeIndex, tz: ZoneInfo) -> pd.DatetimeIndex:
    """Naive local wall-clock times -> UTC (DST gaps shift forward, repeats take the first)."""
    first = np.ones(len(local), dtype=bool)  # ambiguous=True: the DST (first) instance
    return local.tz_localize(tz, ambiguous=first, nonexistent="shift_forward").tz_convert("UTC")


def _bucket_ends(
    labels: pd.DatetimeIndex, step: dt.timedelta, tz: ZoneInfo, local_days: bool
) -> pd.DatetimeIndex:
    if not local_days:
        return labels + pd.Timedelta(step)
    local = labels.tz_convert(tz).tz_localize(None) + pd.Timedelta(step)
    return _localize(local, tz)


def _future_grid(
    last: pd.Timestamp,
    step: dt.timedelta,
    until: dt.datetime,
    tz: ZoneInfo,
    local_days: bool,
) -> pd.DatetimeIndex:
    """Steps after ``last`` up to ``until`` (inclusive; at least one step), UTC."""
    count = max(1, math.floor((pd.Timestamp(until) - last) / pd.Timedelta(step)))
    if not local_days:
        return pd.DatetimeIndex([last + pd.Timedelta(step) * k for k in range(1, count + 1)])
    start = last.tz_convert(tz).tz_localize(None)
    local = pd.DatetimeIndex([start + pd.Timedelta(step) * k for k in range(1, count + 2)])
    grid = _localize(local, tz)
    keep = grid <= pd.Timestamp(until)
    keep[0] = True
    return grid[keep]


# ------------------------------------------------------------------------ the design


@dataclass(frozen=True, slots=True)
class _Learned:
    """An event name the model learns: its regressor column and past occurrences."""

    name: str
    column: str
    occurrences: int


@dataclass(frozen=True, slots=True)
class _Design:
    """Everything Prophet is told, for the fitted rows and the future rows."""

    fit_x: pd.DataFrame  # ds (naive local) + condition/regressor columns
    future_x: pd.DataFrame
    seasonalities: tuple[tuple[str, float, int, str | None], ...]  # name, period, order, cond
    regressors: tuple[str, ...]
    holidays: pd.DataFrame | None  # Prophet holiday frame (internal names)
    holiday_names: dict[str, str]  # internal name -> holiday name
    holiday_counts: dict[str, int]  # holiday name -> occurrences in the fitted history
    horizon_holidays: pd.DataFrame  # ds (local date), holiday - every holiday in the horizon
    learned: tuple[_Learned, ...]
    unseen: tuple[Event, ...]  # events not in the history, active in the horizon
    events: tuple[Event, ...]  # the whole calendar

    @classmethod
    def build(
        cls,
        *,
        fit_ds: pd.DatetimeIndex,
        future_ds: pd.DatetimeIndex,
        step: dt.timedelta,
        tz: ZoneInfo,
        span: dt.timedelta,
        events: Sequence[Event],
        settings: ForecastSettings,
        notes: list[str],
    ) -> _Design:
        fit_local = _wall_clock(fit_ds, tz)
        future_local = _wall_clock(future_ds, tz)
        fit_x = pd.DataFrame({"ds": fit_local})
        future_x = pd.DataFrame({"ds": future_local})

        seasonalities: list[tuple[str, float, int, str | None]] = []
        regressors: list[str] = []
        if settings.daily_seasonality and step < _DAY:
            if span < 2 * _DAY:
                notes.append("daily seasonality off: it needs 2 days of history")
            elif settings.weekend_daily_split and _has_both_day_kinds(fit_local, span):
                for x in (fit_x, future_x):
                    weekend = pd.DatetimeIndex(x["ds"]).dayofweek >= 5
                    x[_WEEKEND] = weekend
                    x[_WEEKDAY] = ~weekend
                seasonalities.append(("daily_weekday", 1.0, DAILY_FOURIER_ORDER, _WEEKDAY))
                seasonalities.append(("daily_weekend", 1.0, DAILY_FOURIER_ORDER, _WEEKEND))
            else:
                if settings.weekend_daily_split:
                    notes.append(
                        "daily seasonality not split by weekday/weekend: it needs a week "
                        "of history with both kinds of day"
                    )
                seasonalities.append(("daily", 1.0, DAILY_FOURIER_ORDER, None))
        if settings.weekly_seasonality:
            if span >= 14 * _DAY:
                detailed = step < _DAY and span >= 28 * _DAY
                order = WEEKLY_FOURIER_ORDER if detailed else WEEKLY_FOURIER_ORDER_SHORT
                seasonalities.append(("weekly", 7.0, order, None))
            else:
                notes.append("weekly seasonality off: it needs 2 weeks of history")
        if settings.yearly_seasonality:
            if span >= 730 * _DAY:
                seasonalities.append(("yearly", 365.25, YEARLY_FOURIER_ORDER, None))
            else:
                notes.append("yearly seasonality off: it needs 2 years of history")
        if settings.business_hours is not None and step < _DAY:
            first, last = settings.business_hours
            for x in (fit_x, future_x):
                local = pd.DatetimeIndex(x["ds"])
                hours = (local.dayofweek < 5) & (local.hour >= first) & (local.hour < last)
                x["business_hours"] = hours.astype(float)
            regressors.append("business_hours")

        learned, unseen = _split_events(events, fit_ds, future_ds, step, notes)
        for item in learned:
            occurrences = [e for e in events if e.name == item.name]
            fit_x[item.column] = _indicator(occurrences, fit_ds, step)
            future_x[item.column] = _indicator(occurrences, future_ds, step)
            regressors.append(item.column)

        holidays = None
        holiday_names: dict[str, str] = {}
        holiday_counts: dict[str, int] = {}
        horizon_holidays = pd.DataFrame({"ds": pd.DatetimeIndex([]), "holiday": []})
        if settings.country_holidays:
            first_day = fit_local[0].date() - _DAY
            last_day = future_local[-1].date() + _DAY
            table = holiday_table(settings.country_holidays, first_day, last_day)
            seen_days = set(fit_local.normalize())
            future_days = set(future_local.normalize())
            in_history = table[table["ds"].isin(seen_days)]
            horizon_holidays = table[table["ds"].isin(future_days)].reset_index(drop=True)
            counts = in_history.groupby("holiday")["ds"].nunique()
            holiday_counts = {str(k): int(v) for k, v in counts.items()}
            holiday_names = {f"_h{i}": name for i, name in enumerate(sorted(holiday_counts))}
            internal = {name: key for key, name in holiday_names.items()}
            modelled = table[table["holiday"].isin(list(internal))]
            if not modelled.empty:
                holidays = pd.DataFrame(
                    {
                        "holiday": modelled["holiday"].map(internal).to_numpy(),
                        "ds": modelled["ds"].to_numpy(),
                        "lower_window": 0,
                        "upper_window": 0,
                    }
                )
            for _, row in horizon_holidays.iterrows():
                if row["holiday"] not in holiday_counts:
                    notes.append(
                        f"holiday {row['holiday']!r} on {row['ds']:%Y-%m-%d} is in the "
                        "horizon but not in the fitted history: no effect learned (add it to "
                        "the events calendar with an expected_uplift)"
                    )
        return cls(
            fit_x=fit_x,
            future_x=future_x,
            seasonalities=tuple(seasonalities),
            regressors=tuple(regressors),
            holidays=holidays,
            holiday_names=holiday_names,
            holiday_counts=holiday_counts,
            horizon_holidays=horizon_holidays,
            learned=learned,
            unseen=unseen,
            events=tuple(events),
        )


def _wall_clock(ds: pd.DatetimeIndex, tz: ZoneInfo) -> pd.DatetimeIndex:
    """UTC instants -> naive local wall-clock times (what Prophet's seasonality sees)."""
    return ds.tz_convert(tz).tz_localize(None)


def _has_both_day_kinds(local: pd.DatetimeIndex, span: dt.timedelta) -> bool:
    weekend = local.dayofweek >= 5
    return span >= 7 * _DAY and bool(weekend.any()) and bool((~weekend).any())


def _indicator(
    occurrences: Sequence[Event], ds: pd.DatetimeIndex, step: dt.timedelta
) -> npt.NDArray[np.float64]:
    table = event_indicators(occurrences, ds, step=step)
    if table.empty or table.shape[1] == 0:
        return np.zeros(len(ds))
    return table.iloc[:, 0].to_numpy(dtype=float)


def _split_events(
    events: Sequence[Event],
    fit_ds: pd.DatetimeIndex,
    future_ds: pd.DatetimeIndex,
    step: dt.timedelta,
    notes: list[str],
) -> tuple[tuple[_Learned, ...], tuple[Event, ...]]:
    """Learned names (an occurrence meets a fitted row) and unseen events in the horizon."""
    counts: dict[str, int] = {}
    for event in events:
        seen = bool(_indicator([event], fit_ds, step).any())
        counts[event.name] = counts.get(event.name, 0) + int(seen)
    learned = tuple(
        _Learned(name=name, column=f"_e{i}", occurrences=n)
        for i, (name, n) in enumerate((k, v) for k, v in counts.items() if v > 0)
    )
    unseen = []
    for event in events:
        if counts[event.name] or not _indicator([event], future_ds, step).any():
            continue
        if event.expected_uplift is None:
            notes.append(
                f"event {event.name!r} ({event.active_start:%Y-%m-%d %H:%M} UTC) has no "
                "earlier occurrence in the history and no expected_uplift: not applied"
            )
            continue
        unseen.append(event)
    return learned, tuple(unseen)


# ------------------------------------------------------------------------ Prophet


def _run_prophet(
    design: _Design, target: npt.NDArray[np.float64], settings: ForecastSettings, notes: list[str]
) -> pd.DataFrame:
    """Fit and predict the future rows; Prophet's output in ``design.future_x`` order."""
    try:
        from prophet import Prophet
    except ImportError as exc:  # pragma: no cover - prophet is a dependency
        raise ForecastError(f"prophet is not installed: {exc}") from exc

    def new_model() -> Prophet:
        model = Prophet(
            growth="linear",
            yearly_seasonality=False,
            weekly_seasonality=False,
            daily_seasonality=False,
            holidays=design.holidays,
            seasonality_mode="additive",
            changepoint_prior_scale=CHANGEPOINT_PRIOR_SCALE,
            changepoint_range=CHANGEPOINT_RANGE,
            interval_width=settings.interval_width,
            uncertainty_samples=settings.uncertainty_samples,
        )
        for name, period, order, condition in design.seasonalities:
            model.add_seasonality(
                name=name, period=period, fourier_order=order, condition_name=condition
            )
        for column in design.regressors:
            model.add_regressor(column, standardize=False, mode="additive")
        return model

    # Prophet sorts rows by ds (stably): sort ourselves so its rows map back to ours even
    # where the DST fall-back repeats a local hour.
    fit_order = _stable_order(design.fit_x)
    fit_df = design.fit_x.iloc[fit_order].reset_index(drop=True).assign(y=target[fit_order])
    future_order = _stable_order(design.future_x)
    future_df = design.future_x.iloc[future_order].reset_index(drop=True)
    state = np.random.get_state()
    try:
        model = new_model().fit(fit_df, seed=settings.seed, **LBFGS_OPTIONS)
        if DIP_SIGMAS is not None:
            dips = _dips(model, fit_df, design, DIP_SIGMAS)
            if dips.sum() >= MIN_DIPS:
                notes.append(
                    f"{int(dips.sum())} of {len(fit_df)} steps left out of the fit as dips "
                    f"(more than {DIP_SIGMAS:g} robust standard deviations below the first "
                    "fit, e.g. outages or storms not in the events calendar)"
                )
                # warm start from the first fit: the second needs far fewer iterations
                model = new_model().fit(
                    fit_df[~dips],
                    seed=settings.seed,
                    init=_warm_start(model.params),
                    **LBFGS_OPTIONS,
                )
        np.random.seed(settings.seed % 2**32)
        predicted: pd.DataFrame = model.predict(future_df)
    except Exception as exc:
        raise ForecastError(
            f"Prophet failed fitting {len(fit_df)} points / predicting {len(future_df)} "
            f"steps: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        np.random.set_state(state)
    restored = np.empty(len(future_order), dtype=int)
    restored[future_order] = np.arange(len(future_order))
    return predicted.iloc[restored].reset_index(drop=True)


def _warm_start(params: dict[str, Any]) -> dict[str, Any]:
    """A fitted model's MAP parameters as ``init`` for the next fit."""
    return {
        "k": float(params["k"].ravel()[0]),
        "m": float(params["m"].ravel()[0]),
        "sigma_obs": float(params["sigma_obs"].ravel()[0]),
        "delta": np.asarray(params["delta"])[0],
        "beta": np.asarray(params["beta"])[0],
    }


def _stable_order(x: pd.DataFrame) -> npt.NDArray[np.intp]:
    return np.argsort(x["ds"].to_numpy(), kind="stable")


def _dips(
    model: Any, fit_df: pd.DataFrame, design: _Design, sigmas: float
) -> npt.NDArray[np.bool_]:
    """Rows far below the fitted values (robust z < -sigmas), never event/holiday rows."""
    samples = model.uncertainty_samples
    model.uncertainty_samples = 0  # the point fit is enough; sampling history is slow
    try:
        fitted = model.predict(fit_df.drop(columns="y"))["yhat"].to_numpy(dtype=float)
    finally:
        model.uncertainty_samples = samples
    residual = fit_df["y"].to_numpy(dtype=float) - fitted
    spread = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    if spread <= 0:
        return np.zeros(len(fit_df), dtype=bool)
    dips: npt.NDArray[np.bool_] = residual < -sigmas * spread
    for item in design.learned:
        dips &= fit_df[item.column].to_numpy() == 0
    if design.holidays is not None:
        days = pd.DatetimeIndex(fit_df["ds"]).normalize()
        dips &= ~np.asarray(days.isin(pd.DatetimeIndex(design.holidays["ds"])))
    if dips.mean() > MAX_DIP_FRACTION:  # a level change, not dips: keep everything
        return np.zeros(len(fit_df), dtype=bool)
    return dips


# ------------------------------------------------------------------------ the output


def _assemble(
    *,
    raw: pd.DataFrame,
    design: _Design,
    future_ds: pd.DatetimeIndex,
    eps: float,
    settings: ForecastSettings,
    step: dt.timedelta,
    now: dt.datetime,
    history_end: dt.datetime,
    notes: list[str],
) -> Forecast:
    point = raw["yhat"].to_numpy(dtype=float)
    lower = raw["yhat_lower"].to_numpy(dtype=float) if "yhat_lower" in raw else point.copy()
    upper = raw["yhat_upper"].to_numpy(dtype=float) if "yhat_upper" in raw else point.copy()
    trend = raw["trend"].to_numpy(dtype=float)

    def fraction(column: str) -> npt.NDArray[np.float64]:
        values = raw[column].to_numpy(dtype=float)
        if settings.log_transform:
            grown: npt.NDArray[np.float64] = np.expm1(values)
            return grown
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio: npt.NDArray[np.float64] = np.where(trend != 0, values / trend, 0.0)
        return ratio

    if settings.log_transform:
        point, lower, upper = (np.exp(a) - eps for a in (point, lower, upper))

    components: dict[str, npt.NDArray[np.float64]] = {}
    for name, *_ in design.seasonalities:
        components[name] = fraction(name)
    if "business_hours" in design.regressors:
        components["business_hours"] = fraction("business_hours")
    future_local_days = _wall_clock(future_ds, ZoneInfo(settings.timezone)).normalize()
    effects: list[EventEffect] = []
    internal = {name: key for key, name in design.holiday_names.items()}
    for day, name in zip(
        design.horizon_holidays["ds"], design.horizon_holidays["holiday"], strict=True
    ):
        if name not in internal:
            continue
        values = fraction(internal[name])
        column = f"holiday:{name}"
        components[column] = values
        on_day = np.asarray(future_local_days == day)
        start, end = _day_bounds(pd.Timestamp(day), settings.timezone)
        effects.append(
            EventEffect(
                name=str(name),
                start=start,
                end=end,
                effect=float(values[on_day].mean()),
                source="holiday",
                occurrences_in_history=design.holiday_counts[str(name)],
            )
        )

    horizon_events: list[Event] = []
    for item in design.learned:
        if design.future_x[item.column].to_numpy().any():
            components[f"event:{item.name}"] = fraction(item.column)
    factor = np.ones(len(future_ds))
    uplifts: dict[str, npt.NDArray[np.float64]] = {}
    for event in design.unseen:
        assert event.expected_uplift is not None
        active = _indicator([event], future_ds, step).astype(bool)
        factor[active] *= 1 + event.expected_uplift
        product = uplifts.setdefault(f"event:{event.name}", np.ones(len(future_ds)))
        product[active] *= 1 + event.expected_uplift
        horizon_events.append(event)
    for name, product in uplifts.items():
        components[name] = product - 1
    for item in design.learned:
        for event in _occurrences(design, item.name):
            active = _indicator([event], future_ds, step).astype(bool)
            if active.any():
                values = components[f"event:{item.name}"]
                effects.append(
                    EventEffect(
                        name=event.name,
                        start=event.active_start,
                        end=event.active_end,
                        effect=float(values[active].mean()),
                        source="learned",
                        occurrences_in_history=item.occurrences,
                    )
                )
    effects.extend(EventEffect.expected(event) for event in horizon_events)

    point = np.maximum(point * factor, 0.0)
    lower = np.clip(np.minimum(lower * factor, point), 0.0, None)
    upper = np.maximum(upper * factor, point)
    out = pd.DataFrame(
        {
            "ds": future_ds,
            "yhat": point,
            "yhat_lower": lower,
            "yhat_upper": upper,
            **components,
        }
    )
    out = out.sort_values("ds", kind="mergesort").reset_index(drop=True)
    effects.sort(key=lambda e: (e.start, e.name))
    return Forecast(
        frame=out,
        components=tuple(components),
        resolution=step,
        interval_width=settings.interval_width,
        fitted_at=now,
        history_end=history_end,
        model="prophet",
        event_effects=tuple(effects),
        notes=tuple(notes),
    )


def _occurrences(design: _Design, name: str) -> list[Event]:
    return [e for e in design.events if e.name == name]


def _day_bounds(day: pd.Timestamp, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    local = pd.DatetimeIndex([day, day + pd.Timedelta(days=1)])
    bounds = _localize(local, ZoneInfo(timezone))
    return bounds[0].to_pydatetime(), bounds[1].to_pydatetime()
