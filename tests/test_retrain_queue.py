"""Retrain requests through the store: POST /v1/retrain in any API process queues one, the
scheduler's process claims and runs it once, its outcome is what GET /v1/retrain shows."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from api_world import OPERATOR_HEADERS, operator_api
from fastapi.testclient import TestClient

from surgecast.api import create_app
from surgecast.config import Settings
from surgecast.retrain_queue import run_retrain_requests
from surgecast.store import Store

T0 = pd.Timestamp("2026-11-28 20:00", tz="UTC")
AUTH = OPERATOR_HEADERS


@pytest.fixture
def store(tmp_path):
    # a file, not ":memory:": the in-process retrain writes from its own thread, and threads
    # sharing one in-memory connection would share (and roll back) each other's transactions
    s = Store(f"sqlite:///{tmp_path / 'queue.db'}")
    yield s
    s.close()


def settings() -> Settings:
    return Settings(api=operator_api())


def test_one_request_at_a_time_claimed_once_and_finished(store):
    first, created = store.request_retrain("ops", T0)
    assert created and first["started_at"] is None
    again, created = store.request_retrain("someone-else", T0 + pd.Timedelta("1s"))
    assert not created and again["id"] == first["id"]  # already queued: that one
    started = T0 + pd.Timedelta("2s")
    assert store.claim_retrain(started) is True
    assert store.claim_retrain(started + pd.Timedelta("1s")) is False  # nothing left to claim
    _, created = store.request_retrain("ops", T0 + pd.Timedelta("3s"))
    assert not created  # running counts as open
    store.finish_retrain(started, T0 + pd.Timedelta("9s"), {"a:b": "mstl"}, None)
    status = store.retrain_status()
    assert status["finished_at"] == T0 + pd.Timedelta("9s") and status["result"] == {"a:b": "mstl"}
    nxt, created = store.request_retrain("ops", T0 + pd.Timedelta("10s"))
    assert created and nxt["id"] != first["id"]


def test_a_request_left_running_by_a_dead_scheduler_is_finished_with_the_reason(store):
    store.request_retrain("ops", T0)
    store.claim_retrain(T0 + pd.Timedelta("1s"))
    assert store.abandon_retrains(T0 + pd.Timedelta("1min"), "the scheduler stopped") == 1
    assert store.retrain_status()["error"] == "the scheduler stopped"
    store.request_retrain("ops", T0 + pd.Timedelta("2min"))  # a queued one is left queued
    assert store.abandon_retrains(T0 + pd.Timedelta("3min"), "again") == 0


def test_an_api_process_without_a_scheduler_queues_for_the_scheduler_process(store):
    client = TestClient(create_app(settings(), store))
    assert client.get("/v1/retrain").json()["state"] == "none"
    queued = client.post("/v1/retrain", headers=AUTH)
    assert queued.status_code == 202
    assert queued.json()["state"] == "queued" and queued.json()["requested_by"] == "ops"
    calls = []

    def job() -> dict[str, str]:  # what the scheduler's process runs
        calls.append(1)
        return {"payments:requests_per_second": "mstl"}

    assert run_retrain_requests(job, store) is True
    assert run_retrain_requests(job, store) is False  # claimed once, run once
    assert calls == [1]
    done = client.get("/v1/retrain").json()
    assert done["state"] == "finished" and done["running"] is False
    assert done["result"] == {"payments:requests_per_second": "mstl"} and done["error"] is None
    audit = store.audit(kind="operator", limit=10)
    assert [a["decision"] for a in audit] == ["retrain requested"]


def test_a_failing_retrain_is_reported_not_raised(store):
    client = TestClient(create_app(settings(), store))
    client.post("/v1/retrain", headers=AUTH)

    def job() -> dict[str, str]:
        raise RuntimeError("store unreachable")

    assert run_retrain_requests(job, store) is True
    done = client.get("/v1/retrain").json()
    assert done["state"] == "finished" and done["error"] == "RuntimeError: store unreachable"


def test_with_an_in_process_scheduler_the_request_runs_at_once(store):
    calls = []
    client = TestClient(create_app(settings(), store, retrain=lambda: calls.append(1) or {"x:y": "ets"}))
    client.post("/v1/retrain", headers=AUTH)
    deadline = time.monotonic() + 10
    while client.get("/v1/retrain").json()["state"] != "finished" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get("/v1/retrain").json()["result"] == {"x:y": "ets"}
    assert calls == [1]


def test_retrain_needs_an_operator_token(store):
    client = TestClient(create_app(settings(), store))
    assert client.post("/v1/retrain").status_code == 401
    assert store.retrain_status() is None
