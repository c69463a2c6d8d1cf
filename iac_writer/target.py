"""Where a service's capacity lives: one interface, one implementation per way of writing.

A :class:`Target` is one managed number in one file. It can

* :meth:`~Target.read` what the file holds now (a :class:`Snapshot`: the bytes' SHA-256,
  the value's characters and the number they denote),
* :meth:`~Target.propose` an edit to a number of units (new bytes and a unified diff,
  nothing written),
* :meth:`~Target.write` that edit with compare-and-swap (the file must still be the
  snapshot the edit was made from),
* :meth:`~Target.undo` a write from its :class:`Written` record alone — never from the file
  as it is now:

  1. the file is exactly what forescale wrote: it gets back what it held before (byte for
     byte for a ``.tfvars`` file);
  2. the file changed elsewhere but the managed value still holds forescale's characters:
     only that value is put back (the other edits stay);
  3. the file is already as it was before: nothing to do;
  4. the managed value itself was changed by someone else: nothing is touched and the
     value found is reported (a conflict: forescale never writes over a human).

Two ways of writing (``iac.write``): :class:`TfvarsTarget` edits the team's variable file in
place (``.tfvars`` or ``.tfvars.json``, only the value's characters change; a Terragrunt
unit's ``inputs`` and a Kubernetes YAML file are edited in place the same way by
``TerragruntTarget`` and ``YamlTarget``, chosen by the file's name: :func:`file_kind`);
:class:`AutoVarsTarget` owns a ``*.auto.tfvars.json`` holding only forescale's variables
(until forescale has written the variable, the current value is the team's file's).
:func:`target_for` is the one place that chooses between them.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypedDict

from forescale.errors import TfvarsConflict, TfvarsError
from forescale.file_kinds import FileKind, file_kind
from forescale.iac_writer import files
from forescale.iac_writer.autovars import auto_change, parse_auto, render_auto
from forescale.iac_writer.tfvars import TfvarsChange, TfvarsValue, locate, patch, put_literal

__all__ = [
    "AutoVarsTarget",
    "Edit",
    "FileKind",
    "InPlaceTarget",
    "MultiTarget",
    "Snapshot",
    "Target",
    "TfvarsTarget",
    "Undo",
    "UndoResult",
    "Written",
    "file_kind",
    "file_target",
    "target_for",
]


_Locate = Callable[..., TfvarsValue]
_Change = Callable[..., TfvarsChange]


def _codec(kind: FileKind) -> tuple[_Locate, _Change, _Change]:
    """locate, patch and put_literal of one kind of file (same signatures, same records)."""
    if kind is FileKind.YAML:
        from forescale.iac_writer import yamlvalues

        return yamlvalues.locate, yamlvalues.patch, yamlvalues.put_literal
    if kind is FileKind.TERRAGRUNT:
        from forescale.iac_writer import terragrunt

        return terragrunt.locate, terragrunt.patch, terragrunt.put_literal
    return locate, patch, put_literal


@dataclass(frozen=True, kw_only=True, slots=True)
class Snapshot:
    """What the managed file held when forescale read it.

    ``sha256`` is None when the file does not exist; ``literal`` is the value's characters
    in the written file (None: not set there); ``value`` the current capacity in units (for
    an auto file without the variable: the team's file's value)."""

    path: Path
    address: str
    sha256: str | None
    literal: str | None
    value: int | float


@dataclass(frozen=True, kw_only=True, slots=True)
class Edit:
    """Setting the managed value to ``units`` starting from ``before``; nothing written."""

    before: Snapshot
    units: int
    literal: str
    new_bytes: bytes
    diff: str

    @property
    def new_sha256(self) -> str:
        return str(files.sha256(self.new_bytes))

    @property
    def changed(self) -> bool:
        return self.new_sha256 != self.before.sha256

    def written(self) -> Written:
        """The record that lets this write be undone later without trusting the file."""
        return Written(
            sha_before=self.before.sha256,
            literal_before=self.before.literal,
            sha_after=self.new_sha256,
            literal_after=self.literal,
        )


class WrittenFields(TypedDict):
    """:class:`Written` as the audit record's fields."""

    file_sha_before: str | None
    literal_before: str | None
    file_sha_after: str
    literal_after: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Written:
    """What the file held before forescale's write and what forescale wrote (kept in the
    audit record before the write happens)."""

    sha_before: str | None
    literal_before: str | None
    sha_after: str
    literal_after: str

    def record_fields(self) -> WrittenFields:
        """These four as the audit record's fields (``file_sha_before`` ...)."""
        return {
            "file_sha_before": self.sha_before,
            "literal_before": self.literal_before,
            "file_sha_after": self.sha_after,
            "literal_after": self.literal_after,
        }


