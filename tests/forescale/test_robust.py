"""One bogus sample a week ago never drives this week's capacity (the product path)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from forescale.config.settings import load_settings
from forescale.forecaster.candidates import PRODUCT
from forescale.store import Store
from forescale.usecases.collect import collect_all
from forescale.usecases.context import App
from forescale.usecases.plan import plan_service

NOW = dt.datetime(2014, 11, 20, 17, 0, tzinfo=dt.UTC)  # a Thursday, noon in New York


def test_a_bogus_sample_last_week_is_kept_out_and_capacity_stays_sane(demo_dir: Path) -> None:
    config = demo_dir / "forescale.yaml"
    text = config.read_text().replace(
        "      max_history: 8w\n", "      max_history: 8w\n      models: [seasonal_naive]\n"
    )
    config.write_text(text)
    settings = load_settings(config)
    store = Store.open(settings.store_url)
    try:
        collect_all(settings, store)
        bogus = NOW - dt.timedelta(days=7) + dt.timedelta(hours=2)  # 2 h ahead, last week
        store.upsert_samples("web", pd.DataFrame({"ds": [pd.Timestamp(bogus)], "y": [1e9]}))
        report = plan_service(
            App(settings=settings, store=store, candidates=PRODUCT), "web", now=NOW
        )
    finally:
        store.close()
    assert any(n.startswith("outlier kept out of the fit: 1e+09") for n in report.forecast.notes)
    assert report.forecast.frame["yhat_upper"].max() < 5_000  # demand is ~1,000-2,000 req/s
    assert report.plan.desired["units"].max() < settings.service("web").max_units
