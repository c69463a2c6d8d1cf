"""The decision shared by refits and backtests (forecaster/decision.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from forescale.forecaster.accuracy import Choice
from forescale.forecaster.decision import MIX_MARGIN, decide, mix_weight
from forescale.forecaster.types import Forecast
from tests.fakes import known_forecast

T0 = dt.datetime(2024, 3, 4, tzinfo=dt.UTC)
FIVE_MIN = dt.timedelta(minutes=5)


def flat(model: str, level: float) -> Forecast:
    return known_forecast(T0 + dt.timedelta(days=1), [level] * 12, FIVE_MIN, model=model)


def plain(
    forecasts: dict[str, Forecast], record: pd.DataFrame, *, max_factor: float
) -> tuple[Forecast, Choice]:
    """The decision on ``record`` with ``forecasts`` as candidates (the first is the
    primary), a 1 % target, no floor and no ceiling."""
    return decide(
        forecasts,
        list(forecasts),
        record,
        target_under=0.01,
        max_factor=max_factor,
        min_steps=48,
        floor=None,
        ceiling=None,
    )


def test_an_outlier_in_the_record_judges_no_model() -> None:
    """A bogus sample in the record is a miss for every forecast: left in, it would buy
    the primary headroom it never needed; named as an outlier, it is not judged."""
    ds = pd.date_range(T0, periods=288, freq=FIVE_MIN)
    actual = np.full(288, 100.0)
    actual[100] = 1e9
    record = pd.DataFrame({"ds": ds, "actual": actual, "m:yhat": 100.0, "m:upper": 100.0})
    options = {
        "target_under": 0.001,
        "max_factor": 3.0,
        "min_steps": 48,
        "floor": None,
        "ceiling": None,
    }
    forecasts = {"m": flat("m", 100.0)}
    _, judged = decide(forecasts, ["m"], record, **options)
    assert judged.factor == 3.0  # nothing holds the bogus sample: the widest headroom
    _, clean = decide(forecasts, ["m"], record, outliers=(ds[100].to_pydatetime(),), **options)
    assert clean.factor == 1.0
    [evidence] = clean.evidence
    assert evidence.under_share_widened == 0.0 and evidence.steps == 287


def test_the_demand_shown_is_the_most_accurate_forecast_capacity_the_cheapest() -> None:
    """``spiky`` is exact but half the demand on one step in twenty: the most accurate
    point by point, yet holding the target with it takes twice the capacity. ``high`` is
    5 % above demand everywhere: less accurate, and the cheapest cover. Capacity comes from
    ``high``; the demand the report shows is ``spiky``'s."""
    ds = pd.date_range(T0, periods=288, freq=FIVE_MIN)
    actual = np.full(288, 100.0)
    spiky = np.where(np.arange(288) % 20 == 0, 50.0, 100.0)
    record = pd.DataFrame(
        {
            "ds": ds,
            "actual": actual,
            "high:yhat": 105.0,
            "high:upper": 106.0,
            "spiky:yhat": spiky,
            "spiky:upper": spiky,
        }
    )
    forecasts = {"high": flat("high", 105.0), "spiky": flat("spiky", 100.0)}
    forecasts["high"].frame["yhat_upper"] = 106.0
    forecast, choice = plain(forecasts, record, max_factor=3.0)
    assert (choice.model, choice.basis, choice.factor) == ("high", "point", 1.0)
    assert forecast.model == "high"
    np.testing.assert_array_equal(forecast.frame["yhat_upper"], 105.0)
    np.testing.assert_array_equal(forecast.frame["yhat"], 100.0)
    [note] = [n for n in forecast.notes if n.startswith("demand forecast")]
    assert note == (
        "demand forecast: spiky, the most accurate on the record (sMAPE 3.5 % against "
        "4.9 % for high, which plans the capacity)"
    )