class Undo(enum.Enum):
    RESTORED = "restored byte for byte"
    VALUE_ONLY = "forescale's value undone, the other edits in the file kept"
    ALREADY = "already as it was before forescale's write"
    CONFLICT = "changed by someone else: left as found"


@dataclass(frozen=True, kw_only=True, slots=True)
class UndoResult:
    outcome: Undo
    found: str | None  # the managed value's characters found in the file

    def describe(self, target: Target) -> str:
        if self.outcome is Undo.CONFLICT:
            found = "absent" if self.found is None else self.found
            return (
                f"{target.path}: {target.address} was changed outside forescale (now {found}); "
                "left as found"
            )
        return f"{target.path}: {self.outcome.value}"


class Target(Protocol):
    """One managed number in one file (see the module docstring)."""

    @property
    def path(self) -> Path: ...

    @property
    def address(self) -> str: ...

    @property
    def sources(self) -> tuple[Path, ...]:
        """Every file the current value is read from (to notice a change cheaply)."""
        ...

    def read(self) -> Snapshot: ...

    def snapshot(self, data: bytes | None) -> Snapshot:
        """The managed value as ``data`` (another version of the file) holds it."""
        ...

    def propose(self, units: int, before: Snapshot | None = None) -> Edit: ...

    def write(self, edit: Edit) -> None: ...

    def undo(self, written: Written) -> UndoResult: ...

    def put(self, data: bytes, literal: str | None, *, file_was_absent: bool) -> bytes | None: ...


class _FileTarget:
    """The shared CAS write and undo logic; subclasses know their file format."""

    def __init__(self, path: Path, address: str) -> None:
        self._path = path
        self._address = address

    @property
    def path(self) -> Path:
        return self._path

    @property
    def address(self) -> str:
        return self._address

    @property
    def sources(self) -> tuple[Path, ...]:
        return (self._path,)

    # format-specific
    def _snapshot(self, data: bytes | None) -> Snapshot:
        raise NotImplementedError

    def _edit(self, data: bytes | None, before: Snapshot, units: int) -> Edit:
        raise NotImplementedError

    def put(self, data: bytes, literal: str | None, *, file_was_absent: bool) -> bytes | None:
        """``data`` with the managed value's characters replaced by ``literal`` (None:
        remove it); None when the file should not exist any more."""
        raise NotImplementedError

    # shared
    def read(self) -> Snapshot:
        return self._snapshot(files.read_bytes(self._path, missing_ok=True))

    def snapshot(self, data: bytes | None) -> Snapshot:
        return self._snapshot(data)

    def propose(self, units: int, before: Snapshot | None = None) -> Edit:
        if isinstance(units, bool) or not isinstance(units, int) or units < 0:
            raise TfvarsError(
                f"{self._path}: {self._address} must be set to a whole number of units >= 0, "
                f"not {units!r}"
            )
        data = files.read_bytes(self._path, missing_ok=True)
        now = self._snapshot(data)
        if before is not None and now.sha256 != before.sha256:
            raise TfvarsConflict(
                f"{self._path}: changed since forescale read it; not writing over the change"
            )
        return self._edit(data, now, units)

    def write(self, edit: Edit) -> None:
        if not edit.changed:
            return
        files.write_if(
            self._path, edit.new_bytes, expected_sha256=edit.before.sha256, what=str(self._path)
        )

    def undo(self, written: Written) -> UndoResult:
        data = files.read_bytes(self._path, missing_ok=True)
        now = self._snapshot(data)
        if now.sha256 == written.sha_before:
            return UndoResult(outcome=Undo.ALREADY, found=now.literal)
        exact = now.sha256 == written.sha_after
        if not exact and now.literal != written.literal_after:
            return UndoResult(outcome=Undo.CONFLICT, found=now.literal)
        assert data is not None  # a file that holds forescale's value exists
        back = self.put(data, written.literal_before, file_was_absent=written.sha_before is None)
        if back is None:
            files.remove_if(self._path, expected_sha256=str(now.sha256), what=str(self._path))
        else:
            files.write_if(self._path, back, expected_sha256=now.sha256, what=str(self._path))
        restored = files.sha256(back) == written.sha_before
        return UndoResult(
            outcome=Undo.RESTORED if exact and restored else Undo.VALUE_ONLY,
            found=now.literal,
        )


