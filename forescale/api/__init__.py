"""The REST API: read the stored state, ask for a refresh, expose metrics.

Build it with :func:`create_app`; settings, store, API config, metrics registry, the
refresher and the clock are injected (reached by routes through ``Depends`` on
``app.state``, so tests can override them). Nothing is fitted on a request: forecasts are
read from the store, and the schedule is recomputed by the pure capacity planner.

Errors have one shape, ``{"error": {"type": ..., "message": ...}}``; one set of handlers
maps the forescale exception tree to HTTP statuses (:data:`forescale.api.errors.STATUS`).
Datetimes are ISO 8601 UTC with ``Z``; floats are finite (NaN/inf are sent as ``null``).

Rules every request meets, in order:

1. Host (DNS rebinding): a request whose ``Host`` names a host not in
   ``ApiConfig.allowed_hosts`` gets 400 ``InvalidHost`` (:class:`~.security.HostCheck`).
   IP literals are always accepted (a rebinding page can only send a DNS name it
   controls; kubelet probes and Prometheus use the pod IP), and so is a request without
   ``Host`` (HTTP/1.0: browsers always send one).
2. Body: a declared body above ``max_body_bytes`` gets 413 (:class:`~.middleware.BodyLimit`).
3. Token: mutations always need the bearer token; with ``protect_reads`` every read does
   too, ``/docs``, ``/redoc`` and ``/openapi.json`` included. ``/healthz`` and ``/readyz``
   stay open for probes.

Runs: ``/v1/runs/{id}`` serves change records (integer ids, ``kind: "change"``, as
before) and refresh runs (ids ``refresh-<n>``, ``kind: "refresh"``), the ones
``POST /v1/services/{name}/refresh`` answers with.

Modules: ``app`` (create_app, exception handlers), ``contract`` (what the serving process
passes in: ApiConfig, ServerStatus, RefreshQueue), ``schemas`` (response models),
``errors`` (the error shape, status table), ``security`` (token, Host check),
``middleware`` (body limit), ``deps`` (Depends providers), ``cache`` (rendered responses),
``convert`` (store values to API values), ``routes/`` (one router per resource: health,
docs, services, refresh, runs).
"""

from __future__ import annotations

from forescale.api.app import _jsonable, create_app
from forescale.api.contract import (
    DEFAULT_ALLOWED_HOSTS,
    ApiConfig,
    RefreshQueue,
    RefreshRefused,
    ServerStatus,
    Submitted,
    refresh_id,
)

__all__ = [
    "DEFAULT_ALLOWED_HOSTS",
    "ApiConfig",
    "RefreshQueue",
    "RefreshRefused",
    "ServerStatus",
    "Submitted",
    "_jsonable",  # imported by tests/forescale/test_api.py
    "create_app",
    "refresh_id",
]
