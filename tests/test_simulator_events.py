"""Fixture calendar, kickoff surges and ground-truth incidents match the generated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator import Simulator, SimulatorConfig
from simulator.incidents import _degradation_errors

START = pd.Timestamp("2026-10-26T00:00Z")  # a Monday
END = START + pd.Timedelta(days=28)
BETS = "bet-placement:bets_per_second"
ODDS = "odds-api:requests_per_second"


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator(SimulatorConfig(seed=7, cache_days=40))


@pytest.fixture(scope="module")
def fixtures(sim: Simulator) -> pd.DataFrame:
    return sim.fixtures(START, END)


def test_fixture_frame(fixtures: pd.DataFrame, sim: Simulator) -> None:
    assert list(fixtures.columns) == ["event_id", "start", "end", "sport", "competition",
                                      "importance", "name", "expected_uplift"]
    assert fixtures["event_id"].is_unique
    assert str(fixtures["start"].dtype) == "datetime64[ns, UTC]"
    assert (fixtures["end"] > fixtures["start"]).all()
    assert fixtures["importance"].between(0, 1).all()
    assert (fixtures["expected_uplift"] >= 1).all()
    cfg = sim.config
    matches = fixtures[fixtures["sport"] != "promotion"]
    want = [cfg.event_uplift(c, i) for c, i in zip(matches["competition"], matches["importance"],
                                                      strict=True)]
    assert np.allclose(matches["expected_uplift"], want)
    assert {"football", "tennis", "basketball"} <= set(fixtures["sport"])
    assert matches["name"].str.contains(" v ").all()


def test_calendar_follows_the_football_week(fixtures: pd.DataFrame) -> None:
    ko = fixtures["start"]
    pl_sat = fixtures[(fixtures["competition"] == "Premier League") & (ko.dt.day_of_week == 5)]
    assert set(pl_sat["start"].dt.strftime("%H:%M")) == {"12:30", "15:00", "17:30"}
    cl = fixtures[fixtures["competition"] == "Champions League"]
    assert set(cl["start"].dt.day_of_week) == {1, 2}
    assert "20:00" in set(cl["start"].dt.strftime("%H:%M"))
    el = fixtures[fixtures["competition"] == "Europa League"]
    assert set(el["start"].dt.day_of_week) == {3}
    sun = fixtures[(fixtures["sport"] == "football") & (ko.dt.day_of_week == 6)]
    assert len(sun) >= 4 * 4


def test_fixture_windows_compose(sim: Simulator) -> None:
    a, b, c = START, START + pd.Timedelta(hours=61, minutes=17), START + pd.Timedelta(days=5)
    whole = set(sim.fixtures(a, c)["event_id"])
    parts = set(sim.fixtures(a, b)["event_id"]) | set(sim.fixtures(b, c)["event_id"])
    assert whole == parts
    again = Simulator(SimulatorConfig(seed=7)).fixtures(a, c)
    pd.testing.assert_frame_equal(again, sim.fixtures(a, c))


def _peak_multipliers(sim: Simulator, fixtures: pd.DataFrame) -> pd.DataFrame:
    """Per kickoff: summed configured surge, model multiplier and observed multiplier at T-2."""
    peak = pd.Timedelta(minutes=sim.config.peak_offset_minutes)
    matches = fixtures[fixtures["sport"] != "promotion"]
    grouped = matches.groupby("start")["expected_uplift"].apply(lambda u: 1 + (u - 1).sum())
    at = grouped.index - peak
    base = sim.expected(START, END, [BETS], events=False).set_index("ds")["y"]
    model = sim.expected(START, END, [BETS]).set_index("ds")["y"]
    observed = sim.series(START, END, [BETS]).set_index("ds")["y"]
    window = [at + pd.Timedelta(minutes=k) for k in (-1, 0, 1)]  # T-3, T-2, T-1
    obs = np.mean([observed.reindex(w).to_numpy() for w in window], axis=0)
    bas = np.mean([base.reindex(w).to_numpy() for w in window], axis=0)
    return pd.DataFrame(
        {
            "configured": grouped.to_numpy(),
            "model": model.reindex(at).to_numpy() / base.reindex(at).to_numpy(),
            "observed": obs / bas,
        },
        index=grouped.index,
    )


def test_kickoffs_carry_the_configured_surge(sim: Simulator, fixtures: pd.DataFrame) -> None:
    peaks = _peak_multipliers(sim, fixtures)
    # isolated kickoffs: nothing else (other matches, promotions) adds to the peak
    isolated = peaks[np.isclose(peaks["model"], peaks["configured"], rtol=0.03)]
    # and no labelled incident (a bot attack multiplies bets) on bet-placement near it
    inc = sim.incidents(START, END)
    inc = inc[inc["service"] == "bet-placement"]
    hit = [((inc["start"] <= t) & (inc["end"] > t - pd.Timedelta(minutes=5))).any()
           for t in isolated.index]
    isolated = isolated[~np.array(hit, dtype=bool)]
    big = isolated[isolated["configured"] >= 2.5]
    assert len(big) >= 8, peaks
    # noise-free model: the peak multiplier is the configured surge
    assert np.allclose(big["model"], big["configured"], rtol=0.03)
    # noisy data (count noise + latent wobble + the T-3 ramp): within 15 % each, 5 % on average
    ratio = big["observed"] / big["configured"]
    assert ratio.between(0.85, 1.15).all(), ratio
    assert ratio.mean() == pytest.approx(1.0, abs=0.05)


def test_surge_follows_the_kickoff_uplift_parameter() -> None:
    lo, hi = (Simulator(SimulatorConfig(kickoff_uplift=k)) for k in (3.0, 6.0))
    day = ("2026-11-03T00:00Z", "2026-11-04T00:00Z")  # a Champions League Tuesday
    f_lo, f_hi = lo.fixtures(*day), hi.fixtures(*day)
    assert f_lo["event_id"].tolist() == f_hi["event_id"].tolist()  # same calendar
    u_lo, u_hi = f_lo["expected_uplift"] - 1, f_hi["expected_uplift"] - 1
    matches = f_lo["sport"] != "promotion"
    assert np.allclose(u_hi[matches] / u_lo[matches], 2.5)
    b_lo = lo.series(*day, [BETS]).set_index("ds")["y"]
    b_hi = hi.series(*day, [BETS]).set_index("ds")["y"]
    at = pd.Timestamp("2026-11-03T19:58Z")
    assert b_hi[at] > 1.6 * b_lo[at]
    quiet = pd.Timestamp("2026-11-03T08:00Z")  # after the NBA, before tennis
    assert b_hi[quiet] == pytest.approx(b_lo[quiet], rel=0.25)


def test_prematch_ramp_and_in_play_shape(sim: Simulator, fixtures: pd.DataFrame) -> None:
    cl = fixtures[(fixtures["competition"] == "Champions League")
                  & (fixtures["start"].dt.strftime("%H:%M") == "20:00")]
    ko = cl["start"].iloc[0]
    model = sim.expected(ko - pd.Timedelta(hours=2), ko + pd.Timedelta(hours=3), [BETS])
    y = model.set_index("ds")["y"]
    t = lambda m: ko + pd.Timedelta(minutes=m)  # noqa: E731
    assert y.idxmax() == t(-2)  # pre-match peak 2 min before kickoff [WPUCL]
    assert y[t(-2)] > 1.5 * y[t(-10)] > 1.5 * y[t(-40)]  # steep exponential ramp
    # half-time dip, in-play below the pre-match peak, quiet after the final whistle
    assert y[t(55)] < y[t(40)]
    assert y[t(40)] < y[t(-2)]
    assert y[t(170)] < 0.25 * y[t(-2)]


def test_post_match_login_wave(sim: Simulator, fixtures: pd.DataFrame) -> None:
    sat = fixtures[(fixtures["competition"] == "Premier League")
                   & (fixtures["start"].dt.strftime("%H:%M") == "17:30")]
    end = sat["end"].iloc[0]
    logins = sim.expected(end - pd.Timedelta(minutes=30), end + pd.Timedelta(minutes=30),
                          ["account:logins_per_second"]).set_index("ds")["y"]
    assert logins[end] > 1.3 * logins[end - pd.Timedelta(minutes=10)]
    assert logins[end + pd.Timedelta(minutes=25)] < logins[end]


# ----------------------------------------------------------------------------- incidents
@pytest.fixture(scope="module")
def busy() -> Simulator:
    return Simulator(SimulatorConfig(seed=3, incidents_per_day=2.0, cache_days=40))


@pytest.fixture(scope="module")
def busy_window(busy: Simulator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    start, end = START, START + pd.Timedelta(days=21)
    series = busy.series(start, end).pivot(index="ds", columns="unique_id", values="y")
    expected = busy.expected(start, end).pivot(index="ds", columns="unique_id", values="y")
    return busy.incidents(start, end), series, expected


def _clean(incidents: pd.DataFrame, row: pd.Series) -> bool:
    """No other incident on the same service overlaps this one (+-1 h)."""
    pad = pd.Timedelta(hours=1)
    same = incidents[(incidents["service"] == row["service"])
                     & (incidents["incident_id"] != row["incident_id"])]
    return not ((same["start"] < row["end"] + pad) & (same["end"] > row["start"] - pad)).any()


def test_incident_frame(busy_window: tuple) -> None:
    incidents, _, _ = busy_window
    assert list(incidents.columns) == ["incident_id", "kind", "service", "unique_ids", "start",
                                       "end", "magnitude", "description"]
    assert incidents["incident_id"].is_unique
    assert set(incidents["kind"]) == {"payment_outage", "bot_attack", "ddos",
                                      "latency_degradation", "metric_silence"}
    assert (incidents["end"] > incidents["start"]).all()
    for _, row in incidents.iterrows():
        assert all(u.startswith(row["service"] + ":") for u in row["unique_ids"].split(","))


def test_incident_rate_zero_disables() -> None:
    s = Simulator(SimulatorConfig(incidents_per_day=0))
    assert len(s.incidents(START, END)) == 0


def test_default_incident_rate_is_every_few_days(sim: Simulator) -> None:
    n = len(sim.incidents(START, START + pd.Timedelta(days=84)))
    assert 84 / 6 < n < 84 / 1.5


def test_labels_match_where_the_data_deviates(busy_window: tuple) -> None:
    incidents, series, expected = busy_window
    checked: set[str] = set()
    for _, row in incidents.iterrows():
        whole = row["start"] >= series.index[0] and row["end"] <= series.index[-1]
        if not whole or not _clean(incidents, row):
            continue
        svc, kind = row["service"], row["kind"]
        inside = (series.index >= row["start"]) & (series.index < row["end"])
        day = (series.index >= row["start"] - pd.Timedelta(hours=6)) & \
            (series.index < row["end"] + pd.Timedelta(hours=6)) & ~inside
        for _, other in incidents[incidents["service"] == svc].iterrows():
            day &= ~((series.index >= other["start"]) & (series.index < other["end"]))

        def ratio(col: str, mask: np.ndarray) -> float:
            return float(series.loc[mask, col].sum() / expected.loc[mask, col].sum())

        if kind == "payment_outage":
            fail = series[f"{svc}:deposit_failures_per_second"]
            dep = series[f"{svc}:deposits_per_second"]
            assert fail[inside].sum() / dep[inside].sum() > 0.5
            assert fail[day].sum() / dep[day].sum() < 0.25
        elif kind == "bot_attack":
            assert ratio(f"{svc}:bets_per_second", inside) == pytest.approx(row["magnitude"],
                                                                            rel=0.25)
            odds_hit = incidents[(incidents["service"] == "odds-api")
                                 & (incidents["start"] < row["end"])
                                 & (incidents["end"] > row["start"])]
            if odds_hit.empty:
                assert ratio(ODDS, inside) == pytest.approx(1.0, abs=0.15)  # no odds traffic
        elif kind == "ddos":
            assert ratio(f"{svc}:requests_per_second", inside) > 2.0
            assert ratio(f"{svc}:latency_p95_seconds", inside) > 1.5
            if f"{svc}:bets_per_second" in row["unique_ids"]:
                conv_in = series.loc[inside, f"{svc}:bets_per_second"].sum() / \
                    series.loc[inside, f"{svc}:requests_per_second"].sum()
                conv_out = series.loc[day, f"{svc}:bets_per_second"].sum() / \
                    series.loc[day, f"{svc}:requests_per_second"].sum()
                assert conv_in < 0.4 * conv_out
        elif kind == "latency_degradation":
            last = inside & (series.index >= row["end"] - (row["end"] - row["start"]) / 4)
            assert ratio(f"{svc}:latency_p95_seconds", last) > 1.5
            assert ratio(f"{svc}:latency_p95_seconds", day) == pytest.approx(1.0, abs=0.1)
            # availability falls with it [TT15]: errors per request several times the usual
            assert row["unique_ids"] == f"{svc}:latency_p95_seconds,{svc}:error_ratio"
            err = series[f"{svc}:error_ratio"]
            assert err[last].mean() > 0.05 + 3 * err[day].mean()
            # [TT15]: 12 points down on average over the hour in which latency doubled, so a
            # linear ramp to x m adds 0.12 (m - 1) on average (less where the 50 % cap binds)
            usual = err[day].mean()
            peak = np.linspace(0, 1, 101) * _degradation_errors(row["magnitude"])
            excess = err[inside].mean() - usual
            assert excess == pytest.approx((np.minimum(usual + peak, 0.5) - usual).mean(), rel=0.3)
            assert _degradation_errors(1.91) / 2 == pytest.approx(0.11, abs=0.005)  # the hour
        elif kind == "metric_silence":
            uid = row["unique_ids"]
            assert series.loc[inside, uid].isna().all()
            assert series.loc[day, uid].notna().all()
        checked.add(kind)
    assert checked == {"payment_outage", "bot_attack", "ddos", "latency_degradation",
                       "metric_silence"}


def test_silence_rows_are_absent(busy: Simulator, busy_window: tuple) -> None:
    incidents, _, _ = busy_window
    row = incidents[incidents["kind"] == "metric_silence"].iloc[0]
    pad = pd.Timedelta(minutes=5)
    frame = busy.series(row["start"] - pad, row["end"] + pad, [row["unique_ids"]])
    assert not frame["y"].isna().any()
    inside = (frame["ds"] >= row["start"]) & (frame["ds"] < row["end"])
    assert not inside.any()
    assert len(frame) == 10
