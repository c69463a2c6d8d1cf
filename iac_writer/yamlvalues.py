"""Read and surgically patch one integer in a Kubernetes YAML file.

The files: a Helm chart's ``values.yaml``, a KEDA ``ScaledObject``, an ``autoscaling/v2``
``HorizontalPodAutoscaler``, any manifest (one or several ``---`` documents). PyYAML's
pure-Python parser finds the value with its character position; the edit then replaces
*only the characters of that integer*. Comments, anchors, quoting, indentation, key order,
flow style, CRLF line endings, a UTF-8 BOM and ``---``/``...`` markers stay byte-for-byte.
``yaml.safe_dump(yaml.safe_load(x))`` is never used: it drops every comment, re-indents and
re-orders keys.

Addresses (what a user writes after the file name)::

    web.autoscaling.minReplicas                           a key path in the file's only document
    doc[1].spec.minReplicas                               in document 1 (0-based, as yq counts)
    doc[HorizontalPodAutoscaler/web].spec.maxReplicas     in the one document of that kind/name

A key path is dot-separated keys of ``[A-Za-z0-9_][A-Za-z0-9_-]*`` (keys holding dots,
slashes or spaces, and list items, cannot be addressed); a key matches the text it is
written with, quoted or not (an alias used as a key by its anchor's text). A plain key path
is only accepted when the file holds exactly one non-empty document; with more, the
address must say which: ``doc[i]`` counts every document ``yaml.safe_load_all`` yields (an
empty one after a trailing ``---`` too), ``doc[Kind/name]`` matches ``kind`` and
``metadata.name`` exactly and must match exactly one document (the same name in two
namespaces: use ``doc[i]``).

Rules, in the order they are checked; each refusal is one line naming the file, the line,
the address and why, and nothing is written:

1. The file is UTF-8 (a BOM is kept) and PyYAML parses it. PyYAML rejects a tab between a
   value and its comment (``2\\t# note``, valid YAML, yaml/pyyaml#450): such a file is
   refused, never guessed at.
2. ``{{`` outside a comment and outside a quoted or block string (in the structure or in
   an unquoted string) means a Go/Helm template (Helm renders it; a literal there may be
   inside ``if``/``range``): refused, set the number in the chart's values file instead.
   ``{{`` in comments and in quoted or block strings (values passed to ``tpl``) is fine.
3. The whole file loads with ``yaml.safe_load_all`` (custom tags such as ``!vault`` do
   not), so the edit can be verified on the loaded data (rule 9).
4. The address selects exactly one document (above).
5. Every key on the path exists once in its mapping (duplicate keys are read differently
   by different readers; duplicates off the path are the file owner's business); a key
   absent but possibly supplied by a merge key (``<<: *x``) is refused, because editing
   the merged mapping changes every mapping that merges it. A key written next to a
   merge key overrides the merged one and is edited.
6. No node on the path is an alias (``*x``: there is nothing to edit there) or carries an
   anchor that an alias reuses (``&x``: editing it changes every copy). An anchor no
   alias uses is harmless and kept.
7. The value is a plain (unquoted, untagged) decimal integer: ``0`` or ``-?[1-9][0-9]*``.
   Refused: quoted numbers (``"3"``, ``'3'``: a string stays a string; a manifest with a
   string count is rejected by the API server, and a Helm value's type is the chart's
   business — write it unquoted if it is a count), explicit tags (``!!int 3``,
   ``!!str 3``), other integer spellings YAML 1.1 and 1.2 readers disagree on (``017``,
   ``0x10``, ``1_000``, ``+3``, ``1:30``), floats, bools, null, strings, mappings, lists.
8. The new value is a whole number >= 0 (a replica count); it is written as a plain
   decimal (``7``). An equal value changes nothing.
9. The patched text is parsed again: the same value must be found at the same place with
   the new characters, and the loaded data must differ from the original in exactly that
   one value.

:func:`locate`, :func:`patch`, :func:`put_literal` and :func:`autoscaler_conflicts` are
pure (bytes in, records out); :class:`forescale.iac_writer.yaml_target.YamlTarget` does
the I/O through :mod:`forescale.iac_writer.files`. The records are the ones
:mod:`~forescale.iac_writer.tfvars` uses (:class:`TfvarsValue`, :class:`TfvarsChange`), so
callers treat both formats alike.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import numbers
import os
import re
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from forescale.errors import TfvarsError, TfvarsParseError, TfvarsTargetError

# The text helpers are shared with the tfvars editor on purpose: one BOM/UTF-8 rule, one
# diff format, one way of listing lines in messages.
from forescale.iac_writer.tfvars import (
    _BOM,
    TfvarsChange,
    TfvarsValue,
    _decode,
    _plural,
    _snippet,
    _unified_diff,
)

__all__ = [
    "YAML_SUFFIXES",
    "autoscaler_conflicts",
    "is_yaml_file",
    "locate",
    "patch",
    "put_literal",
]

YAML_SUFFIXES: Final = (".yaml", ".yml")
"""File names (case-insensitive) that :func:`is_yaml_file` treats as YAML."""

_INT_RE = re.compile(r"0|-?[1-9][0-9]*")
_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_ADDRESS_RE = re.compile(r"(?:doc\[(?P<selector>[^\[\]]*)\]\.)?(?P<path>[^\[\]]*)")
_INDEX_RE = re.compile(r"0|[1-9][0-9]{0,5}")
_KIND_NAME_RE = re.compile(r"(?P<kind>[A-Za-z][A-Za-z0-9]*)/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)")
_ADDRESS_HELP = (
    "expected a key path such as web.autoscaling.minReplicas, optionally after a document: "
    "doc[1].spec.minReplicas or doc[HorizontalPodAutoscaler/web].spec.minReplicas"
)
_CORE_TAG = "tag:yaml.org,2002:"
_RESOLVER = yaml.resolver.Resolver()
_QUOTED = ("'", '"')
_BLOCK = ("|", ">")
# The workloads an HPA or ScaledObject scales whose spec.replicas a GitOps tool also sets.
_WORKLOADS = ("Deployment", "StatefulSet")


def is_yaml_file(path: str | os.PathLike[str]) -> bool:
    """True if ``path``'s name ends in ``.yaml`` or ``.yml`` (any case)."""
    return os.fspath(path).lower().endswith(YAML_SUFFIXES)


