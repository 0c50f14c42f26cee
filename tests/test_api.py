"""The HTTP API over a store filled by real ticks of the simulator."""

from __future__ import annotations

import pandas as pd
import pytest
from api_world import small_settings
from fastapi.testclient import TestClient

from surgecast.api import create_app
from surgecast.scheduler import ServiceState
from surgecast.wiring import build_pipeline

NOW = pd.Timestamp.now(tz="UTC").floor("5min")


@pytest.fixture
def settings(tmp_path):
    return small_settings(tmp_path, "api.db")


@pytest.fixture
def client(settings, store):
    return TestClient(create_app(settings, store, ServiceState()))


@pytest.fixture
def ticked(settings, store, client):
    build_pipeline(settings, store).tick(NOW)
    return client


def test_healthz_always_answers(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert abs(pd.Timestamp(body["now"]) - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=5)


def test_readyz_is_503_before_the_first_tick_and_200_after(settings, store, client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "no tick has finished yet" in response.json()["problems"]
    build_pipeline(settings, store).tick(NOW)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["ready"] is True
    assert response.json()["last_tick_age_s"] < 600


def test_recommendations_one_per_service_with_the_contract_fields(ticked, settings):
    body = ticked.get("/v1/recommendations").json()
    assert sorted(r["service"] for r in body) == sorted(settings.services)
    for rec in body:
        for field in ("recommended_replicas", "reason", "valid_until", "stale", "inputs", "at"):
            assert field in rec
        assert isinstance(rec["recommended_replicas"], int)
        assert pd.Timestamp(rec["valid_until"]).tzinfo is not None


def test_one_service_and_unknown_service(ticked):
    rec = ticked.get("/v1/recommendations/payments").json()
    assert rec["service"] == "payments"
    response = ticked.get("/v1/recommendations/casino")
    assert response.status_code == 404
    assert "unknown service 'casino'" in response.json()["detail"][0]["msg"]


def test_recommendation_past_valid_until_reads_as_stale(settings, store, client):
    old = NOW - pd.Timedelta(hours=1)
    store.save_recommendation(
        {
            "service": "payments", "at": old, "valid_until": old + pd.Timedelta("3min"),
            "current_replicas": None, "recommended_replicas": 5, "throttle_rps": None,
            "reason": "payments: test", "inputs": {}, "stale": False, "model": "seasonal_naive",
        }
    )  # fmt: skip
    rec = client.get("/v1/recommendations/payments").json()
    assert rec["stale"] is True


def test_series_and_points_without_duplicates(ticked):
    series = ticked.get("/v1/series").json()
    ids = {s["unique_id"] for s in series}
    assert "bet-placement:requests_per_second" in ids
    start = (NOW - pd.Timedelta(hours=6)).isoformat()
    body = ticked.get(
        "/v1/series/bet-placement:requests_per_second/points",
        params={"start": start, "end": NOW.isoformat()},
    ).json()
    ds = [p["ds"] for p in body["points"]]
    assert len(ds) == 72 and len(set(ds)) == len(ds)
    assert ds == sorted(ds)


def test_points_limit_and_truncation(ticked):
    body = ticked.get(
        "/v1/series/bet-placement:requests_per_second/points",
        params={
            "start": (NOW - pd.Timedelta(hours=6)).isoformat(),
            "end": NOW.isoformat(),
            "limit": 10,
        },
    ).json()
    assert len(body["points"]) == 10 and body["truncated"] is True


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "not-a-date"}, "start"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_000_000}, "limit"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "end"),
    ],
)
def test_bad_parameters_get_422_naming_the_field(ticked, params, field):
    response = ticked.get("/v1/series/bet-placement:requests_per_second/points", params=params)
    assert response.status_code == 422
    assert field in response.json()["detail"][0]["loc"]


def test_unknown_series_is_404(ticked):
    response = ticked.get("/v1/series/nope:x/points")
    assert response.status_code == 404


def test_openapi_lists_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/healthz",
        "/readyz",
        "/v1/recommendations",
        "/v1/recommendations/{service}",
        "/v1/series",
        "/v1/series/{unique_id}/points",
    ):
        assert path in paths


def test_a_recommendation_dated_in_the_future_is_not_served_as_current(ticked, store):
    current = ticked.get("/v1/recommendations/payments").json()
    future = NOW + pd.Timedelta(hours=3)
    store.save_recommendation(
        {
            "service": "payments", "at": future, "valid_until": future + pd.Timedelta("3min"),
            "current_replicas": None, "recommended_replicas": 19, "throttle_rps": None,
            "reason": "payments: replayed", "inputs": {}, "stale": False, "model": "x",
        }
    )  # fmt: skip
    served = ticked.get("/v1/recommendations/payments").json()
    assert served["at"] == current["at"]
    assert served["recommended_replicas"] == current["recommended_replicas"]


def test_truncated_is_false_when_exactly_limit_points_exist(ticked):
    params = {"start": (NOW - pd.Timedelta("50min")).isoformat(), "end": NOW.isoformat()}
    uid = "bet-placement:requests_per_second"
    body = ticked.get(f"/v1/series/{uid}/points", params={**params, "limit": 10}).json()
    assert len(body["points"]) == 10 and body["truncated"] is False
    body = ticked.get(f"/v1/series/{uid}/points", params={**params, "limit": 9}).json()
    assert len(body["points"]) == 9 and body["truncated"] is True


def test_healthz_tells_the_services_clock(settings, store):
    demo = pd.Timestamp("2026-11-21 19:40", tz="UTC")  # a --speed demo or a replayed clock
    client = TestClient(create_app(settings, store, clock=lambda: demo))
    assert pd.Timestamp(client.get("/healthz").json()["now"]) == demo