class InPlaceTarget(_FileTarget):
    """One number in a file the team keeps, edited in place: only its characters change.
    The file's kind (:class:`FileKind`) says how it is read and patched; subclasses fix
    it, this class takes it from the file's name."""

    KIND: FileKind | None = None  # None: by the file's name

    def __init__(self, path: Path, address: str) -> None:
        super().__init__(path, address)
        self._locate, self._patch, self._put_literal = _codec(self.KIND or file_kind(path))

    def _snapshot(self, data: bytes | None) -> Snapshot:
        if data is None:
            raise TfvarsError(f"{self._path}: cannot read: no such file")
        found = self._locate(data, self._address, filename=str(self._path))
        return Snapshot(
            path=self._path,
            address=self._address,
            sha256=files.sha256(data),
            literal=found.literal,
            value=found.value,
        )

    def _edit(self, data: bytes | None, before: Snapshot, units: int) -> Edit:
        assert data is not None  # _snapshot refused an absent file
        change = self._patch(data, self._address, units, filename=str(self._path))
        new = self._locate(change.new_bytes, self._address, filename=str(self._path))
        return Edit(
            before=before,
            units=units,
            literal=new.literal,
            new_bytes=change.new_bytes,
            diff=change.diff,
        )

    def put(self, data: bytes, literal: str | None, *, file_was_absent: bool) -> bytes | None:
        if literal is None:
            raise TfvarsError(f"{self._path}: no value of {self._address} recorded to put back")
        changed = self._put_literal(data, self._address, literal, filename=str(self._path))
        return changed.new_bytes


class TfvarsTarget(InPlaceTarget):
    """A number in the team's ``.tfvars`` / ``.tfvars.json``, edited in place."""

    KIND = FileKind.TFVARS


class MultiTarget(_FileTarget):
    """Several numbers of one service in one variable file, edited together: ``min``,
    ``desired`` and ``max`` (any subset with ``min`` or ``desired``), one consistent edit
    and one compare-and-swap. For ``units``: min = desired = units and max =
    max(``max_base``, units) - so min <= desired <= max holds, and a ceiling raised ahead of
    a peak returns to the team's usual maximum after it. A snapshot's ``literal`` is the JSON
    of every managed value's characters; its ``value`` the min (else the desired)."""

    ROLES = ("min", "desired", "max")

    def __init__(
        self, path: Path, addresses: Mapping[str, str], *, max_base: int | None = None
    ) -> None:
        roles = {r: a for r, a in addresses.items() if r in self.ROLES}
        if not roles or ("min" not in roles and "desired" not in roles):
            raise TfvarsError(f"{path}: manage at least min or desired (got {sorted(roles)})")
        if "max" in roles and max_base is None:
            raise TfvarsError(f"{path}: managing max needs max_base, the usual maximum")
        super().__init__(path, ", ".join(f"{r}={roles[r]}" for r in self.ROLES if r in roles))
        self._roles = {r: roles[r] for r in self.ROLES if r in roles}
        self._max_base = max_base
        self._locate, self._patch, self._put_literal = _codec(file_kind(path))

    def _snapshot(self, data: bytes | None) -> Snapshot:
        if data is None:
            raise TfvarsError(f"{self._path}: cannot read: no such file")
        found = {r: self._locate(data, a, filename=str(self._path)) for r, a in self._roles.items()}
        main = found.get("min") or found["desired"]
        return Snapshot(
            path=self._path,
            address=self._address,
            sha256=files.sha256(data),
            literal=json.dumps({r: v.literal for r, v in found.items()}, sort_keys=True),
            value=main.value,
        )

    def values_for(self, units: int) -> dict[str, int]:
        out: dict[str, int] = {r: units for r in ("min", "desired") if r in self._roles}
        if "max" in self._roles:
            out["max"] = max(units, self._max_base or units)
        return out

    def _edit(self, data: bytes | None, before: Snapshot, units: int) -> Edit:
        assert data is not None
        new = data
        for role, value in self.values_for(units).items():
            new = self._patch(new, self._roles[role], value, filename=str(self._path)).new_bytes
        name = str(self._path)
        after = {r: self._locate(new, a, filename=name).literal for r, a in self._roles.items()}
        return Edit(
            before=before,
            units=units,
            literal=json.dumps(after, sort_keys=True),
            new_bytes=new,
            diff=_diff(data, new, str(self._path)),
        )

    def put(self, data: bytes, literal: str | None, *, file_was_absent: bool) -> bytes | None:
        if literal is None:
            raise TfvarsError(f"{self._path}: no values of {self._address} recorded to put back")
        for role, characters in json.loads(literal).items():
            data = self._put_literal(
                data, self._roles[role], characters, filename=str(self._path)
            ).new_bytes
        return data

    def expected(self, units: int) -> dict[str, int]:
        """What a plan for ``units`` must have been made with: {address: value}."""
        return {self._roles[r]: v for r, v in self.values_for(units).items()}