# --------------------------------------------------------------------------- public API


def locate(data: bytes, address: str, *, filename: str = "<yaml>") -> TfvarsValue:
    """Find the integer at ``address`` (see the module docstring) in the YAML ``data``.

    ``start``/``end`` of the result are character offsets into the decoded text (UTF-8,
    BOM removed), ``line`` is 1-based, ``value`` an ``int``. Raises
    :class:`TfvarsParseError` if the file cannot be parsed, is a template or cannot be
    loaded, :class:`TfvarsTargetError` if the address does not lead to exactly one plain
    integer that can be edited alone (rules 4-7)."""
    parsed = _parse_address(address, filename)
    _bom, text = _decode(data, filename)
    return _Stream(text, filename).locate(parsed).value


def patch(data: bytes, address: str, new_value: int, *, filename: str = "<yaml>") -> TfvarsChange:
    """Plan setting the integer at ``address`` to ``new_value`` (replicas) in ``data``; no I/O.

    Only the characters of the current integer are replaced, by ``str(new_value)``; an
    equal value returns ``data`` unchanged with an empty diff. ``new_value`` must be a
    whole number >= 0 (an integral float is accepted); bools, NaN, infinities, fractions
    and negative numbers are refused. The result is verified by re-parsing (rule 9)."""
    parsed = _parse_address(address, filename)
    wanted = _check_new_value(new_value, parsed.text, filename)
    bom, text = _decode(data, filename)
    stream = _Stream(text, filename)
    found = stream.locate(parsed)
    if found.value.value == wanted:
        return _unchanged(data, found.value, filename)
    return _replace(data, bom, stream, parsed, found, str(wanted), wanted)


def put_literal(
    data: bytes, address: str, literal: str, *, filename: str = "<yaml>"
) -> TfvarsChange:
    """Plan putting the exact characters ``literal`` (a plain decimal integer that stood
    there before, e.g. ``3``) back at ``address``; no I/O. Undo uses this."""
    parsed = _parse_address(address, filename)
    if _INT_RE.fullmatch(literal) is None:
        raise TfvarsError(
            f"{filename}: {parsed.text} cannot be set to {literal!r}: not a plain decimal integer"
        )
    bom, text = _decode(data, filename)
    stream = _Stream(text, filename)
    found = stream.locate(parsed)
    if found.value.literal == literal:
        return _unchanged(data, found.value, filename)
    return _replace(data, bom, stream, parsed, found, literal, int(literal))


