"""FORESCALE_PR.md: the diff, why (peaks, effects), the chart, the schedule and the record."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from zoneinfo import ZoneInfo

from forescale.forecaster.cost import CostFigures, CostSummary, Price
from forescale.forecaster.shadow import RecordRow
from forescale.iac_writer.guard import GuardResult
from forescale.records import LiveJudgement
from forescale.report.plan_view import ServiceReport, build_service_view
from forescale.report.proposal import Proposal, render_proposal
from tests.forescale.report import samples

TZ = ZoneInfo(samples.TIMEZONE)
CHOICE = {
    "model": "ensemble",
    "basis": "band",
    "factor": 1.15,
    "reason": "lowest under-provisioning on the record",
    "floor_headroom": 0.1,
    "evidence": [
        {"model": "prophet", "steps": 96, "smape": 0.123, "under_share": 0.02, "factor": 1.0},
        {"model": "seasonal_naive", "steps": 96, "smape": None, "under_share": 0.05},
    ],
}


def proposal(service: ServiceReport | None = None, **kwargs: object) -> Proposal:
    service = service or replace(samples.web(), model_choice=CHOICE)
    options: dict[str, object] = {
        "view": build_service_view(service, TZ),
        "timezone": TZ,
        "made_at": samples.AS_OF,
        "diff": samples.DIFF,
        "branch": "forescale/web",
        **kwargs,
    }
    return Proposal(**options)  # type: ignore[arg-type]


def section(text: str, title: str) -> str:
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |^---$)", text, flags=re.S | re.M)
    assert found, f"no section {title!r}"
    return found.group(1)


def test_the_description_carries_the_diff_in_a_diff_fence() -> None:
    text = render_proposal(proposal())
    change = section(text, "The change")
    assert "```diff\n" + samples.DIFF + "```" in change
    assert text.startswith("# forescale: web: raise 12 \u2192 15 units at Wed 2014-11-26 18:45")


def test_why_names_the_peaks_and_their_drivers_and_the_events_with_their_uplift() -> None:
    why = section(render_proposal(proposal()), "Why")
    assert "| when | demand | upper band | driven by |" in why
    assert "daily (weekday shape): 20:00 +50 %" in why  # the daily shape drives the peak
    assert "Thanksgiving \u221230 %" in why and "expected uplift from the calendar" in why
    assert "Launch <beta> +25 %" in why and "learned from 2 past occurrence(s)" in why
    assert "- History: csv demand.csv (value)" in why
    assert "Notes:\n\n- ignored lower" in why and "- pipeline note" in why


def test_the_chart_and_the_schedule_are_there() -> None:
    text = render_proposal(proposal())
    chart = section(text, "Forecast, band and planned capacity")
    assert chart.lstrip().startswith("```mermaid\n") and "xychart-beta" in chart
    assert "units \u00d7 100, on the demand axis" in chart
    schedule = section(text, "Capacity schedule")
    assert schedule.startswith("\n| apply at | change | why |")  # the heading names it
    assert "| Wed 2014-11-26 18:45 EST | 12 \u2192 15 |" in schedule
    assert "| Thu 2014-11-27 00:00 EST | 15 \u2192 10 |" in schedule


def test_the_record_shows_the_choice_live_accuracy_guard_and_run_id() -> None:
    live = LiveJudgement(
        run_id=6, steps=24, error_ratio=0.123, under_share=0.25, refit_due=True, reason="x"
    )
    guard = GuardResult(
        ok=True, reasons=(), changes=(), output_changes=(), summary="1 to update (asg)"
    )
    record = section(render_proposal(proposal(live=live, guard=guard)), "The service's record")
    assert (
        "- Model: ensemble (basis band, band \u00d71.15, observed-floor headroom 10.0%): "
        "lowest under-provisioning on the record"
    ) in record
    assert "| prophet | 96 | 12.3% | 2.0% | \u00d71.00 |" in record
    assert "| seasonal_naive | 96 | \u2014 | 5.0% | \u2014 |" in record
    assert (
        "- Live accuracy: forecast run #6 over 24 steps: weighted error 12.3%, demand above "
        "the planned band on 25.0% of steps; refitted early: x"
    ) in record
    assert "- Guard: passed: 1 to update (asg)" in record
    assert "- Forecast run: #7 (as of Wed 2014-11-26 18:00 EST)" in record
    assert "- Cost:" not in record  # no price configured


def test_without_stored_facts_the_record_says_so() -> None:
    service = replace(samples.web(), model_choice=None, forecast_run_id=None)
    record = section(render_proposal(proposal(service)), "The service's record")
    assert "- Model: ensemble (no record-based choice stored)" in record
    assert "- Live accuracy: not measured yet" in record
    assert "- Guard: no terraform plan was checked by forescale" in record
    assert "- Forecast run: \u2014" in record
    assert "Recent record: no demand stored over the last 14 days to score." in record


def test_the_cost_line_is_shown_when_a_price_is_known() -> None:
    cost = CostSummary(
        price=Price(per_unit_hour=0.192, currency="USD", source="unit_price"),
        start=samples.AS_OF,
        end=samples.AS_OF + dt.timedelta(hours=48),
        hours=48.0,
        unit_hours=CostFigures(schedule=600.0, current_flat=576.0, static_peak=720.0),
        horizon=CostFigures(schedule=115.2, current_flat=110.59, static_peak=138.24),
        monthly=CostFigures(schedule=1751.0, current_flat=1681.0, static_peak=2102.0),
        peak_units=15,
    )
    recent = (
        RecordRow(
            approach="forescale (what it had in force)",
            under_share=0.004,
            unit_hours=2000.0,
            cost=384.0,
        ),
        RecordRow(
            approach="reactive target tracking at 80% utilisation",
            under_share=0.02,
            unit_hours=2200.0,
            cost=422.4,
        ),
        RecordRow(
            approach="static peak (15 units)", under_share=0.0, unit_hours=5040.0, cost=967.68
        ),
    )
    text = render_proposal(proposal(replace(samples.web(), cost=cost), recent=recent))
    record = section(text, "The service's record")
    assert "Recent record (the last 14 days of stored demand" in record
    assert "| approach | under-provisioned (share of minutes) | unit-hours | cost USD |" in record
    assert "| forescale (what it had in force) | 0.4% | 2,000.0 | 384.00 |" in record
    assert "| static peak (15 units) | 0.0% | 5,040.0 | 967.68 |" in record
    assert "- Cost: schedule 115.20 USD over 48 h (1,751/month" in record
    assert "0.192 USD per unit-hour (unit_price)" in record
    assert "- Cost:" not in section(text, "Why")  # shown once


def test_a_refused_guard_and_backticks_in_the_diff() -> None:
    guard = GuardResult(
        ok=False, reasons=("replaces asg",), changes=(), output_changes=(), summary="1 to replace"
    )
    diff = "--- a/x.tfvars\n+++ b/x.tfvars\n@@ -1 +1 @@\n-a = 1 # ```\n+a = 2 # ```\n"
    text = render_proposal(proposal(guard=guard, diff=diff))
    assert "- Guard: refused: replaces asg (1 to replace)" in text
    assert "````diff\n" + diff + "````\n" in text  # the fence outlasts the backticks


def test_the_footer_and_determinism() -> None:
    first = render_proposal(proposal())
    assert first == render_proposal(proposal())
    assert first.endswith(
        "Written by forescale (mode commit) at Wed 2014-11-26 18:00 EST on branch "
        "`forescale/web`. The next proposal for web replaces this file.\n"
    )
