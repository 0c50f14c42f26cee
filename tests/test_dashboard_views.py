"""The dashboard's numbers, computed from API answers without a browser, and its API client's
errors (unreachable, refused) that pages turn into banners."""

from __future__ import annotations

import pandas as pd
import pytest
from processes import free_port

from dashboard.client import ApiClient, ApiError, ApiUnreachable
from dashboard.views import (
    age_label,
    anomaly_states,
    fixture_outlook,
    kickoff_uplift,
    models_table,
    overview_table,
    related_context,
)

NOW = pd.Timestamp("2026-11-28 19:00", tz="UTC")


def rec(service: str, replicas: int, *, load: float = 100.0, stale: bool = False,
        valid_for: str = "3min", **inputs) -> dict:  # fmt: skip
    return {
        "service": service, "at": NOW.isoformat(),
        "valid_until": (NOW + pd.Timedelta(valid_for)).isoformat(),
        "recommended_replicas": replicas, "throttle_rps": None, "stale": stale, "model": "m",
        "reason": f"{service}: because", "current_replicas": None,
        "inputs": {"current_load": load, "capacity_per_replica": 50.0, "target_utilization": 0.7,
                   "previous_replicas": replicas - 1, "forecast_peak": 420.0,
                   "forecast_peak_at": (NOW + pd.Timedelta("5min")).isoformat(),
                   "newest_point_at": (NOW - pd.Timedelta("2min")).isoformat(),
                   "lead_time_s": 600, "min_replicas": 2, "max_replicas": 40,
                   "load_series": f"{service}:requests_per_second", **inputs},
    }  # fmt: skip


def anomaly(uid: str, minutes_ago: int, kind: str = "spike", **state) -> dict:
    return {"unique_id": uid, "ds": (NOW - pd.Timedelta(minutes=minutes_ago)).isoformat(),
            "y": 9.0, "expected": 1.0, "lower": 0.5, "upper": 2.0, "score": 0.95, "kind": kind,
            "detector": "novelty", "acknowledged": False, "silenced": False, "ack_id": None,
            **state}  # fmt: skip


def test_overview_has_one_row_per_service_with_capacity_freshness_and_open_anomalies():
    recs = [rec("bet-placement", 9, load=180.0), rec("payments", 3, stale=True)]
    anomalies = [
        anomaly("bet-placement:bets_per_second", 10),
        anomaly("bet-placement:error_ratio", 20, acknowledged=True),  # handled: not open
        anomaly("bet-placement:error_ratio", 90),  # older than the hour: not open
        anomaly("payments:deposit_failures_per_second", 5, silenced=True),
    ]
    table = overview_table(recs, anomalies, NOW).set_index("service")
    assert table.loc["bet-placement", "replicas"] == 9
    assert table.loc["bet-placement", "load now"] == 180.0
    assert table.loc["bet-placement", "ready capacity"] == 8 * 50.0  # previous x capacity
    assert table.loc["bet-placement", "forecast peak"] == 420.0
    assert table.loc["bet-placement", "open anomalies"] == 1
    assert table.loc["payments", "open anomalies"] == 0
    assert table.loc["bet-placement", "data"] == "fresh (2 min)"
    assert table.loc["payments", "data"].startswith("STALE")
    assert table.loc["bet-placement", "reason"] == "bet-placement: because"


def test_a_recommendation_past_its_validity_is_stale_and_says_since_when():
    table = overview_table([rec("odds-api", 4, valid_for="-1min")], [], NOW)
    assert table["data"].iloc[0] == "STALE: no new recommendation since 18:59"


def test_age_labels():
    assert age_label(None, stale=True) == "STALE: no recent data"
    assert age_label(30.0, stale=False) == "fresh (0 min)"


def load_history(kickoffs: list[pd.Timestamp], base: float = 100.0, surge: float = 3.0) -> pd.DataFrame:
    ds = pd.date_range(NOW - pd.Timedelta(days=2), NOW, freq="5min", inclusive="left")
    y = pd.Series(base, index=ds)
    for k in kickoffs:
        y[(ds >= k) & (ds <= k + pd.Timedelta(minutes=15))] = base * surge
    return pd.DataFrame({"ds": ds, "y": y.to_numpy()})


def fixture(name: str, start: pd.Timestamp, competition: str = "Premier League") -> dict:
    return {"event_id": name, "name": name, "start": start.isoformat(),
            "end": (start + pd.Timedelta(hours=2)).isoformat(), "sport": "football",
            "competition": competition, "importance": 0.9, "registered": False}  # fmt: skip


def test_past_kickoffs_give_the_competitions_surge():
    past = [NOW - pd.Timedelta(hours=h) for h in (30, 20)]
    fixtures = [fixture(f"past{i}", k) for i, k in enumerate(past)]
    uplift = kickoff_uplift(load_history(past), fixtures, NOW)
    assert uplift == {"Premier League": [pytest.approx(3.0), pytest.approx(3.0)]}


def test_a_fixture_beyond_the_forecast_is_sized_from_past_kickoffs_of_its_competition():
    past = [NOW - pd.Timedelta(hours=h) for h in (30, 20)]
    kickoff = NOW + pd.Timedelta(hours=2)
    fixtures = [fixture(f"past{i}", k) for i, k in enumerate(past)] + [fixture("Arsenal v Chelsea", kickoff)]
    short_forecast = pd.DataFrame({"ds": [NOW + pd.Timedelta(minutes=5)], "yhat": [100.0],
                                   "yhat_upper": [120.0]})  # fmt: skip
    out = fixture_outlook(fixtures, [rec("bet-placement", 4)], {"bet-placement": short_forecast},
                          {"bet-placement": load_history(past)}, NOW)  # fmt: skip
    assert len(out) == 1  # the past fixtures are not "coming up"
    row = out.iloc[0]
    assert row["surge"] == pytest.approx(3.0)
    assert row["peak"] == pytest.approx(300.0)  # a day earlier an hour before kickoff: 100, x3
    assert row["replicas"] == 9  # ceil(300 / (50 x 0.7))
    assert row["ready by"] == kickoff - pd.Timedelta(minutes=10)
    assert row["basis"] == "history (2 past kickoffs of Premier League)"
    assert row["outlook"] == "Arsenal v Chelsea 21:00: bet-placement x3.0, 9 replicas by 20:50"


