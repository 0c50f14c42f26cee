"""The tick's actions: guardrails across ticks (stabilisation, step limits, restart), throttling
advice when max_replicas is not enough, and the audit trail of every recommendation."""

from __future__ import annotations

import pandas as pd
import pytest

from surgecast.config import Settings
from surgecast.store import Store
from surgecast.wiring import build_pipeline

NOW = pd.Timestamp("2026-11-20 18:00", tz="UTC")
UID = "bet-placement:requests_per_second"


def settings_for(tmp_path, **service) -> Settings:
    classes = [
        {"name": "place-bet", "priority": "critical", "share": 0.7},
        {"name": "cash-out", "priority": "high", "share": 0.15},
        {"name": "bet-history", "priority": "low", "share": 0.15},
    ]
    bet = {
        "capacity_per_replica": 60,
        "min_replicas": 2,
        "max_replicas": 60,
        "traffic_classes": classes,
        **service,
    }
    return Settings(
        backfill_days=2,
        stale_after_seconds=900,
        sources={"simulator": {"type": "simulator", "seed": 11, "step": "5min"}},
        store={"url": f"sqlite:///{tmp_path / 's.db'}"},
        models_dir=str(tmp_path / "models"),
        forecast={"history_days": 2, "event_model": "none"},
        detect={"history_days": 1},
        services={"bet-placement": bet},
    )


def flat_forecast(now: pd.Timestamp, upper: float) -> pd.DataFrame:
    ds = pd.date_range(now, periods=12, freq="1min")
    return pd.DataFrame({"ds": ds, "yhat": upper * 0.8, "yhat_upper": upper, "model": "test"})


@pytest.fixture
def ticked(tmp_path):
    settings = settings_for(tmp_path)
    store = Store(settings.store.url)
    pipeline = build_pipeline(settings, store)
    pipeline.tick(NOW)
    yield settings, store, pipeline
    store.close()


def recommend(pipeline, settings, at, upper, previous=None):
    pipeline._forecasts[UID] = flat_forecast(at, upper)
    return pipeline.recommend("bet-placement", settings.services["bet-placement"], at, previous)


def test_scale_down_waits_for_the_stabilisation_window(ticked):
    settings, _, pipeline = ticked
    high = recommend(pipeline, settings, NOW + pd.Timedelta("1min"), 2400.0)
    assert high["recommended_replicas"] == 58  # 2400 / (60 × 0.7) → 58
    dip = recommend(pipeline, settings, NOW + pd.Timedelta("3min"), 600.0)
    assert dip["recommended_replicas"] == 58
    assert dip["inputs"]["guardrail"] == "stabilization"
    assert "stabilisation" in dip["reason"]
    later = recommend(pipeline, settings, NOW + pd.Timedelta("7min"), 600.0)
    assert later["recommended_replicas"] < 58
    assert later["inputs"]["candidate_replicas"] == later["recommended_replicas"]


def test_step_limits_apply_between_ticks(tmp_path):
    settings = settings_for(
        tmp_path, max_step_up=5, max_step_down=3, scale_down_stabilization_seconds=0
    )
    store = Store(settings.store.url)
    try:
        pipeline = build_pipeline(settings, store)
        pipeline.tick(NOW)
        first = recommend(pipeline, settings, NOW + pd.Timedelta("1min"), 420.0)[
            "recommended_replicas"
        ]
        up = recommend(pipeline, settings, NOW + pd.Timedelta("2min"), 2400.0)
        assert up["recommended_replicas"] == first + 5
        assert up["inputs"]["guardrail"] == "max_step_up"
        down = recommend(pipeline, settings, NOW + pd.Timedelta("3min"), 100.0)
        assert down["recommended_replicas"] == first + 5 - 3
    finally:
        store.close()


