"""Small facts about regular time grids, shared by the model, the challengers and the
backtest (pure)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

__all__ = ["epoch_ns", "native_step", "step_text"]


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
