"""The pull-request description of a proposed capacity change (``FORESCALE_PR.md``).

Commit mode puts this file beside the changed variable file, in the same commit, so the
branch carries a description a reviewer can approve from. It is pure markdown, laid out
from the service's :class:`~forescale.report.plan_view.ServiceView` (which already words
the peaks, effects, schedule and summary) plus the few facts only the run knows. In order:

1. A heading with the view's headline, and one sentence: what is proposed where.
2. **The change**: the unified diff of the variable file, in a ``diff`` fence longer than
   any backtick run inside it.
3. **Why**: the history, forecast and capacity lines, the forecast peaks with their
   drivers (daily and weekly shape, holidays, named events with their uplift), the
   calendar effects in the horizon and the notes (a list).
4. **Forecast, band and planned capacity**: the Mermaid chart of
   :mod:`forescale.report.mermaid` and its legend.
5. **Capacity schedule**: the view's schedule table.
6. **The service's record**: the model the record chose and why (with the candidates'
   evidence when stored), the live accuracy of the forecast before this one when stored,
   the cost line when a price is known, the guard's verdict (or that no plan was checked),
   and the forecast run id.
7. A footer: when and by which mode it was written, and that the next proposal for the
   service replaces this file.

Times are on the display clock; shares as percentages; nothing here reads a file or the
clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from forescale.forecaster.shadow import RecordRow
from forescale.iac_writer.guard import GuardResult
from forescale.records import LiveJudgement
from forescale.report.blocks import Column, Table
from forescale.report.formatting import DASH, factor, local_time, share
from forescale.report.plan_markdown import chart_markdown, inline_markdown, markdown_table
from forescale.report.plan_view import ServiceView, SummaryLine

__all__ = ["PROPOSAL_FILE", "Proposal", "render_proposal"]

PROPOSAL_FILE = "FORESCALE_PR.md"
"""The name of the description file, committed beside the variable file."""

EVIDENCE_COLUMNS = (
    Column(header="candidate"),
    Column(header="steps judged", align="right"),
    Column(header="sMAPE", align="right"),
    Column(header="under-provisioned", align="right"),
    Column(header="band factor", align="right"),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Proposal:
    """What the description shows: ``view`` (the service as the plan report shows it) and
    what the run adds. ``diff`` is the change the branch proposes to the variable file
    (against the base the reviewer merges into); ``made_at`` the run's ``now`` (UTC)."""

    view: ServiceView
    timezone: ZoneInfo
    made_at: dt.datetime
    diff: str
    mode: str = "commit"
    branch: str | None = None
    live: LiveJudgement | None = None  # how the forecast before this one did, if stored
    guard: GuardResult | None = None  # None: no terraform plan was checked
    # what forescale had in force lately against the demand, beside the comparison and
    # the static peak (forescale.usecases.shadow.recent_record); None: nothing stored
    recent: tuple[RecordRow, ...] | None = None
    recent_days: int = 14


def render_proposal(proposal: Proposal) -> str:
    """The description as markdown (rules 1-7 of the module docstring), ending in a newline."""
    view, tz = proposal.view, proposal.timezone
    service = view.service
    out = [
        f"# forescale: {inline_markdown(view.title)}",
        "",
        f"forescale proposes a capacity change for **{service.name}** in `{service.var_file}` "
        f"(`{service.address}`). Merge it to apply it through your usual pipeline; while it "
        "is open, a new plan for this service updates this branch and this file in place.",
        "",
        "## The change",
        "",
        *_diff_block(proposal.diff),
        "",
        "## Why",
        "",
        *(f"- {line.label.capitalize()}: {inline_markdown(line.text)}" for line in _why(view)),
        "",
        *markdown_table(view.peak_table),
    ]
    if view.effects:
        out += ["", f"{view.effects_title}:", "", *(f"- {e.line}" for e in view.effects)]
    if view.notes:
        out += ["", "Notes:", "", *(f"- {note}" for note in view.notes)]
    chart = chart_markdown(view, tz)
    if chart:
        out += ["", "## Forecast, band and planned capacity", "", *chart]
    out += ["", "## Capacity schedule", "", *markdown_table(view.schedule, titled=False)]
    out += ["", "## The service's record", "", *_record(proposal)]
    where = f" on branch `{proposal.branch}`" if proposal.branch else ""
    out += [
        "",
        "---",
        "",
        f"Written by forescale (mode {proposal.mode}) at {local_time(proposal.made_at, tz)}"
        f"{where}. The next proposal for {service.name} replaces this file.",
    ]
    return "\n".join(out) + "\n"


