"""Settings: one YAML file, validated by pydantic, overridable from the environment.

The file comes from ``--config`` or ``FORESCALE_CONFIG``. Any field can be overridden with
``FORESCALE_<FIELD>``; nested fields use ``__``, e.g.
``FORESCALE_SERVICES__WEB__MIN_UNITS=3`` or ``FORESCALE_DISPLAY_TIMEZONE=Europe/Berlin``.
Relative paths in the file are relative to the file's directory.

Build settings once with :func:`load_settings` and pass them in; there is no module-level
instance.

Bad input is one :class:`~forescale.errors.ConfigError` line naming the file (and line, for
YAML problems) and the field. The rules beyond each field's type, in the order they apply:

1. The file is UTF-8 YAML whose top level is a mapping of names; a key given twice in one
   mapping is refused with both lines (PyYAML would silently keep the later one). A merge
   (``<<: *anchor``) followed by an explicit key is an override, not a duplicate.
2. A ``FORESCALE_*`` environment override holding malformed JSON (for a mapping or list
   field) is refused naming the variable; its value is never echoed (it may be a secret).
3. Numbers are numbers: ``true``/``false`` are refused where a count, factor, percentage or
   threshold is expected (pydantic would read them as 1 and 0). Text that spells a number
   (``"3"``, how environment values arrive) is still accepted.
4. Every number and duration has an upper bound (see ``MAX_UNITS`` and the field
   declarations; the README's "Limits" table says why each is what it is). Durations are
   never longer than :data:`forescale.config.durations.MAX_DURATION`.
5. ``lead_time`` is shorter than the service's ``forecast.horizon``.
6. No two services manage the same variable: the same written file (``var_file`` for
   ``write: in_place``, the auto tfvars file for ``auto_tfvars``; symlinks and relative
   paths resolved) and address, or, through an ``auto_tfvars`` file, the same Terraform
   variable of the same working directory. Every number a service writes counts: each
   role of ``iac.addresses`` (min, desired, max), and one service names a number once.
7. A store kept in memory (``sqlite://``, ``:memory:``) forgets each run's record when the
   process ends; it is refused for a service whose mode writes (``apply``, ``plan``,
   ``commit``) or records (``shadow``), whose next run must know what the last one did.
8. The settings file is a regular file of at most :data:`MAX_SETTINGS_BYTES` (a named pipe
   or a device is refused, never waited on).
9. URLs are redacted (:func:`forescale.config.redact.redact_url`) wherever a message shows one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from forescale.config.durations import format_duration, parse_duration
from forescale.config.redact import redact_url
from forescale.errors import ConfigError
from forescale.file_kinds import FileKind, file_kind
from forescale.regular_files import Refusal, read_regular, words

CONFIG_ENV = "FORESCALE_CONFIG"
ENV_PREFIX = "FORESCALE_"

# Upper bounds (see the README's "Limits"): far beyond any real fleet or factor, yet small
# enough that arithmetic on them stays exact and finite.
MAX_UNITS = 1_000_000  # units of capacity (instances, tasks, replicas)
MAX_CAPACITY_PER_UNIT = 1e12  # demand one unit serves (requests/s, bytes/s, ...)
MAX_SCALE = 1e9  # csv source value multiplier

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)


def _not_bool(value: Any) -> Any:
    """Refuse ``true``/``false`` where a number is expected (pydantic reads them as 1/0)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not a boolean ({str(value).lower()})")
    return value


def _whole(value: Any) -> Any:
    """:func:`_not_bool`, and a float with a whole value (``1.0e+30``) as the exact int, so
    that the field's bound, not a parser limit, explains the refusal."""
    value = _not_bool(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Int = Annotated[int, BeforeValidator(_whole)]
Float = Annotated[float, BeforeValidator(_not_bool)]


_SECONDS = re.compile(r"\s*\d+(\.\d+)?\s*")


def _duration(value: Any) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected a duration (e.g. 15m, 2h, 1d), not a boolean ({value})")
    if isinstance(value, str) and _SECONDS.fullmatch(value):
        value = float(value)  # a number of seconds written as text, as the environment does
    if isinstance(value, str | int | float):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
    raise ValueError(f"not a duration: {value!r} (use e.g. 15m, 2h, 1d)")


def _nonneg_duration(value: Any) -> dt.timedelta:
    delta = _duration(value)
    if delta < dt.timedelta(0):
        raise ValueError("must not be negative")
    return delta


Duration = Annotated[dt.timedelta, BeforeValidator(_nonneg_duration)]


def _within(limit: dt.timedelta, *, positive: bool = False) -> AfterValidator:
    """A duration's bounds: at most ``limit``, and above zero when ``positive``."""

    def check(value: dt.timedelta | None) -> dt.timedelta | None:
        if value is None:
            return None
        if positive and value <= dt.timedelta(0):
            raise ValueError("must be positive")
        if value > limit:
            raise ValueError(
                f"{format_duration(value)} is too long: at most {format_duration(limit)}"
            )
        return value

    return AfterValidator(check)


def _check_timezone(value: Any) -> str:
    big = isinstance(value, int) and abs(value) >= 10**64  # str() refuses 4,300+ digits
    name = "(a number)" if big else str(value)
    try:
        if len(name) > 64:  # the longest IANA name has 32 characters
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: e.g. a name too long
        shown = name if len(name) <= 64 else name[:61] + "..."
        raise ValueError(
            f"unknown timezone {shown!r} (use an IANA name like Europe/Berlin)"
        ) from None
    return name


TimezoneName = Annotated[str, BeforeValidator(_check_timezone)]


def _path_text(value: Any) -> Any:
    if isinstance(value, str | Path) and "\x00" in str(value):
        raise ValueError("a path cannot contain a NUL character")
    return value


FilePath = Annotated[Path, BeforeValidator(_path_text)]

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class StepLimitSettings(BaseModel):
    """A per-change limit, given as units (``4``) or percent (``"50%"``)."""

    model_config = _STRICT

    units: Int | None = Field(default=None, ge=1, le=MAX_UNITS)
    percent: Float | None = Field(default=None, gt=0, le=1000)

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, bool):
            raise ValueError("use a number of units (4) or a percentage ('50%')")
        if isinstance(value, int):
            return {"units": value}
        if isinstance(value, float):
            if value.is_integer():
                return {"units": int(value)}
            raise ValueError("units must be a whole number; use '50%' for a percentage")
        if isinstance(value, str):
            text = value.strip()
            if re.fullmatch(r"\d+(\.\d+)?\s*%", text):
                return {"percent": float(text.rstrip("%").strip())}
            if re.fullmatch(r"\d+", text):
                return {"units": int(text)}
            raise ValueError(f"{value!r}: use a number of units (4) or a percentage ('50%')")
        return value


