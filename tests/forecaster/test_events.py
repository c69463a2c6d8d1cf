"""Events calendar: parsing, validation with line numbers, model-input helpers."""

from __future__ import annotations

import datetime as dt
import textwrap

import pandas as pd
import pytest

from forescale.errors import ConfigError, EventsError
from forescale.forecaster.events import (
    event_indicators,
    holiday_table,
    parse_duration,
    parse_events,
)
from forescale.forecaster.types import Event

UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def yaml_text(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# ------------------------------------------------------------------ parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", dt.timedelta(seconds=90)),
        ("15m", dt.timedelta(minutes=15)),
        ("2h", dt.timedelta(hours=2)),
        ("1d", dt.timedelta(days=1)),
        ("1w", dt.timedelta(weeks=1)),
        ("1h30m", dt.timedelta(minutes=90)),
        ("1.5h", dt.timedelta(minutes=90)),
        (" 2H ", dt.timedelta(hours=2)),
        ("0m", dt.timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "15", "15 minutes", "m", "-2h", "2x", "h2", "1h 30m", "1,5h"])
def test_parse_duration_rejects_junk(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


# ------------------------------------------------------------------ YAML


def test_yaml_list_with_all_fields() -> None:
    text = yaml_text(
        """
        # sales calendar
        - name: Black Friday
          start: 2024-11-29
          end: 2024-12-02
          lower_window: 2h
          upper_window: 1
          expected_uplift: 0.4
        - name: Flash sale
          start: 2024-12-10T18:00:00Z
          end: 2024-12-10T20:30:00Z
          expected_uplift: "-38%"
        """
    )
    first, second = parse_events(text, source="events.yaml")
    assert first == Event(
        name="Black Friday",
        start=utc(2024, 11, 29),
        end=utc(2024, 12, 2),
        lower_window=dt.timedelta(hours=2),
        upper_window=dt.timedelta(days=1),
        expected_uplift=0.4,
        line=2,
    )
    assert first.active_start == utc(2024, 11, 28, 22)
    assert first.active_end == utc(2024, 12, 3)
    assert second.start == utc(2024, 12, 10, 18)
    assert second.end == utc(2024, 12, 10, 20, 30)
    assert second.expected_uplift == pytest.approx(-0.38)
    assert second.line == 8
    assert second.lower_window == dt.timedelta(0)


def test_yaml_events_key_and_flow_mappings() -> None:
    text = yaml_text(
        """
        events:
          - {name: a, start: 2024-01-01}
          - {name: b, start: 2024-01-03, end: 2024-01-03}
        """
    )
    a, b = parse_events(text, fmt="yaml")
    assert (a.start, a.end, a.line) == (utc(2024, 1, 1), utc(2024, 1, 2), 2)
    # a date-only end equal to start: the whole day
    assert (b.start, b.end, b.line) == (utc(2024, 1, 3), utc(2024, 1, 4), 3)


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "events:\n", "events: []\n", "[]\n"])
def test_empty_calendars(text: str) -> None:
    assert parse_events(text, fmt="yaml") == ()


def test_timezone_dates_and_naive_datetimes_are_local() -> None:
    text = yaml_text(
        """
        - name: Thanksgiving
          start: 2014-11-27
        - name: Evening promo
          start: 2014-07-04 18:00
          end: 2014-07-04T21:00
        - name: Explicit offset
          start: 2014-07-05T12:00:00+02:00
          end: 2014-07-05T13:00:00Z
        """
    )
    thanksgiving, promo, explicit = parse_events(text, fmt="yaml", timezone="America/New_York")
    assert thanksgiving.start == utc(2014, 11, 27, 5)  # EST = UTC-5
    assert thanksgiving.end == utc(2014, 11, 28, 5)
    assert promo.start == utc(2014, 7, 4, 22)  # EDT = UTC-4
    assert promo.end == utc(2014, 7, 5, 1)
    assert explicit.start == utc(2014, 7, 5, 10)  # offsets are kept, not re-interpreted
    assert explicit.end == utc(2014, 7, 5, 13)
    for event in (thanksgiving, promo, explicit):
        assert event.start.tzinfo is UTC and event.end.tzinfo is UTC