def test_a_restarted_process_keeps_the_stabilisation_window(ticked, tmp_path):
    settings, store, pipeline = ticked
    high = recommend(pipeline, settings, NOW + pd.Timedelta("1min"), 2400.0)
    store.save_recommendation(high)
    fresh = build_pipeline(settings, store)  # a new process: no guard state in memory
    fresh.tick(NOW)
    previous = store.latest_recommendations()[0]
    dip = recommend(fresh, settings, NOW + pd.Timedelta("2min"), 600.0, previous=previous)
    assert dip["recommended_replicas"] == high["recommended_replicas"]


def test_demand_beyond_max_replicas_gets_throttling_advice_by_priority(ticked):
    settings, _, pipeline = ticked
    # max 60 replicas × 60 req/s × 0.7 = 2,520 req/s; the forecast asks for 4,000
    rec = recommend(pipeline, settings, NOW + pd.Timedelta("1min"), 4000.0)
    assert rec["recommended_replicas"] == 60
    assert rec["throttle_rps"] == pytest.approx(2520.0)
    advice = rec["inputs"]["throttle"]
    assert advice["excess_rps"] == pytest.approx(1480.0)
    assert advice["overload_minutes"] == pytest.approx(12.0)
    by_name = {c["name"]: c for c in advice["classes"]}
    # place-bet (critical, 70 % = 2,800 req/s) gets all 2,520 and queues the rest: never shed
    assert by_name["place-bet"]["action"] == "queue"
    assert by_name["place-bet"]["limit_rps"] == pytest.approx(2520.0)
    assert by_name["bet-history"]["action"] == "shed"
    assert by_name["bet-history"]["limit_rps"] == 0.0
    assert "throttle" in rec["reason"] and "place-bet" in rec["reason"]


def test_no_throttling_when_max_replicas_suffice(ticked):
    settings, _, pipeline = ticked
    rec = recommend(pipeline, settings, NOW + pd.Timedelta("1min"), 1000.0)
    assert rec["throttle_rps"] is None and rec["inputs"]["throttle"] is None


def test_traffic_classes_must_add_up(tmp_path):
    with pytest.raises(ValueError, match="add up to 1"):
        settings_for(
            tmp_path, traffic_classes=[{"name": "a", "priority": "critical", "share": 0.5}]
        )
    with pytest.raises(ValueError, match="unique"):
        settings_for(
            tmp_path, traffic_classes=[{"name": "a", "share": 0.5}, {"name": "a", "share": 0.5}]
        )


def test_every_decision_is_in_the_audit_log_with_its_reason(ticked):
    settings, store, pipeline = ticked
    pipeline.tick(NOW + pd.Timedelta("5min"))
    entries = store.audit(service="bet-placement", kind="recommendation")
    assert len(entries) == 2  # one per tick
    last = entries[-1]
    assert last["at"] == NOW + pd.Timedelta("5min")
    assert last["decision"].endswith("replicas")
    assert "bet-placement" in last["reason"]
    assert last["inputs"]["capacity_per_replica"] == 60
    assert store.audit(service="bet-placement", start=NOW + pd.Timedelta("1min")) == entries[-1:]
    assert store.audit(service="nobody") == []


def test_throttling_advice_is_audited(ticked):
    settings, store, pipeline = ticked
    rec = recommend(pipeline, settings, NOW + pd.Timedelta("1min"), 4000.0)
    from surgecast.pipeline import _audit_entries

    store.record_decisions(_audit_entries(rec))
    throttles = store.audit(service="bet-placement", kind="throttle")
    assert len(throttles) == 1
    assert "place-bet queue" in throttles[0]["decision"]
    assert "bet-history shed" in throttles[0]["decision"]


def test_audit_log_refuses_unknown_kinds_and_missing_fields(ticked):
    _, store, _ = ticked
    from surgecast.errors import DataError

    with pytest.raises(DataError, match="kind"):
        store.record_decisions(
            [{"at": NOW, "service": "x", "kind": "whim", "decision": "d", "reason": "r"}]
        )
    with pytest.raises(DataError, match="lacks"):
        store.record_decisions([{"at": NOW, "service": "x", "kind": "alert"}])


