"""Check a Terraform plan before forescale applies it (pure: plan JSON in, verdict out).

Input is the dict that ``terraform show -json PLANFILE`` prints (``format_version`` "0.x"
from Terraform 1.0-1.0.x, "1.x" from later releases). :func:`check_plan` refuses a plan
unless every change is one forescale is configured to make:

* the plan's ``format_version`` has a major version this code was written against;
* Terraform did not report planning errors (``errored``);
* every resource change other than ``["no-op"]`` and ``["read"]`` is an in-place
  ``["update"]`` of an allowed address. Creating, destroying and replacing
  (``["delete", "create"]`` or ``["create", "delete"]``) are refused unless explicitly
  allowed, and then only for allowed addresses. Unknown actions (e.g. ``["forget"]`` from
  newer releases) are refused;
* when a change is expected, the plan changes at least one resource. "No changes" after
  forescale wrote a new value usually means ``lifecycle { ignore_changes = [...] }``, a
  second controller that already set the value, or a variable the module does not use.

Address patterns are fnmatch-style but only ``*`` (any run of characters, dots and
brackets included) and ``?`` (one character) are wildcards: brackets are literal, so
``aws_autoscaling_group.web["eu"]`` and ``module.app.aws_instance.x[0]`` match themselves.
A lone ``"*"`` allows every address.

Reasons are sentences for a reviewer; attribute values are never quoted from resources (they
may be sensitive), only attribute names; output values are shown unless marked sensitive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from forescale.errors import PlanRefused

__all__ = [
    "GuardResult",
    "OutputChangeSummary",
    "ResourceChangeSummary",
    "check_plan",
]

# Actions Terraform prints for one resource instance, mapped to what a reviewer calls them.
_KINDS: Final[dict[tuple[str, ...], str]] = {
    ("no-op",): "no-op",
    ("read",): "read",
    ("update",): "update",
    ("create",): "create",
    ("delete",): "delete",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
}
_IGNORED_KINDS: Final = frozenset({"no-op", "read"})
_SHOW_ADDRESSES: Final = 5

# ``action_reason`` (Terraform >= 1.2) in words; unknown values are shown as they are.
_ACTION_REASONS: Final[dict[str, str]] = {
    "replace_because_tainted": (
        "it is tainted (an earlier apply failed or was interrupted while creating it)"
    ),
    "replace_because_cannot_update": "a changed attribute cannot be updated in place",
    "replace_by_request": "a -replace option asked for it",
    "replace_by_triggers": "a replace_triggered_by reference changed",
    "delete_because_no_resource_config": "its configuration block was removed",
    "delete_because_no_module": "its module was removed",
    "delete_because_wrong_repetition": "count/for_each was added or removed",
    "delete_because_count_index": "its count index is now out of range",
    "delete_because_each_key": "its for_each key no longer exists",
    "delete_because_no_move_target": "a moved block points at nothing",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class ResourceChangeSummary:
    """One planned change to one resource instance (no-op and read are left out).

    ``kind`` is ``update``, ``create``, ``delete``, ``replace`` or ``unknown``;
    ``actions`` the raw list; ``changed_attributes`` the top-level attribute names whose
    value changes or becomes unknown; ``replace_paths`` the attributes that force a
    replacement, dotted (``triggers.capacity``); ``allowed`` whether the guard accepts it.
    """

    address: str
    kind: str
    actions: tuple[str, ...]
    action_reason: str | None
    changed_attributes: tuple[str, ...]
    replace_paths: tuple[str, ...]
    allowed: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class OutputChangeSummary:
    """A root output whose value changes. ``before``/``after`` are JSON-ish text, or
    ``None`` when the output is sensitive; ``after`` is "(known after apply)" if unknown."""

    name: str
    kind: str
    sensitive: bool
    before: str | None
    after: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class GuardResult:
    """The guard's verdict: ``ok`` with no ``reasons``, or refused with one sentence each."""

    ok: bool
    reasons: tuple[str, ...]
    changes: tuple[ResourceChangeSummary, ...]
    output_changes: tuple[OutputChangeSummary, ...]
    summary: str

    def raise_if_refused(self) -> None:
        """Raise :class:`~forescale.errors.PlanRefused` with the reasons unless ``ok``."""
        if not self.ok:
            raise PlanRefused(self.reasons, summary=self.summary)


