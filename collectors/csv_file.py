"""Demand history from a CSV file (``timestamp,value`` by default)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from collectors.series import regularize
from forescale.errors import CollectorError, DataError, NonFiniteValue


@dataclass(frozen=True, kw_only=True, slots=True)
class CsvFileSource:
    """Reads a CSV of samples. Naive timestamps are wall-clock time in ``timezone``.

    Empty value cells are gaps; ``NaN``/``inf`` values are rejected with their row.
    Values are multiplied by ``scale`` (e.g. to turn passengers per 30 min into
    requests/s for a demo).
    """

    path: Path
    timestamp_column: str = "timestamp"
    value_column: str = "value"
    timezone: str = "UTC"
    scale: float = 1.0
    kind: str = "csv"

    @classmethod
    def from_settings(cls, settings: Any) -> CsvFileSource:
        return cls(
            path=Path(settings.path),
            timestamp_column=settings.timestamp_column,
            value_column=settings.value_column,
            timezone=settings.timezone,
            scale=float(settings.scale),
        )

    def describe(self) -> str:
        return describe(self)

    def fetch(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> pd.DataFrame:
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as handle:
                raw = pd.read_csv(handle, dtype=str, keep_default_na=False)
        except FileNotFoundError:
            raise CollectorError(f"{self.path}: CSV file not found") from None
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise CollectorError(f"{self.path}: cannot read CSV: {exc}") from None
        series = parse_samples(
            raw,
            timestamp_column=self.timestamp_column,
            value_column=self.value_column,
            timezone=self.timezone,
            source=str(self.path),
        )
        series = series.assign(y=series["y"] * self.scale)
        if start is not None:
            series = series[series["ds"] >= pd.Timestamp(start)]
        if end is not None:
            series = series[series["ds"] <= pd.Timestamp(end)]
        return regularize(series.reset_index(drop=True))


def describe(source: Any) -> str:
    """``csv demand.csv (value)`` from a source or its settings (same field names)."""
    return f"csv {Path(source.path).name} ({source.value_column})"


def parse_samples(
    raw: pd.DataFrame,
    *,
    timestamp_column: str,
    value_column: str,
    timezone: str,
    source: str,
) -> pd.DataFrame:
    """Turn string columns into ``ds`` (UTC) and ``y``; row numbers in errors are data rows
    counted from 1 after the header (so row N is line N + 1 of the file)."""
    for column in (timestamp_column, value_column):
        if column not in raw.columns:
            raise DataError(
                f"{source}: no column {column!r} (columns: {', '.join(map(str, raw.columns))})"
            )
    if raw.empty:
        raise DataError(f"{source}: no data rows")
    ts_text = raw[timestamp_column].str.strip()
    ds = pd.to_datetime(ts_text, errors="coerce", utc=False, format="mixed")
    bad = ds.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise DataError(f"{source}: row {row}: cannot parse timestamp {ts_text.iloc[row - 1]!r}")
    if getattr(ds.dtype, "tz", None) is None:
        # A repeated fall-back hour cannot be told apart in naive wall-clock data: take the
        # first (DST) reading; the second hour becomes a gap, which is what it is.
        ambiguous = np.ones(len(ds), dtype=bool)
        ds = ds.dt.tz_localize(timezone, ambiguous=ambiguous, nonexistent="shift_forward")
    ds = ds.dt.tz_convert("UTC")

    text = raw[value_column].str.strip()
    values = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(dtype=float)
    unparsable = np.isnan(values) & (text != "").to_numpy()
    for found in np.flatnonzero(unparsable):
        index = int(found)
        token = text.iloc[index]
        try:
            number = float(token)
        except ValueError:
            raise DataError(f"{source}: row {index + 1}: value {token!r} is not a number") from None
        if not math.isfinite(number):
            raise NonFiniteValue(
                f"{source}: row {index + 1}: value {token!r} is not finite; "
                "leave the cell empty for a gap",
                row=index + 1,
            )
    infinite = np.isinf(values)
    if infinite.any():
        index = int(np.flatnonzero(infinite)[0])
        raise NonFiniteValue(
            f"{source}: row {index + 1}: value {text.iloc[index]!r} is not finite; "
            "leave the cell empty for a gap",
            row=index + 1,
        )
    negative = values < 0
    if negative.any():
        index = int(np.flatnonzero(negative)[0])
        raise DataError(f"{source}: row {index + 1}: demand {values[index]} is negative")
    return (
        pd.DataFrame({"ds": ds.to_numpy(), "y": values})
        .assign(ds=lambda f: pd.to_datetime(f["ds"], utc=True))
        .sort_values("ds", kind="stable")
        .reset_index(drop=True)
    )
