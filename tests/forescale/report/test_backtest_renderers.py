"""The backtest report's formats: JSON (documented schema), text and HTML."""

from __future__ import annotations

import json
import re

import pytest

from forescale.forecaster.backtest import BacktestResult
from forescale.forecaster.challengers import SEASONAL_NAIVE
from forescale.report.backtest_json import BACKTEST_SCHEMA
from forescale.report.render import render_backtest
from tests.forescale.report.conftest import SERVICE, SETTINGS, SOURCE
from tests.forescale.report.conftest import as_json as _json


def test_json_round_trips_without_nan_and_names_every_approach(result: BacktestResult) -> None:
    data = _json(result)
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert data["schema"] == BACKTEST_SCHEMA
    approaches = data["approaches"]
    assert isinstance(approaches, list)
    assert [a["name"] for a in approaches] == [
        "forescale",
        "seasonal_naive_x1_2",
        "reactive",
        "reactive_headroom_20",
        "static_peak",
    ]
    bound = data["hindsight"]
    assert isinstance(bound, dict) and bound["name"] == "hindsight"
    assert result.hindsight is not None and bound["unit_hours"] == result.hindsight.unit_hours
    assert bound["vs_static"] <= 1.0 and bound["under_share"] == 0.0
    assert data["horizon"] == {"seconds": 86400, "text": "1d"}
    assert data["sim_step"] == {"seconds": 300, "text": "5m"}
    assert data["capacity_per_unit"] == result.capacity_per_unit
    assert data["capacity_per_unit_source"] == "peak/20"
    assert data["settings"] == {
        "events": ["launch", "sale"],
        "holidays": None,
        "interval_width": 0.8,
        "lead_time": {"seconds": 900, "text": "15m"},
        "nan_setting": None,
        "target_under": 0.01,
    }
    folds = data["folds"]
    assert isinstance(folds, list)
    assert [f["cutoff"] for f in folds] == [
        "2024-03-10T00:00:00Z",
        "2024-03-11T00:00:00Z",
        "2024-03-12T00:00:00Z",
    ]
    assert data["start"] == "2024-03-10T00:00:00Z"
    assert data["end"] == "2024-03-13T00:00:00Z"
    assert {m["model"] for m in data["metrics"]} == {"forescale", SEASONAL_NAIVE}  # type: ignore[attr-defined]


def test_json_compares_forescale_with_each_baseline(result: BacktestResult) -> None:
    data = _json(result)
    by_name = {a["name"]: a for a in data["approaches"]}  # type: ignore[attr-defined]
    own = by_name["forescale"]
    versus = data["forescale_vs"]
    assert [v["baseline"] for v in versus] == [n for n in by_name if n != "forescale"]  # type: ignore[attr-defined]
    for v in versus:  # type: ignore[attr-defined]
        other = by_name[v["baseline"]]
        assert v["unit_hours_ratio"] == pytest.approx(own["unit_hours"] / other["unit_hours"])
        assert v["under_share_diff"] == pytest.approx(own["under_share"] - other["under_share"])
    dominated = [
        n
        for n, a in by_name.items()
        if n != "forescale"
        and a["unit_hours"] < own["unit_hours"]
        and a["under_share"] < own["under_share"]
    ]
    assert data["dominated_by"] == dominated


def test_json_key_order_is_stable(result: BacktestResult) -> None:
    first = json.dumps(_json(result), allow_nan=False)
    again = json.dumps(
        _json(result, settings=dict(reversed(list(SETTINGS.items())))), allow_nan=False
    )
    assert first == again
    assert list(json.loads(first))[:3] == ["schema", "service", "source"]


def test_a_failed_fold_is_reported_and_nothing_is_nan(partly_failed: BacktestResult) -> None:
    text = render_backtest(
        partly_failed,
        "json",
        service=SERVICE,
        source=SOURCE,
        settings=SETTINGS,
        timezone="UTC",
    )
    data = json.loads(text)
    failed = [f for f in data["folds"] if f["error"]]
    assert len(failed) == 1
    assert failed[0]["model"] is None
    assert "cannot fit <this> fold" in failed[0]["error"]
    assert failed[0]["metrics"] == []
    assert any("1 of 3 folds failed" in n for n in data["notes"])
    # Two scored folds of 288 five-minute steps each.
    assert {a["steps"] for a in data["approaches"]} == {2 * 288}


