"""The backtest's schedule CSV (``forescale backtest --schedule-out``).

One row per simulated step of every fold, from which the JSON's under-provisioned shares
and unit-hours can be recomputed (docs/backtest-json.md). Columns: :data:`SCHEDULE_COLUMNS`
(``ts`` UTC ISO 8601 with ``Z``, ``fold``, ``demand``, ``forecast``, ``upper``, ``units``),
then ``units_<approach>`` per baseline, then any other column of the schedule. Floats are
written with ``repr`` precision (they read back to the same doubles); NaN is an empty cell.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
from typing import Any

import numpy as np
import pandas as pd

from forescale.forecaster.backtest import BacktestResult
from forescale.iac_writer import files
from forescale.report.backtest_view import UNITS_PREFIX
from forescale.report.formatting import iso_utc

__all__ = ["SCHEDULE_COLUMNS", "schedule_columns", "write_schedule_csv"]

# The schedule CSV starts with these, in this order; the baselines' unit columns follow.
SCHEDULE_COLUMNS = ("ts", "fold", "demand", "forecast", "upper", "units")


def schedule_columns(schedule: pd.DataFrame) -> list[str]:
    """The CSV's columns: :data:`SCHEDULE_COLUMNS`, the ``units_<approach>`` columns in the
    schedule's order, then any other column the schedule has."""
    missing = [c for c in SCHEDULE_COLUMNS if c not in schedule.columns]
    if missing:
        raise ValueError(f"the backtest schedule lacks columns {missing}")
    names = [str(c) for c in schedule.columns]
    baselines = [c for c in names if c.startswith(UNITS_PREFIX)]
    rest = [c for c in names if c not in SCHEDULE_COLUMNS and c not in baselines]
    return [*SCHEDULE_COLUMNS, *baselines, *rest]


def schedule_csv(result: BacktestResult) -> bytes:
    """``result.schedule`` as the CSV's UTF-8 bytes (``\\n`` line ends)."""
    columns = schedule_columns(result.schedule)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in result.schedule[columns].itertuples(index=False, name=None):
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, pd.Timestamp | dt.datetime):
        return iso_utc(pd.Timestamp(value).to_pydatetime()) if not pd.isna(value) else ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else repr(float(value))
    return str(value)


def write_schedule_csv(result: BacktestResult, path: str | os.PathLike[str]) -> None:
    """Write the schedule CSV to ``path`` atomically
    (:func:`forescale.iac_writer.files.write_atomic`:
    a temporary file in the same directory, fsynced, renamed over ``path``; a replaced
    file keeps its mode). An OS error is one line naming ``path``."""
    files.write_atomic(path, schedule_csv(result))
