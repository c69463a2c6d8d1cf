"""Wiring for the long-running service: the API app with its metrics, served by uvicorn.

``forescale serve`` runs the API alone; ``forescale daemon`` runs it in-process next to
the scheduler (the API never fits on the request path: forecasts come from the store).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from config.settings import Settings
from forescale.errors import ForescaleError
from forescale.metrics import Metrics
from forescale.store import Store

log = logging.getLogger("forescale.service")
# Refreshing the store-derived gauges re-reads every service's forecast and variable file
# (≈3.4 s of CPU for 100 services, measured): every 30 s that stalled the API under load.
# The inputs only change with the daemon's jobs (every 5 min by default).
METRICS_REFRESH_SECONDS = 300.0


@dataclass
class Refresher:
    """``POST /v1/services/{name}/refresh``: run ``refit(name)`` in one background worker
    and answer with a run id at once (the API never waits for a fit)."""

    refit: Callable[[str], object]
    pool: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="forescale-refresh"
        )
    )

    def __call__(self, name: str) -> str:
        run_id = uuid.uuid4().hex
        self.pool.submit(self._run, run_id, name)
        return run_id

    def _run(self, run_id: str, name: str) -> None:
        try:
            self.refit(name)
            log.info("refresh %s of %s done", run_id, name, extra={"run_id": run_id})
        except ForescaleError as exc:
            log.error("refresh %s of %s failed: %s", run_id, name, exc, extra={"run_id": run_id})
        except Exception:  # noqa: BLE001 - a bug in a background refit must not kill the API
            log.exception("refresh %s of %s crashed", run_id, name, extra={"run_id": run_id})

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def build_app(
    settings: Settings, store: Store, registry: CollectorRegistry, refresh: Callable[[str], str]
) -> Any:
    from forescale.api import ApiConfig, create_app

    token = settings.api.token.get_secret_value() if settings.api.token is not None else None
    return create_app(
        settings=settings,
        store=store,
        config=ApiConfig(token=token, protect_reads=settings.api.protect_reads),
        registry=registry,
        refresh=refresh,
    )


def keep_metrics_fresh(
    metrics: Metrics, settings: Settings, store: Store, stop: threading.Event
) -> threading.Thread:
    """Refresh store-derived gauges (data age, units, forecast demand) every 5 min."""

    def loop() -> None:
        while True:
            try:
                metrics.refresh_from_store(settings, store, dt.datetime.now(dt.UTC))
            except Exception:  # noqa: BLE001 - metrics are best effort
                log.exception("metrics refresh failed")
            if stop.wait(METRICS_REFRESH_SECONDS):
                return

    thread = threading.Thread(target=loop, name="forescale-metrics", daemon=True)
    thread.start()
    return thread


class ApiServer:
    """uvicorn in a background thread; ``stop()`` asks it to exit and waits (bounded)."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, name="forescale-api", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
