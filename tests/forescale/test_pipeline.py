"""The pipeline with a cheap forecaster: collect -> store -> forecast -> plan -> diff."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from forescale.config.settings import load_settings
from forescale.store import Store
from forescale.usecases.collect import collect_all
from forescale.usecases.context import App
from forescale.usecases.plan import plan_all
from tests.conftest import tree_hashes
from tests.fakes import FAST

NOW = dt.datetime(2014, 11, 26, 23, 0, tzinfo=dt.UTC)  # 18:00 in New York


@pytest.fixture
def store(demo_dir: Path) -> Store:
    s = Store.open(f"sqlite:///{demo_dir}/.forescale/t.db")
    yield s
    s.close()


def test_plan_uses_only_data_before_now_and_writes_nothing(demo_dir: Path, store: Store) -> None:
    settings = load_settings(demo_dir / "forescale.yaml")
    before = tree_hashes(demo_dir)
    [first] = collect_all(settings, store, clock=lambda: NOW)
    assert first.written == 10320 and first.error is None  # every observed 30-min sample
    assert first.coverage is not None and first.coverage > 0.99  # the 7 days before NOW
    assert first.account is not None and first.warning is None  # every row is a sample
    [second] = collect_all(settings, store)
    assert second.written > 0  # incremental re-read of the overlap ...
    assert len(store.load_samples("web")) == 10320  # ... idempotent
    assert store.last_collect("web").written == second.written  # type: ignore[union-attr]

    report = plan_all(App(settings=settings, store=store, candidates=FAST), now=NOW)
    assert tree_hashes(demo_dir) == before  # dry-run: no file changed
    assert not report.failures
    [web] = report.services
    assert web.history.end == NOW  # a sample stamped exactly now counts as seen
    assert web.forecast.frame["ds"].iloc[0] == pd.Timestamp(NOW) + pd.Timedelta(minutes=30)
    assert web.plan.current_units == 12
    assert web.data_fresh and web.observed_demand is not None
    assert web.next_step is not None and web.change is not None
    body = web.change.diff.splitlines()[2:]
    assert sum(line.startswith("-") for line in body) == 1
    assert sum(line.startswith("+") for line in body) == 1
    assert f"min_size = {web.next_step.units}" in web.change.diff
    runs = store.latest_forecast("web")
    assert runs is not None and runs.model == "seasonal_naive_1d"
    [change] = store.list_changes("web")
    assert change.status == "planned" and change.to_units == web.next_step.units


def test_stale_metrics_never_scale_in(demo_dir: Path, store: Store) -> None:
    settings = load_settings(demo_dir / "forescale.yaml")
    collect_all(settings, store)
    # Pretend the source stopped two hours before 'now': the newest sample is stale.
    late = NOW + dt.timedelta(hours=2)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM samples WHERE ts > ?", (int(NOW.timestamp()) - 1800,))
    report = plan_all(App(settings=settings, store=store, candidates=FAST), now=late)
    [web] = report.services
    assert not web.data_fresh and web.observed_demand is None
    assert all(step.direction == "raise" for step in web.plan.steps)
    assert (web.plan.desired["units"] >= web.plan.current_units).all()


def test_a_failing_service_is_reported_and_the_others_still_planned(
    demo_dir: Path, store: Store
) -> None:
    text = (demo_dir / "forescale.yaml").read_text()
    text = text.replace(
        "services:\n",
        "services:\n  broken:\n    source: {type: csv, path: nope.csv}\n"
        "    capacity_per_unit: 1\n    min_units: 1\n    max_units: 2\n"
        "    iac: {working_dir: terraform, address: nope}\n",
        1,
    )
    (demo_dir / "forescale.yaml").write_text(text)
    settings = load_settings(demo_dir / "forescale.yaml")
    collect_all(settings, store, services=["web"])
    report = plan_all(App(settings=settings, store=store, candidates=FAST), now=NOW)
    assert [s.name for s in report.services] == ["web"]
    [failure] = report.failures
    assert failure.name == "broken" and "stored sample" in failure.error


def test_a_source_outage_keeps_stored_history_and_is_recorded(demo_dir: Path, store: Store) -> None:
    settings = load_settings(demo_dir / "forescale.yaml")
    collect_all(settings, store)
    before = store.load_samples("web")
    (demo_dir / "demand.csv").unlink()  # the source goes away
    [result] = collect_all(settings, store)
    assert result.error is not None and "not found" in result.error and result.written == 0
    pd.testing.assert_frame_equal(store.load_samples("web"), before)
    run = store.last_collect("web")
    assert run is not None and run.error == result.error
    # Planning still works on the stored (now old) history.
    report = plan_all(App(settings=settings, store=store, candidates=FAST), now=NOW)
    assert [s.name for s in report.services] == ["web"]


class _Unasked:
    """A source that answers with what was asked for, plus a point a day before the start
    and one a day after the real time."""

    def __init__(self, wall: dt.datetime) -> None:
        self.wall = wall

    def fetch(self, start: dt.datetime | None, end: dt.datetime | None) -> pd.DataFrame:
        begin = start or self.wall - dt.timedelta(days=2)
        ds = list(pd.date_range(begin, self.wall, freq="5min"))
        extra = [
            pd.Timestamp(begin - dt.timedelta(days=1)),
            pd.Timestamp(self.wall + dt.timedelta(days=1)),
        ]
        frame = pd.DataFrame(
            {"ds": extra[:1] + ds + extra[1:], "y": [99999.0] + [5.0] * len(ds) + [88888.0]}
        )
        return frame.sort_values("ds").reset_index(drop=True)


def test_points_a_source_returns_unasked_are_not_stored(demo_dir: Path, store: Store) -> None:
    """A point a day ahead became the newest sample: every later collect started after
    it, fetched nothing and said "0 samples stored" until that day came."""
    settings = load_settings(demo_dir / "forescale.yaml")
    wall = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    source = _Unasked(wall)
    since = wall - dt.timedelta(days=1)
    [first] = collect_all(settings, store, since=since, build=lambda s: source, wall=lambda: wall)
    assert first.error is None and first.last_sample == wall
    assert (
        first.warning is not None
        and "2 point(s) the source returned were not stored" in first.warning
    )
    assert "later than now" in first.warning and "before 2026-02-28 12:00Z" in first.warning
    stored = store.load_samples("web")
    assert stored["y"].max() == 5.0 and stored["ds"].max() == pd.Timestamp(wall)
    later = wall + dt.timedelta(hours=1)
    source.wall = later
    [second] = collect_all(settings, store, build=lambda s: source, wall=lambda: later)
    assert second.last_sample == later and second.written == 25  # the hour re-read and 12 new


class _Periodic:
    """A source answering at a fixed period: 100, and 1000 at minute 30 of each hour
    (an hourly Maximum is 1000 everywhere)."""

    def __init__(self, period: str, end: dt.datetime) -> None:
        self.period, self.end = period, end

    def fetch(self, start: dt.datetime | None, end: dt.datetime | None) -> pd.DataFrame:
        ds = pd.date_range(start or self.end - dt.timedelta(days=2), self.end, freq=self.period)
        y = [1000.0 if (self.period == "1h" or t.minute == 30) else 100.0 for t in ds]
        return pd.DataFrame({"ds": ds, "y": y})


def test_a_coarser_backfill_never_overwrites_finer_samples(demo_dir: Path, store: Store) -> None:
    """A long --since at an automatic hourly period replaced each hour's first 5-minute
    sample with the hour's maximum: a spike at :00 that never happened."""
    settings = load_settings(demo_dir / "forescale.yaml")
    end = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    fine = _Periodic("5min", end)
    collect_all(settings, store, build=lambda s: fine, wall=lambda: end)
    held = store.load_samples("web")
    [backfill] = collect_all(
        settings,
        store,
        since=end - dt.timedelta(days=10),
        build=lambda s: _Periodic("1h", end),
        wall=lambda: end,
    )
    assert backfill.error is None and backfill.warning is not None
    assert "at the source's 1h period were not stored over the 5m samples" in backfill.warning
    after = store.load_samples("web")
    recent = after[after["ds"] >= held["ds"].iloc[0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(recent, held)  # the 5-minute history is as it was
    older = after[after["ds"] < held["ds"].iloc[0]]
    assert len(older) == 8 * 24 and set(older["y"]) == {1000.0}  # the 8 days before it


@pytest.mark.parametrize("literal", ["100000000000000000000", "9223372036854775808", "1000001"])
def test_a_capacity_beyond_any_bound_in_the_file_is_refused_not_a_crash(
    demo_dir: Path, store: Store, literal: str
) -> None:
    """min_size above int64 crashed the plan (OverflowError) and answered 500 in the API."""
    tfvars = demo_dir / "terraform" / "terraform.tfvars"
    text = tfvars.read_text()
    tfvars.write_text(text.replace("min_size = 12 ", f"min_size = {literal} ", 1))
    settings = load_settings(demo_dir / "forescale.yaml")
    collect_all(settings, store, clock=lambda: NOW)
    report = plan_all(App(settings=settings, store=store, candidates=FAST), now=NOW)
    [(name, error)] = [(f.name, f.error) for f in report.failures]
    assert name == "web" and "is above 1,000,000, the most units forescale manages" in error


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        (
            "forescale.auto.tfvars.json",
            '{"capacity": {"web": {"min_size": 14}}}',
            "sets capacity, overriding the value forescale manages",
        ),
        (
            "forescale.schedule.auto.tfvars.json",
            '{"forescale_schedule": {"2014-11-27T12:15Z": {"min_size": 20}}}',
            "still holds scheduled actions",
        ),
    ],
)
def test_a_file_left_from_another_write_mode_is_refused(
    demo_dir: Path, store: Store, name: str, content: str, fragment: str
) -> None:
    """Switched back to in_place, forescale planned from the tfvars value while the old
    auto file (or schedule) decided what Terraform applied; every apply was then refused
    with a false reason, or the scheduled actions kept running."""
    (demo_dir / "terraform" / name).write_text(content)
    settings = load_settings(demo_dir / "forescale.yaml")
    collect_all(settings, store, clock=lambda: NOW)
    report = plan_all(App(settings=settings, store=store, candidates=FAST), now=NOW)
    [(service, error)] = [(f.name, f.error) for f in report.failures]
    assert service == "web" and fragment in error and "delete it" in error
