"""The ``forescale`` command line.

Exit codes (one policy for every command): 0 ok; 1 a user/config/data error, printed as
one line on stderr; 2 "changes pending" where a command promises it (``plan
--detailed-exitcode``); 3 a bug (with a traceback); 130 interrupted.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click
from rich.console import Console

from forescale.config.durations import parse_duration
from forescale.errors import ConfigError, ForescaleError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

config_option = click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Settings YAML (default: $FORESCALE_CONFIG).",
)
service_option = click.option(
    "--service", "-s", "services", multiple=True, help="Only this service (repeatable)."
)


class _Finite(click.FloatRange):
    """A float option in a range that is also a number: click's range lets ``nan`` pass
    (every comparison with it is false)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


class ChangesPending(Exception):
    """Raised to exit 2 from ``plan --detailed-exitcode``."""


def parse_now(text: str | None) -> dt.datetime:
    """``--now``: an ISO 8601 instant with an offset (``Z`` or ``-05:00``); default: the clock."""
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--now {text!r}: not an ISO 8601 time (e.g. 2014-11-26T18:00-05:00)"
        ) from None
    if when.tzinfo is None:
        raise ConfigError(
            f"--now {text!r}: give an offset (2014-11-26T18:00-05:00 or 2014-11-26T23:00Z)"
        )
    try:
        return when.astimezone(dt.UTC)
    except OverflowError:
        raise ConfigError(f"--now {text!r}: out of range") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="forescale", prog_name="forescale")
def cli() -> None:
    """Predictive capacity for Terraform: forecast demand, raise capacity before the peak."""


