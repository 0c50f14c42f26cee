"""One conformance suite over every registered forecaster and detector (STYLE §8)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models import (
    DETECTORS,
    FORECASTERS,
    Detector,
    Forecaster,
    InsufficientHistoryError,
    NotFittedError,
)
from models.base import ANOMALY_COLUMNS, FORECAST_COLUMNS

STEP = pd.Timedelta("5min")
FORECASTER_NAMES = sorted(FORECASTERS)
DETECTOR_NAMES = sorted(DETECTORS)


def series_frame(days: int = 4, ids: tuple[str, ...] = ("api:rps", "bets:bps"), seed: int = 7):
    """Daily pattern with an evening peak plus Poisson noise, 5-minute steps, one level per id."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-03-01", periods=days * 288, freq=STEP, tz="UTC").as_unit("ns")
    hour = (ds.hour + ds.minute / 60).to_numpy()
    shape = 40 + 160 * np.exp(-(((hour - 20) / 2) ** 2))
    parts = [
        pd.DataFrame({"unique_id": uid, "ds": ds, "y": rng.poisson(shape * (i + 1)).astype(float)})
        for i, uid in enumerate(ids)
    ]
    return pd.concat(parts, ignore_index=True)


def split_last(frame: pd.DataFrame, n: int):
    cut = frame["ds"].max() - (n - 1) * STEP
    return frame[frame["ds"] < cut], frame[frame["ds"] >= cut]


# ---------------------------------------------------------------- forecasters


@pytest.fixture(params=FORECASTER_NAMES)
def forecaster_cls(request):
    return FORECASTERS[request.param]


def test_forecaster_follows_protocol(forecaster_cls):
    model = forecaster_cls()
    assert isinstance(model, Forecaster)
    assert model.name in FORECASTERS and FORECASTERS[model.name] is forecaster_cls


def test_forecaster_fit_returns_self(forecaster_cls):
    model = forecaster_cls()
    assert model.fit(series_frame()) is model


def test_predict_before_fit_raises(forecaster_cls):
    with pytest.raises(NotFittedError, match=r"fit\(frame\) before predict"):
        forecaster_cls().predict(12)


def test_forecast_columns_dtypes_and_grid(forecaster_cls):
    frame = series_frame()
    fc = forecaster_cls().fit(frame).predict(horizon=12, level=0.8)
    assert tuple(fc.columns) == FORECAST_COLUMNS
    assert fc["ds"].dtype == "datetime64[ns, UTC]"
    for col in ("yhat", "yhat_lower", "yhat_upper", "level"):
        assert fc[col].dtype == np.float64, col
    assert pd.api.types.is_string_dtype(fc["unique_id"])
    assert set(fc["model"]) == {forecaster_cls().name}
    assert set(fc["level"]) == {0.8}
    last = frame.groupby("unique_id")["ds"].max()
    for uid, group in fc.groupby("unique_id"):
        expected = pd.date_range(last[uid] + STEP, periods=12, freq=STEP).as_unit("ns")
        assert group["ds"].tolist() == expected.tolist()


def test_forecast_interval_ordered_and_finite(forecaster_cls):
    fc = forecaster_cls().fit(series_frame()).predict(horizon=600, level=0.95)
    values = fc[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()
    assert np.isfinite(values).all()
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    assert (fc["yhat_upper"] > fc["yhat_lower"]).any()  # noisy data: intervals have width


def test_forecaster_is_deterministic(forecaster_cls):
    a = forecaster_cls().fit(series_frame()).predict(48)
    b = forecaster_cls().fit(series_frame()).predict(48)
    pd.testing.assert_frame_equal(a, b)


def test_forecaster_json_round_trip(forecaster_cls):
    model = forecaster_cls().fit(series_frame())
    clone = forecaster_cls.from_dict(json.loads(json.dumps(model.to_dict())))
    pd.testing.assert_frame_equal(clone.predict(300, 0.9), model.predict(300, 0.9))
    assert clone.to_dict() == model.to_dict()
    unfitted = forecaster_cls.from_dict(json.loads(json.dumps(forecaster_cls().to_dict())))
    with pytest.raises(NotFittedError):
        unfitted.predict(1)


def test_forecaster_series_are_independent(forecaster_cls):
    frame = series_frame()
    together = forecaster_cls().fit(frame).predict(24)
    assert together.groupby("unique_id").size().to_dict() == {"api:rps": 24, "bets:bps": 24}
    for uid in ("api:rps", "bets:bps"):
        alone = forecaster_cls().fit(frame[frame["unique_id"] == uid]).predict(24)
        mine = together[together["unique_id"] == uid].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone)


