"""Every error of the tree survives pickling (worker processes and Dask raise them)."""

from __future__ import annotations

import inspect
import pickle

import pytest

import forescale.errors as errors
from forescale.errors import ForescaleError

KWARGS: dict[str, object] = {
    "source": "f.yaml",
    "line": 3,
    "have_seconds": 3600.0,
    "need_seconds": 86400.0,
    "row": 7,
    "cmd": ["terraform", "apply"],
    "returncode": 1,
    "stderr": "boom",
    "stdout_tail": "tail",
    "timeout_seconds": 5.0,
    "signals_sent": ["SIGINT"],
    "lock_id": "a1b2",
    "lock_path": "terraform.tfstate",
    "operation": "OperationTypeApply",
    "who": "ci@runner",
    "version": "1.11.4",
    "created": "2026-11-22 06:00:00 UTC",
}


def _classes() -> list[type[ForescaleError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, ForescaleError)
    ]


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_type_message_and_fields_survive_pickling(cls: type[ForescaleError]) -> None:
    params = inspect.signature(cls.__init__).parameters
    wanted = {
        name: KWARGS[name]
        for name, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name in KWARGS
    }
    missing = [
        name
        for name, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        and p.default is inspect.Parameter.empty
        and name not in KWARGS
    ]
    assert not missing, f"add example values for {missing}"
    error = cls("something went wrong", **wanted)  # type: ignore[call-arg]
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is cls
    assert str(back) == str(error)
    assert back.__dict__ == error.__dict__