def test_alert_notifications_are_audited(ticked):
    from actions.alert_lifecycle import LifecyclePolicy
    from actions.alerts import saturation_alert
    from surgecast.alert_state import OutboxAlerts

    _, store, _ = ticked
    outbox = OutboxAlerts(store, LifecyclePolicy(pd.Timedelta("1min"), pd.Timedelta("5min")))
    alert = saturation_alert(
        service="bet-placement", at=NOW, forecast_peak=4000.0, max_load=2520.0, minutes_until=12.0
    )
    enqueued, errors = outbox.publish("saturation", [alert], NOW)
    assert (enqueued, errors) == (1, [])
    entries = store.audit(service="bet-placement", kind="alert")
    assert len(entries) == 1
    assert entries[0]["decision"].startswith("SurgecastPredictedSaturation")
    assert entries[0]["inputs"]["labels"]["service"] == "bet-placement"


def test_scale_down_cooldown_spaces_out_scale_downs_but_never_delays_a_scale_up(tmp_path):
    settings = settings_for(tmp_path, scale_down_stabilization_seconds=0,
                            scale_down_cooldown_seconds=300)
    store = Store(settings.store.url)
    try:
        pipeline = build_pipeline(settings, store)
        pipeline.tick(NOW)
        at = NOW + pd.Timedelta("1min")
        high = recommend(pipeline, settings, at, 2400.0)["recommended_replicas"]
        first_down = recommend(pipeline, settings, at + pd.Timedelta("1min"), 1200.0)
        assert first_down["recommended_replicas"] < high  # the first scale-down is free
        again = recommend(pipeline, settings, at + pd.Timedelta("3min"), 600.0)
        assert again["recommended_replicas"] == first_down["recommended_replicas"]
        assert again["inputs"]["guardrail"] == "cooldown" and "cooldown" in again["reason"]
        up = recommend(pipeline, settings, at + pd.Timedelta("4min"), 2400.0)
        assert up["recommended_replicas"] == high  # scale-ups never wait
        later = recommend(pipeline, settings, at + pd.Timedelta("8min"), 600.0)
        assert later["recommended_replicas"] < high
    finally:
        store.close()


def test_a_failing_forecaster_raises_a_model_failure_alert_that_resolves(ticked, monkeypatch):
    settings, store, pipeline = ticked

    def boom(self, frame, events=None):
        raise RuntimeError("SVD did not converge")

    with monkeypatch.context() as m:
        m.setattr("models.SeasonalNaive.fit", boom)
        pipeline.tick(NOW + pd.Timedelta("5min"))
    def model_alerts():
        return [
            a for a in store.audit(kind="alert", limit=1000)
            if "SurgecastModelFailure" in a["decision"] and a["inputs"]["labels"]["series"] == UID
        ]  # fmt: skip

    fired = model_alerts()
    assert len(fired) == 1 and fired[0]["decision"].endswith("firing")
    assert "SVD did not converge" in fired[0]["reason"]
    # the firing notification is delivered (a resolution never overtakes a pending firing)
    for alert in store.pending_alerts(NOW + pd.Timedelta("6min"), limit=1000):
        store.mark_alert_delivered(alert["id"], NOW + pd.Timedelta("6min"))
    pipeline.tick(NOW + pd.Timedelta("10min"))
    assert model_alerts()[-1]["decision"].endswith("resolved")


def test_a_recommendation_stays_valid_until_the_next_data_step_has_been_planned(ticked):
    settings, store, pipeline = ticked
    rec = store.latest_recommendations()[0]
    # 5-minute data: the next recommendation is one step on, so 5 min + two missed 1-min ticks
    assert rec["valid_until"] - rec["at"] == pd.Timedelta(minutes=7)
    # a tick between two data steps plans the same step again and keeps it valid
    pipeline.tick(NOW + pd.Timedelta(minutes=4))
    again = store.latest_recommendations()[0]
    assert again["at"] == NOW and again["valid_until"] == NOW + pd.Timedelta(minutes=7)
    service = settings.services[rec["service"]]
    assert rec["inputs"]["startup_delay_s"] == service.startup_delay_seconds
    assert rec["inputs"]["margin_s"] == service.margin_seconds


