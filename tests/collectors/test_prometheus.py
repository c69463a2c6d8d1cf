from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter, ValidationError

from forescale.collectors.base import build_source
from forescale.collectors.prometheus import PrometheusMetricSource, auto_step, request_ranges
from forescale.collectors.series import infer_step
from forescale.config.settings import (
    CloudWatchSource,
    MetricSourceSettings,
    PrometheusSource,
    load_settings,
)
from forescale.errors import CollectorError
from tests.collectors.conftest import (
    RATES,
    CannedServer,
    PromHistory,
    demand_shape,
    free_port,
    gauge_values,
    peak_hours,
)

UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)
SUM_RATE = "sum(rate(http_requests_total[5m]))"
TOKEN = "s3cret-t0ken-value"


_opened: list[Any] = []


@pytest.fixture(autouse=True)
def _close_sources() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def track(prom: Any) -> Any:
    """Close ``prom``'s client after the test (a leaked socket fails the run)."""
    _opened.append(prom)
    return prom


def source(
    url: str, query: str, *, clock: Any = None, hooks: list[Any] | None = None, **options: Any
) -> PrometheusMetricSource:
    client = httpx.Client(timeout=30, trust_env=False, event_hooks={"request": hooks or []})
    extra = {"clock": clock} if clock is not None else {}
    return track(PrometheusMetricSource(client=client, url=url, query=query, **extra, **options))


