"""forescale.iac_writer.terragrunt: one number in a terragrunt.hcl's ``inputs``, edited byte-exact.

The corpus (``terragrunt_corpus/``) is a live repository in the style of public Terragrunt
ones. Each case is an ``Edit`` (the patched file equals the original with only the
literal's bytes replaced, computed here), a ``Same`` (numerically equal: nothing changes)
or a ``Refuse`` (exception class and a message fragment that names where the value comes
from; the file on disk byte-for-byte unchanged). The property tests at the end generate
Terragrunt files piece by piece and know where they put every literal.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forescale.errors import TfvarsConflict, TfvarsError, TfvarsParseError, TfvarsTargetError
from forescale.iac_writer.target import Undo, Written
from forescale.iac_writer.terragrunt import (
    TerragruntTarget,
    locate,
    patch,
    plan_change,
    put_literal,
    read_value,
)
from forescale.iac_writer.tfvars import TfvarsValue, apply_change
from tests.iac_writer.outcomes import Edit, P, Same, T

CORPUS = Path(__file__).parent / "terragrunt_corpus"
BOM = b"\xef\xbb\xbf"
APP = "live/prod/app/terragrunt.hcl"
WORKER = "live/prod/worker/terragrunt.hcl"
QUEUE = "live/prod/queue/terragrunt.hcl"
STAGE = "live/stage/app/terragrunt.hcl"


@dataclasses.dataclass(frozen=True)
class Refuse:
    """Expect ``exc`` whose message contains every fragment, and the file untouched."""

    exc: type[TfvarsError]
    fragments: tuple[str, ...]


Outcome = Edit | Same | Refuse


def refuse(exc: type[TfvarsError], *fragments: str) -> Refuse:
    return Refuse(exc, fragments)


NOT_HERE = "not a literal in this file; refusing to edit"
ROOT_INCLUDE = 'include "root" (line 5: path = find_in_parent_folders("root.hcl"))'
ENVCOMMON_INCLUDE = (
    'include "envcommon" (line 10: path = "${dirname(find_in_parent_folders("root.hcl"))}'
    '/_envcommon/app.hcl", merge_strategy = "deep")'
)
ENV_VARS = 'env_vars = read_terragrunt_config(find_in_parent_folders("env.hcl"))'

CASES: list[tuple[str, str, int, Outcome]] = [
    # the canonical unit: two includes, a dependency, locals, a generate heredoc decoy
    (APP, "capacity.web.min_size", 7, Edit("4", 53)),
    (APP, "capacity.web.min_size", 4, Same("4")),
    (APP, "capacity.worker.min_size", 3, Edit("2", 57)),  # `{ min_size = 2, max_size = 8 }`
    (APP, "capacity.worker.max_size", 10, Edit("8", 57)),
    (APP, "capacity.api.min_size", 5, Edit("3", 60)),  # "api" : { "min_size" : 3 }
    (APP, "health_check_grace", 600, Edit("300", 65)),
    (
        APP,
        "vpc_id",
        1,
        refuse(
            T,
            ":47: inputs.vpc_id comes from dependency.vpc.outputs.vpc_id "
            '(the outputs of dependency "vpc", line 19: config_path = "../vpc")',
            NOT_HERE,
        ),
    ),
    (
        APP,
        "capacity.web.max_size",
        1,
        refuse(
            T,
            ":54: inputs.capacity.web.max_size is computed by local.base_max * 2 from "
            "local.base_max (locals, line 33: base_max = 10)",
        ),
    ),
    (
        APP,
        "capacity.web.desired_capacity",
        1,
        refuse(
            T,
            "is computed by max(4, local.env_vars.locals.web_min) from "
            f"local.env_vars.locals.web_min (locals, line 31: {ENV_VARS})",
        ),
    ),
    (
        APP,
        "instance_type",
        1,
        refuse(
            T,
            "inputs.instance_type comes from local.env_vars.locals.instance_type "
            f"(locals, line 31: {ENV_VARS})",
        ),
    ),
    (
        APP,
        "capacity.batch.min_size",
        1,
        refuse(
            T,
            ":51: inputs.capacity.batch not found (inputs.capacity has no key 'batch'); "
            "capacity.batch.min_size may come from the included files: "
            f"{ROOT_INCLUDE}, {ENVCOMMON_INCLUDE}, which forescale does not edit",
        ),
    ),
    (
        APP,
        "tags.Service",
        1,
        refuse(
            T,
            ':70: inputs.tags is built by merge(include.root.locals.tags, { Service = "app" }) '
            'from include.root.locals.tags (the file included by include "root", line 5: '
            'path = find_in_parent_folders("root.hcl"))',
        ),
    ),
    (APP, "user_data", 1, refuse(T, ":66: inputs.user_data is a heredoc string")),
    (APP, "name", 1, refuse(T, 'inputs.name is a string ("app-${local.env}")')),
    (APP, "capacity.web", 1, refuse(T, ":52: inputs.capacity.web is an object")),
    (
        APP,
        "capacity.web.min_size.x",
        1,
        refuse(T, "inputs.capacity.web.min_size is a number (4), not an object"),
    ),
    # legacy layout: unlabelled include, flat inputs, number spellings
    (WORKER, "min_size", 5, Edit("3", 19)),
    (WORKER, "desired_size", 4, Edit("3.0", 21)),
    (WORKER, "desired_size", 3, Same("3.0")),
    (WORKER, "scale_factor", 10, Same("1e1")),
    (WORKER, "cooldown", 0, Edit("-1", 23)),
    (
        WORKER,
        "queue_min_size",
        1,
        refuse(
            T,
            "inputs.queue_min_size not found (inputs has no key 'queue_min_size'); "
            "queue_min_size may come from the included file: "
            "include (line 2: path = find_in_parent_folders()), which forescale does not edit",
        ),
    ),
    (WORKER, "enabled", 1, refuse(T, "inputs.enabled is a bool (true)")),
    (WORKER, "spot", 1, refuse(T, "inputs.spot is null")),
    (WORKER, "azs", 1, refuse(T, "inputs.azs is a list")),
    # inputs built by merge()
    (
        "live/prod/api/terragrunt.hcl",
        "capacity.api.min_size",
        4,
        refuse(
            T,
            ":14: inputs is built by merge( local.common.inputs, {",
            "from local.common.inputs (locals, line 6: common = "
            'read_terragrunt_config("${get_terragrunt_dir()}/../common.hcl"))',
            "not an inputs = { ... } object literal",
        ),
    ),
    (
        "live/root.hcl",
        "aws_account_id",
        1,
        refuse(
            T,
            ":44: inputs is built by merge(",
            "from local.account_vars.locals (locals, line 6: account_vars = "
            'read_terragrunt_config(find_in_parent_folders("account.hcl"))); '
            "local.env_vars.locals (locals, line 7:",
        ),
    ),
    # no inputs: everything comes from the included files
    (
        "live/prod/batch/terragrunt.hcl",
        "capacity.web.min_size",
        3,
        refuse(
            T,
            "terragrunt.hcl: no inputs = { ... } in this file; capacity.web.min_size may come "
            'from the included files: include "root" (line 1: path = '
            'find_in_parent_folders("root.hcl")), include "envcommon" (line 6: path = ',
            "set it in this file's inputs for forescale to manage it here",
        ),
    ),
    # feature flags, the environment, files, var., locals as a whole map
    (
        QUEUE,
        "capacity.prod.min_size",
        5,
        refuse(
            T,
            ":17: inputs.capacity comes from local.sizes (locals, line 10: sizes = "
            "{ prod = { min_size = 4 } stage = { min_size = 1 } })",
        ),
    ),
    (
        QUEUE,
        "min_size",
        3,
        refuse(
            T,
            "inputs.min_size comes from feature.queue_min.value "
            '(feature flag "queue_min", line 5: default = 2)',
        ),
    ),
    (
        QUEUE,
        "max_size",
        3,
        refuse(T, 'inputs.max_size comes from the environment: get_env("QUEUE_MAX_SIZE", 20)'),
    ),
    (
        QUEUE,
        "burst",
        3,
        refuse(T, 'from a file: file("${get_terragrunt_dir()}/burst.txt")'),
    ),
    (
        QUEUE,
        "desired_size",
        3,
        refuse(
            T,
            "inputs.desired_size is computed by try(local.sizes.prod.min_size, 2) + 1 "
            "from local.sizes.prod.min_size (locals, line 10:",
        ),
    ),
    (QUEUE, "spare", 3, refuse(T, "inputs.spare comes from var.spare_capacity")),
    (QUEUE, "retention", 259200, Edit("345600", 23)),
    # CRLF, a BOM, quoted keys with `:`, a heredoc whose body looks like the target
    (STAGE, "capacity.web.min_size", 2, Edit("1", 12)),
    (STAGE, "capacity.web.max_size", 3, Edit("2", 12)),
    (STAGE, "min_size", 4, Edit("1", 17)),
    (STAGE, "banner", 4, refuse(T, ":14: inputs.banner is a heredoc string")),
    # the included files themselves
    ("live/_envcommon/app.hcl", "capacity.web.min_size", 3, Edit("2", 18)),
    ("live/_envcommon/app.hcl", "capacity.batch.min_size", 0, Edit("1", 21)),
    (
        "live/prod/env.hcl",
        "web_min",
        7,
        refuse(T, "no inputs = { ... } in this file; add web_min to inputs"),
    ),
    ("live/account.hcl", "aws_account_id", 7, refuse(T, "no inputs = { ... } in this file")),
    # broken files
    (
        "broken/duplicate_inputs.hcl",
        "min_size",
        4,
        refuse(T, "inputs appears twice (lines 3 and 7); Terragrunt rejects duplicate attributes"),
    ),
    (
        "broken/duplicate_key.hcl",
        "capacity.min_size",
        4,
        refuse(T, "inputs.capacity.min_size appears twice (lines 3 and 5)"),
    ),
    (
        "broken/duplicate_other.hcl",
        "min_size",
        4,
        refuse(P, "download_dir appears twice (lines 1 and 5)", "fix the file first"),
    ),
    (
        "broken/computed_key.hcl",
        "max_size",
        4,
        refuse(T, ":6: inputs has a computed key ((local.key)) that might be 'max_size'"),
    ),
    ("broken/not_hcl.hcl", "min_size", 4, refuse(P, ":2:14: not valid HCL")),
    ("broken/latin1.hcl", "min_size", 4, refuse(P, "not UTF-8 (invalid byte at offset 3)")),
    (
        "broken/no_inputs.hcl",
        "min_size",
        4,
        refuse(T, "no inputs = { ... } in this file; add min_size to inputs"),
    ),
    (
        "broken/inputs_local.hcl",
        "min_size",
        4,
        refuse(
            T,
            ":5: inputs comes from local.inputs (locals, line 2: inputs = { min_size = 2 }), "
            "not an inputs = { ... } object literal",
        ),
    ),
]


def _case_id(case: tuple[str, str, int, Outcome]) -> str:
    name, address, value, outcome = case
    return f"{name}:{address}={value}:{type(outcome).__name__}"


def _corpus_files() -> set[str]:
    return {
        str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file() and p.suffix == ".hcl"
    }


def _text(raw: bytes) -> tuple[bytes, str]:
    bom = BOM if raw.startswith(BOM) else b""
    return bom, raw[len(bom) :].decode("utf-8")


def _key(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


def _get(values: dict[str, Any], address: str) -> Any:
    node: Any = values["inputs"]
    for part in address.split("."):
        node = next(v for k, v in node.items() if _key(k) == part)
    return node


def _drop(values: dict[str, Any], address: str) -> dict[str, Any]:
    def drop(node: dict[str, Any], parts: list[str]) -> dict[str, Any]:
        out = dict(node)
        key = next(k for k in node if _key(k) == parts[0])
        if len(parts) > 1:
            out[key] = drop(node[key], parts[1:])
        else:
            del out[key]
        return out

    return {**values, "inputs": drop(values["inputs"], address.split("."))}


# --------------------------------------------------------------------------- corpus


def test_corpus_is_exercised_and_byte_exact() -> None:
    assert {case[0] for case in CASES} == _corpus_files(), "every corpus file is exercised"
    stage = (CORPUS / STAGE).read_bytes()
    assert stage.startswith(BOM)
    assert stage.count(b"\n") == stage.count(b"\r\n") > 10  # see terragrunt_corpus/.gitattributes
    assert b"\xe9" in (CORPUS / "broken/latin1.hcl").read_bytes()


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_corpus(case: tuple[str, str, int, Outcome], tmp_path: Path) -> None:
    name, address, new_value, outcome = case
    raw = (CORPUS / name).read_bytes()
    path = tmp_path / Path(name).name
    path.write_bytes(raw)

    if isinstance(outcome, Refuse):
        with pytest.raises(outcome.exc) as info:
            apply_change(plan_change(path, address, new_value))
        message = str(info.value)
        for fragment in outcome.fragments:
            assert fragment in message
        assert "\n" not in message
        assert message.startswith(str(path))
        with pytest.raises(outcome.exc, match=re.escape(outcome.fragments[0])):
            locate(raw, address, filename=name)
        assert path.read_bytes() == raw
        assert os.listdir(tmp_path) == [path.name]
        return

    value = read_value(path, address)
    assert value.address == address
    assert value.literal == outcome.literal
    bom, text = _text(raw)
    change = plan_change(path, address, new_value)
    assert change.old == value
    assert change.address == address

    if isinstance(outcome, Same):
        assert change.new_bytes == raw
        assert change.diff == ""
        assert not change.changed
        return

    assert value.line == outcome.line
    # Byte offsets from the module's character offsets, checked against the raw bytes.
    byte_start = len(bom) + len(text[: value.start].encode("utf-8"))
    byte_end = byte_start + len(outcome.literal.encode("utf-8"))
    assert raw[byte_start:byte_end] == outcome.literal.encode("utf-8")
    line_start = raw.rfind(b"\n", 0, byte_start) + 1
    assert raw[:line_start].count(b"\n") + 1 == outcome.line
    expected = raw[:byte_start] + str(new_value).encode("ascii") + raw[byte_end:]
    assert change.new_bytes == expected

    lines = change.diff.splitlines()
    minus = [ln for ln in lines if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
    assert len(minus) == 1 and len(plus) == 1, change.diff
    assert minus[0][1:].replace(outcome.literal, str(new_value), 1) == plus[0][1:]

    apply_change(change)
    assert path.read_bytes() == expected
    # python-hcl2 directly: the target changed, every other value (blocks too) is equal.
    old_values, new_values = hcl2.loads(text), hcl2.loads(_text(expected)[1])
    assert _get(new_values, address) == new_value
    assert _drop(old_values, address) == _drop(new_values, address)
    assert read_value(path, address).value == new_value


# --------------------------------------------------------------------------- messages


def test_dependency_message_is_exactly_as_documented() -> None:
    with pytest.raises(TfvarsTargetError) as info:
        locate((CORPUS / APP).read_bytes(), "vpc_id", filename="live/prod/app/terragrunt.hcl")
    assert str(info.value) == (
        "live/prod/app/terragrunt.hcl:47: inputs.vpc_id comes from "
        'dependency.vpc.outputs.vpc_id (the outputs of dependency "vpc", line 19: '
        'config_path = "../vpc"), not a literal in this file; refusing to edit (forescale '
        "changes only a number written in this file's inputs = { ... })"
    )


def test_include_message_is_exactly_as_documented() -> None:
    data = b'include "root" {\n  path = find_in_parent_folders("root.hcl")\n}\n\ninputs = {}\n'
    with pytest.raises(TfvarsTargetError) as info:
        locate(data, "web_min_size", filename="terragrunt.hcl")
    assert str(info.value) == (
        "terragrunt.hcl:5: inputs.web_min_size not found (inputs has no key 'web_min_size'); "
        'web_min_size may come from the included file: include "root" (line 1: path = '
        'find_in_parent_folders("root.hcl")), which forescale does not edit; set it in this '
        "file's inputs for forescale to manage it here"
    )


def test_key_present_here_wins_over_the_include() -> None:
    """Terragrunt merges included inputs under the unit's own: a literal here is in effect."""
    data = (
        b'include "root" {\n  path = find_in_parent_folders("root.hcl")\n'
        b'  merge_strategy = "deep"\n}\n\ninputs = {\n  capacity = { web = { min = 3 } }\n}\n'
    )
    assert patch(data, "capacity.web.min", 5).new_bytes == data.replace(b"min = 3", b"min = 5")


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("-local.x", "is computed by -local.x from local.x (no local 'x' in this file)"),
        ("(4)", "is computed by (4), not a literal"),
        ("local.on ? 6 : 2", "is computed by local.on ? 6 : 2 from local.on"),
        ("dependency.asg.outputs.min", 'min (no dependency "asg" block in this file)'),
        ('run_cmd("./size.sh")', 'comes from a command\'s output: run_cmd("./size.sh")'),
        ('jsondecode(file("s.json")).min', 'from a file: file("s.json")'),
        ("values.min_size", "values.min_size (the values a terragrunt.stack.hcl passes in)"),
        ("local.sizes[local.env]", "local.sizes[local.env] (no local 'sizes' in this file); "),
    ],
)
def test_expression_refusals_name_their_source(expression: str, fragment: str) -> None:
    data = f"inputs = {{\n  min_size = {expression}\n}}\n".encode()
    with pytest.raises(TfvarsTargetError) as info:
        patch(data, "min_size", 3, filename="terragrunt.hcl")
    assert fragment in str(info.value)
    assert str(info.value).startswith("terragrunt.hcl:2: inputs.min_size ")


