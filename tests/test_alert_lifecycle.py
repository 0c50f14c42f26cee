"""The alert lifecycle (fire, re-send, resolve) and the tick's alert conditions, without I/O."""

from __future__ import annotations

import doctest
from typing import Any

import pandas as pd
import pytest

from actions import alert_lifecycle
from actions.alert_lifecycle import ActiveAlerts, LifecyclePolicy, SentAlert, due_notifications
from actions.alerts import dedup_key, saturation_alert, saturation_labels
from surgecast.alert_state import (
    ANOMALY_QUIET,
    AnomalyConditions,
    OutboxAlerts,
    lifecycle_policy,
    saturation_conditions,
)
from surgecast.config import ServiceSettings, Settings

T0 = pd.Timestamp("2026-11-28 19:00", tz="UTC")
POLICY = LifecyclePolicy(resend_interval=pd.Timedelta("1min"), hold=pd.Timedelta("4min"))


def minutes(n: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=n)


def alert(service: str = "bet-placement", summary: str = "x", **extra: Any) -> dict[str, Any]:
    return {"labels": {"alertname": "Test", "service": service},
            "annotations": {"summary": summary}, **extra}  # fmt: skip


def key(service: str = "bet-placement") -> str:
    return dedup_key(alert(service)["labels"])


def test_docstring_example_runs():
    assert doctest.testmod(alert_lifecycle).failed == 0


def test_a_new_condition_fires_with_ends_at_one_hold_ahead():
    [n] = due_notifications([alert()], {}, T0, POLICY)
    assert (n.state, n.key) == ("firing", key())
    assert n.alert["startsAt"] == "2026-11-28T19:00:00Z"
    assert n.alert["endsAt"] == "2026-11-28T19:04:00Z"
    assert n.alert["labels"] == alert()["labels"]


def test_a_given_starts_at_is_kept_and_never_in_the_future():
    [n] = due_notifications([alert(startsAt="2026-11-28T18:55:00Z")], {}, T0, POLICY)
    assert n.alert["startsAt"] == "2026-11-28T18:55:00Z"
    [n] = due_notifications([alert(startsAt="2026-11-28T19:30:00Z")], {}, T0, POLICY)
    assert n.alert["startsAt"] == "2026-11-28T19:00:00Z"


def test_an_active_condition_is_resent_each_interval_with_new_numbers_same_start():
    book = ActiveAlerts(POLICY)
    for n in book.due([alert(summary="in 12 min")], T0):
        book.accepted(n, T0)
    assert book.due([alert(summary="in 11 min")], minutes(0.5)) == []
    [n] = book.due([alert(summary="in 11 min")], minutes(1))
    assert n.state == "resend"
    assert n.alert["startsAt"] == "2026-11-28T19:00:00Z"  # first fired
    assert n.alert["endsAt"] == "2026-11-28T19:05:00Z"  # ahead of now, before it lapses
    assert n.alert["annotations"]["summary"] == "in 11 min"
    book.accepted(n, minutes(1))
    assert book.sent[key()].sent_at == minutes(1)


def test_a_cleared_condition_is_resolved_once_with_ends_at_now():
    book = ActiveAlerts(POLICY)
    for n in book.due([alert()], T0):
        book.accepted(n, T0)
    [n] = book.due([], minutes(0.5))  # resolutions do not wait for the re-send interval
    assert n.state == "resolved"
    assert n.alert["endsAt"] == "2026-11-28T19:00:30Z"
    assert n.alert["startsAt"] == "2026-11-28T19:00:00Z"
    book.accepted(n, minutes(0.5))
    assert book.due([], minutes(5)) == []


def test_a_refused_notification_is_proposed_again():
    book = ActiveAlerts(POLICY)
    [firing] = book.due([alert()], T0)
    # not accepted (the outbox still had an undelivered alert with these labels): fire again
    assert [n.state for n in book.due([alert()], minutes(0.1))] == ["firing"]
    book.accepted(firing, T0)
    [resolution] = book.due([], minutes(2))
    assert [n.state for n in book.due([], minutes(3))] == ["resolved"]
    assert resolution.alert["endsAt"] == "2026-11-28T19:02:00Z"


