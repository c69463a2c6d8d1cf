"""The API's routes, one ``APIRouter`` per resource; :func:`~forescale.api.app.create_app`
includes them in the order of :data:`ROUTERS` (which is also the order of the paths in
the OpenAPI schema)."""

from __future__ import annotations

from fastapi import APIRouter

from forescale.api.routes import docs, health, refresh, runs, services

ROUTERS: tuple[APIRouter, ...] = (
    docs.router,
    health.router,
    services.router,
    refresh.router,
    runs.router,
)
