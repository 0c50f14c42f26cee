"""Operator overrides (acceptance 4): one shows in /v1/scaling and /metrics at once, the next
tick applies it, and it ends on time (or when cancelled)."""

from __future__ import annotations

import pandas as pd
import pytest
from api_world import OPERATOR_HEADERS, FixedClock, operator_api, small_settings
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from surgecast.api import create_app
from surgecast.api_overrides import apply_override, revert_override
from surgecast.config import Settings
from surgecast.store import Store
from surgecast.wiring import build_pipeline

NOW = pd.Timestamp.now(tz="UTC").floor("5min")
MIN5 = pd.Timedelta(minutes=5)


@pytest.fixture
def world(tmp_path):
    settings = small_settings(tmp_path, "overrides.db", api=operator_api())
    store = Store(settings.store.url)
    pipeline = build_pipeline(settings, store)
    pipeline.tick(NOW)
    clock = FixedClock(NOW + pd.Timedelta(seconds=30))
    client = TestClient(create_app(settings, store, clock=clock))
    yield store, pipeline, client, clock
    store.close()


def gauge(client: TestClient, name: str, **labels: str) -> float | None:
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_hold_shows_at_once_is_applied_by_the_tick_and_expires_on_time(world):
    store, pipeline, client, clock = world
    planned = client.get("/v1/scaling/bet-placement").json()["recommended_replicas"]
    assert planned != 40
    end = NOW + pd.Timedelta(minutes=12)
    response = client.post("/v1/overrides", headers=OPERATOR_HEADERS, json={
        "service": "bet-placement", "mode": "hold", "replicas": 40,
        "start": NOW.isoformat(), "end": end.isoformat(), "reason": "hold 40 for the final",
    })  # fmt: skip
    assert response.status_code == 201, response.text
    override = response.json()
    assert override["active"] is True and override["created_by"] == "ops"

    # at once, before any tick
    body = client.get("/v1/scaling/bet-placement").json()
    assert body["recommended_replicas"] == 40
    assert body["override"]["id"] == override["id"]
    assert body["forecast_rps"] == pytest.approx(40 * body["capacity_per_replica"])
    assert gauge(client, "surgecast_recommended_replicas", service="bet-placement") == 40
    assert gauge(client, "surgecast_override_active", service="bet-placement") == 1

    # the next tick writes it into the recommendation (and the audit log)
    clock.at = NOW + MIN5 + pd.Timedelta(seconds=30)
    pipeline.tick(NOW + MIN5)
    rec = store.recommendation_history("bet-placement", limit=1)[-1]
    assert rec["at"] == NOW + MIN5
    assert rec["recommended_replicas"] == 40
    assert rec["inputs"]["override"]["id"] == override["id"]
    assert "operator override" in rec["reason"]
    computed = rec["inputs"]["override"]["computed_replicas"]
    assert client.get("/v1/scaling/bet-placement").json()["recommended_replicas"] == 40
    kinds = {e["kind"] for e in store.audit(service="bet-placement")}
    assert "operator" in kinds

    # just before the end it holds; at the end the plan answers again, before the next tick
    clock.at = end - pd.Timedelta(seconds=1)
    assert client.get("/v1/scaling/bet-placement").json()["recommended_replicas"] == 40
    clock.at = end
    body = client.get("/v1/scaling/bet-placement").json()
    assert body["override"] is None
    assert body["recommended_replicas"] == computed
    assert gauge(client, "surgecast_recommended_replicas", service="bet-placement") == computed
    assert gauge(client, "surgecast_override_active", service="bet-placement") == 0

    # and the tick after the end plans without it
    pipeline.tick(NOW + 3 * MIN5)
    rec = store.recommendation_history("bet-placement", limit=1)[-1]
    assert "override" not in rec["inputs"]


def test_cancel_ends_an_override_now(world):
    store, pipeline, client, clock = world
    planned = client.get("/v1/scaling/payments").json()["recommended_replicas"]
    created = client.post("/v1/overrides", headers=OPERATOR_HEADERS, json={
        "service": "payments", "mode": "floor", "replicas": 18, "duration_s": 3600,
        "reason": "promo night",
    }).json()  # fmt: skip
    assert client.get("/v1/scaling/payments").json()["recommended_replicas"] == max(18, planned)
    response = client.delete(f"/v1/overrides/{created['id']}", headers=OPERATOR_HEADERS)
    assert response.status_code == 200
    assert response.json()["active"] is False and response.json()["cancelled_at"] is not None
    assert client.get("/v1/scaling/payments").json()["recommended_replicas"] == planned
    gone = client.get(f"/v1/overrides/{created['id']}")
    assert gone.status_code == 410 and "cancelled at" in gone.json()["detail"][0]["msg"]
    listed = {o["id"]: o for o in client.get("/v1/overrides").json()}
    assert listed[created["id"]]["active"] is False  # history keeps it
    assert client.delete(f"/v1/overrides/{created['id']}", headers=OPERATOR_HEADERS).status_code == 200
    assert client.delete("/v1/overrides/999999", headers=OPERATOR_HEADERS).status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"service": "payments", "mode": "hold", "duration_s": 600}, "replicas"),
        ({"service": "payments", "mode": "hold", "replicas": 5}, "end"),
        ({"service": "payments", "mode": "hold", "replicas": 500, "duration_s": 600}, "replicas"),
        ({"service": "payments", "replicas": 5, "end": "2001-01-01T00:00:00Z"}, "end"),
    ],
)
def test_bad_overrides_are_422_naming_the_field(world, payload, field):
    _, _, client, _ = world
    response = client.post("/v1/overrides", headers=OPERATOR_HEADERS, json={**payload, "reason": "x"})
    assert response.status_code == 422
    assert field in response.json()["detail"][0]["loc"]


def test_unknown_service_override_is_422_and_the_schema_lists_the_services(world):
    _, _, client, _ = world
    response = client.post("/v1/overrides", headers=OPERATOR_HEADERS, json={
        "service": "casino", "replicas": 3, "duration_s": 600, "reason": "x"})  # fmt: skip
    assert response.status_code == 422
    assert "service" in response.json()["detail"][0]["loc"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["OverrideRequest"]
    assert sorted(schema["properties"]["service"]["enum"]) == sorted(Settings().services)


def test_pause_keeps_the_value_in_force_and_floor_never_lowers():
    rec = {"service": "s", "recommended_replicas": 9, "reason": "s: plan", "inputs": {}}
    pause = {"id": 2, "mode": "pause", "replicas": None, "ends_at": NOW, "reason": "freeze"}
    paused = apply_override(rec, pause, previous_replicas=12)
    assert paused["recommended_replicas"] == 12
    assert paused["inputs"]["override"]["computed_replicas"] == 9
    floor = {"id": 3, "mode": "floor", "replicas": 5, "ends_at": NOW, "reason": ""}
    assert apply_override(rec, floor, None)["recommended_replicas"] == 9
    assert revert_override(paused) == {**rec, "reason": "s: plan"}
