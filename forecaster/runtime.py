"""The one place where fitting changes third-party libraries: :func:`configure_fitting`.

Fitting Prophet needs three process-wide changes to libraries that are not ours. They are
made only by an explicit call (never by importing a forescale module), in one function,
from the places where fitting starts: :func:`forescale.forecaster.candidates.fit_candidates` before
its Prophet fit, and the initialiser of each worker of a process pool that preloads
Prophet (:mod:`forescale.executor`). Calling it again changes nothing; it is thread-safe.

1. **Numeric lists to JSON in C.** Prophet hands CmdStan its design matrix as nested
   Python lists, and ``stanio`` (cmdstanpy's JSON writer) walks them element by element in
   Python (``process_value``: ~185,000 calls for a 2-week 5-minute fit, ~40 % of the fit).
   ``stanio.json.process_value`` is wrapped so that a rectangular list of ints/floats goes
   through ``numpy.asarray(...).tolist()`` instead: the same Python numbers in the same
   nesting, so the JSON is byte-identical for all-float and all-int lists (Prophet's;
   tests/forecaster/test_stan_json.py) and numerically identical otherwise (an int inside
   a float list is written ``1.0``); anything else (bools, ragged lists, dicts) takes
   stanio's own path. This relies on stanio's internals (``process_dictionary`` looking up
   the module's ``process_value`` on each call, recursion through it), so it is done only
   for the stanio versions it was verified on, :data:`STANIO_RANGE` (pinned in
   pyproject.toml too). Another installed version is left alone, with one warning per
   process: fits then take longer, with the same results.
2. **cmdstanpy's logger at WARNING**: it logs two INFO lines per fit ("Chain [1] start
   processing"). cmdstanpy sets its logger up (level DEBUG, its own handler) on the first
   ``get_logger()`` call, so the level is set after that call.
3. **prophet's "Importing plotly failed"** (logged at import, we draw no plotly plots) is
   filtered out of the ``prophet.plot`` logger, before prophet is imported.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

__all__ = ["STANIO_RANGE", "FittingSetup", "configure_fitting"]

_log = logging.getLogger(__name__)

STANIO_RANGE: Final = ((0, 5, 1), (0, 6))
"""stanio releases the JSON fast path is verified on: ``>= 0.5.1, < 0.6``."""

_lock = threading.Lock()
_refused_versions: set[str] = set()  # warned about once per process


@dataclass(frozen=True, kw_only=True, slots=True)
class FittingSetup:
    """What :func:`configure_fitting` found: whether stanio's JSON writer takes the fast
    path, and the installed stanio version (``None`` if stanio is not installed)."""

    fast_stan_json: bool
    stanio_version: str | None


def configure_fitting() -> FittingSetup:
    """Make the process-wide changes fitting needs (module docstring); idempotent."""
    with _lock:
        _quiet_logs()
        version = _installed_stanio()
        return FittingSetup(fast_stan_json=_fast_stan_json(version), stanio_version=version)


# --------------------------------------------------------------------------- the steps


def _quiet_logs() -> None:
    plot_logger = logging.getLogger("prophet.plot")
    if not any(isinstance(f, _NoPlotly) for f in plot_logger.filters):
        plot_logger.addFilter(_NoPlotly())  # before prophet is imported: it logs at import
    from cmdstanpy.utils import get_logger

    get_logger().setLevel(logging.WARNING)


def _fast_stan_json(version: str | None) -> bool:
    """Wrap ``stanio.json.process_value`` (step 1); True if the fast path is in place."""
    if version is None:
        return False
    try:
        from stanio import json as stan_json
    except ImportError:  # pragma: no cover - cmdstanpy depends on stanio
        return False
    original = getattr(stan_json, "process_value", None)
    if original is None:
        return False
    if getattr(original, "_forescale_fast", False):
        return True
    if not _in_range(version):
        if version not in _refused_versions:
            _refused_versions.add(version)
            (low, high) = STANIO_RANGE
            _log.warning(
                "stanio %s is outside the versions forescale's fast CmdStan input was "
                "verified on (>= %s, < %s): stanio is not patched, fits are slower (same "
                "results). Install a stanio in that range, or verify this one "
                "(tests/forecaster/test_stan_json.py) and widen STANIO_RANGE",
                version,
                ".".join(map(str, low)),
                ".".join(map(str, high)),
            )
        return False

    def process_value(val: Any) -> Any:
        if isinstance(val, list) and val and isinstance(val[0], list | float | int):
            try:
                array = np.asarray(val)
            except ValueError:  # ragged
                return original(val)
            if array.dtype.kind in "iuf" and not isinstance(val[0], bool):
                return array.tolist()
        return original(val)

    process_value._forescale_fast = True  # type: ignore[attr-defined]
    process_value._forescale_original = original  # type: ignore[attr-defined]
    stan_json.process_value = process_value
    return True


class _NoPlotly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Importing plotly failed" not in record.getMessage()


# --------------------------------------------------------------------------- versions


def _installed_stanio() -> str | None:
    try:
        return importlib.metadata.version("stanio")
    except importlib.metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a PEP 440 version: ``"0.5.1.post1"`` -> ``(0, 5, 1)``."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def _in_range(version: str) -> bool:
    """True for a final or post release in :data:`STANIO_RANGE` (not a pre-release)."""
    if re.search(r"(a|b|rc|dev)\d*", version, re.IGNORECASE):
        return False
    low, high = STANIO_RANGE
    return low <= _release(version) < high