def expected_rate(ds: pd.Series) -> np.ndarray:  # type: ignore[type-arg]
    """What rate(http_requests_total[5m]) summed over instances should give at ``ds``: the
    mean generated rate over the five minutes before each evaluation."""
    t = (ds.astype("int64") // 10**9).to_numpy().astype(float)
    window = np.stack([demand_shape(t - offset) for offset in (300, 240, 180, 120, 60)])
    return np.asarray(sum(RATES.values()) * window.mean(axis=0))


def seconds(ds: pd.Series) -> np.ndarray:  # type: ignore[type-arg]
    return (ds.astype("int64") // 10**9).to_numpy()


# -- against a real, backfilled Prometheus -----------------------------------------------
@pytest.mark.external_service
def test_summed_rate_recovers_the_daily_and_weekly_shape(prom_history: PromHistory) -> None:
    requests: list[httpx.Request] = []
    prom = source(
        prom_history.url,
        SUM_RATE,
        clock=prom_history.clock,
        hooks=[requests.append],
        lookback=dt.timedelta(days=21),
    )
    start = prom_history.end_time - dt.timedelta(days=21)
    series = prom.fetch(start, None)  # end = the injected clock

    assert len(requests) == 1  # 21 days at the auto step of 5 minutes: 6,049 points
    assert str(series["ds"].dt.tz) == "UTC"
    assert infer_step(series["ds"]) == dt.timedelta(minutes=5)
    assert series["ds"].iloc[0] == pd.Timestamp(start)
    assert series["ds"].iloc[-1] == pd.Timestamp(prom_history.end_time)

    t = seconds(series["ds"])
    gap_inside = (t >= prom_history.gap_start + 600) & (t < prom_history.gap_end)
    near_gap = (t >= prom_history.gap_start - 600) & (t < prom_history.gap_end + 600)
    assert gap_inside.sum() > 15
    assert np.isnan(series["y"].to_numpy()[gap_inside]).all()
    observed = series[~near_gap]
    assert observed["y"].notna().all()
    np.testing.assert_allclose(observed["y"], expected_rate(observed["ds"]), rtol=0.01)

    # the shape, not just the points: daily means follow the weekly swing (+-20 %)...
    daily = observed.groupby(observed["ds"].dt.floor("D"))["y"].mean().iloc[1:-1]
    assert daily.max() / daily.min() > 1.3
    # ...and each whole day peaks around 14:00 UTC
    peaks = peak_hours(series["ds"], series["y"].where(~near_gap))
    assert len(peaks) >= 18 and set(peaks) <= {13, 14}

    # an incremental fetch of the last hour keeps the backfill's step (from the lookback)
    later = prom.fetch(prom_history.end_time - dt.timedelta(hours=1), None)
    assert later["ds"].tolist() == series["ds"].iloc[-13:].tolist()
    np.testing.assert_allclose(later["y"], series["y"].iloc[-13:], rtol=1e-9)


@pytest.mark.external_service
def test_fine_step_is_split_into_requests_joined_without_overlap(
    prom_history: PromHistory,
) -> None:
    requests: list[httpx.Request] = []
    prom = source(
        prom_history.url,
        "web_desired_capacity",
        clock=prom_history.clock,
        hooks=[requests.append],
        step=MINUTE,
    )
    start = prom_history.end_time - dt.timedelta(days=21)
    series = prom.fetch(start, prom_history.end_time)

    assert len(requests) == 3  # 30,241 one-minute points, at most 11,000 per request
    steps = [parse_qs(r.content.decode())["step"] for r in requests]
    assert steps == [["60"]] * 3
    assert len(series) == 21 * 1440 + 1
    assert series["ds"].is_unique and infer_step(series["ds"]) == MINUTE

    t = seconds(series["ds"])
    stale = (t >= prom_history.gap_start) & (t < prom_history.gap_end)
    lookback = (t >= prom_history.gap_start) & (t < prom_history.gap_start + 300)
    y = series["y"].to_numpy()
    assert np.isnan(y[stale & ~lookback]).all()  # Prometheus' 5-minute lookback, then gaps
    np.testing.assert_allclose(y[~stale], gauge_values(t[~stale].astype(float)), atol=1e-9)


@pytest.mark.external_service
def test_incremental_fetch_matches_the_full_read(prom_history: PromHistory) -> None:
    prom = source(prom_history.url, SUM_RATE, clock=prom_history.clock, step=MINUTE)
    end = prom_history.end_time
    full = prom.fetch(end - dt.timedelta(days=1), end)
    since = end - dt.timedelta(hours=1, seconds=30)  # off the grid: starts at the next minute
    later = prom.fetch(since, None)
    assert later["ds"].iloc[0] == pd.Timestamp(end - dt.timedelta(hours=1))
    expected = full[full["ds"] >= later["ds"].iloc[0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(later, expected)


@pytest.mark.external_service
def test_several_series_are_an_error_unless_summed(prom_history: PromHistory) -> None:
    query = "rate(http_requests_total[5m])"
    end = prom_history.end_time
    start = end - dt.timedelta(hours=6)
    with pytest.raises(CollectorError) as info:
        source(prom_history.url, query).fetch(start, end)
    message = str(info.value)
    assert "returned 2 series" in message
    assert '{instance="a", job="web"}' in message and '{instance="b", job="web"}' in message
    assert "sum_series: true" in message

    summed = source(prom_history.url, query, sum_series=True).fetch(start, end)
    by_promql = source(prom_history.url, SUM_RATE).fetch(start, end)
    np.testing.assert_allclose(summed["y"], by_promql["y"], rtol=1e-9)


@pytest.mark.external_service
def test_build_source_from_settings(prom_history: PromHistory) -> None:
    settings = TypeAdapter(MetricSourceSettings).validate_python(
        {"type": "prometheus", "url": prom_history.url + "/", "query": SUM_RATE, "step": "5m"}
    )
    built = track(build_source(settings))
    assert isinstance(built, PrometheusMetricSource)
    assert built.describe() == f"prometheus {prom_history.url} {SUM_RATE}"
    series = built.fetch(prom_history.end_time - dt.timedelta(hours=2), prom_history.end_time)
    assert len(series) == 25 and series["y"].notna().all()


@pytest.mark.external_service
def test_invalid_promql_is_bad_data_with_the_servers_message(prom_history: PromHistory) -> None:
    prom = source(prom_history.url, "sum(rate(http_requests_total[5m])")
    with pytest.raises(CollectorError, match=r"\(bad_data\): .*unclosed left parenthesis"):
        prom.fetch(prom_history.end_time - dt.timedelta(hours=1), prom_history.end_time)


@pytest.mark.external_service
def test_server_side_timeout(prom_history: PromHistory) -> None:
    # a subquery over a week at every one of a week's minutes: far more work than 1 ms on
    # any machine (a light query may finish before Prometheus first checks its deadline)
    heavy = f"max_over_time(({SUM_RATE})[7d:1m])"
    prom = source(prom_history.url, heavy, step=MINUTE, query_timeout=dt.timedelta(milliseconds=1))
    with pytest.raises(CollectorError, match=r"timed out on the server \(timeout\)"):
        prom.fetch(prom_history.end_time - dt.timedelta(days=7), prom_history.end_time)


@pytest.mark.external_service
def test_unknown_metric_is_an_error(prom_history: PromHistory) -> None:
    prom = source(prom_history.url, "sum(rate(http_request_total[5m]))")
    with pytest.raises(CollectorError, match="returned no data between .* check the metric name"):
        prom.fetch(prom_history.end_time - dt.timedelta(hours=1), prom_history.end_time)


def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CollectorError, match=rf"cannot connect to Prometheus at {url}"):
        source(url, "up").fetch(
            dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 2, tzinfo=UTC)
        )


# -- headers, auth and error answers against a tiny recording server ----------------------
def matrix(*series: tuple[dict[str, str], list[tuple[float, str]]]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": labels, "values": [[ts, value] for ts, value in values]}
                for labels, values in series
            ],
        },
    }