def test_whole_local_day_across_dst_is_23_hours() -> None:
    (event,) = parse_events(
        "- {name: spring, start: 2024-03-10}\n", fmt="yaml", timezone="America/New_York"
    )
    assert event.start == utc(2024, 3, 10, 5)
    assert event.end - event.start == dt.timedelta(hours=23)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.5", 0.5), ("-0.38", -0.38), ("'-38%'", -0.38), ("40%", 0.4), ("'+12.5%'", 0.125)],
)
def test_uplift_fraction_or_percent(value: str, expected: float) -> None:
    (event,) = parse_events(
        f"- name: x\n  start: 2024-01-01\n  expected_uplift: {value}\n", fmt="yaml"
    )
    assert event.expected_uplift == pytest.approx(expected)


def test_windows_in_durations_or_days() -> None:
    text = yaml_text(
        """
        - {name: a, start: 2024-01-01, lower_window: 30m, upper_window: 2}
        - {name: b, start: 2024-01-05, lower_window: 1w, upper_window: 90s}
        """
    )
    a, b = parse_events(text, fmt="yaml")
    assert (a.lower_window, a.upper_window) == (dt.timedelta(minutes=30), dt.timedelta(days=2))
    assert (b.lower_window, b.upper_window) == (dt.timedelta(weeks=1), dt.timedelta(seconds=90))


def test_same_name_twice_without_overlap_is_a_recurring_event() -> None:
    text = "- {name: sale, start: 2024-01-01}\n- {name: sale, start: 2024-02-01}\n"
    assert [e.name for e in parse_events(text, fmt="yaml")] == ["sale", "sale"]


def test_windows_may_overlap_other_events() -> None:
    text = yaml_text(
        """
        - {name: a, start: 2024-01-01, upper_window: 2d}
        - {name: b, start: 2024-01-02, lower_window: 1d}
        """
    )
    assert len(parse_events(text, fmt="yaml")) == 2


def test_format_from_source_suffix() -> None:
    assert parse_events("- {name: a, start: 2024-01-01}\n", source="cal.yml")[0].name == "a"
    assert parse_events("name,start\na,2024-01-01\n", source="CAL.CSV")[0].name == "a"
    with pytest.raises(EventsError, match="cannot tell the format"):
        parse_events("name,start\n", source="calendar.txt")


# ------------------------------------------------------------------ YAML errors


def errors(text: str, **kwargs: str) -> EventsError:
    with pytest.raises(EventsError) as info:
        parse_events(text, source="events.yaml", **kwargs)  # type: ignore[arg-type]
    return info.value


GOOD = "- name: ok\n  start: 2024-01-01\n"  # lines 1-2


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("- start: 2024-02-01\n", "no 'name'"),
        ("- name: x\n  end: 2024-02-01\n", "no 'start'"),
        ("- name: x\n  start: 2024-02-30\n", "not a date"),
        ("- name: x\n  start: next tuesday\n", "not an ISO 8601"),
        ("- name: x\n  start: 2024-02-02\n  end: 2024-02-01\n", "not after start"),
        ("- name: x\n  start: 2024-02-01T10:00\n  end: 2024-02-01T10:00\n", "not after start"),
        (
            "- name: x\n  start: 2024-02-01\n  expected_upflit: 0.2\n",
            "did you mean 'expected_uplift'",
        ),
        ("- name: x\n  start: 2024-02-01\n  expected_uplift: -1\n", "above -100 %"),
        ("- name: x\n  start: 2024-02-01\n  expected_uplift: -100%\n", "above -100 %"),
        ("- name: x\n  start: 2024-02-01\n  expected_uplift: .nan\n", "not a finite number"),
        ("- name: x\n  start: 2024-02-01\n  expected_uplift: .inf\n", "not a finite number"),
        ("- name: x\n  start: 2024-02-01\n  expected_uplift: lots\n", "not a number"),
        ("- name: x\n  start: 2024-02-01\n  upper_window: 2 days\n", "not a duration"),
        ("- name: x\n  start: 2024-02-01\n  lower_window: -1\n", "negative"),
        ("- name: x\n  start: 2024-02-01\n  name: y\n", "given twice"),
        ("- name: x\n  start: [2024-02-01]\n", "single value"),
        ("- just a string\n", "must be a mapping"),
    ],
)
def test_yaml_validation_names_the_event_line(event: str, message: str) -> None:
    err = errors(GOOD + "\n# a comment\n" + event)
    assert err.line == 5
    assert message in str(err)
    assert str(err).startswith("events.yaml:5: ")
    assert err.source == "events.yaml"


