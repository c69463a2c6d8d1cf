"""Bad settings get one clear line: bounds, strict numbers, duplicate keys, environment JSON,
lead time vs horizon, two services on one variable, the new step_period field.

Settings are written as real files and loaded with ``load_settings``; the CLI cases run
``forescale.cli.main`` and check exit code 1, one ``forescale: error:`` line on stderr and
that no file under the settings' directory changed.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from forescale.cli import main
from forescale.config.durations import MAX_DURATION, parse_duration
from forescale.config.settings import MAX_UNITS, load_settings
from forescale.errors import ConfigError

BASE: dict[str, Any] = {
    "display_timezone": "America/New_York",
    "services": {
        "web": {
            "source": {"type": "csv", "path": "demand.csv"},
            "capacity_per_unit": 100,
            "min_units": 2,
            "max_units": 20,
            "max_step_up": 4,
            "max_step_down": "25%",
            "lead_time": "15m",
            "iac": {"working_dir": "tf", "var_file": "prod.tfvars", "address": "web_min"},
        }
    },
}


@pytest.fixture(autouse=True)
def _no_forescale_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("FORESCALE_"):
            monkeypatch.delenv(name)


def doc(**changes: Any) -> dict[str, Any]:
    """BASE with ``dotted.path=value`` changes (``None`` as value deletes the key)."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return data


