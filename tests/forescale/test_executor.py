"""FitExecutor: serial, process pool and a real dask LocalCluster.

The functions the workers run are at module level: worker processes (forkserver, spawn,
dask) import this module as ``tests.forescale.test_executor`` to find them.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from forescale.errors import ConfigError, ForecastError, InsufficientHistory
from forescale.executor import (
    DASK_MISSING,
    ExecutorSettings,
    FitExecutor,
    Outcome,
    _workers_of,
)

# -- run in the workers ----------------------------------------------------------------


def square(x: int) -> int:
    return x * x


def square_but_three_fails(x: int) -> int:
    if x == 3:
        raise ValueError("three is not allowed")
    return x * x


def square_but_three_kills_its_worker(x: int) -> int:
    if x == 3:
        os._exit(3)
    time.sleep(0.05)  # let the others be in flight when 3 dies
    return x * x


class LockedError(Exception):
    """Pickling fails: a lock in an attribute."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class KeywordOnlyError(Exception):
    """Pickles, but unpickling calls KeywordOnlyError("short") and fails (the pattern the
    project's own errors avoid with ForescaleError.__reduce__)."""

    def __init__(self, message: str, *, detail: float) -> None:
        super().__init__(message)
        self.detail = detail


def raise_unpicklable(kind: str) -> str:
    if kind == "keyword-only":
        raise KeywordOnlyError("short", detail=3600.0)
    if kind == "lock":
        raise LockedError("holds a lock")
    return kind


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def worker_facts(_: object) -> tuple[int, str | None, bool]:
    """(pid, OMP_NUM_THREADS, whether the preload module was imported before the item ran)."""
    return os.getpid(), os.environ.get("OMP_NUM_THREADS"), "wave" in sys.modules


# -- helpers ---------------------------------------------------------------------------


def by_index(outcomes: Iterator[Outcome[Any]]) -> dict[int, Outcome[Any]]:
    """Outcomes keyed by index, checking that no index comes twice."""
    seen: dict[int, Outcome[Any]] = {}
    for outcome in outcomes:
        assert outcome.index not in seen, f"index {outcome.index} returned twice"
        seen[outcome.index] = outcome
    return seen


PROCESS_2 = ExecutorSettings(kind="process", workers=2)
LOCAL_KINDS = [ExecutorSettings(kind="serial"), PROCESS_2]


