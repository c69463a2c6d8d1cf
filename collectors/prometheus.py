"""Demand history from a Prometheus-compatible HTTP API (``/api/v1/query_range``).

The query is evaluated at ``start, start + step, ...`` with ``start`` aligned to a multiple
of the step since the Unix epoch, so overlapping fetches land on the same timestamps.
Prometheus refuses more than 11,000 points per series in one request; longer ranges are
split into consecutive requests that share no timestamp. Missing evaluations (no data,
staleness) are missing timestamps in Prometheus and become NaN gaps here; non-finite
values (``NaN``, ``±Inf`` from a division by zero) are gaps too.

Every httpx error and every error answer is translated in :func:`map_http_errors` /
:meth:`PrometheusMetricSource.fetch` into a :class:`~forescale.errors.CollectorError` that
carries the server's message. Credentials never appear in messages or logs.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import math
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pandas as pd

from forescale.collectors.series import regularize
from forescale.collectors.timegrid import (
    ceil_to,
    floor_to,
    fmt,
    require_utc,
    seconds_of,
    split_range,
    utcnow,
)
from forescale.config.redact import redact_url, redact_urls, url_secrets
from forescale.errors import CollectorError

log = logging.getLogger(__name__)

_Floats = npt.NDArray[np.float64]

MAX_POINTS_PER_REQUEST = 11_000  # Prometheus' limit per series and query_range call
DEFAULT_MAX_POINTS = 10_080  # the auto step keeps a fetch near this many points (7 d of 1 min)
NICE_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def auto_step(span: dt.timedelta, max_points: int = DEFAULT_MAX_POINTS) -> dt.timedelta:
    """The finest "nice" step, at least 60 s, that covers ``span`` in ``max_points`` points:
    60 s up to 7 days with the default budget, 300 s for 3 weeks, 600 s for 8 weeks."""
    need = max(span.total_seconds(), 0.0) / max_points
    for seconds in NICE_STEPS:
        if seconds >= need:
            return dt.timedelta(seconds=seconds)
    return dt.timedelta(days=math.ceil(need / 86400))


def request_ranges(
    first: dt.datetime, last: dt.datetime, step: dt.timedelta, max_points: int
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Split the evaluation points ``first, first + step, ..., <= last`` into inclusive
    ``(start, end)`` ranges of at most ``max_points`` points each, sharing no point."""
    if max_points < 1:
        raise ValueError("max_points must be positive")
    return [(a, b - step) for a, b in split_range(first, last + step, step * max_points)]


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def map_http_errors(*, where: str, secrets: tuple[str, ...] = ()) -> Iterator[None]:
    """Translate httpx exceptions into :class:`CollectorError`; ``CollectorError`` raised
    inside passes through unchanged. Secrets are removed from the messages."""
    try:
        yield
    except httpx.TimeoutException as exc:
        kind = type(exc).__name__
        raise CollectorError(
            f"no answer from {where} in time ({kind}: {_redact(str(exc), secrets) or 'timed out'});"
            " raise timeout, use a coarser step or fetch a shorter range"
        ) from exc
    except httpx.ConnectError as exc:
        text = _redact(str(exc), secrets)
        if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
            raise CollectorError(
                f"TLS handshake with {where} failed: {text}; set ca_file to the CA that "
                "signed the server's certificate (or insecure_skip_verify for a test server)"
            ) from exc
        raise CollectorError(
            f"cannot connect to {where}: {text}; check url and that the server is running"
        ) from exc
    except httpx.HTTPError as exc:
        raise CollectorError(
            f"request to {where} failed: {type(exc).__name__}: {_redact(str(exc), secrets)}"
        ) from exc
    except httpx.InvalidURL as exc:
        raise CollectorError(
            f"invalid Prometheus url for {where}: {redact_urls(_redact(str(exc), secrets))}"
        ) from exc