T0 = 1_767_225_600.0  # 2026-01-01T00:00Z
START = dt.datetime.fromtimestamp(T0, UTC)


def settings(url: str, **fields: Any) -> PrometheusSource:
    return PrometheusSource(url=url, query="sum(rate(x[5m]))", step="60s", **fields)


def test_bearer_token_org_id_and_headers_are_sent(canned_server: CannedServer) -> None:
    canned_server.reply(200, matrix(({}, [(T0, "1.5"), (T0 + 60, "NaN"), (T0 + 120, "2")])))
    prom = track(
        PrometheusMetricSource.from_settings(
            settings(
                canned_server.url, bearer_token=TOKEN, org_id="tenant-1", headers={"X-Team": "web"}
            )
        )
    )
    series = prom.fetch(START, START + dt.timedelta(minutes=2))

    assert series["y"].tolist()[0] == 1.5 and np.isnan(series["y"].iloc[1])
    (request,) = canned_server.requests
    assert request.method == "POST" and request.path == "/api/v1/query_range"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["x-scope-orgid"] == "tenant-1"
    assert request.headers["x-team"] == "web"
    form = parse_qs(request.body)
    assert form["query"] == ["sum(rate(x[5m]))"]
    assert form["start"] == [f"{T0:.3f}"] and form["step"] == ["60"]
    assert TOKEN not in repr(prom) and TOKEN not in prom.describe()


def test_basic_auth_is_sent(canned_server: CannedServer) -> None:
    canned_server.reply(200, matrix(({}, [(T0, "3")])))
    prom = track(
        PrometheusMetricSource.from_settings(
            settings(canned_server.url, basic_auth={"username": "forescale", "password": "pw"})
        )
    )
    prom.fetch(START, START)
    expected = base64.b64encode(b"forescale:pw").decode()
    assert canned_server.requests[0].headers["authorization"] == f"Basic {expected}"


def test_several_series_are_summed_per_timestamp(canned_server: CannedServer) -> None:
    canned_server.reply(
        200,
        matrix(
            ({"instance": "a"}, [(T0, "1"), (T0 + 60, "2")]),
            ({"instance": "b"}, [(T0 + 60, "+Inf"), (T0 + 120, "4")]),
        ),
    )
    prom = source(canned_server.url, "x", sum_series=True, step=MINUTE)
    series = prom.fetch(START, START + dt.timedelta(minutes=2))
    assert series["y"].tolist() == [1.0, 2.0, 4.0]  # +Inf is a gap; others are summed