def autoscaler_conflicts(data: bytes, *, filename: str = "<yaml>") -> tuple[str, ...]:
    """One-line warnings for each Deployment/StatefulSet in ``data`` that sets
    ``spec.replicas`` while a HorizontalPodAutoscaler or KEDA ScaledObject in the same
    file scales it (same ``kind``/``name``; namespaces equal or either one unset).

    A GitOps controller (Argo CD, Flux) syncing such a file puts ``spec.replicas`` back on
    every sync while the autoscaler keeps changing it. Empty when there is no such pair.
    Raises :class:`TfvarsParseError` if ``data`` is not YAML that loads."""
    _bom, text = _decode(data, filename)
    documents = _Stream(text, filename).data
    workloads: list[tuple[int, str, str, str | None, Any]] = []
    scalers: list[tuple[int, str, str, str | None, str, str]] = []
    for index, document in enumerate(documents):
        if not isinstance(document, dict):
            continue
        kind, name, namespace = _manifest_identity(document)
        spec = document.get("spec")
        if kind is None or name is None or not isinstance(spec, dict):
            continue
        if kind in _WORKLOADS and "replicas" in spec:
            workloads.append((index, kind, name, namespace, spec["replicas"]))
        ref = spec.get("scaleTargetRef")
        if kind in ("HorizontalPodAutoscaler", "ScaledObject") and isinstance(ref, dict):
            # KEDA's scaleTargetRef.kind defaults to Deployment; the HPA's is required.
            default = "Deployment" if kind == "ScaledObject" else None
            target_kind, target_name = ref.get("kind", default), ref.get("name")
            if isinstance(target_kind, str) and isinstance(target_name, str):
                scalers.append((index, kind, name, namespace, target_kind, target_name))
    warnings: list[str] = []
    for w_index, w_kind, w_name, w_namespace, replicas in workloads:
        for s_index, s_kind, s_name, s_namespace, t_kind, t_name in scalers:
            same_namespace = None in (w_namespace, s_namespace) or w_namespace == s_namespace
            if (t_kind, t_name) == (w_kind, w_name) and same_namespace:
                warnings.append(
                    f"{filename}: {w_kind}/{w_name} (doc[{w_index}]) sets spec.replicas "
                    f"({replicas}) and {s_kind}/{s_name} (doc[{s_index}]) autoscales it: the "
                    "GitOps controller will put the replicas back on every sync while the "
                    f"autoscaler changes them, and the two fight; remove spec.replicas from "
                    f"the {w_kind} and let the {s_kind} own the replica count"
                )
    return tuple(warnings)


# --------------------------------------------------------------------------- internals


@dataclass(frozen=True, slots=True)
class _Address:
    """A parsed address: ``index`` xor ``kind``/``name`` select the document (or neither)."""

    text: str
    keys: tuple[str, ...]
    index: int | None = None
    kind: str | None = None
    name: str | None = None

    @property
    def prefix(self) -> str:
        if self.index is not None:
            return f"doc[{self.index}]."
        if self.kind is not None:
            return f"doc[{self.kind}/{self.name}]."
        return ""

    def shown(self, depth: int) -> str:
        """The address of the first ``depth`` keys (``doc[1].spec``)."""
        if depth:
            return self.prefix + ".".join(self.keys[:depth])
        return self.prefix[:-1] or "the document"


@dataclass(eq=False, slots=True)
class _Node:
    """A YAML node as the parser's events give it, with its character span.

    ``start``/``end`` cover the anchor and tag too (PyYAML's event marks); ``tag`` is the
    tag as written (None: implicit); ``style`` a scalar's quoting (None: plain)."""

    kind: str  # "scalar", "mapping", "sequence" or "alias"
    start: int
    end: int
    line: int
    anchor: str | None = None
    tag: str | None = None
    style: str | None = None
    value: str = ""
    pairs: list[tuple[_Node, _Node]] = field(default_factory=list)
    items: list[_Node] = field(default_factory=list)
    alias_of: _Node | None = None
    reused_at: int | None = None  # line of the first alias of this node's anchor
    key_line: int | None = None  # line of the key this node is the value of

    @property
    def at(self) -> int:
        """The line to name in messages: a block mapping starts at its first key, but a
        reader looks for the key that holds it."""
        return self.key_line if self.key_line is not None else self.line

    @property
    def resolved(self) -> _Node:
        return self.alias_of if self.alias_of is not None else self


@dataclass(slots=True)
class _Document:
    index: int
    line: int
    root: _Node | None = None

    @property
    def empty(self) -> bool:
        root = self.root
        return root is None or (
            root.kind == "scalar"
            and root.tag is None
            and root.style is None
            and _implicit_tag(root.value) == _CORE_TAG + "null"
        )


