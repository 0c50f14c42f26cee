"""Write endpoints for operators (an ``operator`` bearer token): override or pause a service's
recommendations for a window, acknowledge or silence anomalies, register an event, trigger a
retrain. Every write is recorded in the audit log (kind ``operator``) with the token's name."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Path
from pydantic import Field, create_model

from surgecast.api_auth import AUTH_RESPONSES, Principal
from surgecast.api_common import ApiContext, BadParameter, json_value
from surgecast.api_models import (
    Ack,
    AckRequest,
    ErrorBody,
    Event,
    EventRequest,
    Override,
    OverrideRequest,
    RetrainStatus,
)
from surgecast.api_reads import override_out
from surgecast.errors import NotFound, StoreError
from surgecast.retrain_queue import retrain_status, run_retrain_requests
from surgecast.store import Store

__all__ = ["Conflict", "RetrainTrigger", "write_router"]

log = logging.getLogger(__name__)

MAX_WINDOW = pd.Timedelta(days=7)
_ERR = {"model": ErrorBody}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES, 404: {**_ERR, "description": "unknown service or object"},
    400: {**_ERR, "description": "the body is not JSON"},
}  # fmt: skip


class Conflict(Exception):
    """The request clashes with the current state (409)."""


class RetrainTrigger:
    """POST /v1/retrain: queue a retrain in the store for the process that runs the scheduler.

    With ``run`` (this process runs the scheduler in-process), the request is also claimed and
    run at once in a background thread; otherwise the scheduler's retrain-requests job picks it
    up within seconds (``surgecast run``'s scheduler child, or ``surgecast scheduler``).
    """

    def __init__(self, store: Store, run: Callable[[], Mapping[str, str]] | None) -> None:
        self.store = store
        self.run = run

    def start(self, requested_by: str) -> bool:
        """Queue a retrain; ``False`` if one is queued or running already."""
        _, created = self.store.request_retrain(requested_by, pd.Timestamp.now(tz="UTC"))
        if created and self.run is not None:
            threading.Thread(
                target=run_retrain_requests, args=(self.run, self.store), name="retrain-api",
                daemon=True,
            ).start()  # fmt: skip
        return created

    def status(self) -> dict[str, Any]:
        return json_value(retrain_status(self.store.retrain_status()))


def write_router(ctx: ApiContext, retrain: RetrainTrigger) -> APIRouter:
    """The operator routes (POST/DELETE) and the retrain status."""
    router = APIRouter(tags=["operator"])
    store = ctx.store
    operator = ctx.auth.require("operator")

    def audit(now: pd.Timestamp, service: str, decision: str, reason: str, who: Principal,
              inputs: Mapping[str, Any]) -> None:  # fmt: skip
        try:
            store.record_decisions([{
                "at": now, "service": service, "kind": "operator", "decision": decision,
                "reason": f"{reason} (by {who.name})", "inputs": json_value(dict(inputs)),
            }])  # fmt: skip
        except StoreError:  # the write itself is stored; say so in the log
            log.exception("audit of an operator action failed")

    def create_override(req: OverrideRequest, who: Principal = Depends(operator)) -> dict[str, Any]:
        """Override a service's recommendations for a window: `hold` exactly `replicas`, keep a
        `floor`, or `pause` at the current value. Shows at once in /v1/scaling and /metrics, is
        applied by the next tick, and ends at `end` (or earlier with DELETE)."""
        svc = ctx.settings.services.get(req.service)
        if svc is None:
            raise NotFound(f"unknown service {req.service!r}; known services: {', '.join(ctx.services)}")
        now = ctx.now()
        start = pd.Timestamp(req.start).tz_convert("UTC") if req.start else now
        if req.end is not None:
            end = pd.Timestamp(req.end).tz_convert("UTC")
        elif req.duration_s is not None:
            end = start + pd.Timedelta(seconds=req.duration_s)
        else:
            raise BadParameter("end", "give end or duration_s", where="body")
        if end <= max(start, now):
            raise BadParameter("end", "end must be after start and in the future", where="body")
        if end - start > MAX_WINDOW or start - now > pd.Timedelta(days=365):
            raise BadParameter("end", "an override may last at most 7 days and start within a year", where="body")
        if req.mode != "pause" and req.replicas is None:
            raise BadParameter("replicas", f"mode {req.mode!r} needs replicas", where="body")
        if req.replicas is not None and req.replicas > svc.max_replicas:
            raise BadParameter(
                "replicas", f"{req.replicas} is above max_replicas ({svc.max_replicas}) of "
                f"{req.service}; raise services.{req.service}.max_replicas first", where="body",
            )  # fmt: skip
        saved = store.save_override(
            req.service, req.mode, req.replicas, start, end, req.reason, who.name, now
        )
        what = f"{req.replicas} replicas" if req.mode != "pause" else "the current replicas"
        audit(now, req.service, f"override #{saved['id']}: {req.mode} {what} until {end:%Y-%m-%d %H:%M} UTC",
              req.reason, who, saved)  # fmt: skip
        ctx.view.invalidate()
        return override_out(saved, now)

    # the schema lists this deployment's services, so clients (and the fuzzer) know them
    create_override.__annotations__["req"] = create_model(
        "OverrideRequest", __base__=OverrideRequest,
        service=(Literal[tuple(ctx.services)], Field(description="a configured service")),
    )  # fmt: skip
    router.add_api_route(
        "/v1/overrides", create_override, methods=["POST"], response_model=Override,
        status_code=201, operation_id="create_override",
        responses={**_RESPONSES, 201: {"description": "the override", "links": {
            "GetOverride": {"operationId": "get_override",
                            "parameters": {"override_id": "$response.body#/id"}},
            "CancelOverride": {"operationId": "cancel_override",
                               "parameters": {"override_id": "$response.body#/id"}},
        }}},
    )  # fmt: skip

    @router.delete(
        "/v1/overrides/{override_id}", response_model=Override, responses=_RESPONSES,
        operation_id="cancel_override",
    )  # fmt: skip
    def cancel_override(
        override_id: int = Path(ge=1, le=2**53), who: Principal = Depends(operator)
    ) -> dict[str, Any]:
        """End an override now (idempotent); the plan answers again at once."""
        now = ctx.now()
        saved = store.cancel_override(override_id, now)  # NotFound (404) for an unknown id
        audit(now, saved["service"], f"override #{override_id} cancelled", "cancelled", who, saved)
        ctx.view.invalidate()
        return override_out(saved, now)

    @router.post("/v1/anomalies/acks", response_model=Ack, status_code=201, responses=_RESPONSES)
    def acknowledge(req: AckRequest, who: Principal = Depends(operator)) -> dict[str, Any]:
        """Acknowledge the anomalies of a series (the one at `ds`, or all so far), or silence
        them (one `kind` or all) until `until` (at most 7 days ahead). /v1/anomalies shows the
        state; the next tick resolves the covered alerts in Alertmanager."""
        now = ctx.now()
        ds = pd.Timestamp(req.ds).tz_convert("UTC") if req.ds else None
        until = pd.Timestamp(req.until).tz_convert("UTC") if req.until else None
        if req.action == "silence":
            if until is None or until <= now or until - now > MAX_WINDOW:
                raise BadParameter("until", "a silence needs 'until' within the next 7 days", where="body")
        elif until is not None:
            raise BadParameter("until", "'until' is for silences; an ack has none", where="body")
        if ds is not None and abs(ds - now) > pd.Timedelta(days=365):
            raise BadParameter("ds", "ds must be within a year of now", where="body")
        saved = store.save_ack(req.action, req.unique_id, req.kind, ds, until, req.reason, who.name, now)
        service = req.unique_id.split(":", 1)[0]
        audit(now, service, f"{req.action} #{saved['id']} of {req.unique_id}", req.reason, who, saved)
        return json_value(saved)

    @router.post("/v1/events", response_model=Event, status_code=201,
                 responses={**_RESPONSES, 409: {**_ERR, "description": "event_id exists"}})
    def register_event(req: EventRequest, who: Principal = Depends(operator)) -> dict[str, Any]:
        """Register an event the calendar does not know (an unscheduled promotion). The next
        ticks take it as a known future input: forecasts and alarm suppression see it."""
        now = ctx.now()
        start, end = pd.Timestamp(req.start).tz_convert("UTC"), pd.Timestamp(req.end).tz_convert("UTC")
        if end <= start or end - start > MAX_WINDOW:
            raise BadParameter("end", "end must be after start, at most 7 days later", where="body")
        if abs(start - now) > pd.Timedelta(days=365):
            raise BadParameter("start", "start must be within a year of now", where="body")
        event_id = req.event_id or f"op-{uuid.uuid4().hex[:12]}"
        if not store.registered_events(event_id=event_id).empty:
            raise Conflict(f"event {event_id!r} is already registered; choose another event_id")
        event = {
            "event_id": event_id, "name": req.name, "start": start, "end": end,
            "sport": req.sport, "competition": req.competition, "importance": req.importance,
        }  # fmt: skip
        store.save_event(event, who.name, now)
        audit(now, "*", f"event {event_id} registered: {req.name}", req.name, who, event)
        return {**json_value(event), "registered": True}

    @router.post("/v1/retrain", response_model=RetrainStatus, status_code=202,
                 responses=AUTH_RESPONSES)
    def trigger_retrain(who: Principal = Depends(operator)) -> dict[str, Any]:
        """Queue the retrain job (model selection by backtest); the process that runs the
        scheduler runs it within seconds. One at a time: a request while one is queued or
        running returns that one's status."""
        if retrain.start(who.name):
            audit(ctx.now(), "*", "retrain requested", "triggered through the API", who, {})
        return retrain.status()

    @router.get("/v1/retrain", response_model=RetrainStatus,
                dependencies=ctx.auth.read_dependencies(), responses=ctx.auth.read_responses())
    def get_retrain_status() -> dict[str, Any]:
        """The newest retrain request: queued, running (on the scheduler's process) or
        finished, with the model chosen per series or the error."""
        return retrain.status()

    return router