def write(tmp_path: Path, data: dict[str, Any] | str, name: str = "forescale.yaml") -> Path:
    path = tmp_path / name
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def fails(tmp_path: Path, data: dict[str, Any] | str) -> str:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def cli_error(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> str:
    """Run the CLI; assert exit 1, one error line, no file under ``root`` changed."""
    before = snapshot(root)
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 1, captured
    assert captured.err.startswith("forescale: error: "), captured.err
    assert captured.err.count("\n") == 1, captured.err
    assert snapshot(root) == before
    return captured.err


# --------------------------------------------------------------- durations and bounds

# Every duration field, with the longest value it accepts (the bound the README states).
DURATION_BOUNDS = {
    "min_history": "365d",
    "stale_after": "30d",
    "services.web.lead_time": "7d",
    "services.web.step_period": "1d",
    "services.web.scale_in.stabilization": "7d",
    "services.web.forecast.horizon": "60d",
    "services.web.forecast.resolution": "1d",
    "services.web.forecast.max_history": "1095d",
    "services.web.forecast.record_window": "90d",
    "services.web.forecast.live_window": "7d",
    "services.web.iac.terraform.lock_timeout": "1d",
    "services.web.iac.terraform.plan_timeout": "1d",
    "services.web.iac.terraform.apply_timeout": "1d",
}


def test_parse_duration_refuses_what_cannot_be_represented() -> None:
    for value in ["99999999999999d", "1" + "0" * 500 + "s", 10**400, 1e308, "3651d"]:
        with pytest.raises(ValueError, match="too long: at most 3650d"):
            parse_duration(value)
    assert parse_duration("3650d") == MAX_DURATION
    with pytest.raises(ValueError, match="at most 1d"):
        parse_duration("25h", maximum=dt.timedelta(days=1))


@pytest.mark.parametrize("value", ["99999999999999d", 1e308, 10**30])
def test_a_huge_lead_time_is_an_error_not_a_traceback(tmp_path: Path, value: object) -> None:
    message = fails(tmp_path, doc(**{"services.web.lead_time": value}))
    assert "services.web.lead_time: " in message and "too long" in message


@pytest.mark.parametrize(("field", "limit"), sorted(DURATION_BOUNDS.items()))
def test_every_duration_field_has_an_upper_bound(tmp_path: Path, field: str, limit: str) -> None:
    over = parse_duration(limit) + dt.timedelta(seconds=1)
    at_limit = doc(**{field: limit})
    if field == "services.web.lead_time":  # lead_time must stay below the horizon
        at_limit = doc(**{field: limit, "services.web.forecast.horizon": "8d"})
    load_settings(write(tmp_path, at_limit))
    message = fails(tmp_path, doc(**{field: int(over.total_seconds())}))
    assert f"{field}: " in message and "too long" in message, message
    message = fails(tmp_path, doc(**{field: "99999999999999d"}))
    assert f"{field}: " in message, message


@pytest.mark.parametrize(
    "source",
    [
        {"type": "csv", "path": "d.csv"},
        {"type": "prometheus", "url": "http://p:9090", "query": "up"},
        {"type": "cloudwatch", "region": "us-east-1", "expression": "SUM(x)"},
    ],
)
def test_source_durations_are_bounded_too(tmp_path: Path, source: dict[str, Any]) -> None:
    for field, value in [("lookback", "99999999999999d"), ("lookback", "3651d")]:
        if source["type"] == "csv":
            continue
        message = fails(tmp_path, doc(**{"services.web.source": {**source, field: value}}))
        assert f"services.web.source.{field}: " in message
    if source["type"] == "prometheus":
        for field, value in [("step", "2d"), ("query_timeout", "2h")]:
            message = fails(tmp_path, doc(**{"services.web.source": {**source, field: value}}))
            assert f"services.web.source.{field}: " in message and "too long" in message
    if source["type"] == "cloudwatch":
        message = fails(tmp_path, doc(**{"services.web.source": {**source, "period": "2d"}}))
        assert "services.web.source.period: " in message


@pytest.mark.parametrize(
    "field",
    [
        "services.web.step_period",
        "services.web.forecast.resolution",
        "services.web.forecast.max_history",
        "services.web.forecast.record_window",
        "services.web.forecast.live_window",
        "services.web.iac.terraform.plan_timeout",
        "services.web.iac.terraform.apply_timeout",
    ],
)
def test_durations_that_must_be_positive(tmp_path: Path, field: str) -> None:
    message = fails(tmp_path, doc(**{field: "0s"}))
    assert f"{field}: must be positive" in message


# Every numeric field: the largest value accepted and one just above it.
NUMBER_BOUNDS: dict[str, tuple[object, object]] = {
    "services.web.capacity_per_unit": (1e12, 1.1e12),
    "services.web.min_units": (MAX_UNITS - 1, MAX_UNITS + 1),
    "services.web.max_units": (MAX_UNITS, MAX_UNITS + 1),
    "services.web.max_step_up": (MAX_UNITS, MAX_UNITS + 1),
    "services.web.max_step_down": ("1000%", "1001%"),
    "services.web.observed_headroom": (5, 5.5),
    "services.web.scale_in.tolerance": (0.99, 1),
    "services.web.unit_tolerance": (0.99, 1),
    "services.web.forecast.interval_width": (0.99, 1),
    "services.web.forecast.max_points": (50_000, 50_001),
    "services.web.forecast.uncertainty_samples": (5000, 5001),
    "services.web.forecast.target_under": (0.5, 0.6),
    "services.web.forecast.max_band_factor": (10, 11),
    "services.web.forecast.live_max_under": (1, 1.1),
    "services.web.forecast.live_max_error": (100, 101),
    "fit.workers": (256, 257),
    "api.port": (65535, 65536),
}


@pytest.mark.parametrize(("field", "bounds"), sorted(NUMBER_BOUNDS.items()))
def test_every_number_has_an_upper_bound(
    tmp_path: Path, field: str, bounds: tuple[object, object]
) -> None:
    ok, over = bounds
    changes: dict[str, Any] = {field: ok}
    if field == "services.web.min_units":
        changes["services.web.max_units"] = MAX_UNITS
    load_settings(write(tmp_path, doc(**changes)))
    assert f"{field}" in fails(tmp_path, doc(**{field: over}))
    assert f"{field}" in fails(tmp_path, doc(**{field: 1e308}))


@pytest.mark.parametrize("value", [10**30, 1e30, "1000000000000000000000000000000"])
def test_max_units_of_ten_to_the_thirty_is_refused(tmp_path: Path, value: object) -> None:
    message = fails(tmp_path, doc(**{"services.web.max_units": value}))
    assert "services.web.max_units: " in message and "1000000" in message


@pytest.mark.parametrize(
    ("field", "source"),
    [
        ("scale", {"type": "csv", "path": "d.csv"}),
        ("timeout", {"type": "prometheus", "url": "http://p:9090", "query": "up"}),
        ("max_points", {"type": "prometheus", "url": "http://p:9090", "query": "up"}),
        ("max_attempts", {"type": "cloudwatch", "region": "us-east-1", "expression": "SUM(x)"}),
        ("read_timeout", {"type": "cloudwatch", "region": "us-east-1", "expression": "SUM(x)"}),
    ],
)
def test_source_numbers_are_bounded_and_not_bools(
    tmp_path: Path, field: str, source: dict[str, Any]
) -> None:
    for value in (1e308, True):
        message = fails(tmp_path, doc(**{"services.web.source": {**source, field: value}}))
        assert f"services.web.source.{field}: " in message


# ------------------------------------------------------------------- strict numbers

BOOL_FIELDS = [
    "services.web.capacity_per_unit",
    "services.web.min_units",
    "services.web.max_units",
    "services.web.observed_headroom",
    "services.web.scale_in.tolerance",
    "services.web.unit_tolerance",
    "services.web.forecast.interval_width",
    "services.web.forecast.max_points",
    "services.web.forecast.uncertainty_samples",
    "services.web.forecast.target_under",
    "services.web.forecast.max_band_factor",
    "services.web.forecast.live_max_under",
    "services.web.forecast.live_max_error",
    "fit.workers",
    "api.port",
]


@pytest.mark.parametrize("field", BOOL_FIELDS)
def test_a_bool_is_not_a_number(tmp_path: Path, field: str) -> None:
    message = fails(tmp_path, doc(**{field: True}))
    assert f"{field}: " in message and "not a boolean" in message, message


@pytest.mark.parametrize(
    "changes",
    [
        {"services.web.max_step_up": {"units": True}},
        {"services.web.max_step_down": {"percent": True}},
        {"services.web.forecast.business_hours": [True, 18]},
    ],
)
def test_bools_are_refused_inside_structures_too(tmp_path: Path, changes: dict[str, Any]) -> None:
    message = fails(tmp_path, doc(**changes))
    assert "not a boolean" in message or "use a number of units" in message


def test_documented_number_forms_are_still_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        doc(
            **{
                "services.web.lead_time": 900,  # a number of seconds
                "services.web.max_step_down": "25%",
                "services.web.max_step_up": 4.0,
                "services.web.capacity_per_unit": 7,
            }
        ),
    )
    monkeypatch.setenv("FORESCALE_SERVICES__WEB__MIN_UNITS", "3")  # env values are text
    settings = load_settings(path)
    web = settings.services["web"]
    assert web.lead_time == dt.timedelta(minutes=15)
    assert web.max_step_down.percent == 25.0 and web.max_step_up.units == 4
    assert web.min_units == 3 and web.capacity_per_unit == 7.0


