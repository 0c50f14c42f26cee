"""Store: recommendations, alert outbox, model registry and tick runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest

from surgecast.errors import DataError, NotFound, StoreError
from surgecast.store import Store

T0 = pd.Timestamp("2026-11-28T17:00:00Z")


def minutes(n: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=n)


# -- recommendations -----------------------------------------------------------------------------
def rec(service: str, at: pd.Timestamp, replicas: int, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "service": service, "at": at, "valid_until": at + pd.Timedelta(minutes=5),
        "current_replicas": 4, "recommended_replicas": replicas, "throttle_rps": None,
        "reason": f"forecast peak needs {replicas}", "stale": False, "model": "ets",
        "inputs": {"peak": np.float64(812.5), "interval": [700.0, 900.0], "lead_time_s": 120},
    }
    out.update(extra)
    return out


def test_recommendations_latest_per_service_and_round_trip(store: Store) -> None:
    assert store.latest_recommendations() == []
    store.save_recommendation(rec("payments", minutes(0), 3))
    store.save_recommendation(rec("bet-placement", minutes(0), 5))
    store.save_recommendation(rec("bet-placement", minutes(1), 8, throttle_rps=1500.0,
                                  stale=True, current_replicas=None))
    latest = store.latest_recommendations()
    assert [(r["service"], r["recommended_replicas"]) for r in latest] == [
        ("bet-placement", 8), ("payments", 3)]
    newest = latest[0]
    assert newest["at"] == minutes(1) and newest["at"].tzinfo is not None
    assert newest["valid_until"] == minutes(6)
    assert newest["throttle_rps"] == 1500.0
    assert newest["stale"] is True
    assert newest["current_replicas"] is None
    assert newest["inputs"] == {"peak": 812.5, "interval": [700.0, 900.0], "lead_time_s": 120}
    assert newest["model"] == "ets"
    assert newest["reason"] == "forecast peak needs 8"


def test_recommendation_same_service_and_time_is_replaced(store: Store) -> None:
    store.save_recommendation(rec("payments", minutes(0), 3))
    store.save_recommendation(rec("payments", minutes(0).tz_convert("Europe/London"), 6))
    history = store.recommendation_history("payments")
    assert [r["recommended_replicas"] for r in history] == [6]


def test_recommendation_history_range_and_limit(store: Store) -> None:
    for i in range(6):
        store.save_recommendation(rec("payments", minutes(i), i + 1))
    store.save_recommendation(rec("other", minutes(2), 9))
    history = store.recommendation_history("payments", start=minutes(1), end=minutes(4))
    assert [r["at"] for r in history] == [minutes(1), minutes(2), minutes(3)]
    newest_two = store.recommendation_history("payments", limit=2)
    assert [r["recommended_replicas"] for r in newest_two] == [5, 6]  # newest two, oldest first
    assert store.recommendation_history("unknown") == []


def test_recommendation_validation(store: Store) -> None:
    with pytest.raises(DataError, match="typo_field"):
        store.save_recommendation(rec("a", T0, 1, typo_field=1))
    incomplete = rec("a", T0, 1)
    del incomplete["reason"]
    with pytest.raises(DataError, match="reason"):
        store.save_recommendation(incomplete)
    with pytest.raises(DataError, match="recommended_replicas"):
        store.save_recommendation(rec("a", T0, 2.5))  # type: ignore[arg-type]
    with pytest.raises(DataError, match="inputs"):
        store.save_recommendation(rec("a", T0, 1, inputs={"x": object()}))
    store.save_recommendation(rec("a", T0, np.int64(2), inputs={"nan": float("nan")}))  # type: ignore[arg-type]
    saved = store.latest_recommendations()[0]
    assert saved["recommended_replicas"] == 2
    assert saved["inputs"] == {"nan": None}  # strict JSON: NaN becomes null


# -- alert outbox --------------------------------------------------------------------------------
def test_outbox_dedup_pending_failed_delivered(store: Store) -> None:
    first = store.enqueue_alert("overload:bets", {"summary": "overload in 12 min"}, T0)
    assert isinstance(first, int)
    assert store.enqueue_alert("overload:bets", {"summary": "again"}, minutes(1)) is None
    other = store.enqueue_alert("anomaly:payments", {"score": 0.99}, minutes(2))
    assert other is not None and other != first

    assert store.pending_alerts(now=minutes(-1)) == []  # nothing due before creation
    due = store.pending_alerts(now=minutes(5))
    assert [a["id"] for a in due] == [first, other]
    assert due[0]["payload"] == {"summary": "overload in 12 min"}
    assert due[0]["attempts"] == 0 and due[0]["status"] == "pending"
    assert due[0]["created_at"] == T0 and due[0]["next_attempt_at"] == T0

    # failed attempt: retry later, still pending (and still deduplicating)
    store.mark_alert_failed(first, "alertmanager: connection refused", next_attempt_at=minutes(10))
    assert [a["id"] for a in store.pending_alerts(now=minutes(5))] == [other]
    assert store.enqueue_alert("overload:bets", {}, minutes(6)) is None
    retry = store.pending_alerts(now=minutes(10))
    assert [a["id"] for a in retry] == [other, first]  # ordered by when they are due
    assert retry[1]["attempts"] == 1
    assert retry[1]["last_error"] == "alertmanager: connection refused"
    assert retry[1]["next_attempt_at"] == minutes(10)

    store.mark_alert_failed(first, "timeout", next_attempt_at=minutes(11))
    store.mark_alert_delivered(first, at=minutes(11))
    assert [a["id"] for a in store.pending_alerts(now=minutes(60))] == [other]
    # delivered frees the key: the condition may fire again later
    again = store.enqueue_alert("overload:bets", {}, minutes(30))
    assert again is not None and again not in (first, other)

    assert store.pending_alerts(now=minutes(60), limit=1)[0]["id"] == other


def test_outbox_give_up_and_unknown_ids(store: Store) -> None:
    alert = store.enqueue_alert("k", {}, T0)
    assert alert is not None
    store.mark_alert_failed(alert, "permanent: 400 bad request", next_attempt_at=None)
    assert store.pending_alerts(now=minutes(100)) == []
    assert store.enqueue_alert("k", {}, minutes(1)) is not None  # no longer pending: not a dup
    with pytest.raises(NotFound):
        store.mark_alert_delivered(987654, at=T0)
    with pytest.raises(NotFound):
        store.mark_alert_failed(987654, "x", next_attempt_at=T0)


def test_outbox_dedup_holds_under_racing_threads(store: Store) -> None:
    results: list[int | None] = []
    barrier = threading.Barrier(4)

    def enqueue() -> None:
        barrier.wait()
        results.append(store.enqueue_alert("race", {"n": 1}, T0))

    threads = [threading.Thread(target=enqueue) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 4
    assert sum(r is not None for r in results) == 1
    assert len(store.pending_alerts(now=T0)) == 1


# -- model registry ------------------------------------------------------------------------------
def test_registry_latest_and_duplicates(store: Store) -> None:
    assert store.latest_model("api:rps") is None
    meta = {"window": ["2026-11-01T00:00:00+00:00", "2026-11-28T00:00:00+00:00"],
            "mase": 0.82}
    first = store.register_model("api:rps", "ets", "1", "/models/a.pkl", "sha256:aa", meta, T0)
    second = store.register_model("api:rps", "prophet", "7", "/models/b.json", "sha256:bb", {},
                                  minutes(60))
    store.register_model("bets:rate", "ets", "1", "/models/c.pkl", "sha256:cc", {}, minutes(90))
    assert first != second
    latest = store.latest_model("api:rps")
    assert latest is not None
    assert (latest["id"], latest["model"], latest["version"]) == (second, "prophet", "7")
    assert latest["created_at"] == minutes(60)
    assert latest["path"] == "/models/b.json" and latest["checksum"] == "sha256:bb"

    store.register_model("api:rps", "ets", "2", "/models/d.pkl", "sha256:dd", meta, minutes(120))
    newest = store.latest_model("api:rps")
    assert newest is not None and newest["version"] == "2" and newest["metadata"] == meta

    with pytest.raises(StoreError, match="already|conflict"):
        store.register_model("api:rps", "ets", "1", "/elsewhere", "sha256:ee", {}, minutes(200))


# -- tick runs -----------------------------------------------------------------------------------
def test_tick_runs(store: Store) -> None:
    assert store.last_tick() is None
    store.record_tick(T0, minutes(0.5), True, {"points": 1200, "anomalies": 0})
    store.record_tick(minutes(1), minutes(1.25), False, {"error": "prometheus down"})
    last = store.last_tick()
    assert last is not None
    assert last["started_at"] == minutes(1)
    assert last["finished_at"] == minutes(1.25)
    assert last["ok"] is False
    assert last["summary"] == {"error": "prometheus down"}


def test_latest_models_gives_the_newest_entry_of_every_series(store):
    t0 = pd.Timestamp("2026-11-01", tz="UTC")
    store.register_model("a", "m1", "v1", "/x/a1", "c1", {}, created_at=t0)
    store.register_model("a", "m2", "v2", "/x/a2", "c2", {}, created_at=t0 + pd.Timedelta("1h"))
    store.register_model("b", "m1", "v1", "/x/b1", "c3", {"k": 1}, created_at=t0)
    latest = store.latest_models()
    assert set(latest) == {"a", "b"}
    assert latest["a"]["version"] == "v2" and latest["b"]["metadata"] == {"k": 1}
