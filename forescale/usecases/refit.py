"""Refit: fit the candidates, choose by their record, store a forecast run.

A refit never touches Terraform or the variable files: a broken tfvars file of one service
cannot stop any service's forecast. Steps, for one service as of ``now``:

1. the history of the fitted window (:meth:`App.history`);
2. the candidates fitted side by side (the app's
   :class:`~forescale.forecaster.candidates.CandidateSet`;
   in a worker process for many services, see :func:`refit_all`);
3. live accuracy of the forecast in force (:mod:`forescale.live`) and the record of every
   candidate over ``forecast.record_window`` (:func:`forescale.forecaster.candidates.live_record`);
4. the choice (:func:`forescale.forecaster.decision.choose`): model and headroom factor,
   capped at the credible ceiling (:mod:`forescale.forecaster.ceiling`);
5. one :class:`~forescale.records.ForecastRun` stored, with the choice, the live judgement
   and each candidate's first day (the next refit's record).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd

from forescale.errors import ForescaleError
from forescale.forecaster.accuracy import Floor, Serving
from forescale.forecaster.candidates import CandidateSet, Fitted, compact, live_record
from forescale.forecaster.ceiling import credible_ceiling
from forescale.forecaster.decision import choose
from forescale.forecaster.types import Event, ForecastSettings
from forescale.records import ForecastRun, LiveJudgement
from forescale.usecases.context import App, capacity_policy, forecast_settings, selected

__all__ = ["FitJob", "fit_job", "refit", "refit_all", "run_fit_job"]

log = logging.getLogger("forescale.refit")


@dataclass(frozen=True, slots=True)
class FitJob:
    """One service's fit, ready for a worker process (history loaded, settings pure)."""

    name: str
    history: pd.DataFrame
    events: tuple[Event, ...]
    settings: ForecastSettings
    now: dt.datetime
    min_history: dt.timedelta
    models: tuple[str, ...]
    candidates: CandidateSet


def fit_job(
    app: App, name: str, *, now: dt.datetime, history: pd.DataFrame | None = None
) -> FitJob:
    service = app.service(name)
    return FitJob(
        name=name,
        history=app.history(name, now=now) if history is None else history,
        events=app.events_of(service),
        settings=forecast_settings(app.settings, service),
        now=now,
        min_history=app.settings.min_history,
        models=tuple(service.forecast.models),
        candidates=app.candidates,
    )


def run_fit_job(job: FitJob) -> Fitted:
    """Fit one service's candidates (top level: worker processes run it)."""
    return job.candidates.fit(
        job.history,
        events=job.events,
        settings=job.settings,
        now=job.now,
        min_history=job.min_history,
        models=job.models,
    )


def refit(
    app: App,
    name: str,
    *,
    now: dt.datetime,
    history: pd.DataFrame | None = None,
    fitted: Fitted | None = None,
) -> ForecastRun:
    """Fit (unless ``fitted`` is given), choose by the record, store and return the run."""
    from forescale.live import live_accuracy

    service = app.service(name)
    job = fit_job(app, name, now=now, history=history)
    fitted = fitted if fitted is not None else run_fit_job(job)
    fc = service.forecast
    live = live_accuracy(app.store, service, name, now=now)
    runs = app.store.candidate_runs(name, now - fc.record_window - job.settings.horizon)
    record = live_record(runs, job.history, now=now, window=fc.record_window)
    forecast, choice = choose(
        fitted,
        record,
        target_under=fc.target_under,
        max_factor=fc.max_band_factor,
        floor=Floor(headroom=service.observed_headroom),
        serving=Serving.of(capacity_policy(service)),
        ceiling=credible_ceiling(
            job.history, allowance=fc.peak_allowance, max_value=service.source.demand_max()
        ),
    )
    judged = None
    if live is not None:
        judged = LiveJudgement(
            run_id=live.run_id,
            steps=live.steps,
            error_ratio=live.error_ratio if math.isfinite(live.error_ratio) else None,
            under_share=live.under_share if math.isfinite(live.under_share) else None,
            refit_due=live.refit_due,
            reason=live.reason,
        )
        if live.refit_due:
            forecast = forecast.noted(
                f"refitted early: the previous forecast (run #{live.run_id}) missed - "
                f"{live.reason}; the new headroom comes from the record that holds those misses"
            )
    run = ForecastRun.of(
        name,
        forecast,
        created_at=now,
        choice=choice,
        live=judged,
        candidates=compact(fitted),
        candidate_errors=fitted.errors,
    )
    return replace(run, id=app.store.save_forecast_run(run))


def refit_all(
    app: App, *, now: dt.datetime, services: Sequence[str] | None = None
) -> dict[str, str | None]:
    """Refit each selected service; returns ``{service: error or None}``.

    A failure keeps the service's last good forecast and is logged; the others still
    refit. With more than one service and ``fit.executor`` other than ``serial``, the fits
    run in the configured pool (process or Dask), with progress logged every 10 %."""
    names = selected(app.settings, services)
    outcome: dict[str, str | None] = {}
    fitted: dict[str, Fitted] = {}
    histories: dict[str, pd.DataFrame] = {}
    if len(names) > 1 and app.settings.fit.executor != "serial":
        fitted = _fit_in_pool(app, names, now=now, outcome=outcome, histories=histories)
    for name in names:
        if outcome.get(name):
            continue
        try:
            run = refit(app, name, now=now, history=histories.get(name), fitted=fitted.get(name))
        except ForescaleError as exc:
            outcome[name] = str(exc)
            log.error(
                "refit failed for %s (last good forecast kept): %s",
                name,
                exc,
                extra={"service": name},
            )
        else:
            outcome[name] = None
            log.info(
                "refitted %s: forecast run #%s (%s)",
                name,
                run.id,
                run.model,
                extra={"service": name, "forecast_run_id": run.id},
            )
    return outcome


def _fit_in_pool(
    app: App,
    names: Sequence[str],
    *,
    now: dt.datetime,
    outcome: dict[str, str | None],
    histories: dict[str, pd.DataFrame],
) -> dict[str, Fitted]:
    """Fit the candidates of ``names`` in the configured executor; a service whose history
    cannot be read or whose worker failed gets its error in ``outcome``."""
    from forescale.executor import ExecutorSettings, FitExecutor

    jobs: list[FitJob] = []
    for name in names:
        try:
            job = fit_job(app, name, now=now)
        except ForescaleError as exc:
            outcome[name] = str(exc)
            log.error("refit failed for %s (last good forecast kept): %s", name, exc)
        else:
            jobs.append(job)
            histories[name] = job.history
    cfg = app.settings.fit
    fitted: dict[str, Fitted] = {}
    started = time.monotonic()
    with FitExecutor(
        ExecutorSettings(
            kind=cfg.executor,
            workers=cfg.workers,
            scheduler_address=cfg.scheduler_address,
            preload=("prophet",),
        )
    ) as pool:
        for done, result in enumerate(pool.map_unordered(run_fit_job, jobs), 1):
            job = jobs[result.index]
            if result.error is not None:
                outcome[job.name] = f"fit failed: {result.error}"
                log.error(
                    "refit failed for %s (last good forecast kept): %s", job.name, result.error
                )
            elif result.value is not None:
                fitted[job.name] = result.value
            if done % max(1, len(jobs) // 10) == 0 or done == len(jobs):
                log.info(
                    "refit progress: %d/%d services fitted in %.1f s",
                    done,
                    len(jobs),
                    time.monotonic() - started,
                    extra={"done": done, "total": len(jobs)},
                )
    return fitted
