"""The fast path for CmdStan's JSON input writes exactly what stanio would have."""

from __future__ import annotations

import json

import numpy as np
import pytest
from stanio import json as stan_json

from forecaster.model import _fast_stan_json


def test_numeric_lists_go_through_numpy_and_the_json_is_byte_identical(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fast_stan_json()
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
    _fast_stan_json()  # installing again keeps the one wrapper
    assert stan_json.process_value is fast
