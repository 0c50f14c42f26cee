"""The HTTP API (FastAPI). Build it with :func:`create_app`; nothing is created at import time.

Errors of the :mod:`surgecast.errors` tree map to HTTP codes in one handler: ``DataError`` 422,
``NotFound`` 404, ``SourceUnavailable`` / ``StoreError`` 503, anything else of the tree 500.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from surgecast.clock import Clock, system_clock
from surgecast.config import Settings
from surgecast.errors import (
    DataError,
    NotFound,
    SourceUnavailable,
    StoreError,
    SurgecastError,
)
from surgecast.scheduler import ServiceState
from surgecast.store import Store

__all__ = ["MAX_POINTS_RANGE", "create_app"]

MAX_POINTS_RANGE = pd.Timedelta(days=31)
_STATUS = {DataError: 422, NotFound: 404, SourceUnavailable: 503, StoreError: 503}


def _json_value(value: Any) -> Any:
    if isinstance(value, pd.Timestamp | datetime):
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _json_value(value.item())
    return value


def _utc(value: datetime | None) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    detail: dict[str, Any] = {"msg": message, "type": "surgecast_error"}
    if field:
        detail["loc"] = ["query", field]
    return JSONResponse(status_code=status, content={"detail": [detail]})


def create_app(
    settings: Settings,
    store: Store,
    state: ServiceState | None = None,
    clock: Clock = system_clock,
) -> FastAPI:
    """Build the API over ``store``.

    Args:
        settings: the service settings.
        store: where ticks write.
        state: this process's tick state, if it runs the scheduler (shown by /readyz).
        clock: the clock the ticks use (an accelerated demo clock runs ahead of the wall).
    """
    app = FastAPI(
        title="surgecast",
        version="0.1.0",
        description="Predictive capacity and anomaly detection for betting platforms.",
    )
    services = sorted(settings.services)

    @app.exception_handler(SurgecastError)
    async def _surgecast_error(request: Request, exc: SurgecastError) -> JSONResponse:
        status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 500)
        return _error(status, str(exc))

    def present(rec: dict[str, Any], now: pd.Timestamp) -> dict[str, Any]:
        out = _json_value(dict(rec))
        valid_until = _utc(rec.get("valid_until"))
        # a recommendation past its validity is stale whatever it said when written
        out["stale"] = bool(rec.get("stale")) or (valid_until is not None and now > valid_until)
        return out

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Readiness: the store answers and the last tick is recent."""
        problems: list[str] = []
        last = None
        try:
            store.ping()
            last = store.last_tick()
        except SurgecastError as exc:
            problems.append(f"store: {exc}")
        now = pd.Timestamp.now(tz="UTC")
        age = None
        if last is not None:
            age = (now - _utc(last["finished_at"])).total_seconds()  # type: ignore[operator]
            if age > 3 * settings.tick_interval_seconds + 60:
                problems.append(f"last tick finished {age:.0f} s ago")
        elif not problems:
            problems.append("no tick has finished yet")
        body = {
            "ready": not problems,
            "problems": problems,
            "last_tick_age_s": age,
            "process": state.snapshot() if state else None,
        }
        return JSONResponse(status_code=200 if not problems else 503, content=_json_value(body))

    def now_utc() -> pd.Timestamp:
        ts = pd.Timestamp(clock())
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")

    def current(now: pd.Timestamp) -> dict[str, dict[str, Any]]:
        """Newest recommendation per known service made at or before ``now``."""
        out = {}
        for rec in store.latest_recommendations():
            if rec["service"] not in services:
                continue
            if _utc(rec["at"]) > now:  # type: ignore[operator]
                # written for a later time (a replay or a demo clock): serve what held at now
                older = store.recommendation_history(rec["service"], end=now, limit=1)
                if not older:
                    continue
                rec = older[-1]
            out[rec["service"]] = rec
        return out

    @app.get("/v1/recommendations", tags=["recommendations"])
    def recommendations() -> list[dict[str, Any]]:
        """The newest recommendation of every service."""
        now = now_utc()
        return [present(r, now) for _, r in sorted(current(now).items())]

    @app.get("/v1/recommendations/{service}", tags=["recommendations"])
    def recommendation(service: str) -> dict[str, Any]:
        """The newest recommendation of one service (404 if the service is unknown)."""
        if service not in services:
            raise NotFound(f"unknown service {service!r}; known services: {', '.join(services)}")
        now = now_utc()
        rec = current(now).get(service)
        if rec is None:
            raise NotFound(f"no recommendation for {service!r} yet; the first tick has not finished")
        return present(rec, now)

    @app.get("/v1/series", tags=["series"])
    def series() -> list[dict[str, Any]]:
        """Every series in the store with its first and last point and point count."""
        summary = store.series_summary()
        return [_json_value(row) for row in summary.to_dict(orient="records")]

    @app.get("/v1/series/{unique_id}/points", tags=["series"])
    def points(
        unique_id: str,
        start: datetime | None = Query(None, description="inclusive, ISO 8601; default end - 24 h"),
        end: datetime | None = Query(None, description="exclusive, ISO 8601; default now"),
        limit: int = Query(10_000, ge=1, le=100_000, description="at most this many points"),
    ) -> dict[str, Any]:
        """Points of one series in ``[start, end)``, at most 31 days per request."""
        if store.read_points(unique_id, limit=1).empty:
            raise NotFound(f"unknown series {unique_id!r}; GET /v1/series lists the known ones")
        end_ts = _utc(end) or now_utc()
        start_ts = _utc(start) or end_ts - pd.Timedelta(hours=24)
        if start_ts >= end_ts:
            return _error(422, "start must be before end", "start")  # type: ignore[return-value]
        if end_ts - start_ts > MAX_POINTS_RANGE:
            return _error(  # type: ignore[return-value]
                422,
                "the range start..end may span at most 31 days; page through longer ranges",
                "end",
            )
        frame = store.read_points(unique_id, start=start_ts, end=end_ts, limit=limit + 1)
        truncated = len(frame) > limit
        frame = frame.iloc[:limit]
        return {
            "unique_id": unique_id,
            "start": start_ts.isoformat(),
            "end": end_ts.isoformat(),
            "truncated": truncated,
            "points": [
                {"ds": ds.isoformat(), "y": _json_value(float(y))}
                for ds, y in zip(frame["ds"], frame["y"], strict=True)
            ],
        }

    return app
