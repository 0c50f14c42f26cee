"""The tables of :mod:`surgecast.store` (SQLAlchemy Core), identical on SQLite and PostgreSQL.

Every timestamp column is BIGINT nanoseconds since the Unix epoch, UTC (see
:mod:`surgecast.store_codec` for why); every JSON column is text.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = [
    "ALERT_DELIVERED",
    "ALERT_FAILED",
    "ALERT_PENDING",
    "alerts",
    "anomalies",
    "forecasts",
    "metadata",
    "model_registry",
    "points",
    "anomaly_acks",
    "operator_overrides",
    "recommendations",
    "registered_events",
    "retrain_requests",
    "tick_runs",
]

ALERT_PENDING = "pending"
ALERT_DELIVERED = "delivered"
ALERT_FAILED = "failed"

metadata = MetaData()

# Byte-order collation on PostgreSQL so ORDER BY unique_id (and therefore `limit`) gives the same
# rows as SQLite's BINARY collation and Python's sort, whatever locale the cluster was created with.
Key = String(200).with_variant(String(200, collation="C"), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Id = BigInteger().with_variant(Integer(), "sqlite")
Nanos = BigInteger

points = Table(
    "points",
    metadata,
    Column("unique_id", Key, nullable=False),
    Column("ds", Nanos, nullable=False),
    Column("y", Double, nullable=False),
    PrimaryKeyConstraint("unique_id", "ds", name="pk_points"),
    # clustered by key on SQLite: range reads of one series touch contiguous pages
    sqlite_with_rowid=False,
)

forecasts = Table(
    "forecasts",
    metadata,
    Column("unique_id", Key, nullable=False),
    Column("ds", Nanos, nullable=False),
    Column("yhat", Double),
    Column("yhat_lower", Double),
    Column("yhat_upper", Double),
    Column("model", String(200), nullable=False),
    Column("level", Double),
    Column("created_at", Nanos, nullable=False),
    PrimaryKeyConstraint("unique_id", "ds", name="pk_forecasts"),
    sqlite_with_rowid=False,
)

anomalies = Table(
    "anomalies",
    metadata,
    Column("unique_id", Key, nullable=False),
    Column("ds", Nanos, nullable=False),
    Column("detector", Key, nullable=False),
    Column("y", Double),
    Column("expected", Double),
    Column("lower", Double),
    Column("upper", Double),
    Column("score", Double),
    Column("is_anomaly", Boolean, nullable=False),
    Column("kind", String(50)),
    PrimaryKeyConstraint("unique_id", "ds", "detector", name="pk_anomalies"),
    Index("ix_anomalies_ds", "ds"),
)

recommendations = Table(
    "recommendations",
    metadata,
    Column("service", Key, nullable=False),
    Column("at", Nanos, nullable=False),
    Column("valid_until", Nanos),
    Column("current_replicas", Integer),
    Column("recommended_replicas", Integer, nullable=False),
    Column("throttle_rps", Double),
    Column("reason", Text, nullable=False),
    Column("inputs", Text, nullable=False),
    Column("stale", Boolean, nullable=False),
    Column("model", String(200), nullable=False),
    PrimaryKeyConstraint("service", "at", name="pk_recommendations"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dedup_key", String(500), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", Nanos, nullable=False),
    Column("next_attempt_at", Nanos, nullable=False),
    Column("delivered_at", Nanos),
    Column("last_error", Text),
    # at most one *pending* alert per key: the database enforces the dedup, so two threads racing
    # to enqueue the same alert cannot both win
    Index(
        "ux_alerts_pending_dedup",
        "dedup_key",
        unique=True,
        sqlite_where=text(f"status = '{ALERT_PENDING}'"),
        postgresql_where=text(f"status = '{ALERT_PENDING}'"),
    ),
    Index("ix_alerts_status_next", "status", "next_attempt_at"),
)

model_registry = Table(
    "model_registry",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("unique_id", Key, nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", String(200), nullable=False),
    Column("path", Text, nullable=False),
    Column("checksum", String(200), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("created_at", Nanos, nullable=False),
    UniqueConstraint("unique_id", "model", "version", name="uq_model_registry_version"),
    Index("ix_model_registry_latest", "unique_id", "created_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", Nanos, nullable=False),
    Column("service", Key, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("decision", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("inputs", Text, nullable=False),
    Index("ix_audit_service_at", "service", "at"),
    Index("ix_audit_at", "at"),
)

tick_runs = Table(
    "tick_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("started_at", Nanos, nullable=False),
    Column("finished_at", Nanos, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("summary", Text, nullable=False),
    Index("ix_tick_runs_started", "started_at"),
)

# operator decisions written through the API (surgecast.store_operator)
operator_overrides = Table(
    "operator_overrides",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("service", Key, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("replicas", Integer),
    Column("starts_at", Nanos, nullable=False),
    Column("ends_at", Nanos, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", Nanos, nullable=False),
    Column("cancelled_at", Nanos),
    Index("ix_overrides_service_ends", "service", "ends_at"),
)

anomaly_acks = Table(
    "anomaly_acks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("action", String(16), nullable=False),
    Column("unique_id", Key, nullable=False),
    Column("kind", String(50)),
    Column("ds", Nanos),
    Column("until", Nanos),
    Column("reason", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", Nanos, nullable=False),
    Index("ix_anomaly_acks_uid", "unique_id", "created_at"),
)

registered_events = Table(
    "registered_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("starts_at", Nanos, nullable=False),
    Column("ends_at", Nanos, nullable=False),
    Column("sport", String(100), nullable=False),
    Column("competition", String(200), nullable=False),
    Column("importance", Double, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", Nanos, nullable=False),
    Index("ix_registered_events_range", "starts_at", "ends_at"),
)

# retrain requests (POST /v1/retrain in any API process); the scheduler process claims and runs
# them, so the request need not reach the process that ticks
retrain_requests = Table(
    "retrain_requests",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("requested_at", Nanos, nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("started_at", Nanos),
    Column("finished_at", Nanos),
    Column("result", Text),
    Column("error", Text),
    Index("ix_retrain_requests_open", "finished_at", "started_at"),
)