def test_yaml_unknown_key_lists_allowed_keys() -> None:
    err = errors("- name: x\n  start: 2024-02-01\n  colour: red\n")
    assert "unknown key 'colour'" in str(err)
    assert "allowed: name, start, end, lower_window, upper_window, expected_uplift" in str(err)
    assert err.line == 1


def test_yaml_overlap_names_both_lines() -> None:
    text = yaml_text(
        """
        - name: Sale
          start: 2024-01-01
          end: 2024-01-05
        - name: Other
          start: 2024-02-01
        - name: Promo
          start: 2024-01-04T12:00
        """
    )
    err = errors(text)
    assert err.line == 6
    assert "'Promo' (line 6) overlaps event 'Sale' (line 1)" in str(err)


def test_yaml_overlap_of_same_name_is_rejected_too() -> None:
    err = errors(
        "- {name: a, start: 2024-01-01, end: 2024-01-03}\n- {name: a, start: 2024-01-02}\n"
    )
    assert err.line == 2
    assert "(line 2)" in str(err) and "(line 1)" in str(err)


def test_yaml_syntax_error_has_a_line() -> None:
    err = errors("- name: a\n  start: 2024-01-01\n- name: [unclosed\n")
    assert err.line is not None and err.line >= 3
    assert "invalid YAML" in str(err)


@pytest.mark.parametrize(
    ("text", "line"), [("calendar:\n  - {name: a}\n", 1), ("events: 3\n", 1), ("just text\n", 1)]
)
def test_yaml_wrong_shape(text: str, line: int) -> None:
    assert errors(text).line == line


def test_unknown_timezone() -> None:
    with pytest.raises(EventsError, match="unknown timezone 'Mars/Olympus'"):
        parse_events(GOOD, fmt="yaml", timezone="Mars/Olympus")


# ------------------------------------------------------------------ CSV


def test_csv_all_columns() -> None:
    text = (
        "name,start,end,lower_window,upper_window,expected_uplift\n"
        "Black Friday,2024-11-29,2024-12-02,2h,1,40%\n"
        "\n"
        "# a comment line\n"
        "Flash sale,2024-12-10T18:00,,,,-0.38\n"
    )
    black_friday, flash = parse_events(text, source="events.csv", timezone="Europe/Berlin")
    assert black_friday.start == utc(2024, 11, 28, 23)
    assert black_friday.end == utc(2024, 12, 1, 23)
    assert black_friday.lower_window == dt.timedelta(hours=2)
    assert black_friday.upper_window == dt.timedelta(days=1)
    assert black_friday.expected_uplift == pytest.approx(0.4)
    assert black_friday.line == 2
    assert flash.start == utc(2024, 12, 10, 17)
    assert flash.end == utc(2024, 12, 11, 17)  # end omitted: start + 1 day
    assert flash.expected_uplift == pytest.approx(-0.38)
    assert flash.line == 5


def test_csv_optional_columns_any_order_bom_and_crlf() -> None:
    text = '\ufeffstart,name\r\n2024-01-01,a\r\n2024-01-02,"b, the second"\r\n'
    a, b = parse_events(text, fmt="csv")
    assert (a.name, a.line, b.name, b.line) == ("a", 2, "b, the second", 3)


def test_csv_physical_lines_with_multiline_cells() -> None:
    text = 'name,start\n"two\nlines",2024-01-01\nbad,2024-13-01\n'
    err = errors(text, fmt="csv")
    assert err.line == 4


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (",2024-02-01", "no 'name'"),
        ("x,", "no 'start'"),
        ("x,2024-02-01T25:00", "not an ISO 8601"),
        ("x,2024-02-03,2024-02-02", "not after start"),
        ("x,2024-02-01,,,,-1.5", "above -100 %"),
        ("x,2024-02-01,,,,inf", "not a finite number"),
        ("x,2024-02-01,,soon", "not a duration"),
        ("x,2024-02-01,,,,,extra", "7 cells"),
        ("x,2024-01-01T12:00", "overlaps event 'ok' (line 2)"),
    ],
)
def test_csv_validation_names_the_physical_line(row: str, message: str) -> None:
    header = "name,start,end,lower_window,upper_window,expected_uplift\n"
    err = errors(header + "ok,2024-01-01\n\n" + row + "\n", fmt="csv")
    assert err.line == 4
    assert message in str(err)