@cli.command()
@config_option
@click.option("--now", default=None, help="Plan as of this instant (ISO 8601 with offset).")
@service_option
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["text", "markdown", "html", "json"]),
    default="text",
    show_default=True,
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the report to FILE instead of stdout.",
)
@click.option(
    "--collect/--no-collect",
    "collect_first",
    default=True,
    show_default=True,
    help="Collect new samples before planning.",
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when a change is pending.")
@click.option(
    "--infracost-usage",
    "usage_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write an Infracost usage file: each managed resource's average instance "
    "count over the horizon (services.<name>.infracost_resource).",
)
def plan(
    config: Path | None,
    now: str | None,
    services: tuple[str, ...],
    fmt: Literal["text", "markdown", "html", "json"],
    output: Path | None,
    collect_first: bool,
    detailed_exitcode: bool,
    usage_file: Path | None,
) -> None:
    """Dry-run: forecast, plan capacity and print what would change, when and why."""
    from forescale.config.settings import load_settings
    from forescale.report.plan_text import print_plan
    from forescale.report.plan_view import build_plan_view
    from forescale.report.render import render_plan
    from forescale.store import Store
    from forescale.usecases import collect as collecting
    from forescale.usecases.context import App
    from forescale.usecases.plan import plan_all

    settings = load_settings(config)
    as_of = parse_now(now)
    store = Store.open(settings.store_url)
    try:
        if collect_first:
            _collect_warn(collecting.collect_all(settings, store, services=services))
        report = plan_all(App(settings=settings, store=store), now=as_of, services=services)
    finally:
        store.close()
    if output is not None:
        from forescale.iac_writer.files import write_atomic

        write_atomic(output, render_plan(report, fmt).encode("utf-8"))
    elif fmt == "text":
        console = Console(highlight=False, soft_wrap=False)
        if not console.is_terminal:
            console = Console(highlight=False, soft_wrap=False, width=140)
        print_plan(build_plan_view(report), console)
    else:
        sys.stdout.write(render_plan(report, fmt))
    if usage_file is not None:
        from forescale.iac_writer.files import write_atomic
        from forescale.report.infracost import infracost_usage, usage_lines

        resources = {name: settings.service(name).usage_resource for name in settings.services}
        lines, skipped = usage_lines(report, resources)
        for note in skipped:
            click.echo(f"forescale: warning: {note}", err=True)
        write_atomic(usage_file, infracost_usage(lines, report.as_of).encode("utf-8"))
    if report.failures and not report.services:
        raise ForescaleError("; ".join(f"{f.name}: {f.error}" for f in report.failures))
    if report.failures:
        raise ForescaleError(
            f"{len(report.failures)} service(s) could not be planned (see the report)"
        )
    if detailed_exitcode and report.has_changes:
        raise ChangesPending


@cli.command()
@config_option
@service_option
@click.option("--since", default=None, help="Backfill from this long ago, e.g. 30d.")
def collect(config: Path | None, services: tuple[str, ...], since: str | None) -> None:
    """Fetch new samples into the store (incremental; idempotent)."""
    from forescale.config.settings import load_settings
    from forescale.store import Store
    from forescale.usecases import collect as collecting

    settings = load_settings(config)
    start = None
    if since is not None:
        try:
            start = dt.datetime.now(dt.UTC) - parse_duration(since)
        except ValueError as exc:
            raise ConfigError(f"--since: {exc}") from None
    from rich.progress import Progress

    from forescale.usecases.context import selected

    names = selected(settings, services)
    store = Store.open(settings.store_url)
    try:
        console = Console(stderr=True)
        # not on a terminal the bar would only leave a blank line in the log
        with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
            task = bar.add_task("collecting", total=len(names))
            results = collecting.collect_all(
                settings,
                store,
                services=names,
                since=start,
                progress=lambda name: bar.update(task, advance=1, description=name),
            )
        from forescale.usecases.context import App
        from forescale.usecases.shadow import review_modes

        # shadow mode: after each collect, promote or demote by the record
        changes = review_modes(
            App(settings=settings, store=store), now=dt.datetime.now(dt.UTC), services=names
        )
    finally:
        store.close()
    for change in changes:
        click.echo(
            f"{change.service}: mode {change.from_mode or '-'} → {change.to_mode}: {change.reason}"
        )
    days = collecting.COVERAGE_WINDOW.days
    for result in results:
        if result.error:
            kept = "stored history kept" if result.last_sample else "nothing stored"
            click.echo(f"{result.service}: FAILED ({kept}): {result.error}")
            continue
        # the newest sample next to the coverage: 0 % of the last 7 days reads as "old data"
        newest = (
            "" if result.last_sample is None else f", newest {result.last_sample:%Y-%m-%d %H:%M}Z"
        )
        cov = "" if result.coverage is None else f", coverage {result.coverage:.1%} ({days} days)"
        click.echo(f"{result.service}: {result.written} samples stored{newest}{cov}")
        if result.warning:
            click.echo(f"forescale: warning: {result.service}: {result.warning}", err=True)
    failed = [r for r in results if r.error]
    if failed:  # one line: the service, the file or row, what to do
        raise ForescaleError(
            "collect failed for " + "; ".join(f"{r.service}: {r.error}" for r in failed)
        )


@cli.command()
@config_option
@service_option
@click.option("--now", default=None, help="Judge data age as of this instant (ISO 8601).")
def status(config: Path | None, services: tuple[str, ...], now: str | None) -> None:
    """Per service: stored history, coverage, data age, last collect, last forecast, last change."""
    from forescale.config.settings import load_settings
    from forescale.store import Store
    from forescale.usecases import collect as collecting

    settings = load_settings(config)
    as_of = parse_now(now)
    store = Store.open(settings.store_url)
    try:
        from forescale.usecases.context import selected

        for name in selected(settings, services):
            # coverage up to --now: data that stopped shows as missing, not as 100 %
            coverage, newest = collecting.store_coverage(
                store, name, now=as_of, grace=settings.stale_after
            )
            run = store.last_collect(name)
            forecast = store.latest_run_stamp(name)
            changes = store.list_changes(name, limit=1)
            click.echo(f"{name}:")
            if newest is None:
                click.echo("  history   no data")
            else:
                age = (
                    f"{_age(newest - as_of)} after --now"
                    if newest > as_of
                    else f"{_age(as_of - newest)} old"
                )
                window = f"over the last {collecting.COVERAGE_WINDOW.days} days"
                cov = (
                    f"coverage {coverage:.1%} {window}"
                    if coverage is not None
                    else f"coverage unknown {window} (too few samples to tell the step)"
                )
                click.echo(f"  history   newest sample {newest:%Y-%m-%d %H:%M}Z ({age}), {cov}")
            if run is not None:
                outcome = f"error: {run.error}" if run.error else f"{run.written} samples"
                click.echo(f"  collect   {run.at:%Y-%m-%d %H:%M}Z {outcome}")
            if forecast is not None:
                click.echo(
                    f"  forecast  run #{forecast.id} ({forecast.model}) as of "
                    f"{forecast.as_of:%Y-%m-%d %H:%M}Z"
                )
            if changes:
                c = changes[0]
                click.echo(
                    f"  change    #{c.id} {c.mode} {c.status}: {c.from_units}→{c.to_units} "
                    f"due {c.due_at:%Y-%m-%d %H:%M}Z"
                )
    finally:
        store.close()


def _age(delta: dt.timedelta) -> str:
    from forescale.config.durations import format_duration

    return format_duration(dt.timedelta(seconds=round(delta.total_seconds() / 60) * 60))


@cli.command("apply")
@config_option
@service_option
@click.option("--at", "at", default=None, help="Act as of this instant (ISO 8601 with offset).")
def apply_cmd(config: Path | None, services: tuple[str, ...], at: str | None) -> None:
    """Apply the step due now, if any (per service mode: plan, apply or commit)."""
    from forescale.config.settings import load_settings
    from forescale.records import NOT_APPLIED
    from forescale.store import Store
    from forescale.usecases import collect as collecting
    from forescale.usecases.apply import apply_due
    from forescale.usecases.context import App

    _interrupt_on_sigterm()
    settings = load_settings(config)
    as_of = parse_now(at)
    store = Store.open(settings.store_url)
    try:
        _collect_warn(collecting.collect_all(settings, store, services=services))
        app = App(settings=settings, store=store)
        outcomes = apply_due(app, now=as_of, services=services, trigger=_who())
    finally:
        store.close()
    failed = []
    for outcome in outcomes:
        click.echo(f"{outcome.service} [{outcome.mode}] {outcome.status}: {outcome.message}")
        if outcome.diff and outcome.status not in ("nothing-due", "conflict", "error"):
            click.echo(outcome.diff.rstrip("\n"))
        if outcome.status in NOT_APPLIED and outcome.service not in failed:
            failed.append(outcome.service)
    if failed:
        raise ForescaleError(
            f"not applied for {', '.join(failed)} (see above and `forescale history`)"
        )


def _interrupt_on_sigterm() -> None:
    """SIGTERM (systemd, Kubernetes, ``kill``) stops a CLI run the way Ctrl-C does: terraform
    is stopped gracefully and the audit record says the run was interrupted."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)


@cli.command()
@config_option
@service_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
def history(config: Path | None, services: tuple[str, ...], limit: int) -> None:
    """List the audit records of plan/apply/commit runs, newest first."""
    from forescale.config.settings import load_settings
    from forescale.store import Store

    settings = load_settings(config)
    store = Store.open(settings.store_url)
    try:
        records = []
        for name in services or (None,):
            records += store.list_changes(name, limit=limit)
    finally:
        store.close()
    for r in sorted(records, key=lambda rec: rec.id or 0, reverse=True)[:limit]:
        created = r.created_at.strftime("%Y-%m-%d %H:%M:%SZ") if r.created_at else "?"
        retry = f" (retries #{r.retry_of})" if r.retry_of is not None else ""
        click.echo(
            f"#{r.id} {created} {r.service} {r.mode} {r.status}{retry}: {r.address} "
            f"{r.from_units}→{r.to_units} due {r.due_at:%Y-%m-%d %H:%M}Z by {r.trigger}"
        )
        click.echo(f"    why: {r.reason}")
        if r.message:
            click.echo(f"    outcome: {r.message}")
        if r.plan_summary:
            click.echo(f"    plan: {r.plan_summary}")
        for reason in r.guard_reasons:
            click.echo(f"    guard: {reason}")
        if r.exit_code is not None:
            click.echo(f"    terraform exit code {r.exit_code}")
        if r.commit_sha:
            click.echo(f"    commit {r.commit_sha}")


def _collect_warn(results: list[Any]) -> None:
    """A source outage is not fatal for plan/apply: they use the stored history, which is
    then stale, so nothing scales in. Without stored history there is nothing to fall back
    on: that service's plan fails with an error that quotes the collect error, so it is
    not said twice here. Rows read but not stored as samples are counted in one line."""
    for result in results:
        if result.error and result.last_sample is not None:
            click.echo(
                f"forescale: warning: {result.service}: collect failed, using stored history "
                f"(newest sample {result.last_sample:%Y-%m-%d %H:%M}Z): {result.error}",
                err=True,
            )
        elif result.warning:
            click.echo(f"forescale: warning: {result.service}: {result.warning}", err=True)


def _who() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


@cli.command("check-config")
@config_option
def check_config(config: Path | None) -> None:
    """Validate the settings file and the events calendar(s)."""
    from forescale.config.settings import load_settings
    from forescale.usecases.context import EventsCache
    from forescale.usecases.plan import autoscaler_warnings

    settings = load_settings(config)
    events = EventsCache(timezone=settings.display_timezone)
    for name, svc in sorted(settings.services.items()):
        found = events.get(settings.events_path(svc))
        click.echo(
            f"{name}: {svc.source.type} source, {svc.min_units}-{svc.max_units} units, "
            f"{svc.iac.var_file_path}:{svc.iac.address}, {len(found)} calendar event(s)"
        )
        for warning in autoscaler_warnings(svc.iac.var_file_path):
            click.echo(f"forescale: warning: {name}: {warning}", err=True)
    click.echo("configuration OK")


def _duration_option(
    name: str, default: str, help_text: str, *, days: int = 365
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A duration option (``5m``, ``6h``, ``1d``), at most 365 days (or ``days``): every
    such option is an interval, a horizon, a spacing or a lead time, and none is meant
    beyond a year."""

    def convert(ctx: click.Context, param: click.Parameter, value: str) -> dt.timedelta:
        try:
            return parse_duration(value, maximum=dt.timedelta(days=days))
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return click.option(name, default=default, show_default=True, callback=convert, help=help_text)


@cli.command()
@config_option
@_duration_option("--collect-every", "5m", "Collect new samples this often.")
@_duration_option("--refit-every", "6h", "Refit every service's forecast this often.")
@_duration_option("--apply-every", "5m", "Apply the step due now this often.")
@_duration_option("--misfire-grace", "2m", "Still run a job this late after its time.")
@_duration_option("--stale-after", "12h", "Refit at the next collect when a forecast is older.")
@_duration_option("--standby-poll", "5s", "A standby daemon retries the leader lock this often.")
@click.option(
    "--lock-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Leader lock file (default: next to the SQLite store; PostgreSQL: advisory lock).",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--once", is_flag=True, help="Collect, refit and apply once, then exit (cron).")
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="Serve the REST API and /metrics in-process (api.bind:api.port).",
)
def daemon(
    config: Path | None,
    collect_every: dt.timedelta,
    refit_every: dt.timedelta,
    apply_every: dt.timedelta,
    misfire_grace: dt.timedelta,
    stale_after: dt.timedelta,
    standby_poll: dt.timedelta,
    lock_file: Path | None,
    log_format: str,
    once: bool,
    serve: bool,
) -> int:
    """Run collect, refit and apply on a UTC schedule; one leader per store, others standby."""

    from forescale.config.settings import load_settings
    from forescale.daemon import Daemon, DaemonConfig, configure_logging

    configure_logging(log_format)
    settings = load_settings(config)
    metrics = None
    if serve and not once:
        from prometheus_client import CollectorRegistry

        from forescale.metrics import Metrics

        metrics = Metrics(CollectorRegistry())
    runner = Daemon(
        settings,
        DaemonConfig(
            collect_every=collect_every,
            refit_every=refit_every,
            apply_every=apply_every,
            misfire_grace=misfire_grace,
            stale_after=stale_after,
            standby_poll=standby_poll,
            lock_path=lock_file,
        ),
        metrics=metrics,
        on_job=metrics.observe_job if metrics is not None else None,
    )
    if once:
        if not runner.run_once():
            raise ForescaleError("a daemon job failed (see the log above)")
        return EXIT_OK
    stop = _stop_on_signals()
    if metrics is None:
        return runner.run(stop)
    role = ["standby"]  # what /readyz reports; the daemon's on_role keeps it current
    server, shutdown, follow = _start_api(settings, metrics, stop, role=lambda: role[0])
    runner.on_reload = follow  # a reloaded settings file reaches the API (token included)

    def on_role(now: str) -> None:
        role[0] = now
        if now == "leader":
            server.retry_now()  # the old leader on this host may just have freed the port

    try:
        return runner.run(stop, on_role=on_role)
    finally:
        shutdown()


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (a graceful stop)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def _start_api(
    settings: Any,
    metrics: Any,
    stop: Any,
    *,
    role: Callable[[], str] = lambda: "api-only",
    bind: str | None = None,
    port: int | None = None,
) -> tuple[Any, Callable[[], None], Callable[[Any], None]]:
    """Serve the API in this process (its own store connection) on ``bind``:``port``
    (default ``api.bind``:``api.port``); a port that is taken is retried in the
    background (``ApiServer``). ``role()`` is what ``/readyz`` reports. Returns the
    server, a stopper, and ``follow(settings)``, which makes the API, its refreshes and
    its metrics use reloaded settings (the token and ``protect_reads`` too; the allowed
    hosts and the bind address stay until a restart)."""
    from forescale.api import ServerStatus
    from forescale.service import (
        ApiServer,
        Refresher,
        build_app,
        keep_metrics_fresh,
        reconfigure,
    )
    from forescale.store import Store
    from forescale.usecases.context import App
    from forescale.usecases.refit import refit as refit_service

    store = Store.open(settings.store_url)
    current = [App(settings=settings, store=store)]  # replaced whole by follow()

    def refit(name: str) -> int | None:
        return refit_service(current[0], name, now=dt.datetime.now(dt.UTC)).id

    refresher = Refresher(refit, store)
    host = settings.api.bind if bind is None else bind

    def status() -> ServerStatus:  # asked per /readyz request, once `server` exists
        return ServerStatus(role=role(), bind_retries=server.bind_retries)

    api = build_app(settings, store, metrics.registry, refresher, status, bind=host)
    server = ApiServer(api, host, settings.api.port if port is None else port)
    server.start()
    keep_metrics_fresh(metrics, lambda: current[0].settings, store, stop)

    def follow(fresh: Any) -> None:
        current[0] = current[0].with_settings(fresh)
        reconfigure(api, fresh)

    def shutdown() -> None:
        stop.set()
        server.stop()
        refresher.close()
        store.close()

    return server, shutdown, follow


@cli.command()
@config_option
@click.option("--bind", default=None, help="Address to bind (default: api.bind, 127.0.0.1).")
@click.option(
    "--port",
    default=None,
    type=click.IntRange(0, 65535),
    help="Default: api.port; 0 picks a free port (logged).",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def serve(config: Path | None, bind: str | None, port: int | None, log_format: str) -> None:
    """Serve the REST API and /metrics from the store (no scheduling, no applying)."""

    from prometheus_client import CollectorRegistry

    from forescale.config.settings import load_settings
    from forescale.daemon import configure_logging
    from forescale.metrics import Metrics

    configure_logging(log_format)
    settings = load_settings(config)
    metrics = Metrics(CollectorRegistry())
    stop = _stop_on_signals()
    # The server logs where it listens ("API listening on http://...") once it has bound.
    _server, shutdown, _follow = _start_api(settings, metrics, stop, bind=bind, port=port)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        shutdown()


@cli.command()
@config_option
@click.option(
    "--service", "-s", "service", default=None, help="A configured service (its stored history)."
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Backtest this CSV (timestamp,value) instead of a configured service.",
)
@click.option("--timestamp-column", default="timestamp", show_default=True)
@click.option("--value-column", default="value", show_default=True)
@click.option(
    "--timezone",
    "tz_name",
    default="UTC",
    show_default=True,
    help="Wall clock of naive CSV timestamps, daily/weekly shapes and holidays.",
)
@click.option(
    "--events",
    "events_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Events calendar (YAML/CSV).",
)
@click.option("--holidays", default=None, help="Country holidays, e.g. US.")
@_duration_option("--horizon", "24h", "Forecast this far after each cutoff.")
@click.option(
    "--folds",
    default=14,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Number of cutoffs (the last one leaves a whole horizon of data after it).",
)
@_duration_option("--spacing", "1d", "Time between cutoffs.")
@click.option(
    "--capacity-per-unit",
    type=_Finite(),
    default=None,
    help="Demand one unit serves (default: peak demand / 20, hindsight).",
)
@_duration_option("--lead-time", "15m", "Capacity is in place this long before the demand.")
@_duration_option(
    "--stabilization",
    "15m",
    "Scale in only after demand stayed lower this long.",
    days=7,  # scale_in.stabilization's bound in the settings
)
@click.option(
    "--observed-headroom",
    default=0.3,
    show_default=True,
    type=_Finite(0, 5),
    help="The observed-demand floor serves observed x (1 + this).",
)
@click.option(
    "--max-lift",
    default=1.5,  # forecaster.lift.MAX_LIFT
    show_default=True,
    type=_Finite(1, 3),
    help="While the last hour's demand ran above the forecast, lift the band ahead by "
    "their ratio, at most this, up to the recent peak (1: never).",
)
@click.option(
    "--unit-tolerance",
    default=0.02,  # forecaster.capacity.UNIT_TOLERANCE
    show_default=True,
    type=_Finite(0, 1, max_open=True),
    help="A demand at most this fraction of one unit above a whole number of units is "
    "planned at that number (0: always round up).",
)
@click.option("--min-units", default=1, show_default=True, type=click.IntRange(0, None))
@click.option("--max-units", default=100000, show_default=True, type=click.IntRange(1, None))
@click.option(
    "--interval-width",
    default=0.9,
    show_default=True,
    type=_Finite(0.01, 0.99, min_open=False),
)
@click.option(
    "--target-under",
    default=0.005,  # forecaster.accuracy.TARGET_UNDER (the CLI imports it lazily)
    show_default=True,
    type=_Finite(0.0001, 0.5),
    help="Share of recorded steps the chosen capacity may leave under-provisioned, replayed as "
    "the plan would have served them; the cheapest candidate and headroom that hold it win.",
)
@click.option(
    "--peak-allowance",
    default=1.1,  # forecaster.ceiling.PEAK_ALLOWANCE
    show_default=True,
    type=_Finite(1, 10),
    help="The credible ceiling: a forecast plans for at most the fitted window's peak x this.",
)
@click.option(
    "--max-value",
    default=None,
    type=_Finite(0, 1e12, min_open=True),
    help="The most the demand can be (e.g. 100 for a percentage); caps every forecast.",
)
@click.option(
    "--unit-price",
    default=None,
    type=_Finite(0, 1e6),
    help="What one unit costs per hour: adds cost columns (--service: its unit_price).",
)
@click.option(
    "--currency",
    default="USD",
    show_default=True,
    callback=lambda ctx, param, value: _currency(value),
    help="The currency of --unit-price (ISO 4217).",
)
@_duration_option(
    "--sim-step", "5m", "Capacity simulation step (finer than the data: interpolated)."
)
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option(
    "--schedule-out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write one CSV row per simulated step of every fold.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Fit folds in this many processes (default: CPUs).",
)
def backtest(
    config: Path | None,
    service: str | None,
    csv_path: Path | None,
    timestamp_column: str,
    value_column: str,
    tz_name: str,
    events_path: Path | None,
    holidays: str | None,
    horizon: dt.timedelta,
    folds: int,
    spacing: dt.timedelta,
    capacity_per_unit: float | None,
    lead_time: dt.timedelta,
    stabilization: dt.timedelta,
    observed_headroom: float,
    max_lift: float,
    unit_tolerance: float,
    min_units: int,
    max_units: int,
    interval_width: float,
    target_under: float,
    peak_allowance: float,
    max_value: float | None,
    unit_price: float | None,
    currency: str,
    sim_step: dt.timedelta,
    fmt: Literal["text", "json", "html"],
    output: Path | None,
    schedule_out: Path | None,
    workers: int | None,
) -> None:
    """Rolling-origin backtest: forecast accuracy and capacity vs reactive and static."""
    import contextlib
    from collections.abc import Iterator

    from forescale.usecases import backtest as usecase

    @contextlib.contextmanager
    def fold_bar(total: int) -> Iterator[Callable[[int], None]]:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"fitting {total} folds", total=total)
            yield lambda n: bar.advance(task, n)

    args = usecase.BacktestArgs(
        config=config,
        service=service,
        csv_path=csv_path,
        timestamp_column=timestamp_column,
        value_column=value_column,
        timezone=tz_name,
        events_path=events_path,
        holidays=holidays,
        horizon=horizon,
        folds=folds,
        spacing=spacing,
        capacity_per_unit=capacity_per_unit,
        lead_time=lead_time,
        stabilization=stabilization,
        observed_headroom=observed_headroom,
        max_lift=max_lift,
        unit_tolerance=unit_tolerance,
        min_units=min_units,
        max_units=max_units,
        interval_width=interval_width,
        target_under=target_under,
        sim_step=sim_step,
        workers=workers,
        peak_allowance=peak_allowance,
        max_value=max_value,
        unit_price=unit_price,
        currency=currency,
    )
    done = usecase.backtest(
        args,
        warn=lambda note: click.echo(f"forescale: warning: {note}", err=True),
        progress=fold_bar if output is None and fmt == "text" else None,
    )
    text = usecase.report(done, fmt, schedule_out=schedule_out)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    elif text:
        sys.stdout.write(text)


def _currency(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise click.BadParameter(f"{value!r} is not an ISO 4217 code like USD or EUR")
    return value


@cli.group()
def tfvars() -> None:
    """Read and edit one number in a variable file, like hcledit.

    By the file's name: a Terraform variable file (.tfvars, .tfvars.json), a Terragrunt
    unit (terragrunt.hcl: a key inside inputs) or Kubernetes YAML (.yaml/.yml: Helm values,
    a KEDA ScaledObject, an HPA; doc[Kind/name]. picks a document)."""


@tfvars.command("get")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("address")
def tfvars_get(file: Path, address: str) -> None:
    """Print the number at ADDRESS (web_min_size, capacity.web.min, spec.minReplicaCount)."""
    from forescale.iac_writer.target import file_target

    click.echo(file_target(file, address).read().literal)


@tfvars.command("set")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("address")
@click.argument("value")
@click.option("--dry-run", is_flag=True, help="Print the diff; write nothing.")
def tfvars_set(file: Path, address: str, value: str, dry_run: bool) -> None:
    """Set the number at ADDRESS, changing only its characters; print the unified diff."""
    from forescale.config.settings import MAX_UNITS
    from forescale.iac_writer.target import FileKind, file_kind, file_target

    text = value.strip()
    shown = text if len(text) <= 24 else text[:21] + "..."
    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        raise ConfigError(f"VALUE {shown} is negative: a capacity is a whole number >= 0")
    if not (text.isascii() and text.isdigit()):  # int() would take 7_0, +5 and other scripts
        raise ConfigError(f"VALUE {shown!r} is not a whole number (digits 0-9)")
    if len(text) > 20 or int(text) > MAX_UNITS:
        raise ConfigError(f"VALUE {shown} is above {MAX_UNITS:,}, the most units forescale sets")
    number = int(text)
    target = file_target(file, address)
    edit = target.propose(number)
    if file_kind(file) is FileKind.YAML:
        from forescale.iac_writer.files import read_bytes
        from forescale.iac_writer.yamlvalues import autoscaler_conflicts

        for warning in autoscaler_conflicts(read_bytes(file) or b"", filename=str(file)):
            click.echo(f"forescale: warning: {warning}", err=True)
    if not dry_run:
        target.write(edit)  # a refused write prints no diff: nothing changed
    sys.stdout.write(edit.diff)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map outcomes to the exit-code policy."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        result = cli.main(args=argv, standalone_mode=False, prog_name="forescale")
    except ChangesPending:
        return EXIT_CHANGES
    except ForescaleError as exc:
        err.print(f"forescale: error: {exc}", markup=False)
        return EXIT_ERROR
    except click.ClickException as exc:
        err.print(f"forescale: error: {exc.format_message()}", markup=False)
        return EXIT_ERROR
    except (KeyboardInterrupt, click.exceptions.Abort):
        err.print("forescale: interrupted", markup=False)
        return EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 - anything else is a bug: show it, exit 3
        traceback.print_exc()
        err.print(
            "forescale: internal error (a bug); please report it with the traceback above",
            markup=False,
        )
        return EXIT_BUG
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