# -- pieces ------------------------------------------------------------------------------
def _diff_block(diff: str) -> list[str]:
    if not diff.strip():
        return ["The variable file is not changed."]
    longest = max((len(run) for run in re.findall(r"`+", diff)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}diff", *diff.rstrip("\n").splitlines(), fence]


def _why(view: ServiceView) -> tuple[SummaryLine, ...]:
    """The summary lines but the cost, which the record section shows."""
    return (view.history, view.forecast, view.capacity)


def _record(proposal: Proposal) -> list[str]:
    view = proposal.view
    service = view.service
    out = [f"- Model: {_model(service.model_choice, service.forecast.model)}"]
    evidence = _evidence(service.model_choice)
    out.append(f"- Live accuracy: {_live(proposal.live)}")
    if view.cost is not None:
        out.append(f"- Cost: {inline_markdown(view.cost.text)}")
    out.append(f"- Guard: {_guard(proposal.guard)}")
    run = DASH if service.forecast_run_id is None else f"#{service.forecast_run_id}"
    fitted = local_time(service.forecast.fitted_at, proposal.timezone)
    out.append(f"- Forecast run: {run} (as of {fitted})")
    if evidence is not None:
        out += ["", *markdown_table(evidence)]
    out += ["", *_recent(proposal)]
    return out


def _recent(proposal: Proposal) -> list[str]:
    """The recent record: under-provisioned share and unit-hours (and cost) of what
    forescale had in force, the comparison and the static peak."""
    days = proposal.recent_days
    if not proposal.recent:
        return [f"Recent record: no demand stored over the last {days} days to score."]
    cost = proposal.view.service.cost
    currency = None if cost is None else cost.price.currency
    with_cost = currency is not None and all(r.cost is not None for r in proposal.recent)
    header = "| approach | under-provisioned (share of minutes) | unit-hours |"
    rule = "|---|---:|---:|"
    if with_cost:
        header += f" cost {currency} |"
        rule += "---:|"
    rows = []
    for r in proposal.recent:
        row = f"| {r.approach} | {share(r.under_share)} | {r.unit_hours:,.1f} |"
        if with_cost and r.cost is not None:
            row += f" {r.cost:,.2f} |"
        rows.append(row)
    return [
        f"Recent record (the last {days} days of stored demand, scored against what was in "
        "force; no refit):",
        "",
        header,
        rule,
        *rows,
    ]


def _model(choice: Mapping[str, Any] | None, model: str) -> str:
    if not choice:
        return f"{model} (no record-based choice stored)"
    words = [str(choice.get("model") or model)]
    details = [f"basis {choice['basis']}"] if choice.get("basis") else []
    if isinstance(choice.get("factor"), int | float):
        details.append(f"band {factor(float(choice['factor']))}")
    if isinstance(choice.get("floor_headroom"), int | float):
        details.append(f"observed-floor headroom {share(float(choice['floor_headroom']))}")
    if details:
        words.append(f"({', '.join(details)})")
    reason = str(choice.get("reason") or "").strip()
    return " ".join(words) + (f": {reason}" if reason else "")


def _evidence(choice: Mapping[str, Any] | None) -> Table | None:
    rows = []
    for entry in (choice or {}).get("evidence") or ():
        if not isinstance(entry, Mapping):
            continue
        rows.append(
            (
                str(entry.get("model", DASH)),
                str(entry.get("steps", DASH)),
                _share(entry.get("smape")),
                _share(entry.get("under_share")),
                _factor(entry.get("factor")),
            )
        )
    if not rows:
        return None
    return Table(title="Candidates on the record", columns=EVIDENCE_COLUMNS, rows=tuple(rows))


def _share(value: object) -> str:
    return share(float(value)) if isinstance(value, int | float) else DASH


def _factor(value: object) -> str:
    return factor(float(value)) if isinstance(value, int | float) else DASH


def _live(live: LiveJudgement | None) -> str:
    if live is None:
        return "not measured yet (no forecast before this one was judged on live demand)"
    error = DASH if live.error_ratio is None else share(live.error_ratio)
    under = DASH if live.under_share is None else share(live.under_share)
    text = (
        f"forecast run #{live.run_id} over {live.steps} steps: weighted error {error}, "
        f"demand above the planned band on {under} of steps"
    )
    return text + (f"; refitted early: {live.reason}" if live.refit_due else "")


def _guard(guard: GuardResult | None) -> str:
    if guard is None:
        return (
            "no terraform plan was checked by forescale for this change (commit mode); the "
            "plan your pipeline runs on this branch is the check"
        )
    if guard.ok:
        return f"passed: {guard.summary}"
    return f"refused: {'; '.join(guard.reasons)} ({guard.summary})"