def test_unsupported_setting_types_are_refused(result: BacktestResult) -> None:
    with pytest.raises(TypeError, match="settings.weird"):
        _json(result, settings={"weird": object()})


def test_text_names_every_approach_and_says_whether_forescale_is_dominated(
    result: BacktestResult,
) -> None:
    text = render_backtest(
        result,
        "text",
        service=SERVICE,
        source=SOURCE,
        settings=SETTINGS,
        timezone="Europe/Berlin",
    )
    for a in result.approaches:
        assert a.name in text
    assert "hindsight" in text and "a bound, not a policy" in text
    assert "forescale is not dominated" in text or "forescale is dominated by" in text
    assert "seasonal_naive 3 of 3 folds (mean band factor \u00d7" in text
    # Cutoffs at UTC midnight are shown on the display clock.
    assert "Sun 2024-03-10 01:00 CET" in text
    assert "lead_time 15m" in text
    for note in result.notes:
        assert note[:40] in text


def test_text_shows_the_failed_fold(partly_failed: BacktestResult) -> None:
    text = render_backtest(
        partly_failed, "text", service=SERVICE, source=SOURCE, settings={}, timezone="UTC"
    )
    assert "fold 1 (cutoff Mon 2024-03-11 00:00 UTC) failed" in text
    assert "failed 1 of 3 folds" in text


def test_html_is_self_contained_with_plots_and_escapes_text(result: BacktestResult) -> None:
    page = render_backtest(
        result,
        "html",
        service="<b>web</b>",
        source="csv <demand>.csv",
        settings={"holidays": "<US>"},
        timezone="America/New_York",
    )
    assert page.count("<svg") == 2
    assert "<b>" not in page
    assert "&lt;b&gt;web&lt;/b&gt;" in page
    assert "csv &lt;demand&gt;.csv" in page
    assert "&lt;US&gt;" in page
    for a in result.approaches:
        assert a.name in page
    # No network resources: nothing to fetch, only in-page references (#id).
    for tag in ("<script", "<link", "<img", "<iframe", "@import"):
        assert tag not in page
    assert re.findall(r"""(?:src|href)=["'](?!#)|url\((?!#)""", page) == []
    assert len(page) < 1_500_000


def test_html_is_deterministic(result: BacktestResult) -> None:
    def page() -> str:
        return render_backtest(
            result, "html", service=SERVICE, source=SOURCE, settings={}, timezone="UTC"
        )

    assert page() == page()


def test_html_renders_a_failed_fold(partly_failed: BacktestResult) -> None:
    page = render_backtest(
        partly_failed, "html", service=SERVICE, source=SOURCE, settings={}, timezone="UTC"
    )
    assert page.count("<svg") == 2
    assert "cannot fit &lt;this&gt; fold" in page


def test_with_a_price_every_approach_has_its_cost(result: BacktestResult) -> None:
    from forescale.forecaster.cost import Price

    price = Price(per_unit_hour=0.25, currency="EUR", source="--unit-price")
    kwargs = {"service": SERVICE, "source": SOURCE, "settings": SETTINGS, "timezone": "UTC"}
    data = json.loads(render_backtest(result, "json", price=price, **kwargs))
    assert data["price"] == {"per_unit_hour": 0.25, "currency": "EUR", "source": "--unit-price"}
    for approach in data["approaches"]:
        assert approach["cost"] == pytest.approx(approach["unit_hours"] * 0.25, rel=1e-12)
    text = render_backtest(result, "text", price=price, **kwargs)
    assert "cost EUR" in text and "0.25 EUR per unit-hour" in text
    static = next(a for a in result.approaches if a.name == "static_peak")
    assert f"{static.unit_hours * 0.25:,.2f}" in text
    plain = json.loads(render_backtest(result, "json", **kwargs))
    assert plain["price"] is None and all(a["cost"] is None for a in plain["approaches"])
    assert "cost EUR" not in render_backtest(result, "text", **kwargs)
