"""The Mermaid xychart: valid xychart-beta text, finite numbers, peaks kept, deterministic."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import replace
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from forescale.report.mermaid import (
    MAX_POINTS,
    XyChart,
    demand_chart,
    render_xychart,
    service_chart,
)
from tests.forescale.report import samples

TZ = ZoneInfo(samples.TIMEZONE)
QUOTED = r'"[^"\n`]*"'
NUMBER = r"-?\d+(?:\.\d{1,2})?"


def parse(block: str) -> dict[str, object]:
    """A strict reader of the subset of xychart-beta forescale writes: fails on anything else."""
    lines = block.splitlines()
    assert lines[0] == "```mermaid" and lines[-1] == "```", block
    assert lines[1].startswith("%%{init: ") and lines[1].endswith("}%%")
    assert lines[2] == "xychart-beta"
    title = re.fullmatch(rf"    title ({QUOTED})", lines[3])
    x_axis = re.fullmatch(rf"    x-axis ({QUOTED}) \[((?:{QUOTED}, )*{QUOTED})\]", lines[4])
    y_axis = re.fullmatch(rf"    y-axis ({QUOTED}) 0 --> ({NUMBER})", lines[5])
    assert title and x_axis and y_axis, lines[3:6]
    labels = re.findall(QUOTED, x_axis.group(2))
    series = []
    for line in lines[6:-1]:
        found = re.fullmatch(rf"    line \[((?:{NUMBER}, )*{NUMBER})\]", line)
        assert found, line
        values = [float(v) for v in found.group(1).split(", ")]
        assert all(math.isfinite(v) for v in values)
        series.append(values)
    return {
        "title": title.group(1)[1:-1],
        "labels": [label[1:-1] for label in labels],
        "y_max": float(y_axis.group(2)),
        "lines": series,
    }


def test_the_sample_service_renders_as_valid_xychart_with_equal_lengths() -> None:
    chart = service_chart(samples.web(), TZ)
    assert chart is not None
    doc = parse(render_xychart(chart))
    labels, lines = doc["labels"], doc["lines"]
    assert isinstance(labels, list) and isinstance(lines, list)
    assert 2 <= len(labels) <= MAX_POINTS
    assert len(set(labels)) == len(labels)  # a band axis merges equal categories
    assert len(lines) == 3 and all(len(line) == len(labels) for line in lines)
    # 12 h of history and 48 h of forecast in 90-minute buckets, on New York's clock
    assert (labels[0], labels[1], labels[-1], len(labels)) == (
        "Nov 26 05:30",
        "Nov 26 07:00",
        "Nov 28 17:30",
        41,
    )
    assert "units \u00d7 100" in str(doc["title"]) and "demand axis" in str(doc["title"])
    assert max(max(line) for line in lines) <= float(doc["y_max"])  # type: ignore[arg-type]


def test_peaks_survive_downsampling_and_capacity_follows_the_plan() -> None:
    service = samples.web()
    chart = service_chart(service, TZ)
    assert chart is not None
    demand, band, capacity = chart.lines
    assert max(band) == pytest.approx(service.forecast.frame["yhat_upper"].max(), abs=0.005)
    assert max(demand) == pytest.approx(service.forecast.frame["yhat"].max(), abs=0.005)
    # before now: today's 12 units; the raise to 15 and the lower to 10 in the horizon
    assert capacity[0] == 1200 and 1500 in capacity and capacity[-1] == 1000
    assert capacity.index(1500) < capacity.index(1000)
    # the band is not below the point forecast anywhere
    assert all(b >= d for b, d in zip(band, demand, strict=True))


def test_rendering_is_deterministic() -> None:
    first = render_xychart(service_chart(samples.web(), TZ))  # type: ignore[arg-type]
    second = render_xychart(service_chart(samples.web(), TZ))  # type: ignore[arg-type]
    assert first == second


def test_quotes_and_backticks_in_names_cannot_break_the_block() -> None:
    service = replace(samples.web(), name='web "edge" `v2`\nnext')
    block = render_xychart(service_chart(service, TZ))  # type: ignore[arg-type]
    doc = parse(block)
    assert str(doc["title"]).startswith("web 'edge' 'v2' next:")


def test_nan_and_infinite_values_never_reach_the_text() -> None:
    service = samples.web()
    history = service.recent_history.copy()
    history.loc[3:8, "y"] = np.nan
    frame = service.forecast.frame.copy()
    frame.loc[10, "yhat_upper"] = np.inf
    frame.loc[11:14, "yhat"] = np.nan
    chart = demand_chart(
        name="web",
        history=history,
        forecast=frame,
        desired=service.plan.desired,
        current_units=12,
        capacity_per_unit=100,
        interval_width=0.9,
        now=samples.AS_OF,
        tz=TZ,
    )
    assert chart is not None
    block = render_xychart(chart)
    assert "nan" not in block.lower() and "inf" not in block.lower()
    parse(block)


def test_a_long_horizon_is_downsampled_to_at_most_the_limit() -> None:
    now = samples.AS_OF
    ds = pd.date_range(now, periods=60 * 24 * 12, freq="5min", tz="UTC")  # 60 days
    forecast = pd.DataFrame({"ds": ds, "yhat": 1.0, "yhat_upper": 2.0})
    forecast.loc[5000, "yhat_upper"] = 99.0  # one spike, 5 minutes long
    history = pd.DataFrame({"ds": pd.date_range(now - dt.timedelta(days=3), now, freq="5min")})
    history["y"] = 1.5
    desired = pd.DataFrame({"ds": [now], "units": [3]})
    chart = demand_chart(
        name="web",
        history=history,
        forecast=forecast,
        desired=desired,
        current_units=2,
        capacity_per_unit=1,
        interval_width=0.8,
        now=now,
        tz=ZoneInfo("UTC"),
    )
    assert chart is not None
    doc = parse(render_xychart(chart))
    labels = doc["labels"]
    assert isinstance(labels, list) and len(labels) <= MAX_POINTS
    assert len(set(labels)) == len(labels)
    assert max(chart.lines[1]) == 99.0  # the spike is kept


def test_nothing_to_show_is_no_chart() -> None:
    empty = pd.DataFrame({"ds": pd.DatetimeIndex([], tz="UTC"), "y": []})
    chart = demand_chart(
        name="web",
        history=empty,
        forecast=pd.DataFrame(columns=["ds", "yhat", "yhat_upper"]),
        desired=pd.DataFrame(columns=["ds", "units"]),
        current_units=1,
        capacity_per_unit=1,
        interval_width=0.9,
        now=samples.AS_OF,
        tz=TZ,
    )
    assert chart is None


def test_a_malformed_chart_is_refused_not_written() -> None:
    chart = XyChart(
        title="t", x_title="x", labels=("a", "b"), y_title="y", y_max=1, lines=((1.0,),), legend=""
    )
    with pytest.raises(ValueError, match="1 values for 2 labels"):
        render_xychart(chart)
    with pytest.raises(ValueError, match="not finite"):
        render_xychart(replace(chart, lines=((1.0, math.nan),)))


def test_the_markdown_plan_report_has_one_chart_per_service() -> None:
    from forescale.report.render import render_plan

    document = render_plan(samples.report(), "markdown")
    blocks = re.findall(r"```mermaid\n.*?\n```", document, flags=re.S)
    assert len(blocks) == 2  # web and api (the failed worker has none)
    for block in blocks:
        doc = parse(block)
        labels, lines = doc["labels"], doc["lines"]
        assert isinstance(labels, list) and isinstance(lines, list)
        assert all(len(line) == len(labels) for line in lines)
    assert document.count("Lines: grey") == 2
    assert document.index("## web") < document.index("```mermaid") < document.index("## api")
