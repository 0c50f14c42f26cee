"""The KEDA ``metrics-api`` contract of ``GET /v1/scaling/{service}``, read the way KEDA reads it
(a GJSON ``valueLocation``), over a store filled by real ticks of the simulator."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd
import pytest
from api_world import FixedClock, small_settings
from fastapi.testclient import TestClient

from surgecast.api import create_app
from surgecast.api_scaling import needed_replicas, scaling_answer
from surgecast.config import Settings
from surgecast.store import Store
from surgecast.wiring import build_pipeline

NOW = pd.Timestamp.now(tz="UTC").floor("5min")


def gjson(document: Any, path: str) -> Any:
    """A GJSON path evaluator for what KEDA's ``valueLocation`` uses: dot-separated keys,
    ``\\.`` for a literal dot, numeric indexes into arrays (``foo.0.bar``), ``#`` for an
    array's length. Returns ``None`` where GJSON finds nothing."""
    parts = [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", path)]
    current = document
    for part in parts:
        if isinstance(current, list):
            if part == "#":
                current = len(current)
            elif part.isdigit() and int(part) < len(current):
                current = current[int(part)]
            else:
                return None
        elif isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return None
    return current


def keda_value(body: bytes, value_location: str) -> float:
    """What KEDA's metrics-api scaler does with a JSON answer: GJSON, then a number."""
    value = gjson(json.loads(body), value_location)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AssertionError(f"{value_location} is not a JSON number: {value!r}")
    return float(value)


def test_the_gjson_helper_follows_the_keda_docs_examples():
    doc = {"components": {"worker": {"tasks": 12}}, "foo": [{"bar": 3}], "a.b": 1}
    assert gjson(doc, "components.worker.tasks") == 12
    assert gjson(doc, "foo.0.bar") == 3
    assert gjson(doc, "foo.#") == 1
    assert gjson(doc, "a\\.b") == 1
    assert gjson(doc, "components.nope") is None


def make_settings(tmp_path, **api: Any) -> Settings:
    return small_settings(tmp_path, "scaling.db", api={"scaling_cache_seconds": 0, **api})


@pytest.fixture
def world(tmp_path):
    settings = make_settings(tmp_path)
    store = Store(settings.store.url)
    pipeline = build_pipeline(settings, store)
    pipeline.tick(NOW)
    clock = FixedClock(NOW + pd.Timedelta(seconds=30))
    client = TestClient(create_app(settings, store, clock=clock))
    yield settings, store, client, clock
    store.close()


def test_keda_reads_the_numbers_of_the_latest_recommendation(world):
    settings, store, client, _ = world
    latest = {r["service"]: r for r in store.latest_recommendations()}
    assert set(latest) == set(settings.services)
    for service, rec in latest.items():
        response = client.get(f"/v1/scaling/{service}")
        assert response.status_code == 200
        inputs = rec["inputs"]
        forecast = keda_value(response.content, "forecast_rps")
        replicas = keda_value(response.content, "recommended_replicas")
        per_replica = keda_value(response.content, "capacity_per_replica")
        assert forecast == pytest.approx(inputs["forecast_peak"])
        assert replicas == rec["recommended_replicas"]
        assert per_replica == pytest.approx(
            inputs["capacity_per_replica"] * inputs["target_utilization"]
        )
        body = response.json()
        assert body["horizon_s"] == inputs["lead_time_s"]
        assert body["model"] == rec["model"]
        assert body["stale"] is False
        assert pd.Timestamp(body["valid_until"]) == rec["valid_until"]
        # the forecast_rps trigger asks HPA for what the forecast alone needs
        assert math.ceil(forecast / per_replica - 1e-9) == inputs["needed_for_forecast"]


def test_unknown_service_is_404_and_no_recommendation_yet_is_503(tmp_path):
    settings = make_settings(tmp_path)
    store = Store(settings.store.url)
    client = TestClient(create_app(settings, store))
    assert client.get("/v1/scaling/casino").status_code == 404
    response = client.get("/v1/scaling/payments")
    assert response.status_code == 503  # KEDA counts it as a failure and applies its fallback
    assert "first tick" in response.json()["detail"][0]["msg"]
    store.close()


def test_past_valid_until_it_is_stale_and_never_below_the_current_load(world):
    settings, store, client, clock = world
    rec = {r["service"]: r for r in store.latest_recommendations()}["bet-placement"]
    clock.at = rec["valid_until"] + pd.Timedelta(minutes=5)
    body = client.get("/v1/scaling/bet-placement").json()
    assert body["stale"] is True
    assert body["recommended_replicas"] >= rec["recommended_replicas"]
    assert body["forecast_rps"] >= rec["inputs"]["forecast_peak"]
    # a surge arrives while the ticks are stuck: the answer follows the observed load
    surge = pd.DataFrame({
        "unique_id": ["bet-placement:requests_per_second"],
        "ds": [clock.at - pd.Timedelta(minutes=1)], "y": [1500.0],
    })  # fmt: skip
    store.upsert_points(surge)
    body = client.get("/v1/scaling/bet-placement").json()
    svc = settings.services["bet-placement"]
    need = needed_replicas(1500.0, svc.capacity_per_replica, svc.target_utilization)
    assert body["stale"] is True
    assert body["recommended_replicas"] == max(rec["recommended_replicas"], need)
    assert body["forecast_rps"] >= 1500.0
    assert body["current_rps"] == 1500.0


def test_scaling_answers_from_memory_while_the_store_is_gone(tmp_path):
    settings = make_settings(tmp_path, scaling_cache_seconds=3600)
    store = Store(settings.store.url)
    build_pipeline(settings, store).tick(NOW)
    clock = FixedClock(NOW + pd.Timedelta(seconds=30))
    client = TestClient(create_app(settings, store, clock=clock))
    first = client.get("/v1/scaling/payments").json()
    store.close()  # every store call now raises StoreError
    again = client.get("/v1/scaling/payments")
    assert again.status_code == 200 and again.json() == first
    clock.at = NOW + pd.Timedelta(hours=1)  # still in memory, now past valid_until
    late = client.get("/v1/scaling/payments").json()
    assert late["stale"] is True
    assert late["recommended_replicas"] >= first["recommended_replicas"]


def test_scaling_answer_is_pure_and_safe_without_a_forecast():
    svc = Settings().services["payments"]
    rec = {
        "service": "payments", "at": NOW, "valid_until": NOW + pd.Timedelta("3min"),
        "recommended_replicas": 4, "reason": "payments: holding 4 replicas", "inputs": {},
        "stale": True, "model": "none",
    }  # fmt: skip
    load = (NOW, 400.0)  # 400 req/s at 40 x 0.7 per replica: 15 replicas
    out = scaling_answer(
        "payments", svc, rec, NOW + pd.Timedelta("1min"), current_load=load, overrides=[],
        stale_after_s=300,
    )  # fmt: skip
    assert out["stale"] is True
    assert out["recommended_replicas"] == 15
    assert out["forecast_rps"] >= 400.0
    assert math.ceil(out["forecast_rps"] / out["capacity_per_replica"] - 1e-9) >= 15
