"""The plan view: each line decided once, from the records."""

from __future__ import annotations

from dataclasses import replace

from forescale.report.blocks import plain
from forescale.report.plan_view import STALE_WARNING, build_plan_view
from tests.forescale.report import samples


def test_a_planned_service_is_headed_by_its_next_change() -> None:
    [web, api] = build_plan_view(samples.report()).services
    assert plain(web.title) == "web: raise 12 \u2192 15 units at Wed 2014-11-26 18:45 EST"
    assert plain(api.title) == "api: no change: 12 units covers the forecast horizon"
    single = replace(samples.stale(), plan=replace(samples.stale().plan, current_units=1))
    [one] = build_plan_view(replace(samples.report(), services=(single,))).services
    assert plain(one.title).endswith("no change: 1 unit covers the forecast horizon")


def test_the_summary_lines_say_what_was_used_in_the_display_timezone() -> None:
    [web, _] = build_plan_view(samples.report()).services
    assert [line.label for line in web.summary] == ["history", "forecast", "capacity"]
    assert plain(web.forecast.text).endswith("until Fri 2014-11-28 18:00 EST")
    assert [s.style for s in web.capacity.text if s.style == "code"] == ["code", "code"]
    assert web.forecast_start is not None and web.forecast_start.hour == 23  # UTC


def test_peaks_effects_and_schedule_rows() -> None:
    [web, api] = build_plan_view(samples.report()).services
    assert [row[0] for row in web.peak_table.rows] == [
        "Wed 2014-11-26 20:00 EST",
        "Thu 2014-11-27 20:00 EST",
        "Fri 2014-11-28 18:00 EST",
    ]
    assert [c.align for c in web.peak_table.columns] == ["left", "right", "right", "left"]
    assert web.peak_table.rows[0][1:3] == ("1,200", "1,440")
    assert [e.label for e in web.effects] == ["Thanksgiving \u221230 %", "Launch <beta> +25 %"]
    assert web.effects[1].line.endswith("learned from 2 past occurrence(s)")
    assert web.schedule.rows[0][:2] == ("Wed 2014-11-26 18:45 EST", "12 \u2192 15")
    assert api.schedule.rows == (("\u2014", "none", "current capacity covers the horizon"),)


def test_notes_warn_about_stale_data_first() -> None:
    [web, api] = build_plan_view(samples.report()).services
    assert web.notes == (
        "ignored lower 15\u219214 at 23:00 EST: frees 1 of 15 units",
        "ensemble: the mean of prophet + seasonal_naive",
        "model: record too short",
        "pipeline note",
    )
    assert api.notes[0] == STALE_WARNING
    assert api.notes[1:] == (
        "ensemble: the mean of prophet + seasonal_naive",
        "model: record too short",
    )


def test_the_diff_is_split_into_marked_lines_or_says_none_is_due() -> None:
    [web, api] = build_plan_view(samples.report()).services
    assert plain(web.diff.title) == "Diff for the next change (not written: dry-run)"
    kinds = {line.text: line.kind for line in web.diff.lines}
    assert kinds["+web_min_size = 15"] == "add" and kinds["-web_min_size = 12"] == "delete"
    assert kinds[" other = 1"] == "context"
    assert "\n".join(line.text for line in web.diff.lines) + "\n" == samples.DIFF
    assert api.diff.lines == () and plain(api.diff.title) == "no variable file change is due"


def test_the_report_title_failures_and_footer() -> None:
    view = build_plan_view(samples.report())
    assert plain(view.title) == "forescale plan as of Wed 2014-11-26 18:00 EST \u2014 mode dry-run"
    [failure] = view.failures
    assert plain(failure.title) == "worker: not planned"
    assert view.footer == "dry-run: nothing was written to any Terraform file."


def test_an_empty_forecast_has_no_span_and_no_peaks() -> None:
    web = samples.web()
    empty = replace(web, forecast=replace(web.forecast, frame=web.forecast.frame.iloc[0:0]))
    [view] = build_plan_view(replace(samples.report(), services=(empty,))).services
    assert view.forecast_start is None and view.forecast_end is None
    assert view.peaks == () and view.peak_table.rows == () and view.effects == ()
    assert plain(view.forecast.text).endswith("until \u2014")
