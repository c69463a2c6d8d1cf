"""Corpus-driven tests for forescale.iac_writer.tfvars: exact edits, or refusals that leave the
file alone.

Each corpus case is either an ``Edit`` (the patched file must equal the original bytes with
only the literal's bytes replaced, computed here independently of the module), a ``Same``
(numerically equal value: nothing changes), or a ``Refuse`` (an exception class and message
fragment, and the file on disk byte-for-byte unchanged after ``plan_change`` +
``apply_change``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import hcl2
import numpy as np
import pytest

from forescale.errors import (
    TfvarsConflict,
    TfvarsError,
    TfvarsParseError,
    TfvarsTargetError,
)
from forescale.iac_writer.tfvars import (
    TfvarsChange,
    TfvarsValue,
    apply_change,
    locate,
    patch,
    plan_change,
    read_value,
)
from tests.iac_writer.outcomes import Edit, Outcome, P, Refuse, Same, T

CORPUS = Path(__file__).parent / "corpus"
BOM = b"\xef\xbb\xbf"


CASES: list[tuple[str, str, int, Outcome]] = [
    # comments everywhere, fake assignments in comments, `=` alignment
    ("commented.tfvars", "web_min_size", 7, Edit("4", 8)),
    ("commented.tfvars", "web_max_size", 30, Edit("20", 9)),
    ("commented.tfvars", "web_desired_size", 8, Edit("6", 10)),
    ("commented.tfvars", "worker_min_size", 3, Edit("2", 12)),
    ("commented.tfvars", "region", 1, Refuse(T, 'region is a string ("eu-west-1")')),
    # CRLF line endings
    ("crlf.tfvars", "web_min_size", 5, Edit("3", 4)),
    ("crlf.tfvars", "web_max_size", 100, Edit("12", 5)),
    ("crlf.tfvars", "tags.Owner", 1, Refuse(T, "tags.Owner is a string")),
    # UTF-8 BOM, alone and with CRLF and multi-byte characters before the target
    ("bom.tfvars", "web_min_size", 6, Edit("5", 2)),
    ("bom_crlf_unicode.tfvars", "web_min_size", 11, Edit("2", 3)),
    ("bom_crlf_unicode.tfvars", "web_max_size", 15, Edit("16", 5)),
    ("bom_crlf_unicode.tfvars", "note", 1, Refuse(T, "note is a string")),
    # heredocs containing `web_min_size = 99`
    ("heredoc.tfvars", "web_min_size", 4, Edit("3", 9)),
    ("heredoc.tfvars", "worker_min_size", 2, Edit("1", 10)),
    ("heredoc.tfvars", "user_data", 1, Refuse(T, ":1: user_data is a heredoc string")),
    ("heredoc.tfvars", "banner", 1, Refuse(T, "banner is a heredoc string")),
    ("heredoc.tfvars", "web_max_size", 1, Refuse(T, "web_max_size is not set in this file")),
    # nested objects: bare and quoted keys, `=` and `:`, commas, three levels
    ("nested.tfvars", "capacity.web.min", 5, Edit("2", 4)),
    ("nested.tfvars", "capacity.worker.max", 8, Edit("4", 7)),
    ("nested.tfvars", "capacity.api.min", 4, Edit("3", 9)),
    ("nested.tfvars", "capacity.api.limits.burst", 24, Edit("12", 11)),
    ("nested.tfvars", "web_min_size", 9, Edit("2", 14)),
    ("nested.tfvars", "capacity.web", 1, Refuse(T, ":3: capacity.web is an object")),
    ("nested.tfvars", "capacity.web.desired", 1, Refuse(T, "capacity.web has no key 'desired'")),
    ("nested.tfvars", "capacity.db.min", 1, Refuse(T, "capacity has no key 'db'")),
    (
        "nested.tfvars",
        "capacity.web.min.x",
        1,
        Refuse(T, "capacity.web.min is a number (2), not an object; cannot look up 'x'"),
    ),
    ("escaped_key.tfvars", "capacity.web.min", 3, Edit("2", 2)),  # key "w\u0065b"
    ("escaped_key.tfvars", "capacity.1.min", 7, Edit("6", 4)),  # number key
    # lists
    ("lists.tfvars", "web_min_size", 3, Edit("2", 7)),
    ("lists.tfvars", "sizes", 1, Refuse(T, "sizes is a list ([1, 2, 3])")),
    ("lists.tfvars", "instance_types.web", 1, Refuse(T, "instance_types.web is a list")),
    # number literal forms
    ("numbers.tfvars", "scale_factor", 12, Edit("1e3", 1)),
    ("numbers.tfvars", "scale_factor", 1000, Same("1e3")),
    ("numbers.tfvars", "burst_ratio", 30, Edit("2.5E+1", 2)),
    ("numbers.tfvars", "burst_ratio", 25, Same("2.5E+1")),
    ("numbers.tfvars", "cpu_target", 1, Edit("0.250", 3)),
    ("numbers.tfvars", "web_min_size", 5, Edit("4.0", 4)),
    ("numbers.tfvars", "web_min_size", 4, Same("4.0")),
    ("numbers.tfvars", "zero_padded", 17, Edit("016", 5)),
    ("numbers.tfvars", "zero_padded", 16, Same("016")),
    ("numbers.tfvars", "tiny", 0, Edit("1.5e-3", 6)),
    # negative numbers, read and written
    ("negative.tfvars", "offset_a", 3, Edit("-3", 1)),
    ("negative.tfvars", "offset_a", -3, Same("-3")),
    ("negative.tfvars", "offset_b", -7, Edit("- 2", 2)),
    ("negative.tfvars", "offset_c", 150, Edit("-1.5e2", 3)),
    ("negative.tfvars", "web_min_size", -1, Edit("4", 4)),
    # layout details
    ("no_final_newline.tfvars", "web_min_size", 9, Edit("4", 2)),
    ("tabs.tfvars", "web_min_size", 10, Edit("4", 1)),
    ("tabs.tfvars", "worker_min_size", 2, Edit("1", 6)),
    # duplicates (python-hcl2 silently keeps the last one)
    (
        "duplicate.tfvars",
        "web_min_size",
        7,
        Refuse(
            T,
            "web_min_size appears twice (lines 3 and 9); Terraform rejects duplicate attributes",
        ),
    ),
    ("duplicate.tfvars", "web_max_size", 7, Refuse(P, "web_min_size appears twice")),
    (
        "duplicate_nested.tfvars",
        "capacity.web.min",
        7,
        Refuse(T, "min appears twice (lines 3 and 4)"),
    ),
    (
        "duplicate_nested.tfvars",
        "capacity.worker.min",
        7,
        Refuse(T, "capacity.worker appears twice (lines 6 and 7)"),  # worker and "worker"
    ),
    ("triplicate.tfvars", "web_min_size", 7, Refuse(T, "appears 3 times (lines 2, 3 and 4)")),
    # not number literals
    (
        "expressions.tfvars",
        "web_min_size",
        1,
        Refuse(T, ":1: web_min_size is an expression (2 + 3)"),
    ),
    ("expressions.tfvars", "web_max_size", 1, Refuse(T, "is an expression (var.max_size)")),
    ("expressions.tfvars", "worker_min_size", 1, Refuse(T, "is an expression ((4))")),
    ("expressions.tfvars", "worker_max_size", 1, Refuse(T, "is an expression (true ? 1 : 2)")),
    ("expressions.tfvars", "api_min_size", 1, Refuse(T, "is an expression (max(2, 3))")),
    ("expressions.tfvars", "api_max_size", 1, Refuse(T, "is an expression (-var.x)")),
    ("expressions.tfvars", "flag", 1, Refuse(T, "is an expression (!true)")),
    (
        "expressions.tfvars",
        "capacity.web.min",
        1,
        Refuse(
            T,
            ":10: capacity.web.min is an expression (var.x + 1), not a number literal; "
            "refusing to edit",
        ),
    ),
    ("strings_bools.tfvars", "web_min_size", 4, Refuse(T, 'web_min_size is a string ("4")')),
    ("strings_bools.tfvars", "web_max_size", 4, Refuse(T, "web_max_size is a bool (true)")),
    ("strings_bools.tfvars", "worker_min_size", 4, Refuse(T, "worker_min_size is null")),
    ("strings_bools.tfvars", "worker_max_size", 4, Refuse(T, 'is a string ("${var.size}")')),
    ("strings_bools.tfvars", "api_min_size", 4, Refuse(T, "api_min_size is a list")),
    # keys that cannot be resolved without evaluating them
    ("computed_key.tfvars", "capacity.web.min", 1, Refuse(T, "computed key ((var.tier))")),
    ("computed_key.tfvars", "other.min", 1, Refuse(T, 'computed key ("${var.k}")')),
    # files Terraform (or python-hcl2) rejects
    ("hex.tfvars", "web_min_size", 1, Refuse(P, "not valid HCL")),
    ("unterminated.tfvars", "web_min_size", 1, Refuse(P, ":4:1: not valid HCL")),
    ("block.tfvars", "web_min_size", 1, Refuse(P, ":2: blocks are not allowed")),
    ("one_line.tfvars", "web_min_size", 1, Refuse(P, "two attributes on one line")),
    ("latin1.tfvars", "web_min_size", 1, Refuse(P, "not UTF-8")),
    # JSON
    ("plain.tfvars.json", "web_min_size", 7, Edit("4", 3)),
    ("plain.tfvars.json", "region", 7, Refuse(T, 'region is a string ("eu-west-1")')),
    ("plain.tfvars.json", "nope", 7, Refuse(T, "nope is not set in this file")),
    ("nested.tfvars.json", "capacity.web.min", 5, Edit("2", 3)),
    ("nested.tfvars.json", "capacity.worker.min", 2, Edit("1.0", 4)),
    ("nested.tfvars.json", "capacity.worker.min", 1, Same("1.0")),
    ("nested.tfvars.json", "capacity.worker.max", 11, Edit("1E1", 4)),
    ("nested.tfvars.json", "capacity.worker.max", 10, Same("1E1")),
    ("nested.tfvars.json", "capacity.api.min", 3, Edit("-3", 5)),
    ("nested.tfvars.json", "capacity.api.limits.burst", 13, Edit("12", 5)),
    ("nested.tfvars.json", "tags.min", 1, Refuse(T, ":7: tags.min is a string")),
    ("nested.tfvars.json", "capacity.web.nope", 1, Refuse(T, "capacity.web has no key 'nope'")),
    ("string_decoy.tfvars.json", "web_min_size", 6, Edit("4", 5)),
    ("string_decoy.tfvars.json", "notes", 6, Refuse(T, "notes is a string")),
    ("string_decoy.tfvars.json", "list", 6, Refuse(T, "list is a list")),
    ("bom_crlf.tfvars.json", "web_min_size", 3, Edit("2", 3)),
    ("bom_crlf.tfvars.json", "web_max_size", 9, Edit("8", 4)),
    ("duplicate.tfvars.json", "web_min_size", 1, Refuse(T, "appears twice (lines 2 and 4)")),
    ("duplicate.tfvars.json", "web_max_size", 1, Refuse(P, "web_min_size appears twice")),
    (
        "duplicate_nested.tfvars.json",
        "capacity.web.min",
        1,
        Refuse(T, "capacity.web.min appears twice (lines 3 and 4)"),
    ),
    ("duplicate_nested.tfvars.json", "web_min_size", 5, Edit("4", 6)),
    ("types.tfvars.json", "web_min_size", 1, Refuse(T, 'web_min_size is a string ("4")')),
    ("types.tfvars.json", "web_max_size", 1, Refuse(T, "web_max_size is a bool (true)")),
    ("types.tfvars.json", "worker_min_size", 1, Refuse(T, "worker_min_size is null")),
    ("types.tfvars.json", "worker_max_size", 1, Refuse(T, "worker_max_size is a list ([4])")),
    ("types.tfvars.json", "capacity.web.min", 1, Refuse(T, "capacity.web is a number (3)")),
    ("trailing_comma.tfvars.json", "web_min_size", 1, Refuse(P, ":3:1: not valid JSON")),
    ("nan.tfvars.json", "web_min_size", 1, Refuse(P, "NaN is not valid JSON")),
    ("array_root.tfvars.json", "web_min_size", 1, Refuse(P, "must hold one JSON object")),
]


def _case_id(case: tuple[str, str, int, Outcome]) -> str:
    name, address, value, outcome = case
    return f"{name}:{address}={value}:{type(outcome).__name__}"


# --------------------------------------------------------------------------- helpers


def _split_bom(raw: bytes) -> tuple[bytes, str]:
    bom = BOM if raw.startswith(BOM) else b""
    return bom, raw[len(bom) :].decode("utf-8")


def _evaluate(raw: bytes, name: str) -> dict[str, Any]:
    """The file's values, by python-hcl2 / json directly (not through the module)."""
    _, text = _split_bom(raw)
    values: dict[str, Any] = json.loads(text) if name.endswith(".json") else hcl2.loads(text)
    return values


