"""The store methods behind the API (``surgecast.store_operator``) on SQLite and PostgreSQL."""

from __future__ import annotations

import pandas as pd
import pytest

from surgecast.errors import DataError, NotFound
from surgecast.store_operator import silenced

T0 = pd.Timestamp("2026-11-28 17:00", tz="UTC")
H = pd.Timedelta(hours=1)


def anomalies(uid: str, times: list[pd.Timestamp], kind: str, score: float) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame({
        "unique_id": [uid] * n, "ds": times, "y": [1.0] * n, "expected": [0.5] * n,
        "lower": [0.0] * n, "upper": [1.0] * n, "score": [score] * n, "is_anomaly": [True] * n,
        "kind": [kind] * n, "detector": ["novelty"] * n,
    })  # fmt: skip


def test_overrides_round_trip_activity_and_cancel(store):
    hold = store.save_override("payments", "hold", 40, T0, T0 + 3 * H, "final", "ops", T0)
    store.save_override("payments", "pause", None, T0 + 5 * H, T0 + 6 * H, "freeze", "ops", T0)
    assert hold["replicas"] == 40 and hold["starts_at"] == T0 and hold["cancelled_at"] is None
    assert [o["id"] for o in store.overrides(active_at=T0 + H)] == [hold["id"]]
    assert store.overrides(active_at=T0 + 3 * H) == []  # ends_at is exclusive
    assert len(store.overrides(service="payments")) == 2
    cancelled = store.cancel_override(hold["id"], T0 + H)
    again = store.cancel_override(hold["id"], T0 + 2 * H)  # idempotent: the first time stays
    assert cancelled["cancelled_at"] == again["cancelled_at"] == T0 + H
    assert store.overrides(active_at=T0 + 2 * H) == []
    with pytest.raises(NotFound):
        store.override(10_000)
    with pytest.raises(DataError, match="needs replicas"):
        store.save_override("payments", "hold", None, T0, T0 + H, "x", "ops", T0)
    with pytest.raises(DataError, match="after start"):
        store.save_override("payments", "floor", 3, T0, T0, "x", "ops", T0)


def test_acks_silences_and_what_they_cover(store):
    uid = "payments:deposit_failures_per_second"
    ack = store.save_ack("ack", uid, None, T0, None, "seen", "ops", T0 + H)
    silence = store.save_ack("silence", uid, "spike", None, T0 + 4 * H, "maint", "ops", T0 + 2 * H)
    rows = store.acks([uid])
    assert [r["id"] for r in rows] == [silence["id"], ack["id"]]  # newest first
    assert silenced(rows, uid, "spike", T0)["action"] == "ack"
    assert silenced(rows, uid, "spike", T0 + 3 * H)["action"] == "silence"
    assert silenced(rows, uid, "drop", T0 + 3 * H) is None  # the silence is for spikes
    assert silenced(rows, uid, "spike", T0 + 5 * H) is None  # after until
    with pytest.raises(DataError, match="until"):
        store.save_ack("silence", uid, None, None, None, "x", "ops", T0)


def test_acks_covering_a_time_answer_as_the_whole_history_does(store):
    uid = "payments:deposit_failures_per_second"
    old_ack = store.save_ack("ack", uid, None, None, None, "old", "ops", T0)  # covers <= T0
    store.save_ack("ack", uid, "spike", T0 + H, None, "one point", "ops", T0 + H)
    long_silence = store.save_ack("silence", uid, None, None, T0 + 48 * H, "week", "ops", T0)
    store.save_ack("silence", uid, "drop", None, T0 + 2 * H, "short", "ops", T0 + H)
    store.save_ack("ack", uid, None, None, None, "recent", "ops", T0 + 6 * H)
    since = T0 + 3 * H
    whole, covering = store.acks([uid]), store.acks([uid], covering=since)
    assert old_ack["id"] not in [r["id"] for r in covering]  # cannot cover anything since
    assert long_silence["id"] in [r["id"] for r in covering]  # made before, still running
    assert len(covering) == 2 < len(whole)
    for minutes in range(0, 8 * 60, 20):
        for kind in ("spike", "drop"):
            at = since + pd.Timedelta(minutes=minutes)
            assert silenced(covering, uid, kind, at) == silenced(whole, uid, kind, at)


def test_registered_events_are_an_events_frame(store):
    event = {"event_id": "promo-1", "name": "Boost", "start": T0, "end": T0 + 2 * H,
             "sport": "promotion", "competition": "operator", "importance": 2.0}  # fmt: skip
    store.save_event(event, "ops", T0)
    frame = store.registered_events(T0 + H, T0 + 3 * H)
    assert list(frame.columns) == ["event_id", "name", "start", "end", "sport", "competition",
                                   "importance"]  # fmt: skip
    assert frame.iloc[0]["start"] == T0 and frame.iloc[0]["importance"] == 2.0
    assert store.registered_events(T0 + 2 * H, T0 + 3 * H).empty  # no overlap


def test_filtered_anomalies_scores_alerts_forecasts_and_points(store):
    times = [T0 + pd.Timedelta(minutes=m) for m in (0, 5, 10)]
    store.save_anomalies(anomalies("a_b:x", times, "spike", 0.7))
    store.save_anomalies(anomalies("axb:x", times[:1], "drop", 0.9))  # '_' is no wildcard
    found = store.find_anomalies(service="a_b", start=T0, end=T0 + H, limit=2)
    assert list(found["unique_id"]) == ["a_b:x", "a_b:x"] and found["ds"].iloc[-1] == times[-1]
    assert list(store.find_anomalies(kind="drop")["unique_id"]) == ["axb:x"]
    assert store.latest_scores(T0 + pd.Timedelta(minutes=1)) == {"a_b:x": 0.7}

    store.enqueue_alert("k1", {"labels": {"alertname": "A"}}, T0)
    store.enqueue_alert("k2", {"labels": {"alertname": "B"}}, T0 + H)
    assert [a["dedup_key"] for a in store.list_alerts(limit=1)] == ["k2"]
    assert [a["dedup_key"] for a in store.list_alerts(status="pending", end=T0 + H)] == ["k1"]
    with pytest.raises(DataError):
        store.list_alerts(status="lost")

    fc = pd.DataFrame({
        "unique_id": ["s:rps"] * 3, "ds": times, "yhat": [1.0, 2.0, 3.0],
        "yhat_lower": [0.5, 1.5, 2.5], "yhat_upper": [1.5, 2.5, 3.5], "model": ["m"] * 3,
    })  # fmt: skip
    store.save_forecast(fc, created_at=T0)
    ahead = store.forecasts_between(times[1], T0 + H)
    assert list(ahead["yhat_upper"]) == [2.5, 3.5]
    store.upsert_points(pd.DataFrame({"unique_id": ["s:rps"] * 3, "ds": times, "y": [1.0, 9.0, 2.0]}))
    recent = store.newest_points(["s:rps", "other:x"], since=times[1])
    assert list(recent["y"]) == [9.0, 2.0]
