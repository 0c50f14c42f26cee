"""The tick's alert conditions, through the lifecycle, into the store's outbox.

Two families of conditions, each with its own :class:`actions.alert_lifecycle.ActiveAlerts`:

- **anomaly**: a detector alarm opens a condition per series and kind; further hits of the same
  series and kind keep it open; :data:`ANOMALY_QUIET` without a hit closes it (resolved). An
  absent series is hit on every tick until its data is back.
- **saturation**: a service whose plan needs more than ``max_replicas`` (``clamped == "max"``)
  fires ``SurgecastPredictedSaturation``; it resolves when the forecast drops back. A service
  with no fresh plan (no forecast, or the plan failed) keeps its last state: an alert is never
  resolved on missing data.

State lives in this process only. After a restart, a condition still active fires again (same
labels: Alertmanager merges it into the alert it has) and one that cleared meanwhile is not
resolved explicitly but expires at the ``endsAt`` it was last sent with (at most ``hold`` later).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from actions.alert_lifecycle import ActiveAlerts, LifecyclePolicy
from actions.alerts import anomaly_alert, dedup_key, iso_utc, saturation_alert, saturation_labels
from surgecast.config import ServiceSettings, Settings

__all__ = [
    "ANOMALY_QUIET",
    "AnomalyConditions",
    "OutboxAlerts",
    "lifecycle_policy",
    "saturation_conditions",
    "source_unavailable_alert",
    "source_unavailable_key",
]

SOURCE_UNAVAILABLE_ALERTNAME = "SurgecastSourceUnavailable"

# the alarm debouncer re-arms after this many quiet minutes (surgecast.detection._REARM): an
# episode that is over for the debouncer is over for Alertmanager too
ANOMALY_QUIET = pd.Timedelta(minutes=15)


def lifecycle_policy(settings: Settings, base_step: pd.Timedelta) -> LifecyclePolicy:
    """Re-send every ``alerting.resend_interval_seconds``; ``endsAt`` three re-sends ahead.

    Re-sends happen in ticks, so the effective period is at least ``tick_interval_seconds``; a
    tick's time is floored to the step, so ``hold`` adds one step to stay ahead of the wall clock.
    """
    resend = pd.Timedelta(seconds=settings.alerting.resend_interval_seconds)
    period = max(resend, pd.Timedelta(seconds=settings.tick_interval_seconds))
    return LifecyclePolicy(resend_interval=resend, hold=3 * period + base_step)


class AlertQueue(Protocol):
    """The store's ``enqueue_alert``: ``None`` when a pending alert has the same key."""

    def enqueue_alert(
        self, dedup_key: str, payload: Mapping[str, Any], created_at: Any
    ) -> int | None: ...


class OutboxAlerts:
    """One lifecycle per family of conditions, feeding the outbox."""

    def __init__(self, queue: AlertQueue, policy: LifecyclePolicy) -> None:
        self.queue = queue
        self.policy = policy
        self._books: dict[str, ActiveAlerts] = {}

    def book(self, family: str) -> ActiveAlerts:
        """The lifecycle state of ``family`` (created empty on first use)."""
        return self._books.setdefault(family, ActiveAlerts(self.policy))

    def publish(
        self,
        family: str,
        active: Iterable[Mapping[str, Any]],
        now: pd.Timestamp,
        held: Collection[str] = (),
    ) -> tuple[int, list[tuple[str, Exception]]]:
        """Enqueue what is due for ``family`` given its ``active`` alerts at ``now``.

        A notification the outbox refuses (an undelivered alert with the same labels is still
        pending) is proposed again next time, so one condition's sendings stay in order.

        Returns:
            how many alerts were enqueued, and ``(dedup key, error)`` per enqueue that failed.
        """
        book = self.book(family)
        enqueued, errors = 0, []
        audit = []
        for notification in book.due(active, now, held):
            try:
                new_id = self.queue.enqueue_alert(notification.key, notification.alert, now)
            except Exception as exc:  # the store failing for one alert must not stop the rest
                errors.append((notification.key, exc))
                continue
            if new_id is not None:
                book.accepted(notification, now)
                enqueued += 1
                audit.append(_audit_entry(family, notification, now))
        record = getattr(self.queue, "record_decisions", None)
        if audit and record is not None:
            try:
                record(audit)
            except Exception as exc:  # the audit trail failing must not stop alerting
                errors.append(("audit", exc))
        return enqueued, errors