class ScaleInSettings(BaseModel):
    """``never``, or ``after_peak`` with a stabilisation window and a tolerance."""

    model_config = _STRICT

    policy: Literal["never", "after_peak"] = "after_peak"
    stabilization: Annotated[Duration, _within(WEEK)] = dt.timedelta(hours=1)
    tolerance: Float = Field(default=0.1, ge=0, lt=1)

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"policy": value}
        return value


class CsvSource(BaseModel):
    """Demand history from a CSV file with a timestamp and a value column."""

    model_config = _STRICT

    type: Literal["csv"] = "csv"
    path: FilePath
    timestamp_column: str = "timestamp"
    value_column: str = "value"
    timezone: TimezoneName = "UTC"  # for timestamps without an offset
    scale: Float = Field(default=1.0, gt=0, le=MAX_SCALE)  # multiply values (to requests/s)
    # the most the demand can be (e.g. 100 for a percentage): caps every forecast
    max_value: Float | None = Field(default=None, gt=0, le=MAX_CAPACITY_PER_UNIT)

    def demand_max(self) -> float | None:
        return self.max_value


# CloudWatch metrics whose unit is Percent (AWS/EC2, ECS, RDS, ElastiCache, Lambda, ...)
PERCENT_METRICS = frozenset(
    {
        "CPUUtilization",
        "MemoryUtilization",
        "DiskSpaceUtilization",
        "EngineCPUUtilization",
        "DatabaseMemoryUsagePercentage",
        "FreeStorageSpacePercentage",
        "ProvisionedConcurrencyUtilization",
        "GPUUtilization",
        "GPUMemoryUtilization",
    }
)

_CLOUDWATCH_STATISTIC = re.compile(
    r"SampleCount|Average|Sum|Minimum|Maximum|IQM|(p|tm|wm|tc|ts)(100|\d{1,2}(\.\d{1,2})?)"
)
_DEFAULT_LOOKBACK = dt.timedelta(days=56)


def _check_period(value: dt.timedelta | None, what: str) -> dt.timedelta | None:
    if value is None:
        return None
    seconds = value.total_seconds()
    if seconds < 1 or not seconds.is_integer():
        raise ValueError(f"{what} must be a whole number of seconds, at least 1s")
    return value


