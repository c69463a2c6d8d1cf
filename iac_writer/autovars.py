"""The second way to write: a generated ``*.auto.tfvars.json`` that forescale owns.

The file holds only forescale's variables (e.g. ``{"web_min_size": 11}``); Terraform loads
``*.auto.tfvars.json`` automatically. **The precedence trap:** a ``-var-file`` on the
command line overrides every ``*.auto.tfvars*`` file, so when the team passes var files
forescale passes its own file *last* (see :class:`forescale.iac_writer.terraform.TerraformRunner`'s
``scaler_var_file``). Maps are replaced whole by a var file, so only plain variables can
be owned this way.

Writes are atomic (temp file in the same directory, fsync, ``os.replace``, fsync the
directory), compare-and-swap on the bytes read at plan time, and ``allow_nan=False``:
Terraform rejects ``NaN``/``Infinity`` in JSON and one bad file breaks every run.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from forescale.errors import TfvarsError, TfvarsParseError, TfvarsTargetError
from forescale.iac_writer import files
from forescale.iac_writer.tfvars import _reject_constant


@dataclass(frozen=True, kw_only=True, slots=True)
class AutoVarsChange:
    """Set ``variable`` to ``new_value`` in forescale's own JSON var file."""

    path: Path
    variable: str
    old_value: int | float | None  # None: not set (or no file yet)
    new_value: int
    old_bytes: bytes | None  # None: the file does not exist
    new_bytes: bytes
    diff: str

    @property
    def changed(self) -> bool:
        return self.old_bytes != self.new_bytes


def parse_auto(data: bytes, path: Path) -> dict[str, object]:
    """The variables in forescale's file (pure); a clear error when it is not a JSON object."""
    try:
        content = json.loads(data.decode("utf-8-sig"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TfvarsParseError(f"{path}: not valid JSON ({exc}); fix or delete it") from None
    if not isinstance(content, dict):
        raise TfvarsParseError(f"{path}: must hold a JSON object of variables")
    return content


def render_auto(content: dict[str, object]) -> bytes:
    """The file's bytes for ``content`` (sorted keys, two-space indent, no NaN)."""
    return (json.dumps(content, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def _load(path: Path) -> tuple[bytes | None, dict[str, object]]:
    data = files.read_bytes(path, missing_ok=True)
    return (None, {}) if data is None else (data, parse_auto(data, path))


def read_auto(path: Path, variable: str) -> int | float | None:
    """The value forescale last wrote for ``variable``, or None when it has not."""
    _, content = _load(path)
    value = content.get(variable)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TfvarsTargetError(f"{path}: {variable} is not a number ({value!r})")
    return value


def plan_auto_change(path: Path, variable: str, new_value: int) -> AutoVarsChange:
    """Read the file and compute the new one; nothing is written."""
    old_bytes, _ = _load(path)
    return auto_change(path, old_bytes, variable, new_value)


def auto_change(
    path: Path, old_bytes: bytes | None, variable: str, new_value: int
) -> AutoVarsChange:
    """Set ``variable`` to ``new_value`` in the file content ``old_bytes`` (None: no file
    yet); pure."""
    if isinstance(new_value, bool) or not isinstance(new_value, int):
        raise TfvarsError(f"{path}: {variable} must be set to a whole number, not {new_value!r}")
    content = {} if old_bytes is None else parse_auto(old_bytes, path)
    old_value = content.get(variable)
    content[variable] = new_value
    new_bytes = render_auto(content)
    old_text = "" if old_bytes is None else old_bytes.decode("utf-8-sig")
    diff = "".join(
        difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new_bytes.decode().splitlines(keepends=True),
            fromfile="/dev/null" if old_bytes is None else f"a/{path}",
            tofile=f"b/{path}",
        )
    )
    return AutoVarsChange(
        path=path,
        variable=variable,
        old_value=old_value
        if isinstance(old_value, int | float) and math.isfinite(old_value)
        else None,
        new_value=new_value,
        old_bytes=old_bytes,
        new_bytes=new_bytes,
        diff=diff,
    )


def _write(path: Path, expected: bytes | None, content: bytes | None) -> None:
    """Compare-and-swap ``path`` from ``expected`` to ``content`` (None: absent)."""
    what = f"{path}"
    if content is None:
        if expected is not None:
            files.remove_if(path, expected_sha256=str(files.sha256(expected)), what=what)
        return
    files.write_if(path, content, expected_sha256=files.sha256(expected), what=what)


def apply_auto_change(change: AutoVarsChange) -> None:
    """Write the change (atomic, compare-and-swap). A no-op change touches nothing."""
    if change.changed:
        _write(change.path, change.old_bytes, change.new_bytes)


def restore_auto_change(change: AutoVarsChange) -> None:
    """Undo a written change: put the old bytes back, or remove a file forescale created."""
    if change.changed:
        _write(change.path, change.new_bytes, change.old_bytes)
