"""Tests for forescale.iac_writer.yamlvalues and YamlTarget: exact edits of one integer in
Kubernetes YAML (Helm values, KEDA ScaledObject, HPA, multi-document manifests), or
one-line refusals that leave the file alone.

Each corpus case is an ``Edit`` (the written file must equal the original bytes with only
the integer's bytes replaced, and ``yaml.safe_load_all`` of it must equal the original data
with only that value changed — both computed here, not by the module), a ``Same`` (equal
value: nothing written) or a ``Refuse`` (exception class and message fragment; the file on
disk byte-for-byte unchanged). The corpus goes through :class:`YamlTarget` on real files.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forescale.errors import TfvarsConflict, TfvarsError, TfvarsParseError, TfvarsTargetError
from forescale.iac_writer.target import Undo
from forescale.iac_writer.yaml_target import YamlTarget
from forescale.iac_writer.yamlvalues import (
    autoscaler_conflicts,
    is_yaml_file,
    locate,
    patch,
    put_literal,
)
from tests.iac_writer.outcomes import Edit, Outcome, P, Refuse, Same, T

CORPUS = Path(__file__).parent / "yaml_corpus"
BOM = b"\xef\xbb\xbf"


HPA = "doc[HorizontalPodAutoscaler/web]"

CASES: list[tuple[str, str, int, Outcome]] = [
    # a Helm chart's values.yaml: comments (with {{ }}), decoys, quoted tpl strings
    ("values.yaml", "web.autoscaling.minReplicas", 8, Edit("3", 23)),
    ("values.yaml", "web.autoscaling.maxReplicas", 40, Edit("20", 24)),
    ("values.yaml", "replicaCount", 5, Edit("2", 6)),
    ("values.yaml", "worker.replicaCount", 0, Edit("1", 33)),
    ("values.yaml", "worker.autoscaling.keda.minReplicaCount", 2, Edit("0", 42)),
    ("values.yaml", "worker.autoscaling.keda.maxReplicaCount", 50, Same("50")),
    (
        "values.yaml",
        "worker.autoscaling.keda.queueLength",
        6,
        Refuse(T, ':44: worker.autoscaling.keda.queueLength is a quoted string ("5"), not a'),
    ),
    ("values.yaml", "image.tag", 1, Refuse(T, 'image.tag is a quoted string ("")')),
    (
        "values.yaml",
        "web.autoscaling.enabled",
        1,
        Refuse(T, ":22: web.autoscaling.enabled is a bool (true), not an integer"),
    ),
    (
        "values.yaml",
        "web.autoscaling",
        1,
        Refuse(T, ":20: web.autoscaling is a mapping, not an integer"),
    ),
    ("values.yaml", "web.resources.requests.cpu", 1, Refuse(T, "cpu is a string (250m)")),
    (
        "values.yaml",
        "web.autoscaling.desired",
        1,
        Refuse(T, ":20: web.autoscaling.desired not found (web.autoscaling has no key 'desired')"),
    ),
    ("values.yaml", "db.replicas", 1, Refuse(T, "db not found (the document has no key 'db')")),
    (
        "values.yaml",
        "tolerations.x",
        1,
        Refuse(T, ":47: tolerations is a list, not a mapping; cannot look up 'x'"),
    ),
    # KEDA ScaledObject
    ("scaledobject.yaml", "spec.minReplicaCount", 5, Edit("2", 14)),
    ("scaledobject.yaml", "spec.maxReplicaCount", 60, Edit("40", 15)),
    ("scaledobject.yaml", "spec.fallback.replicas", 4, Edit("6", 18)),
    ("scaledobject.yaml", "spec.idleReplicaCount", 1, Edit("0", 13)),
    ("scaledobject.yaml", "doc[ScaledObject/worker].spec.minReplicaCount", 3, Edit("2", 14)),
    ("scaledobject.yaml", "doc[0].spec.maxReplicaCount", 41, Edit("40", 15)),
    ("scaledobject.yaml", "spec.triggers", 1, Refuse(T, "spec.triggers is a list, not an integer")),
    (
        "scaledobject.yaml",
        "doc[ScaledObject/web].spec.minReplicaCount",
        1,
        Refuse(T, "no document is ScaledObject/web (the file holds doc[0] ScaledObject/worker)"),
    ),
    (
        "scaledobject.yaml",
        "doc[1].spec.minReplicaCount",
        1,
        Refuse(T, "there is no doc[1], the file holds 1 document (doc[0] to doc[0])"),
    ),
    # autoscaling/v2 HPA after a comment and ---, ended by ...
    ("hpa.yaml", "spec.minReplicas", 6, Edit("3", 13)),
    ("hpa.yaml", "spec.maxReplicas", 30, Same("30")),
    ("hpa.yaml", "spec.behavior.scaleDown.stabilizationWindowSeconds", 600, Edit("300", 28)),
    ("hpa.yaml", "spec.metrics", 1, Refuse(T, "spec.metrics is a list")),
    ("hpa.yaml", "apiVersion", 1, Refuse(T, "apiVersion is a string (autoscaling/v2)")),
    # several documents: Deployment + Service + HPA + an empty one after the last ---
    (
        "deployment_hpa.yaml",
        "spec.minReplicas",
        5,
        Refuse(
            T,
            "deployment_hpa.yaml: spec.minReplicas: the file holds 3 documents (doc[0] "
            "Deployment/web, doc[1] Service/web, doc[2] HorizontalPodAutoscaler/web); say which "
            f"one, e.g. {HPA}.spec.minReplicas",
        ),
    ),
    ("deployment_hpa.yaml", "doc[2].spec.minReplicas", 5, Edit("3", 45, doc=2)),
    ("deployment_hpa.yaml", f"{HPA}.spec.maxReplicas", 25, Edit("20", 46, doc=2)),
    (
        "deployment_hpa.yaml",
        f"{HPA}.spec.metrics",
        1,
        Refuse(T, f"{HPA}.spec.metrics is a list, not an integer"),
    ),
    ("deployment_hpa.yaml", "doc[Deployment/web].spec.replicas", 4, Edit("3", 8)),
    (
        "deployment_hpa.yaml",
        "doc[3].spec.replicas",
        4,
        Refuse(T, ":52: doc[3].spec.replicas: doc[3] is empty"),
    ),
    (
        "deployment_hpa.yaml",
        "doc[9].spec.replicas",
        4,
        Refuse(T, "there is no doc[9], the file holds 4 documents"),
    ),
    (
        "deployment_hpa.yaml",
        "doc[Service/web].spec.ports",
        4,
        Refuse(T, "doc[Service/web].spec.ports is a list"),
    ),
    (
        "deployment_hpa.yaml",
        "doc[Service/web].spec.minReplicas",
        4,
        Refuse(T, "doc[Service/web].spec.minReplicas not found (doc[Service/web].spec has no key"),
    ),
    (
        "keda_deployment.yaml",
        "doc[ScaledObject/worker].spec.maxReplicaCount",
        35,
        Edit("30", 26, doc=1),
    ),
    ("hpa_owns_replicas.yaml", "doc[1].spec.minReplicas", 3, Edit("2", 21, doc=1)),
    # the same kind/name twice (two namespaces): pick by number
    (
        "two_namespaces.yaml",
        f"{HPA}.spec.minReplicas",
        2,
        Refuse(
            T,
            "HorizontalPodAutoscaler/web is 2 documents (doc[0] on line 1 and doc[1] on line 10); "
            "pick one by number, e.g. doc[0].spec.minReplicas",
        ),
    ),
    ("two_namespaces.yaml", "doc[1].spec.minReplicas", 6, Edit("4", 18, doc=1)),
    # anchors, aliases and merge keys
    ("anchors.yaml", "web.autoscaling.maxReplicas", 40, Edit("30", 10)),
    ("anchors.yaml", "batch.replicas", 6, Edit("4", 17)),  # &unused stays
    (
        "anchors.yaml",
        "web.autoscaling.minReplicas",
        4,
        Refuse(
            T,
            ":9: web.autoscaling.minReplicas is not written here but may come from the merge "
            "key (<<)",
        ),
    ),
    (
        "anchors.yaml",
        "api.autoscaling.minReplicas",
        4,
        Refuse(
            T, ":12: api.autoscaling is an alias (*autoscaling) of the value anchored on line 2"
        ),
    ),
    (
        "anchors.yaml",
        "x-autoscaling.minReplicas",
        4,
        Refuse(
            T,
            ":2: x-autoscaling is anchored (&autoscaling) and reused by *autoscaling on line 9; "
            "editing it would change every copy, refusing to edit",
        ),
    ),
    (
        "anchors.yaml",
        "worker.replicas",
        4,
        Refuse(T, ":14: worker.replicas is anchored (&worker-replicas) and reused by"),
    ),
    (
        "anchors.yaml",
        "worker.standby",
        4,
        Refuse(T, ":15: worker.standby is an alias (*worker-replicas)"),
    ),
    # flow style
    ("flow.yaml", "web.autoscaling.minReplicas", 12, Edit("2", 2)),
    ("flow.yaml", "web.autoscaling.maxReplicas", 80, Edit("8", 2)),
    ("flow.yaml", "web.replicaCount", 0, Edit("1", 2)),
    ("flow.yaml", "worker.autoscaling.minReplicas", 3, Edit("1", 4)),
    ("flow.yaml", "worker.autoscaling.maxReplicas", 16, Edit("4", 4)),
    ("flow.yaml", "sizes", 1, Refuse(T, "sizes is a list")),
    # line endings, BOM, unicode, tabs, markers
    ("crlf.yaml", "web.autoscaling.minReplicas", 5, Edit("3", 4)),
    ("crlf.yaml", "web.autoscaling.maxReplicas", 100, Edit("12", 5)),
    ("bom_crlf.yaml", "web.autoscaling.minReplicas", 3, Edit("2", 4)),
    ("bom_crlf.yaml", "web.autoscaling.maxReplicas", 15, Edit("16", 4)),
    ("bom.yaml", "replicaCount", 50, Edit("5", 1)),
    ("tabs_in_comments.yaml", "autoscaling.minReplicas", 7, Edit("2", 4)),
    ("tabs_in_comments.yaml", "autoscaling.maxReplicas", 11, Edit("10", 5)),
    (
        "tab_before_comment.yaml",
        "autoscaling.minReplicas",
        7,
        Refuse(P, ":2:17: cannot parse as YAML: found character '\\t' that cannot start any token"),
    ),
    ("document_markers.yaml", "spec.minReplicas", 3, Edit("2", 8)),
    ("document_markers.yaml", "doc[HorizontalPodAutoscaler/api].spec.maxReplicas", 9, Edit("6", 9)),
    ("no_final_newline.yaml", "autoscaling.maxReplicas", 10, Edit("9", 3)),
    ("no_final_newline.yaml", "autoscaling.minReplicas", 5, Edit("4", 2)),
    # scalars that are not plain decimal integers
    ("scalars.yaml", "double", 4, Refuse(T, ':1: double is a quoted string ("3"), not a number')),
    ("scalars.yaml", "single", 4, Refuse(T, ":2: single is a quoted string ('3')")),
    ("scalars.yaml", "tagged_int", 5, Refuse(T, ":3: tagged_int has an explicit tag (!!int 4)")),
    ("scalars.yaml", "tagged_str", 5, Refuse(T, "tagged_str has an explicit tag (!!str 5)")),
    ("scalars.yaml", "float", 4, Refuse(T, ":5: float is a float (4.0), not an integer")),
    ("scalars.yaml", "octal", 4, Refuse(T, ":6: octal = 017 is not a plain decimal integer")),
    ("scalars.yaml", "hex", 4, Refuse(T, "hex = 0x10 is not a plain decimal integer")),
    ("scalars.yaml", "underscore", 4, Refuse(T, "underscore = 1_000 is not a plain decimal")),
    ("scalars.yaml", "plus", 4, Refuse(T, "plus = +3 is not a plain decimal integer")),
    ("scalars.yaml", "sexagesimal", 4, Refuse(T, "sexagesimal = 1:30 is not a plain decimal")),
    ("scalars.yaml", "empty", 4, Refuse(T, ":11: empty is empty (null), not an integer")),
    ("scalars.yaml", "tilde", 4, Refuse(T, "tilde is null (~), not an integer")),
    ("scalars.yaml", "bool", 4, Refuse(T, "bool is a bool (yes), not an integer")),
    ("scalars.yaml", "string", 4, Refuse(T, "string is a string (three), not an integer")),
    ("scalars.yaml", "block", 4, Refuse(T, ":15: block is a block string (| 3), not a number")),
    ("scalars.yaml", "folded", 4, Refuse(T, "folded is a block string (>- 3)")),
    ("scalars.yaml", "multi_line", 4, Refuse(T, "multi_line is a string (1 2), not an integer")),
    ("scalars.yaml", "negative", 3, Edit("-2", 21)),
    ("scalars.yaml", "zero", 0, Same("0")),
    # templates
    (
        "templated_hpa.yaml",
        "spec.maxReplicas",
        3,
        Refuse(P, "templated_hpa.yaml:1: a Helm/Go template ({{ on this line), not YAML"),
    ),
    (
        "templated_parses.yaml",
        "spec.maxReplicas",
        3,
        Refuse(
            P,
            "templated_parses.yaml:6: a Helm/Go template ({{ outside a quoted string: "
            "minReplicas: {{ .Values.autoscaling.m...); Helm renders it, so set the number in "
            "the chart's values file instead",
        ),
    ),
    (
        "template_in_plain.yaml",
        "autoscaling.minReplicas",
        3,
        Refuse(P, ":2: a Helm/Go template ({{ outside a quoted string: fullnameOverride: shop-"),
    ),
    # duplicate keys on the path (PyYAML would silently keep the last)
    (
        "duplicates.yaml",
        "web.autoscaling.minReplicas",
        3,
        Refuse(T, "web.autoscaling.minReplicas appears twice (lines 3 and 5); duplicate keys"),
    ),
    (
        "duplicates.yaml",
        "worker.autoscaling.minReplicas",
        3,
        Refuse(T, "worker appears twice (lines 6 and 8)"),
    ),
    ("duplicates.yaml", "web.autoscaling.maxReplicas", 12, Edit("10", 4)),  # not on the path
    ("duplicates.yaml", "api.replicas", 3, Edit("2", 11)),
    # files forescale cannot parse or load
    (
        "invalid.yaml",
        "web.autoscaling.minReplicas",
        3,
        Refuse(P, ":4:4: cannot parse as YAML: expected <block end>"),
    ),
    ("latin1.yaml", "minReplicas", 3, Refuse(P, "not UTF-8 (invalid byte at offset 4)")),
    (
        "custom_tag.yaml",
        "replicas",
        3,
        Refuse(
            P, ":2:11: cannot be loaded (could not determine a constructor for the tag '!vault')"
        ),
    ),
    (
        "empty.yaml",
        "replicas",
        3,
        Refuse(T, "empty.yaml: replicas: the file holds no YAML document"),
    ),
]


def _case_id(case: tuple[str, str, int, Outcome]) -> str:
    name, address, value, outcome = case
    return f"{name}:{address}={value}:{type(outcome).__name__}"


# --------------------------------------------------------------------------- helpers


def _split_bom(raw: bytes) -> tuple[bytes, str]:
    bom = BOM if raw.startswith(BOM) else b""
    return bom, raw[len(bom) :].decode("utf-8")


def _load(raw: bytes) -> list[Any]:
    """The documents as PyYAML loads them, directly (not through the module)."""
    return list(yaml.safe_load_all(_split_bom(raw)[1]))


def _keys(address: str) -> list[str]:
    return re.sub(r"^doc\[[^\]]*\]\.", "", address).split(".")


def _with(documents: list[Any], doc: int, keys: list[str], value: int) -> list[Any]:
    out = copy.deepcopy(documents)
    node = out[doc]
    for key in keys[:-1]:
        node = node[key]
    assert type(node[keys[-1]]) is int
    node[keys[-1]] = value
    return out


def _changed_lines(diff: str) -> tuple[list[str], list[str]]:
    lines = diff.splitlines()
    minus = [ln for ln in lines if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
    return minus, plus


def _expected_bytes(raw: bytes, start: int, literal: str, new: str) -> bytes:
    bom, text = _split_bom(raw)
    byte_start = len(bom) + len(text[:start].encode("utf-8"))
    byte_end = byte_start + len(literal.encode("utf-8"))
    assert raw[byte_start:byte_end] == literal.encode("utf-8")
    return raw[:byte_start] + new.encode("ascii") + raw[byte_end:]


# --------------------------------------------------------------------------- corpus


def test_corpus_is_large_and_byte_exact() -> None:
    names = sorted(p.name for p in CORPUS.iterdir() if p.name != ".gitattributes")
    assert len(names) >= 20
    assert {case[0] for case in CASES} == set(names), "every corpus file is exercised"
    # Guard against a checkout that normalised the fixtures (see yaml_corpus/.gitattributes).
    for name in ("crlf.yaml", "bom_crlf.yaml"):
        raw = (CORPUS / name).read_bytes()
        assert raw.count(b"\n") == raw.count(b"\r\n") > 0, name
    for name in ("bom.yaml", "bom_crlf.yaml"):
        assert (CORPUS / name).read_bytes().startswith(BOM), name
    assert not (CORPUS / "no_final_newline.yaml").read_bytes().endswith(b"\n")
    assert b"#\tminReplicas:\t99" in (CORPUS / "tabs_in_comments.yaml").read_bytes()
    assert b"2\t# a tab" in (CORPUS / "tab_before_comment.yaml").read_bytes()


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_corpus(case: tuple[str, str, int, Outcome], tmp_path: Path) -> None:
    name, address, new_value, outcome = case
    raw = (CORPUS / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(raw)
    target = YamlTarget(path, address)

    if isinstance(outcome, Refuse):
        with pytest.raises(outcome.exc, match=re.escape(outcome.fragment)) as info:
            target.write(target.propose(new_value))
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(str(path))
        with pytest.raises(outcome.exc):
            locate(raw, address, filename=name)
        assert path.read_bytes() == raw
        assert os.listdir(tmp_path) == [name]
        return

    snapshot = target.read()
    assert snapshot.literal == outcome.literal
    assert (snapshot.path, snapshot.address) == (path, address)
    edit = target.propose(new_value)
    assert edit.before == snapshot

    if isinstance(outcome, Same):
        assert edit.new_bytes == raw
        assert edit.diff == ""
        assert not edit.changed
        before = os.stat(path)
        target.write(edit)
        after = os.stat(path)
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
        return

    found = locate(raw, address, filename=name)
    assert found.line == outcome.line
    assert found.value == int(outcome.literal)
    expected = _expected_bytes(raw, found.start, outcome.literal, str(new_value))
    # the literal is on the expected line, counted here from the raw bytes
    bom, text = _split_bom(raw)
    assert text.count("\n", 0, found.start) + 1 == outcome.line
    assert edit.new_bytes == expected
    assert edit.literal == str(new_value)

    minus, plus = _changed_lines(edit.diff)
    assert len(minus) == 1 and len(plus) == 1, edit.diff
    assert minus[0][1:].replace(outcome.literal, str(new_value)) == plus[0][1:] or (
        outcome.literal in minus[0] and str(new_value) in plus[0]
    )

    target.write(edit)
    assert path.read_bytes() == expected
    assert os.listdir(tmp_path) == [name]
    # Re-parse with PyYAML directly: the target changed, everything else is equal.
    assert _load(expected) == _with(_load(raw), outcome.doc, _keys(address), new_value)
    assert target.read().value == new_value


def _naive_round_trip(raw: bytes, address: str, doc: int, new_value: int) -> bytes:
    """What a tool that loads, sets and dumps the YAML would write."""
    documents = _with(_load(raw), doc, _keys(address), new_value)
    return yaml.safe_dump_all(documents, sort_keys=False).encode()


@pytest.mark.parametrize("case", [c for c in CASES if isinstance(c[3], Edit)], ids=_case_id)
def test_a_naive_round_trip_would_fail_the_corpus(case: tuple[str, str, int, Outcome]) -> None:
    """The byte-exact assertion above is not vacuous: load/set/dump gives other bytes."""
    name, address, new_value, outcome = case
    assert isinstance(outcome, Edit)
    raw = (CORPUS / name).read_bytes()
    found = locate(raw, address, filename=name)
    expected = _expected_bytes(raw, found.start, outcome.literal, str(new_value))
    naive = _naive_round_trip(raw, address, outcome.doc, new_value)
    assert _load(naive) == _load(expected)  # the same data ...
    assert naive != expected  # ... but not the same file


# --------------------------------------------------------------------------- messages


def test_quoted_number_message_is_exactly_as_documented() -> None:
    with pytest.raises(TfvarsTargetError) as info:
        locate(b'autoscaling:\n  minReplicas: "3"\n', "autoscaling.minReplicas", filename="v.yaml")
    assert str(info.value) == (
        'v.yaml:2: autoscaling.minReplicas is a quoted string ("3"), not a number; forescale '
        "does not edit a string — write it unquoted if it is a count"
    )


def test_multi_document_message_suggests_the_document_that_has_the_key() -> None:
    raw = (CORPUS / "deployment_hpa.yaml").read_bytes()
    with pytest.raises(TfvarsTargetError, match=r"e\.g\. doc\[Deployment/web\]\.spec\.replicas$"):
        locate(raw, "spec.replicas", filename="m.yaml")


def test_anchored_scalar_reused_as_value_is_refused_with_both_lines() -> None:
    with pytest.raises(TfvarsTargetError) as info:
        patch(b"min: &m 2\nweb:\n  minReplicas: *m\n", "min", 3, filename="v.yaml")
    assert str(info.value) == (
        "v.yaml:1: min is anchored (&m) and reused by *m on line 3; editing it would change "
        "every copy, refusing to edit"
    )


# --------------------------------------------------------------------------- API details


def test_locate_reports_character_offsets_after_the_bom() -> None:
    data = BOM + "# é🚀\r\nweb: {min: 12}\r\n".encode()
    value = locate(data, "web.min", filename="x.yaml")
    assert (value.literal, value.value, value.line) == ("12", 12, 2)
    assert data[3:].decode()[value.start : value.end] == "12"
    assert value.start == 6 + len("web: {min: ")  # "# é🚀\r\n" is 6 characters


def test_unused_anchor_is_kept_and_anchor_characters_are_not_touched() -> None:
    change = patch(b"web:\n  minReplicas: &keep 2  # c\n", "web.minReplicas", 10)
    assert change.new_bytes == b"web:\n  minReplicas: &keep 10  # c\n"


def test_keys_are_matched_as_written_and_loaded_as_pyyaml_loads_them() -> None:
    # YAML 1.1 loads the key `on` as True and `1` as 1; the edit is still verified.
    assert patch(b"on:\n  push: 2\n", "on.push", 5).new_bytes == b"on:\n  push: 5\n"
    assert patch(b"1: {a: 3}\n", "1.a", 5).new_bytes == b"1: {a: 5}\n"
    assert patch(b"\"web\": {'min': 3}\n", "web.min", 4).new_bytes == b"\"web\": {'min': 4}\n"


def test_a_key_that_collides_when_loaded_is_refused() -> None:
    # `on` and `1` are both 1 once loaded (True == 1): the edit cannot be verified.
    with pytest.raises(TfvarsError, match="changed more than on.push"):
        patch(b"on:\n  push: 2\n1: {a: 3}\n", "on.push", 5, filename="x.yaml")


def test_recursive_alias_elsewhere_does_not_hang() -> None:
    data = b"loop: &a [*a]\nreplicas: 2\n"
    assert patch(data, "replicas", 3).new_bytes == b"loop: &a [*a]\nreplicas: 3\n"


def test_alias_as_key_is_resolved() -> None:
    data = b"k: &k minReplicas\nweb:\n  *k : 2\n"
    assert patch(data, "web.minReplicas", 3).new_bytes == b"k: &k minReplicas\nweb:\n  *k : 3\n"


def test_put_literal_puts_back_exact_characters() -> None:
    data = b"web:\n  minReplicas: 10\n"
    assert put_literal(data, "web.minReplicas", "3").new_bytes == b"web:\n  minReplicas: 3\n"
    assert put_literal(data, "web.minReplicas", "10").new_bytes == data
    with pytest.raises(TfvarsError, match="not a plain decimal integer"):
        put_literal(data, "web.minReplicas", "0x3")


@pytest.mark.parametrize(
    "bad",
    [True, np.bool_(True), float("nan"), float("inf"), 7.5, "7", None, -1, np.int64(-3)],
    ids=repr,
)
def test_bad_new_values_are_refused(bad: Any) -> None:
    with pytest.raises(TfvarsError, match="new value for web.min"):
        patch(b"web: {min: 4}\n", "web.min", bad)


@pytest.mark.parametrize("good", [7, 7.0, np.int64(7), np.float64(7.0)], ids=repr)
def test_integral_new_values_are_written_as_int_literals(good: Any) -> None:
    change = patch(b"web: {min: 4}\n", "web.min", good)
    assert change.new_bytes == b"web: {min: 7}\n"
    assert change.new_value == 7 and type(change.new_value) is int


@pytest.mark.parametrize(
    "address",
    [
        "",
        ".",
        "a.",
        ".a",
        "a..b",
        "a b",
        "a.b c",
        "a[0]",
        "doc[1]",
        "doc[1].",
        "doc[].a",
        "doc[01].a",
        "doc[-1].a",
        "doc[Deployment].a",
        "doc[Deployment/].a",
        "doc[/web].a",
        "doc[1]a",
        "a.doc[1].b",
        "app.kubernetes.io/name",
    ],
)
def test_invalid_addresses_are_refused(address: str) -> None:
    with pytest.raises(TfvarsTargetError, match="invalid (address|document selector)"):
        locate(b"a: 1\n", address, filename="x.yaml")


def test_patch_diff_marks_a_missing_final_newline() -> None:
    change = patch(b"a: 1\nb: 4", "b", 5, filename="envs/values.yaml")
    assert change.diff == (
        "--- a/envs/values.yaml\n"
        "+++ b/envs/values.yaml\n"
        "@@ -1,2 +1,2 @@\n"
        " a: 1\n"
        "-b: 4\n"
        "\\ No newline at end of file\n"
        "+b: 5\n"
        "\\ No newline at end of file\n"
    )


def test_values_pyyaml_cannot_construct_are_refused() -> None:
    with pytest.raises(TfvarsParseError, match="cannot be loaded \\(Exceeds the limit"):
        patch(b"replicas: " + b"1" * 5000 + b"\n", "replicas", 3, filename="x.yaml")
    with pytest.raises(TfvarsParseError, match="cannot be loaded \\(month must be in 1..12\\)"):
        patch(b"replicas: 2\nsince: 2020-13-01\n", "replicas", 3, filename="x.yaml")


def test_a_document_that_is_not_a_mapping_is_named() -> None:
    with pytest.raises(TfvarsTargetError) as info:
        locate(b"- a\n- b\n", "spec.replicas", filename="l.yaml")
    assert str(info.value) == (
        "l.yaml:1: the document is a list, not a mapping; cannot look up 'spec'"
    )


def test_template_braces_in_block_and_quoted_strings_and_comments_are_data() -> None:
    data = b'# {{ c }}\na: "{{ x }}"\nb: |\n  {{ y }}\nc: 1  # {{ z }}\n'
    assert patch(data, "c", 2).new_bytes == data.replace(b"c: 1", b"c: 2")


def test_is_yaml_file() -> None:
    assert is_yaml_file("values.yaml") and is_yaml_file(Path("HPA.YML"))
    assert not is_yaml_file("prod.tfvars") and not is_yaml_file("values.yaml.bak")


# --------------------------------------------------------------------------- YamlTarget


def _values(tmp_path: Path, text: str = "web:\n  minReplicas: 3   # c\n") -> Path:
    path = tmp_path / "values.yaml"
    path.write_bytes(text.encode())
    return path


def test_target_refuses_negative_units(tmp_path: Path) -> None:
    target = YamlTarget(_values(tmp_path), "web.minReplicas")
    with pytest.raises(TfvarsError, match="whole number of units >= 0, not -1"):
        target.propose(-1)


def test_target_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TfvarsError, match="cannot read: no such file"):
        YamlTarget(tmp_path / "absent.yaml", "a").read()


def test_target_sources_is_the_file(tmp_path: Path) -> None:
    path = _values(tmp_path)
    assert YamlTarget(path, "web.minReplicas").sources == (path,)


def test_target_write_is_compare_and_swap(tmp_path: Path) -> None:
    path = _values(tmp_path)
    target = YamlTarget(path, "web.minReplicas")
    edit = target.propose(5)
    path.write_bytes(b"web:\n  minReplicas: 4   # someone else\n")
    with pytest.raises(TfvarsConflict):
        target.write(edit)
    assert path.read_bytes() == b"web:\n  minReplicas: 4   # someone else\n"


def test_target_undo_restores_byte_for_byte(tmp_path: Path) -> None:
    path = _values(tmp_path)
    original = path.read_bytes()
    target = YamlTarget(path, "web.minReplicas")
    edit = target.propose(12)
    target.write(edit)
    assert path.read_bytes() == b"web:\n  minReplicas: 12   # c\n"
    result = target.undo(edit.written())
    assert result.outcome is Undo.RESTORED
    assert path.read_bytes() == original
    assert target.undo(edit.written()).outcome is Undo.ALREADY


def test_target_undo_keeps_other_edits(tmp_path: Path) -> None:
    path = _values(tmp_path)
    target = YamlTarget(path, "web.minReplicas")
    edit = target.propose(12)
    target.write(edit)
    path.write_bytes(path.read_bytes() + b"# a human added this\n")
    assert target.undo(edit.written()).outcome is Undo.VALUE_ONLY
    assert path.read_bytes() == b"web:\n  minReplicas: 3   # c\n# a human added this\n"


def test_target_undo_leaves_a_human_change(tmp_path: Path) -> None:
    path = _values(tmp_path)
    target = YamlTarget(path, "web.minReplicas")
    edit = target.propose(12)
    target.write(edit)
    path.write_bytes(b"web:\n  minReplicas: 7   # c\n")
    result = target.undo(edit.written())
    assert (result.outcome, result.found) == (Undo.CONFLICT, "7")
    assert path.read_bytes() == b"web:\n  minReplicas: 7   # c\n"


def test_target_propose_after_change_since_read_is_a_conflict(tmp_path: Path) -> None:
    path = _values(tmp_path)
    target = YamlTarget(path, "web.minReplicas")
    before = target.read()
    path.write_bytes(b"web:\n  minReplicas: 4\n")
    with pytest.raises(TfvarsConflict, match="changed since forescale read it"):
        target.propose(5, before)


# --------------------------------------------------------------------------- GitOps warning


def test_deployment_replicas_next_to_its_hpa_is_warned_about() -> None:
    raw = (CORPUS / "deployment_hpa.yaml").read_bytes()
    assert autoscaler_conflicts(raw, filename="k8s/web.yaml") == (
        "k8s/web.yaml: Deployment/web (doc[0]) sets spec.replicas (3) and "
        "HorizontalPodAutoscaler/web (doc[2]) autoscales it: the GitOps controller will put "
        "the replicas back on every sync while the autoscaler changes them, and the two "
        "fight; remove spec.replicas from the Deployment and let the HorizontalPodAutoscaler "
        "own the replica count",
    )


def test_keda_scaled_object_defaults_to_a_deployment() -> None:
    raw = (CORPUS / "keda_deployment.yaml").read_bytes()
    (warning,) = autoscaler_conflicts(raw, filename="w.yaml")
    assert warning.startswith("w.yaml: Deployment/worker (doc[0]) sets spec.replicas (2) and ")
    assert "ScaledObject/worker (doc[1]) autoscales it" in warning
    assert warning.endswith("let the ScaledObject own the replica count")


@pytest.mark.parametrize(
    "name",
    [
        "hpa_owns_replicas.yaml",
        "values.yaml",
        "scaledobject.yaml",
        "hpa.yaml",
        "two_namespaces.yaml",
    ],
)
def test_no_warning_without_a_fight(name: str) -> None:
    assert autoscaler_conflicts((CORPUS / name).read_bytes(), filename=name) == ()


def _scaler(kind: str, metadata: str, ref: str) -> str:
    return f"kind: {kind}\nmetadata: {{{metadata}}}\nspec:\n  scaleTargetRef: {{{ref}}}\n"


@pytest.mark.parametrize(
    ("scaler", "warned"),
    [
        (_scaler("HorizontalPodAutoscaler", "name: h", "kind: Deployment, name: web"), True),
        (_scaler("HorizontalPodAutoscaler", "name: h", "kind: StatefulSet, name: web"), False),
        (_scaler("HorizontalPodAutoscaler", "name: h", "kind: Deployment, name: api"), False),
        (
            _scaler(
                "HorizontalPodAutoscaler", "name: h, namespace: b", "kind: Deployment, name: web"
            ),
            False,
        ),
        (_scaler("ScaledObject", "name: s, namespace: a", "name: web"), True),
        (_scaler("ScaledObject", "name: s", "kind: StatefulSet, name: web"), False),
    ],
)
def test_the_scaler_must_target_the_workload(scaler: str, warned: bool) -> None:
    deployment = "kind: Deployment\nmetadata: {name: web, namespace: a}\nspec: {replicas: 1}\n"
    data = (deployment + "---\n" + scaler).encode()
    assert bool(autoscaler_conflicts(data, filename="x.yaml")) is warned


def test_statefulset_is_a_workload_too() -> None:
    data = (
        b"kind: StatefulSet\nmetadata: {name: db}\nspec: {replicas: 3}\n---\n"
        b"kind: HorizontalPodAutoscaler\nmetadata: {name: db}\n"
        b"spec: {scaleTargetRef: {kind: StatefulSet, name: db}}\n"
    )
    (warning,) = autoscaler_conflicts(data, filename="x.yaml")
    assert "StatefulSet/db (doc[0]) sets spec.replicas (3)" in warning


def test_warning_helper_refuses_a_template() -> None:
    with pytest.raises(TfvarsParseError, match="Helm/Go template"):
        autoscaler_conflicts((CORPUS / "templated_hpa.yaml").read_bytes(), filename="t.yaml")


# --------------------------------------------------------------------------- property

YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
keys = st.from_regex(r"[a-z][a-zA-Z0-9_-]{0,7}", fullmatch=True).filter(
    lambda k: k.lower() not in YAML11_WORDS
)
# (source text, loaded value) of scalars that are not targets
OTHER_SCALARS = [
    ("web", "web"),
    ("'3'", "3"),
    ('"x # y: 1"', "x # y: 1"),
    ("true", True),
    ("~", None),
    ("2.5", 2.5),
    ("'{{ .Values.x }}'", "{{ .Values.x }}"),
    ("a b", "a b"),
    ("250m", "250m"),
]
leaves = st.one_of(st.integers(-1000, 10**9), st.sampled_from(OTHER_SCALARS))
trees = st.recursive(
    st.dictionaries(keys, leaves, min_size=1, max_size=4),
    lambda inner: st.dictionaries(keys, st.one_of(leaves, inner), min_size=1, max_size=4),
    max_leaves=16,
)
comments = st.sampled_from(
    ["", "  # note", " # minReplicas: 99", "   #\ttab", " # é ünïcödé 🚀", " # {{ .Values.x }}"]
)


@dataclasses.dataclass(frozen=True)
class Placed:
    """An integer the generator wrote at character ``start``; ``path`` in the loaded data."""

    address: str
    path: tuple[Any, ...]
    literal: str
    start: int


@st.composite
def yaml_files(draw: st.DrawFn) -> tuple[str, bool, list[Any], list[Placed]]:
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.booleans())
    step = draw(st.sampled_from([2, 4]))
    documents = draw(st.lists(trees, min_size=1, max_size=2))
    text = draw(st.sampled_from(["", f"# generated{eol}", f"---{eol}"]))
    placed: list[Placed] = []
    loaded: list[Any] = []

    def scalar(value: Any, address: str, path: tuple[Any, ...]) -> tuple[str, Any]:
        nonlocal text
        if isinstance(value, int):
            placed.append(Placed(address, path, str(value), len(text)))
            text += str(value)
            return str(value), value
        text += value[0]
        return value

    def block(
        tree: dict[str, Any], indent: int, prefix: str, path: tuple[Any, ...]
    ) -> dict[str, Any]:
        nonlocal text
        out: dict[str, Any] = {}
        for key, value in tree.items():
            if draw(st.booleans()):
                text += " " * indent + "#" + draw(comments) + eol
            text += " " * indent + key + ":"
            address = f"{prefix}{key}"
            if isinstance(value, dict):
                flat = all(not isinstance(v, dict) for v in value.values())
                if flat and draw(st.booleans()):  # flow style {a: 1, b: x}
                    text += " {"
                    inner: dict[str, Any] = {}
                    for i, (k, v) in enumerate(value.items()):
                        text += (", " if i else "") + k + ": "
                        inner[k] = scalar(v, f"{address}.{k}", (*path, key, k))[1]
                    text += "}" + draw(comments) + eol
                    out[key] = inner
                else:
                    text += draw(comments) + eol
                    out[key] = block(value, indent + step, address + ".", (*path, key))
            else:
                text += " "
                out[key] = scalar(value, address, (*path, key))[1]
                text += draw(comments) + eol
        return out

    for index, tree in enumerate(documents):
        if index:
            text += f"---{eol}"
        prefix = f"doc[{index}]." if len(documents) > 1 else ""
        loaded.append(block(tree, 0, prefix, (index,)))
    if draw(st.booleans()):
        text += f"...{eol}"
    return text, bom, loaded, placed


def _set_path(data: list[Any], path: tuple[Any, ...], value: int) -> list[Any]:
    out = copy.deepcopy(data)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


@settings(
    max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(generated=yaml_files(), data=st.data(), new_value=st.integers(0, 10**9))
def test_patch_changes_only_the_target(
    generated: tuple[str, bool, list[Any], list[Placed]], data: st.DataObject, new_value: int
) -> None:
    text, bom, loaded, placed = generated
    raw = (BOM if bom else b"") + text.encode("utf-8")
    assert _load(raw) == loaded  # the generator's model is what PyYAML reads
    if not placed:
        with pytest.raises(TfvarsTargetError):
            patch(raw, "nope", new_value)
        return
    target = data.draw(st.sampled_from(placed))

    change = patch(raw, target.address, new_value, filename="gen.yaml")

    assert change.old.literal == target.literal
    assert change.old.start == target.start
    if int(target.literal) == new_value:
        assert change.new_bytes == raw
        return
    assert change.new_bytes == _expected_bytes(raw, target.start, target.literal, str(new_value))
    assert _load(change.new_bytes) == _set_path(loaded, target.path, new_value)
    minus, plus = _changed_lines(change.diff)
    assert (len(minus), len(plus)) == (1, 1)


def test_the_diff_shows_only_the_changed_line_among_repeated_lines() -> None:
    # difflib's matcher paired the first "---" with the second here and showed four
    # changed lines; an edit in place is diffed line by line at the same positions
    change = patch(b"---\na: 1\n---\na: 0\n", "doc[0].a", 0, filename="x.yaml")
    assert change.diff == (
        "--- a/x.yaml\n+++ b/x.yaml\n@@ -1,4 +1,4 @@\n ---\n-a: 1\n+a: 0\n ---\n a: 0\n"
    )


@pytest.mark.parametrize(
    "note",
    ["!!int", '!!int ""', "!!float", '!!bool ""', '!!timestamp ""', '!!timestamp "x"'],
)
def test_a_tagged_scalar_yaml_cannot_build_is_a_refusal_not_a_crash(note: str) -> None:
    text = (
        f"web:\n  autoscaling:\n    minReplicas: 2\n    maxReplicas: {note}   # TODO: fill in\n"
    ).encode()
    with pytest.raises(TfvarsParseError, match="cannot be loaded"):
        locate(text, "web.autoscaling.minReplicas", filename="values.yaml")