def test_held_conditions_are_kept_alive_never_resolved_on_missing_data():
    sent = {key(): SentAlert(due_notifications([alert()], {}, T0, POLICY)[0].alert, T0)}
    assert due_notifications([], sent, minutes(0.5), POLICY, held={key()}) == []
    [n] = due_notifications([], sent, minutes(1), POLICY, held={key()})
    assert (n.state, n.alert["endsAt"]) == ("resend", "2026-11-28T19:05:00Z")
    # a held key never sent before says nothing
    assert due_notifications([], {}, T0, POLICY, held={key("payments")}) == []


def test_labels_decide_identity_and_order_is_stable():
    notes = due_notifications([alert("b"), alert("a"), alert("a", summary="newer")], {}, T0, POLICY)
    assert [n.key for n in notes] == [key("a"), key("b")]
    assert notes[0].alert["annotations"]["summary"] == "newer"


def test_ends_at_is_never_before_starts_at():
    sent = {key(): SentAlert({**alert(), "startsAt": "2026-11-28T19:10:00Z"}, T0)}
    [n] = due_notifications([], sent, T0, POLICY)
    assert n.alert["endsAt"] == n.alert["startsAt"] == "2026-11-28T19:10:00Z"


def test_alerts_need_an_alertname():
    with pytest.raises(ValueError, match="alertname"):
        due_notifications([{"labels": {"service": "x"}}], {}, T0, POLICY)


def test_the_hold_must_outlast_the_resend_interval():
    with pytest.raises(ValueError, match="hold .* must be longer than resend_interval"):
        LifecyclePolicy(resend_interval=pd.Timedelta("1min"), hold=pd.Timedelta("1min"))
    with pytest.raises(ValueError, match="resend_interval must be positive"):
        LifecyclePolicy(resend_interval=pd.Timedelta(0), hold=pd.Timedelta("1min"))


def test_the_tick_policy_covers_three_resends_and_the_floor_lag():
    settings = Settings(
        **{"tick_interval_seconds": 60, "alerting": {"resend_interval_seconds": 30}}
    )
    policy = lifecycle_policy(settings, pd.Timedelta("1min"))
    assert policy.resend_interval == pd.Timedelta("30s")
    assert policy.hold == pd.Timedelta("4min")  # 3 x max(30 s, 60 s tick) + 1 min step


# -- the outbox feed -----------------------------------------------------------------------------
class Queue:
    """An outbox with the store's rule: one pending alert per key until it is delivered."""

    def __init__(self) -> None:
        self.pending: dict[str, dict[str, Any]] = {}
        self.delivered: list[dict[str, Any]] = []

    def enqueue_alert(self, dedup_key, payload, created_at):
        if dedup_key in self.pending:
            return None
        self.pending[dedup_key] = dict(payload)
        return len(self.pending) + len(self.delivered)

    def deliver(self) -> None:
        self.delivered.extend(self.pending.values())
        self.pending.clear()


def test_a_resolution_waits_for_its_firing_to_be_delivered():
    queue = Queue()
    alerts = OutboxAlerts(queue, POLICY)
    assert alerts.publish("saturation", [alert()], T0) == (1, [])
    # Alertmanager down: the firing stays pending; the resolution is refused, not lost
    assert alerts.publish("saturation", [], minutes(2)) == (0, [])
    assert alerts.publish("saturation", [], minutes(3)) == (0, [])
    queue.deliver()
    assert alerts.publish("saturation", [], minutes(4)) == (1, [])
    queue.deliver()
    assert [a["endsAt"] for a in queue.delivered] == ["2026-11-28T19:04:00Z"] * 2
    assert [a["startsAt"] for a in queue.delivered] == ["2026-11-28T19:00:00Z"] * 2


def test_families_do_not_resolve_each_other():
    queue = Queue()
    alerts = OutboxAlerts(queue, POLICY)
    alerts.publish("anomaly", [alert("a")], T0)
    queue.deliver()
    assert alerts.publish("saturation", [], minutes(1)) == (0, [])
    assert set(alerts.book("anomaly").sent) == {key("a")}


def test_an_enqueue_error_is_reported_and_the_rest_go_on():
    class Flaky(Queue):
        def enqueue_alert(self, dedup_key, payload, created_at):
            if "service=a" in dedup_key:
                raise RuntimeError("database is locked")
            return super().enqueue_alert(dedup_key, payload, created_at)

    alerts = OutboxAlerts(Flaky(), POLICY)
    enqueued, errors = alerts.publish("x", [alert("a"), alert("b")], T0)
    assert enqueued == 1 and [k for k, _ in errors] == [key("a")]
    assert [n.state for n in alerts.book("x").due([alert("a"), alert("b")], T0)] == ["firing"]


