"""The read-only web page: ``GET /`` (every service) and ``GET /services/{name}``, through the
real app (stored forecasts made with the FAST candidates, never refitted on a page load),
and once in a real headless Chromium against a real ``forescale serve``."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry

from forescale.api import ApiConfig, create_app
from forescale.config.settings import Settings, load_settings
from forescale.records import ChangeRecord
from forescale.report.page_html import (
    AuditRow,
    NextChange,
    ServicePage,
    ServiceRow,
    render_index,
    render_service_page,
)
from forescale.store import Store
from forescale.usecases.collect import collect_all
from forescale.usecases.context import App
from forescale.usecases.refit import refit
from tests.fakes import FAST

with warnings.catch_warnings():
    # starlette asks for the `httpx2` fork; plain httpx is what is installed and works.
    warnings.filterwarnings("ignore", message=r".*install `httpx2` instead", category=Warning)
    from fastapi.testclient import TestClient

NOW = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EVIL = "<script>alert('x')</script> & more"

SETTINGS_YAML = """\
store_url: sqlite:///store/forescale.db
display_timezone: UTC
services:
  web:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 10
    min_units: 2
    max_units: 40
    max_step_up: 100%
    lead_time: 15m
    unit_price: {per_hour: 0.5, currency: USD}
    iac: {working_dir: tf, address: web_min_size}
  broken:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 10
    min_units: 1
    max_units: 40
    iac: {working_dir: missing, address: broken_min_size}
  api:
    mode: plan
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 10
    min_units: 1
    max_units: 40
    iac: {working_dir: tf, address: api_min_size}
