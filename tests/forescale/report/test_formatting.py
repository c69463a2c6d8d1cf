"""The number and time wording every report shares."""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import pytest

from forescale.report.formatting import DASH, factor, finite, iso_utc, local_time, number, share

NEW_YORK = ZoneInfo("America/New_York")


def test_times() -> None:
    when = dt.datetime(2014, 11, 26, 23, 0, tzinfo=dt.UTC)
    assert iso_utc(when) == "2014-11-26T23:00:00Z"
    assert iso_utc(when.astimezone(NEW_YORK)) == "2014-11-26T23:00:00Z"
    assert local_time(when, NEW_YORK) == "Wed 2014-11-26 18:00 EST"
    assert local_time(when, NEW_YORK, with_date=False) == "18:00 EST"
    summer = dt.datetime(2014, 7, 1, 12, 0, tzinfo=dt.UTC)
    assert local_time(summer, NEW_YORK) == "Tue 2014-07-01 08:00 EDT"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1050.75, "1,051"),
        (100.0, "100"),
        (99.94, "99.9"),
        (10.0, "10.0"),
        (7.125, "7.12"),
        (0.0, "0.00"),
        (-250.0, "-250"),
        (-12.34, "-12.3"),
        (math.nan, DASH),
        (math.inf, DASH),
    ],
)
def test_number(value: float, text: str) -> None:
    assert number(value) == text


def test_share_factor_and_finite() -> None:
    assert share(0.99890123) == "99.9%" and share(math.nan) == DASH
    assert factor(0.8666) == "\u00d70.87" and factor(math.inf) == DASH
    assert finite(None) is None and finite(math.nan) is None and finite(-math.inf) is None
    assert finite(0.1 + 0.2) == 0.30000000000000004  # not rounded unless asked
    assert finite(0.1 + 0.2, ndigits=6) == 0.3
    assert isinstance(finite(3), float)


def test_a_label_with_dollar_signs_is_drawn_as_written() -> None:
    """An event named "Sale: $10 off #1 item, $5 coupons" made matplotlib parse mathtext
    and fail: the service's page answered 500."""
    from forescale.report.svg import figure_svg

    def draw(fig: object, ax: object) -> None:
        ax.plot([0, 1], [0, 1], label="Tickets $50_$")  # type: ignore[attr-defined]
        ax.annotate("Sale: $10 off #1 item, $5 coupons", xy=(0.5, 0.5))  # type: ignore[attr-defined]
        ax.legend()  # type: ignore[attr-defined]

    svg = figure_svg(draw, salt="t", size=(4, 3))
    assert "<svg" in svg
