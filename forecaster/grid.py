"""Small facts about regular time grids, shared by the model, the challengers and the
backtest (pure)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from forescale.errors import InsufficientHistory

__all__ = ["epoch_ns", "native_step", "observed_history", "step_text"]


def epoch_ns(ds: pd.DatetimeIndex) -> np.ndarray:
    """Nanoseconds since the epoch of a (tz-aware) index."""
    naive = ds.tz_convert("UTC").tz_localize(None) if ds.tz is not None else ds
    return np.asarray(naive.to_numpy("datetime64[ns]")).view("int64")


def native_step(ds: pd.DatetimeIndex) -> dt.timedelta:
    """The sampling step: the median spacing of ``ds`` (1 h if there is one sample)."""
    if len(ds) < 2:
        return dt.timedelta(hours=1)
    return dt.timedelta(microseconds=int(np.median(np.diff(epoch_ns(ds)))) // 1000)


def step_text(span: dt.timedelta) -> str:
    """``5min``, ``1h``, ``14d`` (the largest unit that divides it), else seconds."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def observed_history(
    history: pd.DataFrame, now: dt.datetime, min_history: dt.timedelta, model: str
) -> tuple[pd.DataFrame, dt.timedelta]:
    """The samples of ``history`` (``ds``, ``y``) at or before ``now`` that have a value,
    and their native step; :class:`InsufficientHistory` (naming ``model``) when fewer
    than two, or when they span less than ``min_history``. ``now`` must be aware."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    frame = history[["ds", "y"]]
    frame = frame[frame["ds"] <= pd.Timestamp(now)]
    observed = frame[frame["y"].notna()]
    if len(observed) < 2:
        raise InsufficientHistory(
            f"fewer than 2 samples of demand history for {model}",
            have_seconds=0.0,
            need_seconds=min_history.total_seconds(),
        )
    ds = pd.DatetimeIndex(observed["ds"])
    step = native_step(ds)
    have = (ds[-1] - ds[0]).to_pytimedelta() + step
    if have < min_history:
        raise InsufficientHistory(
            f"{have.total_seconds() / 3600:.1f} h of demand history; at least "
            f"{min_history.total_seconds() / 3600:.1f} h are needed",
            have_seconds=have.total_seconds(),
            need_seconds=min_history.total_seconds(),
        )
    return observed, step
