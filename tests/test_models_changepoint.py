"""ChangePoint (models/anomaly/changepoint.py): CUSUM maths, drifts, load adjustment, state."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.anomaly.changepoint import ChangePoint, cusum, latency_load_series, load_reference
from models.anomaly.load_model import count_scale_fit
from models.base import ANOMALY_COLUMNS, Detector
from models.errors import NotFittedError

LAT = "api:latency_p95_seconds"
REQ = "api:requests_per_second"


def ramp_frame(n=900, start=700, to=3.0, length=200, seed=0, level=0.2):
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC")
    y = level * np.exp(0.03 * rng.standard_normal(n))
    t = np.clip((np.arange(n) - start) / length, 0, 1)
    y *= 1 + (to - 1) * t
    return pd.DataFrame({"unique_id": LAT, "ds": ds, "y": y})


def test_cusum_exact():
    p, n = cusum(np.array([0.0, 2.0, 2.0, -3.0, -3.0]), k=1.0)
    assert p.tolist() == [0.0, 1.0, 2.0, 0.0, 0.0]
    assert n.tolist() == [0.0, 0.0, 0.0, 2.0, 4.0]


def test_load_reference_fits_a_load_curve():
    v = np.linspace(0.5, 2.0, 200)
    x = np.log(0.2 * (1 + 0.35 * v**2))
    ref = load_reference(x, 10 * v, 0.01)
    assert ref is not None
    assert ref[-2] < 0.02  # a near-exact fit: the spread is at the 1 % floor
    assert load_reference(np.full(5, 1.0), None, 0.01) is None


def test_protocol_columns_and_not_fitted():
    det = ChangePoint()
    assert isinstance(det, Detector)
    with pytest.raises(NotFittedError):
        det.score(ramp_frame())
    out = ChangePoint().fit(ramp_frame()[:300]).score(ramp_frame()[300:])
    assert list(out.columns) == list(ANOMALY_COLUMNS)
    assert out["score"].between(0, 1).all()


@pytest.mark.parametrize("to,length,limit", [(4.0, 60, 5), (3.0, 200, 15)])
def test_a_latency_ramp_is_caught(to, length, limit):
    f = ramp_frame(to=to, length=length)
    out = ChangePoint().fit(f[:600]).score(f[600:])
    hits = out[out["is_anomaly"]]
    assert set(hits["kind"]) == {"level_shift"}
    delay = (hits["ds"].min() - f["ds"].iloc[700]) / pd.Timedelta("1min")
    assert 0 < delay <= limit
    assert not out.loc[out["ds"] < f["ds"].iloc[700], "is_anomaly"].any()


def test_constant_series_never_alarms():
    f = ramp_frame(to=1.0)
    f["y"] = 0.3
    out = ChangePoint().fit(f[:400]).score(f[400:])
    assert not out["is_anomaly"].any() and (out["score"] == 0).all()


@settings(max_examples=10, deadline=None)
@given(st.floats(1e-3, 1e3), st.integers(0, 5))
def test_scaling_leaves_scores_unchanged(c, seed):
    f = ramp_frame(n=500, start=400, seed=seed)
    g = f.assign(y=f["y"] * c)
    a = ChangePoint(min_ref=60, window=300).fit(f[:200]).score(f[200:])
    b = ChangePoint(min_ref=60, window=300).fit(g[:200]).score(g[200:])
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-9)


@pytest.mark.parametrize("cut", [1, 37, 61, 250])
def test_online_equals_batch_and_round_trip(cut):
    f = ramp_frame(n=800, start=600)
    whole = ChangePoint(window=300, block=30).fit(f[:300]).score(f[300:])
    det = ChangePoint(window=300, block=30).fit(f[:300])
    first = det.score(f[300:300 + cut])
    det = ChangePoint.from_dict(json.loads(json.dumps(det.to_dict())))
    rest = det.score(f[300 + cut:])
    both = pd.concat([first, rest], ignore_index=True)
    np.testing.assert_allclose(both["score"], whole["score"])
    assert both["is_anomaly"].tolist() == whole["is_anomaly"].tolist()


def test_load_driven_latency_is_not_a_shift_but_a_drift_at_equal_load_is():
    rng = np.random.default_rng(3)
    n = 6 * 1440
    ds = pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC")
    minute = np.arange(n) % 1440
    load = 1 + 2.0 * np.exp(-(((minute - 1200) / 60.0) ** 2))  # an evening peak every day
    load *= np.exp(0.02 * rng.standard_normal(n))
    lat = 0.2 * (1 + 0.35 * load**2) * np.exp(0.03 * rng.standard_normal(n))
    f = pd.concat([pd.DataFrame({"unique_id": LAT, "ds": ds, "y": lat}),
                   pd.DataFrame({"unique_id": REQ, "ds": ds, "y": 100 * load})])
    warm, live = f[f["ds"] < ds[3 * 1440]], f[f["ds"] >= ds[3 * 1440]]
    out = ChangePoint().fit(warm).score(live)
    assert out["unique_id"].unique().tolist() == [LAT]  # the load series is not scored
    assert not out["is_anomaly"].any()
    unadjusted = ChangePoint(load={}).fit(warm[warm["unique_id"] == LAT]).score(
        live[live["unique_id"] == LAT])
    assert unadjusted["is_anomaly"].any()  # without the load every evening peak is a shift
    lat2 = lat.copy()
    i0 = 4 * 1440 + 300
    lat2[i0:] *= 1 + np.clip((np.arange(n - i0)) / 120, 0, 1)  # doubles over 2 h at night
    f2 = f.copy()
    f2.loc[f2["unique_id"] == LAT, "y"] = lat2
    out2 = ChangePoint().fit(f2[f2["ds"] < ds[3 * 1440]]).score(f2[f2["ds"] >= ds[3 * 1440]])
    first = out2.loc[out2["is_anomaly"], "ds"].min()
    assert ds[i0] < first <= ds[i0 + 20]


def test_latency_load_series_pairs_by_service():
    ids = [LAT, REQ, "b:latency_p95_seconds"]
    assert latency_load_series(ids) == {LAT: REQ}


def test_capped_cusum_clears_soon_after_recovery():
    # a x3 step lasting 120 points, then back: the capped sums drain within
    # (cap - 1) * h / k points; uncapped they would alarm for hundreds of points after recovery
    rng = np.random.default_rng(1)
    ds = pd.date_range("2026-01-01", periods=1200, freq="min", tz="UTC")
    y = 0.2 * np.exp(0.03 * rng.standard_normal(1200))
    y[700:820] *= 3.0
    f = pd.DataFrame({"unique_id": LAT, "ds": ds, "y": y})
    capped = ChangePoint(two_sided=False).fit(f[:600]).score(f[600:]).set_index("ds")
    flagged = capped.index[capped["is_anomaly"]]
    assert ds[700] <= flagged.min() <= ds[703]
    assert flagged.max() <= ds[820 + 6]
    loose = ChangePoint(two_sided=False, cap=1e6).fit(f[:600]).score(f[600:]).set_index("ds")
    assert loose.index[loose["is_anomaly"]].max() > ds[820 + 60]


def test_bad_parameters():
    with pytest.raises(ValueError, match="cap"):
        ChangePoint(cap=0.5)
    with pytest.raises(ValueError, match="window"):
        ChangePoint(window=1)
    with pytest.raises(ValueError, match="h > 0"):
        ChangePoint(h=0)


def test_format1_state_still_loads_and_scores_as_before():
    # saved by the code before multiple loads and the count spread (tests/data, see "comment")
    fix = json.loads((Path(__file__).parent / "data" / "changepoint_format1.json").read_text())
    assert fix["saved"]["format"] == 1
    det = ChangePoint.from_dict(fix["saved"])
    rest = pd.DataFrame(fix["rest"]).assign(ds=lambda f: pd.to_datetime(f["ds"], utc=True))
    out = det.score(rest)
    want = fix["scores"]
    assert out["unique_id"].tolist() == want["unique_id"]
    np.testing.assert_allclose(out["score"], want["score"], rtol=0, atol=1e-12)
    assert out["is_anomaly"].tolist() == want["is_anomaly"]
    assert det.to_dict()["format"] == 2


def test_count_scale_fit_recovers_the_noise_of_a_p95():
    rng = np.random.default_rng(2)
    n = rng.uniform(20, 5000, 30_000)
    r = (0.03 + 0.6 / np.sqrt(n + 1)) * rng.standard_normal(n.size)
    a, b, u_lo, u_hi = count_scale_fit(r, n)
    assert abs(a - 0.03) < 0.003 and abs(b - 0.6) < 0.06
    assert count_scale_fit(r[:40], n[:40]) is None  # too few points
    assert count_scale_fit(r, np.full(n.size, 100.0)) is None  # no spread of counts


def _two_load_frame(seed=4, days=5):
    """Latency follows the platform's load; the service's own requests peak at other times."""
    rng = np.random.default_rng(seed)
    n = days * 1440
    ds = pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC")
    minute = np.arange(n) % 1440
    plat = 1 + 3.0 * np.exp(-(((minute - 1200) / 45.0) ** 2))  # evening kickoffs
    own = 1 + 1.0 * np.exp(-(((minute - 600) / 120.0) ** 2))  # its own morning peak
    lat = 0.2 * (1 + 0.35 * plat**2) * np.exp(0.03 * rng.standard_normal(n))
    return pd.concat([
        pd.DataFrame({"unique_id": LAT, "ds": ds, "y": lat}),
        pd.DataFrame({"unique_id": REQ, "ds": ds, "y": 50 * own * np.exp(0.02 * rng.standard_normal(n))}),
        pd.DataFrame({"unique_id": "front:requests_per_second", "ds": ds,
                      "y": 900 * plat * np.exp(0.02 * rng.standard_normal(n))}),
    ], ignore_index=True), ds


def test_a_platform_load_explains_what_the_own_load_cannot():
    f, ds = _two_load_frame()
    warm, live = f[f["ds"] < ds[3 * 1440]], f[f["ds"] >= ds[3 * 1440]]
    ids = f["unique_id"].unique().tolist()
    assert latency_load_series(ids, platform="front") == {
        LAT: (REQ, "front:requests_per_second")}
    own = ChangePoint(targets=[LAT], two_sided=False).fit(warm).score(live)
    both = ChangePoint(targets=[LAT], two_sided=False,
                       load=lambda i: latency_load_series(i, platform="front")).fit(warm)
    out = both.score(live)
    assert own["is_anomaly"].any()  # every evening looks like a shift
    assert not out["is_anomaly"].any()
    clone = ChangePoint.from_dict(json.loads(json.dumps(both.to_dict())))
    assert clone.to_dict() == both.to_dict()


def test_count_scale_standardises_by_the_request_count():
    # p95 noise 0.03 + 0.6 / sqrt(count): a quiet night is twice as noisy as the evening
    rng = np.random.default_rng(6)
    n = 5 * 1440
    ds = pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC")
    minute = np.arange(n) % 1440
    req = 5 + 60 * np.exp(-(((minute - 1200) / 200.0) ** 2))  # per second
    sigma = 0.03 + 0.6 / np.sqrt(req * 60 + 1)
    lat = 0.2 * np.exp(sigma * rng.standard_normal(n))
    f = pd.concat([pd.DataFrame({"unique_id": LAT, "ds": ds, "y": lat}),
                   pd.DataFrame({"unique_id": REQ, "ds": ds, "y": req})], ignore_index=True)
    warm, live = f[f["ds"] < ds[3 * 1440]], f[f["ds"] >= ds[3 * 1440]]
    det = ChangePoint(count_scale=True, two_sided=False).fit(warm)
    out = det.score(live)
    assert not out["is_anomaly"].any()
    spread = np.log(out["upper"] / out["expected"]) / np.sqrt(8.0)  # band = sqrt(h) spreads
    hour = out["ds"].dt.hour.to_numpy()
    # 17:00 is busy but below the top decile of load, where the fit's own doubt takes over
    night, afternoon = np.isin(hour, [3, 4, 5]), hour == 17
    assert spread[night].mean() > 1.3 * spread[afternoon].mean()
    for when in (night, afternoon):
        np.testing.assert_allclose(spread[when].mean(), sigma[3 * 1440:][when].mean(), rtol=0.15)


ERR = "api:error_ratio"


def error_frame(days=6, ramp_at=None, ramp_to=0.03, ramp_len=60, seed=4, base=0.0015):
    """Binomial errors of an evening-peaking load; errors per request rise near capacity
    (``base * (1 + 2 load^4)``, the simulator's shape), plus an optional ramp of extra errors."""
    rng = np.random.default_rng(seed)
    n = days * 1440
    ds = pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC")
    minute = np.arange(n) % 1440
    load = 0.3 + 0.7 * np.exp(-(((minute - 1200) / 90.0) ** 2))  # 30 req/s at night, 100 peak
    req = rng.poisson(100 * load * 60)
    p = base * (1 + 2 * load**4)
    if ramp_at is not None:
        p = p + ramp_to * np.clip((np.arange(n) - ramp_at) / ramp_len, 0, 1)
    errors = rng.binomial(req, p)
    return ds, pd.concat([
        pd.DataFrame({"unique_id": ERR, "ds": ds, "y": errors / np.maximum(req, 1)}),
        pd.DataFrame({"unique_id": REQ, "ds": ds, "y": req / 60.0})])


def error_detector(**kw):
    return ChangePoint(targets=[ERR], load={ERR: REQ}, two_sided=False, k=1.5, h=3.5,
                       count_scale=True, ratio_of_load=True, **kw)


def test_error_ratio_given_load_quiet_nights_and_busy_evenings_are_normal():
    ds, f = error_frame()
    warm, live = f[f["ds"] < ds[3 * 1440]], f[f["ds"] >= ds[3 * 1440]]
    zeros = (live["unique_id"] == ERR) & (live["y"] == 0)
    assert zeros.sum() > 150  # a quiet night's minutes often have no error at all
    out = error_detector().fit(warm).score(live)
    assert out["unique_id"].unique().tolist() == [ERR]
    assert np.isfinite(out["expected"]).all()  # zero errors is a value, not a gap
    assert not out["is_anomaly"].any()
    # on the raw log scale the zeros are gaps and the peaks are not explained: it alarms
    raw = ChangePoint(targets=[ERR], load={}, two_sided=False, k=1.5, h=3.5).fit(warm).score(live)
    assert raw["is_anomaly"].any()


@pytest.mark.parametrize("at_minute", [180, 1200])  # 03:00 (few requests) and the evening peak
def test_rising_errors_at_equal_load_are_a_shift(at_minute):
    i0 = 4 * 1440 + at_minute
    ds, f = error_frame(ramp_at=i0)
    out = error_detector().fit(f[f["ds"] < ds[3 * 1440]]).score(f[f["ds"] >= ds[3 * 1440]])
    first = out.loc[out["is_anomaly"], "ds"].min()
    assert ds[i0] < first <= ds[i0 + 15]
    assert (out.loc[out["ds"] < ds[i0], "score"] < 0.5).all()


def test_error_ratio_counts_carry_forward_are_gaps_before_any_and_state_round_trips():
    ds, f = error_frame(days=4)
    det = error_detector().fit(f[f["ds"] < ds[3 * 1440]])
    live = f[f["ds"] >= ds[3 * 1440]]
    alone = det.score(live[live["unique_id"] == ERR][:30])  # no request series in this batch
    assert np.isfinite(alone["expected"]).all()  # the last request count seen carries forward
    never = error_detector().fit(f[f["unique_id"] == ERR])  # no request count ever seen
    assert never.score(live[live["unique_id"] == ERR])["expected"].isna().all()
    again = ChangePoint.from_dict(json.loads(json.dumps(det.to_dict())))
    assert again.ratio_of_load and again.to_dict() == det.to_dict()
    rest = live[live["ds"] >= ds[3 * 1440 + 30]]
    np.testing.assert_allclose(again.score(rest)["score"], det.score(rest)["score"])
    with pytest.raises(ValueError, match="log=True"):
        ChangePoint(ratio_of_load=True, log=False)
