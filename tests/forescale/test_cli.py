"""The CLI from the outside: exit codes, messages, the demo end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forescale.cli import main
from tests.conftest import ROOT, tree_hashes

DEMO_NOW = "2014-11-26T18:00:00-05:00"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORESCALE_")}
    return subprocess.run(
        [sys.executable, "-m", "forescale", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd or ROOT,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_demo_end_to_end_reports_thanksgiving_and_writes_nothing(demo_dir: Path) -> None:
    before = tree_hashes(demo_dir)
    result = run("plan", "--config", str(demo_dir / "forescale.yaml"), "--now", DEMO_NOW)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "forescale plan as of Wed 2014-11-26 18:00 EST" in out
    assert "Forecast peaks" in out and "Capacity schedule" in out
    assert "Thanksgiving \u221230 %" in out and "expected uplift from the calendar" in out
    assert "daily (weekday shape)" in out and "weekly: " in out
    assert "--- a/" in out and "+++ b/" in out and "min_size = " in out
    assert "dry-run: nothing was written" in out
    assert tree_hashes(demo_dir) == before

    # The same plan as JSON: stable fields other tools read, and the same next change.
    as_json = run(
        "plan",
        "--config",
        str(demo_dir / "forescale.yaml"),
        "--now",
        DEMO_NOW,
        "--format",
        "json",
        "--no-collect",
    )
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["schema_version"] == 1 and doc["written"] is False
    [web] = doc["services"]
    effects = {e["name"]: e for e in web["forecast"]["calendar_effects"]}
    assert effects["Thanksgiving"]["source"] == "expected_uplift"
    assert effects["Thanksgiving"]["effect"] == pytest.approx(-0.30)
    assert effects["Thanksgiving"]["occurrences_in_history"] == 0
    assert web["capacity"]["current_units"] == 12
    nxt = web["next_change"]
    assert nxt["from_units"] == 12 and nxt["direction"] == "raise"
    assert f"+    min_size = {nxt['units']}" in web["diff"]
    assert all(s["units"] <= 30 and s["units"] >= 4 for s in web["schedule"])
    assert tree_hashes(demo_dir) == before

    # Two runs give the same report (deterministic forecast, nothing written).
    again = run(
        "plan",
        "--config",
        str(demo_dir / "forescale.yaml"),
        "--now",
        DEMO_NOW,
        "--format",
        "json",
        "--no-collect",
    )
    assert json.loads(again.stdout)["services"][0]["schedule"] == web["schedule"]


@pytest.mark.slow
def test_plan_formats_and_detailed_exitcode(demo_dir: Path, tmp_path: Path) -> None:
    config = str(demo_dir / "forescale.yaml")
    html_file = tmp_path / "r.html"
    assert main(["plan", "-c", config, "--now", DEMO_NOW, "-f", "html", "-o", str(html_file)]) == 0
    page = html_file.read_text()
    assert "<svg" in page and "Thanksgiving" in page and "planned capacity" in page
    md_file = tmp_path / "r.md"
    code = main(
        [
            "plan",
            "-c",
            config,
            "--now",
            DEMO_NOW,
            "-f",
            "markdown",
            "-o",
            str(md_file),
            "--no-collect",
            "--detailed-exitcode",
        ]
    )
    assert code == 2  # a change is pending
    assert "```diff" in md_file.read_text()


def test_tfvars_get_and_set_from_the_cli(tmp_path: Path) -> None:
    target = tmp_path / "prod.tfvars"
    target.write_bytes(b"# keep me\r\nweb_min_size   = 4 # note\r\nother = 1\r\n")
    got = run("tfvars", "get", str(target), "web_min_size")
    assert got.returncode == 0 and got.stdout == "4\n"
    dry = run("tfvars", "set", str(target), "web_min_size", "7", "--dry-run")
    assert dry.returncode == 0 and "-web_min_size   = 4 # note" in dry.stdout
    assert target.read_bytes() == b"# keep me\r\nweb_min_size   = 4 # note\r\nother = 1\r\n"
    done = run("tfvars", "set", str(target), "web_min_size", "7")
    assert done.returncode == 0 and "+web_min_size   = 7 # note" in done.stdout
    assert target.read_bytes() == b"# keep me\r\nweb_min_size   = 7 # note\r\nother = 1\r\n"


@pytest.mark.parametrize(
    ("content", "address", "value", "fragment"),
    [
        (b"a = 1\na = 2\n", "a", "3", "appears twice"),
        (b"a = var.x + 1\n", "a", "3", "not a number literal"),
        (b"a = {\n", "a", "3", ""),
        (b"a = 1\n", "b", "3", "b is not set in this file"),
        (b"a = 1\n", "a", "three", "not a whole number"),
    ],
)
def test_tfvars_set_refusal_exits_1_with_one_line_and_file_untouched(
    tmp_path: Path, content: bytes, address: str, value: str, fragment: str
) -> None:
    target = tmp_path / "x.tfvars"
    target.write_bytes(content)
    result = run("tfvars", "set", str(target), address, value)
    assert result.returncode == 1
    assert result.stderr.startswith("forescale: error: ") and result.stderr.count("\n") == 1
    assert fragment in result.stderr
    assert result.stdout == ""
    assert target.read_bytes() == content


def test_config_errors_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "f.yaml"
    bad.write_text("services: {}\n")
    result = run("plan", "--config", str(bad))
    assert result.returncode == 1
    assert "f.yaml: invalid settings: services" in result.stderr
    assert run("plan", "--now", "tomorrow", "--config", str(bad)).returncode == 1
    assert main(["plan", "--format", "pdf"]) == 1
    assert main(["--help"]) == 0


def test_check_config_on_the_demo(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "-c", str(demo_dir / "forescale.yaml")]) == 0
    out = capsys.readouterr().out
    assert "web: csv source, 4-30 units" in out and "6 calendar event(s)" in out
    assert "configuration OK" in out


def test_a_bug_exits_3(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import forescale.iac_writer.target

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(forescale.iac_writer.target, "file_target", boom)
    assert main(["tfvars", "get", "x.tfvars", "a"]) == 3
    assert "internal error" in capsys.readouterr().err


def test_collect_then_status_shows_coverage_and_age(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(demo_dir / "forescale.yaml")
    assert main(["collect", "-c", config]) == 0
    out = capsys.readouterr().out
    # the demo data ends in 2015: coverage up to the real collect time is 0 %
    assert "web: 10320 samples stored, newest 2015-02-01 04:30Z, coverage 0.0% (7 days)" in out
    assert main(["status", "-c", config, "--now", "2015-02-01T05:30:00Z"]) == 0
    out = capsys.readouterr().out
    assert "newest sample 2015-02-01 04:30Z (1h old), coverage 100.0%" in out
    assert "10320 samples" in out
    (demo_dir / "demand.csv").unlink()
    assert main(["collect", "-c", config]) == 1  # the outage is reported ...
    assert "FAILED (stored history kept)" in capsys.readouterr().out
    assert main(["status", "-c", config, "--now", "2015-02-01T05:30:00Z"]) == 0
    assert "coverage 100.0%" in capsys.readouterr().out  # ... and nothing was lost