@pytest.mark.parametrize(
    ("status", "payload", "pattern"),
    [
        (401, f"Unauthorized: bad token {TOKEN}", r"refused the request \(HTTP 401\): .*\*\*\*"),
        (
            403,
            {"status": "error", "errorType": "forbidden", "error": "tenant not allowed"},
            r"HTTP 403\): tenant not allowed; check bearer_token / basic_auth .* org_id",
        ),
        (
            422,
            {"status": "error", "errorType": "execution", "error": "too many samples"},
            r"could not evaluate query .* \(execution\): too many samples",
        ),
        (
            503,
            {"status": "error", "errorType": "timeout", "error": "query timed out"},
            r"timed out on the server \(timeout\): query timed out",
        ),
        (404, "404 page not found", r"no query API at .*/api/v1/query_range \(HTTP 404\)"),
        (502, "<html>Bad Gateway</html>", r"answered HTTP 502 \(no JSON\): <html>Bad Gateway"),
    ],
)
def test_error_answers_carry_the_servers_message_and_never_the_token(
    canned_server: CannedServer, status: int, payload: Any, pattern: str
) -> None:
    canned_server.reply(status, payload)
    prom = track(
        PrometheusMetricSource.from_settings(settings(canned_server.url, bearer_token=TOKEN))
    )
    with pytest.raises(CollectorError, match=pattern) as info:
        prom.fetch(START, START + dt.timedelta(hours=1))
    assert TOKEN not in str(info.value)


def test_non_matrix_or_malformed_results_are_refused(canned_server: CannedServer) -> None:
    canned_server.reply(200, {"status": "success", "data": {"resultType": "vector", "result": []}})
    with pytest.raises(CollectorError, match="expected a range vector"):
        source(canned_server.url, "x").fetch(START, START)
    canned_server.reply(200, matrix(({}, [(T0, "lots")])))
    with pytest.raises(CollectorError, match="malformed query_range answer"):
        source(canned_server.url, "x").fetch(START, START)
    # each of these was a traceback (exit 3)
    canned_server.reply(200, {"status": "success", "data": "x"})
    with pytest.raises(CollectorError, match="malformed answer \\(data is a str"):
        source(canned_server.url, "x").fetch(START, START)
    canned_server.reply(200, matrix(({}, [(T0 * 1000, "1")])))
    with pytest.raises(CollectorError, match="is not Unix seconds \\(milliseconds\\?\\)"):
        source(canned_server.url, "x").fetch(START, START)


def test_client_timeout(canned_server: CannedServer) -> None:
    canned_server.reply(200, matrix(({}, [(T0, "1")])), delay=2.0)
    prom = track(PrometheusMetricSource.from_settings(settings(canned_server.url, timeout=0.2)))
    with pytest.raises(
        CollectorError, match=r"no answer from Prometheus at .* in time \(ReadTimeout"
    ):
        prom.fetch(START, START)


def test_missing_ca_file_is_a_collector_error(tmp_path: Any) -> None:
    with pytest.raises(CollectorError, match="ca_file .*missing.pem: cannot load certificates"):
        PrometheusMetricSource.from_settings(
            settings("https://127.0.0.1:1", ca_file=tmp_path / "missing.pem")
        )


# -- pure rules -------------------------------------------------------------------------
def test_auto_step_keeps_the_point_count_reasonable() -> None:
    assert auto_step(dt.timedelta(hours=1)) == MINUTE
    assert auto_step(dt.timedelta(days=7)) == MINUTE
    assert auto_step(dt.timedelta(days=8)) == dt.timedelta(minutes=2)
    assert auto_step(dt.timedelta(days=21)) == dt.timedelta(minutes=5)
    assert auto_step(dt.timedelta(days=56)) == dt.timedelta(minutes=10)
    assert auto_step(dt.timedelta(days=400)) == dt.timedelta(hours=1)
    assert auto_step(dt.timedelta(days=56), max_points=100_000) == MINUTE


def test_request_ranges_cover_every_point_once() -> None:
    first = START
    ranges = request_ranges(first, first + 25 * MINUTE, MINUTE, 10)
    assert ranges == [
        (first, first + 9 * MINUTE),
        (first + 10 * MINUTE, first + 19 * MINUTE),
        (first + 20 * MINUTE, first + 25 * MINUTE),
    ]
    assert request_ranges(first, first, MINUTE, 10) == [(first, first)]


def test_default_range_is_the_lookback_and_shorter_than_a_step_is_empty(
    canned_server: CannedServer,
) -> None:
    canned_server.reply(200, matrix(({}, [(T0, "1")])))
    prom = source(canned_server.url, "x", clock=lambda: START, lookback=dt.timedelta(days=8))
    prom.fetch(None, None)
    form = parse_qs(canned_server.requests[0].body)
    assert float(form["start"][0]) == T0 - 8 * 86400 and float(form["end"][0]) == T0
    assert form["step"] == ["120"]
    assert (
        source(canned_server.url, "x", step=dt.timedelta(hours=1))
        .fetch(START + MINUTE, START + 2 * MINUTE)
        .empty
    )


