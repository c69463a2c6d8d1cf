"""What kind of file holds a managed number, by the file's name (one rule for the settings
that validate a service and the IaC writer that edits the file). No dependencies."""

from __future__ import annotations

import enum
from pathlib import Path

__all__ = ["FileKind", "file_kind"]


class FileKind(enum.StrEnum):
    """What kind of file holds a managed number (by its name: :func:`file_kind`)."""

    TFVARS = "tfvars"  # .tfvars / .tfvars.json (and any other name): Terraform reads it
    TERRAGRUNT = "terragrunt"  # terragrunt.hcl (any *.hcl): a value inside ``inputs``
    YAML = "yaml"  # .yaml / .yml: Helm values, a KEDA ScaledObject, an HPA, any manifest

    @property
    def runs_terraform(self) -> bool:
        """Whether a plan/apply of this file is Terraform's (YAML is a GitOps tool's)."""
        return self is not FileKind.YAML


def file_kind(path: Path | str) -> FileKind:
    """The kind of ``path`` by its name: ``*.yaml``/``*.yml`` YAML, ``*.hcl`` Terragrunt,
    anything else a Terraform variable file."""
    name = Path(path).name.lower()
    if name.endswith((".yaml", ".yml")):
        return FileKind.YAML
    if name.endswith(".hcl"):
        return FileKind.TERRAGRUNT
    return FileKind.TFVARS