# -- settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "threads"}, "executor kind 'threads' is not one of serial, process, dask"),
        ({"workers": 0}, "executor workers must be at least 1, got 0"),
        ({"timeout_seconds": 0.0}, "timeout_seconds must be a positive number"),
        ({"timeout_seconds": float("inf")}, "timeout_seconds must be a positive number"),
        ({"kind": "dask", "scheduler_address": "10.0.0.5:8786"}, "must look like 'tcp://"),
        ({"preload": ("no_such_module_xyz",)}, "preload module 'no_such_module_xyz' is not"),
    ],
)
def test_settings_refuse_what_cannot_work(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        ExecutorSettings(**kwargs)


def test_dask_needs_an_address_or_a_client() -> None:
    with pytest.raises(ConfigError, match="executor 'dask' needs scheduler_address"):
        FitExecutor(ExecutorSettings(kind="dask"))


def test_missing_dask_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises
    # never connected to: the import fails first (no port is bound; ephemeral elsewhere)
    settings = ExecutorSettings(kind="dask", scheduler_address="tcp://127.0.0.1:1")
    with pytest.raises(ConfigError) as info:
        FitExecutor(settings)
    assert str(info.value) == DASK_MISSING
    assert str(info.value) == (
        "executor 'dask' needs the dask[distributed] package: pip install 'forescale[dask]'"
    )


def test_default_workers_is_the_usable_cpus() -> None:
    executor = FitExecutor()
    assert executor.settings.kind == "process"
    assert executor.workers == len(os.sched_getaffinity(0))


# -- serial and process ----------------------------------------------------------------


@pytest.mark.parametrize("settings", LOCAL_KINDS, ids=lambda s: s.kind)
def test_same_results_as_a_plain_map(settings: ExecutorSettings) -> None:
    items = list(range(13))
    with FitExecutor(settings) as executor:
        outcomes = by_index(executor.map_unordered(square, items))
    assert sorted(outcomes) == list(range(13))
    assert all(o.ok for o in outcomes.values())
    assert [outcomes[i].value for i in range(13)] == list(map(square, items))


@pytest.mark.parametrize("settings", LOCAL_KINDS, ids=lambda s: s.kind)
def test_a_failing_item_is_an_outcome_and_the_others_complete(
    settings: ExecutorSettings,
) -> None:
    with FitExecutor(settings) as executor:
        outcomes = by_index(executor.map_unordered(square_but_three_fails, range(6)))
    assert sorted(outcomes) == list(range(6))
    error = outcomes[3].error
    assert isinstance(error, ValueError)
    assert str(error) == "three is not allowed"
    assert outcomes[3].value is None
    assert {i: o.value for i, o in outcomes.items() if i != 3} == {0: 0, 1: 1, 2: 4, 4: 16, 5: 25}


def test_outcomes_come_in_completion_order() -> None:
    seconds = [1.2, 0.0, 0.6]
    with FitExecutor(ExecutorSettings(kind="process", workers=3)) as executor:
        order = [o.index for o in executor.map_unordered(sleep_for, seconds)]
    assert order == [1, 2, 0]


def test_serial_keeps_input_order() -> None:
    with FitExecutor(ExecutorSettings(kind="serial")) as executor:
        order = [o.index for o in executor.map_unordered(sleep_for, [0.02, 0.0, 0.01])]
    assert order == [0, 1, 2]


@pytest.mark.parametrize(
    ("workers", "items"), [(2, ["only one"]), (1, ["a", "b", "c"])], ids=["one-item", "one-worker"]
)
def test_process_runs_in_process_when_a_pool_cannot_help(workers: int, items: list[str]) -> None:
    with FitExecutor(ExecutorSettings(kind="process", workers=workers)) as executor:
        outcomes = list(executor.map_unordered(worker_facts, items))
        assert executor._pool is None
    assert {o.value[0] for o in outcomes if o.value} == {os.getpid()}


def test_workers_use_one_blas_thread_and_preload_modules() -> None:
    assert "wave" not in sys.modules  # the preload below must be what imports it
    settings = ExecutorSettings(kind="process", workers=2, preload=("wave",))
    with FitExecutor(settings) as executor:
        outcomes = list(executor.map_unordered(worker_facts, range(4)))
    facts = [o.value for o in outcomes if o.value is not None]
    assert len(facts) == 4
    assert os.getpid() not in {pid for pid, _, _ in facts}
    assert {(omp, preloaded) for _, omp, preloaded in facts} == {("1", True)}


@pytest.mark.parametrize("settings", LOCAL_KINDS, ids=lambda s: s.kind)
def test_exceptions_that_do_not_pickle_come_back_as_forecast_errors(
    settings: ExecutorSettings,
) -> None:
    items = ["fine", "keyword-only", "lock", "also fine"]
    with FitExecutor(settings) as executor:
        outcomes = by_index(executor.map_unordered(raise_unpicklable, items))
    assert outcomes[0].value == "fine"
    assert outcomes[3].value == "also fine"
    if settings.kind == "serial":  # nothing is pickled: the original exceptions
        assert isinstance(outcomes[1].error, KeywordOnlyError)
        assert isinstance(outcomes[2].error, LockedError)
        return
    # Sent as is, the first would break CPython's pool (it unpickles as
    # KeywordOnlyError("short") -> TypeError) and fail every item.
    assert isinstance(outcomes[1].error, ForecastError)
    assert str(outcomes[1].error) == (
        "KeywordOnlyError('short') (raised in a worker; it cannot be pickled)"
    )
    assert isinstance(outcomes[2].error, ForecastError)
    assert str(outcomes[2].error).startswith("LockedError('holds a lock')")
    # The original traceback travels as text (the pool's remote traceback includes it).
    assert 'raise LockedError("holds a lock")' in str(outcomes[2].error.__cause__)


def raise_insufficient(_: object) -> None:
    raise InsufficientHistory("3.0 h of history", have_seconds=10800.0, need_seconds=86400.0)


def test_the_projects_own_errors_cross_the_process_boundary_intact() -> None:
    with FitExecutor(ExecutorSettings(kind="process", workers=2)) as executor:
        outcomes = by_index(executor.map_unordered(raise_insufficient, [1, 2]))
    error = outcomes[0].error
    assert isinstance(error, InsufficientHistory) and str(error) == "3.0 h of history"
    assert (error.have_seconds, error.need_seconds) == (10800.0, 86400.0)


def test_a_killed_worker_fails_its_items_only_and_the_pool_recovers() -> None:
    started = time.monotonic()
    with FitExecutor(PROCESS_2) as executor:
        outcomes = by_index(executor.map_unordered(square_but_three_kills_its_worker, range(10)))
        again = by_index(executor.map_unordered(square, range(4)))  # a fresh pool
    assert time.monotonic() - started < 45  # not waited for: generous for a busy host
    assert sorted(outcomes) == list(range(10))
    failed = {i for i, o in outcomes.items() if not o.ok}
    # Two items are handed out at a time: 3 and at most one other that was in flight.
    assert 3 in failed
    assert len(failed) <= 2
    error = outcomes[3].error
    assert isinstance(error, ForecastError)
    assert "a worker process died while this item was running or queued" in str(error)
    # which death is named depends on what the pool reaps first (3's own exit code, or a
    # sibling's 255 once the pool broke): a busy host decides
    assert re.search(r"pid \d+ exited with code (3|255)", str(error)), str(error)
    assert all(outcomes[i].value == i * i for i in set(range(10)) - failed)
    assert {i: o.value for i, o in again.items()} == {0: 0, 1: 1, 2: 4, 3: 9}


def test_a_function_that_does_not_pickle_is_an_error_per_item() -> None:
    with FitExecutor(PROCESS_2) as executor:
        outcomes = by_index(executor.map_unordered(lambda x: x, range(3)))
    assert sorted(outcomes) == [0, 1, 2]
    assert all("pickle" in str(o.error).lower() for o in outcomes.values())


def test_time_limit_stops_the_workers_and_reports_the_rest() -> None:
    settings = ExecutorSettings(kind="process", workers=2, timeout_seconds=1.5)
    started = time.monotonic()
    with FitExecutor(settings) as executor:
        outcomes = by_index(executor.map_unordered(sleep_for, [0.0, 60.0, 60.0, 60.0]))
        workers = _workers_of(executor._pool)
    assert time.monotonic() - started < 45  # not waited for: generous for a busy host
    assert outcomes[0].value == 0.0
    assert [str(outcomes[i].error) for i in (1, 2, 3)] == [
        "not finished within the executor's time limit (1.5 s)",
        "not finished within the executor's time limit (1.5 s)",
        "not started: the executor's time limit (1.5 s) ran out",
    ]
    assert not any(w.is_alive() for w in workers)


def test_serial_time_limit_is_checked_between_items() -> None:
    settings = ExecutorSettings(kind="serial", timeout_seconds=0.5)
    with FitExecutor(settings) as executor:
        outcomes = by_index(executor.map_unordered(sleep_for, [0.3] * 5))
    assert outcomes[0].value == 0.3
    for i in (2, 3, 4):
        assert str(outcomes[i].error) == "not started: the executor's time limit (0.5 s) ran out"


def test_leaving_the_loop_early_stops_the_work() -> None:
    started = time.monotonic()
    with FitExecutor(PROCESS_2) as executor:
        for outcome in executor.map_unordered(sleep_for, [0.0, 60.0, 60.0, 60.0]):
            assert outcome.index == 0
            workers = _workers_of(executor._pool)
            break
        assert executor._pool is None  # the generator's cleanup stopped it
    assert time.monotonic() - started < 45  # not waited for: generous for a busy host
    assert workers
    assert not any(w.is_alive() for w in workers)


def test_close_is_idempotent_and_final() -> None:
    executor = FitExecutor(PROCESS_2)
    assert [o.value for o in executor.map_unordered(square, [4])] == [16]
    executor.close()
    executor.close()
    with pytest.raises(RuntimeError, match="closed"):
        executor.map_unordered(square, [1, 2])


def test_close_with_a_suspended_map_cancels_it() -> None:
    executor = FitExecutor(PROCESS_2)
    outcomes = executor.map_unordered(sleep_for, [0.0, 60.0, 60.0, 60.0])
    assert next(outcomes).index == 0
    started = time.monotonic()
    executor.close()
    rest = by_index(outcomes)
    assert time.monotonic() - started < 45  # not waited for: generous for a busy host
    assert sorted(rest) == [1, 2, 3]
    assert {str(o.error) for o in rest.values()} == {"cancelled: the executor was closed"}


def test_close_from_another_thread_ends_a_blocked_map() -> None:
    """As the daemon's shutdown would: the loop is waiting for 60-second items."""
    executor = FitExecutor(PROCESS_2)
    closer = threading.Timer(0.5, executor.close)
    started = time.monotonic()
    closer.start()
    try:
        outcomes = by_index(executor.map_unordered(sleep_for, [60.0, 60.0, 60.0]))
    finally:
        closer.join()
    assert time.monotonic() - started < 45  # not waited for: generous for a busy host
    assert sorted(outcomes) == [0, 1, 2]
    assert {str(o.error) for o in outcomes.values()} == {"cancelled: the executor was closed"}
    assert executor._pool is None


# -- dask ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    import dask

    # A task that kills its worker fails at once (KilledWorker) instead of being retried
    # on 3 more workers; the nanny restarts the worker.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
    ):
        yield cluster


