from __future__ import annotations

import csv
import datetime as dt
import io
import math
import queue
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from schemathesis.specs.openapi.checks import positive_data_acceptance

from forescale.api import ApiConfig, RefreshQueue, ServerStatus, Submitted, _jsonable, create_app
from forescale.codec import choice_from_json
from forescale.config.settings import Settings, load_settings
from forescale.errors import DataError
from forescale.metrics import Metrics
from forescale.records import ChangeRecord
from forescale.service import Refresher
from forescale.store import Store
from tests.fakes import forecast_run

with warnings.catch_warnings():
    # starlette asks for the `httpx2` fork; plain httpx is what is installed and works.
    warnings.filterwarnings("ignore", message=r".*install `httpx2` instead", category=Warning)
    from fastapi.testclient import TestClient

NOW = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

SETTINGS_YAML = """\
store_url: sqlite:///store/forescale.db
services:
  web:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 10
    min_units: 2
    max_units: 20
    lead_time: 0s
    iac: {working_dir: tf, address: web_min_size}
  api:
    mode: plan
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 10
    min_units: 1
    max_units: 5
    iac: {working_dir: missing, address: api_min_size}
"""


CHOICE = {
    "model": "seasonal_naive",
    "basis": "point",
    "factor": 1.25,
    "reason": "seasonal_naive: the cheapest headroom that held on the last 96 steps",
    "floor_headroom": 0.1,
    "evidence": [
        {
            "model": "ensemble",
            "steps": 96,
            "smape": 12.5,
            "under_share": 0.1,
            "basis": "band",
            "factor": 1.5,
            "under_share_widened": 0.01,
            "provisioned_ratio": 1.6,
            "floor_headroom": 0.3,
        },
        {
            "model": "seasonal_naive",
            "steps": 96,
            "smape": None,
            "under_share": 0.2,
            "basis": "point",
            "factor": 1.25,
            "under_share_widened": 0.02,
            "provisioned_ratio": 1.3,
            "floor_headroom": 0.1,
        },
    ],
}


def _settings(tmp_path: Path) -> Settings:
    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "terraform.tfvars").write_text("# capacity\nweb_min_size = 4\n")
    (tmp_path / "demand.csv").write_text("timestamp,value\n2024-03-01T00:00:00Z,1\n")
    path = tmp_path / "forescale.yaml"
    path.write_text(SETTINGS_YAML)
    return load_settings(path)


def _fill(store: Store) -> dict[str, int]:
    """Two hours of observed demand (40 req/s), a forecast rising to 100 req/s at 14:00,
    and three change records. Returns the ids."""
    ds = pd.date_range(NOW - dt.timedelta(hours=2), NOW, freq="5min")
    store.upsert_samples("web", pd.DataFrame({"ds": ds, "y": [40.0] * len(ds)}))
    future = pd.date_range(NOW, periods=24, freq="15min")
    yhat = [40.0 if t < NOW + dt.timedelta(hours=2) else 100.0 for t in future]
    frame = pd.DataFrame(
        {
            "ds": future,
            "yhat": yhat,
            "yhat_lower": [y * 0.8 for y in yhat],
            "yhat_upper": [y * 1.1 for y in yhat],
            "weekly": [0.1] * len(future),
        }
    )
    frame.loc[3, "weekly"] = math.nan  # a component the store holds as NaN -> null
    run_id = store.save_forecast_run(
        forecast_run(
            "web",
            frame,
            at=NOW,
            resolution=dt.timedelta(minutes=15),
            components=("weekly",),
            notes=("a note",),
            choice=choice_from_json(CHOICE),
        )
    )
    store.record_collect("web", at=NOW, written=25, coverage=1.0, last_sample=NOW, error=None)
    ids = {"forecast": run_id}
    for i, status in enumerate(("applied", "planned", "intent")):
        ids[status] = store.record_change(
            ChangeRecord(
                service="web",
                forecast_run_id=run_id,
                due_at=NOW + dt.timedelta(hours=i),
                var_file="tf/terraform.tfvars",
                address="web_min_size",
                from_units=4,
                to_units=5 + i,
                direction="raise",
                reason=f"reason {i}",
                mode="apply",
                status=status,
                diff=f"-web_min_size = 4\n+web_min_size = {5 + i}\n",
                plan_summary="1 to update",
            ),
            created_at=NOW + dt.timedelta(minutes=i),
        )
    return ids


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Settings, Store, dict[str, int]]]:
    settings = _settings(tmp_path)
    store = Store.open(settings.store_url)
    ids = _fill(store)
    yield settings, store, ids
    store.close()


AppFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(env: tuple[Settings, Store, dict[str, int]]) -> Iterator[AppFactory]:
    settings, store, _ = env
    clients: list[TestClient] = []

    def make(
        *,
        config: ApiConfig | None = None,
        refresh: RefreshQueue | None = None,
        store_: Store | None = None,
        settings_: Settings | None = None,
        registry: CollectorRegistry | None = None,
        status: Callable[[], ServerStatus] | None = None,
        raise_server_exceptions: bool = True,
        base_url: str = "http://localhost",
    ) -> TestClient:
        app = create_app(
            settings=settings_ or settings,
            store=store_ or store,
            config=config or ApiConfig(token=TOKEN),
            registry=registry or CollectorRegistry(),
            refresh=refresh,
            clock=lambda: NOW + dt.timedelta(minutes=1),
            status=status,
        )
        client = TestClient(app, raise_server_exceptions=raise_server_exceptions, base_url=base_url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: AppFactory) -> TestClient:
    return make_client()


@pytest.fixture
def ids(env: tuple[Settings, Store, dict[str, int]]) -> dict[str, int]:
    return env[2]


def _error_type(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["message"]
    return str(body["error"]["type"])


class Gate:
    """A refit that blocks until ``release`` is set: ``started`` gets each service it was
    called for, ``calls`` lists them; it returns ``result`` or raises ``error``."""

    def __init__(self, result: int | None = None, error: Exception | None = None) -> None:
        self.result = result
        self.error = error
        self.release = threading.Event()
        self.started: queue.Queue[str] = queue.Queue()
        self.calls: list[str] = []

    def __call__(self, name: str) -> int | None:
        self.calls.append(name)
        self.started.put(name)
        if not self.release.wait(30):
            raise RuntimeError("the test never released the refit")
        if self.error is not None:
            raise self.error
        return self.result


RefresherFactory = Callable[..., Refresher]


@pytest.fixture
def refreshers(env: tuple[Settings, Store, dict[str, int]]) -> Iterator[RefresherFactory]:
    """Real refreshers on the test store; every gate is released and every refresher
    closed at the end, even when a test failed."""
    _, store, _ = env
    made: list[tuple[Gate, Refresher]] = []

    def make(gate: Gate, max_queued: int = 32) -> Refresher:
        refresher = Refresher(gate, store, max_queued=max_queued, clock=lambda: NOW)
        made.append((gate, refresher))
        return refresher

    yield make
    for gate, refresher in made:
        gate.release.set()
        refresher.close()


def _released(result: int | None = None) -> Gate:
    gate = Gate(result)
    gate.release.set()
    return gate


# -- health ---------------------------------------------------------------------------
def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "role": "api-only", "bind_retries": 0}


def test_readyz_reports_role_and_bind_retries(make_client: AppFactory) -> None:
    # A standby answers reads from the shared store: ready, with its role said
    # (deploy/helm/forescale/README.md says why).
    now = {"status": ServerStatus(role="standby", bind_retries=3)}
    client = make_client(status=lambda: now["status"])
    standby = client.get("/readyz")
    assert standby.status_code == 200
    assert standby.json() == {"status": "ready", "role": "standby", "bind_retries": 3}
    now["status"] = ServerStatus(role="leader", bind_retries=3)
    assert client.get("/readyz").json()["role"] == "leader"
    now["status"] = ServerStatus(role="stopping", bind_retries=3)
    stopping = client.get("/readyz")
    assert stopping.status_code == 503 and _error_type(stopping) == "Stopping"


def test_readyz_503_when_store_unreachable(make_client: AppFactory, tmp_path: Path) -> None:
    # A SQLite file in a directory that does not exist cannot be opened.
    broken = Store(sa.create_engine(f"sqlite:///{tmp_path}/nowhere/x.db"))
    response = make_client(store_=broken).get("/readyz")
    assert response.status_code == 503
    assert _error_type(response) == "StoreError"
    # Reads that need the store map StoreError to 503 too.
    assert make_client(store_=broken).get("/v1/runs").status_code == 503
    broken.close()


