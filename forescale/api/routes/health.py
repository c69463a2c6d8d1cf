"""Probes and metrics: ``/healthz`` (alive), ``/readyz`` (ready to serve: the store
answers and the process is not stopping) and ``/metrics`` (the injected Prometheus
registry). The probes stay open with ``protect_reads``; ``/metrics`` does not."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from forescale.api.deps import RegistryDep, StatusDep, StoreDep
from forescale.api.errors import error_response
from forescale.api.schemas import HealthOut, ReadyOut
from forescale.api.security import require_read

router = APIRouter()


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> HealthOut:
    # On the event loop: alive means the loop answers, however busy the worker threads
    # are (page renders waiting on the plot lock filled them, and a probe timed out).
    return HealthOut(status="ok")


@router.get("/readyz", response_model=ReadyOut)
def readyz(store: StoreDep, status: StatusDep) -> Any:
    # A standby is ready: it serves reads from the shared store and queues refreshes
    # like the leader (and a Deployment's rolling update waits for every pod to be
    # ready). Only a stopping process or an unreachable store is not.
    now = status()
    if now.role == "stopping":
        return error_response(503, "Stopping", "this process is shutting down")
    try:
        with store.engine.connect() as conn:
            # a real table: SQLite answers SELECT 1 without opening the database file
            conn.execute(sa.text("SELECT 1 FROM collect_runs LIMIT 1"))
    except (SQLAlchemyError, OSError) as exc:
        return error_response(503, "StoreError", f"store unreachable: {type(exc).__name__}")
    return ReadyOut(status="ready", role=now.role, bind_retries=now.bind_retries)


@router.get(
    "/metrics",
    dependencies=[Depends(require_read)],
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(registry: RegistryDep) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