class CloudWatchSource(BaseModel):
    """Demand history from Amazon CloudWatch (``GetMetricData``).

    Either a metric (``namespace`` + ``metric_name`` + ``dimensions`` + ``statistic``) or a
    metric-math ``expression``, or both: then the metric is available to the expression as
    ``m1`` (e.g. ``expression: m1 / PERIOD(m1)``) and only the expression is returned.
    """

    model_config = _STRICT

    type: Literal["cloudwatch"] = "cloudwatch"
    namespace: str | None = Field(default=None, min_length=1, max_length=255)
    metric_name: str | None = Field(default=None, min_length=1, max_length=255)
    dimensions: dict[str, str] = Field(default_factory=dict, max_length=30)
    statistic: str = "Sum"  # Sum, Average, Maximum, Minimum, SampleCount, p99, tm90, ...
    expression: str | None = Field(default=None, min_length=1, max_length=2048)
    # None: 60 s / 5 min / 1 h from the data's age
    period: Annotated[Duration, _within(DAY)] | None = None
    per_second: bool = False  # divide each value by the period (a Sum becomes a rate)
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")
    profile: str | None = None  # a named profile from ~/.aws/config
    endpoint_url: str | None = None  # a VPC endpoint, or a local test server
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: Int = Field(default=5, ge=1, le=20)  # botocore attempts, the first included
    connect_timeout: Float = Field(default=10.0, gt=0, le=300)  # seconds
    read_timeout: Float = Field(default=60.0, gt=0, le=900)  # seconds
    lookback: Duration = _DEFAULT_LOOKBACK  # history read when nothing is stored yet
    # the most the demand can be; None: 100 for a metric CloudWatch reports in Percent
    # (unit: Percent, or a known utilisation metric read as Average/Maximum/Minimum/pNN)
    max_value: Float | None = Field(default=None, gt=0, le=MAX_CAPACITY_PER_UNIT)
    unit: str | None = Field(default=None, min_length=1, max_length=64)

    def demand_max(self) -> float | None:
        """``max_value``, else 100 when the metric is a percentage (see the field)."""
        if self.max_value is not None:
            return self.max_value
        if self.unit == "Percent":
            return 100.0
        summed = self.statistic in ("Sum", "SampleCount") or self.per_second
        if not summed and self.expression is None and self.metric_name in PERCENT_METRICS:
            return 100.0
        return None

    @field_validator("statistic")
    @classmethod
    def _statistic(cls, value: str) -> str:
        if not _CLOUDWATCH_STATISTIC.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a CloudWatch statistic (use Sum, Average, Maximum, Minimum, "
                "SampleCount or a percentile like p99)"
            )
        return value

    @field_validator("period")
    @classmethod
    def _period(cls, value: dt.timedelta | None) -> dt.timedelta | None:
        value = _check_period(value, "period")
        if value is not None:
            seconds = int(value.total_seconds())
            if seconds not in (1, 5, 10, 30) and seconds % 60:
                raise ValueError(
                    f"period {seconds}s: CloudWatch accepts 1, 5, 10, 30 or a multiple of 60 s"
                )
        return value

    @field_validator("dimensions")
    @classmethod
    def _dimensions(cls, value: dict[str, str]) -> dict[str, str]:
        for name, item in value.items():
            if not name or not item:
                raise ValueError(f"dimension {name!r}: names and values must not be empty")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", value):
            raise ValueError(f"{redact_url(value)!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _metric_or_expression(self) -> CloudWatchSource:
        has_metric = self.namespace is not None or self.metric_name is not None
        if has_metric and (self.namespace is None or self.metric_name is None):
            missing = "namespace" if self.namespace is None else "metric_name"
            raise ValueError(f"{missing} is required with a metric (namespace + metric_name)")
        if not has_metric and self.expression is None:
            raise ValueError("set a metric (namespace + metric_name) or an expression")
        if not has_metric and self.dimensions:
            raise ValueError("dimensions need a metric (namespace + metric_name)")
        if (
            has_metric
            and self.expression is None
            and self.statistic in ("Sum", "SampleCount")
            and self.period is None
            and not self.per_second
        ):
            # An automatic period is 1 min for recent ranges and 5 min for older ones, so an
            # incremental fetch would store totals per minute next to totals per 5 minutes.
            raise ValueError(
                f"statistic {self.statistic} with an automatic period mixes totals per 1 and "
                "5 minutes; set period (e.g. 5m) or per_second: true"
            )
        return self


class BasicAuth(BaseModel):
    """HTTP basic authentication; the password is a secret (never logged)."""

    model_config = _STRICT

    username: str = Field(min_length=1)
    password: SecretStr


_RESERVED_HEADERS = {"authorization": "bearer_token or basic_auth", "x-scope-orgid": "org_id"}


class PrometheusSource(BaseModel):
    """Demand history from a Prometheus-compatible ``/api/v1/query_range`` (Prometheus,
    Thanos, Mimir, VictoriaMetrics). ``query`` must return one series unless
    ``sum_series`` is set, then the series are summed per timestamp."""

    model_config = _STRICT

    type: Literal["prometheus"] = "prometheus"
    url: str  # base URL, e.g. http://prometheus:9090 or https://mimir.example/prometheus
    query: str = Field(min_length=1)  # PromQL, e.g. sum(rate(http_requests_total[5m]))
    # None: from the range or lookback, 60 s up to max_points
    step: Annotated[Duration, _within(DAY)] | None = None
    max_points: Int = Field(default=10_080, ge=100, le=1_000_000)  # the auto step's budget
    sum_series: bool = False
    bearer_token: SecretStr | None = None
    basic_auth: BasicAuth | None = None
    ca_file: FilePath | None = None  # PEM bundle to verify the server's certificate
    insecure_skip_verify: bool = False
    timeout: Float = Field(default=30.0, gt=0, le=600)  # seconds, per HTTP request
    # sent as Prometheus' ``timeout`` parameter
    query_timeout: Annotated[Duration, _within(HOUR)] | None = None
    org_id: str | None = Field(default=None, min_length=1)  # sent as X-Scope-OrgID
    headers: dict[str, str] = Field(default_factory=dict)
    lookback: Duration = _DEFAULT_LOOKBACK  # history read when nothing is stored yet
    # the most the demand can be (e.g. 100 for a percentage): caps every forecast
    max_value: Float | None = Field(default=None, gt=0, le=MAX_CAPACITY_PER_UNIT)

    def demand_max(self) -> float | None:
        return self.max_value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        match = re.fullmatch(r"(https?)://([^/?#\s]+)(/[^?#\s]*)?", value.strip())
        if not match:
            raise ValueError(
                f"{redact_url(value)!r} is not a base URL like http://prometheus:9090 "
                "(no query string: put credentials in basic_auth or bearer_token)"
            )
        if "@" in match.group(2):
            raise ValueError("put credentials in basic_auth or bearer_token, not in the url")
        return value.strip().rstrip("/")

    @field_validator("step")
    @classmethod
    def _step(cls, value: dt.timedelta | None) -> dt.timedelta | None:
        return _check_period(value, "step")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"set {name} with {_RESERVED_HEADERS[name.lower()]}")
        return value

    @model_validator(mode="after")
    def _one_auth(self) -> PrometheusSource:
        if self.bearer_token is not None and self.basic_auth is not None:
            raise ValueError("use bearer_token or basic_auth, not both")
        if self.ca_file is not None and self.insecure_skip_verify:
            raise ValueError("ca_file and insecure_skip_verify contradict each other")
        return self


MetricSourceSettings = Annotated[
    CsvSource | CloudWatchSource | PrometheusSource, Field(discriminator="type")
]
_SOURCE_TYPES = frozenset({"csv", "cloudwatch", "prometheus"})  # union tags, hidden in errors


class Seasonalities(BaseModel):
    model_config = _STRICT

    daily: bool = True
    weekly: bool = True
    yearly: bool = False
    weekend_daily_split: bool = True


ModelName = Literal["ensemble", "prophet", "seasonal_naive", "recent_peak", "reactive"]


class ForecastConfig(BaseModel):
    """Forecast settings for one service."""

    model_config = _STRICT

    horizon: Duration = dt.timedelta(hours=48)
    interval_width: Float = Field(default=0.9, gt=0, lt=1)
    country_holidays: str | None = None
    timezone: TimezoneName | None = None  # default: the global display_timezone
    seasonalities: Seasonalities = Field(default_factory=Seasonalities)
    business_hours: tuple[Int, Int] | None = None
    resolution: Annotated[Duration, _within(DAY, positive=True)] | None = None
    # auto resolution keeps at most this many points per fit (1500: a 2-week 5-minute
    # history is fitted at 15 min; 5000 fits it at 5 min, more accurate, ~3.5x slower)
    max_points: Int = Field(default=1500, ge=100, le=50_000)
    max_history: Annotated[Duration, _within(dt.timedelta(days=1095), positive=True)] = (
        dt.timedelta(days=56)
    )
    log_transform: bool = True
    uncertainty_samples: Int = Field(default=300, ge=0, le=5000)
    # Candidate models, the first is the primary; the record picks among them per refit.
    models: tuple[ModelName, ...] = (
        "ensemble",
        "prophet",
        "seasonal_naive",
        "recent_peak",
        "reactive",
    )
    # Share of recorded steps that may go under-provisioned when the record is replayed
    # with the forecast's headroom and the observed-demand floor (observed_headroom)
    # together: the forecast gets only the headroom the floor does not already give.
    target_under: Float = Field(default=0.005, gt=0, le=0.5)  # forecaster TARGET_UNDER
    # forecaster RECORD_WINDOW: how much of the record the choice judges
    record_window: Annotated[Duration, _within(dt.timedelta(days=90), positive=True)] = (
        dt.timedelta(days=28)
    )
    max_band_factor: Float = Field(default=3.0, ge=1, le=10)
    # the credible ceiling: a forecast plans for at most the fitted window's peak demand x
    # this (raised only inside an expected-uplift event; never above source.max_value)
    peak_allowance: Float = Field(default=1.1, ge=1, le=10)  # forecaster PEAK_ALLOWANCE
    # Live accuracy: after each collect, the forecast in force is judged on the last
    # live_window; more than live_max_under of its steps above the band (or a weighted
    # absolute error above live_max_error) refits early, and the new fit's record widens it.
    live_window: Annotated[Duration, _within(WEEK, positive=True)] = dt.timedelta(hours=6)
    live_max_under: Float = Field(default=0.25, gt=0, le=1)
    live_max_error: Float = Field(default=0.5, gt=0, le=100)

    @field_validator("models")
    @classmethod
    def _models(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one model")
        if len(set(value)) != len(value):
            raise ValueError("models repeat")
        return value

    @field_validator("horizon")
    @classmethod
    def _positive_horizon(cls, value: dt.timedelta) -> dt.timedelta:
        if value <= dt.timedelta(0):
            raise ValueError("horizon must be positive")
        if value > dt.timedelta(days=60):
            raise ValueError(f"{format_duration(value)} is too long: at most 60d")
        return value

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not (0 <= value[0] < value[1] <= 24):
            raise ValueError(
                "business_hours must be [start, end) hours with 0 <= start < end <= 24"
            )
        return value

    @field_validator("country_holidays")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Z]{2,3}", value):
            raise ValueError(f"{value!r}: use an ISO 3166 country code like US or DE")
        return value


