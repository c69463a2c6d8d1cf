"""Demand history from Amazon CloudWatch ``GetMetricData``.

One metric (namespace, name, dimensions, statistic) or a metric-math expression is read
over ``[start, end]`` at one period, in requests small enough for CloudWatch's limit of
100,800 datapoints per call, following ``NextToken`` (also when a result says
``PartialData``). Only complete periods are returned: the period containing ``end`` is
still filling up and is left for the next fetch.

CloudWatch keeps coarser data as it ages (1-minute data for 15 days, 5-minute for 63 days,
1-hour for 455 days). Without a configured ``period`` the finest period still kept for the
oldest timestamp of the range *or of the lookback window* is used, so the incremental
fetches of a service keep the period of its backfill (5 minutes with the default 56-day
lookback); a configured period that is finer than what is kept is an error rather than a
silently empty answer.

Every botocore error is translated in :func:`map_cloudwatch_errors` into a
:class:`~forescale.errors.CollectorError` that says what to fix.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pandas as pd
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from forescale.collectors.series import regularize
from forescale.collectors.timegrid import ceil_to, floor_to, fmt, require_utc, split_range, utcnow
from forescale.errors import CollectorError

log = logging.getLogger(__name__)

MAX_DATAPOINTS = 100_800  # CloudWatch's limit per GetMetricData call
RESULT_ID = "demand"  # the query whose values are returned
METRIC_ID = "m1"  # the metric's id inside an expression

# Age of the oldest timestamp -> the finest period CloudWatch still keeps for it.
_RETENTION: tuple[tuple[dt.timedelta, int], ...] = (
    (dt.timedelta(hours=3), 1),  # high-resolution metrics only
    (dt.timedelta(days=15), 60),
    (dt.timedelta(days=63), 300),
    (dt.timedelta(days=455), 3600),
)
MAX_AGE = _RETENTION[-1][0]

_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
    "MissingAuthenticationToken",
}
_INVALID = {
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "MissingParameter",
    "ValidationError",
    "ValidationException",
}
# Parameter names in CloudWatch's messages -> the settings field to fix.
_FIELD_HINTS = (
    (re.compile(r"\bStat\b"), "statistic"),
    (re.compile(r"\bPeriod\b"), "period"),
    (re.compile(r"\bexpression\b", re.IGNORECASE), "expression"),
    (re.compile(r"\bNamespace\b"), "namespace"),
    (re.compile(r"\bMetricName\b"), "metric_name"),
    (re.compile(r"\bDimensions?\b"), "dimensions"),
    (re.compile(r"\b(StartTime|EndTime)\b"), "the time range (start/end)"),
)


def finest_period(age: dt.timedelta) -> int | None:
    """The finest period (seconds) CloudWatch keeps for data ``age`` old; None if none."""
    for max_age, period in _RETENTION:
        if age < max_age:
            return period
    return None


def auto_period(age: dt.timedelta) -> dt.timedelta:
    """The period used when none is configured: the finest standard-resolution period
    CloudWatch keeps for the oldest requested timestamp (60 s, 300 s or 3600 s)."""
    finest = finest_period(age)
    if finest is None:
        raise CollectorError(
            f"CloudWatch keeps no data older than {MAX_AGE.days} days; "
            "request a more recent range (a shorter lookback)"
        )
    return dt.timedelta(seconds=max(60, finest))


def kept_for(period: dt.timedelta) -> dt.timedelta:
    """How far back CloudWatch serves data at ``period`` (a multiple of the finest kept)."""
    seconds = int(period.total_seconds())
    for max_age, finest in reversed(_RETENTION):
        if seconds % finest == 0:
            return max_age
    return _RETENTION[0][0]  # pragma: no cover - every whole period is a multiple of 1 s


def _hint_fields(message: str) -> str:
    fields = [name for pattern, name in _FIELD_HINTS if pattern.search(message)]
    if not fields:
        return "check namespace, metric_name, dimensions, statistic, period and expression"
    return "fix the setting " + " / ".join(dict.fromkeys(fields))


@contextmanager
def map_cloudwatch_errors(
    *, endpoint: str, region: str, profile: str | None = None, max_attempts: int | None = None
) -> Iterator[None]:
    """Translate botocore exceptions into :class:`CollectorError` messages that say what
    to fix. ``CollectorError`` raised inside passes through unchanged."""
    where = f"CloudWatch at {endpoint} ({region})"
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        text = str(error.get("Message", "")).strip() or code
        attempts = int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1
        if code in _THROTTLED:
            limit = f" (max_attempts {max_attempts})" if max_attempts else ""
            raise CollectorError(
                f"{where} throttled GetMetricData ({code}) after {attempts} attempt(s)"
                f"{limit}: {text}; collect less often, set retry_mode: adaptive or a higher "
                "max_attempts, or ask AWS for a higher GetMetricData quota"
            ) from exc
        if code in _DENIED:
            raise CollectorError(
                f"{where} denied access ({code}): {text}; allow the IAM action "
                "cloudwatch:GetMetricData for the identity forescale runs as"
            ) from exc
        if code in _BAD_CREDENTIALS:
            raise CollectorError(
                f"{where} rejected the AWS credentials ({code}): {text}; "
                "refresh them or check profile / AWS_* environment variables"
            ) from exc
        if code in _INVALID:
            raise CollectorError(
                f"{where} rejected the query ({code}): {text}; {_hint_fields(text)}"
            ) from exc
        raise CollectorError(f"{where}: GetMetricData failed ({code}): {text}") from exc
    except ParamValidationError as exc:
        text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise CollectorError(f"invalid CloudWatch query: {text}; {_hint_fields(text)}") from exc
    except ConnectionError as exc:  # EndpointConnectionError, ConnectTimeoutError, proxies
        raise CollectorError(
            f"cannot reach {where}: {exc}; check region / endpoint_url, the network path "
            "(proxy, VPC endpoint) and connect_timeout"
        ) from exc
    except ReadTimeoutError as exc:
        raise CollectorError(
            f"{where} did not answer in time: {exc}; raise read_timeout or fetch a shorter range"
        ) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise CollectorError(
            f"no usable AWS credentials for {where}: {exc}; set profile, the AWS_* environment "
            "variables, or run with an instance / task role"
        ) from exc
    except ProfileNotFound as exc:
        raise CollectorError(
            f"AWS profile {profile!r} not found: {exc}; fix profile or ~/.aws/config"
        ) from exc
    except NoRegionError as exc:
        raise CollectorError(f"no AWS region: {exc}; set region") from exc
    except BotoCoreError as exc:
        raise CollectorError(f"{where}: GetMetricData failed: {exc}") from exc


@dataclass(frozen=True, kw_only=True, slots=True)
class CloudWatchMetricSource:
    """Reads one CloudWatch metric or metric-math expression with an injected boto3 client.

    ``period`` None picks it from the age of ``start`` or ``lookback``, the older (see
    :func:`auto_period`);
    ``per_second`` divides values by the period in seconds (a ``Sum`` of requests per
    period becomes requests/s, independent of the period). ``lookback`` is how far back
    ``fetch(None, ...)`` reads. ``max_datapoints`` caps the datapoints one request may
    return over all its queries (lower it in tests to see splitting).
    """

    client: Any  # a boto3 CloudWatch client
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: Mapping[str, str] = field(default_factory=dict)
    statistic: str = "Sum"
    expression: str | None = None
    period: dt.timedelta | None = None
    per_second: bool = False
    lookback: dt.timedelta = dt.timedelta(days=56)
    max_datapoints: int = MAX_DATAPOINTS
    max_attempts: int | None = None  # for messages only; the client's config retries
    profile: str | None = None  # for messages only
    clock: Callable[[], dt.datetime] = utcnow
    kind: str = "cloudwatch"

    def __post_init__(self) -> None:
        if self.expression is None and (self.namespace is None or self.metric_name is None):
            raise ValueError("CloudWatchMetricSource needs namespace + metric_name or expression")
        if self.max_datapoints < 1:
            raise ValueError("max_datapoints must be positive")

    @classmethod
    def from_settings(
        cls, settings: Any, *, clock: Callable[[], dt.datetime] = utcnow
    ) -> CloudWatchMetricSource:
        """Build the client the default way: a boto3 session (``profile``, ``region``)
        with botocore's ``retry_mode`` / ``max_attempts`` and the connect/read timeouts."""
        endpoint = settings.endpoint_url or f"https://monitoring.{settings.region}.amazonaws.com"
        with map_cloudwatch_errors(
            endpoint=endpoint, region=settings.region, profile=settings.profile
        ):
            session = boto3.session.Session(
                profile_name=settings.profile, region_name=settings.region
            )
            client = session.client(
                "cloudwatch",
                endpoint_url=settings.endpoint_url,
                config=Config(
                    # total_max_attempts counts the first attempt, as max_attempts does in
                    # the settings; botocore's own max_attempts counts only the retries
                    retries={
                        "mode": settings.retry_mode,
                        "total_max_attempts": settings.max_attempts,
                    },
                    connect_timeout=settings.connect_timeout,
                    read_timeout=settings.read_timeout,
                    user_agent_extra="forescale",
                ),
            )
        return cls(
            client=client,
            namespace=settings.namespace,
            metric_name=settings.metric_name,
            dimensions=dict(settings.dimensions),
            statistic=settings.statistic,
            expression=settings.expression,
            period=settings.period,
            per_second=settings.per_second,
            lookback=settings.lookback,
            max_attempts=settings.max_attempts,
            profile=settings.profile,
            clock=clock,
        )

    def close(self) -> None:
        """Close the client's connections (the source owns a client from_settings built)."""
        self.client.close()

    # -- description -------------------------------------------------------------------
    def describe(self) -> str:
        return describe(self)

    # -- queries -----------------------------------------------------------------------
    def queries(self, period: dt.timedelta) -> list[dict[str, Any]]:
        """The ``MetricDataQueries`` for one request; the returned one has id ``demand``."""
        seconds = int(period.total_seconds())
        out: list[dict[str, Any]] = []
        if self.namespace is not None and self.metric_name is not None:
            out.append(
                {
                    "Id": METRIC_ID if self.expression is not None else RESULT_ID,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": self.namespace,
                            "MetricName": self.metric_name,
                            "Dimensions": [
                                {"Name": k, "Value": v} for k, v in sorted(self.dimensions.items())
                            ],
                        },
                        "Period": seconds,
                        "Stat": self.statistic,
                    },
                    "ReturnData": self.expression is None,
                }
            )
        if self.expression is not None:
            out.append(
                {
                    "Id": RESULT_ID,
                    "Expression": self.expression,
                    "Period": seconds,
                    "ReturnData": True,
                }
            )
        return out

    def _plan(
        self, start: dt.datetime | None, end: dt.datetime | None
    ) -> tuple[dt.datetime, dt.datetime, dt.timedelta]:
        """The aligned ``[first, stop)`` range and the period."""
        now = require_utc(self.clock(), "clock()")
        end = now if end is None else require_utc(end, "end")
        if start is None:
            oldest = kept_for(self.period) if self.period is not None else MAX_AGE
            start = max(end - self.lookback, now - oldest + dt.timedelta(minutes=1))
        else:
            start = require_utc(start, "start")
        age = now - start
        if self.period is None:
            # From the lookback window too, not only this range: an incremental fetch of the
            # last hour must use the same period as the backfill it extends.
            period = auto_period(max(age, min(self.lookback, MAX_AGE - dt.timedelta(minutes=1))))
        else:
            period = self.period
            finest = finest_period(age)
            seconds = int(period.total_seconds())
            if finest is None or seconds % finest:
                kept = f"{finest} s" if finest else "nothing"
                raise CollectorError(
                    f"period {seconds} s is finer than CloudWatch keeps for data "
                    f"{age.days} days old ({kept}); set period to a multiple of "
                    f"{finest or 3600} s, leave it unset, or fetch a more recent range"
                )
        return ceil_to(start, period), floor_to(end, period), period

    # -- fetching ----------------------------------------------------------------------
    def fetch(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> pd.DataFrame:
        """Complete periods in ``[start, end]`` as a regular series (``ds`` UTC, ``y``)."""
        first, stop, period = self._plan(start, end)
        if stop <= first:  # less than one complete period
            return regularize(pd.DataFrame({"ds": [], "y": []}), period)
        queries = self.queries(period)
        per_request = max(1, self.max_datapoints // len(queries))
        windows = split_range(first, stop, period * per_request)
        endpoint = str(self.client.meta.endpoint_url)
        stamps: list[dt.datetime] = []
        values: list[float] = []
        with map_cloudwatch_errors(
            endpoint=endpoint,
            region=str(self.client.meta.region_name),
            profile=self.profile,
            max_attempts=self.max_attempts,
        ):
            paginator = self.client.get_paginator("get_metric_data")
            for window_start, window_end in windows:
                log.debug(
                    "cloudwatch %s: %s..%s period %s",
                    self.describe(),
                    fmt(window_start),
                    fmt(window_end),
                    period,
                )
                self._read_window(paginator, queries, window_start, window_end, stamps, values)
        if not stamps:
            what = (
                f"expression {self.expression!r}"
                if self.expression is not None
                else _metric_text(self)
            )
            raise CollectorError(
                f"CloudWatch returned no datapoints for {what} ({self.statistic}, period "
                f"{int(period.total_seconds())} s) in range {fmt(first)} to {fmt(stop)}: "
                "check the name and dimensions (case-sensitive), the region and the statistic"
            )
        frame = pd.DataFrame({"ds": pd.to_datetime(stamps, utc=True), "y": values})
        if self.per_second:
            frame["y"] = frame["y"] / period.total_seconds()
        return regularize(frame, period)

    def _read_window(
        self,
        paginator: Any,
        queries: list[dict[str, Any]],
        start: dt.datetime,
        end: dt.datetime,
        stamps: list[dt.datetime],
        values: list[float],
    ) -> None:
        status = "Complete"
        pages = paginator.paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
        )
        for page in pages:
            if "MetricDataResults" not in page:  # botocore makes {} of a body it cannot parse
                raise CollectorError(
                    f"CloudWatch gave a malformed answer for {self.describe()} (no "
                    "MetricDataResults): is endpoint_url CloudWatch, or a proxy in the way?"
                )
            notes = "; ".join(
                f"{m.get('Code', '')}: {m.get('Value', '')}" for m in page.get("Messages", [])
            )
            for result in page.get("MetricDataResults", []):
                if result.get("Id") != RESULT_ID:
                    continue
                status = str(result.get("StatusCode", "Complete"))
                detail = "; ".join(
                    f"{m.get('Code', '')}: {m.get('Value', '')}" for m in result.get("Messages", [])
                )
                detail = "; ".join(part for part in (detail, notes) if part) or "no detail"
                if status == "Forbidden":
                    raise CollectorError(
                        f"CloudWatch refused {self.describe()} (Forbidden): {detail}; allow "
                        "cloudwatch:GetMetricData on this metric (cross-account access?)"
                    )
                if status == "InternalError":
                    raise CollectorError(
                        f"CloudWatch failed to compute {self.describe()} (InternalError): "
                        f"{detail}; retry later"
                    )
                page_stamps = list(result.get("Timestamps", []))
                page_values = list(result.get("Values", []))
                if len(page_stamps) != len(page_values):
                    raise CollectorError(
                        f"CloudWatch gave a malformed answer for {self.describe()}: "
                        f"{len(page_stamps)} timestamps and {len(page_values)} values; is "
                        "endpoint_url CloudWatch?"
                    )
                stamps.extend(page_stamps)
                values.extend(float(v) for v in page_values)
        if status == "PartialData":
            # The paginator follows NextToken until there is none; PartialData on the last
            # page means CloudWatch has more but gave no way to get it: do not store a hole.
            raise CollectorError(
                f"CloudWatch returned partial data for {self.describe()} between {fmt(start)} "
                f"and {fmt(end)} without a NextToken; retry, or set a coarser period"
            )


def _metric_text(source: Any) -> str:
    dims = ",".join(f"{k}={v}" for k, v in sorted(source.dimensions.items()))
    return f"{source.namespace}/{source.metric_name}" + (f"{{{dims}}}" if dims else "")


def describe(source: Any) -> str:
    """A short description from a source or its settings (same field names); no client."""
    if source.expression is not None:
        return f"cloudwatch expression {source.expression!r}"
    return f"cloudwatch {_metric_text(source)} {source.statistic}"