# ------------------------------------------------------------------ environment JSON


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FORESCALE_SERVICES", "{bad"),
        ("FORESCALE_API", '{"token": "hunter2-secret"'),
        ("FORESCALE_FIT", "[1,"),
        ("FORESCALE_SERVICES__WEB__FORECAST__MODELS", "[bad"),
        ("FORESCALE_SERVICES__WEB", "{bad"),
        ("FORESCALE_SERVICES__WEB__SOURCE", '{"type": "csv", "path": "hunter2-secret"'),
        ("forescale_services__web__forecast__business_hours", "[9,"),
        ("FORESCALE_SERVICES__WEB__SCALE_IN", '{"policy": "never"'),
        ("FORESCALE_SERVICES__WEB__MAX_STEP_UP", "[4"),
    ],
)
def test_malformed_json_in_an_environment_override_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    message = fails(tmp_path, doc())
    assert f"environment variable {variable}: not valid JSON" in message, message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("variable", "value", "read"),
    [
        ("MAX_STEP_DOWN", "25%", lambda web: web.max_step_down.percent == 25),
        ("MAX_STEP_UP", " 4 ", lambda web: web.max_step_up.units == 4),
        ("SCALE_IN", "never", lambda web: web.scale_in.policy == "never"),
        (
            "SCALE_IN",
            '{"stabilization": "2h"}',
            lambda web: web.scale_in.stabilization.seconds == 7200,
        ),
        ("LEAD_TIME", "900", lambda web: web.lead_time == dt.timedelta(minutes=15)),
        ("LEAD_TIME", "0", lambda web: web.lead_time == dt.timedelta(0)),
        ("LEAD_TIME", "1h30m", lambda web: web.lead_time == dt.timedelta(minutes=90)),
    ],
)
def test_environment_overrides_take_the_documented_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, read: Any
) -> None:
    """The README's forms work from the environment as in the file: a step limit in
    percent, scale-in never, a duration as a number of seconds (text, as variables are)."""
    monkeypatch.setenv(f"FORESCALE_SERVICES__WEB__{variable}", value)
    assert read(load_settings(write(tmp_path, doc())).services["web"])