"""


def write_project(root: Path, *, end: dt.datetime, extra: str = "") -> Settings:
    """Settings, a Terraform variable file (web at 4 units) and three days of 5-minute
    demand up to ``end``: a daily wave between about 20 and 180 requests/s peaking at
    ``end`` (so web's next change is a raise from 4 at any time of day), with a ripple
    that is not daily (so the live error is not zero)."""
    (root / "tf").mkdir()
    (root / "tf" / "terraform.tfvars").write_text("web_min_size = 4\napi_min_size = 2\n")
    rows = ["timestamp,value"]
    t = end - dt.timedelta(days=3)
    while t <= end:
        hours = (t - end).total_seconds() / 3600
        value = 100 + 75 * math.cos(2 * math.pi * hours / 24) + 5 * math.sin(hours * 7.3)
        rows.append(f"{t:%Y-%m-%dT%H:%M:%SZ},{value:.3f}")
        t += dt.timedelta(minutes=5)
    (root / "demand.csv").write_text("\n".join(rows) + "\n")
    (root / "forescale.yaml").write_text(SETTINGS_YAML + extra)
    return load_settings(root / "forescale.yaml")


def fill_store(settings: Settings, store: Store, *, now: dt.datetime) -> None:
    """Collect, then two FAST refits of ``web`` (the second judges the first: live
    accuracy) and one of ``broken``; ``api`` has no forecast. Two audit records for web."""
    collect_all(settings, store, clock=lambda: now)
    app = App(settings=settings, store=store, candidates=FAST)
    refit(app, "web", now=now - dt.timedelta(hours=2))
    refit(app, "web", now=now)
    refit(app, "broken", now=now)
    for i, (status, message) in enumerate((("applied", "applied fine"), ("refused", EVIL))):
        store.record_change(
            ChangeRecord(
                service="web",
                due_at=now - dt.timedelta(hours=3 - i),
                var_file="tf/terraform.tfvars",
                address="web_min_size",
                from_units=3 + i,
                to_units=4 + i,
                direction="raise",
                reason=f"reason {i}",
                mode="apply",
                status=status,
                diff="",
                message=message,
            ),
            created_at=now - dt.timedelta(hours=3 - i),
        )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Settings, Store]]:
    settings = write_project(tmp_path, end=NOW)
    store = Store.open(settings.store_url)
    fill_store(settings, store, now=NOW)
    yield settings, store
    store.close()


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(env: tuple[Settings, Store]) -> Iterator[ClientFactory]:
    settings, store = env
    clients: list[TestClient] = []

    def make(
        *, config: ApiConfig | None = None, at: dt.datetime = NOW + dt.timedelta(minutes=1)
    ) -> TestClient:
        app = create_app(
            settings=settings,
            store=store,
            config=config or ApiConfig(token=TOKEN),
            registry=CollectorRegistry(),
            clock=lambda: at,
        )
        client = TestClient(app, base_url="http://localhost")
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client()


def section(html: str, name: str) -> str:
    """The index's block of one service (its ``<tr>``)."""
    match = re.search(rf"<tr id='service-{name}'>(.*?)</tr>", html, re.S)
    assert match, f"no row for {name} in:\n{html}"
    return match.group(1)


# -- GET / --------------------------------------------------------------------------------
def test_index_lists_every_service_with_its_state(
    client: TestClient, env: tuple[Settings, Store]
) -> None:
    _, store = env
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "<script" not in html.lower()  # no JavaScript at all
    web = section(html, "web")
    assert "href='/services/web'" in web
    assert "dry-run" in web and "fresh" in web
    run = store.latest_forecast("web")
    assert run is not None and run.live is not None and run.live.error_ratio is not None
    assert run.model in web and run.live.steps >= 6 and run.live.error_ratio > 0
    assert f"{run.live.error_ratio:.1%}" in web  # live accuracy as stored with the run
    # the next change is the one the schedule endpoint (the daemon's planner) gives
    steps = client.get("/v1/services/web/schedule").json()["steps"]
    assert steps, "the demand wave needs more than 4 units"
    first = steps[0]
    assert first["direction"] == "raise" and first["from_units"] == 4
    assert f"raise 4 \u2192 {first['units']} at " in web
    assert "USD over" in web and "per unit-hour" in web  # the cost line
    api = section(html, "api")
    assert "href='/services/api'" in api and "plan" in api and "no forecast yet" in api
    broken = section(html, "broken")
    assert "error:" in broken and "missing" in broken  # the variable file it cannot read
    assert "\n" not in re.sub(r"<[^>]+>", "", broken).strip()  # one line


def test_index_says_stale_when_the_newest_sample_is_older_than_stale_after(
    make_client: ClientFactory,
) -> None:
    html = make_client(at=NOW + dt.timedelta(hours=2)).get("/").text
    assert "stale" in section(html, "web") and "fresh" not in section(html, "web")


def test_a_page_load_never_refits(client: TestClient, env: tuple[Settings, Store]) -> None:
    _, store = env
    before = {n: store.latest_forecast_id(n) for n in ("web", "api", "broken")}
    for path in ("/", "/services/web", "/services/api", "/services/broken"):
        assert client.get(path).status_code == 200
    assert {n: store.latest_forecast_id(n) for n in before} == before
    assert before["api"] is None


def test_pages_are_deterministic(client: TestClient) -> None:
    for path in ("/", "/services/web"):
        assert client.get(path).text == client.get(path).text


# -- GET /services/{name} ---------------------------------------------------------------
def test_service_page_has_plot_schedule_audit_and_shadow_line(client: TestClient) -> None:
    response = client.get("/services/web")
    assert response.status_code == 200
    html = response.text
    assert "<svg" in html and "</svg>" in html  # the plan report's plot, inline
    assert "Capacity schedule" in html
    steps = client.get("/v1/services/web/schedule").json()["steps"]
    assert f"{steps[0]['from_units']} \u2192 {steps[0]['units']}" in html
    # the audit history, newest first, escaped
    audit = html[html.index("Audit history") :]
    rows = re.findall(r"<tr><td>.*?</tr>", audit, re.S)
    assert len(rows) == 2
    assert "refused" in rows[0] and "4 \u2192 5" in rows[0]
    assert "applied" in rows[1] and "3 \u2192 4" in rows[1] and "applied fine" in rows[1]
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in rows[0]
    assert "<script" not in html.lower()
    assert "shadow mode not enabled for this service" in html
    assert "href='/'" in html  # back to the list


def test_service_without_forecast_still_renders(client: TestClient) -> None:
    response = client.get("/services/api")
    assert response.status_code == 200
    assert "no forecast yet" in response.text and "<svg" not in response.text
    assert "no change recorded" in response.text


def test_service_with_a_broken_variable_file_shows_its_error(client: TestClient) -> None:
    response = client.get("/services/broken")
    assert response.status_code == 200
    assert "error:" in response.text and "missing" in response.text


def test_unknown_service_is_a_small_html_404_with_the_name_escaped(client: TestClient) -> None:
    response = client.get("/services/%3Cb%3Enope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "&lt;b&gt;nope" in response.text and "<b>nope" not in response.text
    assert "href='/'" in response.text


# -- who may look ------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/services/web", "/services/nope"])
def test_protected_reads_refuse_the_page_as_every_other_read(
    make_client: ClientFactory, path: str
) -> None:
    client = make_client(config=ApiConfig(token=TOKEN, protect_reads=True))
    reference = client.get("/v1/services")
    refused = client.get(path)
    assert reference.status_code == refused.status_code == 401
    assert refused.json() == reference.json()
    assert refused.headers["www-authenticate"] == "Bearer"
    wrong = client.get(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json() == client.get("/v1/services", headers=wrong.request.headers).json()
    allowed = client.get(path, headers=AUTH)
    assert allowed.status_code == (404 if path.endswith("nope") else 200)


def test_open_reads_serve_the_page_without_a_token(make_client: ClientFactory) -> None:
    client = make_client(config=ApiConfig(token=TOKEN, protect_reads=False))
    assert client.get("/").status_code == 200


# -- the renderer alone ------------------------------------------------------------------
def test_renderer_escapes_every_text_and_quotes_links() -> None:
    name = "we<b>&\"b'"
    row = ServiceRow(
        name=name,
        mode="dry-run<i>",
        configured_mode="dry-run<i>",
        last_sample=NOW,
        last_collect=NOW,
        collect_error="source <down>",
        stale=False,
        model="m<odel>",
        live_error=0.1,
        live_under=0.0,
        live_steps=12,
        next_change=NextChange(at=NOW, direction="raise", from_units=1, to_units=2),
        cost=None,
        forecast=True,
        error=None,
    )
    tz = ZoneInfo("UTC")
    index = render_index((row,), now=NOW, tz=tz)
    page = render_service_page(
        ServicePage(
            row=row,
            plot_svg=None,
            schedule=None,
            notes=("note <x>",),
            audit=(
                AuditRow(
                    at=NOW,
                    status="error<",
                    from_units=1,
                    to_units=2,
                    due_at=NOW,
                    message="<img src=x onerror=alert(1)>",
                ),
            ),
            shadow="shadow <line>",
        ),
        now=NOW,
        tz=tz,
    )
    for html in (index, page):
        for raw in ("<b>", "<i>", "<odel>", "<down>", "<x>", "<img", "<line>"):
            assert raw not in html
    assert "href='/services/we%3Cb%3E%26%22b%27'" in index
    assert "we&lt;b&gt;&amp;&quot;b&#x27;" in index


# -- a real browser against a real server -----------------------------------------------
class Served:
    """``forescale serve --port 0`` with its stderr in a file; the bound port is read from
    its JSON log."""

    def __init__(self, config: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORESCALE_")}
        self.log = log
        with log.open("w") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "forescale",
                    "serve",
                    "--port",
                    "0",
                    "--log-format",
                    "json",
                    "--config",
                    str(config),
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )

    def port(self, seconds: float = 30) -> int:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.proc.poll() is None:
            for line in self.log.read_text().splitlines():
                record = json.loads(line)
                if str(record.get("msg", "")).startswith("API listening on"):
                    return int(record["port"])
            time.sleep(0.05)
        raise AssertionError(f"not listening:\n{self.log.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise


def chromium(*args: str, profile: Path) -> str:
    """Run headless Chromium (bounded); its stdout."""
    done = subprocess.run(
        [
            "chromium",
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.external_service
def test_the_pages_in_a_real_headless_chromium(tmp_path: Path) -> None:
    if shutil.which("chromium") is None:
        pytest.skip(
            "headless Chromium not installed: apt-get install chromium "
            "(scripts/test-setup.sh does it)"
        )
    # Real time: `serve` plans at the wall clock, so the data ends now.
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    now -= dt.timedelta(minutes=now.minute % 5)
    settings = write_project(tmp_path, end=now)
    store = Store.open(settings.store_url)
    try:
        fill_store(settings, store, now=now)
    finally:
        store.close()
    server = Served(tmp_path / "forescale.yaml", tmp_path / "serve.log")
    try:
        base = f"http://127.0.0.1:{server.port()}"
        index = chromium("--dump-dom", f"{base}/", profile=tmp_path / "profile")
        for name in ("web", "api", "broken"):
            assert f'href="/services/{name}"' in index
        assert "no forecast yet" in index
        assert re.search(r"raise 4 \u2192 \d+", index), index
        page = chromium("--dump-dom", f"{base}/services/web", profile=tmp_path / "profile")
        assert "<svg" in page
        assert "applied fine" in page and "refused" in page
        assert re.search(r"4 \u2192 \d+", page)
        shot = tmp_path / "web.png"
        chromium(
            f"--screenshot={shot}",
            "--window-size=1280,900",
            f"{base}/services/web",
            profile=tmp_path / "profile",
        )
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
        from PIL import Image

        with Image.open(shot) as image:
            assert image.size == (1280, 900)
            colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50  # text and a plot, not a blank page
    finally:
        assert server.stop() == 0, server.log.read_text()[-2000:]
