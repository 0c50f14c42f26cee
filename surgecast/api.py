"""The HTTP API (FastAPI). Build it with :func:`create_app`; nothing is created at import time.

Routes live in three modules: this one (health, current recommendations, series points),
:mod:`surgecast.api_reads` (KEDA scaling contract, ``/metrics``, paged read views) and
:mod:`surgecast.api_writes` (operator actions). Bearer-token auth: :mod:`surgecast.api_auth`.

Errors map to HTTP codes in one place, always as ``{"detail": [{"msg", "type", "loc"?}]}``::

    DataError (and BadParameter)   422   loc names the offending parameter
    NotFound                       404
    Gone                           410 (a cancelled override)
    AuthError                      401 missing/invalid token, 403 scope too low
    Conflict                       409
    SourceUnavailable, StoreError  503
    any other SurgecastError       500
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from surgecast.api_auth import AuthError, TokenAuth
from surgecast.api_common import (
    MAX_RANGE,
    ApiContext,
    BadParameter,
    EventsProvider,
    IsoTime,
    json_value,
    present_recommendation,
    time_range,
)
from surgecast.api_models import (
    ErrorBody,
    Health,
    PointsResponse,
    Readiness,
    Recommendation,
    SeriesSummary,
)
from surgecast.api_reads import read_router
from surgecast.api_scaling import ScalingView, current_recommendations
from surgecast.api_writes import Conflict, RetrainTrigger, write_router
from surgecast.clock import Clock, system_clock
from surgecast.config import Settings
from surgecast.errors import (
    DataError,
    Gone,
    NotFound,
    SourceUnavailable,
    StoreError,
    SurgecastError,
)
from surgecast.scheduler import ServiceState
from surgecast.store import Store

__all__ = ["MAX_POINTS_RANGE", "create_app"]

MAX_POINTS_RANGE = MAX_RANGE
# most specific first: the first match decides
_STATUS = {DataError: 422, Gone: 410, NotFound: 404, SourceUnavailable: 503, StoreError: 503}
_404: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown service or series"}
}


def _error(
    status: int, message: str, loc: list[str] | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    detail: dict[str, Any] = {"msg": message, "type": "surgecast_error"}
    if loc:
        detail["loc"] = loc
    return JSONResponse(status_code=status, content={"detail": [detail]}, headers=headers)


def create_app(
    settings: Settings,
    store: Store,
    state: ServiceState | None = None,
    clock: Clock = system_clock,
    *,
    calendar: EventsProvider | None = None,
    retrain: Callable[[], Mapping[str, str]] | None = None,
    process_info: Callable[[], dict[str, Any]] | None = None,
) -> FastAPI:
    """Build the API over ``store``.

    Args:
        settings: the service settings (``settings.api``: tokens, read protection, cache).
        store: where ticks write.
        state: this process's tick state, if it runs the scheduler (shown by /readyz; a finished
            tick refreshes the scaling answers at once).
        clock: the clock the ticks use (an accelerated demo clock runs ahead of the wall).
        calendar: the fixtures calendar (for /v1/fixtures; registered events are added).
        retrain: the retrain job, if this process runs the scheduler in-process: a request
            (POST /v1/retrain) runs at once; without it, requests wait in the store for the
            scheduler's process.
        process_info: what /readyz says about the scheduler when it runs in another process
            (``surgecast run``'s child); ``state`` speaks for an in-process one.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> app = create_app(Settings(), Store("sqlite://"))
        >>> sorted(TestClient(app).get("/healthz").json())  # "now": the service's clock
        ['now', 'status']
    """
    app = FastAPI(
        title="surgecast",
        version="0.1.0",
        description="Predictive capacity and anomaly detection for betting platforms.",
    )
    services = sorted(settings.services)
    auth = TokenAuth(settings.api)
    view = ScalingView(settings, store, state, clock)
    ctx = ApiContext(settings, store, state, view, auth, calendar)
    app.state.context = ctx

    @app.exception_handler(SurgecastError)
    async def _surgecast_error(request: Request, exc: SurgecastError) -> JSONResponse:
        if isinstance(exc, BadParameter):
            return _error(422, str(exc), [exc.where, exc.field])
        status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 500)
        return _error(status, str(exc), ["request"] if status == 422 else None)

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.message, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Allow lists every method of the path, not of one route
            methods = {
                m for r in app.router.routes if isinstance(r, APIRoute)
                and r.matches(request.scope)[0] != Match.NONE for m in (r.methods or ())
            }  # fmt: skip
            headers["Allow"] = ", ".join(sorted(methods))
        return _error(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> JSONResponse:
        return _error(409, str(exc))

    @app.get("/healthz", tags=["health"], response_model=Health)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers, with the time on the service's clock (what the
        dashboard takes as now, so a --speed demo or a replayed clock shows consistently)."""
        return {"status": "ok", "now": view.now().isoformat()}

    @app.get(
        "/readyz", tags=["health"], response_model=Readiness,
        responses={503: {"model": Readiness, "description": "not ready (problems says why)"}},
    )  # fmt: skip
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
            age = (now - last["finished_at"]).total_seconds()
            if age > 3 * settings.tick_interval_seconds + 60:
                problems.append(f"last tick finished {age:.0f} s ago")
        elif not problems:
            problems.append("no tick has finished yet")
        body = {
            "ready": not problems,
            "problems": problems,
            "last_tick_age_s": age,
            "process": state.snapshot() if state else (process_info() if process_info else None),
        }
        return JSONResponse(status_code=200 if not problems else 503, content=json_value(body))

    read_deps = auth.read_dependencies()
    read_responses = auth.read_responses()

    @app.get(
        "/v1/recommendations", tags=["recommendations"], response_model=list[Recommendation],
        dependencies=read_deps, responses=read_responses,
    )  # fmt: skip
    def recommendations() -> list[dict[str, Any]]:
        """The newest recommendation of every service."""
        now = view.now()
        return [present_recommendation(r, now) for _, r in sorted(current_recommendations(store, services, now).items())]

    @app.get(
        "/v1/recommendations/{service}", tags=["recommendations"], response_model=Recommendation,
        dependencies=read_deps, responses={**read_responses, **_404},
    )  # fmt: skip
    def recommendation(service: str) -> dict[str, Any]:
        """The newest recommendation of one service (404 if the service is unknown)."""
        if service not in services:
            raise NotFound(f"unknown service {service!r}; known services: {', '.join(services)}")
        now = view.now()
        rec = current_recommendations(store, services, now).get(service)
        if rec is None:
            raise NotFound(f"no recommendation for {service!r} yet; the first tick has not finished")
        return present_recommendation(rec, now)

    @app.get(
        "/v1/series", tags=["series"], response_model=list[SeriesSummary],
        dependencies=read_deps, responses=read_responses,
    )  # fmt: skip
    def series() -> list[dict[str, Any]]:
        """Every series in the store with its first and last point and point count."""
        summary = store.series_summary()
        return [json_value(row) for row in summary.to_dict(orient="records")]

    @app.get(
        "/v1/series/{unique_id}/points", tags=["series"], response_model=PointsResponse,
        dependencies=read_deps, responses={**read_responses, **_404},
    )  # fmt: skip
    def points(
        unique_id: str,
        start: IsoTime | None = Query(None, description="inclusive, ISO 8601; default end - 24 h"),
        end: IsoTime | None = Query(None, description="exclusive, ISO 8601; default now"),
        limit: int = Query(10_000, ge=1, le=100_000, description="at most this many points"),
    ) -> dict[str, Any]:
        """Points of one series in ``[start, end)``, at most 31 days per request."""
        if store.read_points(unique_id, limit=1).empty:
            raise NotFound(f"unknown series {unique_id!r}; GET /v1/series lists the known ones")
        start_ts, end_ts = time_range(
            start, end, now=view.now(), default_span=pd.Timedelta(hours=24)
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
                {"ds": ds.isoformat(), "y": json_value(float(y))}
                for ds, y in zip(frame["ds"], frame["y"], strict=True)
            ],
        }

    app.include_router(read_router(ctx))
    app.include_router(write_router(ctx, RetrainTrigger(store, retrain)))
    return app