def check_plan(
    plan_json: Mapping[str, Any],
    *,
    allowed_addresses: Collection[str],
    expected_change: bool = True,
    allow_create: bool = False,
    allow_delete: bool = False,
    allow_replace: bool = False,
    known_format_majors: Collection[int] = (0, 1),
    expected_variables: Mapping[str, object] | None = None,
    schedule_addresses: Collection[str] = (),
) -> GuardResult:
    """Decide whether forescale may apply this plan (see the module docstring for the rules).

    ``allowed_addresses`` are resource address patterns (``"*"`` allows all);
    ``expected_change`` says the caller changed a value and expects Terraform to act on it;
    ``expected_variables`` maps variable addresses (``web_min_size``, ``capacity.web.min``)
    to the value the plan must have been made with (forescale's intended number, or its
    whole schedule); ``schedule_addresses`` are the patterns of the scheduled actions
    forescale's schedule owns: those may be created, updated and destroyed.
    """
    if isinstance(allowed_addresses, str):
        raise TypeError("allowed_addresses must be a collection of patterns, not one string")
    patterns = tuple(allowed_addresses)
    matchers = [_compile_pattern(p) for p in patterns]

    def is_allowed(address: str) -> bool:
        return any(m.fullmatch(address) for m in matchers)

    scheduled = [_compile_pattern(p) for p in schedule_addresses]

    reasons: list[str] = []
    reasons.extend(_check_format(plan_json, known_format_majors))
    if plan_json.get("errored") is True:
        reasons.append(
            "Terraform reported errors while planning (errored: true), so the plan is "
            "incomplete and must not be applied."
        )

    changes: list[ResourceChangeSummary] = []
    raw_changes = plan_json.get("resource_changes") or []
    if not isinstance(raw_changes, list):
        reasons.append("The plan's resource_changes is not a list; the plan JSON is malformed.")
        raw_changes = []
    for raw in raw_changes:
        if _is_scheduled(raw, scheduled):
            summary, reason = _scheduled_change(raw), None
        else:
            summary, reason = _judge_change(
                raw,
                is_allowed=is_allowed,
                patterns=patterns,
                allow_create=allow_create,
                allow_delete=allow_delete,
                allow_replace=allow_replace,
            )
        if summary is not None:
            changes.append(summary)
        if reason is not None:
            reasons.append(reason)

    reasons.extend(
        _check_variables(plan_json.get("variables"), expected_variables)
        if expected_variables
        else ()
    )
    outputs = _output_changes(plan_json.get("output_changes"))
    if expected_change and not changes:
        reasons.append(_no_change_reason(outputs))

    return GuardResult(
        ok=not reasons,
        reasons=tuple(reasons),
        changes=tuple(changes),
        output_changes=outputs,
        summary=_summarize(changes, outputs),
    )


# --------------------------------------------------------------------------- rules


def _check_format(plan_json: Mapping[str, Any], known_majors: Collection[int]) -> list[str]:
    known = ", ".join(str(m) for m in sorted(known_majors)) or "none"
    version = plan_json.get("format_version")
    if not isinstance(version, str) or not version:
        return [
            "The plan JSON has no format_version, so it does not look like the output of "
            "`terraform show -json` on a saved plan; refusing to interpret it."
        ]
    major_text = version.split(".", 1)[0]
    if not major_text.isdigit():
        return [f"The plan JSON has an unreadable format_version {version!r}."]
    if int(major_text) not in known_majors:
        return [
            f"The plan JSON has format_version {version!r}, but this guard only understands "
            f"major versions {known}; the meaning of its fields may have changed, so the plan "
            "is refused until forescale is updated (or Terraform is pinned to a known release)."
        ]
    return []


