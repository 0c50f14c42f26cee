"""Library code the notebooks call: forecaster comparison, detector-vs-incident scoring, and the
registry's choose / history / rollback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.anomaly.incident_eval import incident_report, threshold_sweep
from models.forecasting.compare import compare_forecasters
from surgecast.errors import DataError, NotFound
from surgecast.registry import choose, rollback, save_selection
from surgecast.retrain import RetrainPolicy, select_one
from surgecast.store import Store

T = pd.date_range("2026-01-05", periods=6 * 288, freq="5min", tz="UTC")


def daily(noise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    y = 100 + 50 * np.sin(2 * np.pi * np.arange(T.size) / 288) + rng.normal(0, noise, T.size)
    return pd.DataFrame({"unique_id": "a", "ds": T, "y": y})


def test_compare_prefers_averaging_days_over_copying_one_on_noisy_data():
    table = compare_forecasters(daily(10.0), ["seasonal_naive", "seasonal_mean_1d"], 12, 3)
    by = table.set_index("model")
    assert by["windows"].tolist() == [3, 3]
    # copying yesterday copies its noise too; the median of several days does not
    assert by.loc["seasonal_mean_1d", "mase"] < by.loc["seasonal_naive", "mase"]
    assert ((by["coverage"] >= 0) & (by["coverage"] <= 1)).all()


def test_compare_rejects_unknown_models_several_series_and_short_series():
    with pytest.raises(KeyError, match="unknown forecaster"):
        compare_forecasters(daily(), ["nope"], 12, 2)
    two = pd.concat([daily(), daily().assign(unique_id="b")])
    with pytest.raises(ValueError, match="one series"):
        compare_forecasters(two, ["seasonal_naive"], 12, 2)
    with pytest.raises(ValueError, match="no backtest window"):
        compare_forecasters(daily().head(10), ["seasonal_naive"], 12, 2)


def test_incident_report_delays_and_false_alarms():
    t = pd.date_range("2026-01-01", periods=60, freq="1min", tz="UTC")
    score = np.zeros(60)
    score[[12, 13, 40, 41, 55]] = 0.99  # incident hit at +2 min; a false pair; a lone false
    scores = pd.DataFrame({"unique_id": "s", "ds": t, "score": score})
    inc = pd.DataFrame({"incident_id": ["i1", "i2"], "kind": ["ddos", "bot_attack"],
                        "unique_ids": ["s", "other"], "start": [t[10], t[20]], "end": [t[15], t[30]]})
    report, false_alarms = incident_report(scores, inc, 0.9, slack="5min", merge="10min")
    assert report.set_index("incident_id")["detected"].to_dict() == {"i1": True, "i2": False}
    assert report.loc[0, "delay_minutes"] == 2.0
    assert false_alarms == 2  # 40-41 merged into one, 55 is another
    sweep = threshold_sweep(scores, inc, [0.5, 0.999], days=1.0, slack="5min")
    assert sweep["recall"].tolist() == [0.5, 0.0]
    assert sweep["false_alarms_per_day"].iloc[1] == 0


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'r.db'}")
    yield s
    s.close()


def test_choose_overrules_the_winner_and_rollback_restores_the_previous_entry(store, tmp_path):
    policy = RetrainPolicy(train_window_days=6, horizon_minutes=60, windows=2,
                           candidates=("seasonal_naive", "seasonal_mean_1d"))
    result = select_one(daily(2.0), policy)
    with pytest.raises(DataError, match="unknown forecaster"):
        choose(result, "crystal_ball")
    with pytest.raises(NotFound):
        rollback(store, "a")
    save_selection(store, choose(result, "seasonal_naive"), policy, models_dir=tmp_path)
    with pytest.raises(NotFound, match="no earlier model"):
        rollback(store, "a")
    save_selection(store, choose(result, "seasonal_mean_1d"), policy, models_dir=tmp_path)
    restored = rollback(store, "a")
    assert restored["model"] == "seasonal_naive"
    history = store.model_history("a")
    assert [h["model"] for h in history] == ["seasonal_naive", "seasonal_mean_1d", "seasonal_naive"]
    assert history[0]["metadata"]["rollback_of"] == history[1]["version"]
    # rolling back again goes to the entry before the current one: the newer selection
    assert rollback(store, "a")["model"] == "seasonal_mean_1d"
