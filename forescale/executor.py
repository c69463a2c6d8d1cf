"""Run one picklable function over many items, serially, in worker processes or on dask.

Fitting a forecast per service is embarrassingly parallel: :class:`FitExecutor` maps a
top-level function over the items and yields an :class:`Outcome` for each as it finishes,
so the caller can show progress. One item's failure is its outcome's ``error``; it never
stops the others and ``map_unordered`` does not raise it.

Which backend
-------------
``"serial"``
    In-process, one item after the other. Tests, one service, debugging (a breakpoint in
    the fitted function works). ``kind="process"`` also runs serially when there is one
    item or one worker: no pool is started for that.
``"process"`` (default)
    A ``ProcessPoolExecutor`` on this machine, one worker per usable CPU unless
    ``workers`` says otherwise. Workers start with the "forkserver" method ("spawn" where
    there is none), never "fork": the daemon has threads (APScheduler, uvicorn) and a
    forked child can inherit a lock one of them held. Each worker sets
    ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` to 1 (N workers
    times N BLAS threads would oversubscribe the CPUs) and imports the ``preload``
    modules once, e.g. ``("prophet",)``, so the first item on each worker does not pay it.
    Each worker also re-runs the top-level imports of the parent's ``__main__`` script
    (CPython 3.11's forkserver does not preload it): keep that script light, as the
    ``forescale`` console script is. The thread variables reach only the libraries loaded
    after that, so numpy must not be among them.
``"dask"``
    A ``distributed.Client`` to ``scheduler_address`` (``"tcp://host:8786"``), for more
    services than one machine fits in time. The workers need forescale installed and
    should set the thread variables themselves (``dask worker --nthreads 1``,
    ``--preload prophet``); ``preload`` is not applied there. Needs the optional
    ``dask[distributed]`` package (``pip install 'forescale[dask]'``).

Costs measured here: 2-core x86_64 VM shared with other jobs (load average 2.5-3.6),
Python 3.11.7, distributed 2026.8.0, best of 3 runs:

* Pool start, from ``FitExecutor()`` to the first outcome of 2 trivial items on 2 workers:
  0.23 s for the first pool in a process (the forkserver starts too), 0.06-0.13 s after
  that; 2.7 s with ``preload=("prophet",)`` (importing prophet takes 1.2-1.4 s in a fresh
  interpreter here). A worker whose ``__main__`` script imports pandas starts 0.7 s later;
  ``import forescale.cli`` takes 0.08 s. ``close()`` of an idle pool: under 0.12 s.
* Per item (wall time / items, 2,000 items, 2 workers): 0.30 ms for a function returning
  its argument (a bare ``ProcessPoolExecutor`` with every item queued at once: 0.20 ms;
  serial: 2.2 us); 1.7 ms with a 4,032-row DataFrame (2 weeks at 5 min) in and a 576-row
  one out.
* dask, ``LocalCluster`` of 2 worker processes with 1 thread each on the same machine:
  cluster start 1.2-1.9 s; connecting plus a first 2-item map 0.04-0.07 s; per item 4.7 ms
  for the trivial function, 7-10 ms with the DataFrames.

Limits
------
* Everything is bounded by ``timeout_seconds`` (per ``map_unordered`` call): items not done
  by then come back as :class:`~forescale.errors.ForecastError` outcomes and the worker
  processes running them are stopped. Dask cancels them, but a task already running on
  a dask worker runs to its end. The serial backend cannot interrupt a running item; it
  checks the time between items. ``close()`` (from any thread) is bounded the same way.
* A worker process that dies (``os._exit``, a segfault, the out-of-memory killer) breaks
  CPython's pool: every item running or queued on it at that moment gets an error outcome
  (at most ``workers`` items, since only that many are handed out at a time), a new pool
  is started and the remaining items go on. Which item killed the worker is not known.
  On dask the scheduler retries such items on other workers
  (``distributed.scheduler.allowed-failures``, default 3) before it gives up on them: a
  ``ForecastError`` outcome too.
* An exception that cannot be pickled, or pickles but cannot be unpickled (a lock in an
  attribute; an ``__init__`` with keyword-only arguments), comes back as a
  ``ForecastError`` holding its ``repr``: sent as is it would break the pool. The project's
  own errors pickle intact (``ForescaleError.__reduce__``).
* Results must pickle; ``fn`` must be importable by name (a module-level function, not a
  lambda or closure) except in serial runs.
* ``map_unordered`` hands new items to the workers before it yields each outcome; a loop
  body much slower than one item leaves workers idle. One map at a time per executor.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from multiprocessing.process import BaseProcess
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, get_args

from forescale.errors import ConfigError, ForecastError

if TYPE_CHECKING:
    import distributed
    from distributed.deploy.cluster import Cluster

T = TypeVar("T")
R = TypeVar("R")

ExecutorKind = Literal["serial", "process", "dask"]

DASK_MISSING = "executor 'dask' needs the dask[distributed] package: pip install 'forescale[dask]'"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CLOSE_GRACE_SECONDS = 2.0  # for idle workers to exit cleanly (they take milliseconds)
DASK_CONNECT_SECONDS = 30.0
DASK_FETCH_SECONDS = 30.0  # to fetch one finished result from a dask worker


@dataclass(frozen=True, kw_only=True, slots=True)
class ExecutorSettings:
    """How to run the fits.

    ``workers``: processes for ``"process"`` (default: the CPUs this process may use).
    ``scheduler_address``: the dask scheduler, ``"tcp://host:8786"``; only ``"dask"`` uses it.
    ``preload``: modules each worker process imports when it starts, e.g. ``("prophet",)``.
    ``timeout_seconds``: limit for one ``map_unordered`` call, seconds.
    """

    kind: ExecutorKind = "process"
    workers: int | None = None
    scheduler_address: str | None = None
    preload: tuple[str, ...] = ()
    timeout_seconds: float = 3600.0

    def __post_init__(self) -> None:
        kinds = get_args(ExecutorKind)
        if self.kind not in kinds:
            raise ConfigError(f"executor kind {self.kind!r} is not one of {', '.join(kinds)}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"executor workers must be at least 1, got {self.workers}")
        if not (self.timeout_seconds > 0 and math.isfinite(self.timeout_seconds)):
            raise ConfigError(
                f"executor timeout_seconds must be a positive number, got {self.timeout_seconds}"
            )
        if self.scheduler_address is not None and "://" not in self.scheduler_address:
            raise ConfigError(
                "executor scheduler_address must look like 'tcp://host:8786', "
                f"got {self.scheduler_address!r}"
            )
        if self.kind == "process":
            for name in self.preload:
                # The top-level package only: find_spec("a.b") would import "a" here.
                if importlib.util.find_spec(name.partition(".")[0]) is None:
                    raise ConfigError(f"executor preload module {name!r} is not installed")


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome(Generic[R]):
    """One item's result: ``value`` when ``fn`` returned, ``error`` when it raised.

    ``index`` is the item's position in the input.
    """

    index: int
    value: R | None
    error: BaseException | None

    @property
    def ok(self) -> bool:
        return self.error is None


def default_workers() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    if sys.version_info >= (3, 13):
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):  # Linux; not macOS or Windows
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


class FitExecutor:
    """Maps a function over items with the backend ``settings.kind`` names.

    A context manager; the process pool (or the dask client it made) lives until
    :meth:`close`. ``client``, for ``"dask"`` only, is used instead of
    ``scheduler_address``: a connected ``distributed.Client`` (an application that shares
    one; the caller closes it) or a cluster object such as ``distributed.LocalCluster``
    (tests, benchmarks; the executor connects to it and closes that connection).
    """

    def __init__(
        self,
        settings: ExecutorSettings | None = None,
        *,
        client: distributed.Client | Cluster | None = None,
    ) -> None:
        self.settings = settings or ExecutorSettings()
        self.workers = self.settings.workers or default_workers()
        self._pool: ProcessPoolExecutor | None = None
        # Any: distributed's Client and Future methods are mostly unannotated.
        self._client: Any = None
        self._cluster: Any = None  # a Client(...) argument: a cluster object or an address
        self._owns_client = False
        self._closed = False
        self._running: dict[Future[Any], Any] = {}  # the current map's items in the pool
        if self.settings.kind == "dask":
            if client is None and self.settings.scheduler_address is None:
                raise ConfigError(
                    "executor 'dask' needs scheduler_address, e.g. 'tcp://10.0.0.5:8786'"
                )
            dd = _import_distributed()  # fail now, with the install hint, not at the first map
            if isinstance(client, dd.Client):
                self._client = client
            else:
                self._cluster = client if client is not None else self.settings.scheduler_address
        elif client is not None:
            raise ValueError(f"client= is only used by executor 'dask', not {self.settings.kind!r}")

    def __enter__(self) -> FitExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Cancel work not yet done and stop the workers (or the dask client made here).

        Idempotent. Workers still running an item are terminated at once; idle ones get
        ``CLOSE_GRACE_SECONDS`` to exit cleanly. Waits at most ~4 s for them in all.
        """
        if self._closed:
            return
        self._closed = True
        busy = any(not future.done() for future in self._running)
        self._discard_pool(grace=0.0 if busy else CLOSE_GRACE_SECONDS)
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            client.close(timeout=DASK_CONNECT_SECONDS)

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[Outcome[R]]:
        """Run ``fn(item)`` for every item; yield each item's :class:`Outcome` as it finishes.

        Every index in ``range(len(items))`` comes back exactly once, in completion order.
        Leaving the loop early (or :meth:`close`) cancels the items not yet done.
        """
        if self._closed:
            raise RuntimeError("this FitExecutor is closed")
        todo = list(items)
        deadline = time.monotonic() + self.settings.timeout_seconds
        kind = self.settings.kind
        if kind == "serial" or (kind == "process" and (len(todo) <= 1 or self.workers == 1)):
            return self._serial(fn, todo, deadline)
        if kind == "process":
            return self._pooled(fn, todo, deadline)
        return self._dask(fn, todo, deadline, self._dask_client())

    # -- serial -----------------------------------------------------------------------

    def _serial(self, fn: Callable[[T], R], todo: list[T], deadline: float) -> Iterator[Outcome[R]]:
        for index, item in enumerate(todo):
            if time.monotonic() >= deadline:
                for late in range(index, len(todo)):
                    yield Outcome(index=late, value=None, error=self._late(started=False))
                return
            try:
                value = fn(item)
            except Exception as exc:  # one item's failure; Ctrl-C and SystemExit still stop us
                yield Outcome(index=index, value=None, error=exc)
            else:
                yield Outcome(index=index, value=value, error=None)

    # -- process pool -----------------------------------------------------------------

    def _pooled(self, fn: Callable[[T], R], todo: list[T], deadline: float) -> Iterator[Outcome[R]]:
        # Hand out at most `workers` items at a time, so that a dying worker takes down
        # (with CPython's pool) only the items that were running, not the whole queue.
        window = min(self.workers, len(todo))
        waiting = deque(range(len(todo)))
        running: dict[Future[R], tuple[int, ProcessPoolExecutor]] = {}
        self._running = running  # for close(): stop busy workers at once
        deaths: dict[ProcessPoolExecutor, str] = {}  # how a broken pool's workers died
        ready: list[Outcome[R]] = []
        try:
            while True:
                while waiting and len(running) < window:
                    if self._closed:
                        ready.extend(self._cancelled(index) for index in waiting)
                        waiting.clear()
                        break
                    pool = self._ensure_pool()
                    try:
                        future = pool.submit(_call_checked, fn, todo[waiting[0]])
                    except BrokenProcessPool:  # a worker died since the last submit
                        deaths.setdefault(pool, _deaths(pool))
                        self._discard_pool(grace=0.0)
                        continue
                    running[future] = (waiting.popleft(), pool)
                # Yield only now: the workers already have their next items meanwhile.
                yield from ready
                ready.clear()
                if not running:
                    return
                done = _wait_some(running, deadline, stop=lambda: self._closed)
                if self._closed:  # close() stopped the pool under us; see _wait_some
                    ready.extend(self._cancelled(index) for index, _ in sorted(running.values()))
                    running.clear()
                    continue
                if not done:  # out of time: stop the workers, report the rest
                    self._discard_pool(grace=0.0)
                    late = sorted(index for index, _ in running.values())
                    running.clear()
                    for index in late:
                        yield Outcome(index=index, value=None, error=self._late(started=True))
                    while waiting:
                        yield Outcome(
                            index=waiting.popleft(), value=None, error=self._late(started=False)
                        )
                    return
                for future in done:
                    index, pool = running.pop(future)
                    if isinstance(future.exception(), BrokenProcessPool):
                        deaths.setdefault(pool, _deaths(pool))
                    ready.append(self._pool_outcome(index, future, deaths.get(pool, "")))
        finally:
            # The caller left the loop early (nobody will collect these), or close() ran
            # on another thread, perhaps while a pool was being made here.
            if running or self._closed:
                for future in running:
                    future.cancel()
                self._discard_pool(grace=0.0)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=_mp_context(),
                initializer=_init_worker,
                initargs=(self.settings.preload,),
            )
        return self._pool

    def _discard_pool(self, *, grace: float) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            _stop_pool(pool, grace=grace)

    def _pool_outcome(self, index: int, future: Future[R], deaths: str) -> Outcome[R]:
        if future.cancelled() or self._closed:
            return self._cancelled(index)
        exc = future.exception()
        if exc is None:
            return Outcome(index=index, value=future.result(), error=None)
        if isinstance(exc, BrokenProcessPool):
            how = deaths or "killed, out of memory or crashed"
            error = ForecastError(
                f"a worker process died while this item was running or queued ({how})"
            )
            error.__cause__ = exc
            return Outcome(index=index, value=None, error=error)
        return Outcome(index=index, value=None, error=exc)

    # -- dask -------------------------------------------------------------------------

    def _dask_client(self) -> Any:
        if self._client is None:
            dd = _import_distributed()
            try:
                # set_as_default=False: do not become the process-wide dask scheduler.
                self._client = dd.Client(
                    self._cluster, set_as_default=False, timeout=DASK_CONNECT_SECONDS
                )
            except (OSError, TimeoutError) as exc:
                where = getattr(self._cluster, "scheduler_address", self._cluster)
                raise ForecastError(
                    f"cannot connect to the dask scheduler at {where}: {exc}"
                ) from exc
            self._owns_client = True
        return self._client

    def _dask(
        self,
        fn: Callable[[T], R],
        todo: list[T],
        deadline: float,
        client: Any,
    ) -> Iterator[Outcome[R]]:
        finished: queue.Queue[Any] = queue.Queue()
        # pure=False: two services with equal inputs are still two fits, never one cached key.
        futures: list[Any] = client.map(partial(_call_checked, fn), todo, pure=False)
        index_of = {future.key: index for index, future in enumerate(futures)}
        unfinished = dict(index_of)
        for future in futures:
            future.add_done_callback(finished.put)  # called on a dask thread
        try:
            while unfinished:
                if self._closed:  # close() ran (maybe on another thread)
                    for index in sorted(unfinished.values()):
                        yield self._cancelled(index)
                    unfinished.clear()
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:  # out of time
                    client.cancel([f for f in futures if f.key in unfinished])
                    for index in sorted(unfinished.values()):
                        yield Outcome(index=index, value=None, error=self._late(started=True))
                    unfinished.clear()
                    return
                try:  # in slices of a second, to notice close()
                    future = finished.get(timeout=min(1.0, remaining))
                except queue.Empty:
                    continue
                index = unfinished.pop(future.key)
                yield self._dask_outcome(index, future)
        finally:
            if unfinished and not self._closed:
                client.cancel([f for f in futures if f.key in unfinished])

    def _dask_outcome(self, index: int, future: Any) -> Outcome[R]:
        if future.cancelled():
            return self._cancelled(index)
        try:
            if future.status == "error":
                error: BaseException = future.exception(timeout=DASK_FETCH_SECONDS)
                if isinstance(error, _import_distributed().KilledWorker):
                    killed = ForecastError(f"dask workers died while running this item: {error}")
                    killed.__cause__ = error
                    error = killed
                return Outcome(index=index, value=None, error=error)
            value = future.result(timeout=DASK_FETCH_SECONDS)
        except Exception as exc:  # the item ran; fetching its result from the worker failed
            error = ForecastError(f"could not fetch the result from the dask cluster: {exc!r}")
            error.__cause__ = exc
            return Outcome(index=index, value=None, error=error)
        return Outcome(index=index, value=value, error=None)

    # -- shared -----------------------------------------------------------------------

    def _late(self, *, started: bool) -> ForecastError:
        limit = f"the executor's time limit ({self.settings.timeout_seconds:g} s)"
        return ForecastError(
            f"not finished within {limit}" if started else f"not started: {limit} ran out"
        )

    @staticmethod
    def _cancelled(index: int) -> Outcome[Any]:
        return Outcome(
            index=index, value=None, error=ForecastError("cancelled: the executor was closed")
        )


