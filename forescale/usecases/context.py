"""What every use case needs, built once: :class:`App`, and the mapping of a service's
settings to the core's records (forecast settings, capacity policy, IaC target).

The candidate models are injected (:class:`forescale.forecaster.candidates.CandidateSet`):
the product fits :data:`~forescale.forecaster.candidates.PRODUCT`; tests give cheap
stand-ins and run the product's own path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forescale.collectors.series import infer_step, regularize
from forescale.config.settings import ServiceSettings, Settings
from forescale.errors import DataError
from forescale.forecaster import candidates as candidates_module
from forescale.forecaster.candidates import CandidateSet
from forescale.forecaster.cost import Price
from forescale.forecaster.events import parse_events
from forescale.forecaster.types import CapacityPolicy, Event, ForecastSettings, StepLimit
from forescale.iac_writer.target import Target, target_for
from forescale.iac_writer.terraform import CommandTimeouts, TerraformRunner
from forescale.pricing import ClientFactory, pricing_client, resolve
from forescale.records import ModeChange
from forescale.regular_files import Refusal, read_regular, words
from forescale.store import Store

__all__ = [
    "App",
    "EventsCache",
    "RunnerFactory",
    "capacity_policy",
    "default_runner",
    "forecast_settings",
    "read_events",
    "selected",
    "service_target",
]

RunnerFactory = Callable[[ServiceSettings, Path], TerraformRunner]


def default_runner(service: ServiceSettings, working_dir: Path) -> TerraformRunner:
    """A runner configured from the service's ``iac.terraform`` settings."""
    tf = service.iac.terraform
    return TerraformRunner(
        working_dir,
        binary=tf.binary,
        var_files=tuple(str(p) for p in tf.var_files),
        lock_timeout_seconds=tf.lock_timeout.total_seconds(),
        timeouts=CommandTimeouts(
            plan=max(tf.plan_timeout.total_seconds(), tf.lock_timeout.total_seconds() + 60),
            apply=max(tf.apply_timeout.total_seconds(), tf.lock_timeout.total_seconds() + 60),
        ),
        plugin_dirs=tuple(str(p) for p in tf.plugin_dirs),
        backend_config=tuple(tf.backend_config),
        # forescale's own file goes last: a -var-file overrides *.auto.tfvars*
        scaler_var_file=(
            None if service.iac.owned_var_file is None else str(service.iac.owned_var_file)
        ),
    )


@dataclass
class EventsCache:
    """Each events file parsed once, again only when it changed (size or mtime)."""

    timezone: str
    loaded: dict[Path, tuple[tuple[int, int], tuple[Event, ...]]] = field(default_factory=dict)

    def get(self, path: Path | None) -> tuple[Event, ...]:
        if path is None:
            return ()
        try:
            st = path.stat()
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = (-1, -1)  # read_events says what is wrong
        cached = self.loaded.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, read_events(path, self.timezone))
            self.loaded[path] = cached
        return cached[1]


MAX_EVENTS_BYTES = 16 * 1024 * 1024  # a calendar of ~200,000 events


def read_events(path: Path, timezone: str) -> tuple[Event, ...]:
    """Parse an events calendar file (naive times in ``timezone``)."""
    got = read_regular(path, limit=MAX_EVENTS_BYTES)
    if isinstance(got, Refusal):
        raise DataError(f"{path}: cannot read events file: {words(got, limit=MAX_EVENTS_BYTES)}")
    try:
        text = got.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 (invalid byte at offset {exc.start}); save it as UTF-8"
        ) from None
    return parse_events(text, source=str(path), timezone=timezone)


