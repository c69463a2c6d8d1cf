from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber
from pydantic import TypeAdapter, ValidationError

from forescale.collectors.base import build_source
from forescale.collectors.cloudwatch import (
    CloudWatchMetricSource,
    auto_period,
    finest_period,
    kept_for,
)
from forescale.collectors.series import infer_step
from forescale.config.settings import CloudWatchSource, MetricSourceSettings
from forescale.errors import CollectorError
from tests.collectors.conftest import demand_shape, free_port, peak_hours

UTC = dt.UTC
FIVE_MIN = dt.timedelta(minutes=5)
NAMESPACE = "Forescale/Test"
METRIC = "RequestCount"
BASE = 100.0  # lb-a requests per 5 minutes at shape 1.0


def client_for(url: str, *, max_attempts: int = 2) -> Any:
    return boto3.client(
        "cloudwatch",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=2,
            read_timeout=30,
        ),
    )


def expected_sum(slot: pd.Series) -> np.ndarray:  # type: ignore[type-arg]
    seconds = slot.astype("int64").to_numpy() // 10**9
    return np.round(BASE * demand_shape(seconds.astype(float)), 3)


class History:
    """Three days of 5-minute history in moto, ending at ``end`` (exclusive).

    lb-a: two datapoints per slot (40 % at +0 s, 60 % at +120 s), so Sum is the shape,
    Maximum 60 %, Minimum 40 %, Average 50 %, SampleCount 2; no data in [gap_start, gap_end).
    lb-b: one datapoint per slot of a quarter of the shape.
    """

    def __init__(self, client: Any) -> None:
        now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
        self.end = now - dt.timedelta(minutes=now.minute % 5) - FIVE_MIN
        self.start = self.end - dt.timedelta(days=3)
        self.gap_start = self.end - dt.timedelta(hours=30)
        self.gap_end = self.gap_start + dt.timedelta(hours=2)
        self.slots = pd.date_range(self.start, self.end, freq="5min", inclusive="left")
        totals = expected_sum(pd.Series(self.slots))
        datums: list[dict[str, Any]] = []
        for slot, total in zip(self.slots.to_pydatetime(), totals, strict=True):
            if not (self.gap_start <= slot < self.gap_end):
                for offset, share in ((0, 0.4), (120, 0.6)):
                    datums.append(
                        self.datum("lb-a", slot + dt.timedelta(seconds=offset), total * share)
                    )
            datums.append(self.datum("lb-b", slot, total * 0.25))
        for first in range(0, len(datums), 1000):  # PutMetricData takes at most 1000
            client.put_metric_data(Namespace=NAMESPACE, MetricData=datums[first : first + 1000])

    @staticmethod
    def datum(lb: str, when: dt.datetime, value: float) -> dict[str, Any]:
        return {
            "MetricName": METRIC,
            "Dimensions": [{"Name": "LoadBalancer", "Value": lb}],
            "Timestamp": when,
            "Value": round(value, 6),
            "Unit": "Count",
        }

    def clock(self) -> dt.datetime:
        return self.end + dt.timedelta(seconds=30)

    def in_gap(self, ds: pd.Series) -> np.ndarray:  # type: ignore[type-arg]
        return ((ds >= self.gap_start) & (ds < self.gap_end)).to_numpy()


@pytest.fixture
def moto_client(moto_url: str) -> Any:
    return client_for(moto_url)


@pytest.fixture
def history(moto_client: Any) -> History:
    return History(moto_client)


def source(client: Any, history: History, **overrides: Any) -> CloudWatchMetricSource:
    options: dict[str, Any] = {
        "namespace": NAMESPACE,
        "metric_name": METRIC,
        "dimensions": {"LoadBalancer": "lb-a"},
        "statistic": "Sum",
        "period": FIVE_MIN,
        "clock": history.clock,
    }
    options.update(overrides)
    return CloudWatchMetricSource(client=client, **options)