# -- helpers that run in the worker processes (module level, so they pickle by name) ----


def _init_worker(preload: Sequence[str]) -> None:
    """Process-pool initializer: one BLAS/OpenMP thread per worker, warm imports.

    A pool that preloads ``prophet`` fits forecasts: its workers also make the
    process-wide set-up fitting needs (:func:`forescale.forecaster.runtime.configure_fitting`) once,
    before any item, after the thread variables (it imports numpy).
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    if "prophet" in preload:
        from forescale.forecaster.runtime import configure_fitting

        # Only a warm-up too: fit_candidates makes (and reports) the same set-up itself.
        with contextlib.suppress(Exception):
            configure_fitting()
    for name in preload:
        # Only a warm-up: if it fails, the item's own import reports it, with a traceback.
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def _call_checked(fn: Callable[[T], R], item: T) -> R:
    """``fn(item)``, re-raising its exception only if that survives a pickle round trip.

    CPython marks the whole pool broken when a worker's exception cannot be unpickled in the
    parent, and dask would replace it with a bare ``Exception``: raise a ForecastError with
    the original's ``repr`` instead, its traceback as text in ``__cause__``.
    """
    try:
        return fn(item)
    except BaseException as exc:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            message = f"{exc!r} (raised in a worker; it cannot be pickled)"
            original = "".join(traceback.format_exception(exc))
        else:
            raise
    # Raised outside the `except` block so that the exception is not its __context__:
    # dask pickles the chain too.
    error = ForecastError(message)
    error.__cause__ = WorkerTraceback(original)
    raise error


class WorkerTraceback(Exception):
    """The traceback, as text, of an exception that could not be sent from a worker."""

    def __str__(self) -> str:
        return f"\n{self.args[0]}" if self.args else ""


# -- helpers for the parent ---------------------------------------------------------------


def _mp_context() -> multiprocessing.context.BaseContext:
    # Never "fork": the parent has threads (APScheduler, uvicorn, the pool's own manager).
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _wait_some(
    futures: Iterable[Future[Any]], deadline: float, *, stop: Callable[[], bool]
) -> set[Future[Any]]:
    """The done futures, once there is one; empty when ``deadline`` passed or ``stop()``.

    Waits in slices of a second: ``close()`` may run on another thread, and a future that
    ``shutdown(cancel_futures=True)`` cancelled never wakes ``wait()`` (its state stays
    CANCELLED, not CANCELLED_AND_NOTIFIED), so ``done()`` is checked directly.
    """
    while True:
        done = {future for future in futures if future.done()}
        remaining = deadline - time.monotonic()
        if done or remaining <= 0 or stop():
            return done
        wait(futures, timeout=min(remaining, 1.0), return_when=FIRST_COMPLETED)


def _workers_of(pool: ProcessPoolExecutor | None) -> list[BaseProcess]:
    # `_processes` is private, but CPython offers no way to stop a busy worker before 3.14
    # (`terminate_workers()`), and a bounded close needs one.
    processes = getattr(pool, "_processes", None) or {}
    return list(processes.values())


def _stop_pool(pool: ProcessPoolExecutor, *, grace: float) -> None:
    """Cancel queued work and stop the workers: politely for ``grace`` seconds, then not."""
    workers = _workers_of(pool)
    pool.shutdown(wait=False, cancel_futures=True)
    end = time.monotonic() + grace
    for worker in workers:
        worker.join(max(0.0, end - time.monotonic()))
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(1.0)
        if worker.is_alive():
            worker.kill()
            worker.join(1.0)


def _deaths(pool: ProcessPoolExecutor | None) -> str:
    """How the pool's workers died, e.g. "pid 41 killed by SIGKILL (out of memory?)"."""
    notes = []
    for worker in _workers_of(pool):
        code = worker.exitcode
        # SIGTERM: the pool stops the surviving workers itself once one has died.
        if code is None or code == 0 or code == -signal.SIGTERM:
            continue
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            notes.append(f"pid {worker.pid} killed by {name}{hint}")
        else:
            notes.append(f"pid {worker.pid} exited with code {code}")
    return ", ".join(notes)


def _import_distributed() -> ModuleType:
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(DASK_MISSING) from exc
    return distributed