# -- services -------------------------------------------------------------------------
def test_services_list_state(client: TestClient, ids: dict[str, int]) -> None:
    body = client.get("/v1/services").json()
    by_name = {s["name"]: s for s in body["services"]}
    assert sorted(by_name) == ["api", "web"]
    web = by_name["web"]
    assert web["mode"] == "dry-run" and web["source"] == "csv"
    assert web["last_collect"]["at"] == "2024-03-01T12:00:00Z"
    assert web["last_collect"]["error"] is None
    assert web["coverage"] == pytest.approx(1.0)
    assert web["last_sample"] == "2024-03-01T12:00:00Z"
    assert web["last_forecast_run_id"] == ids["forecast"]
    assert web["last_forecast_as_of"] == "2024-03-01T12:00:00Z"
    assert web["last_change_id"] == ids["intent"] and web["last_change_status"] == "intent"
    api = by_name["api"]
    assert api["mode"] == "plan"
    assert api["last_collect"] is None and api["last_forecast_run_id"] is None
    assert api["last_change_status"] is None


# -- forecast -------------------------------------------------------------------------
def test_forecast_json_with_bands_components_and_null_for_nan(
    client: TestClient, ids: dict[str, int]
) -> None:
    response = client.get("/v1/services/web/forecast")
    assert response.status_code == 200
    assert "NaN" not in response.text
    body = response.json()
    assert body["run_id"] == ids["forecast"] and body["model"] == "fake"
    assert body["resolution_seconds"] == 900 and body["components"] == ["weekly"]
    assert body["notes"] == ["a note"]
    assert body["choice"] == CHOICE and body["live"] is None
    points = body["points"]
    assert len(points) == 24
    assert points[0] == {
        "ds": "2024-03-01T12:00:00Z",
        "yhat": 40.0,
        "yhat_lower": 32.0,
        "yhat_upper": pytest.approx(44.0),
        "components": {"weekly": 0.1},
    }
    assert points[3]["components"] == {"weekly": None}


