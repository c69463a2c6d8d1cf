"""The metric-source plug-in point: a Protocol and an explicit registry.

A new source is one module that implements :class:`MetricSource` plus one line in
:data:`REGISTRY` mapping its settings ``type`` to a factory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

import pandas as pd

from forescale.config.redact import redact_urls
from forescale.errors import ConfigError


class MetricSource(Protocol):
    """Reads demand history for one service.

    ``fetch`` returns a regular series (``ds`` tz-aware UTC, ``y`` float, NaN for gaps)
    covering at most ``[start, end]``. Vendor errors surface as ``CollectorError``.
    """

    @property
    def kind(self) -> str:
        """The settings ``type`` this source implements, e.g. ``csv``."""
        ...

    def fetch(self, start: dt.datetime | None, end: dt.datetime | None) -> pd.DataFrame: ...

    def describe(self) -> str:
        """A short human description for reports, e.g. ``csv demand.csv (value)``."""
        ...


SourceFactory = Callable[[Any], MetricSource]


def _csv_factory(settings: Any) -> MetricSource:
    from forescale.collectors.csv_file import CsvFileSource

    return CsvFileSource.from_settings(settings)


def _cloudwatch_factory(settings: Any) -> MetricSource:
    from forescale.collectors.cloudwatch import CloudWatchMetricSource

    return CloudWatchMetricSource.from_settings(settings)


def _prometheus_factory(settings: Any) -> MetricSource:
    from forescale.collectors.prometheus import PrometheusMetricSource

    return PrometheusMetricSource.from_settings(settings)


REGISTRY: dict[str, SourceFactory] = {
    "csv": _csv_factory,
    "cloudwatch": _cloudwatch_factory,
    "prometheus": _prometheus_factory,
}


def describe_source(settings: Any) -> str:
    """A source's report description from its settings, without building a client (a
    CloudWatch session or an HTTP client is not needed to say what is read)."""
    import importlib

    kind = str(getattr(settings, "type", None))
    if kind not in DESCRIBERS:
        return kind
    # a describer may quote a URL (an endpoint, a server): never with its credentials
    return redact_urls(str(importlib.import_module(DESCRIBERS[kind]).describe(settings)))


# Modules whose describe(settings) names a source of each type.
DESCRIBERS = {
    "csv": "forescale.collectors.csv_file",
    "cloudwatch": "forescale.collectors.cloudwatch",
    "prometheus": "forescale.collectors.prometheus",
}


def build_source(settings: Any) -> MetricSource:
    """Build the source for a service's ``source`` settings (dispatch on ``type``)."""
    kind = getattr(settings, "type", None)
    try:
        factory = REGISTRY[str(kind)]
    except KeyError:
        raise ConfigError(
            f"unknown metric source type {kind!r} (known: {', '.join(sorted(REGISTRY))})"
        ) from None
    return factory(settings)
