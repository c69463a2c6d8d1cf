"""Property tests: on generated files, patch() changes only the target literal's characters.

The generators build each file piece by piece and record where they put every number
literal, so the expected bytes come from the generator, not from the module under test.
Re-parsing (python-hcl2 / json directly) must give the new value at the target and the
same values everywhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import hcl2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forescale.iac_writer.tfvars import patch

BOM = b"\xef\xbb\xbf"
KEYWORDS = {"if", "in", "for", "for_each", "else", "endif", "endfor", "true", "false", "null"}
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@dataclass(frozen=True)
class Target:
    """A number literal the generator placed at character offset ``start``."""

    address: str
    literal: str
    start: int

    @property
    def value(self) -> float:
        return float(self.literal.replace(" ", ""))


@dataclass
class Generated:
    text: str
    bom: bool
    targets: list[Target]

    @property
    def data(self) -> bytes:
        return (BOM if self.bom else b"") + self.text.encode("utf-8")


names = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(lambda n: n not in KEYWORDS)
int_literals = st.integers(-1000, 10**9).map(str)
float_literals = st.one_of(
    st.sampled_from(["1e3", "2.5E+1", "0.250", "4.0", "-1.5e2", "1.5e-3", "016", "- 2", "7E0"]),
    st.builds(lambda i, f: f"{i}.{f}", st.integers(0, 999), st.integers(0, 999)),
)
number_literals = st.one_of(int_literals, float_literals)
spaces = st.sampled_from(["", " ", "  ", "\t", "     "])
fake_text = st.sampled_from(
    ["web_min_size = 99", "x = 1", "capacity = { min = 5 }", "é ünïcödé 🚀", "TODO", ""]
)


def _comment(kind: str, body: str, eol: str) -> str:
    if kind == "#":
        return f"# {body}{eol}"
    if kind == "//":
        return f"// {body}{eol}"
    return f"/* {body}{eol}   {body} */{eol}"


@st.composite
def hcl_files(draw: st.DrawFn) -> Generated:
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.booleans())
    variables = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    width = max(len(n) for n in variables) + draw(st.integers(0, 3))
    align = draw(st.booleans())
    text = ""
    targets: list[Target] = []
    for name in variables:
        for _ in range(draw(st.integers(0, 2))):
            kind = draw(st.sampled_from(["#", "//", "/*", "blank"]))
            fake = draw(fake_text).replace("web_min_size", name)
            text += eol if kind == "blank" else _comment(kind, fake, eol)
        text += draw(st.sampled_from(["", "  ", "\t"]))
        text += name + (" " * (width - len(name)) if align else draw(spaces))
        text += "=" + draw(spaces)
        kind = draw(st.sampled_from(["number", "number", "object", "string", "list", "heredoc"]))
        if kind == "heredoc":  # the heredoc token ends with its own line ending
            text += f"<<EOF{eol}{name} = 99{eol}  echo {name}{eol}EOF{eol}"
            continue
        if kind == "number":
            literal = draw(number_literals)
            targets.append(Target(name, literal, len(text)))
            text += literal
        elif kind == "object":
            text += "{" + draw(st.sampled_from(["", " ", eol + "  "]))
            keys = draw(
                st.lists(st.sampled_from(["min", "max", "desired"]), min_size=1, unique=True)
            )
            for i, key in enumerate(keys):
                if i:
                    text += draw(st.sampled_from([", ", "," + eol + "  ", eol + "  "]))
                text += draw(st.sampled_from([key, f'"{key}"']))
                text += draw(st.sampled_from([" = ", "=", ": ", ":"]))
                literal = draw(number_literals)
                targets.append(Target(f"{name}.{key}", literal, len(text)))
                text += literal
            text += draw(st.sampled_from([" ", eol])) + "}"
        elif kind == "string":
            text += '"' + draw(fake_text).replace("web_min_size", name) + '"'
        else:
            text += "[" + ", ".join(draw(st.lists(int_literals, max_size=3))) + "]"
        text += draw(st.sampled_from(["", " # note", f" // {name} = 3", " /* = */"]))
        text += eol
    if draw(st.booleans()) and text.endswith(eol) and not text.endswith(f"EOF{eol}"):
        text = text[: -len(eol)]  # no final newline
    return Generated(text=text, bom=bom, targets=targets)


def _matches(key: str, part: str) -> bool:
    return key == part or key == f'"{part}"'


def _get(values: dict[str, Any], address: str) -> Any:
    node: Any = values
    for part in address.split("."):
        node = next(v for k, v in node.items() if _matches(k, part))
    return node


def _drop(values: dict[str, Any], address: str) -> dict[str, Any]:
    head, _, rest = address.partition(".")
    key = next(k for k in values if _matches(k, head))
    out = dict(values)
    if rest:
        out[key] = _drop(values[key], rest)
    else:
        del out[key]
    return out


def _expected_bytes(gen: Generated, target: Target, new_value: int) -> bytes:
    if target.value == new_value:
        return gen.data
    bom = BOM if gen.bom else b""
    byte_start = len(bom) + len(gen.text[: target.start].encode("utf-8"))
    byte_end = byte_start + len(target.literal.encode("utf-8"))
    return gen.data[:byte_start] + str(new_value).encode() + gen.data[byte_end:]


@PROPERTY_SETTINGS
@given(gen=hcl_files(), data=st.data(), new_value=st.integers(-(10**6), 10**9))
def test_hcl_patch_changes_only_the_target(
    gen: Generated, data: st.DataObject, new_value: int
) -> None:
    # Some files hold no number at all; fall back to a plain one appended at the end.
    if not gen.targets:
        sep = "" if gen.text.endswith("\n") or not gen.text else "\n"
        gen = Generated(
            gen.text + sep + "zz = 5\n", gen.bom, [Target("zz", "5", len(gen.text + sep) + 5)]
        )
    target = data.draw(st.sampled_from(gen.targets))

    change = patch(gen.data, target.address, new_value, filename="gen.tfvars")

    assert change.old.literal == target.literal
    assert change.new_bytes == _expected_bytes(gen, target, new_value)
    new_text = change.new_bytes[3 if gen.bom else 0 :].decode()
    old_values, new_values = hcl2.loads(gen.text), hcl2.loads(new_text)
    assert _get(new_values, target.address) == (
        new_value if target.value != new_value else _get(old_values, target.address)
    )
    assert _drop(old_values, target.address) == _drop(new_values, target.address)
    minus = [ln for ln in change.diff.splitlines() if ln[:1] == "-" and ln[:3] != "---"]
    plus = [ln for ln in change.diff.splitlines() if ln[:1] == "+" and ln[:3] != "+++"]
    assert (len(minus), len(plus)) == ((0, 0) if target.value == new_value else (1, 1))


# --------------------------------------------------------------------------- JSON

json_scalars = st.one_of(
    st.integers(-(10**6), 10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)
json_objects = st.recursive(
    st.dictionaries(names, json_scalars, max_size=4),
    lambda inner: st.dictionaries(names, st.one_of(json_scalars, inner), max_size=4),
    max_leaves=12,
)


def _number_addresses(values: dict[str, Any], prefix: str = "") -> list[str]:
    found: list[str] = []
    for key, value in values.items():
        address = f"{prefix}{key}"
        if isinstance(value, dict):
            found += _number_addresses(value, address + ".")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found.append(address)
    return found


@PROPERTY_SETTINGS
@given(
    values=json_objects,
    indent=st.sampled_from([None, 0, 2, "\t"]),
    ensure_ascii=st.booleans(),
    crlf=st.booleans(),
    bom=st.booleans(),
    data=st.data(),
    new_value=st.integers(-(10**6), 10**9),
)
def test_json_patch_changes_only_the_target(
    values: dict[str, Any],
    indent: int | str | None,
    ensure_ascii: bool,
    crlf: bool,
    bom: bool,
    data: st.DataObject,
    new_value: int,
) -> None:
    values = {**values, "web_min_size": 4}
    address = data.draw(st.sampled_from(_number_addresses(values)))
    old_number = _get(values, address)
    # Dump with a sentinel at the target, then put the literals in: the expected bytes
    # come from json.dumps and str.replace, not from the module under test.
    template = json.dumps(_set(values, address, SENTINEL), indent=indent, ensure_ascii=ensure_ascii)
    if crlf:
        template = template.replace("\n", "\r\n")
    assert template.count(f'"{SENTINEL}"') == 1
    old_text = template.replace(f'"{SENTINEL}"', json.dumps(old_number))
    raw = (BOM if bom else b"") + old_text.encode()

    change = patch(raw, address, new_value, filename="gen.tfvars.json")

    assert change.old.value == old_number
    if old_number == new_value:
        assert change.new_bytes == raw
        assert change.diff == ""
        return
    new_text = template.replace(f'"{SENTINEL}"', str(new_value))
    assert change.new_bytes == (BOM if bom else b"") + new_text.encode()
    new_values = json.loads(new_text)
    assert _get(new_values, address) == new_value
    assert _drop(new_values, address) == _drop(values, address)


SENTINEL = "@@forescale-target@@"  # longer than any generated string, so it cannot collide


def _set(values: dict[str, Any], address: str, new: Any) -> dict[str, Any]:
    head, _, rest = address.partition(".")
    out = dict(values)
    out[head] = _set(values[head], rest, new) if rest else new
    return out
