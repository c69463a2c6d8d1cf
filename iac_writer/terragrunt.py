"""Read and surgically patch one number in the ``inputs`` of a Terragrunt unit (``terragrunt.hcl``).

Terragrunt hands a unit's ``inputs = { ... }`` to Terraform as ``TF_VAR_*`` variables. An
address names a key path inside that object: ``web_min_size`` is ``inputs.web_min_size``,
``capacity.web.min_size`` is ``min_size`` in ``inputs = { capacity = { web = { ... } } }``
(keys bare or quoted, ``=`` or ``:``, as in :mod:`forescale.iac_writer.tfvars`). The rules,
in order:

1. **The file is HCL** (UTF-8, a BOM kept, CRLF kept), parsed by python-hcl2 with
   positions. Blocks are allowed (``include``, ``terraform``, ``dependency``, ``locals``,
   ``generate``, ``remote_state``, ``feature``, ...) and never looked into for the value:
   only the top-level ``inputs`` attribute is.
2. **The value must be a number literal written in this file**: ``inputs`` itself an object
   literal (``{ ... }``), every key on the path an object literal, the last one a number
   (``4``, ``-3``, ``1e3``). Terragrunt merges an ``include``-d file's inputs *under* this
   file's: a key found here is the one Terraform gets (shallow and deep merge alike), so the
   literal found here is the value in effect. (A ``-var-file`` from ``extra_arguments`` or
   from forescale's own ``var_files`` would still win over every input: Terraform gives
   ``-var-file`` precedence over ``TF_VAR_*``. The plan guard sees that in the plan.)
3. **The edit replaces only the literal's characters**; comments, alignment, heredocs, the
   other blocks and every other byte stay. The patched text is parsed again and must differ
   from the original in that value only (python-hcl2's evaluation of the whole file, minus
   the target, must be equal), as in :mod:`~forescale.iac_writer.tfvars`.
4. **Refusals** are one line (:class:`~forescale.errors.TfvarsError` and subclasses), the
   file untouched, and say *where the value comes from* when it is not a literal here:

   * an expression: ``local.x`` (naming the local's line and definition, e.g.
     ``read_terragrunt_config(find_in_parent_folders("env.hcl"))``),
     ``dependency.<name>.outputs.<x>`` (naming the dependency's ``config_path``),
     ``include.<name>.…`` (naming the include's ``path``), ``feature.<name>.value``,
     ``var.x``, ``get_env(...)``, ``read_terragrunt_config(...)``, ``file(...)``,
     ``run_cmd(...)``, arithmetic, conditionals, function calls;
   * ``inputs`` built by an expression (``merge(...)``, ``local.inputs``);
   * an address not in this file's ``inputs`` (or no ``inputs`` at all) while the file has
     ``include`` blocks: the value may come from the included file, whose ``path``
     expression (and ``merge_strategy``) the message names; forescale does not edit it;
   * no ``inputs``, a duplicated ``inputs`` or key, a computed key, not a number literal
     (string, bool, null, list, heredoc), not UTF-8, not HCL, an invalid address.

:func:`locate`, :func:`patch` and :func:`put_literal` are pure and return the records of
:mod:`~forescale.iac_writer.tfvars` (``TfvarsValue``, ``TfvarsChange``; ``apply_change``
writes the latter with compare-and-swap). :class:`TerragruntTarget` is the
:class:`~forescale.iac_writer.target.Target` for ``iac.var_file: terragrunt.hcl``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import NoReturn

from lark import Token, Tree

from forescale.errors import TfvarsTargetError
from forescale.iac_writer import files
from forescale.iac_writer.target import FileKind, InPlaceTarget
from forescale.iac_writer.tfvars import (
    TfvarsChange,
    TfvarsValue,
    _decode,
    _first_token,
    _HclDocument,
    _is_tree,
    _line_of,
    _parse_address,
    _patch,
    _put_literal,
    _token_span,
)

__all__ = [
    "TerragruntTarget",
    "locate",
    "patch",
    "plan_change",
    "put_literal",
    "read_value",
]

INPUTS = "inputs"
"""The top-level attribute Terragrunt passes to Terraform as ``TF_VAR_*`` variables."""

_SHOWN_MAX = 80  # characters of an expression quoted in a refusal
# Functions whose result comes from outside this file: named as the value's source.
_OUTSIDE_FUNCTIONS = {
    "read_terragrunt_config": "another Terragrunt file",
    "read_tfvars_file": "a variable file",
    "file": "a file",
    "templatefile": "a file",
    "sops_decrypt_file": "an encrypted file",
    "get_env": "the environment",
    "run_cmd": "a command's output",
}


# --------------------------------------------------------------------------- public API


def locate(data: bytes, address: str, *, filename: str = "terragrunt.hcl") -> TfvarsValue:
    """The number literal at ``inputs.<address>`` in the Terragrunt file content ``data``.

    ``filename`` is used in messages. Raises :class:`TfvarsParseError` if the file does not
    parse and :class:`TfvarsTargetError` if the value is missing, duplicated or not a
    number literal written in this file (the message says where it comes from instead).
    """
    parts = _parse_address(address, filename)
    _bom, text = _decode(data, filename)
    return _TerragruntDocument(text, filename).locate(parts)


def patch(
    data: bytes, address: str, new_value: int, *, filename: str = "terragrunt.hcl"
) -> TfvarsChange:
    """Plan setting ``inputs.<address>`` to ``new_value`` (capacity units); no I/O.

    Only the literal's characters are replaced (``new_bytes`` equals ``data`` when the
    current value is numerically equal); the patched text is re-parsed and must differ in
    that value only. ``new_value`` must be a whole number (bools, NaN, fractions refused).
    """
    return _patch(data, address, new_value, filename=filename, parse=_TerragruntDocument)


def put_literal(
    data: bytes, address: str, literal: str, *, filename: str = "terragrunt.hcl"
) -> TfvarsChange:
    """Plan putting back the exact characters ``literal`` (a whole number that stood there
    before, e.g. ``4.0``) at ``inputs.<address>``; no I/O. Used to undo forescale's edit."""
    return _put_literal(data, address, literal, filename=filename, parse=_TerragruntDocument)