def test_malformed_environment_json_at_check_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, doc())
    monkeypatch.setenv("FORESCALE_SERVICES", "{bad")
    err = cli_error(capsys, tmp_path, "check-config", "--config", str(path))
    assert "FORESCALE_SERVICES" in err


# ------------------------------------------------------------------ duplicate keys

DUPLICATED = """\
services:
  web:
    source: {type: csv, path: demand.csv}
    capacity_per_unit: 100
    min_units: 2
    max_units: 20
    iac: {working_dir: tf, address: web_min}
    min_units: 5
"""


def test_duplicate_keys_in_the_settings_are_refused_with_the_line(tmp_path: Path) -> None:
    message = fails(tmp_path, DUPLICATED)
    assert message.startswith(f"{tmp_path / 'forescale.yaml'}:8: ")
    assert "duplicate key 'min_units'" in message and "line 5" in message


def test_duplicate_top_level_and_flow_keys_are_refused(tmp_path: Path) -> None:
    message = fails(
        tmp_path, "mode: plan\n" + DUPLICATED.replace("\n    min_units: 5", "") + "mode: apply\n"
    )
    assert "duplicate key 'mode'" in message
    message = fails(
        tmp_path,
        DUPLICATED.replace("\n    min_units: 5", "").replace(
            "{type: csv, path: demand.csv}", "{type: csv, path: a.csv, path: b.csv}"
        ),
    )
    assert ":3: duplicate key 'path'" in message


def test_yaml_merge_keys_still_override(tmp_path: Path) -> None:
    # a merge (<<) followed by an explicit key is an override, not a duplicate
    text = DUPLICATED.replace("\n    min_units: 5", "").replace("  web:\n", "  web: &web\n")
    text += "  api:\n    <<: *web\n    iac: {working_dir: tf, address: api_min}\n"
    settings = load_settings(write(tmp_path, text))
    assert settings.services["api"].iac.address == "api_min"
    assert settings.services["api"].max_units == 20


@pytest.mark.parametrize(
    "text",
    [
        b"\xff\xfe not utf-8",
        b"a: 2024-13-45\n",  # PyYAML builds a date and fails with ValueError
        b"a: " + b"[" * 2000 + b"]" * 2000 + b"\n",
        b"1: x\n",
        b"_env_file: x\n",
        b"- a\n- b\n",
    ],
)
def test_unreadable_settings_files_are_one_line_errors(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "forescale.yaml"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "\n" not in str(info.value) and str(info.value).startswith(str(path))


# ------------------------------------------------------------- lead time vs horizon


@pytest.mark.parametrize(("lead", "horizon"), [("48h", "48h"), ("3d", "48h"), ("2h", "1h")])
def test_lead_time_must_be_shorter_than_the_horizon(
    tmp_path: Path, lead: str, horizon: str
) -> None:
    message = fails(
        tmp_path,
        doc(**{"services.web.lead_time": lead, "services.web.forecast.horizon": horizon}),
    )
    assert "services.web: lead_time" in message
    assert "must be shorter than forecast.horizon" in message


# ---------------------------------------------------- two services, one variable


def two_services(
    tmp_path: Path, web_iac: dict[str, Any], api_iac: dict[str, Any]
) -> dict[str, Any]:
    data = doc()
    data["services"]["web"]["iac"] = web_iac
    data["services"]["api"] = {**copy.deepcopy(data["services"]["web"]), "iac": api_iac}
    return data


def test_two_services_on_the_same_variable_are_refused(tmp_path: Path) -> None:
    (tmp_path / "tf").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "tf")
    data = two_services(
        tmp_path,
        {"working_dir": "tf", "var_file": "prod.tfvars", "address": "capacity.web.min"},
        {"working_dir": "link/../link", "var_file": "./prod.tfvars", "address": "capacity.web.min"},
    )
    message = fails(tmp_path, data)
    assert "services api and web both manage capacity.web.min" in message
    assert str((tmp_path / "tf" / "prod.tfvars").resolve()) in message
    # another address in the same file is fine
    data["services"]["api"]["iac"]["address"] = "capacity.api.min"
    load_settings(write(tmp_path, data))


def test_two_auto_tfvars_services_on_one_variable_are_refused(tmp_path: Path) -> None:
    auto = {"working_dir": "tf", "address": "web_min", "write": "auto_tfvars"}
    message = fails(tmp_path, two_services(tmp_path, auto, {**auto, "working_dir": "./tf/"}))
    assert "services api and web both manage web_min" in message
    assert "forescale.auto.tfvars.json" in message


