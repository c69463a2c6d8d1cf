"""Live accuracy, early refits, and the self-correcting forecaster in the pipeline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from forescale.codec import choice_json
from forescale.config.settings import load_settings
from forescale.daemon import Daemon, DaemonConfig
from forescale.live import live_accuracy
from forescale.metrics import Metrics
from forescale.store import Store
from forescale.usecases.collect import collect_all
from forescale.usecases.context import App
from forescale.usecases.plan import plan_service
from tests.fakes import forecast_run

NOW = dt.datetime(2014, 11, 26, 23, 0, tzinfo=dt.UTC)
STEP = pd.Timedelta(minutes=30)


@pytest.fixture
def store(demo_dir: Path) -> Store:
    s = Store.open(f"sqlite:///{demo_dir}/.forescale/t.db")
    yield s
    s.close()


def _save(store: Store, frame: pd.DataFrame, as_of: dt.datetime) -> int:
    return store.save_forecast_run(
        forecast_run("web", frame, at=as_of, resolution=dt.timedelta(minutes=30), model="test")
    )


def _forecast_from_actual(store: Store, start: dt.datetime, factor: float) -> pd.DataFrame:
    """A forecast for the 12 steps from ``start``: the stored actuals x ``factor``."""
    actual = store.load_samples("web", start, start + dt.timedelta(hours=6))
    yhat = actual["y"].to_numpy() * factor
    return pd.DataFrame(
        {"ds": actual["ds"], "yhat": yhat, "yhat_lower": yhat * 0.9, "yhat_upper": yhat * 1.1}
    )


def test_an_accurate_forecast_is_not_refitted_and_a_missed_one_is(
    demo_dir: Path, store: Store
) -> None:
    settings = load_settings(demo_dir / "forescale.yaml")
    collect_all(settings, store)
    service = settings.service("web")
    made = NOW - dt.timedelta(hours=6)
    _save(store, _forecast_from_actual(store, made, 1.0), made)
    good = live_accuracy(store, service, "web", now=NOW)
    assert good is not None and good.steps == 12
    assert good.error_ratio == pytest.approx(0.0, abs=1e-9)
    assert good.under_share == 0.0 and not good.refit_due and good.reason == ""

    # The next forecast expected 40 % of the demand that came: every step above its band.
    _save(store, _forecast_from_actual(store, made, 0.4), made + dt.timedelta(seconds=1))
    bad = live_accuracy(store, service, "web", now=NOW)
    assert bad is not None and bad.refit_due
    assert bad.under_share == 1.0 and bad.error_ratio == pytest.approx(0.6)
    assert "above the planned band on 100%" in bad.reason and "weighted error 60%" in bad.reason


def test_too_few_steps_say_nothing_yet(demo_dir: Path, store: Store) -> None:
    settings = load_settings(demo_dir / "forescale.yaml")
    collect_all(settings, store)
    made = NOW - dt.timedelta(hours=1)  # two 30-min steps since
    _save(store, _forecast_from_actual(store, made, 0.1), made)
    judged = live_accuracy(store, settings.service("web"), "web", now=NOW)
    assert judged is not None and judged.steps == 2 and not judged.refit_due
    assert live_accuracy(store, settings.service("web"), "web", now=made) is None


def test_the_daemon_exports_the_error_and_refits_a_missed_forecast_early(
    demo_dir: Path, store: Store
) -> None:
    settings = load_settings(demo_dir / "forescale.yaml")
    collect_all(settings, store)
    made = NOW - dt.timedelta(hours=6)
    _save(store, _forecast_from_actual(store, made, 0.5), made)
    registry = CollectorRegistry()
    daemon = Daemon(
        settings,
        DaemonConfig(lock_path=demo_dir / "lock"),
        metrics=Metrics(registry),
        clock=lambda: NOW,
    )
    assert daemon._judge_live(store) == {"web"}
    assert registry.get_sample_value(
        "forescale_forecast_error_ratio", {"service": "web"}
    ) == pytest.approx(0.5)
    assert registry.get_sample_value("forescale_early_refits_total", {"service": "web"}) == 1.0


@pytest.mark.slow
def test_the_product_forecaster_records_its_choice_and_learns_from_its_record(
    demo_dir: Path, store: Store
) -> None:
    """Two refits with real Prophet: the first has no record (primary, its own band); the
    second judges the candidates on what happened since the first and stores why."""
    settings = load_settings(demo_dir / "forescale.yaml")
    collect_all(settings, store)
    app = App(settings=settings, store=store)  # the product's candidates
    first = plan_service(app, "web", now=NOW - dt.timedelta(days=2))
    assert first.model_choice is not None
    assert first.model_choice["model"] == "ensemble" and first.model_choice["factor"] == 1.0
    assert "record too short" in first.model_choice["reason"]
    run = store.forecast_run(first.forecast_run_id or -1, points=False)
    assert run is not None
    models = {"ensemble", "prophet", "seasonal_naive", "recent_peak", "reactive"}
    assert set(run.candidates) == models

    second = plan_service(app, "web", now=NOW)
    choice = second.model_choice
    assert choice is not None and choice["evidence"]
    steps = {e["model"]: e["steps"] for e in choice["evidence"]}
    # The first run's candidates are kept for their first 24 h: 48 half-hour steps judged.
    assert steps == dict.fromkeys(models, 48)
    assert choice["model"] in steps and choice["factor"] >= 1.0
    assert any(n.startswith("model: ") for n in second.forecast.notes)
    # The stored run carries the same choice, for the API.
    stored = store.forecast_run(second.forecast_run_id or -1, points=False)
    assert stored is not None and stored.choice is not None
    assert choice_json(stored.choice) == choice
    assert np.isfinite(second.forecast.frame["yhat_upper"]).all()


@pytest.mark.slow
def test_the_daemon_refits_many_services_in_a_process_pool_with_progress(
    demo_dir: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Two services fitted by two worker processes; each gets its own stored forecast
    with the choice made from its own record, and progress is logged."""
    from forescale.daemon import refit_job

    text = (demo_dir / "forescale.yaml").read_text()
    web = text[text.index("  web:\n") :]
    twin = web.replace("  web:\n", "  shop:\n", 1).replace(
        "address: capacity.web.min_size", "address: capacity.worker.min_size"
    )
    (demo_dir / "forescale.yaml").write_text(
        text + "\n" + twin + "\nfit: {executor: process, workers: 2}\n"
    )
    settings = load_settings(demo_dir / "forescale.yaml")
    assert sorted(settings.services) == ["shop", "web"] and settings.fit.workers == 2
    collect_all(settings, store)
    caplog.set_level("INFO", logger="forescale.refit")
    outcome = refit_job(App(settings=settings, store=store), clock=lambda: NOW)
    assert outcome == {"shop": None, "web": None}
    for name in ("shop", "web"):
        latest = store.latest_forecast(name, points=False)
        assert latest is not None and latest.choice is not None
        assert latest.choice.model == "ensemble"
    assert "refit progress: 2/2 services fitted" in caplog.text


