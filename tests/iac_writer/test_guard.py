"""check_plan on hand-written plan JSON shaped like `terraform show -json` output.

Real plans from Terraform 1.0.3 (format 0.2) and 1.11.4 (format 1.2) are checked in
test_terraform.py; here each rule is pinned down on its own.
"""

from __future__ import annotations

from typing import Any

import pytest

from forescale.errors import PlanRefused
from forescale.iac_writer.guard import OutputChangeSummary, check_plan

WEB = "aws_autoscaling_group.web"


def rc(
    address: str,
    actions: list[str],
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    after_unknown: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One entry of ``resource_changes``."""
    change: dict[str, Any] = {
        "actions": actions,
        "before": before,
        "after": after,
        "after_unknown": after_unknown or {},
    }
    change.update(extra.pop("change_extra", {}))
    rtype, _, name = address.rpartition(".")
    return {"address": address, "type": rtype, "name": name, "change": change, **extra}


def plan(
    *changes: dict[str, Any],
    format_version: str = "1.2",
    outputs: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {"format_version": format_version, "resource_changes": list(changes)}
    if outputs is not None:
        doc["output_changes"] = outputs
    doc.update(extra)
    return doc


def min_size_update(address: str = WEB) -> dict[str, Any]:
    return rc(
        address,
        ["update"],
        before={"min_size": 2, "max_size": 10, "name": "web"},
        after={"min_size": 5, "max_size": 10, "name": "web"},
    )


def test_update_of_an_allowed_address_is_accepted() -> None:
    result = check_plan(plan(min_size_update()), allowed_addresses=[WEB])
    assert result.ok
    assert result.reasons == ()
    assert result.summary == f"1 to update ({WEB}), 0 to create, 0 to destroy"
    (change,) = result.changes
    assert change.kind == "update"
    assert change.changed_attributes == ("min_size",)
    assert change.allowed


def test_update_of_another_address_is_refused_with_the_allow_list() -> None:
    result = check_plan(
        plan(min_size_update(), min_size_update("aws_autoscaling_group.db")),
        allowed_addresses=[WEB],
    )
    assert not result.ok
    assert result.reasons == (
        "aws_autoscaling_group.db would be updated in place, but it matches none of the "
        f"allowed addresses ({WEB}); forescale only changes the resources it is configured "
        "for.",
    )
    assert [c.allowed for c in result.changes] == [True, False]
    assert result.summary == (
        f"2 to update ({WEB}, aws_autoscaling_group.db), 0 to create, 0 to destroy"
    )


def test_empty_allow_list_refuses_every_update() -> None:
    result = check_plan(plan(min_size_update()), allowed_addresses=[])
    assert not result.ok
    assert "(the list is empty)" in result.reasons[0]


@pytest.mark.parametrize(
    ("pattern", "address", "matches"),
    [
        ("*", "module.app.aws_instance.x[0]", True),
        ("module.app.*", "module.app.aws_autoscaling_group.this[0]", True),
        ("module.app.*", "module.apps.aws_autoscaling_group.this", False),
        # brackets are literal, not fnmatch character classes
        ('aws_autoscaling_group.web["eu"]', 'aws_autoscaling_group.web["eu"]', True),
        ("aws_autoscaling_group.web[0]", "aws_autoscaling_group.web[0]", True),
        ("aws_autoscaling_group.web[0]", "aws_autoscaling_group.web0", False),
        ("aws_autoscaling_group.web[?]", "aws_autoscaling_group.web[1]", True),
        ("aws_autoscaling_group.web", "aws_autoscaling_group.web[0]", False),
        ("aws_autoscaling_group.*", "aws_autoscaling_group.web", True),
        ("AWS_autoscaling_group.web", "aws_autoscaling_group.web", False),
    ],
)
def test_address_patterns(pattern: str, address: str, matches: bool) -> None:
    result = check_plan(plan(min_size_update(address)), allowed_addresses=[pattern])
    assert result.ok is matches


def test_allowed_addresses_must_not_be_a_single_string() -> None:
    with pytest.raises(TypeError, match="not one string"):
        check_plan(plan(min_size_update()), allowed_addresses=WEB)


@pytest.mark.parametrize("actions", [["delete", "create"], ["create", "delete"]])
def test_replacement_is_refused_unless_allowed(actions: list[str]) -> None:
    change = rc(
        "null_resource.web_asg",
        actions,
        before={"triggers": {"capacity": "2"}},
        after={"triggers": {"capacity": "5"}},
        after_unknown={"id": True},
        change_extra={"replace_paths": [["triggers", "capacity"]]},
        action_reason="replace_because_cannot_update",
    )
    refused = check_plan(plan(change), allowed_addresses=["null_resource.web_asg"])
    assert not refused.ok
    (reason,) = refused.reasons
    assert reason == (
        "null_resource.web_asg would be replaced (destroyed and created again) because a "
        "changed attribute cannot be updated in place (forced by: triggers.capacity); "
        "replacement is not allowed (allow_replace=False): a capacity change should update "
        "the resource in place, and replacing it can cause an outage."
    )
    assert refused.summary == (
        "0 to update, 0 to create, 0 to destroy, 1 to replace (null_resource.web_asg)"
    )
    (summary,) = refused.changes
    assert summary.kind == "replace"
    assert summary.replace_paths == ("triggers.capacity",)
    assert summary.changed_attributes == ("id", "triggers")

    allowed = check_plan(
        plan(change), allowed_addresses=["null_resource.web_asg"], allow_replace=True
    )
    assert allowed.ok
    # allow_replace loosens the action, not the address list
    elsewhere = check_plan(plan(change), allowed_addresses=[WEB], allow_replace=True)
    assert not elsewhere.ok
    assert (
        "would be replaced (destroyed and created again), but it matches none"
        in (elsewhere.reasons[0])
    )


def test_replacement_of_a_tainted_resource_says_so() -> None:
    change = rc(WEB, ["delete", "create"], action_reason="replace_because_tainted")
    (reason,) = check_plan(plan(change), allowed_addresses=[WEB]).reasons
    assert "because it is tainted (an earlier apply failed or was interrupted" in reason


def test_replacement_from_terraform_1_0_without_action_reason() -> None:
    change = rc(WEB, ["delete", "create"], change_extra={"replace_paths": [["triggers"]]})
    (reason,) = check_plan(plan(change, format_version="0.2"), allowed_addresses=[WEB]).reasons
    assert "because a changed attribute forces it (forced by: triggers)" in reason


def test_create_and_delete_are_refused_unless_allowed() -> None:
    doc = plan(
        rc(WEB, ["create"], after={"min_size": 5}),
        rc("aws_autoscaling_group.old", ["delete"], before={"min_size": 1}),
    )
    refused = check_plan(doc, allowed_addresses=["*"])
    assert refused.reasons == (
        f"{WEB} would be created; creating resources is not allowed (allow_create=False): "
        "forescale only adjusts existing resources.",
        "aws_autoscaling_group.old would be destroyed; destroying resources is not allowed "
        "(allow_delete=False).",
    )
    assert refused.summary == (
        f"0 to update, 1 to create ({WEB}), 1 to destroy (aws_autoscaling_group.old)"
    )
    allowed = check_plan(doc, allowed_addresses=["*"], allow_create=True, allow_delete=True)
    assert allowed.ok


def test_delete_because_config_was_removed_names_the_cause() -> None:
    change = rc(WEB, ["delete"], action_reason="delete_because_no_resource_config")
    (reason,) = check_plan(plan(change), allowed_addresses=[WEB]).reasons
    assert reason.startswith(f"{WEB} would be destroyed because its configuration block was")


def test_deposed_objects_are_named() -> None:
    change = rc(WEB, ["delete"], deposed="00000001")
    (reason,) = check_plan(plan(change), allowed_addresses=[WEB]).reasons
    assert reason.startswith(f"{WEB} (deposed object 00000001) would be destroyed")


def test_no_op_and_read_are_ignored() -> None:
    doc = plan(
        rc("data.aws_ami.ubuntu", ["read"]),
        rc("aws_autoscaling_group.db", ["no-op"]),
        min_size_update(),
    )
    result = check_plan(doc, allowed_addresses=[WEB])
    assert result.ok
    assert [c.address for c in result.changes] == [WEB]


def test_unknown_actions_are_refused() -> None:
    result = check_plan(plan(rc(WEB, ["forget"])), allowed_addresses=["*"], allow_delete=True)
    assert not result.ok
    assert result.reasons == (
        f"{WEB} has actions ['forget'], which this guard does not know; refusing rather "
        "than guessing what Terraform would do.",
    )
    assert result.summary.endswith(f"1 with unknown actions ({WEB})")


@pytest.mark.parametrize("version", ["0.1", "0.2", "1.0", "1.2"])
def test_known_format_versions_are_accepted(version: str) -> None:
    assert check_plan(plan(min_size_update(), format_version=version), allowed_addresses=[WEB]).ok


@pytest.mark.parametrize("version", ["2.0", "10.1"])
def test_unknown_format_major_is_refused(version: str) -> None:
    result = check_plan(plan(min_size_update(), format_version=version), allowed_addresses=[WEB])
    assert not result.ok
    assert result.reasons == (
        f"The plan JSON has format_version {version!r}, but this guard only understands major "
        "versions 0, 1; the meaning of its fields may have changed, so the plan is refused "
        "until forescale is updated (or Terraform is pinned to a known release).",
    )


def test_known_format_majors_can_be_narrowed() -> None:
    doc = plan(min_size_update(), format_version="0.2")
    assert not check_plan(doc, allowed_addresses=[WEB], known_format_majors=(1,)).ok


@pytest.mark.parametrize("version", [None, "", 1.2, "x.1"])
def test_missing_or_malformed_format_version_is_refused(version: Any) -> None:
    doc = plan(min_size_update())
    if version is None:
        del doc["format_version"]
    else:
        doc["format_version"] = version
    result = check_plan(doc, allowed_addresses=[WEB])
    assert not result.ok
    assert "format_version" in result.reasons[0]


def test_errored_plan_is_refused() -> None:
    result = check_plan(plan(min_size_update(), errored=True), allowed_addresses=[WEB])
    assert result.reasons == (
        "Terraform reported errors while planning (errored: true), so the plan is "
        "incomplete and must not be applied.",
    )


def test_malformed_resource_changes_are_refused() -> None:
    doc = plan()
    doc["resource_changes"] = {"not": "a list"}
    result = check_plan(doc, allowed_addresses=["*"], expected_change=False)
    assert not result.ok
    assert "not a list" in result.reasons[0]
    result = check_plan(plan("nonsense"), allowed_addresses=["*"], expected_change=False)  # type: ignore[arg-type]
    assert not result.ok


def test_no_change_when_one_was_expected_explains_the_likely_causes() -> None:
    doc = plan(rc(WEB, ["no-op"]))
    result = check_plan(doc, allowed_addresses=[WEB])
    assert not result.ok
    (reason,) = result.reasons
    assert reason == (
        "The plan changes no resources although forescale expected a change. Likely causes: "
        "the attribute is listed in lifecycle.ignore_changes, so Terraform ignores the new "
        "value; a second controller (a person, another forescale, or the cloud's own "
        "scaling) has already set it; or forescale wrote a variable the module does not use "
        "(wrong name, or a later -var-file or *.auto.tfvars file overrides it)."
    )
    assert result.summary == "0 to update, 0 to create, 0 to destroy"


def test_no_change_with_output_changes_says_the_variable_arrived() -> None:
    doc = plan(
        outputs={"web_capacity": {"actions": ["update"], "before": 2, "after": 5}},
    )
    del doc["resource_changes"]  # Terraform omits it when there are no resources
    result = check_plan(doc, allowed_addresses=[WEB])
    (reason,) = result.reasons
    assert reason.endswith(
        "Only outputs change (web_capacity), so the variable did reach the module."
    )
    assert result.summary == (
        "0 to update, 0 to create, 0 to destroy; outputs changed: web_capacity: 2 -> 5"
    )


def test_no_change_is_fine_when_none_was_expected() -> None:
    result = check_plan(plan(rc(WEB, ["no-op"])), allowed_addresses=[], expected_change=False)
    assert result.ok
    assert result.changes == ()


def test_output_changes_are_reported_and_sensitive_values_hidden() -> None:
    doc = plan(
        min_size_update(),
        outputs={
            "web_capacity": {
                "actions": ["update"],
                "before": 2,
                "after_unknown": True,
                "before_sensitive": False,
                "after_sensitive": False,
            },
            "db_password": {
                "actions": ["update"],
                "before": "hunter2",
                "after": "hunter3",
                "before_sensitive": True,
                "after_sensitive": True,
            },
            "region": {"actions": ["no-op"], "before": "eu", "after": "eu"},
            "new_one": {"actions": ["create"], "before": None, "after": "x" * 80},
        },
    )
    result = check_plan(doc, allowed_addresses=[WEB])
    assert result.ok
    assert result.output_changes == (
        OutputChangeSummary(
            name="db_password", kind="update", sensitive=True, before=None, after=None
        ),
        OutputChangeSummary(
            name="new_one", kind="create", sensitive=False, before="null", after="x" * 57 + "..."
        ),
        OutputChangeSummary(
            name="web_capacity",
            kind="update",
            sensitive=False,
            before="2",
            after="(known after apply)",
        ),
    )
    assert "hunter" not in result.summary
    assert result.summary.endswith(
        "; outputs changed: db_password, new_one: null -> "
        + "x" * 57
        + "..., web_capacity: 2 -> (known after apply)"
    )


def test_summary_shortens_long_address_lists() -> None:
    doc = plan(*(min_size_update(f"aws_autoscaling_group.w{i}") for i in range(8)))
    result = check_plan(doc, allowed_addresses=["aws_autoscaling_group.*"])
    assert result.ok
    assert result.summary.startswith(
        "8 to update (aws_autoscaling_group.w0, aws_autoscaling_group.w1, "
        "aws_autoscaling_group.w2, aws_autoscaling_group.w3, aws_autoscaling_group.w4 "
        "and 3 more), 0 to create"
    )


def test_raise_if_refused() -> None:
    check_plan(plan(min_size_update()), allowed_addresses=[WEB]).raise_if_refused()
    refused = check_plan(plan(min_size_update()), allowed_addresses=[])
    with pytest.raises(PlanRefused) as info:
        refused.raise_if_refused()
    assert info.value.reasons == refused.reasons
    assert info.value.summary == refused.summary
    assert str(info.value).startswith(
        f"plan refused (1 to update ({WEB}), 0 to create, 0 to destroy): {WEB} would be"
    )
    assert "\n" not in str(info.value)


def test_attribute_values_are_never_quoted_in_reasons() -> None:
    change = rc(
        WEB,
        ["delete", "create"],
        before={"user_data": "secret-token-123"},
        after={"user_data": "secret-token-456"},
        after_unknown={"nested": {"deep": [False, True]}},
    )
    result = check_plan(plan(change), allowed_addresses=[WEB])
    assert "secret-token" not in " ".join(result.reasons) + result.summary
    assert result.changes[0].changed_attributes == ("nested", "user_data")


# ------------------------------------------------------------------ the plan's variables


@pytest.mark.parametrize(
    ("variables", "address", "ok", "fragment"),
    [
        ({"web_min_size": {"value": 5}}, "web_min_size", True, ""),
        ({"web_min_size": {"value": 5.0}}, "web_min_size", True, ""),
        ({"web_min_size": {"value": 33}}, "web_min_size", False, "made with web_min_size = 33"),
        ({"capacity": {"value": {"web": {"min": 5}}}}, "capacity.web.min", True, ""),
        ({"capacity": {"value": {"web": {"min": 6}}}}, "capacity.web.min", False, "= 6, not"),
        ({}, "web_min_size", False, "does not show a number"),
        ({"web_min_size": {"value": "5"}}, "web_min_size", False, "does not show a number"),
    ],
)
def test_the_plan_must_have_been_made_with_forescales_value(
    variables: dict[str, Any], address: str, ok: bool, fragment: str
) -> None:
    result = check_plan(
        plan(min_size_update(), variables=variables),
        allowed_addresses=[WEB],
        expected_variables={address: 5},
    )
    assert result.ok is ok
    assert all(fragment in r for r in result.reasons) if not ok else result.reasons == ()