def test_an_auto_tfvars_service_and_an_in_place_one_on_one_variable(tmp_path: Path) -> None:
    auto = {"working_dir": "tf", "address": "web_min", "write": "auto_tfvars"}
    in_place = {"working_dir": "tf", "var_file": "prod.tfvars", "address": "web_min"}
    message = fails(tmp_path, two_services(tmp_path, in_place, auto))
    assert "services api and web both set the Terraform variable web_min" in message
    # in different working directories (different root modules) they do not meet
    load_settings(write(tmp_path, two_services(tmp_path, in_place, {**auto, "working_dir": "tf2"})))


# -------------------------------------------------------------------- step_period


def test_step_period_defaults_to_15_minutes_and_is_bounded(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, doc())).services["web"].step_period == dt.timedelta(
        minutes=15
    )
    got = load_settings(write(tmp_path, doc(**{"services.web.step_period": "30m"})))
    assert got.services["web"].step_period == dt.timedelta(minutes=30)
    assert "services.web.step_period: must be positive" in fails(
        tmp_path, doc(**{"services.web.step_period": 0})
    )
    assert "services.web.step_period: " in fails(
        tmp_path, doc(**{"services.web.step_period": True})
    )


# -------------------------------------------------------------------- the CLI


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "demand.csv").write_text("timestamp,value\n2024-01-01T00:00:00Z,1\n")
    yield tmp_path


@pytest.mark.parametrize(
    "changes",
    [
        {"services.web.lead_time": "99999999999999d"},
        {"services.web.min_units": True},
        {"services.web.max_units": 10**30},
        {"services.web.lead_time": "3d", "services.web.forecast.horizon": "2d"},
        {"services.web.forecast.max_band_factor": 1e308},
    ],
)
def test_check_config_refuses_bad_settings_in_one_line(
    project: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any]
) -> None:
    path = write(project, doc(**changes))
    cli_error(capsys, project, "check-config", "--config", str(path))


def test_check_config_refuses_duplicate_keys(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(project, DUPLICATED)
    assert "duplicate key 'min_units'" in cli_error(
        capsys, project, "check-config", "--config", str(path)
    )


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("upper_window: 99999999999999d", "upper_window"),
        ("upper_window: 99999999999999", "upper_window"),
        ("lower_window: 91d", "lower_window"),
        ("expected_uplift: 1e308", "expected_uplift"),
        ("expected_uplift: +10001%", "expected_uplift"),
    ],
)
def test_check_config_refuses_a_bad_calendar(
    project: Path, capsys: pytest.CaptureFixture[str], line: str, fragment: str
) -> None:
    (project / "events.yaml").write_text(
        f"events:\n  - name: Sale\n    start: 2024-11-29\n    {line}\n"
    )
    path = write(project, doc(events_file="events.yaml"))
    err = cli_error(capsys, project, "check-config", "--config", str(path))
    assert "events.yaml:2: " in err and fragment in err


