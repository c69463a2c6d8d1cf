"""What a corpus case expects of an in-place edit, shared by the tfvars, Terragrunt and
YAML corpus tests."""

from __future__ import annotations

import dataclasses

from forescale.errors import TfvarsError, TfvarsParseError, TfvarsTargetError


@dataclasses.dataclass(frozen=True)
class Edit:
    """Expect the literal ``literal`` on ``line`` to be replaced by the new value (in a
    YAML stream: the value sits in document ``doc``)."""

    literal: str
    line: int
    doc: int = 0


@dataclasses.dataclass(frozen=True)
class Same:
    """Expect no change: the current literal is numerically equal to the new value."""

    literal: str


@dataclasses.dataclass(frozen=True)
class Refuse:
    """Expect ``exc`` with ``fragment`` in its one-line message, and the file untouched."""

    exc: type[TfvarsError]
    fragment: str


Outcome = Edit | Same | Refuse
T, P = TfvarsTargetError, TfvarsParseError