@pytest.fixture
def dask_client(dask_cluster: Any) -> Iterator[Any]:
    import distributed

    with distributed.Client(dask_cluster, set_as_default=False) as client:
        yield client


@pytest.mark.slow
@pytest.mark.parametrize("connect_by", ["scheduler_address", "cluster object"])
def test_dask_matches_a_plain_map(dask_cluster: Any, connect_by: str) -> None:
    if connect_by == "scheduler_address":
        address = dask_cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        executor = FitExecutor(ExecutorSettings(kind="dask", scheduler_address=address))
    else:
        executor = FitExecutor(ExecutorSettings(kind="dask"), client=dask_cluster)
    with executor:
        outcomes = by_index(executor.map_unordered(square, range(13)))
        client = executor._client
    assert {i: o.value for i, o in outcomes.items()} == {i: i * i for i in range(13)}
    assert client.status == "closed"  # the executor made it, so it closed it
    assert dask_cluster.status.name == "running"


@pytest.mark.slow
def test_dask_with_a_given_client(dask_client: Any) -> None:
    items = ["fine", "keyword-only", "lock", "also fine"]
    with FitExecutor(ExecutorSettings(kind="dask"), client=dask_client) as executor:
        failing = by_index(executor.map_unordered(square_but_three_fails, range(6)))
        unpicklable = by_index(executor.map_unordered(raise_unpicklable, items))
        ordered = [o.index for o in executor.map_unordered(sleep_for, [1.2, 0.0, 0.6])]
    assert dask_client.status == "running"  # not the executor's to close
    assert sorted(failing) == list(range(6))
    assert isinstance(failing[3].error, ValueError)
    assert str(failing[3].error) == "three is not allowed"
    assert {i: o.value for i, o in failing.items() if i != 3} == {0: 0, 1: 1, 2: 4, 4: 16, 5: 25}
    assert [unpicklable[0].value, unpicklable[3].value] == ["fine", "also fine"]
    assert str(unpicklable[1].error) == (
        "KeywordOnlyError('short') (raised in a worker; it cannot be pickled)"
    )
    assert isinstance(unpicklable[2].error, ForecastError)
    assert 'raise LockedError("holds a lock")' in str(unpicklable[2].error.__cause__)
    assert sorted(ordered) == [0, 1, 2]
    assert ordered[0] == 1  # the 0-second item is first; dask may queue the others either way


