"""A capacity number in a Kubernetes YAML file as a :class:`~forescale.iac_writer.target.Target`.

The file is a Helm chart's values file, a KEDA ``ScaledObject``, an HPA or any manifest;
the address is :mod:`~forescale.iac_writer.yamlvalues`' (``web.autoscaling.minReplicas``,
``doc[HorizontalPodAutoscaler/web].spec.minReplicas``). Reading, compare-and-swap writing
and undo are the shared ones of :mod:`~forescale.iac_writer.target` (all file access through
:mod:`~forescale.iac_writer.files`); this module only says how the YAML is read and patched:
only the integer's characters change.

``target.py`` imports this module and this module imports ``target.py``: import
:class:`YamlTarget` inside the function that needs it there (``target_for``).
"""

from __future__ import annotations

from forescale.errors import TfvarsError
from forescale.iac_writer import files
from forescale.iac_writer.target import Edit, Snapshot, _FileTarget
from forescale.iac_writer.yamlvalues import locate, patch, put_literal

__all__ = ["YamlTarget"]


class YamlTarget(_FileTarget):
    """The integer at ``address`` in the YAML file ``path``, edited in place.

    ``propose`` refuses a negative or non-integer number of units (replicas); ``read``,
    ``propose`` and ``undo`` refuse, with one line, everything
    :mod:`~forescale.iac_writer.yamlvalues` refuses (quoted numbers, anchors reused by
    aliases, templates, several documents without ``doc[...]``, ...).

    Constructed as ``YamlTarget(path, address)`` (a :class:`~pathlib.Path` and a
    :mod:`~forescale.iac_writer.yamlvalues` address)."""

    def _snapshot(self, data: bytes | None) -> Snapshot:
        if data is None:
            raise TfvarsError(f"{self._path}: cannot read: no such file")
        found = locate(data, self._address, filename=str(self._path))
        return Snapshot(
            path=self._path,
            address=self._address,
            sha256=files.sha256(data),
            literal=found.literal,
            value=found.value,
        )

    def _edit(self, data: bytes | None, before: Snapshot, units: int) -> Edit:
        assert data is not None  # _snapshot refused an absent file
        change = patch(data, self._address, units, filename=str(self._path))
        return Edit(
            before=before,
            units=units,
            literal=str(change.new_value) if change.changed else change.old.literal,
            new_bytes=change.new_bytes,
            diff=change.diff,
        )

    def put(self, data: bytes, literal: str | None, *, file_was_absent: bool) -> bytes | None:
        if literal is None:
            raise TfvarsError(f"{self._path}: no value of {self._address} recorded to put back")
        return put_literal(data, self._address, literal, filename=str(self._path)).new_bytes
