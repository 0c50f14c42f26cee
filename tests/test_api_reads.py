"""Read endpoints: pagination that neither skips nor repeats, time-range and page limits,
filters, and the views over forecasts, anomalies, alerts, audit, models, fixtures, /metrics."""

from __future__ import annotations

import pandas as pd
import pytest
from api_world import OPERATOR_HEADERS, operator_api, small_settings
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from surgecast.api import create_app
from surgecast.api_common import with_registered_events
from surgecast.config import Settings
from surgecast.store import Store
from surgecast.wiring import build_pipeline, build_sources

NOW = pd.Timestamp.now(tz="UTC").floor("5min")


def make_settings(tmp_path) -> Settings:
    return small_settings(tmp_path, "reads.db", api=operator_api())


@pytest.fixture
def empty(tmp_path):
    settings = make_settings(tmp_path)
    store = Store(settings.store.url)
    yield store, TestClient(create_app(settings, store, clock=lambda: NOW))
    store.close()


@pytest.fixture(scope="module")
def ticked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reads")
    settings = make_settings(tmp)
    store = Store(settings.store.url)
    build_pipeline(settings, store).tick(NOW)
    calendar = build_sources(settings).events
    app = create_app(
        settings, store, clock=lambda: NOW + pd.Timedelta(seconds=30), calendar=calendar
    )
    yield store, TestClient(app)
    store.close()


def walk(client: TestClient, path: str, **params) -> list[dict]:
    """Every item of a paged list, following next_end; newest page first."""
    pages, end = [], None
    for _ in range(50):
        query = {**params, **({"end": end} if end else {})}
        body = client.get(path, params=query).json()
        pages.append(body["items"])
        end = body["next_end"]
        if end is None:
            break
    return [item for items in reversed(pages) for item in items]


def anomaly_rows(times: list[pd.Timestamp], uid: str, kind: str) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame({
        "unique_id": [uid] * n, "ds": times, "y": [9.0] * n, "expected": [1.0] * n,
        "lower": [0.0] * n, "upper": [2.0] * n, "score": [0.95] * n, "is_anomaly": [True] * n,
        "kind": [kind] * n, "detector": ["novelty"] * n,
    })  # fmt: skip


def test_recommendation_history_pages_back_without_gaps(empty):
    store, client = empty
    for k in range(7):
        at = NOW - pd.Timedelta(minutes=5 * k)
        store.save_recommendation({
            "service": "payments", "at": at, "valid_until": at + pd.Timedelta("3min"),
            "recommended_replicas": k + 2, "reason": f"payments: r{k}", "model": "m",
        })  # fmt: skip
    first = client.get("/v1/recommendations/payments/history", params={"limit": 3}).json()
    assert [r["recommended_replicas"] for r in first["items"]] == [4, 3, 2]  # newest page
    assert first["next_end"] is not None
    items = walk(client, "/v1/recommendations/payments/history", limit=3)
    assert [r["recommended_replicas"] for r in items] == [8, 7, 6, 5, 4, 3, 2]
    assert client.get("/v1/recommendations/casino/history").status_code == 404


def test_anomaly_pages_keep_rows_that_share_a_time_together(empty):
    store, client = empty
    times = [NOW - pd.Timedelta(minutes=m) for m in (20, 15, 10, 5)]
    store.save_anomalies(anomaly_rows(times, "payments:deposit_failures_per_second", "spike"))
    store.save_anomalies(anomaly_rows(times, "payments:requests_per_second", "drop"))
    store.save_anomalies(anomaly_rows(times[:1], "account:logins_per_second", "spike"))
    items = walk(client, "/v1/anomalies", limit=3)
    keys = [(a["unique_id"], a["ds"]) for a in items]
    assert len(keys) == 9 and len(set(keys)) == 9
    assert [a["ds"] for a in items] == sorted(a["ds"] for a in items)
    by_service = client.get("/v1/anomalies", params={"service": "payments"}).json()["items"]
    assert {a["unique_id"].split(":")[0] for a in by_service} == {"payments"} and len(by_service) == 8
    drops = client.get("/v1/anomalies", params={"kind": "drop"}).json()["items"]
    assert {a["kind"] for a in drops} == {"drop"} and len(drops) == 4