Mode = Literal["dry-run", "plan", "apply", "commit", "shadow"]
# What a shadow service is promoted to once its record earns it.
PromotedMode = Literal["plan", "apply", "commit"]


class PromoteSettings(BaseModel):
    """When a ``mode: shadow`` service has earned promotion (and when it loses it)."""

    model_config = _STRICT

    to: PromotedMode = "apply"
    # The shadow record must cover at least this long before it can promote.
    after: Annotated[Duration, _within(dt.timedelta(days=365), positive=True)] = WEEK
    # Would-have-been under-provisioned share of minutes, at most.
    max_under: Float = Field(default=0.005, ge=0, le=1)
    # Would-have-been unit-hours / simulated reactive target tracking's, at most.
    max_cost_ratio: Float = Field(default=0.9, gt=0, le=100)


class UnitPrice(BaseModel):
    """What one unit of capacity costs per hour, in any currency."""

    model_config = _STRICT

    per_hour: Float = Field(ge=0, le=1e6)
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"  # ISO 4217


class PricingLookup(BaseModel):
    """An on-demand EC2 price looked up once with the AWS Pricing API (GetProducts)."""

    model_config = _STRICT

    aws_instance_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    os: Literal["Linux", "Windows", "RHEL", "SUSE"] = "Linux"
    tenancy: Literal["Shared", "Dedicated"] = "Shared"
    # The Pricing API lives in a few regions only (us-east-1, eu-central-1, ap-south-1).
    api_region: str = "us-east-1"
    endpoint_url: str | None = None
    profile: str | None = None


class TerraformSettings(BaseModel):
    """How forescale runs Terraform for a service (modes ``plan`` and ``apply``)."""

    model_config = _STRICT

    binary: str = "terraform"  # or "tofu"
    init: bool = False  # run `terraform init` before planning
    plugin_dirs: list[FilePath] = Field(default_factory=list)  # `init -plugin-dir`
    backend_config: list[str] = Field(default_factory=list)  # `init -backend-config`
    var_files: list[FilePath] = Field(default_factory=list)  # the team's -var-files, in order
    lock_timeout: Annotated[Duration, _within(DAY)] = dt.timedelta(seconds=60)
    plan_timeout: Annotated[Duration, _within(DAY, positive=True)] = dt.timedelta(minutes=30)
    apply_timeout: Annotated[Duration, _within(DAY, positive=True)] = dt.timedelta(hours=1)
    allowed_addresses: list[str] = Field(default_factory=lambda: ["*"])  # may be updated
    allow_create: bool = False
    allow_delete: bool = False
    allow_replace: bool = False


class ScheduleSettings(BaseModel):
    """``iac.write: schedule``: the plan of the horizon as a map variable Terraform turns
    into scheduled actions (see forescale/iac_writer/schedule.py)."""

    model_config = _STRICT

    file: FilePath = Path("forescale.schedule.auto.tfvars.json")  # relative to working_dir
    variable: str = Field(default="forescale_schedule", pattern=r"^[A-Za-z_][\w-]*$")
    # the fields each entry sets (min_size; desired_capacity / max_size only where managed)
    fields: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w-]*$")]] = Field(
        default_factory=lambda: ["min_size"], min_length=1, max_length=3
    )
    # resource addresses the plan may create, update or delete (the scheduled actions)
    resources: list[str] = Field(
        default_factory=lambda: [
            "aws_autoscaling_schedule.forescale*",
            "aws_appautoscaling_scheduled_action.forescale*",
        ],
        min_length=1,
    )
    margin: Annotated[Duration, _within(HOUR)] = dt.timedelta(minutes=5)  # start in the future
    max_entries: Int = Field(default=125, ge=1, le=1000)  # AWS: 125 per Auto Scaling group
    warn_before: Annotated[Duration, _within(WEEK)] = dt.timedelta(hours=6)

    @model_validator(mode="after")
    def _auto_file(self) -> ScheduleSettings:
        if not self.file.name.endswith(".auto.tfvars.json"):
            raise ValueError("schedule.file must end in .auto.tfvars.json")
        return self


class ManagedAddresses(BaseModel):
    """Several numbers of one service (any subset with min or desired): forescale sets min
    and desired to the planned units and max to max(max_base, units), in one edit."""

    model_config = _STRICT

    min: str | None = None
    desired: str | None = None
    max: str | None = None

    @model_validator(mode="after")
    def _min_or_desired(self) -> ManagedAddresses:
        if self.min is None and self.desired is None:
            raise ValueError("addresses needs min or desired (max alone plans nothing)")
        for value in (self.min, self.desired, self.max):
            if value is not None and not _ADDRESS.fullmatch(value):
                raise ValueError(f"{value!r} is not a variable address like capacity.web.min")
        return self

    def roles(self) -> dict[str, str]:
        return {
            r: a for r, a in (("min", self.min), ("desired", self.desired), ("max", self.max)) if a
        }


