"""Event features (exact values on a hand-made calendar) and the event-aware forecasters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tests.test_models_conformance as conf
from models.errors import FrameError
from models.forecasting.events import event_classes, event_features, feature_names
from models.forecasting.prophet_events import ProphetEvents
from models.forecasting.seasonal_events import SeasonalEvents


def calendar(starts, comps=("Champions League",), imps=(0.8,), minutes=110):
    n = len(starts)
    comps = list(comps) * n if len(comps) == 1 else list(comps)
    imps = list(imps) * n if len(imps) == 1 else list(imps)
    start = pd.to_datetime(list(starts), utc=True)
    return pd.DataFrame({
        "start": start, "end": start + pd.Timedelta(minutes=minutes),
        "sport": ["promotion" if c == "Acca Boost" else "football" for c in comps],
        "competition": comps, "importance": imps,
    })


def test_features_exact_on_tiny_calendar():
    ev = calendar(["2026-03-03 20:00", "2026-03-03 20:30"], ["Champions League", "Serie A"],
                  [0.8, 0.5], minutes=60)
    ds = pd.to_datetime(["2026-03-03 18:44", "2026-03-03 18:45", "2026-03-03 19:59",
                         "2026-03-03 20:00", "2026-03-03 20:40", "2026-03-03 21:00",
                         "2026-03-03 21:44", "2026-03-03 21:45"], utc=True)
    kw = {"bin_minutes": 15, "pre_minutes": 75, "live_minutes": 30, "post_minutes": 45}
    X = event_features(ds, ev, ["Champions League"], **kw)
    assert list(X.columns) == feature_names(["Champions League"], **kw)
    nz = {(i, c): v for i, row in enumerate(X.to_dict("records")) for c, v in row.items() if v}
    assert nz == {
        # 18:44 is before the 75-min ramp window; 18:45 is the first pre bin
        (1, "Champions League|pre00"): 0.8, (1, "all|pre00"): 0.8, (1, "evening|pre"): 0.8,
        # 19:59: CL 1 min ahead (last pre bin); Serie A 31 min ahead (pre bin 2)
        (2, "Champions League|pre04"): 0.8, (2, "all|pre04"): 0.8, (2, "evening|pre"): 1.3,
        (2, "other|pre02"): 0.5, (2, "all|pre02"): 0.5,
        (3, "Champions League|live00"): 0.8, (3, "all|live00"): 0.8, (3, "evening|live"): 0.8,
        (3, "other|pre03"): 0.5, (3, "all|pre03"): 0.5, (3, "evening|pre"): 0.5,
        # 20:40: CL live 40 min -> open-ended late bin; Serie A (class 'other') live bin 0
        (4, "Champions League|late"): 0.8, (4, "other|live00"): 0.5,
        (4, "all|late"): 0.8, (4, "all|live00"): 0.5, (4, "evening|live"): 1.3,
        # 21:00: CL ended -> post bin 0; Serie A live 30 min -> late
        (5, "Champions League|post00"): 0.8, (5, "other|late"): 0.5,
        (5, "all|post00"): 0.8, (5, "all|late"): 0.5,
        (5, "evening|post"): 0.8, (5, "evening|live"): 0.5,
        # 21:44: CL post 44 min (bin 2); Serie A ended 21:30 -> post bin 0
        (6, "Champions League|post02"): 0.8, (6, "other|post00"): 0.5,
        (6, "all|post02"): 0.8, (6, "all|post00"): 0.5, (6, "evening|post"): 1.3,
        # 21:45: CL post window over; Serie A post 15 min
        (7, "other|post01"): 0.5, (7, "all|post01"): 0.5, (7, "evening|post"): 0.5,
    }


def test_features_no_events_and_classes():
    ds = pd.date_range("2026-03-07", periods=3, freq="h", tz="UTC")
    assert not event_features(ds, None, []).to_numpy().any()
    ev = calendar(["2026-03-07 15:00"] * 3 + ["2026-03-07 12:00"],
                  ["Premier League"] * 3 + ["Acca Boost"], [0.5])
    assert event_classes(ev) == ["Premier League"]
    assert event_classes(ev, min_events=1) == ["Premier League", "promotion"]
    X = event_features(pd.to_datetime(["2026-03-07 14:00"], utc=True), ev, [], bin_minutes=5)
    assert X.loc[0, "other|pre03"] == 1.5 and X.loc[0, "weekend|pre"] == 1.5
    assert X.loc[0, "other|post02"] == 0.5  # the promotion ended at 13:50
    with pytest.raises(FrameError, match="importance"):
        event_features(ds, ev.assign(importance=-1.0), [])
    with pytest.raises(FrameError, match="competition"):
        event_features(ds, ev.drop(columns="competition"), [])


# ------------------------------------------------------------------ a surge the calendar knows

def surge_data(days: int = 15, seed: int = 3):
    """5-min traffic with a daily cycle; CL-class events at irregular days and hours, uplift
    proportional to importance: a ramp before kickoff and an in-play plateau."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-03-02", periods=days * 288, freq="5min", tz="UTC").as_unit("ns")
    hour = (ds.hour + ds.minute / 60).to_numpy()
    base = 100 + 60 * np.sin(2 * np.pi * (hour - 9) / 24)
    kick_days = rng.choice(days, size=days // 2 + 2, replace=False)
    kicks = pd.to_datetime([ds[0] + pd.Timedelta(days=int(d), hours=int(rng.integers(12, 21)))
                            for d in kick_days], utc=True)
    ev = calendar(kicks, ["Champions League"], rng.uniform(0.5, 1.0, kicks.size), minutes=105)
    uplift = np.zeros(ds.size)
    t = ds.asi8
    for s, w in zip(pd.DatetimeIndex(ev["start"]).as_unit("ns").asi8, ev["importance"], strict=True):
        rel = (t - s) / 6e10
        uplift += w * np.where((rel >= -60) & (rel < 0), 2.0 * np.exp(np.minimum(rel, 0) / 15), 0.0)
        uplift += w * np.where((rel >= 0) & (rel < 105), 0.8, 0.0)
    y = rng.poisson(base * (1 + uplift)).astype(float)
    return pd.DataFrame({"unique_id": "bets", "ds": ds, "y": y}), ev


@pytest.mark.parametrize("cls", [SeasonalEvents, ProphetEvents], ids=["seasonal", "prophet"])
def test_predicts_surge_at_unseen_kickoff(cls):
    frame, ev = surge_data()
    cut = frame["ds"].iloc[-288]
    train = frame[frame["ds"] < cut]
    future = calendar([cut + pd.Timedelta(hours=14)], ["Champions League"], [0.9], minutes=105)
    events = pd.concat([ev[ev["start"] < cut], future], ignore_index=True)
    kw = {"min_class_events": 3} if cls is ProphetEvents else {}
    with_ev = cls(**kw).fit(train, events=events).predict(288)
    without = cls(**kw).fit(train).predict(288)
    at = with_ev["ds"] == cut + pd.Timedelta(hours=14) - pd.Timedelta(minutes=5)
    quiet = with_ev["ds"] == cut + pd.Timedelta(hours=10)
    surge = with_ev.loc[at, "yhat"].item() / with_ev.loc[quiet, "yhat"].item()
    plain = without.loc[at, "yhat"].item() / without.loc[quiet, "yhat"].item()
    assert surge > 2.0 and plain < 1.5, (surge, plain)
    # overriding the future calendar at predict time: no event, no surge
    assert cls(**kw).fit(train, events=events).predict(288, events=ev[ev["start"] < cut]).loc[
        at, "yhat"].item() < 0.7 * with_ev.loc[at, "yhat"].item()


# ------------------------------------------------------------------ shared conformance suite

CONFORMANCE = [
    conf.test_forecaster_fit_returns_self, conf.test_predict_before_fit_raises,
    conf.test_forecast_columns_dtypes_and_grid, conf.test_forecast_interval_ordered_and_finite,
    conf.test_forecaster_is_deterministic, conf.test_forecaster_json_round_trip,
    conf.test_forecaster_series_are_independent, conf.test_forecaster_input_order_does_not_matter,
    conf.test_forecaster_short_history_raises,
]


@pytest.mark.parametrize("check", CONFORMANCE, ids=lambda f: f.__name__)
# SeasonalEvents is in models.FORECASTERS (the shared suite covers it); ProphetEvents is not yet
@pytest.mark.parametrize("cls", [ProphetEvents], ids=["prophet"])
def test_conformance(cls, check, monkeypatch):
    monkeypatch.setitem(conf.FORECASTERS, cls.name, cls)  # test_forecast_columns reads name
    check(cls)


@pytest.mark.parametrize("cls", [ProphetEvents], ids=["prophet"])
def test_conformance_bad_arguments(cls):
    model = cls().fit(conf.series_frame())
    for level in (0.0, 1.0, 90):
        with pytest.raises(ValueError, match="level"):
            model.predict(12, level=level)
    for horizon in (0, 2.5):
        with pytest.raises(ValueError, match="horizon"):
            model.predict(horizon)


def test_round_trip_with_events_is_identical():
    import json

    frame, ev = surge_data(days=6)
    for cls in (SeasonalEvents, ProphetEvents):
        model = cls(**({"min_class_events": 2} if cls is ProphetEvents else {})).fit(frame, ev)
        clone = cls.from_dict(json.loads(json.dumps(model.to_dict())))
        pd.testing.assert_frame_equal(clone.predict(60), model.predict(60))