# -- anomaly conditions --------------------------------------------------------------------------
def alarms(*rows: tuple[str, str, pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"unique_id": u, "start": ds, "ds": ds, "kind": k, "score": 0.95, "detector": "novelty"}
         for u, k, ds in rows]
    )  # fmt: skip


def hits(*rows: tuple[str, str, pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"unique_id": u, "ds": ds, "y": 9.0, "expected": 1.0, "kind": k} for u, k, ds in rows]
    )


def test_an_anomaly_stays_open_while_hits_continue_and_closes_when_quiet():
    uid = "payments:deposit_failures_per_second"
    conditions = AnomalyConditions()
    [opened] = conditions.update(alarms((uid, "spike", T0)), hits((uid, "spike", T0)), T0)
    assert opened["labels"]["series"] == uid and opened["startsAt"] == "2026-11-28T19:00:00Z"
    # hits of the same series and kind keep it open beyond the quiet period from the alarm
    later = minutes(10)
    assert len(conditions.update(alarms(), hits((uid, "spike", later)), later)) == 1
    assert len(conditions.update(alarms(), pd.DataFrame(), later + ANOMALY_QUIET)) == 1
    assert (
        conditions.update(alarms(), pd.DataFrame(), later + ANOMALY_QUIET + pd.Timedelta("1s"))
        == []
    )


def test_hits_without_an_alarm_open_nothing():
    uid = "payments:deposit_failures_per_second"
    assert AnomalyConditions().update(alarms(), hits((uid, "spike", T0)), T0) == []


# -- saturation conditions -----------------------------------------------------------------------
_CAPACITY: dict[str, Any] = {"capacity_per_replica": 60, "max_replicas": 10}  # 420 req/s at 70 %
SVC = {"bet-placement": ServiceSettings(**_CAPACITY)}


def rec(clamped: str | None, peak: float | None = 500.0, current: float | None = 300.0):
    inputs: dict[str, Any] = {"current_load": current}
    if peak is not None:
        inputs.update(forecast_peak=peak, forecast_peak_at="2026-11-28T19:08:00Z", clamped=clamped)
    return {"service": "bet-placement", "inputs": inputs}


def forecast(values: list[float]) -> dict[str, pd.DataFrame]:
    ds = pd.date_range(T0, periods=len(values), freq="2min", tz="UTC")
    return {"bet-placement:requests_per_second": pd.DataFrame({"ds": ds, "yhat_upper": values})}


def test_saturation_fires_with_minutes_until_the_first_crossing():
    active, unknown = saturation_conditions([rec("max")], forecast([300, 400, 500, 450]), SVC, T0)
    [a] = active
    assert unknown == set()
    assert a["labels"] == saturation_labels("bet-placement")
    assert a["annotations"]["minutes_until"] == "4"
    assert a["annotations"]["max_load"] == "420"
    assert a["annotations"]["peak_at"] == "2026-11-28T19:08:00Z"


def test_saturation_now_when_the_current_load_is_already_over():
    [a], _ = saturation_conditions([rec("max", current=450.0)], forecast([300, 500]), SVC, T0)
    assert a["annotations"]["minutes_until"] == "0"
    assert a["annotations"]["summary"] == "bet-placement exceeds max capacity now"


def test_no_saturation_below_max_and_unknown_without_a_plan():
    assert saturation_conditions([rec(None, peak=300.0)], forecast([300]), SVC, T0) == ([], set())
    held = {dedup_key(saturation_labels("bet-placement"))}
    assert saturation_conditions([rec(None, peak=None)], {}, SVC, T0) == ([], held)
    assert saturation_conditions([], {}, SVC, T0) == ([], held)


def test_saturation_alert_labels_never_carry_numbers():
    a = saturation_alert(service="s", at=T0, forecast_peak=900.0, max_load=420.0, minutes_until=7)
    b = saturation_alert(service="s", at=minutes(1), forecast_peak=950.0, max_load=420.0,
                         minutes_until=6)  # fmt: skip
    assert a["labels"] == b["labels"]
    assert a["annotations"]["excess"] == "480" and b["annotations"]["minutes_until"] == "6"
