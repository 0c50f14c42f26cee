"""Record-shaped tables of the store: recommendations, the alert outbox, the model registry index
and tick runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sqlalchemy import func, select, update

from surgecast.errors import DataError, NotFound
from surgecast.store_base import check_limit, where_range
from surgecast.store_codec import (
    TimestampLike,
    encode_json,
    optional_ns,
    to_ns,
)
from surgecast.store_operator import OperatorStore
from surgecast.store_schema import (
    ALERT_DELIVERED,
    ALERT_FAILED,
    ALERT_PENDING,
    alerts,
    audit_log,
    model_registry,
    recommendations,
    tick_runs,
)

__all__ = ["AUDIT_KINDS", "RECOMMENDATION_FIELDS", "RecordStore"]

# what the audit log records: every decision surgecast takes, with its inputs and reason
AUDIT_KINDS = ("recommendation", "throttle", "alert", "replay", "operator")

# field -> required?  Unknown keys are refused so a typo cannot silently drop data.
RECOMMENDATION_FIELDS = {
    "service": True,
    "at": True,
    "valid_until": False,
    "current_replicas": False,
    "recommended_replicas": True,
    "throttle_rps": False,
    "reason": True,
    "inputs": False,
    "stale": False,
    "model": True,
}
class RecordStore(OperatorStore):
    """Recommendations, alerts, models and ticks (and, from :class:`OperatorStore`, operator
    decisions and the API's reads); see :class:`surgecast.store.Store`."""

    # -- recommendations ---------------------------------------------------------------------
    def save_recommendation(self, rec: Mapping[str, Any]) -> None:
        """Store one recommendation; saving the same ``(service, at)`` again replaces it.

        Args:
            rec: ``service, at, recommended_replicas, reason, model`` and optionally
                ``valid_until, current_replicas, throttle_rps, inputs`` (a JSON-able dict) and
                ``stale`` (default False).

        Raises:
            DataError: a required field is missing, a field is unknown or has the wrong type.
        """
        source = "save_recommendation"
        unknown = sorted(set(rec) - set(RECOMMENDATION_FIELDS))
        if unknown:
            raise DataError(f"{source}: unknown field(s) {unknown}; put extra context in 'inputs'")
        missing = [
            k for k, required in RECOMMENDATION_FIELDS.items() if required and rec.get(k) is None
        ]
        if missing:
            raise DataError(f"{source}: missing required field(s) {missing}")
        row = {
            "service": str(rec["service"]),
            "at": to_ns(rec["at"], field="at"),
            "valid_until": optional_ns(rec.get("valid_until"), field="valid_until"),
            "current_replicas": _int(rec.get("current_replicas"), "current_replicas"),
            "recommended_replicas": _int(rec["recommended_replicas"], "recommended_replicas"),
            "throttle_rps": _float(rec.get("throttle_rps"), "throttle_rps"),
            "reason": str(rec["reason"]),
            "inputs": encode_json(rec.get("inputs"), field="inputs"),
            "stale": bool(rec.get("stale", False)),
            "model": str(rec["model"]),
        }
        stmt = self._insert(recommendations).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[recommendations.c.service, recommendations.c.at],
            set_={k: stmt.excluded[k] for k in row if k not in ("service", "at")},
        )
        with self._write("save the recommendation") as conn:
            conn.execute(stmt)

    def latest_recommendations(self) -> list[dict[str, Any]]:
        """The newest recommendation of every service, sorted by service.

        Timestamps are aware UTC ``pd.Timestamp``; ``inputs`` is a dict.
        """
        newest = (
            select(recommendations.c.service, func.max(recommendations.c.at).label("at"))
            .group_by(recommendations.c.service)
            .subquery()
        )
        stmt = (
            select(recommendations)
            .join(
                newest,
                (recommendations.c.service == newest.c.service)
                & (recommendations.c.at == newest.c.at),
            )
            .order_by(recommendations.c.service)
        )
        return self._records(stmt, "read the latest recommendations")

    def recommendation_history(
        self,
        service: str,
        start: TimestampLike | None = None,
        end: TimestampLike | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Recommendations of one service with ``start <= at < end``: the newest ``limit``,
        oldest first (ready to plot)."""
        stmt = select(recommendations).where(recommendations.c.service == service)
        stmt = where_range(stmt, recommendations.c.at, start, end)
        stmt = stmt.order_by(recommendations.c.at.desc()).limit(check_limit(limit))
        return self._records(stmt, "read the recommendation history")[::-1]

    # -- audit log ---------------------------------------------------------------------------
    def record_decisions(self, entries: list[Mapping[str, Any]]) -> int:
        """Append decisions to the audit log (one transaction); returns how many.

        Args:
            entries: each ``at, service, kind`` (one of :data:`AUDIT_KINDS`), ``decision``
                (what was decided, short), ``reason`` (why, in words) and ``inputs`` (the
                numbers behind it, JSON-able).

        Raises:
            DataError: a field is missing or ``kind`` is unknown.
        """
        rows = []
        for i, e in enumerate(entries):
            missing = [k for k in ("at", "service", "kind", "decision", "reason") if e.get(k) is None]
            if missing:
                raise DataError(f"record_decisions: entry {i} lacks {missing}")
            if e["kind"] not in AUDIT_KINDS:
                raise DataError(
                    f"record_decisions: entry {i} kind {e['kind']!r} is not one of {AUDIT_KINDS}"
                )
            rows.append({
                "at": to_ns(e["at"], field="at"),
                "service": str(e["service"]),
                "kind": str(e["kind"]),
                "decision": str(e["decision"]),
                "reason": str(e["reason"]),
                "inputs": encode_json(e.get("inputs") or {}, field="inputs"),
            })
        if not rows:
            return 0
        with self._write("record decisions in the audit log") as conn:
            conn.execute(audit_log.insert(), rows)
        return len(rows)

    def audit(
        self,
        service: str | None = None,
        kind: str | None = None,
        start: TimestampLike | None = None,
        end: TimestampLike | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Audit-log entries with ``start <= at < end``, filtered by service and kind: the newest
        ``limit``, oldest first."""
        stmt = select(audit_log)
        if service is not None:
            stmt = stmt.where(audit_log.c.service == service)
        if kind is not None:
            stmt = stmt.where(audit_log.c.kind == kind)
        stmt = where_range(stmt, audit_log.c.at, start, end)
        stmt = stmt.order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(check_limit(limit))
        return self._records(stmt, "read the audit log")[::-1]

    # -- alert outbox ------------------------------------------------------------------------
    def enqueue_alert(
        self, dedup_key: str, payload: Mapping[str, Any], created_at: TimestampLike
    ) -> int | None:
        """Put an alert in the outbox, due at once, unless one with ``dedup_key`` is pending.

        Returns:
            The new alert's id, or ``None`` when a pending alert with the same key exists
            (the database enforces this, so racing threads cannot both enqueue).
        """
        created_ns = to_ns(created_at, field="created_at")
        row = {
            "dedup_key": str(dedup_key),
            "payload": encode_json(payload, field="payload"),
            "status": ALERT_PENDING,
            "attempts": 0,
            "created_at": created_ns,
            "next_attempt_at": created_ns,
        }
        stmt = (
            self._insert(alerts)
            .values(row)
            .on_conflict_do_nothing(
                index_elements=[alerts.c.dedup_key],
                index_where=alerts.c.status == ALERT_PENDING,
            )
            .returning(alerts.c.id)
        )
        with self._write("enqueue the alert") as conn:
            new_id = conn.execute(stmt).scalar_one_or_none()
        return None if new_id is None else int(new_id)

    def pending_alerts(self, now: TimestampLike, limit: int = 100) -> list[dict[str, Any]]:
        """Pending alerts due at ``now`` (``next_attempt_at <= now``), oldest due first."""
        stmt = (
            select(alerts)
            .where(alerts.c.status == ALERT_PENDING)
            .where(alerts.c.next_attempt_at <= to_ns(now, field="now"))
            .order_by(alerts.c.next_attempt_at, alerts.c.id)
            .limit(check_limit(limit))
        )
        return self._records(stmt, "read pending alerts")

    def mark_alert_delivered(self, alert_id: int, at: TimestampLike) -> None:
        """Mark an alert delivered; its ``dedup_key`` is then free for a new alert.

        Raises:
            NotFound: no alert has this id.
        """
        values = {"status": ALERT_DELIVERED, "delivered_at": to_ns(at, field="at")}
        self._update_alert(alert_id, values, "mark the alert delivered")

    def mark_alert_failed(
        self, alert_id: int, error: str, next_attempt_at: TimestampLike | None
    ) -> None:
        """Record a failed delivery attempt: ``attempts`` + 1, ``last_error`` set.

        Args:
            alert_id: the alert.
            error: what went wrong (shown on the dashboard).
            next_attempt_at: when to retry; the alert stays pending. ``None`` gives up: the
                status becomes ``failed`` and the alert is no longer returned as pending.

        Raises:
            NotFound: no alert has this id.
        """
        values: dict[str, Any] = {"attempts": alerts.c.attempts + 1, "last_error": str(error)}
        if next_attempt_at is None:
            values["status"] = ALERT_FAILED
        else:
            values["next_attempt_at"] = to_ns(next_attempt_at, field="next_attempt_at")
        self._update_alert(alert_id, values, "mark the alert failed")

    def _update_alert(self, alert_id: int, values: dict[str, Any], action: str) -> None:
        stmt = update(alerts).where(alerts.c.id == int(alert_id)).values(values)
        with self._write(action) as conn:
            if conn.execute(stmt).rowcount == 0:
                raise NotFound(f"alert {alert_id} does not exist in the outbox")

    # -- model registry index ----------------------------------------------------------------
    def register_model(
        self,
        unique_id: str,
        model: str,
        version: str,
        path: str,
        checksum: str,
        metadata: Mapping[str, Any],
        created_at: TimestampLike,
    ) -> int:
        """Index a saved model file; returns its registry id.

        Raises:
            StoreError: this ``(unique_id, model, version)`` is already registered.
        """
        row = {
            "unique_id": str(unique_id),
            "model": str(model),
            "version": str(version),
            "path": str(path),
            "checksum": str(checksum),
            "metadata": encode_json(metadata, field="metadata"),
            "created_at": to_ns(created_at, field="created_at"),
        }
        stmt = self._insert(model_registry).values(row).returning(model_registry.c.id)
        action = f"register model {model} version {version} of {unique_id}"
        with self._write(action) as conn:
            return int(conn.execute(stmt).scalar_one())

    def latest_model(self, unique_id: str) -> dict[str, Any] | None:
        """The most recently created registry entry of a series, or ``None``."""
        stmt = (
            select(model_registry)
            .where(model_registry.c.unique_id == unique_id)
            .order_by(model_registry.c.created_at.desc(), model_registry.c.id.desc())
            .limit(1)
        )
        found = self._records(stmt, "read the model registry")
        return found[0] if found else None

    def model_history(self, unique_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """Registry entries of a series, newest first (what a rollback chooses from)."""
        stmt = (
            select(model_registry)
            .where(model_registry.c.unique_id == unique_id)
            .order_by(model_registry.c.created_at.desc(), model_registry.c.id.desc())
            .limit(check_limit(limit))
        )
        return self._records(stmt, "read the model registry")

    def latest_models(self) -> dict[str, dict[str, Any]]:
        """The newest registry entry of every series, in one query (ids grow with inserts)."""
        newest = select(func.max(model_registry.c.id)).group_by(model_registry.c.unique_id)
        stmt = select(model_registry).where(model_registry.c.id.in_(newest.scalar_subquery()))
        return {r["unique_id"]: r for r in self._records(stmt, "read the model registry")}

    # -- tick runs ---------------------------------------------------------------------------
    def record_tick(
        self,
        started_at: TimestampLike,
        finished_at: TimestampLike,
        ok: bool,
        summary: Mapping[str, Any],
    ) -> None:
        """Record one pipeline tick (for ``/readyz`` and the dashboard)."""
        row = {
            "started_at": to_ns(started_at, field="started_at"),
            "finished_at": to_ns(finished_at, field="finished_at"),
            "ok": bool(ok),
            "summary": encode_json(summary, field="summary"),
        }
        with self._write("record the tick") as conn:
            conn.execute(tick_runs.insert().values(row))

    def last_tick(self) -> dict[str, Any] | None:
        """The most recently started tick, or ``None`` before the first."""
        stmt = select(tick_runs).order_by(tick_runs.c.started_at.desc(), tick_runs.c.id.desc())
        found = self._records(stmt.limit(1), "read the last tick")
        return found[0] if found else None


def _int(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise DataError(f"save_recommendation: {field} must be an integer, got {value!r}")
    if not np.isfinite(value) or float(value) != int(value):
        raise DataError(f"save_recommendation: {field} must be a whole number, got {value!r}")
    return int(value)


def _float(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise DataError(f"save_recommendation: {field} must be a number or None, got {value!r}")
    return None if np.isnan(value) else float(value)