def read_value(path: str | os.PathLike[str], address: str) -> TfvarsValue:
    """Read the Terragrunt file at ``path`` and return the literal at ``inputs.<address>``."""
    name = os.fspath(path)
    return locate(_read(name), address, filename=name)


def plan_change(path: str | os.PathLike[str], address: str, new_value: int) -> TfvarsChange:
    """Read the Terragrunt file at ``path`` and plan setting ``inputs.<address>``; no write
    (write it with :func:`forescale.iac_writer.tfvars.apply_change`)."""
    name = os.fspath(path)
    return patch(_read(name), address, new_value, filename=name)


def _read(name: str) -> bytes:
    data = files.read_bytes(name)
    assert data is not None  # missing_ok is False
    return data


# --------------------------------------------------------------------------- target


class TerragruntTarget(InPlaceTarget):
    """A number in a Terragrunt unit's ``inputs`` (``terragrunt.hcl``), edited in place.

    ``TerragruntTarget(path, address)``: ``path`` the ``terragrunt.hcl`` file, ``address``
    the key path inside ``inputs`` (``capacity.web.min_size``). Writes and undoes with the
    compare-and-swap rules of :class:`~forescale.iac_writer.target.Target`.
    """

    KIND = FileKind.TERRAGRUNT


# --------------------------------------------------------------------------- document


@dataclasses.dataclass(frozen=True, slots=True)
class _Block:
    """A top-level block: ``kind "label" { attributes }``; ``line`` is 1-based."""

    kind: str
    label: str | None
    line: int
    attributes: dict[str, Tree[Token]]  # name -> attribute (first one of each name)


