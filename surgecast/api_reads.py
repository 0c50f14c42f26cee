"""Read endpoints: the KEDA scaling contract, ``/metrics``, and the paged views people and the
dashboard use. Every list is bounded: ``limit`` (at most 1000) and a time range of at most 31
days; a truncated list gives ``next_end``, the ``end`` of the next (older) page."""

from __future__ import annotations

import json
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from surgecast.api_common import (
    ApiContext,
    BadParameter,
    IsoTime,
    json_value,
    page,
    present_recommendation,
    time_range,
)
from surgecast.api_metrics import build_registry
from surgecast.api_models import (
    AlertPage,
    AnomalyPage,
    AuditPage,
    ErrorBody,
    FixturesResponse,
    ForecastResponse,
    ModelEntry,
    Override,
    RecommendationPage,
    ScalingResponse,
)
from surgecast.errors import Gone, NotFound
from surgecast.store_operator import silenced
from surgecast.store_records import AUDIT_KINDS

__all__ = ["override_out", "read_router"]

Limit = Query(100, ge=1, le=1000, description="at most this many items per page")
Start = Query(None, description="inclusive, ISO 8601")
End = Query(None, description="exclusive, ISO 8601 (a page's next_end)")
Responses = dict[int | str, dict[str, Any]]
_404: Responses = {404: {"model": ErrorBody, "description": "unknown service, series or object"}}
_503: Responses = {503: {"model": ErrorBody, "description": "no recommendation yet, or the store is down"}}
AuditKind = Literal[AUDIT_KINDS]  # type: ignore[valid-type]
_H = pd.Timedelta(hours=1)
OverrideId = Path(ge=1, le=2**53, description="the id POST /v1/overrides returned")


def override_out(o: dict[str, Any], now: pd.Timestamp) -> dict[str, Any]:
    active = o["cancelled_at"] is None and o["starts_at"] <= now < o["ends_at"]
    return {**json_value(o), "active": active}


def _model_entry(entry: dict[str, Any]) -> dict[str, Any]:
    meta = entry.get("metadata") or {}
    return json_value({
        "unique_id": entry["unique_id"], "model": entry["model"], "version": entry["version"],
        "created_at": entry["created_at"], "scores": meta.get("scores") or {},
        "training_window": meta.get("training_window"),
        "backtest_windows": meta.get("backtest_windows"), "metadata": meta,
    })  # fmt: skip


def _firing(payload: dict[str, Any], now: pd.Timestamp) -> bool:
    listed = payload.get("alerts")
    alerts: list[Any] = listed if isinstance(listed, list) else [payload]
    for alert in alerts:
        try:
            ends = pd.Timestamp(alert.get("endsAt"))
        except (TypeError, ValueError):
            return True
        if ends is pd.NaT or ends.tz_convert("UTC") > now:
            return True
    return False