def _audit_entry(family: str, notification: Any, now: pd.Timestamp) -> dict[str, Any]:
    """The audit-log line of one enqueued alert notification."""
    alert = notification.alert
    labels = alert.get("labels", {})
    notes = alert.get("annotations", {})
    return {
        "at": now,
        "service": labels.get("service", "platform"),
        "kind": "alert",
        "decision": f"{labels.get('alertname', family)} {notification.state}",
        "reason": notes.get("description") or notes.get("summary") or notification.key,
        "inputs": {"labels": labels, "annotations": notes, "startsAt": alert.get("startsAt"),
                   "endsAt": alert.get("endsAt")},
    }


@dataclass
class _OpenAnomaly:
    alert: dict[str, Any]
    last_hit: pd.Timestamp


class AnomalyConditions:
    """Open anomaly conditions, by series and kind (see the module docstring)."""

    def __init__(self, quiet: pd.Timedelta = ANOMALY_QUIET, env: str = "prod") -> None:
        self.quiet = quiet
        self.env = env
        self._open: dict[tuple[str, str], _OpenAnomaly] = {}

    def update(
        self, alarms: pd.DataFrame, anomalies: pd.DataFrame, now: pd.Timestamp
    ) -> list[dict[str, Any]]:
        """Open conditions for ``alarms``, extend them with ``anomalies`` (the tick's hits),
        close the quiet ones; return the alerts of the conditions still open at ``now``."""
        for row in alarms.itertuples(index=False):
            key = (str(row.unique_id), str(row.kind))
            alert = self._alarm_alert(row, anomalies)
            known = self._open.get(key)
            last_hit = row.ds if known is None else max(known.last_hit, row.ds)
            self._open[key] = _OpenAnomaly(alert, last_hit)
        if len(anomalies) and {"unique_id", "kind", "ds"} <= set(anomalies.columns):
            newest = anomalies.groupby(["unique_id", "kind"])["ds"].max()
            for (uid, kind), ds in newest.items():
                known = self._open.get((str(uid), str(kind)))
                if known is not None and ds > known.last_hit:
                    known.last_hit = ds
        for key in [k for k, c in self._open.items() if now - c.last_hit > self.quiet]:
            del self._open[key]
        return [c.alert for c in self._open.values()]

    def last_hit(self, unique_id: str, kind: str) -> pd.Timestamp | None:
        """The newest anomaly of an open condition, ``None`` if it is not open."""
        known = self._open.get((unique_id, kind))
        return known.last_hit if known is not None else None

    def _alarm_alert(self, row: Any, anomalies: pd.DataFrame) -> dict[str, Any]:
        point = (
            anomalies[(anomalies["unique_id"] == row.unique_id) & (anomalies["ds"] == row.ds)]
            if len(anomalies)
            else anomalies
        )
        value = float(point["y"].iloc[0]) if len(point) else float("nan")
        expected = point["expected"].iloc[0] if len(point) else None
        return anomaly_alert(
            unique_id=str(row.unique_id), kind=str(row.kind), at=row.ds, value=value,
            expected=None if expected is None or pd.isna(expected) else float(expected),
            score=float(row.score), detector=str(row.detector), env=self.env,
        )  # fmt: skip


def saturation_conditions(
    recommendations: Iterable[Mapping[str, Any]],
    forecasts: Mapping[str, pd.DataFrame],
    services: Mapping[str, ServiceSettings],
    now: pd.Timestamp,
    *,
    env: str = "prod",
    unit: Callable[[str], str] = lambda metric: metric,
) -> tuple[list[dict[str, Any]], set[str]]:
    """Saturation alerts of the services whose plan exceeds ``max_replicas``.

    Args:
        recommendations: this tick's recommendations (``inputs`` as the plan stage writes them).
        forecasts: the tick's forecasts by ``unique_id`` (``ds, yhat_upper``), to find when the
            demand first exceeds what max replicas carry.
        services: the planned services.
        now: the tick's time.
        env: the ``env`` label.
        unit: the load unit of a metric name, for the text.

    Returns:
        the active alerts, and the dedup keys of services with no fresh plan (state unknown).
    """
    recs = {str(r["service"]): r for r in recommendations}
    active: list[dict[str, Any]] = []
    unknown: set[str] = set()
    for name, svc in services.items():
        rec = recs.get(name)
        inputs = (rec or {}).get("inputs") or {}
        if rec is None or inputs.get("forecast_peak") is None:
            unknown.add(dedup_key(saturation_labels(name, env)))
            continue
        if inputs.get("clamped") != "max":
            continue
        max_load = svc.max_replicas * svc.capacity_per_replica * svc.target_utilization
        current = inputs.get("current_load")
        peak = max(float(inputs["forecast_peak"]), float(current or 0.0))
        active.append(
            saturation_alert(
                service=name, at=now, forecast_peak=peak, max_load=max_load,
                minutes_until=_minutes_until(forecasts.get(f"{name}:{svc.load_metric}"),
                                             max_load, current, now),
                peak_at=inputs.get("forecast_peak_at"), max_replicas=svc.max_replicas,
                unit=unit(svc.load_metric), env=env,
            )
        )  # fmt: skip
    return active, unknown