def _check_variables(raw: Any, expected: Mapping[str, object]) -> list[str]:
    """The plan was made with forescale's values: a variable file edited by someone else
    while Terraform planned would otherwise be applied under forescale's name."""
    reasons = []
    for address, wanted in sorted(expected.items()):
        first, *keys = address.split(".")
        entry = _mapping(raw).get(first)
        value: Any = _mapping(entry).get("value") if isinstance(entry, Mapping) else None
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(wanted, Mapping):
            if value != wanted:
                reasons.append(
                    f"The plan was not made with forescale's {address} (the variable file "
                    "changed while Terraform planned, or Terraform read another value)."
                )
        elif isinstance(value, bool) or not isinstance(value, int | float):
            reasons.append(
                f"The plan does not show a number for variable {address}, so it cannot be "
                f"checked that it was made with forescale's value {wanted}."
            )
        elif value != wanted:
            reasons.append(
                f"The plan was made with {address} = {_render_value(value)}, not forescale's "
                f"{wanted}: the variable file changed while Terraform planned."
            )
    return reasons


def _is_scheduled(raw: Any, scheduled: Sequence[re.Pattern[str]]) -> bool:
    return isinstance(raw, Mapping) and any(
        m.fullmatch(str(raw.get("address", ""))) for m in scheduled
    )


def _scheduled_change(raw: Mapping[str, Any]) -> ResourceChangeSummary | None:
    """A scheduled action of forescale's own schedule: created, updated or destroyed as the
    schedule says (any known action is allowed; no-op and read are left out)."""
    change = _mapping(raw.get("change"))
    actions = tuple(str(a) for a in change.get("actions") or ())
    kind = _KINDS.get(actions, "unknown")
    if kind in _IGNORED_KINDS:
        return None
    return ResourceChangeSummary(
        address=str(raw.get("address")),
        kind=kind,
        actions=actions,
        action_reason=str(raw["action_reason"]) if raw.get("action_reason") else None,
        changed_attributes=_changed_attributes(change),
        replace_paths=tuple(_render_path(p) for p in change.get("replace_paths") or ()),
        allowed=kind != "unknown",
    )


def _judge_change(
    raw: Any,
    *,
    is_allowed: Callable[[str], bool],
    patterns: Sequence[str],
    allow_create: bool,
    allow_delete: bool,
    allow_replace: bool,
) -> tuple[ResourceChangeSummary | None, str | None]:
    if not isinstance(raw, Mapping):
        return None, "The plan lists a resource change that is not an object; malformed JSON."
    address = str(raw.get("address", "<unknown address>"))
    if raw.get("deposed"):
        address = f"{address} (deposed object {raw['deposed']})"
    change = _mapping(raw.get("change"))
    actions = tuple(str(a) for a in change.get("actions") or ())
    kind = _KINDS.get(actions, "unknown")
    if kind in _IGNORED_KINDS:
        return None, None
    action_reason = str(raw["action_reason"]) if raw.get("action_reason") else None
    replace_paths = tuple(_render_path(p) for p in change.get("replace_paths") or ())
    changed = _changed_attributes(change)

    address_ok = is_allowed(str(raw.get("address", "")))
    flags = {"create": allow_create, "delete": allow_delete, "replace": allow_replace}
    reason: str | None = None
    if kind == "unknown":
        reason = (
            f"{address} has actions {list(actions)}, which this guard does not know; "
            "refusing rather than guessing what Terraform would do."
        )
    elif kind != "update" and not flags[kind]:
        reason = _action_refused(address, kind, action_reason, replace_paths)
    elif not address_ok:
        reason = (
            f"{address} would be {_VERB[kind]}, but it matches none of the allowed addresses "
            f"({_list_patterns(patterns)}); forescale only changes the resources it is "
            "configured for."
        )
    summary = ResourceChangeSummary(
        address=address,
        kind=kind,
        actions=actions,
        action_reason=action_reason,
        changed_attributes=changed,
        replace_paths=replace_paths,
        allowed=reason is None,
    )
    return summary, reason


_VERB: Final = {
    "update": "updated in place",
    "create": "created",
    "delete": "destroyed",
    "replace": "replaced (destroyed and created again)",
}


def _action_refused(
    address: str, kind: str, action_reason: str | None, replace_paths: Sequence[str]
) -> str:
    why = ""
    if action_reason:
        why = f" because {_ACTION_REASONS.get(action_reason, action_reason)}"
    elif replace_paths:
        why = " because a changed attribute forces it"
    if replace_paths:
        why += f" (forced by: {', '.join(replace_paths)})"
    if kind == "replace":
        return (
            f"{address} would be replaced (destroyed and created again){why}; replacement is "
            "not allowed (allow_replace=False): a capacity change should update the resource "
            "in place, and replacing it can cause an outage."
        )
    if kind == "create":
        return (
            f"{address} would be created{why}; creating resources is not allowed "
            "(allow_create=False): forescale only adjusts existing resources."
        )
    return (
        f"{address} would be destroyed{why}; destroying resources is not allowed "
        "(allow_delete=False)."
    )


