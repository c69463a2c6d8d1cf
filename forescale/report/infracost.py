"""An Infracost usage file from a plan: each managed resource's average instance count.

Infracost prices an Auto Scaling group at its configured size around the clock. Given a
usage file, it prices ``instances`` instead: ``forescale plan --infracost-usage FILE``
writes, for each service with a known resource address, the time-weighted average of the
planned capacity from the plan's ``as_of`` to the forecast's end (the schedule, not the
peak). Infracost reads ``instances`` as a whole number: the average is rounded to the
nearest one, and the exact figure and its window stay in a comment beside it.

Pure: a :class:`~forescale.report.plan_view.PlanReport` in, text out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from forescale.forecaster.cost import schedule_unit_hours
from forescale.report.formatting import iso_utc
from forescale.report.plan_view import PlanReport, ServiceReport

__all__ = ["UsageLine", "infracost_usage", "usage_lines"]

USAGE_FILE_VERSION = "0.1"  # Infracost's usage file format
_HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class UsageLine:
    """One resource's usage: ``average`` units over ``[start, end)``."""

    service: str
    resource: str
    average: float
    start: dt.datetime
    end: dt.datetime

    @property
    def instances(self) -> int:
        """What Infracost reads: the average rounded half up to a whole instance."""
        return int(self.average + 0.5)


def usage_lines(
    report: PlanReport, resources: Mapping[str, str | None]
) -> tuple[tuple[UsageLine, ...], tuple[str, ...]]:
    """One line per planned service with a resource address, and why the others have none."""
    lines: list[UsageLine] = []
    skipped: list[str] = []
    for service in report.services:
        resource = resources.get(service.name)
        if resource is None:
            skipped.append(
                f"{service.name}: no resource address for the usage file; set "
                f"services.{service.name}.infracost_resource (e.g. aws_autoscaling_group.web)"
            )
            continue
        window = _window(service, report.as_of)
        if window is None:
            skipped.append(f"{service.name}: the forecast is empty; nothing to average")
            continue
        start, end = window
        hours = (end - start) / _HOUR
        average = schedule_unit_hours(service.plan, start, end) / hours
        lines.append(
            UsageLine(
                service=service.name, resource=resource, average=average, start=start, end=end
            )
        )
    return tuple(lines), tuple(skipped)


def infracost_usage(lines: tuple[UsageLine, ...], as_of: dt.datetime) -> str:
    """The usage file's text (YAML; resource addresses quoted as JSON strings)."""
    out = [
        f"# Written by forescale plan as of {iso_utc(as_of)}: each resource's time-weighted",
        "# average instance count over the forecast horizon (the planned schedule, not its",
        "# peak), rounded to a whole instance as Infracost reads it.",
        f"version: {USAGE_FILE_VERSION}",
        "resource_usage:" + ("" if lines else " {}"),
    ]
    for line in lines:
        out += [
            f"  {json.dumps(line.resource)}:",
            f"    instances: {line.instances}  # {line.service}: {line.average:.4f} on average "
            f"from {iso_utc(line.start)} to {iso_utc(line.end)}",
        ]
    return "\n".join(out) + "\n"


def _window(service: ServiceReport, as_of: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    frame = service.forecast.frame
    if frame.empty:
        return None
    end = pd.Timestamp(frame["ds"].iloc[-1]).to_pydatetime() + service.forecast.resolution
    return (as_of, end) if end > as_of else None
