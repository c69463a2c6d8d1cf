"""Settings: one YAML file, validated by pydantic, overridable from the environment.

The file comes from ``--config`` or ``FORESCALE_CONFIG``. Any field can be overridden with
``FORESCALE_<FIELD>``; nested fields use ``__``, e.g.
``FORESCALE_SERVICES__WEB__MIN_UNITS=3`` or ``FORESCALE_DISPLAY_TIMEZONE=Europe/Berlin``.
Relative paths in the file are relative to the file's directory.

Build settings once with :func:`load_settings` and pass them in; there is no module-level
instance.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from config.durations import parse_duration
from forescale.errors import ConfigError

CONFIG_ENV = "FORESCALE_CONFIG"


def _duration(value: Any) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, str | int | float) and not isinstance(value, bool):
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


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r} (use an IANA name like Europe/Berlin)"
        ) from None
    return name


TimezoneName = Annotated[str, BeforeValidator(lambda v: _check_timezone(str(v)))]

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class StepLimitSettings(BaseModel):
    """A per-change limit, given as units (``4``) or percent (``"50%"``)."""

    model_config = _STRICT

    units: int | None = Field(default=None, ge=1)
    percent: float | None = Field(default=None, gt=0, le=1000)

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
    stabilization: Duration = dt.timedelta(hours=1)
    tolerance: float = Field(default=0.1, ge=0, lt=1)

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
    path: Path
    timestamp_column: str = "timestamp"
    value_column: str = "value"
    timezone: TimezoneName = "UTC"  # for timestamps without an offset
    scale: float = Field(default=1.0, gt=0)  # multiply values (e.g. to requests/s)


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
    period: Duration | None = None  # None: 60 s / 5 min / 1 h from the data's age
    per_second: bool = False  # divide each value by the period (a Sum becomes a rate)
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")
    profile: str | None = None  # a named profile from ~/.aws/config
    endpoint_url: str | None = None  # a VPC endpoint, or a local test server
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = Field(default=5, ge=1, le=20)  # botocore attempts, the first included
    connect_timeout: float = Field(default=10.0, gt=0, le=300)  # seconds
    read_timeout: float = Field(default=60.0, gt=0, le=900)  # seconds
    lookback: Duration = _DEFAULT_LOOKBACK  # history read when nothing is stored yet

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
            raise ValueError(f"{value!r} is not an http(s) URL")
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
    step: Duration | None = None  # None: from the range or lookback, 60 s up to max_points
    max_points: int = Field(default=10_080, ge=100, le=1_000_000)  # the auto step's budget
    sum_series: bool = False
    bearer_token: SecretStr | None = None
    basic_auth: BasicAuth | None = None
    ca_file: Path | None = None  # PEM bundle to verify the server's certificate
    insecure_skip_verify: bool = False
    timeout: float = Field(default=30.0, gt=0, le=600)  # seconds, per HTTP request
    query_timeout: Duration | None = None  # sent as Prometheus' ``timeout`` parameter
    org_id: str | None = Field(default=None, min_length=1)  # sent as X-Scope-OrgID
    headers: dict[str, str] = Field(default_factory=dict)
    lookback: Duration = _DEFAULT_LOOKBACK  # history read when nothing is stored yet

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        match = re.fullmatch(r"(https?)://([^/?#\s]+)(/[^?#\s]*)?", value.strip())
        if not match:
            raise ValueError(
                f"{value!r} is not a base URL like http://prometheus:9090 (no query string)"
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


ModelName = Literal["ensemble", "prophet", "seasonal_naive"]


class ForecastConfig(BaseModel):
    """Forecast settings for one service."""

    model_config = _STRICT

    horizon: Duration = dt.timedelta(hours=48)
    interval_width: float = Field(default=0.9, gt=0, lt=1)
    country_holidays: str | None = None
    timezone: TimezoneName | None = None  # default: the global display_timezone
    seasonalities: Seasonalities = Field(default_factory=Seasonalities)
    business_hours: tuple[int, int] | None = None
    resolution: Duration | None = None
    # auto resolution keeps at most this many points per fit (1500: a 2-week 5-minute
    # history is fitted at 15 min; 5000 fits it at 5 min, more accurate, ~3.5x slower)
    max_points: int = Field(default=1500, ge=100, le=50_000)
    max_history: Duration = dt.timedelta(days=56)
    log_transform: bool = True
    uncertainty_samples: int = Field(default=300, ge=0, le=5000)
    # Candidate models, the first is the primary; the record picks among them per refit.
    models: tuple[ModelName, ...] = ("ensemble", "prophet", "seasonal_naive")
    # Share of recorded steps that may go under-provisioned when the record is replayed
    # with the forecast's headroom and the observed-demand floor (observed_headroom)
    # together: the forecast gets only the headroom the floor does not already give.
    target_under: float = Field(default=0.03, gt=0, le=0.5)
    record_window: Duration = dt.timedelta(days=7)
    max_band_factor: float = Field(default=3.0, ge=1, le=10)
    # Live accuracy: after each collect, the forecast in force is judged on the last
    # live_window; more than live_max_under of its steps above the band (or a weighted
    # absolute error above live_max_error) refits early, and the new fit's record widens it.
    live_window: Duration = dt.timedelta(hours=6)
    live_max_under: float = Field(default=0.25, gt=0, le=1)
    live_max_error: float = Field(default=0.5, gt=0)

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
            raise ValueError("horizon longer than 60d is not supported")
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


Mode = Literal["dry-run", "plan", "apply", "commit"]


class TerraformSettings(BaseModel):
    """How forescale runs Terraform for a service (modes ``plan`` and ``apply``)."""

    model_config = _STRICT

    binary: str = "terraform"  # or "tofu"
    init: bool = False  # run `terraform init` before planning
    plugin_dirs: list[Path] = Field(default_factory=list)  # `init -plugin-dir`
    backend_config: list[str] = Field(default_factory=list)  # `init -backend-config`
    var_files: list[Path] = Field(default_factory=list)  # the team's -var-files, in order
    lock_timeout: Duration = dt.timedelta(seconds=60)
    plan_timeout: Duration = dt.timedelta(minutes=30)
    apply_timeout: Duration = dt.timedelta(hours=1)
    allowed_addresses: list[str] = Field(default_factory=lambda: ["*"])  # may be updated
    allow_create: bool = False
    allow_delete: bool = False
    allow_replace: bool = False


class IacTarget(BaseModel):
    """Where the capacity lives: a variable in a Terraform variable file."""

    model_config = _STRICT

    working_dir: Path
    var_file: Path = Path("terraform.tfvars")  # relative to working_dir
    address: str  # plain `web_min_size` or nested `capacity.web.min`
    # in_place: replace the value's characters in var_file; auto_tfvars: own a generated
    # JSON var file holding only forescale's variable (a plain variable name).
    write: Literal["in_place", "auto_tfvars"] = "in_place"
    auto_tfvars_file: Path = Path("forescale.auto.tfvars.json")  # relative to working_dir
    terraform: TerraformSettings = Field(default_factory=TerraformSettings)
    commit_branch: str = "forescale/{service}"  # mode commit: branch of the IaC repo

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

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w-]*(\.[\w-]+)*", value):
            raise ValueError(
                f"{value!r} is not a variable address like web_min_size or capacity.web.min"
            )
        return value

    @property
    def var_file_path(self) -> Path:
        return self.var_file if self.var_file.is_absolute() else self.working_dir / self.var_file


class ServiceSettings(BaseModel):
    """One service: where its demand comes from, how demand maps to units, where units live."""

    model_config = _STRICT

    source: MetricSourceSettings
    capacity_per_unit: float = Field(gt=0)
    min_units: int = Field(ge=0)
    max_units: int = Field(ge=1)
    max_step_up: StepLimitSettings = Field(default_factory=StepLimitSettings)
    max_step_down: StepLimitSettings = Field(default_factory=StepLimitSettings)
    lead_time: Duration = dt.timedelta(minutes=15)
    # The reactive floor serves the latest observed demand times (1 + observed_headroom).
    observed_headroom: float = Field(default=0.3, ge=0, le=5)
    scale_in: ScaleInSettings = Field(default_factory=ScaleInSettings)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    iac: IacTarget
    events_file: Path | None = None  # overrides the global events_file
    mode: Mode | None = None  # overrides the global mode for this service

    @model_validator(mode="after")
    def _bounds(self) -> ServiceSettings:
        if self.min_units > self.max_units:
            raise ValueError(f"min_units ({self.min_units}) is above max_units ({self.max_units})")
        return self


class FitSettings(BaseModel):
    """Where refits run: in-process, a local process pool, or a Dask cluster."""

    model_config = _STRICT

    executor: Literal["serial", "process", "dask"] = "process"
    workers: int | None = Field(default=None, ge=1, le=256)  # default: the machine's CPUs
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
    port: int = Field(default=8080, ge=1, le=65535)
    token: SecretStr | None = None  # bearer token for mutating endpoints
    protect_reads: bool = False  # require the token for read endpoints too


class Settings(BaseSettings):
    """Global settings. Storage is always UTC; ``display_timezone`` only formats output."""

    model_config = SettingsConfigDict(
        env_prefix="FORESCALE_",
        env_nested_delimiter="__",
        extra="forbid",
        allow_inf_nan=False,
    )

    mode: Mode = "dry-run"
    store_url: str = "sqlite:///.forescale/forescale.db"
    display_timezone: TimezoneName = "UTC"
    events_file: Path | None = None
    min_history: Duration = dt.timedelta(hours=24)
    stale_after: Duration = dt.timedelta(minutes=30)
    api: ApiSettings = Field(default_factory=ApiSettings)
    fit: FitSettings = Field(default_factory=FitSettings)
    services: dict[str, ServiceSettings] = Field(min_length=1)
    config_path: Path | None = Field(default=None, exclude=True)

    @field_validator("services")
    @classmethod
    def _service_names(cls, value: dict[str, ServiceSettings]) -> dict[str, ServiceSettings]:
        for name in value:
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
        return (env_settings, init_settings)

    def service(self, name: str) -> ServiceSettings:
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(sorted(self.services))
            raise ConfigError(f"no service named {name!r} (configured: {known})") from None

    def mode_of(self, service: ServiceSettings) -> str:
        """The service's mode: its own, else the global one."""
        return service.mode or self.mode

    def forecast_timezone(self, service: ServiceSettings) -> str:
        return service.forecast.timezone or self.display_timezone

    def events_path(self, service: ServiceSettings) -> Path | None:
        return service.events_file or self.events_file


def _format_loc(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in _SOURCE_TYPES)]
    return ".".join(parts) or "(top level)"


def _resolve_paths(settings: Settings, base: Path) -> None:
    def rel(path: Path) -> Path:
        path = path.expanduser()
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


def parse_settings(data: Mapping[str, Any], *, source: str, base_dir: Path) -> Settings:
    """Validate a settings mapping (the YAML's content). Errors name the file and field."""
    try:
        settings = Settings(**dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{_format_loc(tuple(err['loc']))}: {msg}")
        raise ConfigError(f"{source}: invalid settings: " + "; ".join(problems)) from None
    _resolve_paths(settings, base_dir)
    return settings


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read, validate and return settings from ``path`` or ``$FORESCALE_CONFIG``."""
    raw_path = path if path is not None else os.environ.get(CONFIG_ENV)
    if not raw_path:
        raise ConfigError(f"no configuration file: pass --config FILE or set {CONFIG_ENV}")
    file = Path(raw_path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read settings: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{file}{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the settings file must be a YAML mapping")
    data.pop("config_path", None)
    settings = parse_settings(data, source=str(file), base_dir=file.resolve().parent)
    settings.config_path = file
    return settings