def _matches(key: str, part: str) -> bool:
    # python-hcl2 keeps the quotes (and escapes) of quoted keys: '"worker"', '"w\\u0065b"'.
    return key == part or (key.startswith('"') and json.loads(key) == part)


def _get(values: dict[str, Any], address: str) -> Any:
    node: Any = values
    for part in address.split("."):
        node = next(v for k, v in node.items() if _matches(k, part))
    return node


def _drop(values: dict[str, Any], address: str) -> dict[str, Any]:
    head, _, rest = address.partition(".")
    out = dict(values)
    key = next(k for k in values if _matches(k, head))
    if rest:
        out[key] = _drop(values[key], rest)
    else:
        del out[key]
    return out


def _changed_lines(diff: str) -> tuple[list[str], list[str]]:
    lines = diff.splitlines()
    minus = [ln for ln in lines if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
    return minus, plus


# --------------------------------------------------------------------------- corpus


def test_corpus_is_large_and_byte_exact() -> None:
    files = sorted(p.name for p in CORPUS.iterdir() if p.name != ".gitattributes")
    assert len(files) >= 15
    assert {case[0] for case in CASES} == set(files), "every corpus file is exercised"
    # Guard against a checkout that normalised the fixtures (see corpus/.gitattributes).
    for name in ("crlf.tfvars", "bom_crlf_unicode.tfvars", "bom_crlf.tfvars.json"):
        raw = (CORPUS / name).read_bytes()
        assert raw.count(b"\n") == raw.count(b"\r\n") > 0, name
    for name in ("bom.tfvars", "bom_crlf_unicode.tfvars", "bom_crlf.tfvars.json"):
        assert (CORPUS / name).read_bytes().startswith(BOM), name
    assert not (CORPUS / "no_final_newline.tfvars").read_bytes().endswith(b"\n")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_corpus(case: tuple[str, str, int, Outcome], tmp_path: Path) -> None:
    name, address, new_value, outcome = case
    raw = (CORPUS / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(raw)

    if isinstance(outcome, Refuse):
        with pytest.raises(outcome.exc, match=re.escape(outcome.fragment)) as info:
            apply_change(plan_change(path, address, new_value))
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(str(path))
        with pytest.raises(outcome.exc):
            locate(raw, address, filename=name)
        assert path.read_bytes() == raw
        assert os.listdir(tmp_path) == [name]
        return

    value = read_value(path, address)
    assert value.literal == outcome.literal
    bom, text = _split_bom(raw)
    assert text[value.start : value.end] == outcome.literal
    change = plan_change(path, address, new_value)
    assert change.old == value
    assert change.path == str(path)

    if isinstance(outcome, Same):
        assert change.new_bytes == raw
        assert change.diff == ""
        before = os.stat(path)
        apply_change(change)
        after = os.stat(path)
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
        return

    assert value.line == outcome.line
    # Byte offsets computed here, independently of the module's character offsets.
    byte_start = len(bom) + len(text[: value.start].encode("utf-8"))
    byte_end = byte_start + len(outcome.literal.encode("utf-8"))
    assert raw[byte_start:byte_end] == outcome.literal.encode("utf-8")
    expected = raw[:byte_start] + str(new_value).encode("ascii") + raw[byte_end:]
    assert change.new_bytes == expected

    minus, plus = _changed_lines(change.diff)
    assert len(minus) == 1 and len(plus) == 1, change.diff
    assert outcome.literal in minus[0] and str(new_value) in plus[0]
    assert minus[0][1:].replace(outcome.literal, str(new_value), 1) == plus[0][1:]
    assert change.diff.startswith(f"--- a/{str(path).lstrip('/')}\n+++ b/")

    apply_change(change)
    assert path.read_bytes() == expected
    assert os.listdir(tmp_path) == [name]
    # Re-parse with python-hcl2 / json directly: target changed, everything else equal.
    old_values, new_values = _evaluate(raw, name), _evaluate(expected, name)
    assert _get(new_values, address) == new_value
    assert _drop(old_values, address) == _drop(new_values, address)
    assert read_value(path, address).value == new_value


# --------------------------------------------------------------------------- messages


def test_duplicate_message_is_exactly_as_documented() -> None:
    data = (CORPUS / "duplicate.tfvars").read_bytes()
    with pytest.raises(TfvarsTargetError) as info:
        patch(data, "web_min_size", 7, filename="prod.tfvars")
    assert str(info.value) == (
        "prod.tfvars: web_min_size appears twice (lines 3 and 9); "
        "Terraform rejects duplicate attributes"
    )


def test_expression_message_is_exactly_as_documented() -> None:
    data = b"# capacity\ncapacity = {\n  web = {\n    min = var.x + 1\n  }\n}\n"
    with pytest.raises(TfvarsTargetError) as info:
        locate(data, "capacity.web.min", filename="prod.tfvars")
    assert str(info.value) == (
        "prod.tfvars:4: capacity.web.min is an expression (var.x + 1), not a number literal; "
        "refusing to edit"
    )


def test_parse_error_carries_the_parser_position() -> None:
    with pytest.raises(TfvarsParseError, match=r"^prod\.tfvars:2:5: not valid HCL: "):
        locate(b"a = 1\nb = = 2\n", "a", filename="prod.tfvars")


def test_out_of_range_float_is_refused() -> None:
    with pytest.raises(TfvarsTargetError, match="1e400 is out of range"):
        patch(b"web_min_size = 1e400\n", "web_min_size", 3)


# --------------------------------------------------------------------------- API details


def test_locate_reports_character_offsets_after_the_bom() -> None:
    data = BOM + "# é🚀\r\nweb_min_size = 12\r\n".encode()
    value = locate(data, "web_min_size", filename="x.tfvars")
    assert value == TfvarsValue(
        address="web_min_size", value=12, literal="12", start=21, end=23, line=2
    )  # "# é🚀\r\n" is 6 characters (12 bytes), "web_min_size = " 15
    assert data[3:].decode()[value.start : value.end] == "12"


def test_format_is_chosen_from_the_file_name() -> None:
    data = b'{"web_min_size": 4}'
    assert locate(data, "web_min_size", filename="a.tfvars.json").value == 4
    assert locate(data, "web_min_size", filename="A.TFVARS.JSON").value == 4
    with pytest.raises(TfvarsParseError, match="not valid HCL"):
        locate(data, "web_min_size", filename="a.tfvars")


def test_records_are_frozen() -> None:
    change = patch(b"a = 1\n", "a", 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.new_value = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.old.value = 3  # type: ignore[misc]
    assert isinstance(change, TfvarsChange)


def test_patch_diff_marks_a_missing_final_newline() -> None:
    change = patch(b"a = 1\nweb_min_size = 4", "web_min_size", 5, filename="envs/prod.tfvars")
    assert change.new_bytes == b"a = 1\nweb_min_size = 5"
    assert change.diff == (
        "--- a/envs/prod.tfvars\n"
        "+++ b/envs/prod.tfvars\n"
        "@@ -1,2 +1,2 @@\n"
        " a = 1\n"
        "-web_min_size = 4\n"
        "\\ No newline at end of file\n"
        "+web_min_size = 5\n"
        "\\ No newline at end of file\n"
    )


def test_patch_sha_is_of_the_original_bytes() -> None:
    import hashlib

    data = BOM + b"a = 1\r\n"
    change = patch(data, "a", 2)
    assert change.old_sha256 == hashlib.sha256(data).hexdigest()
    assert change.new_bytes == BOM + b"a = 2\r\n"
    assert change.changed
    assert not patch(data, "a", 1).changed


@pytest.mark.parametrize(
    "bad",
    [True, False, np.bool_(True), float("nan"), float("inf"), -float("inf"), 7.5, "7", None],
    ids=repr,
)
def test_bad_new_values_are_refused(bad: Any) -> None:
    with pytest.raises(TfvarsError, match="new value for web_min_size"):
        patch(b"web_min_size = 4\n", "web_min_size", bad)


@pytest.mark.parametrize("good", [7, 7.0, np.int64(7), np.float64(7.0)], ids=repr)
def test_integral_new_values_are_written_as_int_literals(good: Any) -> None:
    change = patch(b"web_min_size = 4.5\n", "web_min_size", good)
    assert change.new_bytes == b"web_min_size = 7\n"
    assert change.new_value == 7 and type(change.new_value) is int


@pytest.mark.parametrize(
    "address", ["", ".", "a.", ".a", "a..b", "1abc", "a b", 'a."b"', "a.b c", "a.b.c.", "-a"]
)
def test_invalid_addresses_are_refused(address: str) -> None:
    with pytest.raises(TfvarsTargetError, match="invalid address"):
        locate(b"a = 1\n", address, filename="x.tfvars")


def test_keyword_and_dash_names_are_addressable() -> None:
    data = b'web-tier = { in = 2, "for" = 3 }\n'
    assert locate(data, "web-tier.in").value == 2
    assert patch(data, "web-tier.for", 4).new_bytes == b'web-tier = { in = 2, "for" = 4 }\n'


def test_read_value_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TfvarsError, match="cannot read"):
        read_value(tmp_path / "absent.tfvars", "a")


def test_patch_is_pure(tmp_path: Path) -> None:
    path = tmp_path / "prod.tfvars"
    path.write_bytes(b"a = 1\n")
    change = patch(path.read_bytes(), "a", 2, filename=str(path))
    assert path.read_bytes() == b"a = 1\n"
    assert change.new_bytes == b"a = 2\n"


def test_conflict_is_a_tfvars_error() -> None:
    assert issubclass(TfvarsConflict, TfvarsError)


def test_keyword_keys_inside_objects() -> None:
    data = b"capacity = {\n  for = { min = 1 }\n  in = { min = 2 }\n}\n"
    change = patch(data, "capacity.in.min", 9)
    assert change.new_bytes == data.replace(b"min = 2", b"min = 9")


def test_string_keys_are_compared_after_unescaping() -> None:
    data = b'capacity = {\n  "a\\tb" = 1\n  "$${x}" = 2\n  "m\\u0069n" = 3\n}\n'
    assert locate(data, "capacity.min").line == 4
    # An escape HCL does not define could hide any key: refuse rather than guess.
    with pytest.raises(TfvarsTargetError, match=r'computed key \("w\\q"\)'):
        locate(b'capacity = {\n  "w\\q" = 2\n  min = 3\n}\n', "capacity.min")


def test_overlong_integer_literal_is_refused() -> None:
    with pytest.raises(TfvarsTargetError, match="too long a number"):
        patch(b"web_min_size = " + b"1" * 5000 + b"\n", "web_min_size", 3)


def test_python_hcl2_crash_prone_constructs_do_not_block_other_edits() -> None:
    # python-hcl2's dumps() crashes on this for-expression; we never call dumps().
    data = b"x = [for v in [{ c = var.f ? 1 : 2 }] : v]\nweb_min_size = 4\n"
    assert patch(data, "web_min_size", 9).new_bytes.endswith(b"web_min_size = 9\n")


@pytest.mark.parametrize("depth", [1000, 5000])
def test_json_nested_too_deeply_is_a_refusal_not_a_crash(depth: int) -> None:
    text = '{"web_min_size": 2, "x": ' + "[" * depth + "]" * depth + "}"
    with pytest.raises(TfvarsParseError, match="nested too deeply"):
        locate(text.encode(), "web_min_size", filename="prod.tfvars.json")


def test_json_with_many_variables_counts_lines_only_for_what_it_reports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counting the lines up to every key made 40,000 variables take 30 s to read."""
    from forescale.iac_writer import tfvars

    counted: list[int] = []
    real = tfvars._line_of
    monkeypatch.setattr(
        tfvars, "_line_of", lambda text, pos: counted.append(pos) or real(text, pos)
    )
    values = {f"var_{i}": {"min": i} for i in range(5_000)} | {"web_min_size": 2}
    text = json.dumps(values, indent=2).encode()
    assert locate(text, "web_min_size", filename="prod.tfvars.json").value == 2
    assert len(counted) <= 2
    dup = text[:-2] + b',\n  "var_7": 1\n}'
    with pytest.raises(TfvarsParseError, match=r"var_7 appears twice \(lines 23 and 15003\)"):
        locate(dup, "web_min_size", filename="prod.tfvars.json")