def test_negative_literal_is_a_number_not_an_expression() -> None:
    value = locate(b"inputs = {\n  offset = - 2\n}\n", "offset")
    assert (value.value, value.literal) == (-2, "- 2")


@pytest.mark.parametrize(
    "address", ["", ".", "a.", "a..b", "1abc", "a b", "inputs.", "-a"], ids=repr
)
def test_invalid_addresses_are_refused(address: str) -> None:
    with pytest.raises(TfvarsTargetError, match="invalid address"):
        locate(b"inputs = { a = 1 }\n", address)


@pytest.mark.parametrize("bad", [True, 2.5, float("nan"), "7", None], ids=repr)
def test_bad_new_values_are_refused(bad: Any) -> None:
    with pytest.raises(TfvarsError, match="new value for a"):
        patch(b"inputs = { a = 1 }\n", "a", bad)


def test_put_literal_restores_the_original_spelling() -> None:
    data = b"inputs = {\n  min_size = 4.0 # four\n}\n"
    changed = patch(data, "min_size", 9).new_bytes
    assert changed == b"inputs = {\n  min_size = 9 # four\n}\n"
    assert put_literal(changed, "min_size", "4.0").new_bytes == data
    with pytest.raises(TfvarsError, match="not a whole number"):
        put_literal(changed, "min_size", "4.5")