def test_check_config_accepts_the_bounds(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "events.yaml").write_text(
        "events:\n  - {name: Sale, start: 2024-11-29, upper_window: 90d, lower_window: 90, "
        "expected_uplift: 100}\n"
    )
    path = write(project, doc(events_file="events.yaml"))
    assert main(["check-config", "--config", str(path)]) == 0
    assert "configuration OK" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["daemon", "--apply-every", "99999999999999d", "--once", "--no-serve"],
        ["daemon", "--collect-every", "1" + "0" * 400 + "s", "--once", "--no-serve"],
        ["daemon", "--refit-every", "366d", "--once", "--no-serve"],
        ["collect", "--since", "99999999999999d"],
        ["collect", "--since", "3651d"],
    ],
)
def test_cli_duration_options_too_large_are_one_line_errors(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    path = write(project, doc())
    err = cli_error(capsys, project, *argv, "--config", str(path))
    assert "too long" in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_check_config_in_one_line_for_a_prometheus_url_with_secrets(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"https://u:pw@127.0.0.1:{free_port()}/?api_key=SECRET"
    path = write(project, doc(**{"services.web.source": {"type": "prometheus", "url": url}}))
    err = cli_error(capsys, project, "check-config", "--config", str(path))
    assert "SECRET" not in err and ":pw@" not in err
    assert "services.web.source.url" in err and "services.web.source.query" in err


# ------------------------------------------- every number written, by every role


def test_two_services_on_one_address_through_addresses_are_refused(tmp_path: Path) -> None:
    web = {
        "working_dir": "tf",
        "var_file": "prod.tfvars",
        "addresses": {"min": "capacity.web.min_size", "max": "capacity.web.max_size"},
        "max_base": 30,
    }
    message = fails(
        tmp_path,
        two_services(tmp_path, web, {**web, "addresses": None, "address": "capacity.web.max_size"}),
    )
    assert "services api and web both manage capacity.web.max_size" in message
    # a desired of one service on another's min is the same number
    desired = {**web, "addresses": {"desired": "capacity.web.min_size"}, "max_base": None}
    message = fails(tmp_path, two_services(tmp_path, web, desired))
    assert "both manage capacity.web.min_size" in message
    # one service may not name one number twice either
    twice = {**web, "addresses": {"min": "web_n", "desired": "web_n"}, "max_base": None}
    assert "names web_n twice" in fails(tmp_path, doc(**{"services.web.iac": twice}))
    # different numbers in one file are fine
    other = {**web, "addresses": None, "address": "capacity.api.max_size", "max_base": None}
    load_settings(write(tmp_path, two_services(tmp_path, web, other)))


# ------------------------------------------------- a store that forgets is refused


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite+pysqlite://",
        "sqlite:///file:x?mode=memory&uri=true",
    ],
)
@pytest.mark.parametrize("mode", ["apply", "plan", "commit", "shadow"])
def test_an_in_memory_store_is_refused_where_a_run_writes(
    tmp_path: Path, url: str, mode: str
) -> None:
    message = fails(tmp_path, doc(store_url=url, **{"services.web.mode": mode}))
    assert "store_url" in message and "in memory" in message and "services.web" in message


def test_an_in_memory_store_is_fine_for_a_dry_run(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, doc(store_url="sqlite://"))).store_url == "sqlite://"


# ------------------------------------------ settings and calendars that never end


def _released(path: Path, call: Any) -> BaseException | None:
    """Run ``call`` in a thread; if it blocks on the FIFO at ``path``, open the FIFO's other
    end so the thread can finish, and fail."""
    import threading

    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    if thread.is_alive():
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(timeout=60)
        pytest.fail(f"reading {path} blocked on the named pipe")
    return outcome[0]


def test_a_settings_file_that_is_a_fifo_or_a_device_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "forescale.yaml"
    os.mkfifo(fifo)
    error = _released(fifo, lambda: load_settings(fifo))
    assert isinstance(error, ConfigError) and "not a regular file (a named pipe)" in str(error)
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match=r"not a regular file \(a character device\)"):
        load_settings(link)


def test_a_huge_settings_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from forescale.config.settings import MAX_SETTINGS_BYTES

    path = tmp_path / "forescale.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_SETTINGS_BYTES + 1)
    with pytest.raises(ConfigError, match="larger than"):
        load_settings(path)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_check_config_refuses_a_calendar_that_is_not_a_file(
    project: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    calendar = project / "events.yaml"
    if kind == "fifo":
        os.mkfifo(calendar)
    else:
        calendar.symlink_to("/dev/zero")
    path = write(project, doc(events_file="events.yaml"))
    before = {p.name for p in project.iterdir()}
    capsys.readouterr()
    codes: list[int] = []
    assert (
        _released(calendar, lambda: codes.append(main(["check-config", "--config", str(path)])))
        is None
    )
    err = capsys.readouterr().err
    assert codes == [1]
    assert "events.yaml: cannot read events file: not a regular file" in err, err
    assert err.startswith("forescale: error: ") and err.count("\n") == 1
    assert {p.name for p in project.iterdir()} == before


@pytest.mark.parametrize(
    "branch",
    ["forescale/{svc}", "forescale/{", "{service!x}", "{0}", "{service.x}", "{service:>9}"],
)
def test_commit_branch_may_only_name_the_service(tmp_path: Path, branch: str) -> None:
    """Each passed check-config and was a traceback (exit 3) at the first commit."""
    message = fails(tmp_path, doc(**{"services.web.iac.commit_branch": branch}))
    assert "commit_branch" in message
    ok = doc(**{"services.web.iac.commit_branch": "capacity/{service}-proposal"})
    assert (
        load_settings(write(tmp_path, ok)).services["web"].iac.commit_branch.endswith("-proposal")
    )
