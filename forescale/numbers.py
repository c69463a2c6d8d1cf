"""The one rule for numbers that leave forescale as JSON: finite or ``null``."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite"]


def finite(value: Any, *, ndigits: int | None = None) -> float | None:
    """``value`` as a float, or None when it is missing, not a number, NaN or infinite;
    rounded to ``ndigits`` decimals when given."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return number if ndigits is None else round(number, ndigits)
