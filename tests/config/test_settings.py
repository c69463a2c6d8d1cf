from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from forescale.config.durations import format_duration, parse_duration
from forescale.config.settings import load_settings
from forescale.errors import ConfigError

BASE = """\
display_timezone: America/New_York
events_file: events.yaml
services:
  web:
    source: {type: csv, path: demand.csv, timezone: America/New_York}
    capacity_per_unit: 100
    min_units: 2
    max_units: 20
    max_step_up: 4
    max_step_down: "25%"
    lead_time: 15m
    scale_in: {policy: after_peak, stabilization: 2h}
    forecast: {horizon: 24h, country_holidays: US, business_hours: [9, 18]}
    iac: {working_dir: tf, var_file: prod.tfvars, address: capacity.web.min}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "forescale.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_and_resolves_paths_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, BASE))
    web = settings.services["web"]
    assert web.source.path == tmp_path / "demand.csv"
    assert web.iac.var_file_path == tmp_path / "tf" / "prod.tfvars"
    assert settings.events_file == tmp_path / "events.yaml"
    assert settings.store_url == f"sqlite:///{tmp_path}/.forescale/forescale.db"
    assert web.max_step_up.units == 4 and web.max_step_down.percent == 25.0
    assert web.lead_time == dt.timedelta(minutes=15)
    assert web.scale_in.stabilization == dt.timedelta(hours=2)
    assert settings.mode == "dry-run"
    assert settings.forecast_timezone(web) == "America/New_York"


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESCALE_CONFIG", str(write(tmp_path, BASE)))
    assert load_settings().services["web"].max_units == 20


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESCALE_SERVICES__WEB__MIN_UNITS", "5")
    monkeypatch.setenv("FORESCALE_DISPLAY_TIMEZONE", "Europe/Berlin")
    settings = load_settings(write(tmp_path, BASE))
    assert settings.services["web"].min_units == 5
    assert settings.services["web"].max_units == 20  # deep merge keeps the file's other keys
    assert settings.display_timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("min_units: 2", "min_units: 40", "services.web: min_units (40) is above max_units (20)"),
        ("capacity_per_unit: 100", "capacity_per_unit: .nan", "services.web.capacity_per_unit"),
        ("capacity_per_unit: 100", "capacity_per_unit: -1", "services.web.capacity_per_unit"),
        ("lead_time: 15m", "lead_time: soon", "services.web.lead_time: not a duration: 'soon'"),
        ('max_step_down: "25%"', "max_step_down: lots", "services.web.max_step_down"),
        ("America/New_York\nevents", "Mars/Olympus\nevents", "display_timezone: unknown timezone"),
        ("address: capacity.web.min", "address: 'var.x + 1'", "services.web.iac.address"),
        ("max_units: 20", "max_units: 20\n    max_unit: 3", "services.web.max_unit: Extra inputs"),
        ("policy: after_peak", "policy: sometimes", "services.web.scale_in.policy"),
        ("horizon: 24h", "horizon: 0s", "services.web.forecast.horizon: horizon must be positive"),
        ("business_hours: [9, 18]", "business_hours: [18, 9]", "business_hours"),
        ("type: csv", "type: graphite", "services.web.source"),
    ],
)
def test_errors_name_the_file_and_the_field(
    tmp_path: Path, old: str, new: str, fragment: str
) -> None:
    assert old in BASE
    path = write(tmp_path, BASE.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid settings: ")
    assert fragment in message
    assert "\n" not in message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("min_units: 2", "min_units: [2"))
    with pytest.raises(ConfigError, match=r"forescale\.yaml:\d+: not valid YAML"):
        load_settings(path)


def test_missing_file_and_missing_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORESCALE_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="pass --config FILE or set FORESCALE_CONFIG"):
        load_settings()
    with pytest.raises(ConfigError, match="cannot read settings"):
        load_settings(tmp_path / "nope.yaml")


def test_the_bundled_demo_config_is_valid() -> None:
    settings = load_settings(Path(__file__).parents[2] / "config/examples/demo/forescale.yaml")
    assert settings.services["web"].iac.address == "capacity.web.min_size"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1.5h", 5400),
        (300, 300),
    ],
)
def test_parse_duration(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "15", "m15", "1h x", "-5m", float("nan"), True])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)  # type: ignore[arg-type]


def test_format_duration_round_trips() -> None:
    for text in ["15m", "1h30m", "2d", "0s", "1d2h"]:
        assert format_duration(parse_duration(text)) == text


def test_the_most_the_demand_can_be_is_set_or_inferred_for_percentages() -> None:
    from forescale.config.settings import CloudWatchSource, CsvSource, PrometheusSource

    assert CsvSource(path=Path("d.csv"), max_value=100).demand_max() == 100
    assert PrometheusSource(url="http://p:9090", query="up").demand_max() is None
    cpu = CloudWatchSource(
        region="eu-west-1", namespace="AWS/EC2", metric_name="CPUUtilization", statistic="Average"
    )
    assert cpu.demand_max() == 100.0  # CloudWatch reports it in Percent
    summed = cpu.model_copy(update={"statistic": "Sum"})
    assert summed.demand_max() is None  # a sum of percentages is no percentage
    requests = CloudWatchSource(
        region="eu-west-1",
        namespace="AWS/ELB",
        metric_name="RequestCount",
        statistic="Sum",
        period=dt.timedelta(minutes=5),
    )
    assert requests.demand_max() is None
    assert requests.model_copy(update={"unit": "Percent"}).demand_max() == 100.0
    assert requests.model_copy(update={"max_value": 5e3}).demand_max() == 5e3


def test_the_new_candidates_and_the_peak_allowance_are_settings() -> None:
    from forescale.config.settings import ForecastConfig

    fc = ForecastConfig()
    assert fc.models == ("ensemble", "prophet", "seasonal_naive", "recent_peak", "reactive")
    assert fc.peak_allowance == 1.1
    with pytest.raises(ValueError, match="peak_allowance"):
        ForecastConfig(peak_allowance=0.5)
