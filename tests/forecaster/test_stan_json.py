"""The one set-up point for fitting (forescale.forecaster.runtime.configure_fitting).

The fast path for CmdStan's JSON input writes exactly what stanio would have; it is
installed only on a stanio version it was verified on, only when asked (never by an
import), and by the two places where fitting starts.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from stanio import json as stan_json

from forescale.executor import ExecutorSettings, FitExecutor
from forescale.forecaster import runtime
from forescale.forecaster.runtime import STANIO_RANGE, FittingSetup, configure_fitting


@pytest.fixture
def stanio_unpatched(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """stanio's own ``process_value`` for the test; whatever was there comes back after."""
    current = stan_json.process_value
    original = getattr(current, "_forescale_original", current)
    monkeypatch.setattr(stan_json, "process_value", original)
    monkeypatch.setattr(runtime, "_refused_versions", set())
    yield


def test_numeric_lists_go_through_numpy_and_the_json_is_byte_identical(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = configure_fitting()
    assert setup.fast_stan_json
    fast = stan_json.process_value
    assert getattr(fast, "_forescale_fast", False)
    original = fast._forescale_original  # type: ignore[attr-defined]
    rng = np.random.default_rng(7)
    data = {
        "X": rng.normal(size=(200, 13)).tolist(),  # Prophet's design matrix: nested lists
        "y": (rng.random(200) * 1e6).tolist(),
        "s_a": [0, 1, 1, 0],
        "tiny": [1e-300, -0.0, 5e-324, 1.7976931348623157e308],
        "flags": [True, False, True],  # bools are ints for Stan: stanio's own path
        "ragged": [[1.0], [2.0, 3.0]],
        "T": 200,
        "tau": 0.05,
        "empty": [],
        "tuple": (1, [2.0, 3.0]),
    }
    fast_json = json.dumps(stan_json.process_dictionary(data))
    monkeypatch.setattr(stan_json, "process_value", original)
    slow_json = json.dumps(stan_json.process_dictionary(data))
    assert fast_json == slow_json
    # A list mixing ints and floats is all floats for numpy: the same numbers for Stan (a
    # real array), written 1.0 instead of 1.
    mixed = {"mixed": [[1, 2.5], [3, 4.0]]}
    monkeypatch.setattr(stan_json, "process_value", fast)
    assert json.dumps(stan_json.process_dictionary(mixed)) == '{"mixed": [[1.0, 2.5], [3.0, 4.0]]}'
    monkeypatch.setattr(stan_json, "process_value", original)
    assert json.loads(json.dumps(stan_json.process_dictionary(mixed))) == mixed
    monkeypatch.setattr(stan_json, "process_value", fast)
    assert configure_fitting() == setup  # configuring again keeps the one wrapper
    assert stan_json.process_value is fast


def test_the_installed_stanio_is_in_the_verified_range() -> None:
    """pyproject.toml pins the same range: an upgrade past it must be verified first."""
    setup = configure_fitting()
    assert setup.stanio_version is not None
    assert runtime._in_range(setup.stanio_version)
    low, high = STANIO_RANGE
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("stanio")]
    as_text = ".".join(map(str, low)), ".".join(map(str, high))
    assert pins == [f"stanio>={as_text[0]},<{as_text[1]}"]


@pytest.mark.usefixtures("stanio_unpatched")
@pytest.mark.parametrize("version", ["0.6.0", "0.6.0rc1", "0.5.0", "1.0", "0.4.0"])
def test_a_stanio_outside_the_range_is_left_alone_and_said_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    original = stan_json.process_value
    monkeypatch.setattr(runtime, "_installed_stanio", lambda: version)
    with caplog.at_level(logging.WARNING, logger="forescale.forecaster.runtime"):
        first = configure_fitting()
        second = configure_fitting()
    assert first == second == FittingSetup(fast_stan_json=False, stanio_version=version)
    assert stan_json.process_value is original
    (record,) = caplog.records
    assert f"stanio {version}" in record.getMessage()
    assert "not patched" in record.getMessage()


@pytest.mark.usefixtures("stanio_unpatched")
@pytest.mark.parametrize("version", ["0.5.1", "0.5.1.post1", "0.5.9"])
def test_versions_in_the_range_are_patched(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(runtime, "_installed_stanio", lambda: version)
    assert configure_fitting().fast_stan_json
    assert getattr(stan_json.process_value, "_forescale_fast", False)


def test_cmdstanpy_logs_only_warnings_after_set_up() -> None:
    configure_fitting()
    from cmdstanpy.utils import get_logger

    assert get_logger().level == logging.WARNING
    assert any(isinstance(f, runtime._NoPlotly) for f in logging.getLogger("prophet.plot").filters)


FRESH = """
import logging, sys
import forescale.forecaster.model, forescale.forecaster.candidates
import forescale.forecaster.runtime, forescale.executor
from stanio import json as stan_json
def patched():
    return getattr(stan_json.process_value, "_forescale_fast", False)
print("after import", patched(), logging.getLogger("cmdstanpy").level)
"""


def _fresh(script: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", FRESH + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_importing_changes_nothing_and_fitting_candidates_sets_up() -> None:
    lines = _fresh("""
        import datetime as dt
        import pandas as pd
        from forescale.forecaster.candidates import fit_candidates
        from forescale.forecaster.types import ForecastSettings
        now = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
        history = pd.DataFrame(
            {"ds": pd.date_range(end=now, periods=3, freq="h", inclusive="left"), "y": 1.0}
        )
        fitted = fit_candidates(history, settings=ForecastSettings(), now=now, models=["prophet"])
        assert "prophet" in fitted.errors  # too little history: the fit itself failed
        print("after fit", patched(), logging.getLogger("cmdstanpy").level)
    """)
    assert lines == ["after import False 0", f"after fit True {logging.WARNING}"]


def test_seasonal_naive_alone_needs_no_set_up() -> None:
    lines = _fresh("""
        import datetime as dt
        import pandas as pd
        from forescale.forecaster.candidates import fit_candidates
        from forescale.forecaster.types import ForecastSettings
        now = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
        history = pd.DataFrame(
            {"ds": pd.date_range(end=now, periods=3, freq="h", inclusive="left"), "y": 1.0}
        )
        fit_candidates(history, settings=ForecastSettings(), now=now, models=["seasonal_naive"])
        print("after fit", patched(), "cmdstanpy" in sys.modules)
    """)
    assert lines == ["after import False 0", "after fit False False"]


def worker_state(_: int) -> tuple[bool, int]:
    """In a pool worker, before any fit: (stanio patched, cmdstanpy's log level)."""
    from cmdstanpy.utils import get_logger

    return getattr(stan_json.process_value, "_forescale_fast", False), get_logger().level


def test_a_pool_that_preloads_prophet_sets_up_each_worker() -> None:
    settings = ExecutorSettings(kind="process", workers=2, preload=("prophet",))
    with FitExecutor(settings) as pool:
        outcomes = list(pool.map_unordered(worker_state, [1, 2]))
    assert [o.error for o in outcomes] == [None, None]
    assert {o.value for o in outcomes} == {(True, logging.WARNING)}
