"""Read and surgically patch one number in a Terraform variable file.

Two formats, chosen from the file name: ``*.json`` (``.tfvars.json``) is JSON, anything
else is HCL (``.tfvars``). python-hcl2 (HCL) or the standard ``json`` scanner (JSON) find
the value and check it is a plain number literal; the edit then replaces *only the
characters of that literal*. Comments, ``=`` alignment, blank lines, CRLF line endings, a
UTF-8 BOM, heredocs and every other variable stay byte-for-byte. python-hcl2's
``dumps(loads(x))`` is never used: it drops every comment and rewrites numbers.

Addresses are dot-separated: ``web_min_size`` is a top-level variable, ``capacity.web.min``
is key ``min`` inside object ``web`` inside variable ``capacity`` (HCL keys may be bare,
quoted, and use ``=`` or ``:``).

The module refuses, with a one-line :class:`~forescale.errors.TfvarsError` and without
touching the file, whenever the edit would not be obviously right: the file does not parse
(or Terraform would reject it for a reason python-hcl2 overlooks: a BOM is fine, duplicate
top-level attributes, blocks, two attributes on one line are not), the target is missing,
appears more than once, sits behind a key that cannot be resolved without evaluating an
expression, or is not a number literal (expressions, references, strings, bools, lists).

:func:`locate` and :func:`patch` are pure. :func:`read_value`, :func:`plan_change` and
:func:`apply_change` do the I/O; :func:`apply_change` writes atomically (temp file in the
same directory, fsync, ``os.replace``, fsync of the directory) and only if the file still
has the SHA-256 it had when the change was planned (compare-and-swap).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import json.scanner
import math
import numbers
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

import hcl2
from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

from forescale.errors import TfvarsError, TfvarsParseError, TfvarsTargetError
from forescale.iac_writer import files

__all__ = [
    "TfvarsChange",
    "TfvarsValue",
    "apply_change",
    "locate",
    "patch",
    "plan_change",
    "put_literal",
    "read_value",
]

_BOM = b"\xef\xbb\xbf"
# A top-level variable name (HCL identifier) and a nested object key. Keys with dots,
# spaces or quotes cannot be addressed; that keeps the address syntax unambiguous.
_VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_SNIPPET_MAX = 40


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True, slots=True)
class TfvarsValue:
    """A number literal found in a variable file.

    ``start``/``end`` are character offsets into the decoded text (UTF-8, BOM removed), so
    ``text[start:end] == literal``; ``line`` is 1-based. ``value`` is the number the
    literal denotes (an ``int`` for integer literals, a ``float`` otherwise, e.g. ``1e3``).
    """

    address: str
    value: int | float
    literal: str
    start: int
    end: int
    line: int


@dataclass(frozen=True, kw_only=True, slots=True)
class TfvarsChange:
    """A planned edit of one number: everything :func:`apply_change` needs to write it.

    ``new_bytes`` is the whole patched file (BOM and line endings preserved) and equals the
    original bytes when ``new_value`` is numerically equal to the current value; ``diff``
    is then empty. ``old_sha256`` is the hex SHA-256 of the bytes the plan was made from,
    checked again before writing.
    """

    path: str
    address: str
    old: TfvarsValue
    new_value: int
    old_sha256: str
    new_bytes: bytes
    diff: str

    @property
    def changed(self) -> bool:
        """True if writing this change would alter the file."""
        return hashlib.sha256(self.new_bytes).hexdigest() != self.old_sha256


# --------------------------------------------------------------------------- public API


def locate(data: bytes, address: str, *, filename: str = "<tfvars>") -> TfvarsValue:
    """Find the number literal at ``address`` in the file content ``data``.

    The format is JSON if ``filename`` ends in ``.json``, HCL otherwise; ``filename`` is
    also used in error messages. Raises :class:`TfvarsParseError` if the file does not
    parse and :class:`TfvarsTargetError` if the target is missing, duplicated or not a
    number literal.
    """
    parts = _parse_address(address, filename)
    _bom, text = _decode(data, filename)
    return _parse(text, filename).locate(parts)


def patch(data: bytes, address: str, new_value: int, *, filename: str = "<tfvars>") -> TfvarsChange:
    """Plan setting ``address`` to ``new_value`` (capacity units) in ``data``; no I/O.

    Only the characters of the current literal are replaced, by an integer literal such as
    ``7``. If the current value is numerically equal (``4.0`` and 4), nothing changes.
    The patched text is parsed again and must differ from the original in the target
    value only; otherwise :class:`TfvarsError` is raised. ``new_value`` must be an
    integer (an integral float is accepted); bools, NaN and infinities are refused.
    """
    return _patch(data, address, new_value, filename=filename, parse=_parse)


def _patch(
    data: bytes,
    address: str,
    new_value: int,
    *,
    filename: str,
    parse: Callable[[str, str], _Document],
) -> TfvarsChange:
    """:func:`patch` for a document type ``parse(text, filename)`` (also the Terragrunt
    module's)."""
    parts = _parse_address(address, filename)
    wanted = _check_new_value(new_value, address, filename)
    bom, text = _decode(data, filename)
    document = parse(text, filename)
    old = document.locate(parts)
    old_sha256 = hashlib.sha256(data).hexdigest()
    if old.value == wanted:
        return TfvarsChange(
            path=filename,
            address=address,
            old=old,
            new_value=wanted,
            old_sha256=old_sha256,
            new_bytes=data,
            diff="",
        )

    return _replace(data, bom, text, document, parts, old, str(wanted), wanted, filename)


def put_literal(
    data: bytes, address: str, literal: str, *, filename: str = "<tfvars>"
) -> TfvarsChange:
    """Plan putting the exact characters ``literal`` (a whole-number literal that stood
    there before, e.g. ``4.0`` or ``1e1``) back at ``address``; no I/O.

    Undoing forescale's own edit uses this, so the file gets back its original bytes
    instead of a re-spelled number. The literal must parse as a whole number in the
    file's syntax; everything else is checked as in :func:`patch`."""
    return _put_literal(data, address, literal, filename=filename, parse=_parse)


def _put_literal(
    data: bytes,
    address: str,
    literal: str,
    *,
    filename: str,
    parse: Callable[[str, str], _Document],
) -> TfvarsChange:
    """:func:`put_literal` for a document type ``parse(text, filename)``."""
    parts = _parse_address(address, filename)
    bom, text = _decode(data, filename)
    document = parse(text, filename)
    old = document.locate(parts)
    if old.literal == literal:
        return TfvarsChange(
            path=filename,
            address=address,
            old=old,
            new_value=int(old.value),
            old_sha256=hashlib.sha256(data).hexdigest(),
            new_bytes=data,
            diff="",
        )
    probe = parse(text[: old.start] + literal + text[old.end :], filename).locate(parts)
    if isinstance(probe.value, float) and not probe.value.is_integer():
        raise TfvarsError(f"{filename}: {address} = {literal} is not a whole number")
    return _replace(data, bom, text, document, parts, old, literal, int(probe.value), filename)


def _replace(
    data: bytes,
    bom: bool,
    text: str,
    document: _Document,
    parts: tuple[str, ...],
    old: TfvarsValue,
    literal: str,
    value: int,
    filename: str,
) -> TfvarsChange:
    new_text = text[: old.start] + literal + text[old.end :]
    _verify(document, new_text, parts, old, literal, value, filename)
    new_bytes = (_BOM if bom else b"") + new_text.encode("utf-8")
    return TfvarsChange(
        path=filename,
        address=".".join(parts),
        old=old,
        new_value=value,
        old_sha256=hashlib.sha256(data).hexdigest(),
        new_bytes=new_bytes,
        diff=_unified_diff(text, new_text, filename),
    )


def read_value(path: str | os.PathLike[str], address: str) -> TfvarsValue:
    """Read the file at ``path`` and return the number literal at ``address``."""
    name = os.fspath(path)
    return locate(_read(name), address, filename=name)


def plan_change(path: str | os.PathLike[str], address: str, new_value: int) -> TfvarsChange:
    """Read the file at ``path`` and plan setting ``address`` to ``new_value``; no write."""
    name = os.fspath(path)
    return patch(_read(name), address, new_value, filename=name)


def apply_change(change: TfvarsChange, path: str | os.PathLike[str] | None = None) -> None:
    """Write ``change.new_bytes`` to ``path`` (default ``change.path``) atomically.

    Compare-and-swap: if the file's bytes no longer hash to ``change.old_sha256``,
    :class:`TfvarsConflict` is raised and nothing is written; a read-only file is refused
    (:mod:`forescale.iac_writer.files` holds the rules). A symlink is followed, so the link itself
    survives. A change that alters nothing is a no-op and touches nothing.
    """
    if not change.changed:
        return
    name = os.fspath(path) if path is not None else change.path
    files.write_if(name, change.new_bytes, expected_sha256=change.old_sha256)


# --------------------------------------------------------------------------- inputs


def _parse_address(address: str, filename: str) -> tuple[str, ...]:
    """Split ``a.b.c`` into its parts, refusing empty or unaddressable parts."""
    parts = tuple(address.split(".")) if isinstance(address, str) else ()
    if (
        not parts
        or _VARIABLE_RE.fullmatch(parts[0]) is None
        or any(_KEY_RE.fullmatch(part) is None for part in parts[1:])
    ):
        raise TfvarsTargetError(
            f"{filename}: invalid address {address!r}; expected a variable name optionally "
            "followed by .key parts, e.g. web_min_size or capacity.web.min"
        )
    return parts


def _check_new_value(value: object, address: str, filename: str) -> int:
    """Return ``value`` as an ``int``, refusing bools, non-finite and fractional numbers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TfvarsError(
            f"{filename}: new value for {address} must be an integer number of capacity "
            f"units, got {value!r}"
        )
    if isinstance(value, numbers.Integral):
        return int(value)
    as_float = float(value)
    if not math.isfinite(as_float) or not as_float.is_integer():
        raise TfvarsError(
            f"{filename}: new value for {address} must be a finite whole number, got {value!r}"
        )
    return int(as_float)


def _decode(data: bytes, filename: str) -> tuple[bool, str]:
    """Return (had a UTF-8 BOM, text without it). Line endings are left as they are."""
    bom = data.startswith(_BOM)
    try:
        text = data[len(_BOM) :].decode("utf-8") if bom else data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TfvarsParseError(
            f"{filename}: not UTF-8 (invalid byte at offset {exc.start + (3 if bom else 0)})"
        ) from exc
    return bom, text


def _read(name: str) -> bytes:
    data = files.read_bytes(name)
    assert data is not None  # missing_ok is False
    return data


# --------------------------------------------------------------------------- helpers


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _snippet(source: str) -> str:
    """One-line, shortened source text for error messages."""
    flat = " ".join(source.split())
    return flat if len(flat) <= _SNIPPET_MAX else flat[: _SNIPPET_MAX - 3] + "..."


def _number(literal: str, is_int: bool, where: str, address: str) -> int | float:
    """The value of a decimal literal; refuses ones Python cannot represent."""
    try:
        value: int | float = int(literal) if is_int else float(literal)
    except ValueError as exc:  # more digits than int() accepts
        raise TfvarsTargetError(
            f"{where}: {address} = {_snippet(literal)} is too long a number; refusing to edit"
        ) from exc
    if isinstance(value, float) and not math.isfinite(value):
        raise TfvarsTargetError(
            f"{where}: {address} = {literal} is out of range for a float; refusing to edit"
        )
    return value


def _plural(lines: Sequence[int]) -> str:
    count = "twice" if len(lines) == 2 else f"{len(lines)} times"
    listed = ", ".join(str(n) for n in lines[:-1]) + f" and {lines[-1]}"
    return f"{count} (lines {listed})"


def _unified_diff(old: str, new: str, filename: str) -> str:
    """``git diff``-style unified diff (3 lines of context). An edit of values in place
    keeps the line count: its lines are then compared position by position, so a file
    with repeated lines (YAML's ``---``) shows exactly the changed lines, where difflib's
    matcher may pair them with a look-alike elsewhere."""
    name = filename.lstrip("/")
    a, b = _split_lines(old), _split_lines(new)
    lines = (
        _positional_diff(a, b, f"a/{name}", f"b/{name}")
        if len(a) == len(b)
        else difflib.unified_diff(a, b, fromfile=f"a/{name}", tofile=f"b/{name}")
    )
    out: list[str] = []
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        else:  # last line of a file without a final newline, as git prints it
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


_Tag = Literal["replace", "delete", "insert", "equal"]


class _SamePositions(difflib.SequenceMatcher[str]):
    """Lines paired by position (both sides have as many): runs of equal and of
    replaced lines; difflib groups them into hunks."""

    def __init__(self, a: list[str], b: list[str]) -> None:
        super().__init__(None, a, b)
        self._pairs = list(zip(a, b, strict=True))

    def get_opcodes(self) -> list[tuple[_Tag, int, int, int, int]]:
        ops: list[tuple[_Tag, int, int, int, int]] = []
        for i, (x, y) in enumerate(self._pairs):
            tag: _Tag = "equal" if x == y else "replace"
            if ops and ops[-1][0] == tag:
                ops[-1] = (tag, ops[-1][1], i + 1, ops[-1][3], i + 1)
            else:
                ops.append((tag, i, i + 1, i, i + 1))
        return ops


def _positional_diff(a: list[str], b: list[str], old: str, new: str) -> Iterator[str]:
    """:func:`difflib.unified_diff`'s output for ``a`` and ``b`` paired by position."""
    started = False
    for group in _SamePositions(a, b).get_grouped_opcodes(3):
        if not started:
            started = True
            yield f"--- {old}\n"
            yield f"+++ {new}\n"
        first, last = group[0], group[-1]
        yield f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n"
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                yield from (" " + line for line in a[i1:i2])
            else:
                yield from ("-" + line for line in a[i1:i2])
                yield from ("+" + line for line in b[j1:j2])


def _range(start: int, stop: int) -> str:
    """A unified diff's line range, as difflib writes it."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"


def _split_lines(text: str) -> list[str]:
    # str.splitlines would also split on \x0b, \x1c, U+2028 ...; only \n ends a line here.
    return re.findall(r"[^\n]*\n|[^\n]+\Z", text)


# --------------------------------------------------------------------------- documents


class _Document:
    """A parsed file that can find a number literal and evaluate itself."""

    text: str
    filename: str

    def locate(self, parts: tuple[str, ...]) -> TfvarsValue:
        raise NotImplementedError

    def evaluate(self) -> dict[str, Any]:
        """The file's values as plain Python data, for the before/after comparison."""
        raise NotImplementedError

    @staticmethod
    def key_of(key: str) -> str | None:
        """The key an :meth:`evaluate` dict key stands for."""
        return key

    def reparse(self, text: str) -> _Document:
        """``text`` parsed as the same kind of document (for the after-edit check)."""
        return _parse(text, self.filename)

    def value_path(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        """Where the value at address ``parts`` sits in :meth:`evaluate`'s dict."""
        return parts


def _parse(text: str, filename: str) -> _Document:
    if filename.lower().endswith(".json"):
        return _JsonDocument(text, filename)
    return _HclDocument(text, filename)


def _verify(
    before: _Document,
    new_text: str,
    parts: tuple[str, ...],
    old: TfvarsValue,
    literal: str,
    wanted: int,
    filename: str,
) -> None:
    """Defence in depth: the patched text must parse and differ only in the target."""
    address = ".".join(parts)
    path = before.value_path(parts)
    try:
        after = before.reparse(new_text)
        new = after.locate(parts)
        old_values, new_values = before.evaluate(), after.evaluate()
    except TfvarsError as exc:
        raise TfvarsError(f"{filename}: refusing to write, the patched file fails: {exc}") from exc
    ok = (
        new.value == wanted
        and new.literal == literal
        and new.start == old.start
        and new_text[: old.start] == before.text[: old.start]
        and new_text[old.start + len(literal) :] == before.text[old.end :]
        and _without(old_values, path, before.key_of) == _without(new_values, path, before.key_of)
    )
    if not ok:
        raise TfvarsError(
            f"{filename}: refusing to write, re-parsing the patched file changed more than "
            f"{address}"
        )


def _without(
    values: Mapping[str, Any], parts: tuple[str, ...], key_of: Callable[[str], str | None]
) -> dict[str, Any]:
    """A copy of ``values`` without the entry at ``parts``.

    ``key_of`` turns a key as the evaluator spells it into the key it denotes (python-hcl2
    keeps the quotes and escapes of ``"w\\u0065b"``); locate() already refused duplicates.
    """
    result = dict(values)
    head, rest = parts[0], parts[1:]
    for key, value in values.items():
        if key_of(key) == head:
            if rest and isinstance(value, Mapping):
                result[key] = _without(value, rest, key_of)
            else:
                del result[key]
            break
    return result


# --------------------------------------------------------------------------- HCL


def _token_span(node: Tree[Token] | Token) -> tuple[int, int]:
    if isinstance(node, Token):
        return _require(node.start_pos), _require(node.end_pos)
    return node.meta.start_pos, node.meta.end_pos


def _require(pos: int | None) -> int:
    if pos is None:  # every token of a real parse has a position
        raise TfvarsError("internal: python-hcl2 returned a token without a position")
    return pos


def _first_token(node: Tree[Token] | Token) -> Token:
    if isinstance(node, Token):
        return node
    for child in node.children:
        return _first_token(child)
    raise TfvarsError("internal: empty python-hcl2 tree node")


def _is_tree(node: object, *names: str) -> TypeGuard[Tree[Token]]:
    return isinstance(node, Tree) and node.data in names


_HCL_ESCAPE_RE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)", re.DOTALL)
_HCL_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _hcl_unescape(raw: str) -> str | None:
    """Decode HCL string escapes; ``None`` for an escape HCL does not define."""
    bad = False

    def repl(match: re.Match[str]) -> str:
        nonlocal bad
        esc = match.group(1)
        if esc[0] in "uU" and len(esc) > 1 and int(esc[1:], 16) <= 0x10FFFF:
            return chr(int(esc[1:], 16))
        if esc in _HCL_SIMPLE_ESCAPES:
            return _HCL_SIMPLE_ESCAPES[esc]
        bad = True
        return ""

    decoded = _HCL_ESCAPE_RE.sub(repl, raw)
    return None if bad else decoded


# A heredoc's closing marker with spaces or tabs after it: Terraform trims the line, and
# python-hcl2's grammar wants the newline right after the marker.
_MARKER_THEN_SPACE = re.compile(r"^([ \t]*)([A-Za-z][A-Za-z0-9._-]*)([ \t]+)(?=\r?$)", re.M)
# "$${" and "%%{" are the escapes for the two characters "${" and "%{"; python-hcl2's grammar
# reads each as running to the next "}", across the closing quote and newlines.
_ESCAPES = re.compile(r"\$\$\{|%%\{")


_HEREDOC_TOKENS = frozenset({"HEREDOC_TEMPLATE", "HEREDOC_TEMPLATE_TRIM"})
_HEREDOC_HEAD = re.compile(r"<<-?([A-Za-z][A-Za-z0-9._-]*)\r?$")
_OPENS = re.compile(r"(?<![$%])[$%]\{")  # ${ or %{ that is not the escape $${ / %%{
# The whitespace Go's bytes.TrimSpace removes (Terraform trims a heredoc's marker line
# with it): Python's str.strip() set without the separators \x1c-\x1f.
_GO_SPACE = "".join(
    c for c in map(chr, range(0x3001)) if c.isspace() and c not in "\x1c\x1d\x1e\x1f"
)


def _go_trim(line: str) -> str:
    return line.strip(_GO_SPACE)


def as_terraform_lexes(text: str) -> str:
    """``text`` with the two constructs python-hcl2 lexes differently from Terraform
    rewritten, at the same length, so every token it finds has Terraform's extent and
    every position is still a position in ``text``: a heredoc's closing marker line keeps
    its whitespace in front of the marker instead of after it, and ``$${`` / ``%%{``
    become ``$$_`` / ``%%_`` (plain characters, as Terraform reads the escape: a string
    ends at its quote)."""
    text = _MARKER_THEN_SPACE.sub(lambda m: m[1] + m[3] + m[2], text)
    return _ESCAPES.sub(lambda m: m[0][:2] + "_", text)


class _HclDocument(_Document):
    """A ``.tfvars`` file parsed by python-hcl2 into a raw Lark tree with positions."""

    TOOL = "Terraform"  # who rejects a duplicate attribute (named in the refusal)

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        try:
            self.tree: Tree[Token] = hcl2.parses_to_tree(as_terraform_lexes(text))
        except UnexpectedInput as exc:
            lines = str(exc).strip().splitlines()
            message = lines[0] if lines else type(exc).__name__
            where = f"{filename}:{exc.line}:{exc.column}" if exc.line > 0 else filename
            raise TfvarsParseError(f"{where}: not valid HCL: {message}") from exc
        except LarkError as exc:
            raise TfvarsParseError(f"{filename}: not valid HCL: {exc}") from exc
        self._check_heredocs()
        self.attributes = self._top_level()
        by_name: dict[str, list[int]] = {}
        for name, attribute in self.attributes:
            by_name.setdefault(name, []).append(attribute.meta.line)
        self.duplicates = next(((n, ls) for n, ls in by_name.items() if len(ls) > 1), None)

    def _check_heredocs(self) -> None:
        """Refuse a heredoc whose extent Terraform may read differently from python-hcl2:
        a line inside it that Terraform would take as its end (the marker with other
        whitespace around it, e.g. a no-break space), an end python-hcl2 took that
        Terraform would not (a control character before the marker), or an interpolation
        or directive that runs over lines (Terraform reads a marker line inside it as
        text). Otherwise a decoy number in the heredoc could be read and written."""
        for token in self.tree.scan_values(
            lambda t: isinstance(t, Token) and t.type in _HEREDOC_TOKENS
        ):
            start, end = _require(token.start_pos), _require(token.end_pos)
            lines = self.text[start:end].split("\n")
            head = _HEREDOC_HEAD.match(lines[0])
            if head is None:
                continue
            marker = head[1]
            closer = len(lines) - 1 if lines[-1].strip() else len(lines) - 2
            where = f"{self.filename}:{_line_of(self.text, start)}"
            body = lines[1:closer]
            if any(_go_trim(line) == marker for line in body) or _go_trim(lines[closer]) != marker:
                raise TfvarsParseError(
                    f"{where}: the heredoc <<{marker} has a line reading {marker} with unusual "
                    "whitespace around it, which Terraform and forescale's parser may take "
                    "differently as its end; refusing to edit (keep the closing line to the "
                    "marker, spaces and tabs only)"
                )
            for line in body:
                for opened in _OPENS.finditer(line):
                    if "}" not in line[opened.end() :]:
                        raise TfvarsParseError(
                            f"{where}: the heredoc <<{marker} holds an interpolation or "
                            "directive that runs over lines; refusing to edit (forescale's "
                            "parser cannot follow it as Terraform does)"
                        )

    def _top_level(self) -> list[tuple[str, Tree[Token]]]:
        """(name, attribute) for each top-level attribute; refuses what Terraform would."""
        body = self.tree.children[0] if self.tree.children else None
        if not _is_tree(body, "body"):
            raise TfvarsParseError(f"{self.filename}: python-hcl2 returned no body")
        found: list[tuple[str, Tree[Token]]] = []
        previous_end: int | None = None
        for child in body.children:
            if _is_tree(child, "block"):
                self._block(child)
                continue
            if not _is_tree(child, "attribute"):
                continue
            start, end = _token_span(child)
            # The previous value's last character counts: a heredoc token (and an operator
            # expression's trailing comment) swallows the newline that ends its line.
            if previous_end is not None and "\n" not in self.text[previous_end - 1 : start]:
                raise TfvarsParseError(
                    f"{self.filename}:{child.meta.line}: two attributes on one line; "
                    "Terraform requires a newline between them"
                )
            previous_end = end
            found.append((str(_first_token(child.children[0])), child))
        return found

    def _block(self, block: Tree[Token]) -> None:
        """A top-level block: refused in a variable file (Terragrunt files keep them)."""
        raise TfvarsParseError(
            f"{self.filename}:{block.meta.line}: blocks are not allowed in a variable "
            f"file ({_snippet(self._source(block))})"
        )

    def _assignments(self, head: str) -> list[Tree[Token]]:
        """The top-level attributes named ``head`` (at most one); refuses a file where it,
        or any other attribute, is assigned twice."""
        matches = [attr for name, attr in self.attributes if name == head]
        if len(matches) > 1:
            lines = [attr.meta.line for attr in matches]
            raise TfvarsTargetError(
                f"{self.filename}: {head} appears {_plural(lines)}; "
                f"{self.TOOL} rejects duplicate attributes"
            )
        if self.duplicates is not None:
            name, lines = self.duplicates
            raise TfvarsParseError(
                f"{self.filename}: {name} appears {_plural(lines)}; "
                f"{self.TOOL} rejects duplicate attributes, fix the file first"
            )
        return matches

    def _source(self, node: Tree[Token] | Token) -> str:
        start, end = _token_span(node)
        return self.text[start:end]

    def locate(self, parts: tuple[str, ...]) -> TfvarsValue:
        address = ".".join(parts)
        head = parts[0]
        matches = self._assignments(head)
        if not matches:
            raise TfvarsTargetError(f"{self.filename}: {head} is not set in this file")
        node = matches[0].children[2]
        for depth in range(1, len(parts)):
            node = self._member(node, parts[:depth], parts[depth])
        return self._number(node, address)

    def _member(
        self, node: Tree[Token] | Token, path: tuple[str, ...], key: str
    ) -> Tree[Token] | Token:
        """The value of ``key`` in the object literal ``node`` (found at ``path``)."""
        where = ".".join(path)
        obj = node.children[0] if _is_tree(node, "expr_term") else None
        if not _is_tree(obj, "object"):
            start, _ = _token_span(node)
            raise TfvarsTargetError(
                f"{self.filename}:{_line_of(self.text, start)}: {where} is "
                f"{self._kind(node)} ({_snippet(self._source(node))}), not an object; "
                f"cannot look up {key!r}"
            )
        hits: list[Tree[Token]] = []
        for elem in obj.children:
            if not _is_tree(elem, "object_elem"):
                continue
            elem_key = self._key(elem.children[0])
            if elem_key is None:
                raise TfvarsTargetError(
                    f"{self.filename}:{elem.meta.line}: {where} has a computed key "
                    f"({_snippet(self._source(elem.children[0]))}) that might be {key!r}; "
                    "refusing to edit"
                )
            if elem_key == key:
                hits.append(elem)
        if len(hits) > 1:
            lines = [elem.meta.line for elem in hits]
            raise TfvarsTargetError(
                f"{self.filename}: {where}.{key} appears {_plural(lines)}; "
                "duplicate object keys are ambiguous, refusing to edit"
            )
        if not hits:
            raise TfvarsTargetError(
                f"{self.filename}:{obj.meta.line}: {where}.{key} not found "
                f"({where} has no key {key!r})"
            )
        return hits[0].children[2]

    def _key(self, key_node: Tree[Token] | Token) -> str | None:
        """The static text of an object key, or ``None`` if it needs evaluating."""
        if not isinstance(key_node, Tree) or len(key_node.children) != 1:
            return None
        inner = key_node.children[0]
        if _is_tree(inner, "keyword"):
            return str(_first_token(inner))
        if not _is_tree(inner, "expr_term"):
            return None
        if len(inner.children) != 1:
            return None  # ( expression )
        term = inner.children[0]
        if _is_tree(term, "identifier", "literal_value"):
            return str(_first_token(term))
        if _is_tree(term, "int_lit"):  # HCL turns a number key into its string: 016 -> "16"
            return str(_first_token(term)).lstrip("0") or "0"
        if _is_tree(term, "string"):
            return self._static_string(term)
        return None

    def _static_string(self, string: Tree[Token]) -> str | None:
        pieces: list[str] = []
        for part in string.children:
            if isinstance(part, Token):
                continue  # the quotes
            token = part.children[0] if len(part.children) == 1 else None
            if not isinstance(token, Token) or token.type != "STRING_CHARS":
                return None  # interpolation or template directive
            # the characters as written (the parser saw $${ and %%{ as $$_ and %%_)
            written = self.text[_require(token.start_pos) : _require(token.end_pos)]
            decoded = _hcl_unescape(written)
            if decoded is None:
                return None
            pieces.append(_ESCAPES.sub(lambda m: m[0][1:], decoded))  # $${ -> ${, %%{ -> %{
        return "".join(pieces)

    def _number(self, node: Tree[Token] | Token, address: str) -> TfvarsValue:
        """``node`` as a number literal (``4``, ``1e3``, ``-3``) or a refusal."""
        negative = False
        literal_node = node
        if _is_tree(node, "unary_op"):
            sign, operand = node.children[0], node.children[-1]
            if isinstance(sign, Token) and sign.type == "MINUS":
                negative = True
                literal_node = operand
        term = (
            literal_node.children[0]
            if isinstance(literal_node, Tree)
            and literal_node.data == "expr_term"
            and len(literal_node.children) == 1
            else None
        )
        start, end = _token_span(node)
        line = _line_of(self.text, start)
        where = f"{self.filename}:{line}"
        if not _is_tree(term, "int_lit", "float_lit"):
            raise TfvarsTargetError(
                f"{where}: {address} is {self._kind(node)} ({_snippet(self._source(node))}), "
                "not a number literal; refusing to edit"
            )
        token = _first_token(term)
        _, end = _token_span(token)
        value = _number(str(token), term.data == "int_lit", where, address)
        return TfvarsValue(
            address=address,
            value=-value if negative else value,
            literal=self.text[start:end],
            start=start,
            end=end,
            line=line,
        )

    @staticmethod
    def _kind(node: Tree[Token] | Token) -> str:
        term = node.children[0] if _is_tree(node, "expr_term") and len(node.children) == 1 else None
        if isinstance(term, Tree):
            if term.data == "string":
                return "a string"
            if term.data in ("heredoc_template", "heredoc_template_trim"):
                return "a heredoc string"
            if term.data == "literal_value":
                return "null" if str(_first_token(term)) == "null" else "a bool"
            if term.data == "tuple":
                return "a list"
            if term.data == "object":
                return "an object"
            if term.data in ("int_lit", "float_lit"):
                return "a number"
        return "an expression"

    @staticmethod
    def key_of(key: str) -> str | None:
        """python-hcl2 keeps a quoted key's quotes and escapes: ``'"w\\u0065b"'``."""
        if len(key) >= 2 and key[0] == key[-1] == '"':
            return _hcl_unescape(key[1:-1])
        return key

    def evaluate(self) -> dict[str, Any]:
        try:
            values = hcl2.serialize(hcl2.transform(self.tree))
        except Exception as exc:
            # A python-hcl2 bug (e.g. its AttributeError on some conditionals) must not let
            # an unverified edit through: treat "cannot evaluate" as "cannot edit".
            raise TfvarsParseError(
                f"{self.filename}: python-hcl2 cannot evaluate the file ({exc!r})"
            ) from exc
        if not isinstance(values, dict):
            raise TfvarsParseError(f"{self.filename}: python-hcl2 returned {type(values)}")
        return values


# --------------------------------------------------------------------------- JSON


@dataclass(frozen=True, slots=True)
class _JsonNode:
    """A JSON value with its character span; ``members`` for objects, in source order."""

    kind: str  # "object", "array", "string", "number", "true", "false", "null"
    start: int
    end: int
    members: tuple[tuple[str, int, _JsonNode], ...] = ()  # (key, key offset, value)


_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON (Terraform rejects it)")


class _JsonDocument(_Document):
    """A ``.tfvars.json`` file: validated by ``json.loads``, spans from a small scanner."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        try:
            self.values = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise TfvarsParseError(
                f"{filename}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
            ) from exc
        except ValueError as exc:  # NaN / Infinity, or an int with too many digits
            raise TfvarsParseError(f"{filename}: not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise TfvarsParseError(f"{filename}: nested too deeply to load") from exc
        if not isinstance(self.values, dict):
            raise TfvarsParseError(
                f"{filename}: a .tfvars.json file must hold one JSON object, "
                f"not {type(self.values).__name__}"
            )
        try:
            self.root, end = self._value(self._skip(0))
        except RecursionError as exc:  # json.loads's C scanner goes deeper than this one
            raise TfvarsParseError(f"{filename}: nested too deeply to load") from exc
        if self._skip(end) != len(text):
            raise TfvarsParseError(f"{filename}: trailing data after the JSON object")

    def _value(self, pos: int) -> tuple[_JsonNode, int]:
        """Scan the value starting at ``pos`` (json.loads already accepted the text)."""
        text = self.text
        char = text[pos : pos + 1]
        if char == "{":
            start = pos
            members: list[tuple[str, int, _JsonNode]] = []
            pos = self._skip(pos + 1)
            if text[pos] == "}":
                return _JsonNode("object", start, pos + 1), pos + 1
            while True:
                key_start = pos
                key, pos = self._string(pos)
                pos = self._skip(self._skip(pos) + 1)  # past ':'
                value, pos = self._value(pos)
                members.append((key, key_start, value))
                pos = self._skip(pos)
                if text[pos] == "}":
                    return _JsonNode("object", start, pos + 1, tuple(members)), pos + 1
                pos = self._skip(pos + 1)  # past ','
        if char == "[":
            start = pos
            pos = self._skip(pos + 1)
            if text[pos] != "]":
                while True:
                    _, pos = self._value(pos)
                    pos = self._skip(pos)
                    if text[pos] == "]":
                        break
                    pos = self._skip(pos + 1)
            return _JsonNode("array", start, pos + 1), pos + 1
        if char == '"':
            _, end = self._string(pos)
            return _JsonNode("string", pos, end), end
        for word in ("true", "false", "null"):
            if text.startswith(word, pos):
                return _JsonNode(word, pos, pos + len(word)), pos + len(word)
        match = json.scanner.NUMBER_RE.match(text, pos)
        if match is None:  # json.loads accepted the text, so this is a scanner bug
            raise TfvarsParseError(
                f"{self.filename}:{_line_of(text, pos)}: unexpected JSON at offset {pos}"
            )
        return _JsonNode("number", pos, match.end()), match.end()

    def _string(self, pos: int) -> tuple[str, int]:
        """The decoded JSON string starting at ``pos`` (its opening quote) and its end."""
        match = _JSON_STRING.match(self.text, pos)
        if match is None:
            raise TfvarsParseError(f"{self.filename}: unexpected JSON string at offset {pos}")
        decoded = json.loads(match.group())
        return (decoded if isinstance(decoded, str) else ""), match.end()

    def _skip(self, pos: int) -> int:
        """The first non-whitespace position at or after ``pos``."""
        match = _JSON_WS.match(self.text, pos)
        return match.end() if match else pos

    def locate(self, parts: tuple[str, ...]) -> TfvarsValue:
        address = ".".join(parts)
        node = self.root
        top_level = self._duplicates(node)
        for depth, key in enumerate(parts):
            where = ".".join(parts[:depth])
            if node.kind != "object":
                raise TfvarsTargetError(
                    f"{self.filename}:{_line_of(self.text, node.start)}: {where} is "
                    f"{self._kind(node)} ({_snippet(self.text[node.start : node.end])}), "
                    f"not an object; cannot look up {key!r}"
                )
            hits = [(k, at, v) for k, at, v in node.members if k == key]
            shown = ".".join(parts[: depth + 1])
            if len(hits) > 1:
                lines = [_line_of(self.text, at) for _, at, _ in hits]
                rule = (
                    "Terraform rejects duplicate attributes"
                    if depth == 0
                    else "duplicate object keys are ambiguous, refusing to edit"
                )
                raise TfvarsTargetError(
                    f"{self.filename}: {shown} appears {_plural(lines)}; {rule}"
                )
            if depth == 0 and top_level is not None:
                name, lines = top_level
                raise TfvarsParseError(
                    f"{self.filename}: {name} appears {_plural(lines)}; "
                    "Terraform rejects duplicate attributes, fix the file first"
                )
            if not hits:
                if depth == 0:
                    raise TfvarsTargetError(f"{self.filename}: {key} is not set in this file")
                raise TfvarsTargetError(
                    f"{self.filename}:{_line_of(self.text, node.start)}: {shown} not found "
                    f"({where} has no key {key!r})"
                )
            node = hits[0][2]
        line = _line_of(self.text, node.start)
        literal = self.text[node.start : node.end]
        if node.kind != "number":
            raise TfvarsTargetError(
                f"{self.filename}:{line}: {address} is {self._kind(node)} "
                f"({_snippet(literal)}), not a number literal; refusing to edit"
            )
        is_int = not any(c in literal for c in ".eE")
        value = _number(literal, is_int, f"{self.filename}:{line}", address)
        return TfvarsValue(
            address=address, value=value, literal=literal, start=node.start, end=node.end, line=line
        )

    def _duplicates(self, node: _JsonNode) -> tuple[str, list[int]] | None:
        seen: dict[str, list[int]] = {}
        for key, at, _ in node.members:
            seen.setdefault(key, []).append(at)
        twice = next(((k, v) for k, v in seen.items() if len(v) > 1), None)
        if twice is None:
            return None
        return twice[0], [_line_of(self.text, at) for at in twice[1]]  # only what is shown

    @staticmethod
    def _kind(node: _JsonNode) -> str:
        return {
            "object": "an object",
            "array": "a list",
            "string": "a string",
            "true": "a bool",
            "false": "a bool",
            "null": "null",
        }.get(node.kind, "a number")

    def evaluate(self) -> dict[str, Any]:
        values: dict[str, Any] = self.values
        return values