def test_with_one_minute_data_a_recommendation_is_valid_for_three_ticks(tmp_path):
    settings = settings_for(tmp_path).model_copy(update={"sources": Settings(
        sources={"simulator": {"type": "simulator", "seed": 11, "step": "1min"}}).sources})
    store = Store(settings.store.url)
    try:
        build_pipeline(settings, store).tick(NOW)
        rec = store.latest_recommendations()[0]
        assert rec["valid_until"] - rec["at"] == pd.Timedelta(minutes=3)
    finally:
        store.close()


def anomaly_frames(uid: str, kind: str, at: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    alarms = pd.DataFrame([{"unique_id": uid, "start": at, "ds": at, "kind": kind, "score": 0.95,
                            "detector": "novelty"}])  # fmt: skip
    hits = pd.DataFrame([{"unique_id": uid, "ds": at, "y": 9.0, "expected": 1.0, "kind": kind}])
    return alarms, hits


def anomaly_notifications(store, uid: str) -> list[dict]:
    """The alerts sent for ``uid``, oldest first; each is marked delivered (Alertmanager took
    it), as a resolution waits for its firing to be delivered."""
    rows = [r for r in store.list_alerts(limit=100) if r["payload"]["labels"].get("series") == uid]
    rows.sort(key=lambda r: r["id"])
    for r in rows:
        if r["status"] == "pending":
            store.mark_alert_delivered(r["id"], r["created_at"])
    return [r["payload"] for r in rows]


@pytest.mark.parametrize("action", ["ack", "silence"])
def test_an_acknowledged_or_silenced_anomaly_alert_resolves_and_a_new_hit_reopens_it(ticked, action):
    from surgecast.pipeline import TickReport

    _, store, pipeline = ticked
    uid, at = "payments:deposit_failures_per_second", NOW + pd.Timedelta("10min")
    empty = pd.DataFrame()
    pipeline._enqueue_alerts(*anomaly_frames(uid, "spike", at), at, TickReport(now=at, started_at=at))
    [fired] = anomaly_notifications(store, uid)
    assert pd.Timestamp(fired["endsAt"]) > at  # firing
    until = at + pd.Timedelta("1h") if action == "silence" else None
    store.save_ack(action, uid, "spike", at, until, "provider incident, handled", "ops",
                   at + pd.Timedelta("1min"))  # fmt: skip
    later = at + pd.Timedelta("2min")
    pipeline._enqueue_alerts(empty, empty, later, TickReport(now=later, started_at=later))
    resolved = anomaly_notifications(store, uid)[-1]
    assert pd.Timestamp(resolved["endsAt"]) == later  # resolved in Alertmanager
    # a hit after the acknowledgement (or past the silence) is news: it fires again
    again = until + pd.Timedelta("5min") if until is not None else at + pd.Timedelta("5min")
    pipeline._enqueue_alerts(*anomaly_frames(uid, "spike", again), again,
                             TickReport(now=again, started_at=again))  # fmt: skip
    assert pd.Timestamp(anomaly_notifications(store, uid)[-1]["endsAt"]) > again


def test_an_acknowledgement_of_another_kind_does_not_mute_the_alert(ticked):
    from surgecast.pipeline import TickReport

    _, store, pipeline = ticked
    uid, at = "payments:deposit_failures_per_second", NOW + pd.Timedelta("10min")
    pipeline._enqueue_alerts(*anomaly_frames(uid, "spike", at), at, TickReport(now=at, started_at=at))
    store.save_ack("ack", uid, "drop", None, None, "not this one", "ops", at + pd.Timedelta("1min"))
    later = at + pd.Timedelta("2min")
    report = TickReport(now=later, started_at=later)
    assert pipeline.anomaly_conditions.last_hit(uid, "spike") == at  # open: the acks are read
    assert pipeline._not_acknowledged(
        [{"labels": {"series": uid, "kind": "spike"}}], report) != []  # fmt: skip
    assert report.errors == []  # kept because the ack is for drops, not because reading failed