def _minutes_until(
    forecast: pd.DataFrame | None, max_load: float, current: float | None, now: pd.Timestamp
) -> float:
    """Minutes from ``now`` until the forecast's upper bound first exceeds ``max_load``."""
    if current is not None and current > max_load:
        return 0.0
    if forecast is None or forecast.empty:
        return 0.0
    over = forecast[(forecast["ds"] >= now) & (forecast["yhat_upper"] > max_load)]
    if over.empty:
        return 0.0
    return max((over["ds"].min() - now).total_seconds() / 60.0, 0.0)


def _source_labels(source: str, env: str) -> dict[str, str]:
    # 'source' is every alert's origin (surgecast); the metrics source is 'datasource'
    return {
        "alertname": SOURCE_UNAVAILABLE_ALERTNAME,
        "service": "surgecast",
        "datasource": source,
        "severity": "critical",
        "source": "surgecast",
        "env": env,
    }


def source_unavailable_key(source: str, env: str = "prod") -> str:
    """The dedup key of ``source``'s unavailable alert (to hold it on ticks that skip it)."""
    return dedup_key(_source_labels(source, env))


def source_unavailable_alert(
    *, source: str, error: str, at: pd.Timestamp, series: int, env: str = "prod"
) -> dict[str, Any]:
    """A metrics source could not be reached: recommendations are held and marked stale.

    Example:
        >>> a = source_unavailable_alert(source="prometheus", error="connection refused",
        ...     at=pd.Timestamp("2026-11-28 19:50", tz="UTC"), series=19)
        >>> a["labels"]["alertname"], a["labels"]["datasource"], a["annotations"]["summary"]
        ('SurgecastSourceUnavailable', 'prometheus', 'metrics source prometheus unavailable')
    """
    return {
        "labels": _source_labels(source, env),
        "annotations": {
            "summary": f"metrics source {source} unavailable",
            "description": (
                f"{series} series could not be collected from {source} at {iso_utc(at)}: "
                f"{error[:500]}. Recommendations are held (never lowered) and marked stale "
                "until it is back; the gap is filled then"
            ),
            "series": str(series),
        },
        "startsAt": iso_utc(at),
    }


MODEL_FAILURE_ALERTNAME = "SurgecastModelFailure"


def model_failure_alert(
    *, unique_id: str, error: str, at: pd.Timestamp, env: str = "prod"
) -> dict[str, Any]:
    """A series' forecaster failed this tick (the floor or a hold took over).

    Example:
        >>> a = model_failure_alert(unique_id="payments:deposits_per_second",
        ...     error="LinAlgError: SVD did not converge", at=pd.Timestamp("2026-11-28", tz="UTC"))
        >>> a["labels"]["alertname"], a["labels"]["service"], a["labels"]["severity"]
        ('SurgecastModelFailure', 'payments', 'warning')
    """
    service = unique_id.partition(":")[0]
    return {
        "labels": {
            "alertname": MODEL_FAILURE_ALERTNAME,
            "service": service,
            "series": unique_id,
            "severity": "warning",
            "source": "surgecast",
            "env": env,
        },
        "annotations": {
            "summary": f"{service}: forecasting failed for {unique_id}",
            "description": (
                f"the forecaster of {unique_id} failed at {iso_utc(at)}: {error[:500]}. The "
                "seasonal-naive floor (or a hold of the last recommendation) is used until it "
                "recovers; retrain or roll back the model"
            ),
        },
        "startsAt": iso_utc(at),
    }