@dataclass
class App:
    """Settings, the store, the candidate models and the Terraform runner of one process.

    Long-lived (the daemon keeps one; a settings reload makes a new one with
    :meth:`with_settings`)."""

    settings: Settings
    store: Store
    candidates: CandidateSet = field(default_factory=lambda: candidates_module.PRODUCT)
    runner_factory: RunnerFactory = default_runner
    pricing_client: ClientFactory = pricing_client  # the AWS Pricing API (``pricing:``)
    events: EventsCache = field(init=False)

    def __post_init__(self) -> None:
        self.events = EventsCache(timezone=self.settings.display_timezone)

    def with_settings(self, settings: Settings) -> App:
        return App(
            settings=settings,
            store=self.store,
            candidates=self.candidates,
            runner_factory=self.runner_factory,
            pricing_client=self.pricing_client,
        )

    def service(self, name: str) -> ServiceSettings:
        return self.settings.service(name)

    def events_of(self, service: ServiceSettings) -> tuple[Event, ...]:
        return self.events.get(self.settings.events_path(service))

    def mode_of(self, name: str) -> str:
        """The mode ``name`` acts in now (shadow mode's promotion included)."""
        return effective_mode(self.settings, self.store, name)

    def price_of(self, service: ServiceSettings, *, now: dt.datetime) -> Price | None:
        """What one unit of ``service`` costs per hour (configured, or looked up once and
        stored); None when no price is configured. A failed lookup is a PricingError."""
        return resolve(service, self.store, now=now, client_factory=self.pricing_client)

    def history(self, name: str, *, now: dt.datetime) -> pd.DataFrame:
        """The history a fit of ``name`` as of ``now`` uses: the stored samples of the
        fitted window (``forecast.max_history`` and a day) on their own regular grid."""
        fsettings = forecast_settings(self.settings, self.service(name))
        start = now - fsettings.max_history - dt.timedelta(days=1)
        return load_history(self.store, name, start, now)


def effective_mode(settings: Settings, store: Store, name: str) -> str:
    """The mode ``name`` acts in: its configured mode, except that a ``mode: shadow``
    service acts in its ``promote.to`` mode while its newest mode change (the audit of
    :mod:`forescale.usecases.shadow`) says it was promoted to that."""
    service = settings.service(name)
    configured = settings.mode_of(service)
    if configured != "shadow":
        return configured
    return shadow_mode_after(settings, service, store.latest_mode_change(name))


def shadow_mode_after(
    settings: Settings, service: ServiceSettings, latest: ModeChange | None
) -> str:
    """The mode a ``mode: shadow`` service acts in after its newest mode change
    ``latest``: its ``promote.to`` mode when that change promoted it, else shadow."""
    promoted = settings.promote_of(service).to
    return promoted if latest is not None and latest.to_mode == promoted else "shadow"


def selected(settings: Settings, names: Sequence[str] | None) -> list[str]:
    """The services named (each checked), or all of them, sorted."""
    if not names:
        return sorted(settings.services)
    for name in names:
        settings.service(name)  # raises a ConfigError naming the known services
    return list(names)


def forecast_settings(settings: Settings, service: ServiceSettings) -> ForecastSettings:
    """Map a service's config to the forecaster's pure settings record."""
    fc = service.forecast
    return ForecastSettings(
        horizon=fc.horizon,
        interval_width=fc.interval_width,
        country_holidays=fc.country_holidays,
        timezone=settings.forecast_timezone(service),
        daily_seasonality=fc.seasonalities.daily,
        weekly_seasonality=fc.seasonalities.weekly,
        weekend_daily_split=fc.seasonalities.weekend_daily_split,
        yearly_seasonality=fc.seasonalities.yearly,
        business_hours=fc.business_hours,
        resolution=fc.resolution,
        max_points=fc.max_points,
        max_history=fc.max_history,
        log_transform=fc.log_transform,
        uncertainty_samples=fc.uncertainty_samples,
    )


def capacity_policy(service: ServiceSettings) -> CapacityPolicy:
    """Map a service's config to the planner's policy record."""
    return CapacityPolicy(
        capacity_per_unit=service.capacity_per_unit,
        min_units=service.min_units,
        max_units=service.max_units,
        max_step_up=StepLimit(units=service.max_step_up.units, percent=service.max_step_up.percent),
        max_step_down=StepLimit(
            units=service.max_step_down.units, percent=service.max_step_down.percent
        ),
        step_period=service.step_period,
        lead_time=service.lead_time,
        observed_headroom=service.observed_headroom,
        max_lift=service.max_lift,
        scale_in=service.scale_in.policy,
        stabilization=service.scale_in.stabilization,
        scale_in_tolerance=service.scale_in.tolerance,
        unit_tolerance=service.unit_tolerance,
    )