def _ssl_verify(settings: Any) -> bool | ssl.SSLContext:
    if settings.insecure_skip_verify:
        return False
    if settings.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(settings.ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise CollectorError(
            f"ca_file {settings.ca_file}: cannot load certificates: {exc}"
        ) from exc


_LAST_UNIX_SECOND = 7_258_118_400.0  # 2200-01-01T00:00Z
DEADLINE_READS = 10  # one answer may take this many times the read timeout to arrive


def _labels(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{inner}}}"


@dataclass(frozen=True, kw_only=True, slots=True)
class PrometheusMetricSource:
    """Reads a PromQL query with an injected ``httpx.Client`` (auth, TLS, headers, timeout
    live on the client; :meth:`from_settings` builds one from settings).

    ``step`` None picks :func:`auto_step` with ``max_points`` for the fetched range or the
    ``lookback``, the longer (so incremental fetches keep the backfill's step: 10 minutes
    for the default 56 days);
    ``sum_series`` sums several result series per timestamp instead of refusing them;
    ``query_timeout`` is sent as Prometheus' ``timeout`` parameter; ``lookback`` is how far
    back ``fetch(None, ...)`` reads. ``secrets`` are redacted from every message.
    """

    client: httpx.Client
    url: str  # base URL without the /api/v1/... path
    query: str
    step: dt.timedelta | None = None
    max_points: int = DEFAULT_MAX_POINTS
    sum_series: bool = False
    query_timeout: dt.timedelta | None = None
    lookback: dt.timedelta = dt.timedelta(days=56)
    max_points_per_request: int = MAX_POINTS_PER_REQUEST
    secrets: tuple[str, ...] = field(default=(), repr=False)
    clock: Callable[[], dt.datetime] = utcnow
    kind: str = "prometheus"
    # The longest one answer may take to arrive, however steadily it trickles in (the
    # client's timeout bounds each read alone); None: no bound beyond the client's.
    deadline: dt.timedelta | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        transport: httpx.BaseTransport | None = None,
    ) -> PrometheusMetricSource:
        """Build the ``httpx.Client`` the default way: bearer token or basic auth,
        ``X-Scope-OrgID``, extra headers, CA bundle or no verification, one timeout."""
        headers = {"User-Agent": "forescale", **settings.headers}
        secrets: list[str] = []
        auth: httpx.Auth | None = None
        if settings.bearer_token is not None:
            token = settings.bearer_token.get_secret_value()
            headers["Authorization"] = f"Bearer {token}"
            secrets.append(token)
        if settings.basic_auth is not None:
            password = settings.basic_auth.password.get_secret_value()
            auth = httpx.BasicAuth(settings.basic_auth.username, password)
            encoded = f"{settings.basic_auth.username}:{password}".encode()
            secrets += [password, base64.b64encode(encoded).decode()]  # as sent, if echoed
        if settings.org_id is not None:
            headers["X-Scope-OrgID"] = settings.org_id
        client = httpx.Client(
            headers=headers,
            auth=auth,
            verify=_ssl_verify(settings),
            timeout=httpx.Timeout(settings.timeout),
            transport=transport,
        )
        return cls(
            client=client,
            url=str(settings.url).rstrip("/"),
            query=settings.query,
            step=settings.step,
            max_points=settings.max_points,
            sum_series=settings.sum_series,
            query_timeout=settings.query_timeout,
            lookback=settings.lookback,
            secrets=tuple(secrets),
            clock=clock,
            deadline=dt.timedelta(seconds=settings.timeout * DEADLINE_READS),
        )

    def close(self) -> None:
        """Close the client's connections (the source owns a client from_settings built)."""
        self.client.close()

    def describe(self) -> str:
        return describe(self)

    @property
    def _where(self) -> str:
        return f"Prometheus at {redact_url(self.url)}"

    @property
    def _secrets(self) -> tuple[str, ...]:
        """The configured secrets and those inside the URL (e.g. a query-string token)."""
        return (*self.secrets, *url_secrets(self.url))

    def fetch(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> pd.DataFrame:
        """The query over ``[start, end]`` as a regular series (``ds`` UTC, ``y``)."""
        now = require_utc(self.clock(), "clock()")
        end = now if end is None else require_utc(end, "end")
        start = end - self.lookback if start is None else require_utc(start, "start")
        # The lookback counts too: an incremental fetch keeps the step of the backfill.
        step = self.step or auto_step(max(end - start, self.lookback), self.max_points)
        first, last = ceil_to(start, step), floor_to(end, step)
        if last < first:
            return regularize(pd.DataFrame({"ds": [], "y": []}), step)
        ranges = request_ranges(first, last, step, self.max_points_per_request)
        found: dict[tuple[tuple[str, str], ...], list[tuple[_Floats, _Floats]]] = {}
        with map_http_errors(where=self._where, secrets=self._secrets):
            for range_start, range_end in ranges:
                for item in self._query_range(range_start, range_end, step):
                    labels, stamps, values = self._parse_series(item)
                    found.setdefault(labels, []).append((stamps, values))
        if not found:
            raise CollectorError(
                f"{self._where}: query {_short(self.query)!r} returned no data between "
                f"{fmt(first)} and {fmt(last)}: check the metric name and labels, and that "
                "the series existed in that range"
            )
        if len(found) > 1 and not self.sum_series:
            names = [_labels(dict(key)) for key in sorted(found)]
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise CollectorError(
                f"{self._where}: query {_short(self.query)!r} returned {len(names)} series "
                f"({shown}); aggregate them in PromQL (e.g. sum(...)) or set sum_series: true"
            )
        stamps = np.concatenate([s for parts in found.values() for s, _ in parts])
        values = np.concatenate([v for parts in found.values() for _, v in parts])
        if not np.all((stamps >= 0) & (stamps < _LAST_UNIX_SECOND)):
            worst = stamps[~((stamps >= 0) & (stamps < _LAST_UNIX_SECOND))][0]
            raise CollectorError(
                f"{self._where}: a malformed answer: timestamp {worst!r} is not Unix seconds "
                "(milliseconds?); is url a Prometheus query API?"
            )
        frame = pd.DataFrame(
            {
                "ds": pd.to_datetime(np.round(stamps * 1000).astype(np.int64), unit="ms", utc=True),
                "y": values,
            }
        )
        summed = frame.groupby("ds")["y"].sum(min_count=1)  # one series: a no-op
        return regularize(summed.reset_index(), step)

    def _parse_series(self, item: Any) -> tuple[tuple[tuple[str, str], ...], _Floats, _Floats]:
        """One matrix entry as (sorted labels, Unix seconds, values with NaN for non-finite)."""
        try:
            metric = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
            pairs = item.get("values") or []
            stamps = np.array([float(p[0]) for p in pairs], dtype=float)
            values = np.array([float(p[1]) for p in pairs], dtype=float)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            raise CollectorError(
                f"{self._where}: malformed query_range answer ({type(exc).__name__}: {exc}); "
                "is url a Prometheus-compatible API?"
            ) from exc
        values[~np.isfinite(values)] = np.nan
        return tuple(sorted(metric.items())), stamps, values

    def _query_range(
        self, start: dt.datetime, end: dt.datetime, step: dt.timedelta
    ) -> list[dict[str, Any]]:
        form = {
            "query": self.query,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": str(seconds_of(step)),
        }
        if self.query_timeout is not None:
            form["timeout"] = f"{self.query_timeout.total_seconds():g}"
        log.debug("prometheus %s: %s..%s step %s", self._where, fmt(start), fmt(end), step)
        response = self._post(f"{self.url}/api/v1/query_range", form)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if (
            response.status_code == 200
            and isinstance(payload, dict)
            and payload.get("status") == "success"
        ):
            warnings = payload.get("warnings") or []
            for warning in [warnings] if isinstance(warnings, str) else warnings:
                log.warning("%s: %s", self._where, _redact(str(warning), self._secrets))
            data = payload.get("data") or {}
            if not isinstance(data, dict):
                raise CollectorError(
                    f"{self._where}: a malformed answer (data is a {type(data).__name__}, not "
                    "an object): is url a Prometheus query API?"
                )
            if data.get("resultType") != "matrix":
                raise CollectorError(
                    f"{self._where}: query {_short(self.query)!r} gave a "
                    f"{data.get('resultType')!r} result, expected a range vector (matrix)"
                )
            result = data.get("result") or []
            return list(result)
        raise self._answer_error(response, payload)

    def _post(self, url: str, form: dict[str, str]) -> httpx.Response:
        """POST ``form``; the whole answer, headers included, must arrive within
        :attr:`deadline`. A watchdog closes the client at the deadline: a read blocked on
        a server that trickles its headers fails at its next byte or read timeout."""
        if self.deadline is None:
            return self.client.post(url, data=form)
        limit = self.deadline.total_seconds()
        expired = threading.Event()

        def abort() -> None:
            expired.set()
            self.client.close()

        watchdog = threading.Timer(limit, abort)
        watchdog.daemon = True
        watchdog.start()
        try:
            with self.client.stream("POST", url, data=form) as streamed:
                chunks = []
                for chunk in streamed.iter_bytes():
                    chunks.append(chunk)
                    if expired.is_set():
                        break
                if expired.is_set():
                    raise self._too_slow(limit)
                decoded = {  # iter_bytes has already undone the content encoding
                    k: v
                    for k, v in streamed.headers.items()
                    if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
                }
                return httpx.Response(
                    streamed.status_code,
                    headers=decoded,
                    content=b"".join(chunks),
                    request=streamed.request,
                )
        except (httpx.HTTPError, RuntimeError, OSError) as exc:
            if expired.is_set():  # the watchdog closed the client under the request
                raise self._too_slow(limit) from exc
            raise
        finally:
            watchdog.cancel()

    def _too_slow(self, limit: float) -> CollectorError:
        return CollectorError(
            f"{self._where}: no complete answer after {limit:g} s (it was still arriving); "
            "a slow proxy or server? Raise timeout (the whole answer may take 10 times it), "
            "use a coarser step or fetch a shorter range"
        )

    def _answer_error(self, response: httpx.Response, payload: Any) -> CollectorError:
        code = response.status_code
        if isinstance(payload, dict) and payload.get("error"):
            error_type = str(payload.get("errorType") or "error")
            text = str(payload["error"])
        else:
            error_type = "no JSON"
            text = response.text or response.reason_phrase
        text = _short(redact_urls(_redact(text, self._secrets)), 300)
        query = _short(self.query)
        where = self._where
        if code in (401, 403):
            return CollectorError(
                f"{where} refused the request (HTTP {code}): {text}; check bearer_token / "
                "basic_auth and, on a multi-tenant server, org_id"
            )
        if error_type == "bad_data" or code == 400:
            return CollectorError(
                f"{where} rejected query {query!r} (bad_data): {text}; fix query or step"
            )
        if error_type == "execution" or code == 422:
            return CollectorError(
                f"{where} could not evaluate query {query!r} ({error_type}): {text}; "
                "simplify the query or fetch a shorter range"
            )
        if error_type == "timeout":
            return CollectorError(
                f"{where}: query {query!r} timed out on the server (timeout): {text}; simplify "
                "the query, use a coarser step, or raise query_timeout / --query.timeout"
            )
        if 300 <= code < 400:
            target = redact_url(response.headers.get("location", "?"))
            return CollectorError(
                f"{where} redirected (HTTP {code}) to {target}; set url to the final address"
            )
        if code == 404:
            return CollectorError(
                f"{where}: no query API at {redact_url(self.url + '/api/v1/query_range')} "
                "(HTTP 404); check url "
                "(a path prefix such as /prometheus?)"
            )
        return CollectorError(f"{where} answered HTTP {code} ({error_type}): {text}")


def describe(source: Any) -> str:
    """A short description from a source or its settings (same field names); no client."""
    return f"prometheus {redact_url(source.url)} {_short(source.query, 80)}"