# -- settings ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "prometheus:9090"}, "not a base URL"),
        ({"url": "http://user:pw@prom:9090"}, "not in the url"),
        ({"bearer_token": "t", "basic_auth": {"username": "u", "password": "p"}}, "not both"),
        ({"headers": {"Authorization": "Bearer x"}}, "bearer_token or basic_auth"),
        ({"headers": {"x-scope-orgid": "t"}}, "org_id"),
        ({"ca_file": "ca.pem", "insecure_skip_verify": True}, "contradict"),
        ({"step": "1.5s"}, "whole number of seconds"),
        ({"query": ""}, "at least 1 character"),
    ],
)
def test_settings_validation(fields: dict[str, Any], message: str) -> None:
    data = {"url": "http://prom:9090", "query": "up", **fields}
    with pytest.raises(ValidationError, match=message):
        PrometheusSource(**data)


def test_settings_hide_secrets() -> None:
    parsed = PrometheusSource(
        url="https://prom.example/prometheus/", query="up", bearer_token=TOKEN
    )
    assert parsed.url == "https://prom.example/prometheus"
    assert TOKEN not in repr(parsed) and TOKEN not in str(parsed.model_dump())


def test_settings_file_with_sources_env_secret_and_relative_ca_file(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ca.pem").write_text("not used here")
    (tmp_path / "forescale.yaml").write_text(
        "services:\n"
        "  web:\n"
        "    source: {type: prometheus, url: 'http://prom:9090', query: up, ca_file: ca.pem}\n"
        "    capacity_per_unit: 100\n    min_units: 1\n    max_units: 5\n"
        "    iac: {working_dir: tf, address: web_min}\n"
        "  api:\n"
        "    source: {type: cloudwatch, namespace: AWS/ApplicationELB, metric_name: RequestCount,\n"
        "             period: 5m, region: eu-west-1}\n"
        "    capacity_per_unit: 100\n    min_units: 1\n    max_units: 5\n"
        "    iac: {working_dir: tf, address: api_min}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("FORESCALE_SERVICES__WEB__SOURCE__BEARER_TOKEN", TOKEN)
    loaded = load_settings(tmp_path / "forescale.yaml")
    web = loaded.services["web"].source
    assert isinstance(web, PrometheusSource)
    assert web.ca_file == tmp_path / "ca.pem"
    assert web.bearer_token is not None and web.bearer_token.get_secret_value() == TOKEN
    assert isinstance(loaded.services["api"].source, CloudWatchSource)


def _cut_off_at_the_deadline(url: str) -> None:
    """A fetch from ``url`` with a 0.3 s read timeout ends at its 3 s deadline."""
    prom = PrometheusMetricSource.from_settings(settings(url, timeout=0.3))
    try:
        with pytest.raises(CollectorError, match=r"no complete answer after 3 s"):
            prom.fetch(START, START)
    finally:
        prom.close()


def test_an_answer_that_trickles_in_is_cut_off_at_the_deadline() -> None:
    """A server that sends its (valid) answer one byte at a time never tripped the
    client's per-read timeout, and collect waited without end."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = json.dumps(matrix(({}, [(T0, "1")]))).encode() * 1000  # long enough to trickle
    stop = threading.Event()

    class Drip(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for i in range(len(body)):
                    if stop.wait(0.05):
                        return
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
            except (OSError, BrokenPipeError, ConnectionResetError):
                return

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        _cut_off_at_the_deadline(url)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


def test_headers_that_trickle_in_are_cut_off_at_the_deadline() -> None:
    """A server that sends one header line at a time, forever, kept every read under the
    client's timeout: only a watchdog on the whole answer ends it."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    n = 0
                    while not stop.wait(0.1):
                        conn.sendall(f"X-Drip-{n}: 1\r\n".encode())
                        n += 1
                except OSError:
                    continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        _cut_off_at_the_deadline(url)
    finally:
        stop.set()
        thread.join(timeout=30)
        listener.close()