def _no_change_reason(outputs: Sequence[OutputChangeSummary]) -> str:
    text = (
        "The plan changes no resources although forescale expected a change. Likely causes: "
        "the attribute is listed in lifecycle.ignore_changes, so Terraform ignores the new "
        "value; a second controller (a person, another forescale, or the cloud's own "
        "scaling) has already set it; or forescale wrote a variable the module does not use "
        "(wrong name, or a later -var-file or *.auto.tfvars file overrides it)."
    )
    if outputs:
        names = ", ".join(o.name for o in outputs)
        text += f" Only outputs change ({names}), so the variable did reach the module."
    return text


# --------------------------------------------------------------------------- details


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise TypeError(f"address pattern must be a string, got {pattern!r}")
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def _list_patterns(patterns: Sequence[str]) -> str:
    if not patterns:
        return "the list is empty"
    return ", ".join(patterns)


def _render_path(path: Any) -> str:
    if isinstance(path, list):
        return ".".join(str(step) for step in path)
    return str(path)


def _changed_attributes(change: Mapping[str, Any]) -> tuple[str, ...]:
    before = _mapping(change.get("before"))
    after = _mapping(change.get("after"))
    unknown = _mapping(change.get("after_unknown"))
    names = set(before) | set(after) | set(unknown)
    changed = [
        name
        for name in names
        if _is_unknown(unknown.get(name)) or before.get(name) != after.get(name)
    ]
    return tuple(sorted(changed))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_unknown(marker: Any) -> bool:
    if marker is True:
        return True
    if isinstance(marker, Mapping):
        return any(_is_unknown(v) for v in marker.values())
    if isinstance(marker, list):
        return any(_is_unknown(v) for v in marker)
    return False


def _output_changes(raw: Any) -> tuple[OutputChangeSummary, ...]:
    if not isinstance(raw, Mapping):
        return ()
    result = []
    for name in sorted(raw):
        change = raw[name]
        if not isinstance(change, Mapping):
            continue
        actions = tuple(str(a) for a in change.get("actions") or ())
        kind = _KINDS.get(actions, "unknown")
        if kind in _IGNORED_KINDS:
            continue
        sensitive = bool(change.get("before_sensitive")) or bool(change.get("after_sensitive"))
        before = after = None
        if not sensitive:
            before = _render_value(change.get("before"))
            after = (
                "(known after apply)"
                if _is_unknown(change.get("after_unknown"))
                else _render_value(change.get("after"))
            )
        result.append(
            OutputChangeSummary(
                name=str(name), kind=kind, sensitive=sensitive, before=before, after=after
            )
        )
    return tuple(result)


def _render_value(value: Any) -> str:
    text = "null" if value is None else repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def _summarize(
    changes: Sequence[ResourceChangeSummary], outputs: Sequence[OutputChangeSummary]
) -> str:
    def part(kind: str, label: str) -> str:
        addresses = [c.address for c in changes if c.kind == kind]
        if not addresses:
            return f"0 {label}"
        return f"{len(addresses)} {label} ({_shorten(addresses)})"

    parts = [part("update", "to update"), part("create", "to create"), part("delete", "to destroy")]
    for kind, label in (("replace", "to replace"), ("unknown", "with unknown actions")):
        if any(c.kind == kind for c in changes):
            parts.append(part(kind, label))
    text = ", ".join(parts)
    if outputs:
        rendered = [
            o.name if o.before is None else f"{o.name}: {o.before} -> {o.after}" for o in outputs
        ]
        text += f"; outputs changed: {_shorten(rendered)}"
    return text


def _shorten(items: Iterable[str]) -> str:
    items = list(items)
    if len(items) <= _SHOW_ADDRESSES:
        return ", ".join(items)
    shown = ", ".join(items[:_SHOW_ADDRESSES])
    return f"{shown} and {len(items) - _SHOW_ADDRESSES} more"