_ADDRESS = re.compile(r"[A-Za-z_][\w-]*(\.[\w-]+)*")
# YAML: [doc[<n> or Kind/name].]key.key (keys as Helm values spell them)
_YAML_ADDRESS = re.compile(r"(doc\[[^\]\s]+\]\.)?[^.\s\[\]]+(\.[^.\s\[\]]+)*")

CAPACITY_NAME_MAX = 54  # a service's capacity_source is stored as "<name>#capacity" (64)


def capacity_series(name: str) -> str:
    """The store's name for the samples of ``name``'s ``capacity_source``."""
    return f"{name}#capacity"


class IacTarget(BaseModel):
    """Where the capacity lives: a variable in a Terraform variable file."""

    model_config = _STRICT

    working_dir: FilePath
    var_file: FilePath = Path("terraform.tfvars")  # relative to working_dir
    # plain `web_min_size` or nested `capacity.web.min`; with `addresses`: their min or
    # desired (set for you)
    address: str = ""
    # several variables at once: {min: ..., desired: ..., max: ...} (write: in_place)
    addresses: ManagedAddresses | None = None
    # with addresses.max: the team's usual maximum, restored after a peak
    max_base: Int | None = Field(default=None, ge=1, le=MAX_UNITS)
    # in_place: replace the value's characters in var_file; auto_tfvars: own a generated
    # JSON var file holding only forescale's variable (a plain variable name); schedule:
    # own a JSON var file holding the plan of the horizon as scheduled actions (the team's
    # variable at `address` is the capacity before the first entry).
    write: Literal["in_place", "auto_tfvars", "schedule"] = "in_place"
    auto_tfvars_file: FilePath = Path("forescale.auto.tfvars.json")  # relative to working_dir
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    terraform: TerraformSettings = Field(default_factory=TerraformSettings)
    commit_branch: str = "forescale/{service}"  # mode commit: branch of the IaC repo

    @field_validator("commit_branch")
    @classmethod
    def _branch_template(cls, value: str) -> str:
        """Only ``{service}`` may be filled in (a typo such as ``{svc}`` was a traceback
        at the first commit)."""
        try:
            parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(value)]
        except ValueError as exc:
            raise ValueError(
                f"{value!r}: {exc} (write {{service}} for the service's name)"
            ) from None
        if any(f is not None and (f != "service" or spec or conv) for f, spec, conv in parts):
            raise ValueError(f"{value!r}: the only placeholder is {{service}} (the service's name)")
        return value

    @model_validator(mode="after")
    def _one_form_of_address(self) -> IacTarget:
        if self.addresses is None:
            if not self.address:
                raise ValueError("give address (one variable) or addresses (min/desired/max)")
            return self
        if self.address:
            raise ValueError("give address or addresses, not both")
        if self.write != "in_place":
            raise ValueError("addresses (several variables) needs write: in_place")
        if self.addresses.max is not None and self.max_base is None:
            raise ValueError(
                "addresses.max needs max_base: the usual maximum forescale returns to after "
                "raising the ceiling ahead of a peak"
            )
        self.address = self.addresses.min or self.addresses.desired or ""
        return self

    @model_validator(mode="after")
    def _auto_needs_a_plain_variable(self) -> IacTarget:
        if self.write == "auto_tfvars" and "." in self.address:
            raise ValueError(
                f"write: auto_tfvars owns whole variables; {self.address!r} is nested "
                "(Terraform replaces a whole map from a var file) - use a plain variable"
            )
        if self.write == "auto_tfvars" and not self.auto_tfvars_file.name.endswith(
            ".auto.tfvars.json"
        ):
            raise ValueError("auto_tfvars_file must end in .auto.tfvars.json")
        return self

    @property
    def auto_tfvars_path(self) -> Path:
        path = self.auto_tfvars_file
        return path if path.is_absolute() else self.working_dir / path

    @property
    def schedule_path(self) -> Path:
        path = self.schedule.file
        return path if path.is_absolute() else self.working_dir / path

    @property
    def owned_var_file(self) -> Path | None:
        """forescale's own var file as configured (relative to working_dir unless absolute),
        passed last as -var-file; None for in-place writes."""
        if self.write == "auto_tfvars":
            return self.auto_tfvars_file
        if self.write == "schedule":
            return self.schedule.file
        return None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value and not (_ADDRESS.fullmatch(value) or _YAML_ADDRESS.fullmatch(value)):
            raise ValueError(
                f"{value!r} is not a variable address like web_min_size or capacity.web.min"
            )
        return value

    @model_validator(mode="after")
    def _fits_the_file(self) -> IacTarget:
        kind = file_kind(self.var_file)
        if kind != "yaml" and not _ADDRESS.fullmatch(self.address):
            raise ValueError(
                f"{self.address!r} is not a variable address like web_min_size or "
                "capacity.web.min (doc[Kind/name]. selects a document of a YAML file only)"
            )
        if kind != "tfvars" and self.write != "in_place":
            raise ValueError(
                f"write: {self.write} needs a Terraform variable file; {self.var_file.name} "
                f"({'a Kubernetes YAML file' if kind == 'yaml' else 'Terragrunt inputs'}) is "
                "edited in place (write: in_place)"
            )
        return self

    @property
    def kind(self) -> FileKind:
        """What kind of file ``var_file`` is (by its name)."""
        return file_kind(self.var_file)

    @property
    def var_file_path(self) -> Path:
        return self.var_file if self.var_file.is_absolute() else self.working_dir / self.var_file