# -- against moto_server over HTTP ------------------------------------------------------
@pytest.mark.external_service
def test_reads_history_back_with_timestamps_values_and_gaps(
    moto_client: Any, history: History
) -> None:
    series = source(moto_client, history).fetch(history.start, None)

    assert str(series["ds"].dt.tz) == "UTC"
    assert series["ds"].tolist() == list(history.slots)  # every slot, no partial last one
    gap = history.in_gap(series["ds"])
    assert gap.sum() == 24  # two hours of 5-minute slots
    assert np.isnan(series["y"].to_numpy()[gap]).all()
    observed = series[~gap]
    np.testing.assert_allclose(observed["y"], expected_sum(observed["ds"]), rtol=1e-6)
    # the daily shape survived: each whole day peaks around 14:00 UTC
    peaks = peak_hours(series["ds"], series["y"])
    assert peaks and set(peaks) <= {13, 14}


@pytest.mark.external_service
def test_dimensions_select_one_load_balancer(moto_client: Any, history: History) -> None:
    series = source(moto_client, history, dimensions={"LoadBalancer": "lb-b"}).fetch(
        history.start, history.end
    )
    assert not series["y"].isna().any()  # lb-b has no gap
    np.testing.assert_allclose(series["y"], expected_sum(series["ds"]) * 0.25, rtol=1e-6)


@pytest.mark.external_service
@pytest.mark.parametrize(
    ("statistic", "factor"),
    [("Average", 0.5), ("Maximum", 0.6), ("Minimum", 0.4), ("SampleCount", None)],
)
def test_statistic_choice(
    moto_client: Any, history: History, statistic: str, factor: float | None
) -> None:
    start = history.end - dt.timedelta(hours=6)
    series = source(moto_client, history, statistic=statistic).fetch(start, history.end)
    assert len(series) == 72
    if factor is None:
        assert series["y"].tolist() == [2.0] * 72
    else:
        np.testing.assert_allclose(series["y"], expected_sum(series["ds"]) * factor, rtol=1e-5)


@pytest.mark.external_service
def test_per_second_divides_by_the_period(moto_client: Any, history: History) -> None:
    start = history.end - dt.timedelta(hours=1)
    series = source(moto_client, history, per_second=True).fetch(start, history.end)
    np.testing.assert_allclose(series["y"], expected_sum(series["ds"]) / 300, rtol=1e-6)


@pytest.mark.external_service
def test_long_range_is_split_into_requests_that_join_into_one_series(
    moto_client: Any, history: History
) -> None:
    sent: list[str] = []

    def count(request: Any, **_: Any) -> None:
        sent.append(request.url)

    moto_client.meta.events.register("before-send.cloudwatch.GetMetricData", count)
    whole = source(moto_client, history).fetch(history.start, history.end)
    assert len(sent) == 1

    sent.clear()
    split = source(moto_client, history, max_datapoints=100).fetch(history.start, history.end)
    assert len(sent) == 9  # 864 five-minute slots, at most 100 per request
    assert split["ds"].is_unique and split["ds"].is_monotonic_increasing
    assert infer_step(split["ds"]) == FIVE_MIN
    pd.testing.assert_frame_equal(split, whole)