def test_forecaster_input_order_does_not_matter(forecaster_cls):
    frame = series_frame()
    shuffled = frame.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(
        forecaster_cls().fit(shuffled).predict(24), forecaster_cls().fit(frame).predict(24)
    )


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5, float("nan"), 90])
def test_bad_level_raises(forecaster_cls, level):
    model = forecaster_cls().fit(series_frame())
    with pytest.raises(ValueError, match="level"):
        model.predict(12, level=level)


@pytest.mark.parametrize("horizon", [0, -1, 2.5])
def test_bad_horizon_raises(forecaster_cls, horizon):
    with pytest.raises(ValueError, match="horizon"):
        forecaster_cls().fit(series_frame()).predict(horizon)


def test_forecaster_short_history_raises(forecaster_cls):
    frame = series_frame().groupby("unique_id").head(20)
    with pytest.raises(InsufficientHistoryError, match="api:rps"):
        forecaster_cls().fit(frame)


# ---------------------------------------------------------------- detectors


@pytest.fixture(params=DETECTOR_NAMES)
def detector_cls(request):
    return DETECTORS[request.param]


def test_detector_follows_protocol(detector_cls):
    det = detector_cls()
    assert isinstance(det, Detector)
    assert DETECTORS[det.name] is detector_cls


def test_detector_fit_returns_self(detector_cls):
    det = detector_cls()
    assert det.fit(series_frame()) is det


def test_score_before_fit_raises(detector_cls):
    with pytest.raises(NotFittedError, match=r"fit\(frame\) before score"):
        detector_cls().score(series_frame())


def test_anomaly_columns_dtypes_and_ranges(detector_cls):
    frame = series_frame()
    out = detector_cls().fit(frame).score(frame)
    assert tuple(out.columns) == ANOMALY_COLUMNS
    assert len(out) == len(frame)
    assert out["ds"].dtype == "datetime64[ns, UTC]"
    for col in ("y", "expected", "lower", "upper", "score"):
        assert out[col].dtype == np.float64, col
    assert out["is_anomaly"].dtype == bool
    assert pd.api.types.is_string_dtype(out["unique_id"])
    assert set(out["detector"]) == {detector_cls().name}
    assert not out[["y", "score", "is_anomaly"]].isna().any().any()
    assert out["score"].between(0.0, 1.0).all()
    kinds = set(out["kind"].dropna())
    assert kinds <= {"spike", "drop", "level_shift", "ratio", "absent"}
    assert out.loc[~out["is_anomaly"], "kind"].isna().all()
    assert out.loc[out["is_anomaly"], "kind"].notna().all()
    banded = out.dropna(subset=["expected"])
    assert len(banded) >= 288 * 2  # detectors may warm up, but not for ever
    assert (banded["lower"] <= banded["expected"]).all()
    assert (banded["expected"] <= banded["upper"]).all()


def test_detector_is_deterministic(detector_cls):
    train, test = split_last(series_frame(), 50)
    a = detector_cls().fit(train).score(test)
    b = detector_cls().fit(train).score(test)
    pd.testing.assert_frame_equal(a, b)


def test_detector_json_round_trip(detector_cls):
    frame = series_frame()
    frame.loc[frame.index[-10], "y"] *= 6  # an anomaly in the part scored after loading
    train, test = split_last(frame, 50)
    det = detector_cls().fit(train)
    clone = detector_cls.from_dict(json.loads(json.dumps(det.to_dict())))
    assert clone.to_dict() == det.to_dict()
    a, b = det.score(test), clone.score(test)
    pd.testing.assert_frame_equal(a, b)
    assert a["is_anomaly"].any()
    assert clone.to_dict() == det.to_dict()  # both learned the same from ``test``


def test_detector_series_are_independent(detector_cls):
    frame = series_frame()
    train, test = split_last(frame, 50)
    together = detector_cls().fit(train).score(test)
    for uid in ("api:rps", "bets:bps"):
        alone = detector_cls().fit(train[train["unique_id"] == uid]).score(
            test[test["unique_id"] == uid]
        )
        mine = together[together["unique_id"] == uid].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone)


def test_detector_bad_parameters_raise(detector_cls):
    with pytest.raises(ValueError, match="threshold"):
        detector_cls(threshold=0.0)
