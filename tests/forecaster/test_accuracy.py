"""Accuracy metrics, the record and choosing a model by it (forecaster/accuracy.py).

Records are built by hand: ``actual`` plus ``<model>:yhat`` / ``<model>:upper`` columns,
with expectations worked out from the columns themselves.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from forescale.forecaster.accuracy import (
    Choice,
    choose_model,
    coverage,
    evidence_for,
    headroom,
    mape,
    mase,
    on_grid,
    record_rows,
    seasonal_mae,
    smape,
    widened,
)
from forescale.forecaster.types import CapacityPolicy, Forecast

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 4, tzinfo=UTC)
FIVE_MIN = dt.timedelta(minutes=5)
HOUR = dt.timedelta(hours=1)
NAN = math.nan


# ------------------------------------------------------------------------------- metrics


def test_smape_is_zero_for_a_perfect_forecast_and_computed_per_step() -> None:
    actual = np.array([100.0, 50.0, 7.5])
    assert smape(actual, actual) == 0.0
    # |110 - 100| / mean(110, 100) and |40 - 50| / mean(40, 50), averaged, in percent.
    expected = 100 * (20 / 210 + 20 / 90) / 2
    assert smape(np.array([100.0, 50.0]), np.array([110.0, 40.0])) == pytest.approx(expected)


def test_smape_is_symmetric_treats_zero_over_zero_as_exact_and_skips_nan() -> None:
    a, f = np.array([100.0, 0.0, 30.0]), np.array([60.0, 0.0, 45.0])
    assert smape(a, f) == pytest.approx(smape(f, a))
    assert smape(np.array([0.0, 100.0]), np.array([0.0, 50.0])) == pytest.approx(
        100 * (0 + 100 / 150) / 2
    )
    assert smape(np.array([100.0, NAN, 5.0]), np.array([110.0, 3.0, NAN])) == pytest.approx(
        smape(np.array([100.0]), np.array([110.0]))
    )
    assert math.isnan(smape(np.array([NAN]), np.array([1.0])))


def test_mape_skips_zero_actuals() -> None:
    assert mape(np.array([100.0, 0.0, 50.0]), np.array([110.0, 7.0, 40.0])) == pytest.approx(
        100 * (10 / 100 + 10 / 50) / 2
    )
    assert math.isnan(mape(np.array([0.0, 0.0]), np.array([1.0, 2.0])))


def test_mase_scales_the_mean_absolute_error() -> None:
    a, f = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])
    assert mase(a, f, 0.5) == pytest.approx((1 + 0 + 1) / 3 / 0.5)
    assert math.isnan(mase(a, f, 0.0))
    assert math.isnan(mase(a, f, NAN))


def test_coverage_counts_the_band_edges_as_inside() -> None:
    actual = np.array([1.0, 2.0, 3.0, 4.0, NAN])
    lower = np.full(5, 1.0)
    upper = np.full(5, 3.0)
    assert coverage(actual, lower, upper) == 3 / 4
    assert math.isnan(coverage(np.array([NAN]), np.array([0.0]), np.array([1.0])))


def test_seasonal_mae_compares_with_lag_steps_earlier() -> None:
    y = np.array([1.0, 2.0, 3.0, 5.0, 7.0, 9.0])
    assert seasonal_mae(y, 3) == pytest.approx((4 + 5 + 6) / 3)
    assert seasonal_mae(y, 1) == pytest.approx(np.mean(np.abs(np.diff(y))))
    assert math.isnan(seasonal_mae(y, 6))
    assert math.isnan(seasonal_mae(y, 0))


# --------------------------------------------------------------------- grid and record


def hourly_frame(values: list[float], start: dt.datetime = T0) -> pd.DataFrame:
    v = np.asarray(values, dtype=float)
    return pd.DataFrame(
        {
            "ds": pd.date_range(start, periods=len(v), freq=HOUR),
            "yhat": v,
            "yhat_upper": v * 1.5,
        }
    )


def test_on_grid_gives_each_finer_step_the_row_in_force() -> None:
    frame = hourly_frame([10, 20, 30])
    shuffled = frame.iloc[[2, 0, 1]]
    at = pd.date_range(T0 - HOUR / 2, T0 + 3.5 * HOUR, freq=FIVE_MIN)
    rows = on_grid(shuffled, at, HOUR)

    pd.testing.assert_index_equal(pd.DatetimeIndex(rows["ds"]), at, check_names=False)
    hour = np.asarray((at - pd.Timestamp(T0)) // pd.Timedelta(HOUR))
    inside = (hour >= 0) & (hour < 3)
    expected = np.where(inside, (np.clip(hour, 0, 2) + 1) * 10.0, NAN)
    np.testing.assert_array_equal(rows["yhat"], expected)
    np.testing.assert_array_equal(rows["yhat_upper"], expected * 1.5)


def test_record_rows_line_up_actuals_with_each_models_forecast() -> None:
    ds = pd.date_range(T0, periods=48, freq=FIVE_MIN)  # 00:00 .. 03:55
    y = np.arange(48, dtype=float)
    y[5] = NAN  # not collected: no record row
    actual = pd.DataFrame({"ds": ds, "y": y})
    hourly = Forecast(
        frame=hourly_frame([1, 2]),  # 00:00 .. 02:00 only
        components=(),
        resolution=HOUR,
        interval_width=0.9,
        fitted_at=T0,
        history_end=T0,
        model="a",
    )
    fine_frame = pd.DataFrame({"ds": ds, "yhat": y + 1, "yhat_upper": y + 2})
    fine = Forecast(
        frame=fine_frame,
        components=(),
        resolution=FIVE_MIN,
        interval_width=0.9,
        fitted_at=T0,
        history_end=T0,
        model="b",
    )
    start, end = T0 + FIVE_MIN, T0 + 3 * HOUR
    record = record_rows(actual, {"a": hourly, "b": fine}, start=start, end=end)

    kept = (ds >= pd.Timestamp(start)) & (ds < pd.Timestamp(end)) & ~np.isnan(y)
    assert list(record.columns) == ["ds", "actual", "a:yhat", "a:upper", "b:yhat", "b:upper"]
    np.testing.assert_array_equal(record["ds"], ds[kept])
    np.testing.assert_array_equal(record["actual"], y[kept])
    hour = np.asarray((ds[kept] - pd.Timestamp(T0)) // pd.Timedelta(HOUR))
    np.testing.assert_array_equal(record["a:yhat"], np.where(hour < 2, hour + 1.0, NAN))
    np.testing.assert_array_equal(record["b:upper"], y[kept] + 2)


# ------------------------------------------------------------------- evidence and choice


def make_record(actual: np.ndarray, **models: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    """A record: ``models`` maps a name to its (yhat, upper) arrays."""
    columns: dict[str, np.ndarray] = {
        "ds": np.asarray(pd.date_range(T0, periods=len(actual), freq=FIVE_MIN)),
        "actual": actual,
    }
    for name, (yhat, upper) in models.items():
        columns[f"{name}:yhat"] = yhat
        columns[f"{name}:upper"] = upper
    return pd.DataFrame(columns)


def demand(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 + 50 * np.sin(np.arange(n) / 12) + rng.uniform(0, 5, n)


def test_a_band_exceeded_on_a_fifth_of_steps_is_widened_until_it_holds() -> None:
    actual = demand()
    n = actual.size
    exceeded = np.arange(n) % 5 == 0  # 20 % of steps
    rng = np.random.default_rng(1)
    upper = np.where(exceeded, actual / rng.uniform(1.05, 1.2, n), actual * 1.05)
    # A point forecast that is off by half on every other step: widening it costs more.
    yhat = np.where(np.arange(n) % 2 == 0, actual * 0.5, actual * 0.95)
    record = make_record(actual, m=(yhat, upper))
    target = 0.05

    e = evidence_for(record, "m", target_under=target, max_factor=3.0)
    assert e is not None
    assert e.steps == n
    assert e.under_share == pytest.approx(0.2)
    assert e.basis == "band"
    assert e.factor > 1
    assert e.under_share_widened <= target
    assert e.under_share_widened == np.mean(actual > e.factor * upper)
    # No more than needed: a hair less lets another step through.
    assert np.mean(actual > e.factor * 0.999 * upper) > e.under_share_widened
    assert e.provisioned_ratio == pytest.approx((e.factor * upper).sum() / actual.sum())
    assert e.smape == pytest.approx(smape(actual, yhat))


def test_a_good_point_forecast_beats_a_band_that_is_wide_everywhere() -> None:
    actual = demand()
    record = make_record(actual, m=(actual.copy(), actual * 2))
    e = evidence_for(record, "m", target_under=0.01, max_factor=3.0)
    assert e is not None
    assert (e.basis, e.factor, e.under_share_widened) == ("point", 1.0, 0.0)
    assert e.provisioned_ratio == pytest.approx(1.0)


def test_the_factor_is_capped_at_max_factor() -> None:
    actual = demand()
    low = actual / 5
    e = evidence_for(make_record(actual, m=(low, low)), "m", target_under=0.01, max_factor=3.0)
    assert e is not None
    assert e.factor == 3.0
    assert e.under_share_widened == 1.0


def test_evidence_needs_the_models_columns_and_finite_rows() -> None:
    actual = demand(10)
    assert evidence_for(make_record(actual), "m", target_under=0.01, max_factor=3.0) is None
    nan = np.full(10, NAN)
    record = make_record(actual, m=(nan, nan))
    assert evidence_for(record, "m", target_under=0.01, max_factor=3.0) is None


def choose(record: pd.DataFrame, models: list[str], **kwargs: float) -> Choice:
    options: dict[str, float] = {"target_under": 0.01, "max_factor": 3.0, "min_steps": 48}
    options.update(kwargs)
    return choose_model(
        record,
        models,
        target_under=options["target_under"],
        max_factor=options["max_factor"],
        min_steps=int(options["min_steps"]),
        primary=models[0],
        switch_margin=options.get("switch_margin", 0.1),
    )


def test_a_short_record_keeps_the_primary_with_its_own_band() -> None:
    actual = demand(47)
    record = make_record(actual, p=(actual * 3, actual * 3), c=(actual, actual))
    choice = choose(record, ["p", "c"], min_steps=48)
    assert (choice.model, choice.basis, choice.factor) == ("p", "band", 1.0)
    assert "too short" in choice.reason
    assert {e.model for e in choice.evidence} == {"p", "c"}

    empty = choose(pd.DataFrame(columns=["ds", "actual"]), ["p", "c"])
    assert (empty.model, empty.factor) == ("p", 1.0)
    # One step more and the better challenger is chosen.
    longer = make_record(demand(48), p=(demand(48) * 3, demand(48) * 3), c=(demand(48),) * 2)
    assert choose(longer, ["p", "c"], min_steps=48).model == "c"


def test_a_clearly_cheaper_challenger_wins() -> None:
    actual = demand()
    record = make_record(actual, p=(actual * 1.5, actual * 1.5), c=(actual * 1.1, actual * 1.1))
    choice = choose(record, ["p", "c"])
    assert choice.model == "c"
    assert choice.factor == 1.0
    assert "c: the cheapest headroom that held" in choice.reason


def test_a_marginally_cheaper_challenger_does_not_replace_the_primary() -> None:
    actual = demand()
    # 5 % less provisioned demand, under the 10 % switch margin.
    record = make_record(actual, p=(actual * 1.2, actual * 1.2), c=(actual * 1.14, actual * 1.14))
    assert choose(record, ["p", "c"]).model == "p"
    assert choose(record, ["p", "c"], switch_margin=0.01).model == "c"


def test_a_primary_that_cannot_hold_is_replaced_by_one_that_does() -> None:
    actual = demand()
    under = np.arange(actual.size) % 10 == 0  # 10 % of steps far above even 3x the band
    primary = np.where(under, actual / 4, actual)
    challenger = actual * 2.9
    record = make_record(actual, p=(primary, primary), c=(challenger, challenger))
    choice = choose(record, ["p", "c"])
    assert choice.model == "c"
    p, c = sorted(choice.evidence, key=lambda e: e.model != "p")
    assert p.factor == 3.0
    assert p.under_share_widened > 0.01
    assert c.provisioned_ratio > p.provisioned_ratio  # dearer, but it held


def test_when_nothing_holds_the_least_under_provisioned_model_is_chosen() -> None:
    actual = demand()
    steps = np.arange(actual.size)
    p = np.where(steps % 5 == 0, actual / 4, actual)  # 20 % of steps out of reach
    c = np.where(steps % 10 == 0, actual / 4, actual)  # 10 %
    choice = choose(make_record(actual, p=(p, p), c=(c, c)), ["p", "c"])
    assert choice.model == "c"
    assert "no headroom held" in choice.reason


def test_a_widened_band_choice_is_explained_and_applied_by_headroom() -> None:
    actual = demand()
    n = actual.size
    exceeded = np.arange(n) % 5 == 0
    upper = np.where(exceeded, actual / 1.1, actual * 1.02)
    yhat = np.where(np.arange(n) % 2 == 0, actual * 0.5, actual)
    choice = choose(make_record(actual, m=(yhat, upper)), ["m"], target_under=0.05)
    assert (choice.model, choice.basis) == ("m", "band")
    assert choice.band_factor == choice.factor > 1
    assert "its own band was exceeded on 20.0% of steps" in choice.reason

    fc = forecast([100.0, 200.0], [150.0, 260.0])
    wide = headroom(fc, choice)
    np.testing.assert_allclose(wide.frame["yhat_upper"], fc.frame["yhat_upper"] * choice.factor)
    np.testing.assert_array_equal(wide.frame["yhat"], fc.frame["yhat"])


def forecast(yhat: list[float], upper: list[float]) -> Forecast:
    frame = pd.DataFrame(
        {
            "ds": pd.date_range(T0, periods=len(yhat), freq=HOUR),
            "yhat": yhat,
            "yhat_lower": [v / 2 for v in yhat],
            "yhat_upper": upper,
        }
    )
    return Forecast(
        frame=frame,
        components=(),
        resolution=HOUR,
        interval_width=0.9,
        fitted_at=T0,
        history_end=T0 - HOUR,
        model="m",
        notes=("fitted",),
    )


def test_headroom_on_the_point_basis_replaces_the_band() -> None:
    fc = forecast([100.0, 200.0], [300.0, 500.0])
    choice = Choice(model="m", basis="point", factor=1.25, reason="")
    out = headroom(fc, choice)
    np.testing.assert_allclose(out.frame["yhat_upper"], [125.0, 250.0])
    np.testing.assert_array_equal(out.frame["yhat_lower"], fc.frame["yhat_lower"])
    assert out.notes[0] == "fitted"
    assert "point forecast x1.25" in out.notes[-1]
    assert fc.frame["yhat_upper"].tolist() == [300.0, 500.0]  # the input is not modified


def test_widened_multiplies_only_the_upper_edge() -> None:
    fc = forecast([100.0, 200.0], [150.0, 260.0])
    assert widened(fc, 1.0) is fc
    out = widened(fc, 2.0, note="x2")
    np.testing.assert_allclose(out.frame["yhat_upper"], [300.0, 520.0])
    pd.testing.assert_frame_equal(
        out.frame.drop(columns="yhat_upper"), fc.frame.drop(columns="yhat_upper")
    )
    assert out.notes == ("fitted", "x2")


def test_the_record_lowers_the_floor_headroom_when_the_forecast_holds_without_it() -> None:
    """A point forecast that is right within 2 % holds the target on its own: the floor's
    30 % headroom would only add cost, so the record asks for less (never more)."""
    from forescale.forecaster.accuracy import Floor, choose_model

    ds = pd.date_range("2024-03-01", periods=288, freq="5min", tz="UTC")
    rng = np.random.default_rng(3)
    actual = 100 + 20 * np.sin(np.arange(288) / 288 * 2 * np.pi) + rng.normal(0, 1, 288)
    record = pd.DataFrame(
        {"ds": ds, "actual": actual, "good:yhat": actual * 1.02, "good:upper": actual * 1.5}
    )
    choice = choose_model(
        record, ["good"], target_under=0.03, min_steps=48, floor=Floor(headroom=0.3)
    )
    assert choice.floor_headroom is not None and choice.floor_headroom < 0.3
    assert "observed floor needs only" in choice.reason
    [evidence] = choice.evidence
    assert evidence.provisioned_ratio < 1.1  # the floor at +30 % would have cost >= 1.3x
    # the configured headroom is the most it ever gets
    assert all(e.floor_headroom is not None and e.floor_headroom <= 0.3 for e in choice.evidence)


# ------------------------------------------------------------- the record as it is served


def test_a_coarse_record_is_judged_at_the_daemons_cadence() -> None:
    """Hourly samples, a daemon applying every 15 minutes: the demand between two samples
    is the line between them (never across a missing sample), each forecast holds until
    the next sample, and a record as fine as the cadence is left alone."""
    from forescale.forecaster.accuracy import at_cadence

    ds = pd.date_range(T0, periods=5, freq=HOUR).delete(3)  # 03:00 is missing
    record = pd.DataFrame(
        {"ds": ds, "actual": [0.0, 12.0, 30.0, 4.0], "m:yhat": [1.0, 2.0, 3.0, 5.0]}
    )
    out = at_cadence(record, dt.timedelta(minutes=15))
    assert list(out.columns) == ["ds", "actual", "m:yhat"]
    assert out["actual"].tolist() == [0, 3, 6, 9, 12, 16.5, 21, 25.5, 30, 4]
    assert out["m:yhat"].tolist() == [1, 1, 1, 1, 2, 2, 2, 2, 3, 5]
    assert pd.Timestamp(T0 + 4 * HOUR) == out["ds"].iloc[-1]  # 02:15-03:45: not bridged
    fine = record.assign(ds=pd.date_range(T0, periods=4, freq=FIVE_MIN))
    pd.testing.assert_frame_equal(at_cadence(fine, FIVE_MIN), fine)


def test_serving_raises_ahead_holds_after_and_counts_whole_units() -> None:
    from forescale.forecaster.accuracy import Serving

    serving = Serving(
        unit=10.0, min_units=1, max_units=5, lead=dt.timedelta(minutes=10), hold=FIVE_MIN
    )
    edge = np.array([5.0, 5.0, 5.0, 31.0, 5.0, 5.0, 5.0, NAN, 5.0])
    held = serving.held(edge, FIVE_MIN)
    # in force two steps ahead of the 31 and one step after it; an unknown step is skipped
    np.testing.assert_array_equal(held, [5, 31, 31, 31, 31, 5, 5, 5, 5])
    floor = np.array([0.0, 0, 0, 0, 0, 0, 0, 0, 95])
    served = serving.served(held, floor, cap=None)
    # whole units of 10 (31 needs 4), at least 1, at most 5 (the floor's 95 is clamped)
    np.testing.assert_array_equal(served, [10, 40, 40, 40, 40, 10, 10, 10, 50])
    np.testing.assert_array_equal(serving.served(held, floor, cap=20.0)[:5], [10, 20, 20, 20, 20])
    continuous = Serving()
    np.testing.assert_array_equal(
        continuous.served(edge[:3], np.array([0, 7, 0.0]), None), [5, 7, 5]
    )


def test_serving_counts_units_with_the_policys_unit_tolerance() -> None:
    """The record rounds as the planner does (capacity.units_for with the tolerance)."""
    from forescale.forecaster.accuracy import Serving
    from forescale.forecaster.capacity import units_for

    policy = CapacityPolicy(capacity_per_unit=10.0, min_units=0, max_units=99, unit_tolerance=0.2)
    serving = Serving.of(policy)
    assert serving.tolerance == 0.2
    demand = np.array([0.0, 1.0, 31.0, 32.0, 33.0, NAN])
    served = serving.served(demand, np.zeros(len(demand)), None)
    expected = [units_for(d, 10.0, 0.2) * 10.0 for d in demand[:-1]]
    np.testing.assert_array_equal(served[:-1], expected)
    np.testing.assert_array_equal(served[:-1], [0, 10, 30, 30, 40])
    assert math.isnan(served[-1])


def test_the_record_credits_the_plans_hold_with_serving() -> None:
    """A forecast that is right but five minutes late everywhere: judged point by point it
    is short on every rise, so it needs headroom; served as the plan serves it (raised 15
    minutes ahead of the demand), it holds as it is."""
    from forescale.forecaster.accuracy import Serving

    ds = pd.date_range(T0, periods=288, freq=FIVE_MIN)
    actual = 100 + 50 * np.sin(np.arange(288) / 288 * 2 * np.pi * 4)
    record = pd.DataFrame(
        {"ds": ds, "actual": actual, "m:yhat": np.roll(actual, 1), "m:upper": np.roll(actual, 1)}
    )
    plain = evidence_for(record, "m", target_under=0.01, max_factor=3.0)
    served = evidence_for(
        record,
        "m",
        target_under=0.01,
        max_factor=3.0,
        serving=Serving(lead=dt.timedelta(minutes=15)),
    )
    assert plain is not None and served is not None
    assert plain.factor > 1.0 and served.factor == 1.0
    assert served.under_share_widened <= 0.01


def test_every_entry_point_defaults_to_the_engines_target_under_and_allowance() -> None:
    """The settings file and the CLI cannot import the engine (the settings depend on
    nothing; the CLI imports lazily), so they restate the defaults: they must be the same."""
    from click.testing import CliRunner

    from forescale.cli import cli
    from forescale.config.settings import ForecastConfig, ServiceSettings
    from forescale.forecaster.accuracy import RECORD_WINDOW, TARGET_UNDER
    from forescale.forecaster.backtest import BacktestConfig
    from forescale.forecaster.capacity import UNIT_TOLERANCE
    from forescale.forecaster.ceiling import PEAK_ALLOWANCE
    from forescale.usecases.backtest import BacktestArgs

    assert ForecastConfig().target_under == TARGET_UNDER
    assert ForecastConfig().peak_allowance == PEAK_ALLOWANCE
    assert ForecastConfig().record_window == RECORD_WINDOW
    assert ServiceSettings.model_fields["unit_tolerance"].default == UNIT_TOLERANCE
    assert BacktestArgs(config=None, service=None, csv_path=None).unit_tolerance == UNIT_TOLERANCE
    assert BacktestConfig.__dataclass_fields__["record_window"].default == RECORD_WINDOW
    assert BacktestArgs(config=None, service=None, csv_path=None).target_under == TARGET_UNDER
    assert BacktestConfig.__dataclass_fields__["target_under"].default == TARGET_UNDER
    shown = " ".join(CliRunner().invoke(cli, ["backtest", "--help"]).output.split())
    assert f"[default: {TARGET_UNDER};" in shown.split("--target-under", 1)[1]
    assert f"[default: {PEAK_ALLOWANCE};" in shown.split("--peak-allowance", 1)[1]
    assert f"[default: {UNIT_TOLERANCE};" in shown.split("--unit-tolerance", 1)[1]