def test_csv_header_errors() -> None:
    assert "did you mean 'upper_window'" in str(errors("name,start,uper_window\n", fmt="csv"))
    assert "missing start" in str(errors("name,end\n", fmt="csv"))
    assert errors("\n\nname,start,start\n", fmt="csv").line == 3


# ------------------------------------------------------------------ bounds and duplicates


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("upper_window: 99999999999999d", "upper_window: 99999999999999d is too long: at most 90d"),
        ("upper_window: 99999999999999", "upper_window: 99999999999999 days is too long"),
        ("lower_window: 91d", "lower_window: 91d is too long: at most 90d"),
        ("lower_window: " + "9" * 5000, "lower_window: "),
        ("expected_uplift: 1e308", "at most +10000 %"),
        ("expected_uplift: 100.5", "at most +10000 %"),
        ("expected_uplift: 10001%", "at most +10000 %"),
        ("start: 0001-01-01T00:00", "between the years 1900 and 2199"),
        ("start: 9999-12-31", "between the years 1900 and 2199"),
        ("end: 9999-12-31T23:59+14:00", "between the years 1900 and 2199"),
    ],
)
def test_values_beyond_their_bounds_are_errors_with_the_line(line: str, message: str) -> None:
    key = line.split(":")[0]
    event = "- name: x\n  start: 2024-02-01\n" if key != "start" else "- name: x\n"
    err = errors(GOOD + "\n# a comment\n" + event + f"  {line}\n")
    assert err.line == 5
    assert message in str(err), str(err)
    assert "\n" not in str(err) and len(str(err)) < 300


def test_values_at_their_bounds_are_accepted() -> None:
    (event,) = parse_events(
        "- {name: x, start: 2199-12-01, lower_window: 90d, upper_window: 90, "
        "expected_uplift: 100}\n",
        fmt="yaml",
        timezone="Asia/Tokyo",
    )
    assert event.upper_window == dt.timedelta(days=90) and event.expected_uplift == 100
    (event,) = parse_events("- {name: x, start: 1900-01-01T12:00}\n", fmt="yaml")
    assert event.start == utc(1900, 1, 1, 12)


def test_csv_windows_and_uplift_are_bounded_too() -> None:
    header = "name,start,end,lower_window,upper_window,expected_uplift\n"
    err = errors(header + "x,2024-02-01,,,99999999999999d,\n", fmt="csv")
    assert err.line == 2 and "upper_window" in str(err)
    assert "expected_uplift" in str(errors(header + "x,2024-02-01,,,,1e308\n", fmt="csv"))


def test_a_duplicate_key_in_an_event_names_the_key_and_both_lines() -> None:
    err = errors(
        GOOD + "- name: x\n  start: 2024-02-01\n  expected_uplift: 1\n  start: 2024-03-01\n"
    )
    assert err.line == 3
    assert "key 'start' given twice (lines 4 and 6)" in str(err)


def test_a_duplicate_events_key_is_refused() -> None:
    err = errors(
        "events:\n  - {name: a, start: 2024-01-01}\nevents:\n  - {name: b, start: 2024-02-01}\n"
    )
    assert err.line == 3
    assert "key 'events' given twice (lines 1 and 3)" in str(err)


# ------------------------------------------------------------------ model inputs


