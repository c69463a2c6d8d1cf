"""The ``Depends`` providers: what a route needs, read from ``app.state`` (set once by
:func:`~forescale.api.app.create_app`), so tests can override any of them with
``app.dependency_overrides``. The ``*Dep`` aliases are what route signatures use."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from prometheus_client import CollectorRegistry

from forescale.api.cache import ResponseCache
from forescale.api.contract import ApiConfig, RefreshQueue, ServerStatus
from forescale.config.settings import Settings
from forescale.store import Store


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_config(request: Request) -> ApiConfig:
    config: ApiConfig = request.app.state.api_config
    return config


async def get_registry(request: Request) -> CollectorRegistry:
    registry: CollectorRegistry = request.app.state.registry
    return registry


async def get_refresh(request: Request) -> RefreshQueue | None:
    refresh: RefreshQueue | None = request.app.state.refresh
    return refresh


async def get_clock(request: Request) -> Callable[[], dt.datetime]:
    clock: Callable[[], dt.datetime] = request.app.state.clock
    return clock


async def get_status(request: Request) -> Callable[[], ServerStatus]:
    status: Callable[[], ServerStatus] = request.app.state.status
    return status


async def get_forecast_cache(request: Request) -> ResponseCache:
    cache: ResponseCache = request.app.state.forecast_cache
    return cache


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
RegistryDep = Annotated[CollectorRegistry, Depends(get_registry)]
RefreshDep = Annotated[RefreshQueue | None, Depends(get_refresh)]
ClockDep = Annotated[Callable[[], dt.datetime], Depends(get_clock)]
StatusDep = Annotated[Callable[[], ServerStatus], Depends(get_status)]
ForecastCacheDep = Annotated[ResponseCache, Depends(get_forecast_cache)]
# A service name in a path: /v1/services/{name}/...
ServiceName = Annotated[str, Path(min_length=1, max_length=64)]
