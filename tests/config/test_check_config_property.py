"""Property: whatever settings document a user writes, ``forescale check-config`` answers
with exit code 0 (valid) or 1 (one error line), never 3 (a bug with a traceback).

Documents are a valid base with random keys of the schema replaced by junk (wrong types,
huge numbers, bools, NaN strings, empty values, unknown keys), or junk at the top level
(a non-mapping, random text, random bytes), written as YAML or JSON.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forescale.cli import main

BASE: dict[str, Any] = {
    "mode": "dry-run",
    "display_timezone": "UTC",
    "min_history": "24h",
    "stale_after": "30m",
    "api": {"bind": "127.0.0.1", "port": 1, "protect_reads": False},  # only validated
    "fit": {"executor": "serial", "workers": 2},
    "services": {
        "web": {
            "source": {
                "type": "prometheus",
                "url": "http://127.0.0.1:1",  # only validated, never fetched
                "query": "up",
                "step": "1m",
                "max_points": 1000,
                "timeout": 5,
                "lookback": "7d",
            },
            "capacity_per_unit": 100,
            "min_units": 2,
            "max_units": 20,
            "max_step_up": 4,
            "max_step_down": "25%",
            "step_period": "15m",
            "lead_time": "15m",
            "observed_headroom": 0.3,
            "scale_in": {"policy": "after_peak", "stabilization": "1h", "tolerance": 0.1},
            "forecast": {
                "horizon": "48h",
                "interval_width": 0.9,
                "business_hours": [9, 18],
                "resolution": "15m",
                "max_points": 1500,
                "max_history": "8w",
                "uncertainty_samples": 300,
                "target_under": 0.03,
                "record_window": "7d",
                "max_band_factor": 3,
                "live_window": "6h",
                "live_max_under": 0.25,
                "live_max_error": 0.5,
                "models": ["ensemble"],
                "seasonalities": {"daily": True, "weekly": True},
            },
            "iac": {
                "working_dir": "tf",
                "var_file": "prod.tfvars",
                "address": "capacity.web.min",
                "write": "in_place",
                "terraform": {"lock_timeout": "60s", "plan_timeout": "30m"},
            },
        },
        "api": {
            "source": {"type": "csv", "path": "demand.csv", "scale": 1.0},
            "capacity_per_unit": 10,
            "min_units": 1,
            "max_units": 5,
            "iac": {"working_dir": "tf", "address": "api_min", "write": "auto_tfvars"},
        },
        "batch": {
            "source": {
                "type": "cloudwatch",
                "region": "us-east-1",
                "expression": "SUM(x)",
                "period": "5m",
                "max_attempts": 3,
                "read_timeout": 30,
            },
            "capacity_per_unit": 1,
            "min_units": 0,
            "max_units": 3,
            "iac": {"working_dir": "tf2", "address": "batch_min"},
        },
    },
}


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


PATHS = sorted(_paths(BASE))

huge = st.sampled_from(
    [10**30, -(10**30), 2**63, 10**400, 1e308, -1e308, 1.7976931348623157e308, 5e-324]
)
junk_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    huge,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "",
            "nan",
            "NaN",
            ".nan",
            "inf",
            "-inf",
            ".inf",
            "true",
            "yes",
            "25%",
            "1e308%",
            "-5%",
            "99999999999999d",
            "1e308",
            "15m",
            "0s",
            "-1s",
            "3651d",
            "60d",
            "61d",
            "1w",
            "1h30m",
            "0",
            "-1",
            "1" * 400,
            "~",
            "null",
            "Europe/Berlin",
            "Mars/Olympus",
            "../../etc/passwd",
            "\x00",
            "a\x00b",
            "~nosuchuser/x",
            "http://u:p@h/?k=v",
            "in_place",
            "auto_tfvars",
            "csv",
            "prometheus",
            "cloudwatch",
            "2024-13-45",
        ]
    ),
    st.text(max_size=20),
)
junk = st.recursive(
    junk_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.text(max_size=8), st.sampled_from(["type", "units"])), inner, max_size=3
        ),
    ),
    max_leaves=6,
)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["mutated-yaml", "mutated-json", "junk-yaml", "text", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    if kind == "junk-yaml":
        return yaml.safe_dump(draw(junk)).encode()
    data = copy.deepcopy(BASE)
    for path in draw(st.lists(st.sampled_from(PATHS), min_size=0, max_size=4)):
        node = data
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        action = draw(st.sampled_from(["replace", "replace", "delete", "add-unknown"]))
        if action == "replace":
            node[path[-1]] = draw(junk)
        elif action == "delete":
            node.pop(path[-1], None)
        else:
            node[draw(st.text(min_size=1, max_size=8))] = draw(junk)
    if kind == "mutated-json":
        try:
            return json.dumps(data).encode()
        except (ValueError, TypeError):  # a huge int JSON cannot print: fall back to YAML
            pass
    return yaml.safe_dump(data, allow_unicode=True).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module", autouse=True)
def _no_forescale_environment() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.upper().startswith("FORESCALE_")}
    for name in saved:
        del os.environ[name]
    yield
    os.environ.update(saved)


def test_the_valid_base_document_is_valid() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "forescale.yaml"
        path.write_text(yaml.safe_dump(BASE))
        (Path(tmp) / "demand.csv").write_text("timestamp,value\n")
        assert main(["check-config", "--config", str(path)]) == 0


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(document=documents(), suffix=st.sampled_from([".yaml", ".json", ".yml"]))
def test_check_config_never_crashes(document: bytes, suffix: str) -> None:
    err = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"forescale{suffix}"
        path.write_bytes(document)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["check-config", "--config", str(path)])
    assert code in (0, 1), (document[:500], err.getvalue()[-2000:])
    if code == 1:  # one line, saying what is wrong
        assert err.getvalue().startswith("forescale: error: "), err.getvalue()
        assert err.getvalue().count("\n") == 1, err.getvalue()