@pytest.mark.slow
def test_dask_worker_killed_is_an_error_outcome(dask_client: Any) -> None:
    started = time.monotonic()
    with FitExecutor(ExecutorSettings(kind="dask"), client=dask_client) as executor:
        outcomes = by_index(executor.map_unordered(square_but_three_kills_its_worker, range(6)))
    assert time.monotonic() - started < 45  # not waited for: generous for a busy host
    assert sorted(outcomes) == list(range(6))
    failed = {i for i, o in outcomes.items() if not o.ok}
    assert 3 in failed  # with it, what the dying worker had (allowed-failures is 0 here)
    for i in failed:
        assert isinstance(outcomes[i].error, ForecastError)
        assert str(outcomes[i].error).startswith("dask workers died while running this item:")
    assert all(outcomes[i].value == i * i for i in set(range(6)) - failed)
    assert len(failed) < 6


@pytest.mark.slow
def test_dask_time_limit_cancels_the_rest(dask_client: Any) -> None:
    settings = ExecutorSettings(kind="dask", timeout_seconds=1.5)
    started = time.monotonic()
    with FitExecutor(settings, client=dask_client) as executor:
        # dask cannot stop a running task: keep these short, the cluster is shared
        outcomes = by_index(executor.map_unordered(sleep_for, [0.0, 4.0, 4.0]))
    assert time.monotonic() - started < 45  # not waited for: generous for a busy host
    assert outcomes[0].value == 0.0
    assert {str(outcomes[i].error) for i in (1, 2)} == {
        "not finished within the executor's time limit (1.5 s)"
    }
