"""The product's candidate models and their live record (forecaster/candidates.py).

Most tests replace Prophet (``forescale.forecaster.model.fit_forecast``) with the one-day seasonal
naive fake from ``tests/fakes.py``; two slow tests fit the real thing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forescale.codec import decode_meta, encode_meta
from forescale.errors import ForecastError
from forescale.forecaster.accuracy import on_grid, record_rows
from forescale.forecaster.backtest import BacktestConfig, run_backtest
from forescale.forecaster.candidates import (
    DEFAULT_MODELS,
    PROPHET,
    CompactForecast,
    Fitted,
    compact,
    fit_candidates,
    live_record,
)
from forescale.forecaster.challengers import ENSEMBLE, SEASONAL_NAIVE
from forescale.forecaster.decision import choose
from forescale.forecaster.policies import REACTIVE, RECENT_PEAK
from forescale.forecaster.types import CapacityPolicy, Event, Forecast, ForecastSettings
from tests import fakes

UTC = dt.UTC
FIVE_MIN = dt.timedelta(minutes=5)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
START = dt.datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
SETTINGS = ForecastSettings(horizon=DAY, uncertainty_samples=100)


def weekly_series(
    days: float, *, step: dt.timedelta = FIVE_MIN, noise: float = 0.05, seed: int = 0
) -> pd.DataFrame:
    """Requests/s: 100 at night, a sine peak of 180 at 12:00 UTC, weekends x0.6."""
    ds = pd.date_range(START, periods=int(days * (DAY / step)), freq=step)
    hours = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    daily = 100 + 80 * np.clip(np.sin(2 * np.pi * (hours - 6) / 24), 0, None)
    y = np.where(ds.dayofweek.to_numpy() >= 5, 0.6 * daily, daily)
    y = y * (1 + noise * np.random.default_rng(seed).standard_normal(len(ds)))
    return pd.DataFrame({"ds": ds, "y": y})


@pytest.fixture
def fake_prophet(monkeypatch: pytest.MonkeyPatch) -> list[dt.datetime]:
    """Replace Prophet with the one-day seasonal naive fake; returns the ``now`` of each call."""
    calls: list[dt.datetime] = []

    def fit(history: pd.DataFrame, **kwargs: Any) -> Forecast:
        calls.append(kwargs["now"])
        return fakes.seasonal_naive(history, **kwargs)

    monkeypatch.setattr("forescale.forecaster.model.fit_forecast", fit)
    return calls


def test_fit_candidates_gives_prophet_seasonal_naive_and_their_mean(
    fake_prophet: list[dt.datetime],
) -> None:
    history = weekly_series(14)
    now = START + 14 * DAY
    fitted = fit_candidates(history, settings=SETTINGS, now=now)

    assert list(fitted.forecasts) == list(DEFAULT_MODELS)
    assert list(DEFAULT_MODELS) == [ENSEMBLE, PROPHET, SEASONAL_NAIVE, RECENT_PEAK, REACTIVE]
    assert fitted.errors == {}
    assert fake_prophet == [now]
    ensemble = fitted.forecasts[ENSEMBLE]
    grid = pd.DatetimeIndex(ensemble.frame["ds"])
    prophet, naive = (
        on_grid(fitted.forecasts[m].frame, grid, fitted.forecasts[m].resolution)
        for m in (PROPHET, SEASONAL_NAIVE)
    )
    for column in ("yhat", "yhat_lower", "yhat_upper"):
        np.testing.assert_allclose(ensemble.frame[column], (prophet[column] + naive[column]) / 2)
    assert fitted.forecasts[SEASONAL_NAIVE].model == SEASONAL_NAIVE


def test_a_failing_model_is_left_out_with_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(history: pd.DataFrame, **kwargs: Any) -> Forecast:
        raise ForecastError("CmdStan failed")

    monkeypatch.setattr("forescale.forecaster.model.fit_forecast", broken)
    fitted = fit_candidates(weekly_series(14), settings=SETTINGS, now=START + 14 * DAY)
    assert list(fitted.forecasts) == [SEASONAL_NAIVE, RECENT_PEAK, REACTIVE]
    assert fitted.errors == {
        PROPHET: "ForecastError: CmdStan failed",
        ENSEMBLE: "needs both prophet and seasonal_naive",
    }
    forecast, choice = choose(fitted, pd.DataFrame(), target_under=0.01)
    assert choice.model == SEASONAL_NAIVE
    assert forecast.model == SEASONAL_NAIVE


def test_only_the_requested_models_are_fitted(fake_prophet: list[dt.datetime]) -> None:
    history = weekly_series(14)
    now = START + 14 * DAY
    only_naive = fit_candidates(history, settings=SETTINGS, now=now, models=(SEASONAL_NAIVE,))
    assert list(only_naive.forecasts) == [SEASONAL_NAIVE]
    assert fake_prophet == []
    # The ensemble alone still needs both of its members, but returns only itself.
    only_ensemble = fit_candidates(history, settings=SETTINGS, now=now, models=(ENSEMBLE,))
    assert list(only_ensemble.forecasts) == [ENSEMBLE]
    assert fake_prophet == [now]


def test_expected_uplift_events_reach_seasonal_naive(fake_prophet: list[dt.datetime]) -> None:
    history = weekly_series(14)
    now = START + 14 * DAY
    sale = Event(name="sale", start=now + HOUR, end=now + 2 * HOUR, expected_uplift=1.0)
    plain = fit_candidates(history, settings=SETTINGS, now=now, models=(SEASONAL_NAIVE,))
    with_sale = fit_candidates(
        history, settings=SETTINGS, now=now, events=(sale,), models=(SEASONAL_NAIVE,)
    )
    ratio = (
        with_sale.forecasts[SEASONAL_NAIVE].frame["yhat"]
        / plain.forecasts[SEASONAL_NAIVE].frame["yhat"]
    )
    ds = with_sale.forecasts[SEASONAL_NAIVE].frame["ds"]
    during = (ds >= pd.Timestamp(sale.start)) & (ds < pd.Timestamp(sale.end))
    np.testing.assert_allclose(ratio[during], 2.0)
    np.testing.assert_allclose(ratio[~during], 1.0)


def test_when_every_model_fails_choose_says_why() -> None:
    history = weekly_series(0.25)  # 6 hours: too short for everything
    fitted = fit_candidates(history, settings=SETTINGS, now=START + 6 * HOUR)
    assert fitted.forecasts == {}
    assert set(fitted.errors) == {PROPHET, SEASONAL_NAIVE, ENSEMBLE, RECENT_PEAK, REACTIVE}
    assert fitted.errors[PROPHET].startswith("InsufficientHistory: ")
    with pytest.raises(ForecastError, match="no model could be fitted") as info:
        choose(fitted, pd.DataFrame(), target_under=0.01)
    assert "prophet: InsufficientHistory" in str(info.value)
    assert "seasonal_naive: InsufficientHistory" in str(info.value)


# ---------------------------------------------------------------------------------- choose


def hand_forecast(
    name: str, start: dt.datetime, yhat: np.ndarray, upper: np.ndarray, step: dt.timedelta
) -> Forecast:
    frame = pd.DataFrame(
        {
            "ds": pd.date_range(start, periods=len(yhat), freq=step),
            "yhat": yhat,
            "yhat_lower": yhat * 0.5,
            "yhat_upper": upper,
        }
    )
    return Forecast(
        frame=frame,
        components=(),
        resolution=step,
        interval_width=0.9,
        fitted_at=start,
        history_end=start - step,
        model=name,
        notes=(f"{name} fitted",),
    )


def test_choose_keeps_the_primary_without_a_record_and_switches_on_a_clear_one() -> None:
    now = START + 7 * DAY
    ones = np.full(12, 100.0)
    fitted = Fitted(
        forecasts={
            "primary": hand_forecast("primary", now, ones, ones * 2, HOUR),
            "challenger": hand_forecast("challenger", now, ones, ones * 1.1, HOUR),
        },
        errors={},
    )
    forecast, choice = choose(fitted, pd.DataFrame(), target_under=0.01)
    assert (choice.model, choice.factor) == ("primary", 1.0)
    assert forecast.model == "primary"
    assert forecast.notes == ("primary fitted", f"model: {choice.reason}")
    np.testing.assert_array_equal(forecast.frame["yhat_upper"], ones * 2)

    # A record in which the primary was 50 % high everywhere and the challenger (band =
    # point) 20 % low on a fifth of the steps: x1.25 on the challenger is the cheaper cover.
    rng = np.random.default_rng(3)
    actual = rng.uniform(80, 120, 100)
    low = np.where(np.arange(100) % 5 == 0, actual * 0.8, actual)
    record = pd.DataFrame(
        {
            "ds": pd.date_range(now - 100 * HOUR, periods=100, freq=HOUR),
            "actual": actual,
            "primary:yhat": actual * 1.5,
            "primary:upper": actual * 2,
            "challenger:yhat": low,
            "challenger:upper": low,
        }
    )
    forecast, choice = choose(fitted, record, target_under=0.05, min_steps=48)
    assert choice.model == "challenger"
    assert choice.factor == pytest.approx(1 / 0.8)
    np.testing.assert_allclose(forecast.frame["yhat_upper"], ones * 1.1 * choice.factor)
    np.testing.assert_array_equal(forecast.frame["yhat"], ones)
    assert forecast.notes[-1] == f"model: {choice.reason}"


# --------------------------------------------------------------------- the live record


def test_compact_keeps_the_first_span_rounded_to_six_digits() -> None:
    now = START + 7 * DAY
    yhat = np.linspace(100, 200, 48) + 1 / 3
    upper = yhat * 1.2
    upper[3] = np.nan
    fitted = Fitted(
        forecasts={"m": hand_forecast("m", now, yhat, upper, FIVE_MIN)}, errors={"x": "failed"}
    )
    stored = compact(fitted, span=2 * HOUR)

    entry = stored["m"]
    assert entry.start == now
    assert entry.step == FIVE_MIN
    assert len(entry.yhat) == len(entry.upper) == 24
    assert list(entry.yhat) == [float(f"{v:.6g}") for v in yhat[:24]]
    assert entry.upper[3] is None
    np.testing.assert_allclose(
        np.array([np.nan if v is None else v for v in entry.upper], dtype=float),
        upper[:24],
        rtol=5e-6,
    )
    assert set(stored) == {"m"}


def stored_run(
    start: dt.datetime, values: dict[str, float], hours: int = 24
) -> dict[str, CompactForecast]:
    n = hours * 12
    return {
        name: CompactForecast(start=start, step=FIVE_MIN, yhat=(v,) * n, upper=(v * 1.5,) * n)
        for name, v in values.items()
    }


def test_each_step_is_judged_by_the_newest_run_made_before_it() -> None:
    day = START + 7 * DAY
    morning, noon, now = day + 6 * HOUR, day + 12 * HOUR, day + 18 * HOUR
    ds = pd.date_range(day, now + HOUR, freq=FIVE_MIN, inclusive="left")  # also after now
    actual = pd.DataFrame({"ds": ds, "y": np.arange(len(ds), dtype=float)})
    runs = [
        (noon, stored_run(noon, {"a": 2.0})),
        (morning, stored_run(morning, {"a": 1.0, "old": 9.0})),
    ]
    record = live_record(runs, actual, now=now, window=DAY)

    expected_ds = pd.date_range(morning, now, freq=FIVE_MIN, inclusive="left")
    np.testing.assert_array_equal(record["ds"], expected_ds)
    np.testing.assert_array_equal(record["actual"], actual.set_index("ds")["y"][expected_ds])
    newer = np.asarray(expected_ds >= pd.Timestamp(noon))
    np.testing.assert_array_equal(record["a:yhat"], np.where(newer, 2.0, 1.0))
    np.testing.assert_array_equal(record["a:upper"], np.where(newer, 3.0, 1.5))
    np.testing.assert_array_equal(record["old:yhat"], np.where(newer, np.nan, 9.0))

    recent = live_record(runs, actual, now=now, window=3 * HOUR)
    np.testing.assert_array_equal(
        recent["ds"], pd.date_range(now - 3 * HOUR, now, freq=FIVE_MIN, inclusive="left")
    )
    assert (recent["a:yhat"] == 2.0).all()


def test_live_record_without_runs_is_empty() -> None:
    actual = pd.DataFrame({"ds": pd.date_range(START, periods=3, freq=FIVE_MIN), "y": 1.0})
    record = live_record([], actual, now=START + HOUR, window=DAY)
    assert list(record.columns) == ["ds", "actual"]
    assert record.empty
    empty_run = live_record([(START, {})], actual, now=START + HOUR, window=DAY)
    assert empty_run.empty


def test_the_live_record_of_compacted_runs_matches_the_forecasts(
    fake_prophet: list[dt.datetime],
) -> None:
    series = weekly_series(16)
    first, second = START + 14 * DAY, START + 15 * DAY
    runs = []
    direct = []
    for as_of in (first, second):
        history = series[series["ds"] < pd.Timestamp(as_of)]
        fitted = fit_candidates(history, settings=SETTINGS, now=as_of)
        # stored and read back as the store does (one codec owns the JSON)
        meta = encode_meta(
            components=(),
            notes=(),
            interval_width=0.9,
            event_effects=(),
            choice=None,
            live=None,
            candidates=compact(fitted),
            candidate_errors={},
        )
        runs.append((as_of, decode_meta(meta)["candidates"]))
        direct.append(record_rows(series, fitted.forecasts, start=as_of, end=as_of + DAY))
    now = START + 16 * DAY
    record = live_record(runs, series, now=now, window=2 * DAY)
    expected = pd.concat(direct, ignore_index=True)

    # the store keeps candidates in name order; the columns are the same
    assert sorted(record.columns) == sorted(expected.columns)
    record = record[list(expected.columns)]
    assert len(record) == len(expected) == 2 * 288
    np.testing.assert_array_equal(record["ds"], expected["ds"])
    numbers = [c for c in expected.columns if c != "ds"]
    np.testing.assert_allclose(record[numbers], expected[numbers], rtol=5e-6)


# ------------------------------------------------------------------------- real Prophet


@pytest.mark.slow
def test_fit_candidates_with_prophet() -> None:
    history = weekly_series(15, step=HOUR)
    now = START + 15 * DAY
    fitted = fit_candidates(history, settings=SETTINGS, now=now)

    assert list(fitted.forecasts) == [ENSEMBLE, PROPHET, SEASONAL_NAIVE, RECENT_PEAK, REACTIVE]
    assert fitted.errors == {}
    prophet = fitted.forecasts[PROPHET]
    ensemble = fitted.forecasts[ENSEMBLE]
    assert ensemble.components == prophet.components != ()
    grid = pd.DatetimeIndex(ensemble.frame["ds"])
    naive = on_grid(fitted.forecasts[SEASONAL_NAIVE].frame, grid, HOUR)
    own = on_grid(prophet.frame, grid, HOUR)
    np.testing.assert_allclose(ensemble.frame["yhat"], (own["yhat"] + naive["yhat"]) / 2)
    for name in prophet.components:
        np.testing.assert_allclose(ensemble.frame[name], own[name])
    actual = pd.Series(history["y"].to_numpy(), index=history["ds"])
    assert ensemble.frame["yhat"].max() > actual.tail(24).median()  # a daily shape, not flat


@pytest.mark.slow
def test_a_backtest_with_the_product_candidates() -> None:
    series = weekly_series(15, step=HOUR, seed=1)
    cutoff = START + 14 * DAY

    def candidates(history: pd.DataFrame, now: dt.datetime) -> dict[str, Forecast]:
        return fit_candidates(history, settings=SETTINGS, now=now).forecasts

    policy = CapacityPolicy(capacity_per_unit=0.0, min_units=1, max_units=100)
    result = run_backtest(
        series,
        BacktestConfig(
            cutoffs=(cutoff,), horizon=DAY, policy=policy, record_folds=0, replay="cutoff"
        ),
        candidates,
    )
    fold = result.folds[0]
    assert (fold.model, fold.error) == (ENSEMBLE, None)
    assert [m.model for m in fold.metrics] == [
        "forescale",
        ENSEMBLE,
        PROPHET,
        SEASONAL_NAIVE,
        RECENT_PEAK,
        REACTIVE,
    ]
    assert all(m.steps == 24 for m in fold.metrics)
    assert len(result.schedule) == 24
    assert result.capacity_per_unit == pytest.approx(series["y"].iloc[-24:].max() / 20)


def test_the_live_record_reads_the_stored_values_as_the_expanded_forecasts_give_them() -> None:
    """live_record reads each run's stored steps directly; it must give exactly the rows
    record_rows gives for the runs' expanded forecasts: hourly and 5-minute candidates,
    stored gaps (None), a model missing from a run, gaps in the demand, steps past a
    run's stored day (no newer run yet)."""
    rng = np.random.default_rng(3)
    ds = pd.date_range(START, START + 4 * DAY, freq=FIVE_MIN, inclusive="left")
    y = rng.uniform(50, 150, len(ds))
    y[rng.choice(len(ds), 40, replace=False)] = np.nan
    actual = pd.DataFrame({"ds": ds, "y": y})
    runs = []
    made = pd.date_range(START, START + 3 * DAY, freq="7h")
    made = made[(made < START + DAY) | (made > START + 2 * DAY + 6 * HOUR)]  # a 30 h gap
    for k, as_of in enumerate(made):
        stored: dict[str, CompactForecast] = {}
        for name, step, count in (("fine", FIVE_MIN, 288), ("hourly", HOUR, 24)):
            if name == "hourly" and k % 3 == 2:
                continue  # this run has no hourly candidate
            points = [None if rng.random() < 0.05 else float(v) for v in rng.uniform(0, 200, count)]
            stored[name] = CompactForecast(
                start=as_of.to_pydatetime(),
                step=step,
                yhat=tuple(points),
                upper=tuple(None if v is None else v * 1.2 for v in points),
            )
        runs.append((as_of.to_pydatetime(), stored))
    now, window = START + 3 * DAY + 20 * HOUR, 2 * DAY
    record = live_record(runs, actual, now=now, window=window)

    parts = []
    for i, (as_of, stored) in enumerate(runs):
        until = runs[i + 1][0] if i + 1 < len(runs) else now
        start = max(as_of, now - window)
        if until > start:
            expanded = {m: c.expand(m, as_of) for m, c in stored.items()}
            parts.append(record_rows(actual, expanded, start=start, end=until))
    expected = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(record, expected[record.columns], check_dtype=False)
    assert set(record.columns) == set(expected.columns)