def read_router(ctx: ApiContext) -> APIRouter:
    """The GET routes (open, or token-protected when ``api.read_requires_token``)."""
    router = APIRouter(dependencies=ctx.auth.read_dependencies(), responses=ctx.auth.read_responses())
    store = ctx.store
    registry = build_registry(ctx.view)

    def known_service(service: str) -> None:
        if service not in ctx.settings.services:
            known = ", ".join(ctx.services)
            raise NotFound(f"unknown service {service!r}; known services: {known}")

    @router.get(
        "/v1/scaling/{service}", response_model=ScalingResponse, tags=["autoscaling"],
        responses={**_404, **_503}, operation_id="get_scaling",
    )  # fmt: skip
    async def scaling(service: str) -> Response:
        """The KEDA `metrics-api` answer: `forecast_rps` (trigger on it with `targetValue` =
        `capacity_per_replica`) or `recommended_replicas` (`targetValue` 1). Served from memory;
        past `valid_until` it says `stale: true` and never asks for less than the current load
        needs."""
        if ctx.view.in_memory:
            answer = ctx.view.answer(service)
        else:
            answer = await run_in_threadpool(ctx.view.answer, service)
        # already JSON-native: skip the response model's validation on the hot path (the
        # tests and schemathesis hold the body to ScalingResponse)
        return Response(json.dumps(answer, allow_nan=False), media_type="application/json")

    @router.get(
        "/metrics", tags=["autoscaling"], response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                         "description": "Prometheus text format 0.0.4"}},
    )  # fmt: skip
    def metrics() -> Response:
        """Prometheus gauges: forecasts, recommended replicas, throttling, anomaly scores, health."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    @router.get(
        "/v1/recommendations/{service}/history", response_model=RecommendationPage,
        tags=["recommendations"], responses=_404,
    )  # fmt: skip
    def recommendation_history(
        service: str, start: IsoTime | None = Start, end: IsoTime | None = End, limit: int = Limit
    ) -> dict[str, Any]:
        """Recommendations of one service in `[start, end)` (default: the last 24 h), newest page
        first, oldest first within a page."""
        known_service(service)
        now = ctx.now()
        s, e = time_range(start, end, now=now, default_span=24 * _H)
        rows = store.recommendation_history(service, start=s, end=e, limit=limit + 1)
        items, next_end = page(rows, limit, lambda r: r["at"])
        return {
            "service": service,
            "items": [present_recommendation(r, now) for r in items],
            "next_end": json_value(next_end),
        }

    @router.get(
        "/v1/series/{unique_id}/forecast", response_model=ForecastResponse, tags=["series"],
        responses=_404,
    )  # fmt: skip
    def forecast(
        unique_id: str, start: IsoTime | None = Start, end: IsoTime | None = End
    ) -> dict[str, Any]:
        """The stored forecast of one series in `[start, end)` (default: now - 1 h .. now + 24 h)."""
        if store.read_points(unique_id, limit=1).empty:
            raise NotFound(f"unknown series {unique_id!r}; GET /v1/series lists the known ones")
        s, e = time_range(
            start, end, now=ctx.now(), default_span=25 * _H, default_end_ahead=24 * _H
        )
        frame = store.read_forecast(unique_id, start=s, end=e)
        points = json_value(frame.drop(columns=["unique_id"]).to_dict(orient="records"))
        return {"unique_id": unique_id, "start": s.isoformat(), "end": e.isoformat(), "points": points}

    @router.get("/v1/anomalies", response_model=AnomalyPage, tags=["anomalies"])
    def anomalies(
        service: str | None = Query(None, description="series of this service"),
        unique_id: str | None = Query(None, description="one series"),
        kind: str | None = Query(None, description="spike, drop, level_shift, ratio, absent, ..."),
        start: IsoTime | None = Start,
        end: IsoTime | None = End,
        limit: int = Limit,
    ) -> dict[str, Any]:
        """Flagged anomalies in `[start, end)` (default: the last 24 h) with their
        acknowledgement and silence state."""
        s, e = time_range(start, end, now=ctx.now(), default_span=24 * _H)
        frame = store.find_anomalies(
            service=service, unique_id=unique_id, kind=kind, start=s, end=e, limit=limit + 1
        )
        rows = frame.to_dict(orient="records")
        items, next_end = page(rows, limit, lambda r: r["ds"])
        acks = store.acks(sorted({r["unique_id"] for r in items}),
                          covering=min(r["ds"] for r in items)) if items else []
        out = []
        for r in items:
            ack = silenced(acks, r["unique_id"], r["kind"], r["ds"])
            r.pop("is_anomaly", None)
            out.append({
                **json_value(r), "acknowledged": ack is not None and ack["action"] == "ack",
                "silenced": ack is not None and ack["action"] == "silence",
                "ack_id": ack["id"] if ack is not None else None,
            })  # fmt: skip
        return {"items": out, "next_end": json_value(next_end)}

    @router.get("/v1/alerts", response_model=AlertPage, tags=["alerts"])
    def alerts(
        status: Literal["pending", "delivered", "failed"] | None = Query(None),
        start: IsoTime | None = Start,
        end: IsoTime | None = End,
        limit: int = Limit,
    ) -> dict[str, Any]:
        """Alerts of the outbox created in `[start, end)` (default: the last 7 days): delivery
        state (`pending`, `delivered`, `failed`) and whether the alert is still firing."""
        now = ctx.now()
        s, e = time_range(start, end, now=now, default_span=pd.Timedelta(days=7))
        rows = store.list_alerts(status=status, start=s, end=e, limit=limit + 1)
        items, next_end = page(rows, limit, lambda r: r["created_at"])
        out = [{**json_value(r), "firing": _firing(r["payload"] or {}, now)} for r in items]
        return {"items": out, "next_end": json_value(next_end)}

    @router.get("/v1/audit", response_model=AuditPage, tags=["audit"])
    def audit(
        service: str | None = Query(None),
        kind: AuditKind | None = Query(None),
        start: IsoTime | None = Start,
        end: IsoTime | None = End,
        limit: int = Limit,
    ) -> dict[str, Any]:
        """The audit log in `[start, end)` (default: the last 24 h): every recommendation,
        throttling advice, alert and operator action, with its reason and inputs."""
        s, e = time_range(start, end, now=ctx.now(), default_span=24 * _H)
        rows = store.audit(service=service, kind=kind, start=s, end=e, limit=limit + 1)
        items, next_end = page(rows, limit, lambda r: r["at"])
        return {"items": json_value(items), "next_end": json_value(next_end)}

    @router.get("/v1/models", response_model=list[ModelEntry], tags=["models"])
    def models() -> list[dict[str, Any]]:
        """The model chosen for each series by the retrain job, with its backtest scores."""
        return [_model_entry(e) for _, e in sorted(store.latest_models().items())]

    @router.get(
        "/v1/models/{unique_id}", response_model=list[ModelEntry], tags=["models"], responses=_404
    )
    def model_versions(unique_id: str, limit: int = Query(20, ge=1, le=200)) -> list[dict[str, Any]]:
        """The registry entries of one series, newest first."""
        entries = store.model_history(unique_id, limit=limit)
        if not entries:
            raise NotFound(f"no model is registered for {unique_id!r}; GET /v1/models lists them")
        return [_model_entry(e) for e in entries]

    @router.get("/v1/fixtures", response_model=FixturesResponse, tags=["fixtures"])
    def fixtures(start: IsoTime | None = Start, end: IsoTime | None = End) -> dict[str, Any]:
        """Events overlapping `[start, end)` (default: now - 3 h .. now + 2 days): the fixtures
        calendar and the events operators registered."""
        s, e = time_range(
            start, end, now=ctx.now(), default_span=51 * _H, default_end_ahead=48 * _H
        )
        frames = []
        if ctx.calendar is not None:
            try:
                frames.append(ctx.calendar(s, e).assign(registered=False))
            except ValueError as exc:  # e.g. a range the simulator's calendar does not cover
                raise BadParameter("start", f"the fixtures calendar cannot serve {s}..{e}: {exc}") from exc
        frames.append(store.registered_events(s, e).assign(registered=True))
        rows = [r for f in frames if len(f) for r in f.to_dict(orient="records")]
        rows.sort(key=lambda r: (r["start"], str(r["event_id"])))
        keys = ("event_id", "name", "start", "end", "sport", "competition", "importance", "registered")
        events = [{k: json_value(r.get(k)) for k in keys} for r in rows]
        for ev in events:
            ev["event_id"] = str(ev["event_id"])
        return {"start": s.isoformat(), "end": e.isoformat(), "events": events}

    @router.get("/v1/overrides", response_model=list[Override], tags=["operator"])
    def overrides(
        service: str | None = Query(None),
        active: bool = Query(False, description="only those in force now"),
        limit: int = Limit,
    ) -> list[dict[str, Any]]:
        """Operator overrides, newest first."""
        now = ctx.now()
        rows = store.overrides(service=service, active_at=now if active else None, limit=limit)
        return [override_out(o, now) for o in rows]

    @router.get(
        "/v1/overrides/{override_id}", response_model=Override, tags=["operator"],
        responses={**_404, 410: {"model": ErrorBody, "description": "cancelled (DELETE)"}},
        operation_id="get_override",
    )  # fmt: skip
    def get_override(override_id: int = OverrideId) -> dict[str, Any]:
        """One override; 410 once cancelled (it stays in `GET /v1/overrides`, with its
        `cancelled_at`, and in the audit log)."""
        found = store.override(override_id)
        if found["cancelled_at"] is not None:
            raise Gone(
                f"override {override_id} was cancelled at {found['cancelled_at'].isoformat()}; "
                "GET /v1/overrides lists it with cancelled_at"
            )
        return override_out(found, ctx.now())

    return router
