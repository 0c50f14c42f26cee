"""The typed request and response bodies of the HTTP API (they make the OpenAPI schema).

Times are ISO 8601 with a timezone, UTC on output. Numbers a model could not produce are
``null``, never NaN.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "Ack",
    "AckRequest",
    "AlertItem",
    "AlertPage",
    "Anomaly",
    "AnomalyPage",
    "AuditEntry",
    "AuditPage",
    "ErrorBody",
    "Event",
    "EventRequest",
    "FixturesResponse",
    "ForecastPoint",
    "ForecastResponse",
    "Health",
    "ModelEntry",
    "Override",
    "OverrideInfo",
    "OverrideRequest",
    "PointsResponse",
    "Readiness",
    "Recommendation",
    "RecommendationPage",
    "RetrainStatus",
    "ScalingResponse",
    "SeriesSummary",
]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Out):
    msg: str
    type: str
    loc: list[str | int] | None = None


class ErrorBody(_Out):
    """Every error: ``{"detail": [{"msg", "type", "loc"?}]}`` (FastAPI's 422 shape)."""

    detail: list[ErrorDetail]


class Health(_Out):
    status: Literal["ok"]
    now: datetime = Field(
        description="the service's clock (the wall clock, or a --speed demo's simulated time)"
    )


class Readiness(_Out):
    ready: bool
    problems: list[str]
    last_tick_age_s: float | None
    process: dict[str, Any] | None


class OverrideInfo(_Out):
    """An operator override applied to a recommendation."""

    id: int | None
    mode: Literal["hold", "floor", "pause"]
    replicas: int
    computed_replicas: int = Field(description="what the plan recommended without the override")
    ends_at: datetime
    reason: str | None
    created_by: str | None


class ScalingResponse(_Out):
    """The KEDA ``metrics-api`` contract: one JSON object, numbers at the top level."""

    service: str
    forecast_rps: float = Field(
        description="load to provision for over the lead window (forecast peak; raised to the "
        "current load when stale; recommended_replicas x capacity_per_replica under an override)"
    )
    recommended_replicas: int
    capacity_per_replica: float = Field(
        description="load one replica is planned to carry (capacity x target utilisation): the "
        "targetValue when scaling on forecast_rps"
    )
    horizon_s: int = Field(description="lead window the forecast covers (startup + margin)")
    model: str
    stale: bool
    valid_until: datetime | None
    at: datetime = Field(description="when the recommendation was made")
    current_rps: float | None = Field(description="newest observed load, if recent")
    override: OverrideInfo | None
    reason: str


class Recommendation(_Out):
    service: str
    at: datetime
    valid_until: datetime | None
    current_replicas: int | None
    recommended_replicas: int
    throttle_rps: float | None
    reason: str
    inputs: dict[str, Any]
    stale: bool
    model: str


class RecommendationPage(_Out):
    service: str
    items: list[Recommendation]
    next_end: datetime | None = Field(description="pass as 'end' for the next (older) page")


class SeriesSummary(_Out):
    unique_id: str
    first_ds: datetime | None
    last_ds: datetime | None
    n_points: int


class Point(_Out):
    ds: datetime
    y: float | None


class PointsResponse(_Out):
    unique_id: str
    start: datetime
    end: datetime
    truncated: bool
    points: list[Point]


class ForecastPoint(_Out):
    ds: datetime
    yhat: float | None
    yhat_lower: float | None
    yhat_upper: float | None
    model: str
    level: float | None
    created_at: datetime


class ForecastResponse(_Out):
    unique_id: str
    start: datetime
    end: datetime
    points: list[ForecastPoint]


class Anomaly(_Out):
    unique_id: str
    ds: datetime
    y: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    score: float | None
    kind: str | None
    detector: str
    acknowledged: bool
    silenced: bool
    ack_id: int | None


class AnomalyPage(_Out):
    items: list[Anomaly]
    next_end: datetime | None


class AlertItem(_Out):
    id: int
    dedup_key: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    firing: bool = Field(description="the alert's endsAt is still ahead")
    payload: dict[str, Any]


class AlertPage(_Out):
    items: list[AlertItem]
    next_end: datetime | None


class AuditEntry(_Out):
    id: int
    at: datetime
    service: str
    kind: str
    decision: str
    reason: str
    inputs: dict[str, Any]


class AuditPage(_Out):
    items: list[AuditEntry]
    next_end: datetime | None


class ModelEntry(_Out):
    unique_id: str
    model: str
    version: str
    created_at: datetime
    scores: dict[str, Any]
    training_window: list[Any] | None
    backtest_windows: int | None
    metadata: dict[str, Any]


class Event(_Out):
    event_id: str
    name: str | None
    start: datetime
    end: datetime
    sport: str | None
    competition: str | None
    importance: float | None
    registered: bool = Field(description="registered through the API (not from the calendar)")


class FixturesResponse(_Out):
    start: datetime
    end: datetime
    events: list[Event]


class Override(_Out):
    id: int
    service: str
    mode: Literal["hold", "floor", "pause"]
    replicas: int | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None
    active: bool


class OverrideRequest(_In):
    """Override a service's recommendations for a window, e.g. hold 40 replicas for the final."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"service": "bet-placement", "mode": "hold", "replicas": 40, "duration_s": 10_800,
         "reason": "hold 40 replicas for the final"},
    ]})  # fmt: skip

    service: str = Field(min_length=1, max_length=200)
    mode: Literal["hold", "floor", "pause"] = "hold"
    replicas: int | None = Field(None, ge=0, le=10_000, description="required for hold and floor")
    start: AwareDatetime | None = Field(None, description="default: now")
    end: AwareDatetime | None = Field(None, description="give end or duration_s")
    duration_s: int | None = Field(None, ge=60, le=7 * 86_400)
    reason: str = Field(min_length=1, max_length=1000)


class Ack(_Out):
    id: int
    action: Literal["ack", "silence"]
    unique_id: str
    kind: str | None
    ds: datetime | None
    until: datetime | None
    reason: str
    created_by: str
    created_at: datetime


class AckRequest(_In):
    """Acknowledge anomalies of a series (one at ``ds``, or all so far), or silence them until
    ``until`` (one ``kind`` or all)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"action": "ack", "unique_id": "payments:deposit_failures_per_second",
         "reason": "payment provider incident, handled"},
    ]})  # fmt: skip

    action: Literal["ack", "silence"] = "ack"
    unique_id: str = Field(min_length=1, max_length=200)
    kind: str | None = Field(None, min_length=1, max_length=50)
    ds: AwareDatetime | None = None
    until: AwareDatetime | None = Field(None, description="required for a silence")
    reason: str = Field(min_length=1, max_length=1000)


class EventRequest(_In):
    """An event the calendar does not know (an unscheduled promotion, a rescheduled match)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Acca boost night", "start": "2026-12-05T18:00:00Z",
         "end": "2026-12-05T22:00:00Z", "importance": 2.0},
    ]})  # fmt: skip

    event_id: str | None = Field(None, min_length=1, max_length=200, description="default: generated")
    name: str = Field(min_length=1, max_length=200)
    start: AwareDatetime
    end: AwareDatetime
    sport: str = Field("promotion", min_length=1, max_length=100)
    competition: str = Field("operator", min_length=1, max_length=200)
    importance: float = Field(1.0, ge=0, le=10)


class RetrainStatus(_Out):
    state: Literal["none", "queued", "running", "finished"] = Field(
        description="none before the first request; queued until the scheduler's process claims it"
    )
    running: bool = Field(description="queued or running")
    requested_at: datetime | None
    requested_by: str | None
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, str] | None = Field(description="series -> chosen model (or its error)")
    error: str | None