@dataclass(frozen=True, slots=True)
class _Found:
    """The integer found, and where the loaded data holds it: ``path`` is the document's
    index and the keys as ``yaml.safe_load`` gives them (``on:`` is ``True`` there)."""

    value: TfvarsValue
    document: _Document
    path: tuple[Any, ...]


class _Stream:
    """A parsed YAML file: its documents as :class:`_Node` trees and as loaded data."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        try:
            events = list(yaml.parse(text, Loader=yaml.SafeLoader))
            tokens = list(yaml.scan(text, Loader=yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise self._parse_error(exc) from exc
        self._refuse_templates(tokens)
        self.documents = self._build(events)
        try:
            self.data: list[Any] = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise TfvarsParseError(
                f"{self._where(exc)}: cannot be loaded ({_problem(exc)}); forescale only edits "
                "a file it can load to verify the edit"
            ) from exc
        except ValueError as exc:  # 2020-13-45 as a date, an int past 4300 digits
            raise TfvarsParseError(
                f"{filename}: cannot be loaded ({str(exc).split(';')[0]}); forescale only "
                "edits a file it can load to verify the edit"
            ) from exc
        except RecursionError as exc:
            raise TfvarsParseError(f"{filename}: nested too deeply to load") from exc
        except (LookupError, AttributeError, TypeError) as exc:
            # PyYAML's constructors fail this way on a tagged scalar they cannot build
            # (`!!int ""`, `!!timestamp x`): the file cannot be loaded, so it is not edited
            raise TfvarsParseError(
                f"{filename}: cannot be loaded (a tagged value YAML cannot build: "
                f"{type(exc).__name__}); forescale only edits a file it can load to verify "
                "the edit"
            ) from exc

    # -- parsing

    def _where(self, exc: yaml.YAMLError) -> str:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if isinstance(mark, yaml.Mark):
            return f"{self.filename}:{mark.line + 1}:{mark.column + 1}"
        return self.filename

    def _parse_error(self, exc: yaml.YAMLError) -> TfvarsParseError:
        template = self.text.find("{{")
        if template >= 0:
            return TfvarsParseError(
                f"{self.filename}:{self._line(template)}: a Helm/Go template ({{{{ on this "
                f"line), not YAML ({_problem(exc)}); Helm renders it, so set the number in "
                "the chart's values file instead"
            )
        hint = ""
        if "'\\t'" in _problem(exc):
            hint = (
                " (a tab: YAML forbids it in indentation, PyYAML also between a value and its "
                "comment, yaml/pyyaml#450; use spaces)"
            )
        return TfvarsParseError(f"{self._where(exc)}: cannot parse as YAML: {_problem(exc)}{hint}")

    def _line(self, pos: int) -> int:
        # YAML line breaks: \n, \r\n and a lone \r (PyYAML also counts NEL, LS, PS).
        return len(re.findall(r"\r\n|[\r\n\x85\u2028\u2029]", self.text[:pos])) + 1

    def _refuse_templates(self, tokens: list[yaml.Token]) -> None:
        """Rule 2: ``{{`` only in comments (no token covers it) or quoted/block strings."""
        if "{{" not in self.text:
            return
        # Tokens do not overlap: the one that may cover a position is the last one starting
        # at or before it (zero-width tokens such as BLOCK-END cover nothing).
        spans = [
            (t.start_mark.index, t.end_mark.index, getattr(t, "style", None))
            for t in tokens
            if t.end_mark.index > t.start_mark.index
        ]
        starts = [start for start, _, _ in spans]
        for match in re.finditer(r"\{\{", self.text):
            pos = match.start()
            i = bisect.bisect_right(starts, pos) - 1
            if i < 0 or spans[i][1] <= pos:
                continue  # a comment: everything outside tokens is space or comment
            if spans[i][2] in _QUOTED + _BLOCK:
                continue
            begin = max(self.text.rfind("\n", 0, pos), self.text.rfind("\r", 0, pos)) + 1
            source = re.split(r"[\r\n]", self.text[begin:], maxsplit=1)[0]
            raise TfvarsParseError(
                f"{self.filename}:{self._line(pos)}: a Helm/Go template ({{{{ outside a quoted "
                f"string: {_snippet(source)}); Helm renders it, so set the number in the "
                "chart's values file instead (in a values file, quote that string)"
            )

    def _build(self, events: list[yaml.Event]) -> list[_Document]:
        """Documents of :class:`_Node` trees from the parser's events (iterative, so deep
        nesting cannot overflow the stack here)."""
        documents: list[_Document] = []
        stack: list[_Node] = []
        keys: list[_Node | None] = []  # per open mapping: the key waiting for its value
        anchors: dict[str, _Node] = {}
        document: _Document | None = None
        for event in events:
            start, end, line = _span(event)
            if isinstance(event, yaml.DocumentStartEvent):
                document = _Document(len(documents), line)
                documents.append(document)
                anchors = {}  # anchors are per document
                continue
            if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                stack.pop().end = end
                keys.pop()
                continue
            if not isinstance(event, yaml.NodeEvent) or document is None:
                continue
            node = _Node(kind="alias", start=start, end=end, line=line, anchor=event.anchor)
            if isinstance(event, yaml.AliasEvent):
                target = anchors.get(str(event.anchor))
                if target is None:  # safe_load_all would refuse it too; say so first
                    raise TfvarsParseError(
                        f"{self.filename}:{node.line}: alias *{event.anchor} has no anchor "
                        f"&{event.anchor} before it"
                    )
                node.alias_of = target
                if target.reused_at is None:
                    target.reused_at = node.line
            else:
                if isinstance(event, yaml.ScalarEvent):
                    node.kind, node.style, node.value = "scalar", event.style, event.value
                    node.tag = event.tag
                elif isinstance(event, yaml.CollectionStartEvent):
                    node.kind = (
                        "mapping" if isinstance(event, yaml.MappingStartEvent) else "sequence"
                    )
                    node.tag = event.tag
                if event.anchor is not None:
                    anchors[event.anchor] = node
            if not stack:
                document.root = node
            elif stack[-1].kind == "sequence":
                stack[-1].items.append(node)
            elif keys[-1] is None:
                keys[-1] = node
            else:
                key, keys[-1] = keys[-1], None
                assert key is not None
                stack[-1].pairs.append((key, node))
                if node.kind != "alias":
                    node.key_line = key.line
            if node.kind in ("mapping", "sequence"):
                stack.append(node)
                keys.append(None)
        return documents

    # -- finding

    def locate(self, address: _Address) -> _Found:
        document = self._select(address)
        node = document.root
        assert node is not None  # _select refuses empty documents
        on_path: list[tuple[int, _Node]] = [(0, node)]
        loaded: list[Any] = [document.index]
        for depth, key in enumerate(address.keys):
            key_node, node = self._member(self._through(node, address, depth), address, depth, key)
            on_path.append((depth + 1, node))
            loaded.append(_loaded_key(key_node))
        leaf = self._through(node, address, len(address.keys))
        for depth, path_node in reversed(on_path):
            if path_node.reused_at is not None:
                raise TfvarsTargetError(
                    f"{self.filename}:{path_node.at}: {address.shown(depth)} is anchored "
                    f"(&{path_node.anchor}) and reused by *{path_node.anchor} on line "
                    f"{path_node.reused_at}; editing it would change every copy, refusing "
                    "to edit"
                )
        return _Found(self._integer(leaf, address), document, tuple(loaded))

    def _select(self, address: _Address) -> _Document:
        documents = self.documents
        if address.index is not None:
            if address.index >= len(documents):
                raise TfvarsTargetError(
                    f"{self.filename}: {address.text}: there is no doc[{address.index}], the "
                    f"file holds {_count(len(documents))} (doc[0] to doc[{len(documents) - 1}])"
                    if documents
                    else f"{self.filename}: {address.text}: the file holds no YAML document"
                )
            chosen = documents[address.index]
        elif address.kind is not None:
            hits = [d for d in documents if self._identity(d) == (address.kind, address.name)]
            wanted = f"{address.kind}/{address.name}"
            if len(hits) > 1:
                where = [f"doc[{d.index}] on line {d.line}" for d in hits]
                listed = ", ".join(where[:-1]) + f" and {where[-1]}"
                raise TfvarsTargetError(
                    f"{self.filename}: {wanted} is {_count(len(hits))} ({listed}); pick one "
                    f"by number, e.g. doc[{hits[0].index}].{'.'.join(address.keys)}"
                )
            if not hits:
                raise TfvarsTargetError(
                    f"{self.filename}: {address.text}: no document is {wanted} (the file "
                    f"holds {self._listing()})"
                )
            chosen = hits[0]
        else:
            filled = [d for d in documents if not d.empty]
            if len(filled) > 1:
                path = ".".join(address.keys)
                having = [d for d in filled if _has_path(d.root, address.keys)] or filled
                kind, name = self._identity(having[0])
                example = (
                    f"doc[{kind}/{name}].{path}"
                    if kind and name
                    else f"doc[{having[0].index}].{path}"
                )
                raise TfvarsTargetError(
                    f"{self.filename}: {path}: the file holds {_count(len(filled))} "
                    f"({self._listing()}); say which one, e.g. {example}"
                )
            if not filled:
                raise TfvarsTargetError(
                    f"{self.filename}: {address.text}: the file holds no YAML document"
                )
            chosen = filled[0]
        if chosen.empty:
            raise TfvarsTargetError(
                f"{self.filename}:{chosen.line}: {address.text}: doc[{chosen.index}] is empty"
            )
        return chosen

    def _identity(self, document: _Document) -> tuple[str | None, str | None]:
        """``kind`` and ``metadata.name`` of a document when both are plain strings."""
        kind = _scalar(document.root, "kind")
        metadata = _member_node(document.root, "metadata")
        return kind, _scalar(metadata, "name")

    def _listing(self) -> str:
        shown = []
        for document in self.documents:
            if document.empty:
                continue
            kind, name = self._identity(document)
            label = f"{kind}/{name}" if kind and name else (kind or "a document without kind")
            shown.append(f"doc[{document.index}] {label}")
        more = len(shown) - 5
        return ", ".join(shown[:5]) + (f" and {more} more" if more > 0 else "")

    def _through(self, node: _Node, address: _Address, depth: int) -> _Node:
        """``node`` unless it is an alias: editing through an alias is impossible."""
        if node.alias_of is None:
            return node
        raise TfvarsTargetError(
            f"{self.filename}:{node.line}: {address.shown(depth)} is an alias (*{node.anchor}) "
            f"of the value anchored on line {node.alias_of.at}; editing through an alias is "
            "impossible and editing the anchor changes every copy, refusing to edit"
        )

    def _member(self, node: _Node, address: _Address, depth: int, key: str) -> tuple[_Node, _Node]:
        """The key and value nodes of ``key`` in the mapping ``node`` (rule 5)."""
        where, shown = address.shown(depth), address.shown(depth + 1)
        if node.kind != "mapping":
            raise TfvarsTargetError(
                f"{self.filename}:{node.at}: {where} is {self._kind(node)}, not a mapping; "
                f"cannot look up {key!r}"
            )
        hits = [(k, v) for k, v in node.pairs if _key_text(k) == key]
        if len(hits) > 1:
            raise TfvarsTargetError(
                f"{self.filename}: {shown} appears {_plural([k.line for k, _ in hits])}; "
                "duplicate keys are ambiguous (readers keep the first, the last, or reject "
                "the file), refusing to edit"
            )
        if not hits:
            merges = [k for k, _ in node.pairs if _key_text(k) == "<<" and k.style is None]
            if merges:
                raise TfvarsTargetError(
                    f"{self.filename}:{merges[0].line}: {shown} is not written here but may "
                    f"come from the merge key (<<); editing the merged mapping would change "
                    f"every mapping that merges it, write {key}: under {where} first"
                )
            raise TfvarsTargetError(
                f"{self.filename}:{node.at}: {shown} not found ({where} has no key {key!r})"
                if depth
                else f"{self.filename}: {shown} not found (the document has no key {key!r})"
            )
        return hits[0]

    def _integer(self, node: _Node, address: _Address) -> TfvarsValue:
        """Rule 7: ``node`` as a plain decimal integer, or a refusal."""
        where = f"{self.filename}:{node.at}: {address.text}"
        source = _snippet(self.text[node.start : node.end])
        if node.kind != "scalar":
            raise TfvarsTargetError(f"{where} is {self._kind(node)}, not an integer")
        if node.tag is not None:
            raise TfvarsTargetError(
                f"{where} has an explicit tag ({source}); refusing to edit a tagged value"
            )
        if node.style in _QUOTED:
            raise TfvarsTargetError(
                f"{where} is a quoted string ({source}), not a number; forescale does not "
                "edit a string — write it unquoted if it is a count"
            )
        if node.style in _BLOCK:
            raise TfvarsTargetError(f"{where} is a block string ({source}), not a number")
        if _INT_RE.fullmatch(node.value) is None:
            tag = _implicit_tag(node.value)
            if tag == _CORE_TAG + "int":
                raise TfvarsTargetError(
                    f"{where} = {_snippet(node.value)} is not a plain decimal integer (YAML "
                    "1.1 and 1.2 readers disagree on octal, hex, _ and : forms); write it "
                    "as plain digits to let forescale manage it"
                )
            raise TfvarsTargetError(f"{where} is {self._kind(node)}, not an integer")
        # A plain one-line scalar's characters are its value; an anchor comes before it.
        start = node.end - len(node.value)
        if self.text[start : node.end] != node.value:
            raise TfvarsError(f"{where}: cannot find the characters of {source}; not editing")
        return TfvarsValue(
            address=address.text,
            value=int(node.value),  # safe_load_all read it: within int()'s digit limit
            literal=node.value,
            start=start,
            end=node.end,
            line=node.line,
        )

    def _kind(self, node: _Node) -> str:
        source = _snippet(self.text[node.start : node.end])
        if node.kind == "mapping":
            return "a mapping"
        if node.kind == "sequence":
            return "a list"
        if node.kind == "alias":
            return f"an alias ({source})"
        if node.style in _QUOTED or node.style in _BLOCK:
            return f"a string ({source})"
        tag = node.tag or _implicit_tag(node.value)
        name = tag.removeprefix(_CORE_TAG)
        if name == "null":
            return f"null ({source})" if source else "empty (null)"
        article = "an" if name[:1] in "aeiou" else "a"
        return f"{article} {name if name != 'str' else 'string'} ({source})"


def _manifest_identity(document: dict[Any, Any]) -> tuple[str | None, str | None, str | None]:
    """``kind``, ``metadata.name`` and ``metadata.namespace`` of a loaded manifest."""
    metadata = document.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    found = (document.get("kind"), metadata.get("name"), metadata.get("namespace"))
    kind, name, namespace = (v if isinstance(v, str) else None for v in found)
    return kind, name, namespace


def _span(event: yaml.Event) -> tuple[int, int, int]:
    """Start and end character offsets and 1-based line of a parser event."""
    start, end = event.start_mark, event.end_mark
    if start is None or end is None:  # the pure-Python parser always sets both
        raise TfvarsError("internal: PyYAML returned an event without a position")
    return start.index, end.index, start.line + 1


def _implicit_tag(value: str) -> str:
    """The tag YAML 1.1 (PyYAML's resolver) gives the plain scalar ``value``."""
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return tag


def _key_text(key: _Node) -> str | None:
    """The text of a scalar mapping key (through an alias), None for a complex key."""
    key = key.resolved
    return key.value if key.kind == "scalar" else None


def _loaded_key(key: _Node) -> Any:
    """The key as ``yaml.safe_load`` gives it: a plain untagged key is resolved (``on`` is
    ``True``, ``1`` is ``1``), any other is its string."""
    key = key.resolved
    if key.style is None and key.tag is None:
        try:
            return yaml.safe_load(key.value)
        except yaml.YAMLError:  # pragma: no cover - a plain key's text loads as itself
            return key.value
    return key.value


def _member_node(node: _Node | None, key: str) -> _Node | None:
    """The value of ``key`` in mapping ``node`` when it appears exactly once."""
    if node is None or node.kind != "mapping":
        return None
    hits = [v.resolved for k, v in node.pairs if _key_text(k) == key]
    return hits[0] if len(hits) == 1 else None


def _has_path(node: _Node | None, keys: tuple[str, ...]) -> bool:
    for key in keys:
        node = _member_node(node, key)
    return node is not None


def _scalar(node: _Node | None, key: str) -> str | None:
    value = _member_node(node, key)
    return value.value if value is not None and value.kind == "scalar" else None


def _problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    return " ".join(str(problem).split())


def _count(n: int) -> str:
    return f"{n} document" + ("" if n == 1 else "s")


def _parse_address(address: str, filename: str) -> _Address:
    """Split ``[doc[selector].]a.b.c``, refusing anything else (see the module docstring)."""
    match = _ADDRESS_RE.fullmatch(address) if isinstance(address, str) else None
    keys = tuple(match.group("path").split(".")) if match else ()
    if match is None or not keys or any(_KEY_RE.fullmatch(k) is None for k in keys):
        raise TfvarsTargetError(f"{filename}: invalid address {address!r}; {_ADDRESS_HELP}")
    selector = match.group("selector")
    if selector is None:
        return _Address(address, keys)
    if _INDEX_RE.fullmatch(selector):
        return _Address(address, keys, index=int(selector))
    kind_name = _KIND_NAME_RE.fullmatch(selector)
    if kind_name is None:
        raise TfvarsTargetError(
            f"{filename}: invalid document selector doc[{selector}] in {address!r}; use a "
            "number (doc[1]) or Kind/name (doc[HorizontalPodAutoscaler/web])"
        )
    return _Address(address, keys, kind=kind_name["kind"], name=kind_name["name"])


def _check_new_value(value: object, address: str, filename: str) -> int:
    """Rule 8: ``value`` as an ``int`` >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TfvarsError(
            f"{filename}: new value for {address} must be a whole number of replicas >= 0, "
            f"got {value!r}"
        )
    if isinstance(value, numbers.Integral):
        whole = int(value)
    else:
        as_float = float(value)
        if not math.isfinite(as_float) or not as_float.is_integer():
            raise TfvarsError(
                f"{filename}: new value for {address} must be a finite whole number, got {value!r}"
            )
        whole = int(as_float)
    if whole < 0:
        raise TfvarsError(
            f"{filename}: new value for {address} must be >= 0 (a replica count), got {whole}"
        )
    return whole


def _unchanged(data: bytes, old: TfvarsValue, filename: str) -> TfvarsChange:
    return TfvarsChange(
        path=filename,
        address=old.address,
        old=old,
        new_value=int(old.value),
        old_sha256=hashlib.sha256(data).hexdigest(),
        new_bytes=data,
        diff="",
    )


def _replace(
    data: bytes,
    bom: bool,
    stream: _Stream,
    address: _Address,
    found: _Found,
    literal: str,
    value: int,
) -> TfvarsChange:
    old = found.value
    text, filename = stream.text, stream.filename
    new_text = text[: old.start] + literal + text[old.end :]
    _verify(stream, new_text, address, found, literal, value)
    return TfvarsChange(
        path=filename,
        address=address.text,
        old=old,
        new_value=value,
        old_sha256=hashlib.sha256(data).hexdigest(),
        new_bytes=(_BOM if bom else b"") + new_text.encode("utf-8"),
        diff=_unified_diff(text, new_text, filename),
    )


def _verify(
    before: _Stream, new_text: str, address: _Address, found: _Found, literal: str, wanted: int
) -> None:
    """Rule 9: the patched text parses, holds the new integer at the same place, and its
    loaded data differs from the original's in exactly that value."""
    old = found.value
    filename = before.filename
    try:
        after = _Stream(new_text, filename)
        new = after.locate(address).value
    except TfvarsError as exc:
        raise TfvarsError(f"{filename}: refusing to write, the patched file fails: {exc}") from exc
    expected = [(found.path, old.value, wanted)]
    try:
        differences = _differences(before.data, after.data)
    except RecursionError:  # pragma: no cover - safe_load_all recurses deeper first
        differences = []
    ok = (
        new.value == wanted
        and new.literal == literal
        and new.start == old.start
        and new_text[: old.start] == before.text[: old.start]
        and new_text[old.start + len(literal) :] == before.text[old.end :]
        and [(p, a, b) for p, a, b in differences if type(a) is type(b) is int] == expected
        and len(differences) == 1
    )
    if not ok:
        raise TfvarsError(
            f"{filename}: refusing to write, re-parsing the patched file changed more than "
            f"{address.text}"
        )


def _differences(old: Any, new: Any) -> list[tuple[tuple[Any, ...], Any, Any]]:
    """Where the loaded data ``old`` and ``new`` differ: (path, old, new), at most two
    (enough to tell "exactly one"). Shared (aliased) containers are visited once per
    place they appear, so an edit inside one shows up once per copy."""
    found: list[tuple[tuple[Any, ...], Any, Any]] = []
    ancestors: set[tuple[int, int]] = set()

    def walk(a: Any, b: Any, path: tuple[Any, ...]) -> None:
        if len(found) > 1:
            return
        pairs: list[tuple[Any, Any, Any]]
        if isinstance(a, dict) and isinstance(b, dict):
            if list(a) != list(b):
                found.append((path, a, b))
                return
            pairs = [(key, a[key], b[key]) for key in a]
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                found.append((path, a, b))
                return
            pairs = [(i, x, y) for i, (x, y) in enumerate(zip(a, b, strict=True))]
        else:
            if type(a) is not type(b) or not _same(a, b):
                found.append((path, a, b))
            return
        marker = (id(a), id(b))
        if marker in ancestors:  # a recursive alias (&a [*a]): compared further up
            return
        ancestors.add(marker)
        for key, x, y in pairs:
            walk(x, y, (*path, key))
        ancestors.discard(marker)

    walk(old, new, ())
    return found


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)
