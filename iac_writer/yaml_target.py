"""A capacity number in a Kubernetes YAML file as a :class:`~forescale.iac_writer.target.Target`.

The file is a Helm chart's values file, a KEDA ``ScaledObject``, an HPA or any manifest;
the address is :mod:`~forescale.iac_writer.yamlvalues`' (``web.autoscaling.minReplicas``,
``doc[HorizontalPodAutoscaler/web].spec.minReplicas``). Reading, compare-and-swap writing
and undo are the shared ones of :mod:`~forescale.iac_writer.target` (all file access through
:mod:`~forescale.iac_writer.files`); only the integer's characters change.

``target.py`` imports this module and this module imports ``target.py``: import
:class:`YamlTarget` inside the function that needs it there (``file_target``). The
reading and patching is :class:`~forescale.iac_writer.target.InPlaceTarget`'s with the YAML
codec.
"""

from __future__ import annotations

from forescale.iac_writer.target import FileKind, InPlaceTarget

__all__ = ["YamlTarget"]


class YamlTarget(InPlaceTarget):
    """The integer at ``address`` in the YAML file ``path``, edited in place.

    ``propose`` refuses a negative or non-integer number of units (replicas); ``read``,
    ``propose`` and ``undo`` refuse, with one line, everything
    :mod:`~forescale.iac_writer.yamlvalues` refuses (quoted numbers, anchors reused by
    aliases, templates, several documents without ``doc[...]``, ...).

    Constructed as ``YamlTarget(path, address)`` (a :class:`~pathlib.Path` and a
    :mod:`~forescale.iac_writer.yamlvalues` address)."""

    KIND = FileKind.YAML
