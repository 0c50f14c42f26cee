"""When to notify Alertmanager: fire, re-send while active, resolve when the condition clears.

Alertmanager keeps an alert active until its ``endsAt``; a client must re-send an active alert
before then and, when the condition clears, send it once more with ``endsAt`` = now
(CONVENTIONS.md §2). :func:`due_notifications` is that rule as a pure function of the currently
active alerts, what was last sent for each condition (:class:`SentAlert`) and ``now``;
:class:`ActiveAlerts` only remembers what the outbox accepted.

A condition is identified by its label set (:func:`actions.alerts.dedup_key`); labels stay the
same for the life of a condition, annotations (the numbers) may change on every re-send, and
``startsAt`` stays the time it first fired.

Example:
    >>> import pandas as pd
    >>> policy = LifecyclePolicy(resend_interval=pd.Timedelta("1min"), hold=pd.Timedelta("4min"))
    >>> book = ActiveAlerts(policy)
    >>> t0 = pd.Timestamp("2026-11-28 19:38", tz="UTC")
    >>> alert = {"labels": {"alertname": "X", "service": "bet-placement"}, "annotations": {}}
    >>> [(n.state, n.alert["endsAt"]) for n in book.due([alert], t0)]
    [('firing', '2026-11-28T19:42:00Z')]
    >>> for n in book.due([alert], t0):
    ...     book.accepted(n, t0)
    >>> book.due([alert], t0 + pd.Timedelta("30s"))  # sent 30 s ago: nothing due yet
    []
    >>> [(n.state, n.alert["endsAt"]) for n in book.due([], t0 + pd.Timedelta("2min"))]
    [('resolved', '2026-11-28T19:40:00Z')]
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from actions.alerts import as_utc, dedup_key, iso_utc

__all__ = ["ActiveAlerts", "LifecyclePolicy", "Notification", "SentAlert", "due_notifications"]

NotificationState = Literal["firing", "resend", "resolved"]


@dataclass(frozen=True)
class LifecyclePolicy:
    """How often active alerts are re-sent and how long each sending keeps them active.

    Args:
        resend_interval: re-send an active alert once this long has passed since the last
            accepted sending (Alertmanager's docs: every 30 s to 3 min).
        hold: ``endsAt`` = sending time + ``hold``. It must exceed ``resend_interval`` so an
            alert that is still active never lapses between re-sends; a few intervals is usual,
            so a missed re-send or two does not resolve it.

    Raises:
        ValueError: an interval is not positive, or ``hold`` is not longer than
            ``resend_interval``.
    """

    resend_interval: pd.Timedelta
    hold: pd.Timedelta

    def __post_init__(self) -> None:
        if self.resend_interval <= pd.Timedelta(0):
            raise ValueError(f"resend_interval must be positive, got {self.resend_interval}")
        if self.hold <= self.resend_interval:
            raise ValueError(
                f"hold ({self.hold}) must be longer than resend_interval "
                f"({self.resend_interval}), or active alerts lapse between re-sends"
            )


@dataclass(frozen=True)
class SentAlert:
    """The last sending of one condition the outbox accepted: the alert and when."""

    alert: Mapping[str, Any]
    sent_at: pd.Timestamp


@dataclass(frozen=True)
class Notification:
    """One alert to put in the outbox: ``key`` is its dedup key, ``alert`` the v2 payload."""

    key: str
    state: NotificationState
    alert: dict[str, Any]


def _with_times(
    alert: Mapping[str, Any], starts_at: pd.Timestamp, ends_at: pd.Timestamp
) -> dict[str, Any]:
    out = dict(alert)
    out["labels"] = dict(alert["labels"])
    out["annotations"] = dict(alert.get("annotations") or {})
    out["startsAt"] = iso_utc(starts_at)
    # Alertmanager refuses endsAt before startsAt (HTTP 400)
    out["endsAt"] = iso_utc(max(ends_at, starts_at))
    return out


def _by_key(active: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Active alerts by dedup key; a repeated label set keeps its last alert."""
    keyed: dict[str, Mapping[str, Any]] = {}
    for alert in active:
        labels = alert.get("labels")
        if not labels or "alertname" not in labels:
            raise ValueError(f"an alert needs labels with an 'alertname', got {alert!r}")
        keyed[dedup_key(dict(labels))] = alert
    return keyed


def due_notifications(
    active: Iterable[Mapping[str, Any]],
    sent: Mapping[str, SentAlert],
    now: pd.Timestamp,
    policy: LifecyclePolicy,
    held: Collection[str] = (),
) -> list[Notification]:
    """The notifications due at ``now`` (pure).

    Args:
        active: alerts whose condition holds now (v2 shape; ``startsAt`` optional, default now).
        sent: per dedup key, the last accepted sending of each condition not yet resolved.
        now: the current time (aware, or naive UTC).
        policy: re-send interval and hold.
        held: dedup keys whose state is unknown now (e.g. no fresh forecast): a condition sent
            before is kept alive with its last alert, never resolved on missing data.

    Returns:
        ``firing`` for a condition not sent before (``endsAt`` = now + hold); ``resend`` for one
        last sent ``resend_interval`` or more ago (first ``startsAt`` kept, newest annotations);
        ``resolved`` for a sent condition that is neither active nor held (``endsAt`` = now).
        Sorted by state, then key.
    """
    now = as_utc(now)
    current = _by_key(active)
    out: list[Notification] = []
    for key, alert in current.items():
        previous = sent.get(key)
        if previous is None:
            starts = min(as_utc(alert.get("startsAt") or now), now)
            out.append(Notification(key, "firing", _with_times(alert, starts, now + policy.hold)))
        elif now - previous.sent_at >= policy.resend_interval:
            starts = as_utc(previous.alert["startsAt"])
            out.append(Notification(key, "resend", _with_times(alert, starts, now + policy.hold)))
    for key, previous in sent.items():
        if key in current:
            continue
        starts = as_utc(previous.alert["startsAt"])
        if key in held:
            if now - previous.sent_at >= policy.resend_interval:
                alert = _with_times(previous.alert, starts, now + policy.hold)
                out.append(Notification(key, "resend", alert))
        else:
            out.append(Notification(key, "resolved", _with_times(previous.alert, starts, now)))
    order = {"firing": 0, "resend": 1, "resolved": 2}
    return sorted(out, key=lambda n: (order[n.state], n.key))


class ActiveAlerts:
    """Remembers, per condition, the last sending the outbox accepted.

    Call :meth:`due` each evaluation and :meth:`accepted` for every notification the outbox
    took. A refused one (the outbox still holds an undelivered alert with the same labels) is
    simply proposed again next time, so sendings of one condition reach Alertmanager in order:
    a resolution never overtakes the firing it ends.
    """

    def __init__(self, policy: LifecyclePolicy) -> None:
        self.policy = policy
        self._sent: dict[str, SentAlert] = {}

    @property
    def sent(self) -> Mapping[str, SentAlert]:
        """Conditions sent and not yet resolved, by dedup key."""
        return dict(self._sent)

    def due(
        self,
        active: Iterable[Mapping[str, Any]],
        now: pd.Timestamp,
        held: Collection[str] = (),
    ) -> list[Notification]:
        """The notifications due at ``now``; see :func:`due_notifications`."""
        return due_notifications(active, self._sent, now, self.policy, held)

    def accepted(self, notification: Notification, now: pd.Timestamp) -> None:
        """Record that the outbox took ``notification`` at ``now``."""
        if notification.state == "resolved":
            self._sent.pop(notification.key, None)
        else:
            self._sent[notification.key] = SentAlert(notification.alert, as_utc(now))