def test_a_fixture_inside_the_forecast_is_sized_from_the_forecast_and_the_biggest_surge_wins():
    kickoff = NOW + pd.Timedelta(minutes=30)
    ds = pd.date_range(NOW, kickoff + pd.Timedelta(minutes=30), freq="5min")
    flat = pd.DataFrame({"ds": ds, "yhat": 100.0, "yhat_upper": 120.0})
    surge = flat.assign(yhat=[100.0 if t < kickoff else 600.0 for t in ds],
                        yhat_upper=[120.0 if t < kickoff else 700.0 for t in ds])  # fmt: skip
    out = fixture_outlook(
        [fixture("Derby", kickoff)], [rec("account", 3), rec("bet-placement", 3)],
        {"account": flat, "bet-placement": surge}, {}, NOW,
    )
    row = out.iloc[0]
    assert row["service"] == "bet-placement" and row["basis"] == "forecast"
    assert row["surge"] == pytest.approx(6.0)  # 600 against the load now (kickoff within the hour)
    assert row["replicas"] == 20  # ceil(700 / 35)


def test_a_fixture_with_nothing_to_go_on_says_so():
    out = fixture_outlook([fixture("Final", NOW + pd.Timedelta(hours=1))], [rec("account", 3)],
                          {}, {}, NOW)  # fmt: skip
    assert out["basis"].iloc[0] == "no data yet" and pd.isna(out["replicas"].iloc[0])


def test_anomaly_states_follow_acks_silences_and_their_alerts():
    uid = "payments:deposit_failures_per_second"
    alerts = [
        {"payload": {"labels": {"alertname": "SurgecastAnomaly", "series": uid, "kind": "spike"}},
         "firing": True},
        {"payload": {"labels": {"alertname": "SurgecastAnomaly", "series": uid, "kind": "drop"}},
         "firing": False},
    ]  # fmt: skip
    rows = [anomaly(uid, 1, "spike"), anomaly(uid, 2, "drop"), anomaly(uid, 3, "level_shift"),
            anomaly(uid, 4, "spike", acknowledged=True), anomaly(uid, 5, "spike", silenced=True)]
    table = anomaly_states(rows, alerts)
    assert table["state"].tolist() == ["firing", "resolved", "flagged", "acknowledged", "silenced"]
    assert anomaly_states([], alerts).empty


def test_related_context_shows_what_moved_with_the_anomaly():
    at = NOW - pd.Timedelta(minutes=10)
    ds = pd.date_range(at - pd.Timedelta(hours=1), at, freq="5min")
    flat = pd.DataFrame({"ds": ds, "y": 10.0})
    jumped = flat.assign(y=[10.0] * (len(ds) - 1) + [90.0])
    context = related_context(anomaly("payments:deposit_failures_per_second", 10),
                              {"payments:deposit_failures_per_second": jumped,
                               "payments:deposits_per_second": flat})  # fmt: skip
    by = context.set_index("series")
    assert by.loc["payments:deposit_failures_per_second", "ratio"] == pytest.approx(9.0)
    assert by.loc["payments:deposits_per_second", "ratio"] == pytest.approx(1.0)
    assert bool(by.loc["payments:deposit_failures_per_second", "this anomaly"])


def test_models_table_shows_the_chosen_models_score_and_the_runner_up():
    models = [{"unique_id": "payments:requests_per_second", "model": "mstl", "version": "v2",
               "created_at": (NOW - pd.Timedelta(hours=3)).isoformat(),
               "scores": {"mstl": 0.61, "seasonal_naive": 1.0, "ets": 0.8},
               "backtest_windows": 3, "metadata": {"metrics": {"smape": 0.12, "coverage": 0.88}}}]
    row = models_table(models, NOW).iloc[0]
    assert row["MASE"] == 0.61 and row["next best"] == "ets (0.800)"
    assert row["sMAPE (%)"] == 0.12 and row["coverage"] == 0.88
    assert row["age (h)"] == pytest.approx(3.0)


def test_client_turns_a_dead_api_into_api_unreachable():
    client = ApiClient(f"http://127.0.0.1:{free_port()}", timeout_s=1.0)
    with pytest.raises(ApiUnreachable, match="unreachable"):
        client.get("/v1/recommendations")


def test_client_turns_an_error_status_into_api_error_with_the_apis_message(tmp_path):
    from dashboard.demo import ApiServer
    from surgecast.api import create_app
    from surgecast.config import Settings
    from surgecast.store import Store

    store = Store(f"sqlite:///{tmp_path / 'client.db'}")  # served from uvicorn's threads
    server = ApiServer(create_app(Settings(), store)).start()
    try:
        client = ApiClient(server.url)
        with pytest.raises(ApiError) as err:
            client.get("/v1/recommendations/no-such-service")
        assert err.value.status == 404 and "unknown service" in err.value.detail
        with pytest.raises(ApiError) as err:
            client.post("/v1/retrain")
        assert err.value.status in (401, 403)
        assert client.get("/v1/recommendations") == []
    finally:
        server.stop()
        store.close()