@pytest.mark.slow
def test_the_api_keeps_answering_while_a_pool_refit_runs(demo_dir: Path, store: Store) -> None:
    """A refit of two services in the process pool runs in one thread while the API
    (uvicorn, in-process as in the daemon) is polled: it answers throughout."""
    import socket
    import threading
    import time

    import httpx

    from forescale.daemon import refit_job
    from forescale.service import ApiServer, build_app

    text = (demo_dir / "forescale.yaml").read_text()
    twin = (
        text[text.index("  web:\n") :]
        .replace("  web:\n", "  shop:\n", 1)
        .replace("address: capacity.web.min_size", "address: capacity.worker.min_size")
    )
    (demo_dir / "forescale.yaml").write_text(
        text + "\n" + twin + "\nfit: {executor: process, workers: 2}\n"
    )
    settings = load_settings(demo_dir / "forescale.yaml")
    collect_all(settings, store)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = build_app(settings, store, CollectorRegistry(), refresh=lambda name: "0")
    server = ApiServer(app, "127.0.0.1", port)
    server.start()
    outcome: dict[str, str | None] = {}
    refit = threading.Thread(
        target=lambda: outcome.update(
            refit_job(App(settings=settings, store=store), clock=lambda: NOW)
        )
    )
    latencies: list[float] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # wait for uvicorn
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            refit.start()
            while refit.is_alive() and len(latencies) < 2000:
                started = time.monotonic()
                response = client.get("/v1/services")
                latencies.append(time.monotonic() - started)
                assert response.status_code == 200
                time.sleep(0.05)
            refit.join(120)
    finally:
        server.stop()
    assert outcome == {"shop": None, "web": None}
    assert len(latencies) >= 10  # the refit took a while and the API was asked throughout
    # generous: the machine's two cores also run the two fitting workers
    assert max(latencies) < 5.0, sorted(latencies)[-5:]