def test_event_indicators_point_and_bucket_rules() -> None:
    ds = pd.date_range("2024-01-01 00:00", periods=6, freq="30min", tz="UTC")
    events = [
        Event(name="a", start=utc(2024, 1, 1, 0, 45), end=utc(2024, 1, 1, 1, 30)),
        Event(name="b", start=utc(2024, 1, 1, 2, 0), end=utc(2024, 1, 1, 3, 0)),
        Event(
            name="a",
            start=utc(2024, 1, 1, 2, 30),
            end=utc(2024, 1, 1, 2, 31),
            upper_window=dt.timedelta(minutes=1),
        ),
    ]
    table = event_indicators(events, ds)
    assert list(table.columns) == ["a", "b"]
    assert table["a"].tolist() == [0, 0, 1, 0, 0, 1]  # 01:00 and 02:30 are inside
    assert table["b"].tolist() == [0, 0, 0, 0, 1, 1]
    buckets = event_indicators(events, ds, step=dt.timedelta(minutes=30))
    assert buckets["a"].tolist() == [0, 1, 1, 0, 0, 1]  # the 00:30 bucket holds 00:45


def test_event_indicators_need_aware_timestamps() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        event_indicators([], pd.date_range("2024-01-01", periods=2, freq="h"))


def test_holiday_table_local_dates() -> None:
    table = holiday_table("US", dt.date(2014, 11, 1), dt.date(2014, 12, 31))
    rows = list(zip(table["ds"].dt.strftime("%Y-%m-%d"), table["holiday"], strict=True))
    assert rows == [
        ("2014-11-11", "Veterans Day"),
        ("2014-11-27", "Thanksgiving Day"),
        ("2014-12-25", "Christmas Day"),
    ]
    assert table["ds"].dt.tz is None


def test_holiday_table_unknown_country() -> None:
    with pytest.raises(ConfigError, match="'XX'"):
        holiday_table("XX", dt.date(2014, 1, 1), dt.date(2014, 12, 31))


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2015-03-08T02:10", "2015-03-08T03:05"),  # 02:10 never happens in New York that day
        ("2015-03-08T01:30", "2015-03-08T02:30"),  # nor does 02:30
    ],
)
def test_a_wall_clock_time_the_clocks_skip_is_refused(start: str, end: str) -> None:
    text = f"- {{name: A, start: '{start}', end: '{end}', expected_uplift: 50%}}\n"
    with pytest.raises(EventsError, match=r":1: .*does not exist in America/New_York"):
        parse_events(text, fmt="yaml", timezone="America/New_York")


def test_end_after_start_is_checked_on_the_clock_not_the_wall() -> None:
    # 01:50 EDT (05:50Z) then 01:20 EST (06:20Z): the wall clock goes back, time does not
    (event,) = parse_events(
        "- {name: B, start: '2015-11-01T01:50-04:00', end: '2015-11-01T01:20-05:00'}\n",
        fmt="yaml",
        timezone="America/New_York",
    )
    assert event.end - event.start == dt.timedelta(minutes=30)
    # and an end that is earlier in UTC is refused however the wall clocks read
    with pytest.raises(EventsError, match="is not after start"):
        parse_events(
            "- {name: C, start: '2015-11-01T01:20-05:00', end: '2015-11-01T01:50-04:00'}\n",
            fmt="yaml",
            timezone="America/New_York",
        )


def test_yaml_merge_keys_give_defaults_that_an_event_overrides() -> None:
    text = yaml_text(
        """
        events:
          - &sale {name: Sale, start: 2014-12-20, expected_uplift: 40%, upper_window: 1d}
          - {<<: *sale, start: 2014-12-27}
          - <<: [*sale]
            name: Clearance
            start: 2015-01-03
            expected_uplift: 10%
        """
    )
    first, second, third = parse_events(text, fmt="yaml")
    assert (second.name, second.expected_uplift, second.upper_window) == (
        "Sale",
        0.4,
        dt.timedelta(days=1),
    )
    assert second.start == utc(2014, 12, 27)
    assert (third.name, third.expected_uplift) == ("Clearance", 0.1)
    with pytest.raises(EventsError, match="'<<' merges a mapping"):
        parse_events("- {name: A, start: 2014-12-20, <<: 3}\n", fmt="yaml")


def test_a_calendar_without_a_known_suffix_says_how_to_name_it() -> None:
    with pytest.raises(EventsError, match=r"name the calendar file \.yaml, \.yml or \.csv$"):
        parse_events("- {name: A, start: 2014-12-20}\n", source="events.txt")