class AutoVarsTarget(_FileTarget):
    """forescale's own ``*.auto.tfvars.json``; ``fallback`` (the team's variable file)
    gives the current value until forescale has written the variable."""

    def __init__(self, path: Path, address: str, fallback: TfvarsTarget) -> None:
        super().__init__(path, address)
        self._fallback = fallback

    @property
    def sources(self) -> tuple[Path, ...]:
        return (self._path, self._fallback.path)

    def _snapshot(self, data: bytes | None) -> Snapshot:
        raw = None if data is None else parse_auto(data, self._path).get(self._address)
        if raw is None:
            value: int | float = self._fallback.read().value
            literal = None
        elif isinstance(raw, bool) or not isinstance(raw, int | float):
            raise TfvarsError(f"{self._path}: {self._address} is not a number ({raw!r})")
        else:
            value, literal = raw, json.dumps(raw)
        return Snapshot(
            path=self._path,
            address=self._address,
            sha256=files.sha256(data),
            literal=literal,
            value=value,
        )

    def _edit(self, data: bytes | None, before: Snapshot, units: int) -> Edit:
        change = auto_change(self._path, data, self._address, units)
        return Edit(
            before=before,
            units=units,
            literal=json.dumps(units),
            new_bytes=change.new_bytes,
            diff=change.diff,
        )

    def put(self, data: bytes, literal: str | None, *, file_was_absent: bool) -> bytes | None:
        content = parse_auto(data, self._path)
        if literal is None:
            content.pop(self._address, None)
            if not content and file_was_absent:
                return None
        else:
            content[self._address] = json.loads(literal)
        return render_auto(content)


def _diff(old: bytes, new: bytes, filename: str) -> str:
    from forescale.iac_writer.tfvars import _decode, _unified_diff

    return _unified_diff(_decode(old, filename)[1], _decode(new, filename)[1], filename)


def target_for(
    *,
    write: str,
    var_file: Path,
    auto_tfvars_file: Path,
    address: str,
) -> Target:
    """The target a service's ``iac`` settings describe (``write``: in_place|auto_tfvars)."""
    if write == "auto_tfvars":
        if file_kind(var_file) is not FileKind.TFVARS:
            raise TfvarsError(
                f"{var_file}: write: auto_tfvars works with Terraform variable files only"
            )
        return AutoVarsTarget(auto_tfvars_file, address, TfvarsTarget(var_file, address))
    if write == "in_place":
        return file_target(var_file, address)
    raise TfvarsError(f"unknown iac.write {write!r} (in_place or auto_tfvars)")


def file_target(path: Path, address: str) -> Target:
    """The number at ``address`` in ``path``, edited in place, by the file's kind."""
    kind = file_kind(path)
    if kind is FileKind.YAML:
        from forescale.iac_writer.yaml_target import YamlTarget

        return YamlTarget(path, address)
    if kind is FileKind.TERRAGRUNT:
        from forescale.iac_writer.terragrunt import TerragruntTarget

        return TerragruntTarget(path, address)
    return TfvarsTarget(path, address)