def service_target(service: ServiceSettings, *, now: dt.datetime | None = None) -> Target:
    """The managed number of ``service``: in place, in forescale's auto var file, or the
    schedule forescale writes (judged at ``now``, default the clock) - the one place that
    looks at ``iac.write``."""
    iac = service.iac
    _refuse_leftovers(service)
    if iac.write == "schedule":
        from forescale.iac_writer.schedule import ScheduleTarget
        from forescale.iac_writer.target import TfvarsTarget

        return ScheduleTarget(
            iac.schedule_path,
            iac.schedule.variable,
            iac.schedule.fields,
            now=now or dt.datetime.now(dt.UTC),
            fallback=TfvarsTarget(iac.var_file_path, iac.address),
        )
    if iac.addresses is not None:
        from forescale.iac_writer.target import MultiTarget

        return MultiTarget(iac.var_file_path, iac.addresses.roles(), max_base=iac.max_base)
    return target_for(
        write=iac.write,
        var_file=iac.var_file_path,
        auto_tfvars_file=iac.auto_tfvars_path,
        address=iac.address,
    )


def _refuse_leftovers(service: ServiceSettings) -> None:
    """A file forescale generates for another ``iac.write`` still in the working dir: its
    auto tfvars file overrides the variable edited in place, and a schedule file's actions
    keep running. Either makes what forescale plans from differ from what Terraform
    applies (a switch of ``iac.write`` leaves the old file behind)."""
    import json

    from forescale.errors import TfvarsTargetError

    iac = service.iac
    variable = iac.address.split(".")[0]
    auto = iac.auto_tfvars_path
    if iac.write != "auto_tfvars" and auto.is_file():
        try:
            held = json.loads(auto.read_bytes() or b"{}")
        except (ValueError, OSError):
            held = None
        if isinstance(held, dict) and variable in held:
            raise TfvarsTargetError(
                f"{auto} sets {variable}, overriding the value forescale manages (left from "
                "iac.write: auto_tfvars?); delete it, or set the value it holds in place"
            )
    if iac.write != "schedule" and iac.schedule_path.is_file():
        raise TfvarsTargetError(
            f"{iac.schedule_path} still holds scheduled actions (left from iac.write: "
            "schedule?), which would keep changing capacity; delete it and apply, then "
            "forescale manages the value in place"
        )


def load_history(store: Store, name: str, start: dt.datetime, now: dt.datetime) -> pd.DataFrame:
    """The stored samples of ``name`` in ``[start, now]`` on their grid. Fewer than two is
    a DataError saying what is stored, why it is not enough and what to do (the caller
    names the service: the message does not)."""
    stored = store.load_samples(name, start, now)
    if len(stored) >= 2:
        return regularize(stored, infer_step(stored["ds"]))
    from forescale.config.durations import format_duration

    newest = store.last_sample_time(name)
    window = (
        f"the {format_duration(now - start)} before {now:%Y-%m-%d %H:%M}Z that the forecast "
        "reads (forecast.max_history + 1 day)"
    )
    if newest is None:
        problem = "no stored samples"
        todo = "run `forescale collect` first or check the source"
    elif newest < start:
        problem = f"the newest stored sample is at {newest:%Y-%m-%d %H:%M}Z, older than {window}"
        todo = (
            "collect recent data (`forescale collect`), raise forecast.max_history, or plan "
            "with --now nearer that sample"
        )
    elif newest > now:
        problem = f"{len(stored)} stored sample(s) in {window}; at least 2 are needed"
        todo = f"the stored history goes on to {newest:%Y-%m-%d %H:%M}Z: plan with a later --now"
    else:
        problem = f"{len(stored)} stored sample(s) in {window}; at least 2 are needed"
        todo = "collect more history (`forescale collect`)"
    run = store.last_collect(name)
    if run is not None and run.error:
        todo = f"the last collect ({run.at:%Y-%m-%d %H:%M}Z) failed: {run.error}"
    raise DataError(f"{problem}; {todo}")