class ServiceSettings(BaseModel):
    """One service: where its demand comes from, how demand maps to units, where units live."""

    model_config = _STRICT

    source: MetricSourceSettings
    # the units actually in force (e.g. CloudWatch AWS/AutoScaling GroupInServiceInstances):
    # shadow mode's record is compared with it instead of simulated target tracking
    capacity_source: MetricSourceSettings | None = None
    capacity_per_unit: Float = Field(gt=0, le=MAX_CAPACITY_PER_UNIT)
    min_units: Int = Field(ge=0, le=MAX_UNITS)
    max_units: Int = Field(ge=1, le=MAX_UNITS)
    max_step_up: StepLimitSettings = Field(default_factory=StepLimitSettings)
    max_step_down: StepLimitSettings = Field(default_factory=StepLimitSettings)
    # The step limits hold for the total change inside any window of this length (like
    # Kubernetes HPA's periodSeconds), not only per change. Implemented by the planner.
    step_period: Annotated[Duration, _within(DAY, positive=True)] = dt.timedelta(minutes=15)
    lead_time: Annotated[Duration, _within(WEEK)] = dt.timedelta(minutes=15)
    # The reactive floor serves the latest observed demand times (1 + observed_headroom).
    observed_headroom: Float = Field(default=0.3, ge=0, le=5)
    # While the last hour's demand ran above the forecast, the band ahead is lifted by
    # their ratio, at most this, up to the recent peak (forecaster.lift; 1: never).
    max_lift: Float = Field(default=1.5, ge=1, le=3)
    # A demand at most this fraction of one unit above a whole number of units is planned
    # at that number (forecaster.capacity.UNIT_TOLERANCE; 0: always round up).
    unit_tolerance: Float = Field(default=0.02, ge=0, lt=1)
    scale_in: ScaleInSettings = Field(default_factory=ScaleInSettings)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    iac: IacTarget
    events_file: FilePath | None = None  # overrides the global events_file
    mode: Mode | None = None  # overrides the global mode for this service
    promote: PromoteSettings | None = None  # overrides the global promote (mode: shadow)
    unit_price: UnitPrice | None = None  # cost of one unit per hour
    pricing: PricingLookup | None = None  # or: look the price up (AWS Pricing API)
    # the resource whose instances the units are, for `forescale plan --infracost-usage`
    # (default: the one address of iac.terraform.allowed_addresses, when it names one)
    infracost_resource: (
        Annotated[
            str,
            Field(
                pattern=r'^(module\.[\w-]+(\["[^"]*"\]|\[\d+\])?\.)*[a-z][\w-]*\.[\w-]+(\["[^"]*"\]|\[\d+\])?$'
            ),
        ]
        | None
    ) = None

    @property
    def usage_resource(self) -> str | None:
        """The resource address an Infracost usage file prices with this service's units."""
        if self.infracost_resource is not None:
            return self.infracost_resource
        allowed = self.iac.terraform.allowed_addresses
        if len(allowed) == 1 and "*" not in allowed[0] and "?" not in allowed[0]:
            return allowed[0]
        return None

    @model_validator(mode="after")
    def _one_price(self) -> ServiceSettings:
        if self.unit_price is not None and self.pricing is not None:
            raise ValueError("give unit_price or pricing, not both")
        return self

    @model_validator(mode="after")
    def _bounds(self) -> ServiceSettings:
        if self.min_units > self.max_units:
            raise ValueError(f"min_units ({self.min_units}) is above max_units ({self.max_units})")
        if self.lead_time >= self.forecast.horizon:
            raise ValueError(
                f"lead_time ({format_duration(self.lead_time)}) must be shorter than "
                f"forecast.horizon ({format_duration(self.forecast.horizon)}): a raise is made "
                "lead_time before the demand it serves, so the forecast has to reach past it"
            )
        return self


class FitSettings(BaseModel):
    """Where refits run: in-process, a local process pool, or a Dask cluster."""

    model_config = _STRICT

    executor: Literal["serial", "process", "dask"] = "process"
    workers: Int | None = Field(default=None, ge=1, le=256)  # default: the machine's CPUs
    scheduler_address: str | None = None  # executor dask: tcp://host:8786

    @model_validator(mode="after")
    def _dask_address(self) -> FitSettings:
        if self.executor == "dask" and not self.scheduler_address:
            raise ValueError("executor 'dask' needs scheduler_address (tcp://host:8786)")
        return self


class ApiSettings(BaseModel):
    """The REST API (``forescale serve``, or in-process in ``forescale daemon``)."""

    model_config = _STRICT

    bind: str = "127.0.0.1"  # loopback unless configured (containers: 0.0.0.0)
    port: Int = Field(default=8080, ge=1, le=65535)
    token: SecretStr | None = None  # bearer token for mutating endpoints
    protect_reads: bool = False  # require the token for read endpoints too
    # Host names the API answers (DNS rebinding); None: localhost, 127.0.0.1, [::1] and
    # the bind address. "*.example.com" matches subdomains, "*" anything.
    allowed_hosts: list[Annotated[str, Field(min_length=1, max_length=253)]] | None = Field(
        default=None, max_length=100
    )


class _Environment(EnvSettingsSource):
    """The ``FORESCALE_*`` overrides. A setting that is a mapping but also has a scalar form
    (a step limit ``25%``, scale-in ``never``) takes that form as plain text too; other
    mappings and lists are JSON."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            text = value.strip() if isinstance(value, str) else ""
            if field is not None and field.annotation in _SCALAR_FORMS and text[:1] not in "{[":
                return value
            raise


_SCALAR_FORMS = (StepLimitSettings, ScaleInSettings)


class Settings(BaseSettings):
    """Global settings. Storage is always UTC; ``display_timezone`` only formats output."""

    model_config = SettingsConfigDict(
        env_prefix="FORESCALE_",
        env_nested_delimiter="__",
        extra="forbid",
        allow_inf_nan=False,
    )

    mode: Mode = "dry-run"
    promote: PromoteSettings = Field(default_factory=PromoteSettings)  # for mode: shadow
    store_url: str = "sqlite:///.forescale/forescale.db"
    display_timezone: TimezoneName = "UTC"
    events_file: FilePath | None = None
    min_history: Annotated[Duration, _within(dt.timedelta(days=365))] = dt.timedelta(hours=24)
    stale_after: Annotated[Duration, _within(dt.timedelta(days=30))] = dt.timedelta(minutes=30)
    api: ApiSettings = Field(default_factory=ApiSettings)
    fit: FitSettings = Field(default_factory=FitSettings)
    services: dict[str, ServiceSettings] = Field(min_length=1)
    config_path: Path | None = Field(default=None, exclude=True)

    @field_validator("services")
    @classmethod
    def _service_names(cls, value: dict[str, ServiceSettings]) -> dict[str, ServiceSettings]:
        for name in value:
            if value[name].capacity_source is not None and len(name) > CAPACITY_NAME_MAX:
                raise ValueError(
                    f"service name {name!r}: at most {CAPACITY_NAME_MAX} characters with a "
                    "capacity_source (its samples are stored as <name>#capacity)"
                )
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name):
                raise ValueError(
                    f"service name {name!r}: use lower-case letters, digits, '-' and '_'"
                )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (the file's content arrives as init kwargs).
        return (_Environment(settings_cls), init_settings)

    def service(self, name: str) -> ServiceSettings:
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(sorted(self.services))
            raise ConfigError(f"no service named {name!r} (configured: {known})") from None

    def mode_of(self, service: ServiceSettings) -> str:
        """The service's mode: its own, else the global one."""
        return service.mode or self.mode

    def promote_of(self, service: ServiceSettings) -> PromoteSettings:
        """The service's promotion bar: its own, else the global one."""
        return service.promote or self.promote

    def forecast_timezone(self, service: ServiceSettings) -> str:
        return service.forecast.timezone or self.display_timezone

    def events_path(self, service: ServiceSettings) -> Path | None:
        return service.events_file or self.events_file