@pytest.mark.external_service
def test_incremental_fetch_of_a_later_sub_range_matches_the_full_read(
    moto_client: Any, history: History
) -> None:
    full = source(moto_client, history).fetch(history.start, history.end)
    since = history.end - dt.timedelta(hours=2, minutes=3)  # not on the grid
    later = source(moto_client, history).fetch(since, None)  # end from the clock
    assert later["ds"].iloc[0] == history.end - dt.timedelta(hours=2)  # first slot >= since
    assert later["ds"].iloc[-1] == history.end - FIVE_MIN  # the last complete period
    expected = full[full["ds"] >= later["ds"].iloc[0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(later, expected)


@pytest.mark.external_service
def test_auto_period_follows_the_age_of_the_range_or_the_lookback(
    moto_client: Any, history: History
) -> None:
    last_hour = (history.end - dt.timedelta(hours=1), history.end)
    recent = source(
        moto_client, history, period=None, per_second=True, lookback=dt.timedelta(days=7)
    )
    series = recent.fetch(*last_hour)
    assert infer_step(series["ds"]) == dt.timedelta(minutes=1)
    # lb-a reports at +0 s and +120 s of each 5-minute slot: one-minute gaps in between
    assert series["y"].notna().sum() == 24

    # with the default 56-day lookback the backfill is read at 5 minutes, and so is an
    # incremental fetch of the last hour: the stored series keeps one period
    default = source(moto_client, history, period=None, per_second=True)
    assert infer_step(default.fetch(*last_hour)["ds"]) == FIVE_MIN


@pytest.mark.external_service
def test_unknown_metric_is_a_clear_error(moto_client: Any, history: History) -> None:
    cw = source(moto_client, history, metric_name="RequestCont")
    with pytest.raises(CollectorError, match=r"no datapoints for Forescale/Test/RequestCont"):
        cw.fetch(history.start, history.end)
    with pytest.raises(CollectorError, match="check the name and dimensions"):
        source(moto_client, history, dimensions={"LoadBalancer": "lb-c"}).fetch(
            history.start, history.end
        )


@pytest.mark.external_service
def test_build_source_from_settings_reads_moto(
    moto_url: str, history: History, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    settings = TypeAdapter(MetricSourceSettings).validate_python(
        {
            "type": "cloudwatch",
            "namespace": NAMESPACE,
            "metric_name": METRIC,
            "dimensions": {"LoadBalancer": "lb-b"},
            "period": "5m",
            "region": "us-east-1",
            "endpoint_url": moto_url,
        }
    )
    built = build_source(settings)
    assert isinstance(built, CloudWatchMetricSource)
    assert built.describe() == "cloudwatch Forescale/Test/RequestCount{LoadBalancer=lb-b} Sum"
    series = built.fetch(history.end - dt.timedelta(hours=1), history.end)
    assert len(series) == 12


def test_connection_refused_names_the_endpoint() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    cw = CloudWatchMetricSource(
        client=client_for(url, max_attempts=1), namespace=NAMESPACE, metric_name=METRIC
    )
    end = dt.datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(CollectorError, match=rf"cannot reach CloudWatch at {url} \(us-east-1\)"):
        cw.fetch(end - dt.timedelta(hours=1), end)


def test_missing_profile_is_a_collector_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    settings = CloudWatchSource(
        namespace=NAMESPACE, metric_name=METRIC, period=300, region="eu-west-1", profile="nope"
    )
    with pytest.raises(CollectorError, match="AWS profile 'nope' not found"):
        CloudWatchMetricSource.from_settings(settings)


# -- error paths moto cannot produce: botocore Stubber on a real client ---------------
NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = client_for("https://monitoring.us-east-1.amazonaws.com")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def stub_source(client: Any, **overrides: Any) -> CloudWatchMetricSource:
    options: dict[str, Any] = {
        "namespace": "AWS/ApplicationELB",
        "metric_name": "RequestCount",
        "dimensions": {"LoadBalancer": "app/web/1"},
        "period": FIVE_MIN,
        "max_attempts": 5,
        "clock": lambda: NOW,
    }
    options.update(overrides)
    return CloudWatchMetricSource(client=client, **options)


def page(values: list[float], first: dt.datetime, **extra: Any) -> dict[str, Any]:
    result = {
        "Id": "demand",
        "Label": "RequestCount",
        "Timestamps": [first + i * FIVE_MIN for i in range(len(values))],
        "Values": values,
        "StatusCode": "Complete",
    }
    result.update(extra.pop("result", {}))
    return {"MetricDataResults": [result], "Messages": [], **extra}


@pytest.mark.parametrize("code", ["Throttling", "ThrottlingException", "TooManyRequestsException"])
def test_throttling_after_retries(stubbed: tuple[Any, Stubber], code: str) -> None:
    client, stub = stubbed
    stub.add_client_error(
        "get_metric_data",
        service_error_code=code,
        service_message="Rate exceeded",
        http_status_code=400,
        response_meta={"RetryAttempts": 4},
    )
    with pytest.raises(CollectorError) as info:
        stub_source(client).fetch(NOW - dt.timedelta(hours=1), NOW)
    message = str(info.value)
    assert f"throttled GetMetricData ({code}) after 5 attempt(s)" in message
    assert "retry_mode: adaptive" in message and "Rate exceeded" in message
    assert info.value.__cause__ is not None  # the botocore error is kept as the cause


def test_fewer_values_than_timestamps_is_a_malformed_answer(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    answer = page([1.0, 2.0, 3.0], NOW - dt.timedelta(minutes=15))
    answer["MetricDataResults"][0]["Values"] = [1.0]
    stub.add_response("get_metric_data", answer)
    with pytest.raises(CollectorError, match="3 timestamps and 1 values"):
        stub_source(client).fetch(NOW - dt.timedelta(minutes=15), NOW)


def test_max_attempts_counts_the_first_attempt(
    canned_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore's retries max_attempts counts only the retries: 2 made 3 requests."""
    from forescale.config.settings import CloudWatchSource

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)

    canned_server.reply(
        400,
        {"__type": "ThrottlingException", "message": "Rate exceeded"},
        content_type="application/x-amz-json-1.0",
    )
    settings = CloudWatchSource(
        type="cloudwatch",
        region="us-east-1",
        namespace="AWS/EC2",
        metric_name="CPUUtilization",
        period="5m",
        max_attempts=2,
        endpoint_url=canned_server.url,
    )
    source = CloudWatchMetricSource.from_settings(settings)
    try:
        with pytest.raises(CollectorError, match=r"after 2 attempt\(s\) \(max_attempts 2\)"):
            source.fetch(now - dt.timedelta(hours=1), now)
    finally:
        source.close()
    assert len(canned_server.requests) == 2


def test_an_answer_that_is_not_json_is_a_malformed_answer_not_no_datapoints(
    canned_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 200 whose body is not JSON (a proxy's page) was reported as "no datapoints:
    check the name and dimensions", pointing at the user's settings."""
    from forescale.config.settings import CloudWatchSource

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    canned_server.reply(200, "{not json", content_type="application/x-amz-json-1.0")
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    source = CloudWatchMetricSource.from_settings(
        CloudWatchSource(
            type="cloudwatch",
            region="us-east-1",
            namespace="AWS/EC2",
            metric_name="CPUUtilization",
            period="5m",
            endpoint_url=canned_server.url,
        )
    )
    try:
        with pytest.raises(CollectorError, match=r"malformed answer .* is endpoint_url CloudWatch"):
            source.fetch(now - dt.timedelta(hours=1), now)
    finally:
        source.close()


def test_access_denied_names_the_iam_action(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    stub.add_client_error(
        "get_metric_data",
        service_error_code="AccessDenied",
        service_message="User: arn:aws:iam::1:user/x is not authorized",
        http_status_code=403,
    )
    with pytest.raises(CollectorError, match=r"allow the IAM action cloudwatch:GetMetricData"):
        stub_source(client).fetch(NOW - dt.timedelta(hours=1), NOW)


@pytest.mark.parametrize(
    ("code", "text", "field"),
    [
        (
            "InvalidParameterValue",
            "The value p999 for parameter MetricDataQueries.member.1.MetricStat.Stat is invalid",
            "statistic",
        ),
        ("ValidationError", "The parameter MetricDataQueries.member.1.Period is invalid", "period"),
        ("ValidationError", "Error in expression 'demand': Unrecognized token", "expression"),
    ],
)
def test_invalid_parameters_name_the_setting(
    stubbed: tuple[Any, Stubber], code: str, text: str, field: str
) -> None:
    client, stub = stubbed
    stub.add_client_error("get_metric_data", service_error_code=code, service_message=text)
    with pytest.raises(CollectorError, match=rf"\({code}\): .*fix the setting {field}"):
        stub_source(client).fetch(NOW - dt.timedelta(hours=1), NOW)


def test_client_side_validation_names_the_setting() -> None:
    client = client_for(f"http://127.0.0.1:{free_port()}", max_attempts=1)  # never reached
    cw = stub_source(client, statistic=99)  # settings would refuse it; botocore does too
    with pytest.raises(
        CollectorError, match="invalid CloudWatch query: .*fix the setting statistic"
    ):
        cw.fetch(NOW - dt.timedelta(hours=1), NOW)


def test_partial_data_pages_are_followed(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    first = NOW - dt.timedelta(hours=1)
    expected = {"MetricDataQueries": ANY, "StartTime": first, "EndTime": NOW, "ScanBy": ANY}
    stub.add_response(
        "get_metric_data",
        page([1.0, 2.0], first, result={"StatusCode": "PartialData"}, NextToken="page-2"),
        expected,
    )
    stub.add_response(
        "get_metric_data",
        page([3.0, 4.0], first + 2 * FIVE_MIN),
        {**expected, "NextToken": "page-2"},
    )
    series = stub_source(client).fetch(first, NOW)
    assert series["y"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert series["ds"].iloc[0] == pd.Timestamp(first)


def test_partial_data_without_a_next_token_is_an_error(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    first = NOW - dt.timedelta(hours=1)
    stub.add_response("get_metric_data", page([1.0], first, result={"StatusCode": "PartialData"}))
    with pytest.raises(CollectorError, match="partial data .* without a NextToken"):
        stub_source(client).fetch(first, NOW)


@pytest.mark.parametrize(
    ("status", "message"), [("Forbidden", "cross-account"), ("InternalError", "retry later")]
)
def test_result_status_errors(stubbed: tuple[Any, Stubber], status: str, message: str) -> None:
    client, stub = stubbed
    first = NOW - dt.timedelta(hours=1)
    stub.add_response(
        "get_metric_data",
        page(
            [], first, result={"StatusCode": status, "Messages": [{"Code": "X", "Value": "boom"}]}
        ),
    )
    with pytest.raises(CollectorError, match=rf"\({status}\): X: boom; .*{message}"):
        stub_source(client).fetch(first, NOW)


def test_expression_with_a_metric_sends_both_queries(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    first = NOW - dt.timedelta(minutes=10)
    stub.add_response(
        "get_metric_data",
        page([0.5, 0.25], first),
        {
            "MetricDataQueries": [
                {
                    "Id": "m1",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/ApplicationELB",
                            "MetricName": "RequestCount",
                            "Dimensions": [{"Name": "LoadBalancer", "Value": "app/web/1"}],
                        },
                        "Period": 300,
                        "Stat": "Sum",
                    },
                    "ReturnData": False,
                },
                {
                    "Id": "demand",
                    "Expression": "m1 / PERIOD(m1)",
                    "Period": 300,
                    "ReturnData": True,
                },
            ],
            "StartTime": first,
            "EndTime": NOW,
            "ScanBy": "TimestampAscending",
        },
    )
    cw = stub_source(client, expression="m1 / PERIOD(m1)")
    assert cw.describe() == "cloudwatch expression 'm1 / PERIOD(m1)'"
    assert cw.fetch(first, NOW)["y"].tolist() == [0.5, 0.25]


def test_only_complete_periods_within_the_range_are_requested(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stub = stubbed
    aligned = dt.datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    stub.add_response(
        "get_metric_data",
        page([1.0], aligned),
        {
            "MetricDataQueries": ANY,
            "StartTime": aligned,
            "EndTime": aligned + 2 * FIVE_MIN,
            "ScanBy": ANY,
        },
    )
    start = aligned - dt.timedelta(minutes=2)  # rounded up to 11:00
    end = aligned + dt.timedelta(minutes=13)  # 11:10-11:15 is not complete yet
    stub_source(client).fetch(start, end)
    assert stub_source(client).fetch(aligned, aligned + dt.timedelta(minutes=4)).empty


# -- pure planning rules --------------------------------------------------------------
def test_auto_period_follows_cloudwatch_retention() -> None:
    assert auto_period(dt.timedelta(hours=1)) == dt.timedelta(seconds=60)
    assert auto_period(dt.timedelta(days=14, hours=23)) == dt.timedelta(seconds=60)
    assert auto_period(dt.timedelta(days=15)) == dt.timedelta(seconds=300)
    assert auto_period(dt.timedelta(days=62)) == dt.timedelta(seconds=300)
    assert auto_period(dt.timedelta(days=63)) == dt.timedelta(seconds=3600)
    assert auto_period(dt.timedelta(days=454)) == dt.timedelta(seconds=3600)
    with pytest.raises(CollectorError, match="no data older than 455 days"):
        auto_period(dt.timedelta(days=455))
    assert finest_period(dt.timedelta(minutes=30)) == 1
    assert kept_for(dt.timedelta(seconds=600)) == dt.timedelta(days=63)
    assert kept_for(dt.timedelta(hours=2)) == dt.timedelta(days=455)
    assert kept_for(dt.timedelta(seconds=10)) == dt.timedelta(hours=3)


def test_a_period_finer_than_kept_is_refused(stubbed: tuple[Any, Stubber]) -> None:
    client, _ = stubbed
    cw = stub_source(client, period=dt.timedelta(minutes=1))
    with pytest.raises(
        CollectorError, match=r"period 60 s is finer than CloudWatch keeps .* 20 days old"
    ):
        cw.fetch(NOW - dt.timedelta(days=20), NOW)


def test_default_range_is_the_lookback_clamped_to_retention(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    cw = stub_source(client, period=dt.timedelta(minutes=1), lookback=dt.timedelta(days=56))
    # 56 days asked, but 1-minute data is kept for 15: read (almost) those, in one request
    first = NOW - dt.timedelta(days=15) + dt.timedelta(minutes=1)
    stub.add_response(
        "get_metric_data",
        page([1.0], NOW - dt.timedelta(days=1)),
        {"MetricDataQueries": ANY, "StartTime": first, "EndTime": NOW, "ScanBy": ANY},
    )
    assert cw.fetch(None, None)["y"].tolist() == [1.0]


def test_naive_datetimes_are_a_programming_error(stubbed: tuple[Any, Stubber]) -> None:
    client, _ = stubbed
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        stub_source(client).fetch(dt.datetime(2026, 3, 1), NOW)  # noqa: DTZ001


# -- settings ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"namespace": "AWS/ELB"}, "metric_name is required"),
        ({}, "set a metric .* or an expression"),
        (
            {"expression": "SEARCH('x', 'Sum')", "dimensions": {"a": "b"}},
            "dimensions need a metric",
        ),
        (
            {"namespace": "A", "metric_name": "B", "statistic": "Total"},
            "not a CloudWatch statistic",
        ),
        ({"namespace": "A", "metric_name": "B", "period": "90s"}, "multiple of 60"),
        ({"namespace": "A", "metric_name": "B", "retry_mode": "legacy"}, "standard"),
        ({"namespace": "A", "metric_name": "B", "region": "Ireland"}, "pattern"),
        ({"namespace": "A", "metric_name": "B"}, "Sum with an automatic period mixes totals"),
    ],
)
def test_settings_validation(fields: dict[str, Any], message: str) -> None:
    data = {"region": "eu-west-1", **fields}
    with pytest.raises(ValidationError, match=message):
        CloudWatchSource(**data)


def test_settings_accept_metric_expression_or_both() -> None:
    metric = CloudWatchSource(
        namespace="AWS/ApplicationELB",
        metric_name="RequestCount",
        statistic="p99",
        region="us-east-1",
    )
    assert metric.period is None and metric.max_attempts == 5 and metric.retry_mode == "standard"
    per_second = CloudWatchSource(
        namespace="A", metric_name="B", per_second=True, region="us-east-1"
    )
    assert per_second.statistic == "Sum" and per_second.period is None
    assert CloudWatchSource(expression="SEARCH('{AWS/EC2} CPU', 'Average')", region="us-east-1")
    both = CloudWatchSource(
        namespace="A", metric_name="B", expression="m1 * 2", period=300, region="us-east-1"
    )
    assert both.period == dt.timedelta(minutes=5)
