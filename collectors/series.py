"""Pure helpers that turn raw samples into a regular UTC demand series.

A demand series is a DataFrame with columns ``ds`` (tz-aware UTC, regular step, sorted)
and ``y`` (float). Missing samples are NaN rows: gaps stay gaps, never zeros.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from forescale.errors import DataError, InsufficientHistory

DEFAULT_MIN_HISTORY = dt.timedelta(hours=24)


def infer_step(ds: pd.Series) -> dt.timedelta:
    """The sampling step: the most common difference between consecutive timestamps."""
    diffs = ds.sort_values().diff().dropna()
    diffs = diffs[diffs > pd.Timedelta(0)]
    if diffs.empty:
        raise DataError("cannot infer the sampling step from fewer than two distinct timestamps")
    step = diffs.mode().iloc[0]
    return pd.Timedelta(step).to_pytimedelta()


def regularize(frame: pd.DataFrame, step: dt.timedelta | None = None) -> pd.DataFrame:
    """Put samples on a regular grid of ``step`` (inferred when None).

    Timestamps are snapped down to the grid (anchored at the Unix epoch, so two runs over
    overlapping ranges agree); several samples in one slot are averaged; slots with no
    sample become NaN. Input ``ds`` must be tz-aware.
    """
    if frame.empty:
        return pd.DataFrame({"ds": pd.Series([], dtype="datetime64[ns, UTC]"), "y": []})
    ds = pd.to_datetime(frame["ds"])
    if ds.dt.tz is None:
        raise DataError("timestamps must be timezone-aware")
    ds = ds.dt.tz_convert("UTC")
    step = step or infer_step(ds)
    freq = pd.Timedelta(step)
    slot = ds.dt.floor(freq)  # type: ignore[arg-type]  # pandas accepts a Timedelta
    values = pd.Series(frame["y"].to_numpy(dtype=float), index=pd.DatetimeIndex(slot))
    grouped = values.groupby(level=0).mean()
    full = pd.date_range(grouped.index.min(), grouped.index.max(), freq=freq)
    regular = grouped.reindex(full)
    return pd.DataFrame({"ds": full, "y": regular.to_numpy(dtype=float)})


def check_history(
    series: pd.DataFrame, *, min_history: dt.timedelta = DEFAULT_MIN_HISTORY, what: str = "history"
) -> None:
    """Raise :class:`InsufficientHistory` when observed samples span less than ``min_history``."""
    observed = series.loc[series["y"].notna(), "ds"]
    have = (
        dt.timedelta(0)
        if len(observed) < 2
        else (observed.iloc[-1] - observed.iloc[0]).to_pytimedelta()
    )
    if have < min_history:
        raise InsufficientHistory(
            f"{what}: {_hours(have)} of data, at least {_hours(min_history)} needed "
            "before forescale will forecast (collect more history or lower min_history)",
            have_seconds=have.total_seconds(),
            need_seconds=min_history.total_seconds(),
        )


def coverage(series: pd.DataFrame) -> float:
    """Share of grid slots that hold a sample (1.0 = no gaps)."""
    if series.empty:
        return 0.0
    return float(np.isfinite(series["y"].to_numpy(dtype=float)).mean())


def _hours(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h"
