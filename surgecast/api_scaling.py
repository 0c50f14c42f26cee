"""The autoscaler's view: the last good recommendation of every service, held in memory.

KEDA polls ``GET /v1/scaling/{service}`` every 15-30 s and gives up after 3 s, so the answer
never waits for the store: :class:`ScalingView` keeps a :class:`Snapshot` (newest
recommendations, the current load, the overrides not yet over) and refreshes it in a background
thread when it is older than ``api.scaling_cache_seconds`` or a tick of this process finished.
Only the very first request (nothing in memory yet) reads the store itself. A tick or a retrain
that holds the store busy therefore never slows the answer; a store that is down leaves the last
snapshot in place, whose recommendations then turn stale at their ``valid_until``.

:func:`scaling_answer` turns a snapshot entry into the KEDA JSON (pure, unit-tested):

- overrides apply as of the request time, so one shows at once and ends on time;
- past ``valid_until`` (or marked stale by the tick) the answer says ``stale: true`` and never
  recommends fewer replicas than the current load needs, nor less load than it asked before.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from actions.alerts import as_utc
from surgecast.api_overrides import active_by_service, apply_override, revert_override
from surgecast.config import ServiceSettings, Settings
from surgecast.errors import NotFound, SourceUnavailable
from surgecast.scheduler import ServiceState
from surgecast.store import Store

__all__ = ["ScalingView", "Snapshot", "needed_replicas", "scaling_answer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """What the scaling endpoint answers from, read from the store at ``taken_at``."""

    taken_at: pd.Timestamp
    recs: dict[str, dict[str, Any]] = field(default_factory=dict)
    loads: dict[str, tuple[pd.Timestamp, float]] = field(default_factory=dict)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    monotonic: float = 0.0
    ticks: int = -1


def needed_replicas(load: float, capacity_per_replica: float, utilization: float) -> int:
    """Replicas that carry ``load`` at ``utilization`` (at least 0)."""
    if not math.isfinite(load) or load <= 0:
        return 0
    return math.ceil(load / (capacity_per_replica * utilization) - 1e-9)


def current_recommendations(
    store: Store, services: Collection[str], now: pd.Timestamp
) -> dict[str, dict[str, Any]]:
    """The newest recommendation of each of ``services`` made at or before ``now``."""
    out = {}
    for rec in store.latest_recommendations():
        if rec["service"] not in services:
            continue
        if as_utc(rec["at"]) > now:
            # written for a later time (replay, demo clock): serve what held at now
            older = store.recommendation_history(rec["service"], end=now, limit=1)
            if not older:
                continue
            rec = older[-1]
        out[rec["service"]] = rec
    return out


def scaling_answer(
    service: str,
    svc: ServiceSettings,
    rec: Mapping[str, Any],
    now: pd.Timestamp,
    *,
    current_load: tuple[pd.Timestamp, float] | None,
    overrides: list[dict[str, Any]],
    stale_after_s: float,
) -> dict[str, Any]:
    """The KEDA answer for ``service`` at ``now`` from its last recommendation ``rec``.

    Args:
        service: the service name.
        svc: its settings (bounds and capacity, used when ``rec`` lacks them).
        rec: the newest recommendation made at or before ``now``.
        now: the request time.
        current_load: ``(ds, y)`` of the highest recent load point, if any.
        overrides: override records not over at the snapshot (filtered here by ``now``).
        stale_after_s: a load point older than this is not "current".
    """
    inputs = dict(rec.get("inputs") or {})
    active = active_by_service(
        o for o in overrides
        if o["service"] == service and o["cancelled_at"] is None
        and as_utc(o["starts_at"]) <= now < as_utc(o["ends_at"])
    ).get(service)  # fmt: skip
    plan = revert_override(rec) if inputs.get("override") else dict(rec)
    answer = apply_override(plan, active, int(plan["recommended_replicas"]))
    inputs = dict(answer.get("inputs") or {})
    cap = float(inputs.get("capacity_per_replica") or svc.capacity_per_replica)
    util = float(inputs.get("target_utilization") or svc.target_utilization)
    per_replica = cap * util
    replicas = int(answer["recommended_replicas"])
    peak = inputs.get("forecast_peak")
    forecast_rps = float(peak) if isinstance(peak, int | float) and math.isfinite(peak) else None
    load = None
    if current_load is not None and (now - current_load[0]).total_seconds() <= stale_after_s:
        load = float(current_load[1])
    valid_until = None if rec.get("valid_until") is None else as_utc(rec["valid_until"])
    stale = bool(rec.get("stale")) or (valid_until is not None and now > valid_until)
    reason = str(answer.get("reason", ""))
    if stale:
        # never fewer replicas than the current load needs, never less than was asked before
        need = needed_replicas(load, cap, util) if load is not None else 0
        floor = min(max(need, svc.min_replicas), max(svc.max_replicas, replicas))
        if floor > replicas:
            reason += f"; stale: raised to {floor} replicas for the current load ({load:.1f})"
            replicas = floor
        forecast_rps = max(forecast_rps or 0.0, load or 0.0, replicas * per_replica)
    if active is not None:
        held = replicas * per_replica
        forecast_rps = held if active["mode"] != "floor" else max(forecast_rps or 0.0, held)
    if forecast_rps is None:
        forecast_rps = replicas * per_replica
    return {
        "service": service,
        "forecast_rps": round(forecast_rps, 6),
        "recommended_replicas": replicas,
        "capacity_per_replica": round(per_replica, 6),
        "horizon_s": int(inputs.get("lead_time_s") or svc.startup_delay_seconds + svc.margin_seconds),
        "model": str(answer.get("model", "unknown")),
        "stale": stale,
        "valid_until": valid_until.isoformat() if valid_until is not None else None,
        "at": as_utc(answer["at"]).isoformat(),
        "current_rps": load,
        "override": inputs.get("override") if active is not None else None,
        "reason": reason,
    }


class ScalingView:
    """In-memory answers for the scaling endpoint and the replica gauges (thread-safe).

    Args:
        settings: the service settings (services, stale_after_seconds, api.scaling_cache_seconds).
        store: read in a background thread only (and on the very first request).
        state: this process's tick state, if it runs the scheduler: a finished tick triggers a
            refresh at once.
        clock: the request time (the tick's clock).
    """

    def __init__(
        self, settings: Settings, store: Store, state: ServiceState | None, clock: Any
    ) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self.clock = clock
        self.max_age = settings.api.scaling_cache_seconds
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()  # one refresh at a time
        self._refreshing = False

    def now(self) -> pd.Timestamp:
        return as_utc(self.clock())

    @property
    def in_memory(self) -> bool:
        """True when :meth:`answer` will not touch the store (a snapshot is held)."""
        return self._snapshot is not None and self.max_age > 0

    def load(self) -> Snapshot:
        """Read a fresh snapshot from the store (blocking) and keep it."""
        now = self.now()
        ticks = self.state.ticks if self.state is not None else -1
        recs = current_recommendations(self.store, self.settings.services, now)
        since = now - pd.Timedelta(seconds=self.settings.stale_after_seconds)
        uids = {self.settings.service_load_series(s): s for s in self.settings.services}
        loads: dict[str, tuple[pd.Timestamp, float]] = {}
        frame = self.store.newest_points(list(uids), since=since)
        for uid, ds, y in frame.itertuples(index=False):  # sorted by uid, ds: a few rows each
            if ds > now:
                continue
            service = uids[uid]
            highest = max(float(y), loads[service][1]) if service in loads else float(y)
            loads[service] = (ds, highest)  # (newest time, highest load in the window)
        overrides = [
            o for o in self.store.overrides(limit=500)
            if o["cancelled_at"] is None and o["ends_at"] > now
        ]  # fmt: skip
        snap = Snapshot(now, recs, loads, overrides, time.monotonic(), ticks)
        self._snapshot = snap
        return snap

    def snapshot(self) -> Snapshot:
        """The snapshot to answer from: memory, refreshed behind the caller when old."""
        snap = self._snapshot
        if snap is None or self.max_age == 0:
            with self._lock:
                return self.load()
        old = time.monotonic() - snap.monotonic > self.max_age
        ticked = self.state is not None and self.state.ticks != snap.ticks
        if (old or ticked) and not self._refreshing:
            self._refresh_in_background()
        return snap

    def invalidate(self) -> None:
        """Reload now (after a write: an override must show on the next request)."""
        with self._lock:
            try:
                self.load()
            except Exception:  # the write is stored; the next refresh will pick it up
                log.exception("scaling view: reload after a write failed")

    def _refresh_in_background(self) -> None:
        if not self._lock.acquire(blocking=False):
            return
        self._refreshing = True

        def run() -> None:
            try:
                self.load()
            except Exception:  # keep answering from the last snapshot
                log.exception("scaling view: refresh failed; answering from memory")
            finally:
                self._refreshing = False
                self._lock.release()

        threading.Thread(target=run, name="scaling-refresh", daemon=True).start()

    def answer(self, service: str) -> dict[str, Any]:
        """The KEDA JSON of ``service`` now.

        Raises:
            NotFound: the service is not configured.
            SourceUnavailable: no recommendation was ever made for it (before the first tick).
        """
        svc = self.settings.services.get(service)
        if svc is None:
            known = ", ".join(sorted(self.settings.services))
            raise NotFound(f"unknown service {service!r}; known services: {known}")
        snap = self.snapshot()
        rec = snap.recs.get(service)
        if rec is None:
            raise SourceUnavailable(
                f"no recommendation for {service!r} yet; the first tick has not finished"
            )
        return scaling_answer(
            service, svc, rec, self.now(), current_load=snap.loads.get(service),
            overrides=snap.overrides, stale_after_s=self.settings.stale_after_seconds,
        )  # fmt: skip
