"""URLs with credentials are never echoed: redact_url, settings errors, describe_source and
the Prometheus collector's errors."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forescale.collectors.base import describe_source
from forescale.collectors.prometheus import PrometheusMetricSource
from forescale.config.redact import redact_url, redact_urls
from forescale.config.settings import load_settings
from forescale.errors import CollectorError, ConfigError

SECRET_URL = "https://u:pw-SECRET@prom.example:9090/prom?api_key=SECRET&org=SECRET2#SECRET3"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (SECRET_URL, "https://u:***@prom.example:9090/prom?api_key=***&org=***#***"),
        ("https://u:pw@host/?api_key=SECRET", "https://u:***@host/?api_key=***"),
        ("http://TOKEN@host/", "http://***@host/"),
        ("http://host:9090/prometheus", "http://host:9090/prometheus"),
        ("http://host/?SECRET", "http://host/?***"),
        ("http://host/?a=1&b=&c", "http://host/?a=***&b=***&***"),
        ("http://u:SECRET@[::1/?k=SECRET", "http://***@[::1/?***"),  # malformed netloc
        ("http://host:port-SECRET/?k=SECRET", "http://host:port-SECRET/?***"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    user=st.text("abcxyz019", max_size=8),
    secret=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.~%", min_size=6, max_size=20),
    key=st.text("abcdefghij_", min_size=1, max_size=8),
    path=st.sampled_from(["", "/", "/prom", "/a/b"]),
)
def test_redact_url_never_shows_the_password_or_a_query_value(
    user: str, secret: str, key: str, path: str
) -> None:
    for url in (
        f"https://{user}:{secret}@host:9090{path}?{key}={secret}",
        f"http://host{path}?{key}={secret}&x=1",
        f"http://{secret}@host{path}",
    ):
        shown = redact_url(url)
        assert secret not in shown, (url, shown)
        assert "host" in shown and (key in shown or "?" not in url)


def test_redact_urls_in_text_keeps_the_punctuation_around() -> None:
    text = f"cannot connect to {SECRET_URL}: refused. Retry"
    shown = redact_urls(text)
    assert "SECRET" not in shown
    assert shown.startswith("cannot connect to https://u:***@prom.example:9090/prom?")
    assert shown.endswith(": refused. Retry")


def test_a_settings_error_for_a_prometheus_url_with_secrets_hides_them(tmp_path: Path) -> None:
    path = tmp_path / "forescale.yaml"
    path.write_text(
        "services:\n  web:\n"
        f"    source: {{type: prometheus, url: '{SECRET_URL}', step: 0s}}\n"
        "    capacity_per_unit: 1\n    min_units: 1\n    max_units: 2\n"
        "    iac: {working_dir: tf, address: a}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "services.web.source.url" in message and "services.web.source.step" in message
    assert "SECRET" not in message and "pw-" not in message
    assert "prom.example:9090" in message  # where, without how to get in


def test_a_cloudwatch_endpoint_with_secrets_is_hidden_too(tmp_path: Path) -> None:
    path = tmp_path / "forescale.yaml"
    path.write_text(
        "services:\n  web:\n"
        "    source: {type: cloudwatch, region: us-east-1, expression: SUM(x), "
        "endpoint_url: 'ftp://k:SECRET@h/?t=SECRET'}\n"
        "    capacity_per_unit: 1\n    min_units: 1\n    max_units: 2\n"
        "    iac: {working_dir: tf, address: a}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "services.web.source.endpoint_url" in str(info.value)
    assert "SECRET" not in str(info.value)


def test_describe_source_hides_credentials() -> None:
    settings = SimpleNamespace(type="prometheus", url=SECRET_URL, query="up")
    shown = describe_source(settings)
    assert "SECRET" not in shown and "prom.example:9090/prom" in shown


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_collector_error_from_an_unreachable_url_hides_credentials() -> None:
    url = f"http://u:pw-SECRET@127.0.0.1:{closed_port()}/prom?api_key=SECRET"
    settings = SimpleNamespace(
        url=url,
        query="up",
        step=dt.timedelta(minutes=1),
        max_points=10_080,
        sum_series=False,
        query_timeout=None,
        lookback=dt.timedelta(hours=1),
        headers={},
        bearer_token=None,
        basic_auth=None,
        org_id=None,
        insecure_skip_verify=False,
        ca_file=None,
        timeout=5.0,
    )
    prom = PrometheusMetricSource.from_settings(settings)
    try:
        assert "SECRET" not in prom.describe()
        with pytest.raises(CollectorError) as info:
            prom.fetch()
    finally:
        prom.close()
    message = str(info.value)
    assert "cannot connect" in message and "127.0.0.1" in message
    assert "SECRET" not in message and "pw-" not in message


def test_a_collector_error_for_a_404_hides_credentials() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="nothing here")

    prom = PrometheusMetricSource(
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        url="http://u:pw-SECRET@prom.example/x?api_key=SECRET",
        query="up",
        step=dt.timedelta(minutes=1),
        lookback=dt.timedelta(hours=1),
    )
    try:
        with pytest.raises(CollectorError) as info:
            prom.fetch()
    finally:
        prom.close()
    assert "HTTP 404" in str(info.value) and "SECRET" not in str(info.value)
