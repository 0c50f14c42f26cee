"""Core properties of the simulator: API, determinism, window consistency, shapes, noise."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import simulator
from simulator import ServiceSpec, Simulator, SimulatorConfig

START = pd.Timestamp("2026-10-26T00:00Z")  # a Monday
END = START + pd.Timedelta(days=28)
BETS = "bet-placement:bets_per_second"


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator(SimulatorConfig(seed=7, cache_days=40))


@pytest.fixture(scope="module")
def month(sim: Simulator) -> pd.DataFrame:
    return sim.series(START, END)


@pytest.fixture(scope="module")
def wide(month: pd.DataFrame) -> pd.DataFrame:
    return month.pivot(index="ds", columns="unique_id", values="y")


def test_public_api_is_pinned() -> None:
    assert sorted(simulator.__all__) == sorted(
        ["SimulatorConfig", "ServiceSpec", "Simulator", "write_openmetrics", "generate_files"]
    )


def test_simulator_is_a_leaf_package() -> None:
    forbidden = {"surgecast", "models", "actions", "collectors"}
    for path in Path(simulator.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def test_default_series_catalogue(sim: Simulator) -> None:
    ids = sim.series_ids()
    assert ids == sorted(ids)
    assert len(ids) == 19
    assert {"odds-api:requests_per_second", BETS, "payments:deposit_failures_per_second",
            "account:login_failures_per_second", "bet-placement:stake_per_second"} <= set(ids)
    info = sim.series_info()
    assert list(info.columns) == ["unique_id", "service", "metric", "unit", "kind"]
    assert info["unique_id"].tolist() == ids
    assert set(info["kind"]) == {"rate", "ratio", "latency"}
    assert (info["unique_id"] == info["service"] + ":" + info["metric"]).all()


def test_canonical_frame(month: pd.DataFrame, sim: Simulator) -> None:
    assert list(month.columns) == ["unique_id", "ds", "y"]
    assert str(month["ds"].dtype) == "datetime64[ns, UTC]"
    assert month["y"].dtype == np.float64
    assert pd.api.types.is_string_dtype(month["unique_id"])
    assert not month.duplicated(["unique_id", "ds"]).any()
    assert month.equals(month.sort_values(["unique_id", "ds"]).reset_index(drop=True))
    assert month["ds"].min() == START and month["ds"].max() == END - pd.Timedelta("1min")
    assert np.isfinite(month["y"]).all()
    assert set(month["unique_id"]) == set(sim.series_ids())


def test_values_are_physical(wide: pd.DataFrame, sim: Simulator) -> None:
    info = sim.series_info().set_index("unique_id")
    for uid in wide.columns:
        col = wide[uid].dropna()
        kind = info.loc[uid, "kind"]
        assert (col >= 0).all(), uid
        if kind == "ratio":
            assert (col <= 1).all(), uid
        if kind == "latency":
            assert (col > 0).all(), uid
        if kind == "rate" and uid != "bet-placement:stake_per_second":
            # per-step counts divided by the step: multiples of 1/60
            assert np.allclose(col * 60, np.round(col * 60), atol=1e-6), uid


def test_same_seed_same_values_different_seed_differs(month: pd.DataFrame) -> None:
    a = Simulator(SimulatorConfig(seed=7)).series(START, START + pd.Timedelta(days=2))
    pd.testing.assert_frame_equal(a, month[month["ds"] < START + pd.Timedelta(days=2)]
                                  .reset_index(drop=True))
    b = Simulator(SimulatorConfig(seed=8)).series(START, START + pd.Timedelta(days=2))
    assert len(a) != len(b) or not np.array_equal(a["y"], b["y"])


def test_window_consistency_across_midnight_and_cache_sizes() -> None:
    a, b, c = (pd.Timestamp(x) for x in ("2026-11-03T21:17:30Z", "2026-11-04T00:00Z",
                                           "2026-11-05T02:03Z"))
    whole = Simulator(SimulatorConfig(cache_days=1)).series(a, c)
    s = Simulator(SimulatorConfig(cache_days=1))
    parts = pd.concat([s.series(a, b), s.series(b, c)], ignore_index=True)
    parts = parts.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(whole, parts)
    assert whole["ds"].min() == pd.Timestamp("2026-11-03T21:18Z")  # start rounded up


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 3 * 1440 - 2),
    st.integers(1, 3 * 1440 - 1),
    st.integers(0, 59),
)
def test_any_split_gives_the_same_values(lo: int, span: int, sec: int) -> None:
    sim = _SHARED
    a = pd.Timestamp("2026-11-07T00:00Z") + pd.Timedelta(minutes=lo, seconds=sec)
    c = a + pd.Timedelta(minutes=span)
    b = a + pd.Timedelta(minutes=span // 2, seconds=sec)
    ids = ["payments:deposits_per_second", BETS, "odds-api:latency_p95_seconds"]
    whole = sim.series(a, c, ids)
    left, right = sim.series(a, b, ids), sim.series(b, c, ids)
    parts = pd.concat([left, right], ignore_index=True)
    parts = parts.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(whole, parts)


_SHARED = Simulator(SimulatorConfig(seed=11))


def test_live_minute_equals_backfill(month: pd.DataFrame) -> None:
    live = Simulator(SimulatorConfig(seed=7))  # fresh process after a restart
    for minute in pd.date_range(END - pd.Timedelta(minutes=5), END, freq="1min",
                                inclusive="left"):
        got = live.series(minute, minute + pd.Timedelta("1min"))
        want = month[month["ds"] == minute].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want)


def test_unique_ids_filter_and_errors(sim: Simulator) -> None:
    f = sim.series(START, START + pd.Timedelta(hours=1), [BETS, "account:logins_per_second"])
    assert set(f["unique_id"]) == {BETS, "account:logins_per_second"}
    assert len(f) == 120
    with pytest.raises(KeyError, match="series_ids"):
        sim.series(START, START + pd.Timedelta(hours=1), ["nope:x"])
    assert len(sim.series(START, START)) == 0
    naive = sim.series("2026-10-26 00:00", "2026-10-26 00:03", [BETS])
    assert naive["ds"].tolist() == list(pd.date_range(START, periods=3, freq="1min"))


def test_other_steps() -> None:
    s = Simulator(SimulatorConfig(step="15s"))
    f = s.series("2026-11-02T10:00:07Z", "2026-11-02T10:01Z", [BETS])
    assert f["ds"].dt.second.tolist() == [15, 30, 45]
    assert np.allclose(f["y"] * 15, np.round(f["y"] * 15))
    with pytest.raises(ValueError, match="divides one day"):
        SimulatorConfig(step="7min")


def test_daily_and_weekly_seasonality(wide: pd.DataFrame) -> None:
    bets = wide[BETS]
    hour = bets.index.hour
    evening = bets[(hour >= 18) & (hour < 22)].mean()
    night = bets[(hour >= 2) & (hour < 6)].mean()
    assert evening > 5 * night
    deposits = wide["payments:deposits_per_second"]
    weekend = deposits.index.day_of_week >= 5
    ratio = deposits[weekend].mean() / deposits[~weekend].mean()
    assert 1.25 < ratio < 1.7  # x1.4 count at weekends [TRU] plus Saturday football
    withdrawals = wide["payments:withdrawals_per_second"]
    flat = withdrawals[weekend].mean() / withdrawals[~weekend].mean()
    assert 0.85 < flat < 1.2  # payouts flat over the week [TRU]
    # Saturday afternoon (football) beats a weekday afternoon
    sat = bets[(bets.index.day_of_week == 5) & (hour >= 12) & (hour < 18)].mean()
    wed = bets[(bets.index.day_of_week == 2) & (hour >= 12) & (hour < 17)].mean()
    assert sat > 1.5 * wed


def test_baseline_weekly_deposit_factor_is_exact(sim: Simulator) -> None:
    base = sim.expected("2026-11-04T12:00Z", "2026-11-04T12:01Z", ["payments:deposits_per_second"],
                        events=False)["y"].iloc[0]
    sat = sim.expected("2026-11-07T12:00Z", "2026-11-07T12:01Z", ["payments:deposits_per_second"],
                       events=False)["y"].iloc[0]
    # the slow trend moves 3 days by < 0.5 %
    assert sat / base == pytest.approx(1.4, rel=0.01)


def test_scale_figures(wide: pd.DataFrame) -> None:
    bets = wide[BETS]
    quiet = bets[(bets.index.day_of_week == 2) & (bets.index.hour == 15)].median()
    assert 12 < quiet < 35  # ~20 bets/s on a quiet weekday afternoon
    assert bets.max() > 250  # several hundred at the big kickoffs
    odds = wide["odds-api:requests_per_second"].sum() / bets.sum()
    assert 25 < odds < 35  # ~30 odds reads per bet [BF07]
    fail = wide["payments:deposit_failures_per_second"].sum() / \
        wide["payments:deposits_per_second"].sum()
    assert 0.1 < fail < 0.25  # blended card failures [PAY]


def test_count_noise_variance_scales_with_mean() -> None:
    # no events, promotions or incidents: only the baseline, the latent wobble and count noise
    cfg = SimulatorConfig(kickoff_uplift=1.0, promotions_per_day=0, incidents_per_day=0)
    s = Simulator(cfg)
    frame = s.series("2026-11-02T00:00Z", "2026-11-06T00:00Z",
                     [BETS, "account:login_failures_per_second"])
    wide = frame.pivot(index="ds", columns="unique_id", values="y") * 60  # counts per minute
    for uid, lo_hours, hi_hours in ((BETS, (3, 5), (18, 21)),
                                    ("account:login_failures_per_second", (3, 5), (18, 21))):
        counts = wide[uid]
        h = counts.index.hour
        stats = []
        for a, b in (lo_hours, hi_hours):
            part = counts[(h >= a) & (h < b)]
            # first differences remove the smooth mean; var(diff) = 2 var(noise)
            stats.append((part.mean(), part.diff().var() / 2))
        (m_lo, v_lo), (m_hi, v_hi) = stats
        assert m_hi > 3 * m_lo
        assert 0.7 < v_lo / m_lo < 1.6, (uid, v_lo / m_lo)  # Poisson-like at low counts
        assert v_hi / v_lo > 0.6 * m_hi / m_lo  # variance grows with the mean, not constant
    assert not frame["y"].isna().any()


def test_many_cloned_services_scale() -> None:
    kinds = ("odds-api", "bet-placement", "account", "payments")
    services = tuple(
        ServiceSpec(f"svc-{i:03d}", kinds[i % 4], scale=1.0 if i < 4 else 2.0) for i in range(8)
    )
    s = Simulator(SimulatorConfig(services=services, incidents_per_day=0))
    assert len(s.series_ids()) == 2 * 19
    f = s.series("2026-11-03T00:00Z", "2026-11-04T00:00Z")
    mean = f.groupby("unique_id")["y"].mean()
    for i in range(4):
        one, two = f"svc-{i:03d}", f"svc-{i + 4:03d}"
        assert mean[f"{two}:requests_per_second"] / mean[f"{one}:requests_per_second"] == \
            pytest.approx(2.0, rel=0.05)
        assert mean[f"{two}:error_ratio"] == pytest.approx(mean[f"{one}:error_ratio"], rel=0.2)
    # adding a service does not change the others (per-service random streams)
    fewer = Simulator(SimulatorConfig(services=services[:5], incidents_per_day=0))
    g = fewer.series("2026-11-03T00:00Z", "2026-11-04T00:00Z", ["svc-001:bets_per_second"])
    pd.testing.assert_frame_equal(
        g, f[f["unique_id"] == "svc-001:bets_per_second"].reset_index(drop=True)
    )


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="name"):
        ServiceSpec("a:b", "account")
    with pytest.raises(ValueError, match="kind"):
        ServiceSpec("a", "casino")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicate"):
        SimulatorConfig(services=(ServiceSpec("a", "account"), ServiceSpec("a", "payments")))
    with pytest.raises(ValueError, match="weekly_bets"):
        SimulatorConfig(weekly_bets=(1.0,))


def test_docstring_examples_run() -> None:
    import doctest
    import importlib

    for name in ("simulator", "simulator.engine", "simulator.openmetrics", "simulator.files"):
        result = doctest.testmod(importlib.import_module(name))
        assert result.failed == 0, name