def test_acks_and_silences_show_on_the_anomalies(empty):
    store, client = empty
    uid = "payments:deposit_failures_per_second"
    times = [NOW - pd.Timedelta(minutes=m) for m in (20, 15, 10, 5)]
    store.save_anomalies(anomaly_rows(times, uid, "spike"))
    ack = client.post("/v1/anomalies/acks", headers=OPERATOR_HEADERS, json={
        "action": "ack", "unique_id": uid, "ds": times[0].isoformat(), "reason": "seen"})  # fmt: skip
    assert ack.status_code == 201
    silence = client.post("/v1/anomalies/acks", headers=OPERATOR_HEADERS, json={
        "action": "silence", "unique_id": uid, "ds": times[2].isoformat(),
        "until": (NOW + pd.Timedelta(hours=1)).isoformat(), "reason": "provider maintenance"})  # fmt: skip
    assert silence.status_code == 201
    items = client.get("/v1/anomalies", params={"unique_id": uid}).json()["items"]
    assert [(a["acknowledged"], a["silenced"]) for a in items] == [
        (True, False), (False, False), (False, True), (False, True)]  # fmt: skip
    bad = client.post("/v1/anomalies/acks", headers=OPERATOR_HEADERS, json={
        "action": "silence", "unique_id": uid, "reason": "no until"})  # fmt: skip
    assert bad.status_code == 422 and "until" in bad.json()["detail"][0]["loc"]


def test_audit_pages_and_filters(empty):
    store, client = empty
    entries = [
        {"at": NOW - pd.Timedelta(minutes=m), "service": s, "kind": "recommendation",
         "decision": f"{m}", "reason": "r", "inputs": {}}
        for m in (3, 3, 2, 2, 1) for s in ("payments", "account")
    ]  # fmt: skip
    store.record_decisions(entries)
    items = walk(client, "/v1/audit", limit=4)
    assert len(items) == 10 and len({i["id"] for i in items}) == 10
    only = client.get("/v1/audit", params={"service": "account", "kind": "recommendation"}).json()
    assert {i["service"] for i in only["items"]} == {"account"} and len(only["items"]) == 5
    assert client.get("/v1/audit", params={"kind": "nonsense"}).status_code == 422


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/audit", {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
        ("/v1/anomalies", {"start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "end"),
        ("/v1/alerts", {"limit": 1001}, "limit"),
        ("/v1/anomalies", {"limit": 0}, "limit"),
        ("/v1/audit", {"start": "0001-01-01T00:00:00Z"}, "start"),
        ("/v1/fixtures", {"end": "9999-12-31T00:00:00Z"}, "end"),
        ("/v1/recommendations/payments/history", {"start": "2020-01-01T00:00:00Z"}, "end"),
    ],
)
def test_no_request_asks_for_unbounded_data(empty, path, params, field):
    _, client = empty
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"][0]["loc"]


def test_alerts_with_their_delivery_and_firing_state(empty):
    store, client = empty
    firing = {"labels": {"alertname": "A"}, "endsAt": (NOW + pd.Timedelta("5min")).isoformat()}
    resolved = {"labels": {"alertname": "B"}, "endsAt": (NOW - pd.Timedelta("5min")).isoformat()}
    first = store.enqueue_alert("a", firing, NOW - pd.Timedelta("2min"))
    store.enqueue_alert("b", resolved, NOW - pd.Timedelta("1min"))
    store.mark_alert_delivered(first, NOW)
    items = client.get("/v1/alerts").json()["items"]
    assert [(a["dedup_key"], a["status"], a["firing"]) for a in items] == [
        ("a", "delivered", True), ("b", "pending", False)]  # fmt: skip
    pending = client.get("/v1/alerts", params={"status": "pending"}).json()["items"]
    assert [a["dedup_key"] for a in pending] == ["b"]


def test_models_with_their_backtest_scores(empty):
    store, client = empty
    assert client.get("/v1/models").json() == []
    store.register_model(
        "payments:requests_per_second", "mstl", "v1", "/x.json", "abc",
        {"scores": {"mase": 0.71, "coverage": 0.9}, "backtest_windows": 5,
         "training_window": ["2026-01-01", "2026-01-15"]}, created_at=NOW,
    )  # fmt: skip
    models = client.get("/v1/models").json()
    assert models[0]["model"] == "mstl" and models[0]["scores"]["mase"] == 0.71
    assert client.get("/v1/models/payments:requests_per_second").json()[0]["version"] == "v1"
    assert client.get("/v1/models/nope:x").status_code == 404