def test_a_block_named_like_the_value_is_not_read() -> None:
    data = b"locals {\n  min_size = 99\n}\ninputs = {\n  min_size = 2\n}\n"
    assert locate(data, "min_size").line == 5
    with pytest.raises(TfvarsParseError, match="blocks are not allowed"):
        from forescale.iac_writer.tfvars import locate as tfvars_locate

        tfvars_locate(data, "min_size", filename="x.tfvars")  # tfvars files keep refusing blocks


def test_locate_reports_character_offsets_after_the_bom() -> None:
    data = BOM + "# é🚀\r\ninputs = { min = 12 }\r\n".encode()
    assert locate(data, "min", filename="terragrunt.hcl") == TfvarsValue(
        address="min", value=12, literal="12", start=23, end=25, line=2
    )


# --------------------------------------------------------------------------- target


def _unit(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "live" / "prod" / "app" / "terragrunt.hcl"
    path.parent.mkdir(parents=True)
    path.write_bytes((CORPUS / APP).read_bytes() if not text else text.encode())
    return path


def test_target_reads_proposes_writes_and_undoes_byte_for_byte(tmp_path: Path) -> None:
    path = _unit(tmp_path)
    original = path.read_bytes()
    target = TerragruntTarget(path, "capacity.web.min_size")
    assert (target.path, target.address, target.sources) == (path, "capacity.web.min_size", (path,))

    snapshot = target.read()
    assert (snapshot.literal, snapshot.value) == ("4", 4)
    assert snapshot.sha256 == hashlib.sha256(original).hexdigest()
    edit = target.propose(9, before=snapshot)
    assert edit.literal == "9" and edit.changed
    assert "-      min_size         = 4 # raised before the evening peak" in edit.diff
    assert "+      min_size         = 9 # raised before the evening peak" in edit.diff
    assert path.read_bytes() == original  # proposing writes nothing

    target.write(edit)
    expected = original.replace(b"min_size         = 4 #", b"min_size         = 9 #")
    assert path.read_bytes() == expected
    assert target.read().value == 9

    result = target.undo(edit.written())
    assert result.outcome is Undo.RESTORED
    assert path.read_bytes() == original


def test_target_undo_keeps_a_human_edit_elsewhere_and_never_overwrites_the_value(
    tmp_path: Path,
) -> None:
    path = _unit(tmp_path)
    target = TerragruntTarget(path, "capacity.web.min_size")
    edit = target.propose(9)
    target.write(edit)
    written = edit.written()

    # Someone raises health_check_grace meanwhile: undo touches only forescale's value.
    human = path.read_bytes().replace(b"health_check_grace = 300", b"health_check_grace = 900")
    path.write_bytes(human)
    assert target.undo(written).outcome is Undo.VALUE_ONLY
    assert path.read_bytes() == human.replace(b"= 9 # raised", b"= 4 # raised")

    # Someone sets the managed value itself: a conflict, the file left as found.
    target.write(target.propose(9))
    edit = target.propose(9)
    theirs = path.read_bytes().replace(b"= 9 # raised", b"= 12 # raised")
    path.write_bytes(theirs)
    result = target.undo(
        Written(
            sha_before=edit.before.sha256,
            literal_before="4",
            sha_after=edit.new_sha256,
            literal_after="9",
        )
    )
    assert (result.outcome, result.found) == (Undo.CONFLICT, "12")
    assert path.read_bytes() == theirs


def test_target_compare_and_swap(tmp_path: Path) -> None:
    path = _unit(tmp_path)
    target = TerragruntTarget(path, "capacity.web.min_size")
    snapshot = target.read()
    edit = target.propose(6, before=snapshot)
    path.write_bytes(path.read_bytes() + b"# a comment added by a human\n")
    with pytest.raises(TfvarsConflict):
        target.write(edit)
    with pytest.raises(TfvarsConflict, match="changed since forescale read it"):
        target.propose(6, before=snapshot)


def test_target_refusals_are_one_line_and_touch_nothing(tmp_path: Path) -> None:
    path = _unit(tmp_path)
    original = path.read_bytes()
    with pytest.raises(TfvarsTargetError, match="comes from dependency.vpc.outputs.vpc_id"):
        TerragruntTarget(path, "vpc_id").propose(3)
    with pytest.raises(TfvarsError, match="no such file"):
        TerragruntTarget(tmp_path / "absent" / "terragrunt.hcl", "min_size").read()
    with pytest.raises(TfvarsError, match="whole number of units"):
        TerragruntTarget(path, "capacity.web.min_size").propose(-1)
    with pytest.raises(TfvarsError, match="no value of capacity.web.min_size recorded"):
        TerragruntTarget(path, "capacity.web.min_size").put(original, None, file_was_absent=False)
    assert path.read_bytes() == original


def test_target_put_puts_back_the_literal(tmp_path: Path) -> None:
    path = _unit(tmp_path, "inputs = {\n  min_size = 1e1\n}\n")
    target = TerragruntTarget(path, "min_size")
    target.write(target.propose(12))
    assert path.read_bytes() == b"inputs = {\n  min_size = 12\n}\n"
    back = target.put(path.read_bytes(), "1e1", file_was_absent=False)
    assert back == b"inputs = {\n  min_size = 1e1\n}\n"


# --------------------------------------------------------------------------- properties

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
KEYWORDS = {"if", "in", "for", "for_each", "else", "endif", "endfor", "true", "false", "null"}
names = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(lambda n: n not in KEYWORDS)
number_literals = st.one_of(
    st.integers(-1000, 10**9).map(str),
    st.sampled_from(["1e3", "2.5E+1", "0.250", "4.0", "-1.5e2", "016", "- 2", "7E0"]),
)
blank = st.sampled_from(["", " ", "  ", "\t"])
# (expression, a fragment its refusal must contain: where the value comes from)
EXPRESSIONS = [
    ("local.base", "local.base (locals, line"),
    ("local.base * 2", "is computed by local.base * 2 from local.base (locals, line"),
    ("dependency.vpc.outputs.size", 'the outputs of dependency "vpc", line'),
    ("include.root.locals.min", 'the file included by include "root", line'),
    ('get_env("MIN", 2)', 'comes from the environment: get_env("MIN", 2)'),
    ("max(1, local.base)", "is computed by max(1, local.base) from local.base"),
    ("feature.flag.value", 'feature flag "flag", line'),
]
# Blocks a real unit has, each with literals that must never be taken for the value.
BLOCKS = [
    'include "root" {{{eol}  path = find_in_parent_folders("root.hcl"){eol}}}{eol}',
    'terraform {{{eol}  source = "../../modules//app"{eol}}}{eol}',
    'dependency "vpc" {{{eol}  config_path = "../vpc"{eol}  mock_outputs = {{ size = 99 }}{eol}}}'
    "{eol}",
    "locals {{{eol}  base = 3{eol}  min_size = 99{eol}}}{eol}",
    'feature "flag" {{{eol}  default = 2{eol}}}{eol}',
    'generate "x" {{{eol}  path = "x.tf"{eol}  contents = <<EOF{eol}inputs = {{ min = 99 }}{eol}'
    "EOF{eol}}}{eol}",
]


@dataclasses.dataclass(frozen=True)
class Placed:
    """A number literal the generator put at character ``start`` of inputs ``address``."""

    address: str
    literal: str
    start: int

    @property
    def value(self) -> float:
        return float(self.literal.replace(" ", ""))


@dataclasses.dataclass
class Unit:
    text: str
    bom: bool
    numbers: list[Placed]
    expressions: list[tuple[str, str]]  # (address, fragment its refusal names)

    @property
    def data(self) -> bytes:
        return (BOM if self.bom else b"") + self.text.encode("utf-8")


@st.composite
def units(draw: st.DrawFn) -> Unit:
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = "".join(
        draw(st.sampled_from(["", f"# unit{eol}", f"// generated{eol}", f"/* a{eol} b */{eol}"]))
        + block.format(eol=eol)
        + eol
        for block in draw(st.permutations(BLOCKS))
    )
    text += "inputs = {" + eol
    numbers: list[Placed] = []
    expressions: list[tuple[str, str]] = []
    for name in draw(st.lists(names, min_size=1, max_size=5, unique=True)):
        text += draw(st.sampled_from(["", f"  # {name} = 99{eol}", f"{eol}"]))
        text += "  " + draw(st.sampled_from([name, f'"{name}"'])) + draw(blank) + "=" + draw(blank)
        kind = draw(st.sampled_from(["number", "number", "object", "expression", "string"]))
        if kind == "number":
            literal = draw(number_literals)
            numbers.append(Placed(name, literal, len(text)))
            text += literal
        elif kind == "object":
            text += "{" + draw(st.sampled_from([" ", eol + "    "]))
            keys = draw(
                st.lists(st.sampled_from(["min", "max", "desired"]), min_size=1, unique=True)
            )
            for i, key in enumerate(keys):
                if i:
                    text += draw(st.sampled_from([", ", eol + "    "]))
                text += key + draw(st.sampled_from([" = ", ": "]))
                literal = draw(number_literals)
                numbers.append(Placed(f"{name}.{key}", literal, len(text)))
                text += literal
            text += draw(st.sampled_from([" ", eol + "  "])) + "}"
        elif kind == "expression":
            expression, fragment = draw(st.sampled_from(EXPRESSIONS))
            expressions.append((name, fragment))
            text += expression
        else:
            text += f'"{name} = 4"'
        text += draw(st.sampled_from(["", " # note", " // = 3"])) + eol
    text += "}" + eol
    return Unit(text=text, bom=draw(st.booleans()), numbers=numbers, expressions=expressions)


@PROPERTY_SETTINGS
@given(unit=units(), data=st.data(), new_value=st.integers(-(10**6), 10**9))
def test_patch_changes_only_the_target(unit: Unit, data: st.DataObject, new_value: int) -> None:
    for address, fragment in unit.expressions:
        with pytest.raises(TfvarsTargetError) as info:
            patch(unit.data, address, new_value, filename="terragrunt.hcl")
        assert fragment in str(info.value) and "\n" not in str(info.value)
    if not unit.numbers:
        return
    target = data.draw(st.sampled_from(unit.numbers))

    change = patch(unit.data, target.address, new_value, filename="terragrunt.hcl")

    assert change.old.literal == target.literal
    bom = BOM if unit.bom else b""
    if target.value == new_value:
        assert change.new_bytes == unit.data
        return
    start = len(bom) + len(unit.text[: target.start].encode("utf-8"))
    end = start + len(target.literal.encode("utf-8"))
    assert change.new_bytes == unit.data[:start] + str(new_value).encode() + unit.data[end:]
    old_values = hcl2.loads(unit.text)
    new_values = hcl2.loads(change.new_bytes[len(bom) :].decode())
    assert _get(new_values, target.address) == new_value
    assert _drop(old_values, target.address) == _drop(new_values, target.address)
    if target.value.is_integer():  # undo puts back a whole number's own spelling
        back = put_literal(change.new_bytes, target.address, target.literal, filename="t.hcl")
        assert back.new_bytes == unit.data