def test_forecast_window_and_csv(client: TestClient) -> None:
    params = {"start": "2024-03-01T13:00:00Z", "end": "2024-03-01T14:00:00+00:00"}
    body = client.get("/v1/services/web/forecast", params=params).json()
    assert [p["ds"] for p in body["points"]] == [
        "2024-03-01T13:00:00Z",
        "2024-03-01T13:15:00Z",
        "2024-03-01T13:30:00Z",
        "2024-03-01T13:45:00Z",
        "2024-03-01T14:00:00Z",
    ]
    response = client.get("/v1/services/web/forecast", params={**params, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["ds", "yhat", "yhat_lower", "yhat_upper", "weekly"]
    assert len(rows) == 6
    assert rows[1][0] == "2024-03-01T13:00:00Z" and float(rows[1][1]) == 40.0
    assert rows[-1][0] == "2024-03-01T14:00:00Z" and float(rows[-1][1]) == 100.0
    # the NaN component is an empty cell
    full = list(csv.reader(io.StringIO(client.get("/v1/services/web/forecast?format=csv").text)))
    assert full[4][4] == "" and full[5][4] == "0.1"


@pytest.mark.parametrize(
    "query",
    [
        "start=2024-03-02T00:00:00Z&end=2024-03-01T00:00:00Z",  # start after end
        "start=yesterday",
        "start=NaN",
        "end=inf",
        "start=2024-03-01T00:00:00",  # naive
        "format=xml",
    ],
)
def test_forecast_bad_query_is_422(client: TestClient, query: str) -> None:
    response = client.get(f"/v1/services/web/forecast?{query}")
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "ValidationError"


def test_forecast_404s(client: TestClient) -> None:
    unknown = client.get("/v1/services/nope/forecast")
    assert unknown.status_code == 404 and _error_type(unknown) == "ConfigError"
    assert "web" in unknown.json()["error"]["message"]  # names the configured services
    none_yet = client.get("/v1/services/api/forecast")
    assert none_yet.status_code == 404 and _error_type(none_yet) == "NotFound"


# -- schedule -------------------------------------------------------------------------
def test_schedule_recomputed_from_stored_forecast(client: TestClient, ids: dict[str, int]) -> None:
    response = client.get("/v1/services/web/schedule")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["forecast_run_id"] == ids["forecast"]
    assert body["current_units"] == 4  # read from the IaC file
    assert body["now"] == "2024-03-01T12:01:00Z"
    # 110 req/s upper band at 14:00 needs 11 units of 10 req/s
    raises = [s for s in body["steps"] if s["direction"] == "raise"]
    assert raises and raises[-1]["units"] == 11
    assert raises[-1]["at"] == "2024-03-01T14:00:00Z"
    assert body["desired"][-1]["units"] == 11


def _lifted_schedule(tmp_path: Path, runs: list[tuple[dt.datetime, float]]) -> dict[str, Any]:
    """The schedule at 12:00 after an hour at 60 req/s (40 before; the week's peak 200),
    with forecast runs made at each ``at``: 40 req/s until 14:00, then ``later``."""
    settings = _settings(tmp_path)
    store = Store.open(settings.store_url)
    ds = pd.date_range(NOW - dt.timedelta(days=2), NOW, freq="5min")
    y = np.where(ds > pd.Timestamp(NOW - dt.timedelta(hours=1)), 60.0, 40.0)
    y[ds == pd.Timestamp(NOW - dt.timedelta(days=1))] = 200.0
    store.upsert_samples("web", pd.DataFrame({"ds": ds, "y": y}))
    for at, later in runs:
        future = pd.date_range(at, NOW + dt.timedelta(hours=6), freq="15min")
        yhat = np.where(future < pd.Timestamp(NOW + dt.timedelta(hours=2)), 40.0, later)
        frame = pd.DataFrame(
            {"ds": future, "yhat": yhat, "yhat_lower": yhat * 0.8, "yhat_upper": yhat * 1.1}
        )
        store.save_forecast_run(
            forecast_run("web", frame, at=at, resolution=dt.timedelta(minutes=15))
        )
    app = create_app(
        settings=settings,
        store=store,
        config=ApiConfig(token=TOKEN),
        registry=CollectorRegistry(),
        clock=lambda: NOW,
    )
    try:
        with TestClient(app, base_url="http://localhost") as client:
            response = client.get("/v1/services/web/schedule")
    finally:
        store.close()
    assert response.status_code == 200, response.text
    return dict(response.json())


def _units_at(body: dict[str, Any], at: str) -> int:
    return int(next(d["units"] for d in body["desired"] if d["ds"] == at))


def test_schedule_lifts_the_stored_forecast_while_demand_runs_above_it(
    tmp_path: Path,
) -> None:
    """The real path: a run made an hour ago forecast 40 req/s, rising to 80 at 14:00; the
    hour since ran at 60 (1.5x). The schedule plans 14:00 at 80 x 1.1 x 1.5 = 132 req/s
    (14 units of 10; the week's peak before the run was 200) instead of 88 (9 units)."""
    body = _lifted_schedule(tmp_path, [(NOW - dt.timedelta(hours=1), 80.0)])
    assert _units_at(body, "2024-03-01T14:00:00Z") == 14
    assert any(n.startswith("demand ran 50% above the forecast") for n in body["notes"])


def test_a_refit_within_the_hour_lifts_by_the_run_before_it(tmp_path: Path) -> None:
    """Refitted 15 minutes ago: the new run covers too little of the hour, so the hour is
    compared with the run in force before it (made at 06:00), as the daemon planned then."""
    body = _lifted_schedule(
        tmp_path,
        [(NOW - dt.timedelta(hours=6), 40.0), (NOW - dt.timedelta(minutes=15), 80.0)],
    )
    assert _units_at(body, "2024-03-01T14:00:00Z") == 14
    assert any(n.startswith("demand ran 50% above the forecast") for n in body["notes"])


def test_schedule_409_when_iac_unreadable(client: TestClient, env: Any) -> None:
    settings, store, _ = env
    frame = pd.DataFrame(
        {
            "ds": pd.date_range(NOW, periods=4, freq="15min"),
            "yhat": [1.0] * 4,
            "yhat_lower": [1.0] * 4,
            "yhat_upper": [1.0] * 4,
        }
    )
    store.save_forecast_run(forecast_run("api", frame, at=NOW, resolution=dt.timedelta(minutes=15)))
    response = client.get("/v1/services/api/schedule")
    assert response.status_code == 409
    assert _error_type(response) == "IacError"
    assert "api_min_size" in response.json()["error"]["message"] or "missing" in response.text
    assert client.get("/v1/services/nope/schedule").status_code == 404


# -- plan -----------------------------------------------------------------------------
def test_plan_is_the_last_change(client: TestClient, ids: dict[str, int]) -> None:
    body = client.get("/v1/services/web/plan").json()
    assert body["pending"] is True  # status "intent": unfinished
    change = body["change"]
    assert change["id"] == ids["intent"] and change["status"] == "intent"
    assert change["diff"].startswith("-web_min_size = 4")
    assert change["plan_summary"] == "1 to update"
    assert change["due_at"] == "2024-03-01T14:00:00Z"
    assert client.get("/v1/services/api/plan").status_code == 404
    assert client.get("/v1/services/nope/plan").status_code == 404


# -- refresh and auth -----------------------------------------------------------------
def test_refresh_needs_the_token(
    make_client: AppFactory, refreshers: RefresherFactory, env: Any
) -> None:
    store: Store = env[1]
    gate = _released()
    client = make_client(refresh=refreshers(gate))
    missing = client.post("/v1/services/web/refresh")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = client.post("/v1/services/web/refresh", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    basic = client.post("/v1/services/web/refresh", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    assert store.list_refresh_runs() == []
    ok = client.post("/v1/services/web/refresh", headers=AUTH)
    assert ok.status_code == 202
    assert ok.json() == {
        "service": "web",
        "run_id": "refresh-1",
        "status": "queued",
        "coalesced": False,
        "url": "/v1/runs/refresh-1",
    }
    assert ok.headers["location"] == "/v1/runs/refresh-1"
    assert client.post("/v1/services/nope/refresh", headers=AUTH).status_code == 404
    assert [r.service for r in store.list_refresh_runs()] == ["web"]


def test_refresh_run_is_polled_until_its_outcome(
    make_client: AppFactory, refreshers: RefresherFactory, ids: dict[str, int]
) -> None:
    gate = Gate(result=ids["forecast"])
    refresher = refreshers(gate)
    client = make_client(refresh=refresher)
    accepted = client.post("/v1/services/web/refresh", headers=AUTH)
    assert accepted.status_code == 202
    run_id = accepted.json()["run_id"]
    assert gate.started.get(timeout=10) == "web"
    running = client.get(f"/v1/runs/{run_id}")
    assert running.status_code == 200
    assert running.json() == {
        "kind": "refresh",
        "id": run_id,
        "service": "web",
        "status": "running",
        "requested_at": "2024-03-01T12:00:00Z",
        "started_at": "2024-03-01T12:00:00Z",
        "finished_at": None,
        "error": None,
        "forecast_run_id": None,
    }
    gate.release.set()
    assert refresher.wait_idle(10)
    done = client.get(f"/v1/runs/{run_id}").json()
    assert done["status"] == "succeeded" and done["forecast_run_id"] == ids["forecast"]
    assert done["finished_at"] == "2024-03-01T12:00:00Z" and done["error"] is None
    # Change records keep their integer ids on the same route; `kind` tells them apart.
    change = client.get(f"/v1/runs/{ids['applied']}").json()
    assert change["kind"] == "change" and change["id"] == ids["applied"]
    assert client.get("/v1/runs").json()["items"][0]["kind"] == "change"
    listed = client.get("/v1/runs", params={"kind": "refresh"}).json()
    assert [r["id"] for r in listed["items"]] == [run_id] and listed["next_offset"] is None
    assert client.get("/v1/runs", params={"kind": "refresh", "service": "api"}).json() == {
        "items": [],
        "limit": 50,
        "offset": 0,
        "next_offset": None,
    }
    for missing in ("refresh-999", "refresh-9223372036854775807"):
        response = client.get(f"/v1/runs/{missing}")
        assert response.status_code == 404 and _error_type(response) == "NotFound"
    for bad in ("refresh-", "refresh-x", "0", "refresh-0", "99999999999999999999", "run-1"):
        assert client.get(f"/v1/runs/{bad}").status_code == 422, bad


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (DataError("web: no samples stored; run collect first"), "no samples stored"),
        (RuntimeError("secret detail"), "internal error (logged by the server)"),
    ],
)
def test_failed_refresh_run_records_the_error(
    make_client: AppFactory,
    refreshers: RefresherFactory,
    error: Exception,
    expected: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = Gate(error=error)
    gate.release.set()
    refresher = refreshers(gate)
    client = make_client(refresh=refresher)
    run_id = client.post("/v1/services/web/refresh", headers=AUTH).json()["run_id"]
    assert refresher.wait_idle(10)
    run = client.get(f"/v1/runs/{run_id}").json()
    assert run["status"] == "failed" and expected in run["error"]
    assert run["forecast_run_id"] is None and run["finished_at"] == "2024-03-01T12:00:00Z"
    assert "secret" not in run["error"]
    assert any(run_id in r.getMessage() for r in caplog.records)  # and the log says so


def test_refresh_coalesces_per_service(
    make_client: AppFactory, refreshers: RefresherFactory, env: Any
) -> None:
    store: Store = env[1]
    gate = Gate()
    refresher = refreshers(gate)
    client = make_client(refresh=refresher)
    first = client.post("/v1/services/web/refresh", headers=AUTH).json()
    assert gate.started.get(timeout=10) == "web"  # running, blocked on the gate
    again = [client.post("/v1/services/web/refresh", headers=AUTH) for _ in range(200)]
    assert {r.status_code for r in again} == {202}
    assert {r.json()["run_id"] for r in again} == {first["run_id"]}
    assert all(r.json()["coalesced"] and r.json()["status"] == "running" for r in again)
    # a queued (not yet running) run coalesces too
    queued = [client.post("/v1/services/api/refresh", headers=AUTH).json() for _ in range(3)]
    assert len({q["run_id"] for q in queued}) == 1
    assert [q["coalesced"] for q in queued] == [False, True, True]
    assert queued[0]["status"] == "queued"
    gate.release.set()
    assert refresher.wait_idle(10)
    assert gate.calls == ["web", "api"]
    assert [r.status for r in store.list_refresh_runs()] == ["succeeded", "succeeded"]
    # once a run finished, the next refresh is a new run
    later = client.post("/v1/services/web/refresh", headers=AUTH).json()
    assert later["run_id"] not in (first["run_id"], queued[0]["run_id"])
    assert not later["coalesced"]


MANY_SERVICES_YAML = "store_url: sqlite:///store/forescale.db\nservices:\n" + "".join(
    f"""\
  s{i}:
    source: {{type: csv, path: demand.csv}}
    capacity_per_unit: 10
    min_units: 1
    max_units: 5
    iac: {{working_dir: tf, address: s{i}_min_size}}
"""
    for i in range(4)
)


def test_refresh_queue_is_capped_with_429_and_retry_after(
    make_client: AppFactory, refreshers: RefresherFactory, env: Any, tmp_path: Path
) -> None:
    store: Store = env[1]
    (tmp_path / "many.yaml").write_text(MANY_SERVICES_YAML)
    many = load_settings(tmp_path / "many.yaml")
    gate = Gate()
    refresher = refreshers(gate, max_queued=2)
    client = make_client(refresh=refresher, settings_=many)

    def post(name: str) -> Any:
        return client.post(f"/v1/services/{name}/refresh", headers=AUTH)

    assert post("s0").status_code == 202
    assert gate.started.get(timeout=10) == "s0"  # running: no longer queued
    s1, s2 = post("s1"), post("s2")
    assert (s1.status_code, s2.status_code) == (202, 202)
    assert s1.json()["status"] == s2.json()["status"] == "queued"
    full = post("s3")
    assert full.status_code == 429 and _error_type(full) == "TooManyRequests"
    assert int(full.headers["retry-after"]) >= 1
    assert "2 refreshes" in full.json()["error"]["message"]
    assert post("s1").json()["run_id"] == s1.json()["run_id"]  # coalescing needs no slot
    gate.release.set()
    assert refresher.wait_idle(10)
    assert gate.calls == ["s0", "s1", "s2"]
    assert sorted(r.service for r in store.list_refresh_runs()) == ["s0", "s1", "s2"]


def test_closing_the_refresher_fails_queued_runs(
    make_client: AppFactory, refreshers: RefresherFactory, env: Any
) -> None:
    store: Store = env[1]
    gate = Gate()
    refresher = refreshers(gate)
    client = make_client(refresh=refresher)
    running = client.post("/v1/services/web/refresh", headers=AUTH).json()["run_id"]
    assert gate.started.get(timeout=10) == "web"
    queued = client.post("/v1/services/api/refresh", headers=AUTH).json()["run_id"]
    refresher.cancel_queued()  # what close() does first, before it waits for the running one
    cancelled = client.get(f"/v1/runs/{queued}").json()
    assert cancelled["status"] == "failed" and "stopped" in cancelled["error"]
    closed = client.post("/v1/services/web/refresh", headers=AUTH)
    assert closed.status_code == 503 and _error_type(closed) == "Unavailable"
    gate.release.set()
    refresher.close()
    assert client.get(f"/v1/runs/{running}").json()["status"] == "succeeded"
    assert gate.calls == ["web"]
    assert len(store.list_refresh_runs()) == 2


def test_refresh_503_without_refresher_and_403_without_token(
    make_client: AppFactory, refreshers: RefresherFactory
) -> None:
    response = make_client().post("/v1/services/web/refresh", headers=AUTH)
    assert response.status_code == 503
    no_token = make_client(config=ApiConfig(token=None), refresh=refreshers(_released()))
    assert no_token.post("/v1/services/web/refresh", headers=AUTH).status_code == 403


class BrokenQueue:
    def submit(self, service: str) -> Submitted:
        raise RuntimeError("secret detail")


def test_a_bug_is_a_500_in_the_error_shape(make_client: AppFactory) -> None:
    client = make_client(refresh=BrokenQueue(), raise_server_exceptions=False)
    response = client.post("/v1/services/web/refresh", headers=AUTH)
    assert response.status_code == 500 and _error_type(response) == "InternalError"
    assert "secret" not in response.text


def test_reads_protected_when_configured(make_client: AppFactory) -> None:
    client = make_client(config=ApiConfig(token=TOKEN, protect_reads=True))
    for path in ("/v1/services", "/v1/runs", "/v1/services/web/forecast", "/metrics"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=AUTH).status_code == 200, path
    assert client.get("/healthz").status_code == 200  # probes stay open
    open_reads = make_client()
    assert open_reads.get("/v1/services").status_code == 200


def test_docs_and_schema_follow_protect_reads(make_client: AppFactory) -> None:
    protected = make_client(config=ApiConfig(token=TOKEN, protect_reads=True))
    for path in ("/docs", "/redoc", "/openapi.json"):
        refused = protected.get(path)
        assert refused.status_code == 401 and _error_type(refused) == "Unauthorized", path
        assert protected.get(path, headers=AUTH).status_code == 200, path
    assert protected.get("/openapi.json", headers=AUTH).json()["info"]["title"] == "forescale"
    open_reads = make_client()
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert open_reads.get(path).status_code == 200, path
    assert "/openapi.json" in open_reads.get("/docs").text


def test_host_header_must_name_an_allowed_host(make_client: AppFactory) -> None:
    """DNS rebinding: a page on a name the attacker controls, resolved to 127.0.0.1, makes
    the browser send that name as Host. Only allowed names (and IP literals, which no
    rebinding page can produce) are served."""
    client = make_client()  # default: localhost, 127.0.0.1, [::1]
    for host in (
        "localhost",
        "localhost:3000",
        "LocalHost.",
        "127.0.0.1:3000",
        "[::1]:3000",
        "[::1]",
        "10.1.2.3:3000",  # a pod IP, as the kubelet's probes and Prometheus send it
        "[fd00::5]",
    ):
        assert client.get("/v1/runs", headers={"Host": host}).status_code == 200, host
    for host in (
        "rebind.attacker.example",
        "rebind.attacker.example:3000",
        "localhost.attacker.example",
        "127.0.0.1.nip.io",
        "",
        "localhost:http",
        "localhost:",
        "[::1",
        "::1",
        "a b",
    ):
        refused = client.get("/v1/runs", headers={"Host": host})
        assert refused.status_code == 400, host
        assert _error_type(refused) == "InvalidHost"
        assert "api.allowed_hosts" in refused.json()["error"]["message"]
    assert client.get("/healthz", headers={"Host": "rebind.attacker.example"}).status_code == 400

    configured = make_client(
        config=ApiConfig(token=TOKEN, allowed_hosts=("Forescale.internal", "*.svc.cluster.local"))
    )
    for host in ("forescale.internal:8080", "forescale.ns.svc.cluster.local", "127.0.0.1"):
        assert configured.get("/healthz", headers={"Host": host}).status_code == 200, host
    for host in ("localhost", "svc.cluster.local", "evil.example"):  # the list replaces the default
        assert configured.get("/healthz", headers={"Host": host}).status_code == 400, host
    anything = make_client(config=ApiConfig(token=TOKEN, allowed_hosts=("*",)))
    assert anything.get("/healthz", headers={"Host": "evil.example"}).status_code == 200


def test_body_too_large_is_413(make_client: AppFactory, refreshers: RefresherFactory) -> None:
    client = make_client(
        config=ApiConfig(token=TOKEN, max_body_bytes=10), refresh=refreshers(_released())
    )
    response = client.post("/v1/services/web/refresh", headers=AUTH, content=b"x" * 11)
    assert response.status_code == 413


# -- runs -----------------------------------------------------------------------------
def test_runs_paginated_newest_first(client: TestClient, ids: dict[str, int]) -> None:
    first = client.get("/v1/runs", params={"limit": 2}).json()
    assert [r["id"] for r in first["items"]] == [ids["intent"], ids["planned"]]
    assert first["next_offset"] == 2
    second = client.get("/v1/runs", params={"limit": 2, "offset": 2}).json()
    assert [r["id"] for r in second["items"]] == [ids["applied"]]
    assert second["next_offset"] is None
    assert client.get("/v1/runs", params={"service": "api"}).json()["items"] == []
    assert len(client.get("/v1/runs", params={"service": "web"}).json()["items"]) == 3
    run = client.get(f"/v1/runs/{ids['applied']}").json()
    assert run["status"] == "applied" and run["created_at"] == "2024-03-01T12:00:00Z"
    assert client.get("/v1/runs/999").status_code == 404


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=100000", "limit=nan", "limit=1e400", "offset=-1", "offset=inf"]
)
def test_runs_bad_paging_is_422(client: TestClient, query: str) -> None:
    response = client.get(f"/v1/runs?{query}")
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "ValidationError"


def test_validation_error_values_made_json_safe() -> None:
    safe = _jsonable({"input": math.nan, "ctx": {"ge": math.inf, "err": ValueError("x")}})
    assert safe == {"input": "nan", "ctx": {"ge": "inf", "err": "ValueError('x')"}}


def test_unknown_route_has_the_error_shape(client: TestClient) -> None:
    response = client.get("/v1/nothing")
    assert response.status_code == 404 and _error_type(response) == "HTTPError"


# -- metrics --------------------------------------------------------------------------
def test_metrics_exposes_the_injected_registry(make_client: AppFactory) -> None:
    registry = CollectorRegistry()
    Metrics(registry).set_service("web", desired_units=7)
    response = make_client(registry=registry).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'forescale_desired_units{service="web"} 7.0' in response.text


# -- the app against its own OpenAPI schema -------------------------------------------
@pytest.fixture
def api_app(env: tuple[Settings, Store, dict[str, int]], refreshers: RefresherFactory) -> FastAPI:
    settings, store, ids = env
    return create_app(
        settings=settings,
        store=store,
        # schemathesis calls the app as host "testserver": a configured name
        config=ApiConfig(token=TOKEN, allowed_hosts=("testserver",)),
        registry=CollectorRegistry(),
        refresh=refreshers(_released(ids["forecast"])),
        clock=lambda: NOW,
    )


def test_openapi_conformance(api_app: FastAPI) -> None:
    """Generated requests for every operation: no 5xx, and every response (status, content
    type, body) conforms to the app's own OpenAPI schema."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app)
    # An operation schemathesis cannot load is an Err without .ok(): the test errors loudly.
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 10

    for operation in operations:

        @given(
            case=operation.as_strategy(),
            name=st.sampled_from(["web", "api", "nope"]),
            run_id=st.sampled_from(["1", "2", "3", "999", "refresh-1", "refresh-999"]),
        )
        @settings(
            max_examples=10,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any, name: str, run_id: int) -> None:
            # Random names would almost never hit a configured service: use real ones too.
            if case.path_parameters and "name" in case.path_parameters:
                case.path_parameters["name"] = name
            if case.path_parameters and "run_id" in case.path_parameters:
                case.path_parameters["run_id"] = run_id
            # positive_data_acceptance is off: "start after end" is a cross-parameter rule
            # OpenAPI cannot express, so a schema-valid request can rightly get a 422.
            case.call_and_validate(headers=AUTH, excluded_checks=[positive_data_acceptance])

        check()
