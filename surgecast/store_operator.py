"""Store methods for the HTTP API: operator decisions (overrides, anomaly acknowledgements and
silences, registered events) and the cross-series, filtered reads the read endpoints page through.

Mixed into :class:`surgecast.store_records.RecordStore`; use them through
:class:`surgecast.store.Store`. Reads return the newest ``limit`` rows, oldest first, like the
rest of the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import func, or_, select, update

from surgecast.errors import DataError, NotFound
from surgecast.store_base import StoreBase, check_limit, to_frame, where_range
from surgecast.store_codec import (
    TimestampLike,
    decode_json,
    encode_json,
    from_ns,
    optional_ns,
    to_ns,
)
from surgecast.store_schema import (
    ALERT_DELIVERED,
    ALERT_FAILED,
    ALERT_PENDING,
    alerts,
    anomalies,
    anomaly_acks,
    forecasts,
    operator_overrides,
    points,
    registered_events,
    retrain_requests,
)
from surgecast.store_series import ANOMALY_SPEC as _ANOMALY_SPEC

__all__ = ["ACK_ACTIONS", "ALERT_STATUSES", "OVERRIDE_MODES", "OperatorStore", "silenced"]

OVERRIDE_MODES = ("hold", "floor", "pause")
ACK_ACTIONS = ("ack", "silence")
ALERT_STATUSES = (ALERT_PENDING, ALERT_DELIVERED, ALERT_FAILED)
# how the store's record rows decode (operator tables here, recommendations, alerts, models,
# audit and ticks in store_records): nanosecond times to aware UTC, JSON text to dicts
_TIME_COLUMNS = {
    "at", "valid_until", "starts_at", "ends_at", "created_at", "cancelled_at", "ds", "until",
    "next_attempt_at", "delivered_at", "requested_at", "started_at", "finished_at",
}  # fmt: skip
_JSON_COLUMNS = {"inputs", "payload", "metadata", "summary"}
_EVENT_SPEC = {
    "event_id": "str",
    "name": "str",
    "start": "time",
    "end": "time",
    "sport": "str",
    "competition": "str",
    "importance": "float",
}


class OperatorStore(StoreBase):
    """Overrides, acknowledgements, registered events and the API's filtered reads."""

    # -- overrides ---------------------------------------------------------------------------
    def save_override(
        self,
        service: str,
        mode: str,
        replicas: int | None,
        starts_at: TimestampLike,
        ends_at: TimestampLike,
        reason: str,
        created_by: str,
        created_at: TimestampLike,
    ) -> dict[str, Any]:
        """Record an operator override of ``service``'s recommendations for ``[starts_at,
        ends_at)``; returns it with its ``id``.

        Raises:
            DataError: unknown ``mode``, ``replicas`` missing for hold/floor, or an empty window.
        """
        if mode not in OVERRIDE_MODES:
            raise DataError(f"mode {mode!r} is not one of {OVERRIDE_MODES}")
        if mode != "pause" and (replicas is None or replicas < 0):
            raise DataError(f"an override in mode {mode!r} needs replicas >= 0")
        start_ns, end_ns = to_ns(starts_at, field="start"), to_ns(ends_at, field="end")
        if end_ns <= start_ns:
            raise DataError("end must be after start")
        row = {
            "service": str(service), "mode": mode,
            "replicas": None if mode == "pause" else int(replicas),  # type: ignore[arg-type]
            "starts_at": start_ns, "ends_at": end_ns, "reason": str(reason),
            "created_by": str(created_by), "created_at": to_ns(created_at, field="created_at"),
        }  # fmt: skip
        stmt = self._insert(operator_overrides).values(row).returning(operator_overrides.c.id)
        with self._write("save the override") as conn:
            new_id = int(conn.execute(stmt).scalar_one())
        return self.override(new_id)

    def override(self, override_id: int) -> dict[str, Any]:
        """One override by id. Raises ``NotFound`` if there is none."""
        stmt = select(operator_overrides).where(operator_overrides.c.id == int(override_id))
        found = self._records(stmt, "read the override")
        if not found:
            raise NotFound(f"override {override_id} does not exist")
        return found[0]

    def overrides(
        self,
        service: str | None = None,
        active_at: TimestampLike | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Overrides, newest first by ``starts_at``; with ``active_at`` only those in force then
        (``starts_at <= active_at < ends_at`` and not cancelled)."""
        stmt = select(operator_overrides)
        if service is not None:
            stmt = stmt.where(operator_overrides.c.service == service)
        if active_at is not None:
            at = to_ns(active_at, field="active_at")
            stmt = stmt.where(
                operator_overrides.c.starts_at <= at,
                operator_overrides.c.ends_at > at,
                operator_overrides.c.cancelled_at.is_(None),
            )
        order = (operator_overrides.c.starts_at.desc(), operator_overrides.c.id.desc())
        stmt = stmt.order_by(*order).limit(check_limit(limit))
        return self._records(stmt, "read overrides")

    def cancel_override(self, override_id: int, at: TimestampLike) -> dict[str, Any]:
        """End an override early (idempotent). Raises ``NotFound`` for an unknown id."""
        stmt = (
            update(operator_overrides)
            .where(operator_overrides.c.id == int(override_id))
            .where(operator_overrides.c.cancelled_at.is_(None))
            .values(cancelled_at=to_ns(at, field="at"))
        )
        with self._write("cancel the override") as conn:
            conn.execute(stmt)
        return self.override(override_id)

    # -- anomaly acknowledgements and silences -----------------------------------------------
    def save_ack(
        self,
        action: str,
        unique_id: str,
        kind: str | None,
        ds: TimestampLike | None,
        until: TimestampLike | None,
        reason: str,
        created_by: str,
        created_at: TimestampLike,
    ) -> dict[str, Any]:
        """Acknowledge anomalies of ``unique_id`` (one at ``ds``, or all up to ``created_at``)
        or silence them (``kind`` or all kinds) until ``until``; returns the record."""
        if action not in ACK_ACTIONS:
            raise DataError(f"action {action!r} is not one of {ACK_ACTIONS}")
        if action == "silence" and until is None:
            raise DataError("a silence needs 'until'")
        row = {
            "action": action, "unique_id": str(unique_id), "kind": kind,
            "ds": optional_ns(ds, field="ds"), "until": optional_ns(until, field="until"),
            "reason": str(reason), "created_by": str(created_by),
            "created_at": to_ns(created_at, field="created_at"),
        }  # fmt: skip
        stmt = self._insert(anomaly_acks).values(row).returning(anomaly_acks.c.id)
        with self._write("save the acknowledgement") as conn:
            new_id = int(conn.execute(stmt).scalar_one())
        found = self._records(select(anomaly_acks).where(anomaly_acks.c.id == new_id), "read ack")
        return found[0]

    def acks(
        self, unique_ids: Sequence[str] | None = None, limit: int = 10_000,
        covering: TimestampLike | None = None,
    ) -> list[dict[str, Any]]:
        """Acknowledgements and silences (of ``unique_ids``), newest first.

        ``covering``: only those that can cover an anomaly at or after this time (made since
        then, set against a point since then, or a silence that ends after it): all that
        :func:`silenced` needs for anomalies from ``covering`` on, without reading a series'
        whole history of acknowledgements.
        """
        c = anomaly_acks.c
        stmt = select(anomaly_acks)
        if unique_ids is not None:
            stmt = stmt.where(c.unique_id.in_([str(u) for u in unique_ids]))
        if covering is not None:
            since = to_ns(covering, field="covering")
            stmt = stmt.where(or_(c.created_at >= since, c.ds >= since, c.until > since))
        stmt = stmt.order_by(c.id.desc()).limit(check_limit(limit))
        return self._records(stmt, "read acknowledgements")

    # -- retrain requests --------------------------------------------------------------------
    def request_retrain(self, requested_by: str, now: TimestampLike) -> tuple[dict[str, Any], bool]:
        """Queue a retrain, unless one is queued or running already (then that one is returned).

        Returns:
            The request, and whether this call created it.
        """
        c = retrain_requests.c
        with self._write("queue a retrain") as conn:
            open_row = conn.execute(
                select(retrain_requests).where(c.finished_at.is_(None)).order_by(c.id).limit(1)
            ).mappings().first()
            if open_row is not None:
                return _decode(open_row), False
            new_id = conn.execute(retrain_requests.insert().values(
                requested_at=to_ns(now, field="now"), requested_by=str(requested_by),
            )).inserted_primary_key[0]  # fmt: skip
            row = conn.execute(select(retrain_requests).where(c.id == new_id)).mappings().one()
        return _decode(row), True

    def claim_retrain(self, now: TimestampLike) -> bool:
        """Mark every queued request as started at ``now``; ``True`` if there was one. One
        claimant wins: the others find nothing left to claim."""
        c = retrain_requests.c
        queued = c.started_at.is_(None) & c.finished_at.is_(None)
        # the scheduler asks every few seconds: only take the write lock when something waits
        if not self._fetch(select(c.id).where(queued).limit(1), "look for a queued retrain"):
            return False
        with self._write("claim a retrain") as conn:
            claimed = conn.execute(
                update(retrain_requests).where(queued).values(started_at=to_ns(now, field="now"))
            ).rowcount
        return bool(claimed)

    def finish_retrain(
        self,
        started_at: TimestampLike,
        finished_at: TimestampLike,
        result: Mapping[str, str] | None,
        error: str | None,
    ) -> None:
        """Record the outcome of the requests claimed at ``started_at``."""
        c = retrain_requests.c
        values = {
            "finished_at": to_ns(finished_at, field="finished_at"),
            "result": encode_json(dict(result), field="result") if result is not None else None,
            "error": error,
        }
        with self._write("record the retrain") as conn:
            conn.execute(
                update(retrain_requests)
                .where(c.started_at == to_ns(started_at, field="started_at"), c.finished_at.is_(None))
                .values(values)
            )

    def abandon_retrains(self, now: TimestampLike, reason: str) -> int:
        """Finish, with ``reason`` as the error, requests started but never finished (their
        scheduler stopped mid-way); queued ones stay queued. Returns how many."""
        c = retrain_requests.c
        with self._write("abandon unfinished retrains") as conn:
            return int(conn.execute(
                update(retrain_requests)
                .where(c.started_at.is_not(None), c.finished_at.is_(None))
                .values(finished_at=to_ns(now, field="now"), error=str(reason))
            ).rowcount)  # fmt: skip

    def retrain_status(self) -> dict[str, Any] | None:
        """The newest retrain request, or ``None`` before the first."""
        stmt = select(retrain_requests).order_by(retrain_requests.c.id.desc()).limit(1)
        found = self._records(stmt, "read the retrain status")
        return found[0] if found else None

    # -- registered events -------------------------------------------------------------------
    def save_event(self, event: Mapping[str, Any], created_by: str, created_at: TimestampLike) -> None:
        """Register an event (``event_id, name, start, end, sport, competition, importance``).

        Raises:
            DataError: ``end`` is not after ``start``.
            StoreError: ``event_id`` is already registered.
        """
        start_ns, end_ns = to_ns(event["start"], field="start"), to_ns(event["end"], field="end")
        if end_ns <= start_ns:
            raise DataError("end must be after start")
        row = {
            "event_id": str(event["event_id"]), "name": str(event["name"]),
            "starts_at": start_ns, "ends_at": end_ns, "sport": str(event["sport"]),
            "competition": str(event["competition"]), "importance": float(event["importance"]),
            "created_by": str(created_by), "created_at": to_ns(created_at, field="created_at"),
        }  # fmt: skip
        with self._write(f"register event {row['event_id']}") as conn:
            conn.execute(registered_events.insert().values(row))

    def registered_events(
        self,
        start: TimestampLike | None = None,
        end: TimestampLike | None = None,
        event_id: str | None = None,
    ) -> pd.DataFrame:
        """Registered events overlapping ``[start, end)`` (or the one ``event_id``) as an
        events frame, sorted by start."""
        c = registered_events.c
        stmt = select(c.event_id, c.name, c.starts_at, c.ends_at, c.sport, c.competition, c.importance)
        if event_id is not None:
            stmt = stmt.where(c.event_id == str(event_id))
        if end is not None:
            stmt = stmt.where(c.starts_at < to_ns(end, field="end"))
        if start is not None:
            stmt = stmt.where(c.ends_at > to_ns(start, field="start"))
        rows = self._fetch(stmt.order_by(c.starts_at, c.event_id), "read registered events")
        return to_frame(rows, _EVENT_SPEC)

    # -- cross-series reads ------------------------------------------------------------------
    def forecasts_between(self, start: TimestampLike, end: TimestampLike) -> pd.DataFrame:
        """Every stored forecast row with ``start <= ds < end``: ``unique_id, ds, yhat,
        yhat_lower, yhat_upper, model, level``."""
        cols = ("unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model", "level")
        stmt = where_range(select(*(forecasts.c[k] for k in cols)), forecasts.c.ds, start, end)
        rows = self._fetch(stmt.order_by(forecasts.c.unique_id, forecasts.c.ds), "read forecasts")
        spec = {k: "float" for k in cols} | {"unique_id": "str", "ds": "time", "model": "str"}
        return to_frame(rows, spec)

    def newest_points(self, unique_ids: Sequence[str], since: TimestampLike) -> pd.DataFrame:
        """Points of ``unique_ids`` with ``ds >= since`` (a short window: the current load)."""
        stmt = select(points.c.unique_id, points.c.ds, points.c.y).where(
            points.c.unique_id.in_([str(u) for u in unique_ids]),
            points.c.ds >= to_ns(since, field="since"),
        )
        rows = self._fetch(stmt.order_by(points.c.unique_id, points.c.ds), "read newest points")
        return to_frame(rows, {"unique_id": "str", "ds": "time", "y": "float"})

    def find_anomalies(
        self,
        *,
        service: str | None = None,
        unique_id: str | None = None,
        kind: str | None = None,
        start: TimestampLike | None = None,
        end: TimestampLike | None = None,
        limit: int = 100,
    ) -> pd.DataFrame:
        """Flagged anomalies filtered by service (``service:`` prefix), series and kind, with
        ``start <= ds < end``: the newest ``limit``, oldest first."""
        stmt = select(*(anomalies.c[k] for k in _ANOMALY_SPEC)).where(anomalies.c.is_anomaly.is_(True))
        if service is not None:
            prefix = service.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(anomalies.c.unique_id.like(f"{prefix}:%", escape="\\"))
        if unique_id is not None:
            stmt = stmt.where(anomalies.c.unique_id == unique_id)
        if kind is not None:
            stmt = stmt.where(anomalies.c.kind == kind)
        stmt = where_range(stmt, anomalies.c.ds, start, end)
        order = (anomalies.c.ds, anomalies.c.unique_id, anomalies.c.detector)
        stmt = stmt.order_by(*(k.desc() for k in order)).limit(check_limit(limit))
        return to_frame(self._fetch(stmt, "read anomalies")[::-1], _ANOMALY_SPEC)

    def latest_scores(self, since: TimestampLike) -> dict[str, float]:
        """The highest anomaly score of each series among anomalies with ``ds >= since``."""
        stmt = (
            select(anomalies.c.unique_id, func.max(anomalies.c.score))
            .where(anomalies.c.is_anomaly.is_(True), anomalies.c.ds >= to_ns(since, field="since"))
            .group_by(anomalies.c.unique_id)
        )
        return {uid: float(s) for uid, s in self._fetch(stmt, "read anomaly scores") if s is not None}

    def list_alerts(
        self,
        status: str | None = None,
        start: TimestampLike | None = None,
        end: TimestampLike | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Outbox alerts with ``start <= created_at < end``: the newest ``limit``, oldest first."""
        stmt = select(alerts)
        if status is not None:
            if status not in ALERT_STATUSES:
                raise DataError(f"status {status!r} is not one of {ALERT_STATUSES}")
            stmt = stmt.where(alerts.c.status == status)
        stmt = where_range(stmt, alerts.c.created_at, start, end)
        stmt = stmt.order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(check_limit(limit))
        return self._records(stmt, "read alerts")[::-1]

    # -- helpers -----------------------------------------------------------------------------
    def _records(self, stmt: Any, action: str) -> list[dict[str, Any]]:
        """Run ``stmt`` and decode rows: times to aware UTC Timestamps, JSON text to dicts."""
        with self._read(action) as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_decode(row) for row in rows]