def _format_loc(loc: tuple[int | str, ...]) -> str:
    parts = [
        p if isinstance(p, str) and re.fullmatch(r"[\w.-]{1,64}", p) else repr(p)
        for p in loc
        if not (isinstance(p, str) and p in _SOURCE_TYPES)
    ]
    return ".".join(parts) or "(top level)"


def _one_line(text: str, limit: int = 2000) -> str:
    """Control characters escaped and the length capped: an error is one line."""
    text = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group(0))[1:-1], text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _DuplicateKey(Exception):
    def __init__(self, key: object, line: int, first_line: int) -> None:
        super().__init__(key, line, first_line)
        self.key, self.line, self.first_line = key, line, first_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the
    later value silently). Keys brought in by a merge (``<<``) may be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class says so
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise _DuplicateKey(key, line, first)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str, *, source: str) -> Any:
    """The YAML document in ``text``; any problem is a one-line ConfigError naming the line."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(
            f"{source}:{exc.line}: duplicate key {_short_repr(exc.key)} (first given at line "
            f"{exc.first_line}); remove one of them"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(_one_line(f"{source}{where}: not valid YAML: {problem}")) from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as exc:
        # PyYAML builds dates and numbers with Python's constructors: `2024-13-45` looks
        # like a date to it and fails here
        problem = f"{source}: not valid YAML: a value cannot be read: {exc}"
        raise ConfigError(_one_line(problem)) from None


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**limit else "a number"
    return _one_line(text if len(text) <= limit else text[: limit - 3] + "...")


def _resolve_paths(settings: Settings, base: Path) -> None:
    def rel(path: Path) -> Path:
        try:
            path = path.expanduser()
        except RuntimeError:  # "~someone/..." for an unknown user
            raise ConfigError(
                f"{path}: cannot expand '~' (no such user's home directory)"
            ) from None
        return path if path.is_absolute() else (base / path)

    if settings.events_file is not None:
        settings.events_file = rel(settings.events_file)
    for svc in settings.services.values():
        if isinstance(svc.source, CsvSource):
            svc.source.path = rel(svc.source.path)
        elif isinstance(svc.source, PrometheusSource) and svc.source.ca_file is not None:
            svc.source.ca_file = rel(svc.source.ca_file)
        svc.iac.working_dir = rel(svc.iac.working_dir)
        tf = svc.iac.terraform
        tf.plugin_dirs = [rel(p) for p in tf.plugin_dirs]
        if svc.events_file is not None:
            svc.events_file = rel(svc.events_file)
    prefix = "sqlite:///"
    if settings.store_url.startswith(prefix) and not settings.store_url.startswith(prefix + "/"):
        tail = settings.store_url[len(prefix) :]
        if tail and tail != ":memory:":
            settings.store_url = prefix + str(rel(Path(tail)))


def _real(path: Path) -> Path:
    """``path`` with symlinks and ``..`` resolved as far as they exist."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return Path(os.path.abspath(path))


def _check_targets(settings: Settings, source: str) -> None:
    """Each service's mode (and a shadow service's promote.to) must be one its kind of file
    can carry out."""
    for name, svc in sorted(settings.services.items()):
        mode = settings.mode_of(svc)
        modes = [mode, settings.promote_of(svc).to] if mode == "shadow" else [mode]
        for each in modes:
            _check_mode(svc, name, each, source)


def _check_mode(svc: ServiceSettings, name: str, mode: str, source: str) -> None:
    kind = svc.iac.kind
    if kind == "yaml" and mode == "plan":
        raise ConfigError(
            f"{source}: invalid settings: services.{name}: mode plan runs terraform, and "
            f"{svc.iac.var_file.name} is a Kubernetes YAML file: use dry-run, apply "
            "(forescale writes the file; Argo CD, Flux or helm upgrade roll it out) or "
            "commit"
        )
    if kind == "terragrunt" and mode == "plan":
        raise ConfigError(
            f"{source}: invalid settings: services.{name}: mode plan plans in a private "
            "copy of working_dir, and a Terragrunt unit reads its parent folders "
            "(include, find_in_parent_folders): use dry-run, apply or commit"
        )
    binary = Path(svc.iac.terraform.binary).name
    if kind == "terragrunt" and mode == "apply" and binary != "terragrunt":
        raise ConfigError(
            f"{source}: invalid settings: services.{name}: {svc.iac.var_file.name} holds "
            f"Terragrunt inputs, which {binary} does not read: set "
            "iac.terraform.binary: terragrunt for mode apply (commit and dry-run need "
            "no binary)"
        )


def _written_addresses(iac: IacTarget) -> list[str]:
    """Every number a service writes: its address, or each role of its addresses."""
    return [iac.address] if iac.addresses is None else list(iac.addresses.roles().values())