def test_the_primary_shows_the_demand_unless_another_is_clearly_more_accurate() -> None:
    """A week of record is noisy: the primary's demand is shown unless another forecast's
    sMAPE is lower by more than DEMAND_MARGIN; ``cheap`` plans the capacity either way."""
    ds = pd.date_range(T0, periods=288, freq=FIVE_MIN)
    actual = np.full(288, 100.0)

    def shown(other_error: float) -> tuple[str, list[str]]:
        record = pd.DataFrame(
            {
                "ds": ds,
                "actual": actual,
                "primary:yhat": 90.0,  # sMAPE 10.5 %
                "primary:upper": 200.0,
                "other:yhat": 100.0 - other_error,
                "other:upper": 200.0,
                "cheap:yhat": 10.0,  # a poor point, a tight band
                "cheap:upper": 101.0,
            }
        )
        forecasts = {
            "primary": flat("primary", 90.0),
            "other": flat("other", 100.0 - other_error),
            "cheap": flat("cheap", 10.0),
        }
        # as given (no widening): only cheap's band holds the target
        forecast, choice = plain(forecasts, record, max_factor=1.0)
        assert choice.model == "cheap"
        notes = [n for n in forecast.notes if n.startswith("demand forecast")]
        return float(forecast.frame["yhat"].iloc[0]), notes

    # other's sMAPE 9.0 % is not 20 % below the primary's 10.5 %: the primary is shown
    level, [note] = shown(other_error=8.6)
    assert level == 90.0
    assert note.startswith("demand forecast: primary, the primary (sMAPE 10.5 %")
    # other's 5.1 % is: it is shown
    level, [note] = shown(other_error=5.0)
    assert level == 95.0
    assert note.startswith("demand forecast: other, the most accurate on the record (sMAPE 5.1 %")


def test_a_coarser_capacity_forecast_keeps_the_shape_of_the_demand_shown() -> None:
    """Capacity planned from an hourly forecast, demand shown from a 5-minute one: the
    shown forecast is on the 5-minute grid, the demand keeps its 5-minute shape and each
    hour's capacity is held through its steps (the same units)."""
    ds = pd.date_range(T0, periods=288, freq=FIVE_MIN)
    actual = 100.0 + 10.0 * np.sin(np.arange(288) / 6.0)
    record = pd.DataFrame(
        {
            "ds": ds,
            "actual": actual,
            "hourly:yhat": 200.0,  # poor point, tight enough band
            "hourly:upper": 111.0,
            "fine:yhat": 0.95 * actual,  # close but low, and its band is wide
            "fine:upper": 500.0,
        }
    )
    start = T0 + dt.timedelta(days=1)
    hours = pd.date_range(start, periods=3, freq="1h")
    hourly = Forecast(
        frame=pd.DataFrame(
            {"ds": hours, "yhat": 200.0, "yhat_lower": 90.0, "yhat_upper": [111.0, 120.0, 105.0]}
        ),
        components=(),
        resolution=dt.timedelta(hours=1),
        interval_width=0.9,
        fitted_at=start,
        history_end=start,
        model="hourly",
    )
    steps = pd.date_range(start, periods=36, freq=FIVE_MIN)
    shape = 0.95 * (100.0 + 10.0 * np.sin(np.arange(36) / 6.0))
    fine = Forecast(
        frame=pd.DataFrame({"ds": steps, "yhat": shape, "yhat_lower": shape, "yhat_upper": 500.0}),
        components=(),
        resolution=FIVE_MIN,
        interval_width=0.9,
        fitted_at=start,
        history_end=start,
        model="fine",
    )
    forecast, choice = plain({"hourly": hourly, "fine": fine}, record, max_factor=1.0)
    assert (choice.model, choice.basis) == ("hourly", "band")
    assert forecast.resolution == FIVE_MIN
    assert list(forecast.frame["ds"]) == list(steps)
    np.testing.assert_allclose(forecast.frame["yhat"], shape)
    held = np.repeat([111.0, 120.0, 105.0], 12)
    np.testing.assert_array_equal(forecast.frame["yhat_upper"], held)


def test_the_demand_shown_is_judged_on_the_last_week_of_the_record() -> None:
    """``other`` was exact two weeks ago and is barely better than the primary in the last
    week: over the whole record it would be shown; judged on the last week, the primary
    is."""
    ds = pd.date_range(T0 - dt.timedelta(days=13), periods=14 * 288, freq=FIVE_MIN)
    recent = np.asarray(ds >= ds[-1] - pd.Timedelta(days=7))
    record = pd.DataFrame(
        {
            "ds": ds,
            "actual": 100.0,
            "primary:yhat": 90.0,
            "primary:upper": 200.0,
            "other:yhat": np.where(recent, 91.0, 100.0),
            "other:upper": 200.0,
            "cheap:yhat": 10.0,
            "cheap:upper": 101.0,
        }
    )
    forecasts = {m: flat(m, v) for m, v in (("primary", 90.0), ("other", 91.0), ("cheap", 10.0))}
    forecast, choice = plain(forecasts, record, max_factor=1.0)
    assert choice.model == "cheap"
    assert float(forecast.frame["yhat"].iloc[0]) == 90.0
    [note] = [n for n in forecast.notes if n.startswith("demand forecast")]
    assert note.startswith("demand forecast: primary, the primary (sMAPE 10.5 %")