class _TerragruntDocument(_HclDocument):
    """A ``terragrunt.hcl``: the ``.tfvars`` HCL document plus blocks, whose value lives in
    ``inputs``."""

    TOOL = "Terragrunt"

    def __init__(self, text: str, filename: str) -> None:
        self.blocks: list[_Block] = []  # filled by _block() while the base class parses
        super().__init__(text, filename)

    # ------------------------------------------------------------ hooks of the base class

    def _block(self, block: Tree[Token]) -> None:
        kind = str(_first_token(block.children[0]))
        label: str | None = None
        body: Tree[Token] | None = None
        for child in block.children[1:]:
            if _is_tree(child, "body"):
                body = child
                break
            if label is None and _is_tree(child, "string"):
                label = self._static_string(child)
            elif label is None and _is_tree(child, "identifier"):
                label = str(_first_token(child))
        attributes: dict[str, Tree[Token]] = {}
        for item in body.children if body is not None else ():
            if _is_tree(item, "attribute"):
                attributes.setdefault(str(_first_token(item.children[0])), item)
        self.blocks.append(
            _Block(kind=kind, label=label, line=block.meta.line, attributes=attributes)
        )

    def reparse(self, text: str) -> _TerragruntDocument:
        return _TerragruntDocument(text, self.filename)

    def value_path(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        return (INPUTS, *parts)

    # ------------------------------------------------------------ locate

    def locate(self, parts: tuple[str, ...]) -> TfvarsValue:
        address = ".".join(parts)
        matches = self._assignments(INPUTS)
        if not matches:
            missing = f"{self.filename}: no {INPUTS} = {{ ... }} in this file"
            raise TfvarsTargetError(
                missing + self._include_hint(address)
                if self._includes()
                else f"{missing}; add {address} to {INPUTS} for forescale to manage it here"
            )
        node: Tree[Token] | Token = matches[0].children[2]
        path: tuple[str, ...] = (INPUTS,)
        for key in parts:
            if self._kind(node) == "an expression":
                self._refuse_expression(node, ".".join(path))
            if self._is_object(node):
                self._require_key(node, path, key, address)
            node = self._member(node, path, key)  # refuses a string, list, ... with its kind
            path = (*path, key)
        shown = ".".join(path)
        try:
            found = self._number(node, shown)
        except TfvarsTargetError:
            if self._kind(node) == "an expression":  # not -4: that is a number literal
                self._refuse_expression(node, shown)
            raise
        return dataclasses.replace(found, address=address)

    @staticmethod
    def _is_object(node: Tree[Token] | Token) -> bool:
        return (
            _is_tree(node, "expr_term")
            and len(node.children) == 1
            and _is_tree(node.children[0], "object")
        )

    def _require_key(
        self, node: Tree[Token] | Token, path: tuple[str, ...], key: str, address: str
    ) -> None:
        """Refuse a key that is not in the object literal ``node`` (at ``path``), naming
        the included files it may come from. Computed keys and duplicates are left to
        :meth:`_member`, which refuses them."""
        assert isinstance(node, Tree)
        obj = node.children[0]
        assert isinstance(obj, Tree)
        keys = [
            self._key(elem.children[0]) for elem in obj.children if _is_tree(elem, "object_elem")
        ]
        if key in keys or None in keys:
            return
        where = ".".join(path)
        raise TfvarsTargetError(
            f"{self.filename}:{obj.meta.line}: {where}.{key} not found ({where} has no key "
            f"{key!r}){self._include_hint(address)}"
        )

    # ------------------------------------------------------------ where a value comes from

    def _code(self, node: Tree[Token] | Token) -> str:
        """The source text of the expression ``node`` without the comment that an operator
        expression's parse tree swallows at its end (``local.a * 2 # note``)."""
        start, end = _token_span(node)
        last: Tree[Token] | Token = node
        while isinstance(last, Tree):
            children = [c for c in last.children if not _is_tree(c, "new_line_or_comment")]
            if not children:
                break
            last = children[-1]
            end = _token_span(last)[1]
        return self.text[start:end]

    def _includes(self) -> list[_Block]:
        return [block for block in self.blocks if block.kind == "include"]

    def _include_hint(self, address: str) -> str:
        """``; it may come from the included file ...`` when there are includes, else ``""``."""
        includes = self._includes()
        if not includes:
            return ""
        named = ", ".join(self._describe_include(block) for block in includes)
        which = "file" if len(includes) == 1 else "files"
        return (
            f"; {address} may come from the included {which}: {named}, which forescale does "
            f"not edit; set it in this file's {INPUTS} for forescale to manage it here"
        )

    def _describe_include(self, block: _Block) -> str:
        """``include "root" (line 5: path = ..., merge_strategy = "deep")``."""
        name, details = self._include_parts(block)
        return f"{name} ({details})"

    def _include_parts(self, block: _Block) -> tuple[str, str]:
        """``('include "root"', 'line 5: path = ..., merge_strategy = "deep"')``."""
        name = "include" if block.label is None else f'include "{block.label}"'
        settings = [
            f"{attribute} = {_shown(self._code(block.attributes[attribute].children[2]))}"
            for attribute in ("path", "merge_strategy")
            if attribute in block.attributes
        ]
        return name, f"line {block.line}" + (f": {', '.join(settings)}" if settings else "")

    def _refuse_expression(self, node: Tree[Token] | Token, shown: str) -> NoReturn:
        """Refuse the expression ``node`` at ``shown``, saying where its value comes from."""
        start, _ = _token_span(node)
        where = f"{self.filename}:{_line_of(self.text, start)}"
        source = self._code(node)
        term = node.children[0] if _is_tree(node, "expr_term") and len(node.children) == 1 else None
        call = str(_first_token(term)) if _is_tree(term, "function_call") else None
        origins = self._origins(node)
        if _is_tree(term, "get_attr_expr_term", "index_expr_term") and len(origins) == 1:
            how = f"comes from {origins[0]}"
        elif call in _OUTSIDE_FUNCTIONS:
            how = f"comes from {_OUTSIDE_FUNCTIONS[call]}: {_shown(source)}"
        else:
            verb = "is built by" if call == "merge" else "is computed by"
            how = f"{verb} {_shown(source)}" + (f" from {'; '.join(origins)}" if origins else "")
        target = (
            f"an {INPUTS} = {{ ... }} object literal"
            if shown == INPUTS
            else "a literal in this file"
        )
        raise TfvarsTargetError(
            f"{where}: {shown} {how}, not {target}; refusing to edit (forescale changes only "
            f"a number written in this file's {INPUTS} = {{ ... }})"
        )

    def _origins(self, node: Tree[Token] | Token) -> list[str]:
        """Where the values ``node`` reads come from, in source order, each once."""
        found: list[str] = []
        self._collect(node, found)
        return list(dict.fromkeys(found))

    def _collect(self, node: Tree[Token] | Token, found: list[str]) -> None:
        if not isinstance(node, Tree):
            return
        if node.data in ("get_attr_expr_term", "index_expr_term"):
            names, indexes = _traversal(node)
            if names:
                found.append(self._describe_reference(names, self._code(node)))
                for index in indexes:
                    self._collect(index, found)
                return
        if node.data == "function_call":
            name = str(_first_token(node))
            if name in _OUTSIDE_FUNCTIONS:
                found.append(f"{_OUTSIDE_FUNCTIONS[name]}: {_shown(self._code(node))}")
                return
        for child in node.children:
            self._collect(child, found)

    def _describe_reference(self, names: list[str], source: str) -> str:
        """``local.env (locals, line 3: env = ...)`` and the like for a reference."""
        shown = _shown(source)
        root, name = names[0], names[1] if len(names) > 1 else None
        if root == "local" and name is not None:
            for local in self.blocks:
                if local.kind == "locals" and name in local.attributes:
                    attribute = local.attributes[name]
                    value = self._code(attribute.children[2])
                    return f"{shown} (locals, line {attribute.meta.line}: {name} = {_shown(value)})"
            return f"{shown} (no local {name!r} in this file)"
        if root in ("dependency", "include", "feature") and name is not None:
            block = next(
                (b for b in self.blocks if b.kind == root and b.label == name),
                None,
            )
            if block is None:
                return f'{shown} (no {root} "{name}" block in this file)'
            if root == "include":
                name, details = self._include_parts(block)
                return f"{shown} (the file included by {name}, {details})"
            attribute_name = "config_path" if root == "dependency" else "default"
            details = f"line {block.line}"
            if attribute_name in block.attributes:
                value = self._code(block.attributes[attribute_name].children[2])
                details += f": {attribute_name} = {_shown(value)}"
            kind = "the outputs of dependency" if root == "dependency" else "feature flag"
            return f'{shown} ({kind} "{name}", {details})'
        if root == "var":
            return f"{shown} (a Terraform variable, which terragrunt.hcl cannot read)"
        if root == "values":
            return f"{shown} (the values a terragrunt.stack.hcl passes in)"
        return shown


def _traversal(node: Tree[Token]) -> tuple[list[str], list[Tree[Token]]]:
    """``local.a.b[0]`` as (["local", "a", "b"], [index expressions]); ``([], [])`` when
    it does not start at a name (``(expr).x``, ``func().x``)."""
    names: list[str] = []
    indexes: list[Tree[Token]] = []
    current: Tree[Token] | Token = node
    while True:
        if _is_tree(current, "expr_term") and len(current.children) == 1:
            current = current.children[0]
            continue
        if _is_tree(current, "get_attr_expr_term", "index_expr_term"):
            base, step = current.children[0], current.children[1]
            if _is_tree(step, "get_attr"):
                names.insert(0, str(_first_token(step.children[-1])))
            elif isinstance(step, Tree):
                indexes.insert(0, step)
            current = base
            continue
        if _is_tree(current, "identifier"):
            names.insert(0, str(_first_token(current)))
            return names, indexes
        return [], []


def _shown(source: str) -> str:
    """An expression on one line, shortened for a message."""
    flat = " ".join(source.split())
    return flat if len(flat) <= _SHOWN_MAX else flat[: _SHOWN_MAX - 3] + "..."