def silenced(
    ack_rows: Sequence[Mapping[str, Any]], unique_id: str, kind: Any, ds: pd.Timestamp
) -> Mapping[str, Any] | None:
    """The newest acknowledgement or silence covering the anomaly ``(unique_id, kind, ds)``."""
    for ack in ack_rows:  # newest first
        if ack["unique_id"] != unique_id or (ack["kind"] is not None and ack["kind"] != kind):
            continue
        if ack["action"] == "ack":
            if (ack["ds"] is not None and ack["ds"] == ds) or (
                ack["ds"] is None and ds <= ack["created_at"]
            ):
                return ack
        elif ack["until"] is not None and ds < ack["until"] and ds >= _silence_from(ack):
            return ack
    return None


def _silence_from(ack: Mapping[str, Any]) -> pd.Timestamp:
    # a silence covers what it was set against: from its ds if given, else from an hour before
    return ack["ds"] if ack["ds"] is not None else ack["created_at"] - pd.Timedelta(hours=1)


def _decode(row: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in _TIME_COLUMNS:
            out[key] = from_ns(value)
        elif key in _JSON_COLUMNS:
            out[key] = decode_json(value)
        elif key == "result":  # a retrain's result: none until it finishes
            out[key] = decode_json(value) if value is not None else None
        elif key in ("stale", "ok"):
            out[key] = bool(value)
        else:
            out[key] = value
    return out