def test_the_mix_weight_is_the_most_accurate_and_the_ensemble_keeps_close_calls() -> None:
    actual = np.linspace(50.0, 150.0, 100)
    prophet, naive = actual * 0.9, actual * 1.2  # 0.7 x prophet + 0.3 x naive is 0.99 x
    weight, error = mix_weight(actual, prophet, naive)
    assert weight == 0.7 and error == pytest.approx(100 * 0.01 / 0.995)
    # even mixes within the margin of each other: the ensemble's 0.5 stays
    close = actual * (1 + np.where(np.arange(100) % 2 == 0, 0.04, -0.04))
    assert mix_weight(actual, close, actual * 1.041)[0] == 0.5
    assert mix_weight(actual, actual * 0.99, actual * 1.01, margin=MIX_MARGIN)[0] == 0.5
    # exact members: the nearest exact weight to 0.5 (here, every weight ties)
    assert mix_weight(actual, actual, actual) == (0.5, 0.0)
    assert mix_weight(actual, actual * 2.0, actual)[0] == 0.0  # seasonal naive alone


def test_the_demand_shown_is_the_mix_of_prophet_and_seasonal_naive_the_record_favours() -> None:
    """Prophet runs 10 % low and seasonal naive 20 % high: 0.7 x Prophet + 0.3 x seasonal
    naive was 1 % low, the ensemble's even mix 5 % high. The report shows the 0.7 mix's
    demand; ``cheap`` plans the capacity, untouched."""
    ds = pd.date_range(T0 - dt.timedelta(days=2), periods=2 * 288, freq=FIVE_MIN)
    record = pd.DataFrame(
        {
            "ds": ds,
            "actual": 100.0,
            "ensemble:yhat": 105.0,
            "ensemble:upper": 200.0,
            "prophet:yhat": 90.0,
            "prophet:upper": 200.0,
            "seasonal_naive:yhat": 120.0,
            "seasonal_naive:upper": 200.0,
            "cheap:yhat": 10.0,
            "cheap:upper": 101.0,
        }
    )
    forecasts = {
        m: flat(m, v)
        for m, v in (("ensemble", 105.0), ("prophet", 90.0), ("seasonal_naive", 120.0))
    }
    forecasts["cheap"] = flat("cheap", 10.0)
    forecasts["cheap"].frame["yhat_upper"] = 101.0
    forecast, choice = plain(forecasts, record, max_factor=1.0)
    assert choice.model == "cheap"
    np.testing.assert_allclose(forecast.frame["yhat"], 0.7 * 90.0 + 0.3 * 120.0)
    np.testing.assert_array_equal(forecast.frame["yhat_upper"], 101.0)
    [note] = [n for n in forecast.notes if n.startswith("demand forecast")]
    assert note == (
        "demand forecast: 0.7 x prophet + 0.3 x seasonal_naive, the most accurate mix of "
        "prophet and seasonal_naive over the record's last 28 days (sMAPE 1.0 % against "
        "163.6 % for cheap, which plans the capacity)"
    )
    # when the even mix is as good as any, the ensemble's demand is shown, saying why
    even = record.assign(**{"prophet:yhat": 95.0, "seasonal_naive:yhat": 105.0})
    forecasts |= {"prophet": flat("prophet", 95.0), "seasonal_naive": flat("seasonal_naive", 105.0)}
    forecasts["ensemble"] = flat("ensemble", 100.0)
    forecast, _ = plain(forecasts, even, max_factor=1.0)
    np.testing.assert_array_equal(forecast.frame["yhat"], 100.0)
    [note] = [n for n in forecast.notes if n.startswith("demand forecast")]
    assert note.startswith("demand forecast: ensemble (no other mix of prophet and ")
