"""One exception tree for forescale.

::

    ForescaleError                    anything forescale reports to a user (CLI exit 1)
    ├── ConfigError                   settings file / environment invalid
    ├── EventsError                   events calendar malformed or overlapping
    ├── DataError                     demand history unusable
    │   ├── InsufficientHistory       less history than the minimum rule allows
    │   └── NonFiniteValue            NaN / inf in the input, with its row
    ├── CollectorError                a metric source failed (vendor errors wrapped)
    ├── ForecastError                 model fitting / prediction failed
    ├── PlanError                     capacity policy cannot be satisfied / bad input
    ├── StoreError                    database unreachable or inconsistent
    └── TfvarsError                   a variable file cannot be edited safely
        ├── TfvarsParseError          the file does not parse (left untouched)
        ├── TfvarsTargetError         target missing, duplicated or not a number literal
        └── TfvarsConflict            the file changed since it was read (compare-and-swap)

Vendor exceptions (botocore, httpx, lark, sqlalchemy, cmdstanpy) are translated at the
edge with ``raise XError(...) from exc``; none escapes its package.
"""

from __future__ import annotations


class ForescaleError(Exception):
    """Base class: an error a user can act on. ``str(err)`` is a one-line message."""


class ConfigError(ForescaleError):
    """Settings are invalid. The message names the file and the field."""


class EventsError(ForescaleError):
    """The events calendar is malformed or has overlapping events.

    ``source`` is the file name (or ``"<string>"``), ``line`` the 1-based line of the
    offending event when known.
    """

    def __init__(self, message: str, *, source: str = "<string>", line: int | None = None) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line


class DataError(ForescaleError):
    """Demand history cannot be used as given."""


class InsufficientHistory(DataError):
    """Less history than the minimum-history rule requires (default 24 h, as AWS)."""

    def __init__(self, message: str, *, have_seconds: float, need_seconds: float) -> None:
        super().__init__(message)
        self.have_seconds = have_seconds
        self.need_seconds = need_seconds


class NonFiniteValue(DataError):
    """A NaN or infinite demand value; ``row`` is the 1-based data row (header excluded)."""

    def __init__(self, message: str, *, row: int) -> None:
        super().__init__(message)
        self.row = row


class CollectorError(ForescaleError):
    """A metric source failed; the message says what to fix."""


class ForecastError(ForescaleError):
    """The forecaster could not fit or predict."""


class PlanError(ForescaleError):
    """The capacity planner got inputs it cannot plan with."""


class StoreError(ForescaleError):
    """The store is unreachable or inconsistent."""


class TfvarsError(ForescaleError):
    """A Terraform variable file cannot be edited safely; the file is left untouched."""


class TfvarsParseError(TfvarsError):
    """The variable file does not parse."""


class TfvarsTargetError(TfvarsError):
    """The target variable is missing, appears twice, or is not a number literal."""


class TfvarsConflict(TfvarsError):
    """The file changed between reading it and writing it (compare-and-swap failed)."""