def _check_shared_variables(settings: Settings, source: str) -> None:
    """Refuse two services that would write the same number (rule 6 of the module docs)."""
    written: dict[tuple[Path, str], str] = {}
    variables: dict[tuple[Path, str], tuple[str, bool]] = {}  # (dir, var) -> (service, auto)
    for name, svc in sorted(settings.services.items()):
        iac = svc.iac
        auto = iac.write == "auto_tfvars"
        file = _real(iac.auto_tfvars_path if auto else iac.var_file_path)
        if iac.write == "schedule":  # the schedule variable in forescale's own file
            scheduled = (_real(iac.schedule_path), iac.schedule.variable)
            other = written.setdefault(scheduled, name)
            if other != name:
                raise ConfigError(
                    f"{source}: invalid settings: services {other} and {name} both write the "
                    f"schedule {iac.schedule.variable} in {scheduled[0]}; give each service "
                    "its own schedule file or variable"
                )
        addresses = _written_addresses(iac)
        for address in addresses:
            if addresses.count(address) > 1:
                raise ConfigError(
                    f"{source}: invalid settings: services.{name}.iac.addresses names "
                    f"{address} twice; give each role its own variable"
                )
            other = written.setdefault((file, address), name)
            if other != name:
                raise ConfigError(
                    f"{source}: invalid settings: services {other} and {name} both manage "
                    f"{address} in {file}; give each service its own variable (or one "
                    "service for both)"
                )
        directory, variable = _real(iac.working_dir), iac.address.split(".")[0]
        known = variables.get((directory, variable))
        if known is not None and (auto or known[1]):
            raise ConfigError(
                f"{source}: invalid settings: services {known[0]} and {name} both set the "
                f"Terraform variable {variable} of {directory} (one through its auto tfvars "
                "file, which overrides the other); give each service its own variable"
            )
        variables.setdefault((directory, variable), (name, auto))


def in_memory(url: str) -> bool:
    """Whether ``url`` is an SQLite database that lives only as long as its process."""
    scheme, _, rest = url.partition("://")
    if scheme != "sqlite" and not scheme.startswith("sqlite+"):
        return False
    database, _, query = rest.removeprefix("/").partition("?")
    return database in ("", ":memory:") or "mode=memory" in query.split("&")


def _check_store(settings: Settings, source: str) -> None:
    """Refuse a store in memory where a run's record must outlive it (rule 7)."""
    if not in_memory(settings.store_url):
        return
    for name, svc in sorted(settings.services.items()):
        mode = settings.mode_of(svc)
        if mode != "dry-run":
            raise ConfigError(
                f"{source}: invalid settings: store_url keeps the store in memory, which "
                f"forgets every run when the process ends, and services.{name} has mode "
                f"{mode}, whose next run must know what this one did: give store_url a "
                "file (sqlite:///path/forescale.db) or a database server"
            )


def _environment_error(source: str, exc: SettingsError) -> ConfigError:
    """A one-line error for an environment override pydantic-settings could not decode,
    naming the variable (never its value: it may hold a token)."""
    found = re.search(r'field "([^"]+)"', str(exc))
    field = found.group(1) if found else "?"
    cause = exc.__cause__
    names: list[str] = []
    if isinstance(cause, json.JSONDecodeError):
        names = sorted(
            name
            for name, value in os.environ.items()
            if name.upper().startswith(ENV_PREFIX) and value == cause.doc
        )
        problem = f"not valid JSON ({cause.msg} at character {cause.pos + 1})"
    else:
        problem = f"cannot be read ({type(cause).__name__ if cause else 'invalid value'})"
    if not names:
        names = [f"{ENV_PREFIX}{field.upper()} (or a {ENV_PREFIX}{field.upper()}__... variable)"]
    return ConfigError(
        f"{source}: invalid settings: environment variable {', '.join(names)}: {problem}; "
        "a mapping or list is written as JSON, e.g. "
        f"{ENV_PREFIX}SERVICES__WEB__FORECAST__MODELS='[\"prophet\"]'"
    )


def _bad_env_json(loc: tuple[int | str, ...]) -> str | None:
    """When the field at ``loc`` came from a ``FORESCALE_A__B`` variable whose value is
    malformed JSON (pydantic-settings passes nested ones on as text), say so, naming the
    variable and not its value."""
    wanted = (ENV_PREFIX + "__".join(str(p) for p in loc)).upper()
    for name, value in os.environ.items():
        if name.upper() != wanted or not value.strip().startswith(("{", "[")):
            continue
        try:
            json.loads(value)
        except ValueError as exc:
            where = f" at character {exc.pos + 1}" if isinstance(exc, json.JSONDecodeError) else ""
            problem = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid"
            return f"environment variable {name}: not valid JSON ({problem}{where})"
    return None


def parse_settings(data: Mapping[str, Any], *, source: str, base_dir: Path) -> Settings:
    """Validate a settings mapping (the YAML's content) with the environment's overrides.
    Errors are one line naming the file and field (see the module docstring's rules)."""
    for key in data:
        if not isinstance(key, str) or key.startswith("_"):
            raise ConfigError(
                f"{source}: invalid settings: {_short_repr(key)}: not a settings key "
                "(keys are names such as services or display_timezone)"
            )
    try:
        settings = Settings(**dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            msg = str(err["msg"]).removeprefix("Value error, ")
            loc = tuple(err["loc"])
            problems.append(_bad_env_json(loc) or f"{_format_loc(loc)}: {msg}")
        raise ConfigError(
            _one_line(f"{source}: invalid settings: " + "; ".join(problems))
        ) from None
    except SettingsError as exc:
        raise _environment_error(source, exc) from None
    try:
        _resolve_paths(settings, base_dir)
    except ConfigError as exc:
        raise ConfigError(_one_line(f"{source}: invalid settings: {exc}")) from None
    _check_shared_variables(settings, source)
    _check_targets(settings, source)
    _check_store(settings, source)
    return settings


MAX_SETTINGS_BYTES = 16 * 1024 * 1024  # thousands of services fit; beyond is not settings


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read, validate and return settings from ``path`` or ``$FORESCALE_CONFIG``."""
    raw_path = path if path is not None else os.environ.get(CONFIG_ENV)
    if not raw_path:
        raise ConfigError(f"no configuration file: pass --config FILE or set {CONFIG_ENV}")
    file = Path(raw_path)
    got = read_regular(file, limit=MAX_SETTINGS_BYTES)
    if isinstance(got, Refusal):
        raise ConfigError(f"{file}: cannot read settings: {words(got, limit=MAX_SETTINGS_BYTES)}")
    try:
        text = got.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file}: cannot read settings: not UTF-8 text (byte {exc.start + 1})"
        ) from None
    data = _load_yaml(text, source=str(file))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the settings file must be a YAML mapping")
    data.pop("config_path", None)
    settings = parse_settings(data, source=str(file), base_dir=file.resolve().parent)
    settings.config_path = file
    return settings