def test_forecast_of_a_series_for_a_window(ticked):
    _, client = ticked
    uid = "bet-placement:requests_per_second"
    body = client.get(f"/v1/series/{uid}/forecast").json()
    assert body["points"], body
    ds = [pd.Timestamp(p["ds"]) for p in body["points"]]
    assert ds == sorted(ds) and min(ds) >= NOW
    for p in body["points"]:
        assert p["yhat_lower"] <= p["yhat"] <= p["yhat_upper"]
    end = (NOW + pd.Timedelta("15min")).isoformat()
    short = client.get(f"/v1/series/{uid}/forecast", params={"start": NOW.isoformat(), "end": end})
    assert len(short.json()["points"]) == 3
    assert client.get("/v1/series/nope:x/forecast").status_code == 404


def test_fixtures_merge_the_calendar_and_registered_events(ticked):
    store, client = ticked
    start = NOW + pd.Timedelta(hours=2)
    response = client.post("/v1/events", headers=OPERATOR_HEADERS, json={
        "event_id": "promo-boost-1", "name": "Acca boost", "start": start.isoformat(),
        "end": (start + pd.Timedelta(hours=2)).isoformat(), "importance": 2.0})  # fmt: skip
    assert response.status_code == 201, response.text
    assert client.post("/v1/events", headers=OPERATOR_HEADERS, json={
        "event_id": "promo-boost-1", "name": "again", "start": start.isoformat(),
        "end": (start + pd.Timedelta(hours=1)).isoformat()}).status_code == 409  # fmt: skip
    events = client.get("/v1/fixtures").json()["events"]
    registered = [e for e in events if e["registered"]]
    assert [e["event_id"] for e in registered] == ["promo-boost-1"]
    assert any(not e["registered"] for e in events)  # the simulator's calendar
    # the tick's events provider sees it too (forecasts, alarm suppression)
    provider = with_registered_events(None, store)
    frame = provider(NOW, NOW + pd.Timedelta(days=1))
    assert list(frame["event_id"]) == ["promo-boost-1"]


def test_metrics_export_forecasts_replicas_scores_and_health(ticked):
    store, client = ticked
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = [s for f in text_string_to_metric_families(response.text) for s in f.samples]
    names = {s.name for s in samples}
    for name in (
        "surgecast_forecast", "surgecast_recommended_replicas", "surgecast_anomaly_score",
        "surgecast_tick_duration_seconds", "surgecast_last_tick_timestamp_seconds",
        "surgecast_collector_errors", "surgecast_model_fallbacks", "surgecast_store_up",
    ):  # fmt: skip
        assert name in names, name
    quantiles = {s.labels["quantile"] for s in samples if s.name == "surgecast_forecast"}
    assert quantiles == {"0.05", "0.5", "0.95"}
    latest = {r["service"]: r for r in store.latest_recommendations()}
    replicas = {
        s.labels["service"]: s.value for s in samples if s.name == "surgecast_recommended_replicas"
    }
    assert replicas == {k: float(r["recommended_replicas"]) for k, r in latest.items()}
    peak = {
        s.labels["service"]: s.value for s in samples
        if s.name == "surgecast_forecast" and s.labels["quantile"] == "0.95"
        and s.labels["metric"] == "requests_per_second"
    }  # fmt: skip
    now = NOW + pd.Timedelta(seconds=30)  # the app's clock: the peak ahead of the scrape
    for service, rec in latest.items():
        lead = pd.Timedelta(seconds=rec["inputs"]["lead_time_s"])
        ahead = store.read_forecast(f"{service}:requests_per_second", start=now, end=now + lead)
        assert peak[service] == pytest.approx(ahead["yhat_upper"].max())


def test_throttle_gauges_per_priority(empty):
    store, client = empty
    throttle = {"classes": [
        {"name": "place-bet", "priority": "critical", "limit_rps": 2520.0, "action": "queue"},
        {"name": "cash-out", "priority": "high", "limit_rps": 0.0, "action": "shed"},
    ]}  # fmt: skip
    store.save_recommendation({
        "service": "bet-placement", "at": NOW, "valid_until": NOW + pd.Timedelta("3min"),
        "recommended_replicas": 60, "throttle_rps": 2520.0, "reason": "max", "model": "m",
        "inputs": {"throttle": throttle, "capacity_per_replica": 60.0, "target_utilization": 0.7},
    })  # fmt: skip
    text = client.get("/metrics").text
    samples = {
        (s.labels.get("priority")): s.value
        for f in text_string_to_metric_families(text) for s in f.samples
        if s.name == "surgecast_throttle_rps"
    }  # fmt: skip
    assert samples == {"critical": 2520.0, "high": 0.0}


def test_every_operation_has_a_typed_response(empty):
    _, client = empty
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            content = ok.get("content", {})
            schema = next(iter(content.values()))["schema"] if content else None
            assert schema, (method, path)
            assert schema.get("$ref") or schema.get("type"), (method, path, schema)
