"""The backtest view: each line decided once, and shown by the text and the HTML alike."""

from __future__ import annotations

import dataclasses
import html
import re

from forescale.forecaster.backtest import BacktestResult
from forescale.report.backtest_html import render_backtest_html
from forescale.report.backtest_json import backtest_json
from forescale.report.backtest_text import render_backtest_text
from forescale.report.backtest_view import BacktestView, build_backtest_view
from forescale.report.blocks import plain
from tests.forescale.report.conftest import SERVICE, SETTINGS, SOURCE


def _view(result: BacktestResult, settings: dict[str, object] = SETTINGS) -> BacktestView:
    return build_backtest_view(
        result, service=SERVICE, source=SOURCE, settings=settings, timezone="Europe/Berlin"
    )


def _words(text: str) -> str:
    """``text`` with every run of white space as one space (rich wraps at 140 columns)."""
    return " ".join(text.split())


def _visible(page: str) -> str:
    page = re.sub(r"<svg.*?</svg>", "", page, flags=re.S)
    return _words(html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _lines(view: BacktestView) -> list[str]:
    """Every line the view says outside its tables."""
    assert view.settings_line is not None
    return [
        view.history,
        view.capacity_per_unit,
        view.settings_line,
        view.dominance,
        view.choices,
        *view.failures,
        *view.notes,
    ]


def test_the_view_words_the_headline_and_the_settings(result: BacktestResult) -> None:
    view = _view(result)
    assert plain(view.title) == "forescale backtest \u2014 web"
    assert view.history.startswith(f"{SOURCE}: 3 folds, cutoffs Sun 2024-03-10 01:00 CET")
    assert view.capacity_per_unit.endswith("(peak evaluated demand / 20)")
    assert view.settings_line == (
        "events [launch, sale], holidays None, interval_width 0.8, lead_time 15m, "
        "nan_setting nan, target_under 0.01"
    )
    assert _view(result, settings={}).settings_line is None
    assert view.approaches.title == f"Capacity over {3 * 288:,} simulated steps"


def test_text_and_html_show_the_same_lines_and_tables(partly_failed: BacktestResult) -> None:
    view = _view(partly_failed)
    text, page = _words(render_backtest_text(view)), _visible(render_backtest_html(view))
    for line in _lines(view):
        assert _words(line) in text
        assert _words(line) in page
    for table in (view.metrics, view.approaches):
        assert table.title in text and table.title in page
        for row in table.rows:
            assert row[0] in text and row[0] in page


def test_no_scored_fold_is_one_empty_row_in_every_format(result: BacktestResult) -> None:
    view = _view(dataclasses.replace(result, metrics=()))
    assert view.metrics.rows == (("\u2014", "0", *("\u2014",) * 5),)
    text = render_backtest_text(view)
    assert re.search(r"\u2014 +\u2502 +0 \u2502", text)
    assert "<td>\u2014</td><td>0</td>" in render_backtest_html(view)


def test_without_forescale_nothing_is_compared(result: BacktestResult) -> None:
    others = tuple(a for a in result.approaches if a.name != "forescale")
    view = _view(dataclasses.replace(result, approaches=others))
    assert view.dominance == "forescale was not simulated"
    assert view.dominated_by == ()
    assert {c.baseline for c in view.comparisons} == {a.name for a in others}
    assert all(c.unit_hours_ratio is None and c.under_share_diff is None for c in view.comparisons)
    data = backtest_json(view)
    assert data["dominated_by"] == []
    assert "forescale was not simulated" in render_backtest_text(view)


def test_a_dominated_forescale_is_named_with_who_dominates_it(result: BacktestResult) -> None:
    cheaper = [
        dataclasses.replace(a, unit_hours=1.0, under_share=-1.0) if a.name == "reactive" else a
        for a in result.approaches
    ]
    view = _view(dataclasses.replace(result, approaches=tuple(cheaper)))
    assert view.dominated_by == ("reactive",)
    assert view.dominance.startswith(
        "forescale is dominated by reactive: each is at least as good on both"
    )
    assert backtest_json(view)["dominated_by"] == ["reactive"]


def test_folds_and_failures(partly_failed: BacktestResult) -> None:
    view = _view(partly_failed)
    [failure] = view.failures
    assert failure.startswith("fold 1 (cutoff Mon 2024-03-11 01:00 CET) failed: ")
    assert failure.endswith("cannot fit <this> fold")
    assert "failed 1 of 3 folds" in view.choices
    failed = view.folds.rows[1]
    assert failed[:4] == ("1", "Mon 2024-03-11 01:00 CET", "\u2014", "\u2014")
    assert "cannot fit <this> fold" in failed[-1]
    assert view.folds.rows[0][2] == "seasonal_naive" and view.folds.rows[0][3].startswith("\u00d7")
