"""Property: whatever bytes a service's CSV source holds, ``forescale collect`` answers 0
(collected) or 1 (one error line), never 3 (a bug), and never hangs; when it answers 0,
every data row is either stored or counted as not stored.

Files are rows of fields written by the test, so it knows how many data rows there are:
a header (the expected one or random names), then rows whose timestamps come in many
formats (ISO 8601 with and without offsets, basic format, US dates, garbage, empty) and
whose values are numbers, huge, NaN, inf, negative, empty or garbage, with NUL bytes, CRLF
or LF, a BOM; or plain random bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import math
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forescale.cli import main
from forescale.store import Store

FIELD_TEXT = st.text(
    alphabet=st.characters(blacklist_characters=',"\r\n', blacklist_categories=("Cs",)),
    max_size=12,
)
OFFSETS = [
    dt.UTC,
    dt.timezone(dt.timedelta(hours=1)),
    dt.timezone(dt.timedelta(hours=-5)),
    dt.timezone(dt.timedelta(hours=5, minutes=30)),
]
EARLIEST = dt.datetime(1850, 1, 1)  # noqa: DTZ001 - naive: a zone is drawn apart
LATEST = dt.datetime(2300, 1, 1)  # noqa: DTZ001
STEPS = [dt.timedelta(seconds=s) for s in (1, 60, 300, 1800, 3600, 86400)]


def stamp_text(when: dt.datetime, style: str) -> str:
    if style == "iso":
        return when.isoformat()
    if style == "space":
        return when.isoformat(sep=" ")
    if style == "z" and when.utcoffset() == dt.timedelta(0):
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == "basic":
        return when.strftime("%Y%m%dT%H%M%S%z")
    if style == "us":
        return when.strftime("%m/%d/%Y %H:%M:%S %z").strip()
    if style == "date" and when.tzinfo is None:
        return when.date().isoformat()
    return when.isoformat(timespec="minutes")


@st.composite
def timestamps(
    draw: st.DrawFn, base: dt.datetime, step: dt.timedelta, index: int, bad: bool
) -> str:
    if bad:
        kind = draw(st.sampled_from(["garbage", "empty", "random", "other-kind"]))
    else:
        kind = draw(st.sampled_from(["regular"] * 6 + ["dup", "jitter", "in-slot"]))
    if kind == "garbage":
        return draw(
            st.one_of(
                FIELD_TEXT,
                st.sampled_from(["now", "today", "12:00", "2024", "9999-12-31", "1 2 3", "NaT"]),
            )
        )
    if kind == "empty":
        return ""
    if kind == "random":
        when = draw(st.datetimes(min_value=EARLIEST, max_value=LATEST))
    else:
        when = base + step * (index - (kind == "dup"))
        if kind == "jitter":
            when += dt.timedelta(milliseconds=draw(st.integers(-999, 999)))
        elif kind == "in-slot":
            when += dt.timedelta(seconds=draw(st.integers(0, int(step.total_seconds()) - 1)))
    aware = (base.tzinfo is not None) != (kind == "other-kind")
    if aware:
        tz = draw(st.sampled_from(OFFSETS))
        when = (when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)).astimezone(tz)
    else:
        when = when.replace(tzinfo=None)
    style = draw(st.sampled_from(["iso", "space", "z", "basic", "us", "date", "minutes"]))
    return stamp_text(when, style)


GOOD_VALUES = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.floats(min_value=0, max_value=1e12).map(repr),
    st.sampled_from(["", " ", "0", "-0", "1e300", " 7 ", "1.5e3", ".5", "5.", "+3"]),
)
BAD_VALUES = st.one_of(
    st.floats(max_value=-1e-300).map(repr),
    st.sampled_from([math.nan, math.inf, -math.inf]).map(repr),
    st.sampled_from(
        ["nan", "NaN", "inf", "-inf", "-1", "1e999", "1_000", "0x10", "1\x002", "\x00", "12abc"]
    ),
    FIELD_TEXT,
)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, int | None]:
    """A file and its number of data rows (None: unknown, for random bytes).

    Half the files are clean (every row valid; gaps, duplicates, jitter and rows sharing
    a slot included), most others have bad rows now and then, a few are random."""
    kind = draw(st.sampled_from(["clean"] * 9 + ["dirty"] * 7 + ["bytes", "text"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300)), None
    if kind == "text":
        return draw(st.text(max_size=300)).encode("utf-8", "surrogatepass"), None
    odds = [False] if kind == "clean" else [False] * 6 + [True]
    headers = [["timestamp", "value"], ["value", "timestamp", "note"], [" timestamp ", "value"]]
    header = draw(
        st.sampled_from(headers)
        if not draw(st.sampled_from(odds))
        else st.lists(FIELD_TEXT.filter(lambda t: t.strip() != ""), min_size=1, max_size=3)
    )
    aware = draw(st.booleans())
    base = dt.datetime(2024, 3, 1, tzinfo=dt.UTC if aware else None)
    step = draw(st.sampled_from(STEPS))
    count = draw(st.integers(min_value=0, max_value=25))
    newline = draw(st.sampled_from(["\n", "\r\n", "mixed"]))
    lines = [",".join(header)]
    rows = 0
    for index in range(count):
        stamp = draw(timestamps(base, step, index, draw(st.sampled_from(odds))))
        value = draw(BAD_VALUES if draw(st.sampled_from(odds)) else GOOD_VALUES)
        fields = {"timestamp": stamp, "value": value}
        row = [fields.get(name.strip(), draw(FIELD_TEXT)) for name in header]
        if draw(st.sampled_from(odds)):
            row = draw(st.sampled_from([row[:-1], [*row, draw(FIELD_TEXT)]]))
        line = ",".join(row)
        if len(row) <= 1 and line.strip() == "":
            continue  # a blank line is not a row
        lines.append(line)
        rows += 1
    ends = [
        (draw(st.sampled_from(["\n", "\r\n"])) if newline == "mixed" else newline) for _ in lines
    ]
    if not draw(st.booleans()):
        ends[-1] = ""  # no newline at the end of the file
    text = "".join(line + end for line, end in zip(lines, ends, strict=True))
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return bom + text.encode("utf-8"), rows


STORED = re.compile(r"^web: (\d+) samples stored", re.MULTILINE)
NOT_STORED = re.compile(r"^forescale: warning: web: (\d+) of (\d+) rows of d\.csv not stored")


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    file=csv_files(),
    scale=st.sampled_from([1.0, 0.05, 1e9]),
    timezone=st.sampled_from(["UTC", "America/New_York"]),
)
def test_collect_never_crashes_and_accounts_for_every_row(
    file: tuple[bytes, int | None], scale: float, timezone: str
) -> None:
    data, rows = file
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tf").mkdir()
        (root / "tf" / "terraform.tfvars").write_text("web_min = 2\n")
        (root / "d.csv").write_bytes(data)
        (root / "forescale.yaml").write_text(
            "store_url: sqlite:///.forescale/s.db\n"
            "services:\n"
            "  web:\n"
            f"    source: {{type: csv, path: d.csv, scale: {scale!r}, timezone: {timezone}}}\n"
            "    capacity_per_unit: 100\n"
            "    min_units: 1\n"
            "    max_units: 30\n"
            "    iac: {working_dir: tf, address: web_min}\n"
        )
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["collect", "--config", str(root / "forescale.yaml")])
        stderr = err.getvalue()
        assert code in (0, 1), (data[:500], stderr[-3000:])
        if code == 1:
            assert stderr.startswith("forescale: error: "), stderr
            assert stderr.count("\n") == 1, stderr
            return
        store = Store.open(f"sqlite:///{root}/.forescale/s.db")
        try:
            in_store = len(store.load_samples("web"))
        finally:
            store.close()
    found = STORED.search(out.getvalue())
    assert found is not None, out.getvalue()
    stored = int(found.group(1))
    assert stored >= 1 and in_store == stored
    warning = NOT_STORED.search(stderr)
    not_stored = int(warning.group(1)) if warning else 0
    if warning is not None:
        assert int(warning.group(2)) == stored + not_stored
        assert stderr.count("\n") == 1, stderr
    else:
        assert stderr == "", stderr
    if rows is not None:
        assert stored + not_stored == rows, (data[:500], out.getvalue(), stderr)
