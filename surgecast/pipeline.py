"""One tick of the service: collect → detect → forecast → plan → persist.

Each stage calls into the leaf packages through their interfaces. A failure in one series or one
stage is logged and recorded in the :class:`TickReport`, and never stops the others. Points are
collected incrementally from the per-series watermark in the store, so after a crash and restart
the next tick fills the gap with no duplicates.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from actions import CapacityBounds, describe_plan, plan_replicas
from actions.policy import ScaleGuard
from actions.throttle import TrafficClass, overload_window, throttle_plan
from collectors import Collector, CollectorUnavailable, SeriesRequest
from models.forecasting.catalog import CATALOG
from surgecast.alert_state import (
    AnomalyConditions,
    OutboxAlerts,
    lifecycle_policy,
    model_failure_alert,
    saturation_conditions,
    source_unavailable_alert,
    source_unavailable_key,
)
from surgecast.api_overrides import active_by_service, apply_override
from surgecast.clock import Clock, system_clock
from surgecast.config import SeriesSettings, ServiceSettings, Settings
from surgecast.detection import DetectionSuite
from surgecast.errors import DataError
from surgecast.event_forecasts import EventForecasts
from surgecast.executors import WebhookExecutor
from surgecast.forecasting import Choice, ChosenForecasts
from surgecast.frames import empty_series, is_canonical, validate_series
from surgecast.history import RecentHistory
from surgecast.registry import load_choice
from surgecast.retrain import RetrainPolicy, policy_from_settings, select_many
from surgecast.store import Store
from surgecast.store_operator import silenced

__all__ = ["Pipeline", "TickReport", "step_of"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
_NO_FORECAST = pd.DataFrame({"ds": pd.Series([], dtype="datetime64[ns, UTC]"), "yhat_upper": []})
EventsProvider = Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame]


@dataclass
class TickReport:
    """What one tick did: counts per stage, repairs made to input, and every error."""

    now: pd.Timestamp
    started_at: pd.Timestamp
    finished_at: pd.Timestamp | None = None
    points: dict[str, int] = field(default_factory=dict)
    fetched_from: dict[str, pd.Timestamp] = field(default_factory=dict)
    repairs: list[str] = field(default_factory=list)
    anomalies: int = 0
    alerts: int = 0
    forecasts: int = 0
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, stage: str, subject: str, exc: BaseException) -> None:
        log.warning("tick %s: %s failed for %s: %s", self.now, stage, subject, exc)
        self.errors.append(
            {"stage": stage, "subject": subject, "error": f"{type(exc).__name__}: {exc}"}
        )

    def summary(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "points": sum(self.points.values()),
            "series": len(self.points),
            "repairs": self.repairs[:20],
            "anomalies": self.anomalies,
            "alerts": self.alerts,
            "forecasts": self.forecasts,
            "recommendations": len(self.recommendations),
            "errors": self.errors[:50],
            "durations": {k: round(v, 3) for k, v in self.durations.items()},
        }


def step_of(step: str) -> pd.Timedelta:
    """Parse a step such as ``1min`` or ``60s``; raise ``ValueError`` with the offending text."""
    try:
        delta = pd.Timedelta(step)
    except ValueError as exc:
        raise ValueError(f"step {step!r} is not a duration such as '1min' or '60s'") from exc
    if delta <= pd.Timedelta(0):
        raise ValueError(f"step {step!r} must be positive")
    return delta


class Pipeline:
    """The tick, with everything it needs injected: settings, store, collectors, clock."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        collectors: Mapping[str, Collector],
        series: list[SeriesSettings],
        *,
        events: EventsProvider | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.settings = settings
        self.store = store
        self.collectors = dict(collectors)
        self.series = list(series)
        self.events = events
        self.clock = clock
        # set by the process on shutdown so a long backfill stops between series
        self.stop_requested = threading.Event()
        fcfg = settings.forecast
        use_events = events is not None and fcfg.event_model == "seasonal_events"
        window = max(
            fcfg.history_days, settings.detect.history_days, fcfg.event_history_days if use_events else 0
        )
        self.history = RecentHistory(pd.Timedelta(days=window))
        self.event_forecasts = (
            EventForecasts(
                events,  # type: ignore[arg-type]
                refit=pd.Timedelta(minutes=fcfg.event_refit_minutes),
                history=pd.Timedelta(days=fcfg.event_history_days),
            )
            if use_events
            else None
        )
        dcfg = settings.detect
        self.detection = DetectionSuite(
            dcfg.detector, dcfg.threshold, dcfg.absent_grace_steps, multivariate=dcfg.multivariate
        )
        self._platform_mark: pd.Timestamp | None = None
        self._calendar: pd.DataFrame | None = None
        self._forecasts: dict[str, pd.DataFrame] = {}
        self._choices: dict[str, Choice] = {}
        self._default_choice = Choice(fcfg.model, (fcfg.model,))
        self.chosen = ChosenForecasts(pd.Timedelta(minutes=fcfg.refit_minutes))
        self._steps = {
            name: step_of(getattr(src, "step", "1min")) for name, src in settings.sources.items()
        }
        # alert conditions and what the outbox accepted for them (fire, re-send, resolve)
        self.alerts = OutboxAlerts(store, lifecycle_policy(settings, self.base_step))
        self.anomaly_conditions = AnomalyConditions(env=settings.alerting.env)
        # per service: stabilisation window and step limits across ticks
        self._guards: dict[str, ScaleGuard] = {}
        # series whose source could not be reached this tick: their plans are stale
        self._unavailable: dict[str, str] = {}
        ecfg = settings.executors
        self.executor = WebhookExecutor(
            ecfg.webhook_urls, dry_run=ecfg.dry_run, timeout_s=ecfg.timeout_seconds
        )

    # ------------------------------------------------------------------ helpers
    def step_for(self, series: SeriesSettings) -> pd.Timedelta:
        return self._steps[series.source]

    @property
    def base_step(self) -> pd.Timedelta:
        return min(self._steps.values())

    def floor_now(self, now: pd.Timestamp | None = None) -> pd.Timestamp:
        now = pd.Timestamp(now if now is not None else self.clock())
        now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
        return now.floor(self.base_step)

    def services(self) -> dict[str, ServiceSettings]:
        """Configured services whose load series is watched."""
        watched = {s.unique_id for s in self.series}
        return {
            name: svc
            for name, svc in self.settings.services.items()
            if f"{name}:{svc.load_metric}" in watched
        }

    # ------------------------------------------------------------------ the tick
    def tick(self, now: pd.Timestamp | None = None, progress: Progress | None = None) -> TickReport:
        """Run one tick at ``now`` (default: the clock, floored to the step) and persist it."""
        now = self.floor_now(now)
        report = TickReport(now=now, started_at=pd.Timestamp.now(tz="UTC"))
        self._calendar = self._read_calendar(now, report)
        stages: list[tuple[str, Callable[[], None]]] = [
            ("collect", lambda: self._collect(now, report, progress)),
            ("detect", lambda: self._detect(now, report)),
            ("forecast", lambda: self._forecast(now, report)),
            ("plan", lambda: self._plan(now, report)),
            ("alert", lambda: self._saturation_alerts(now, report)),
            ("alert-model", lambda: self._model_failure_alerts(now, report)),
            ("execute", lambda: self._execute(now, report)),
        ]
        for name, run in stages:
            if self.stop_requested.is_set():
                break
            began = time.perf_counter()
            try:
                run()
            except Exception as exc:  # a whole stage failing must not stop the others
                log.exception("tick stage %s failed", name)
                report.error(name, "*", exc)
            report.durations[name] = time.perf_counter() - began
        report.finished_at = pd.Timestamp.now(tz="UTC")
        try:
            self.store.record_tick(
                report.started_at, report.finished_at, report.ok, report.summary()
            )
        except Exception as exc:
            report.error("persist", "tick", exc)
        return report

    def _read_calendar(self, now: pd.Timestamp, report: TickReport) -> pd.DataFrame | None:
        """The fixtures around ``now``, read once a tick: the alarm stage looks 3 days back (for
        drops against earlier match days), the reasons look ahead past the lead window."""
        if self.events is None:
            return None
        try:
            return self.events(now - pd.Timedelta(days=4), now + pd.Timedelta(days=1))
        except Exception as exc:  # fixtures only enrich: never fail the tick on them
            report.error("detect", "fixtures", exc)
            return None

    def _collect(self, now: pd.Timestamp, report: TickReport, progress: Progress | None) -> None:
        watermarks = self.store.watermarks()
        backfill_start = now - pd.Timedelta(days=self.settings.backfill_days)
        total = len(self.series)
        fetched: list[_Fetched] = []
        self._unavailable = {}
        reached: set[str] = set()
        for i, series in enumerate(self.series):
            uid = series.unique_id
            if self.stop_requested.is_set():
                report.error("collect", "*", InterruptedError("shutdown requested"))
                break  # still store what was fetched so far
            try:
                mark = watermarks.get(uid)
                start = backfill_start if mark is None else max(mark + pd.Timedelta(1, "ns"), backfill_start)
                if start >= now:
                    report.points[uid] = 0
                    continue
                report.fetched_from[uid] = start
                raw = self.collectors[series.source].fetch(SeriesRequest(uid, series.query), start, now)
                reached.add(series.source)
                report.repairs.extend(raw.attrs.get("repairs", []))
                fetched.append(_Fetched(uid, f"{series.source}:{uid}", start, raw))
            except CollectorUnavailable as exc:  # the source is down: hold plans, alert
                self._unavailable[uid] = str(exc)  # the collector's message names source and URL
                report.error("collect", uid, exc)
            except Exception as exc:
                report.error("collect", uid, exc)
            if progress is not None:
                progress("collect", i + 1, total)
        fresh = self._validated(fetched, now, report)
        if fresh:
            self._store_points(fresh, report)
        self.history.load_missing(self.store, [s.unique_id for s in self.series], now)
        self.history.trim(now)
        self._source_alerts(now, reached, report)

    def _source_alerts(self, now: pd.Timestamp, reached: set[str], report: TickReport) -> None:
        """'Source unavailable' for each source this tick could not reach; it resolves on the
        first tick that reaches it again (a source with nothing to fetch keeps its state)."""
        env = self.settings.alerting.env
        by_source = {s.unique_id: s.source for s in self.series}
        down: dict[str, list[str]] = {}
        for uid in self._unavailable:
            down.setdefault(by_source[uid], []).append(uid)
        active = [
            source_unavailable_alert(
                source=name, error=self._unavailable[uids[0]], at=now, series=len(uids), env=env
            )
            for name, uids in sorted(down.items())
        ]
        held = {
            source_unavailable_key(name, env)
            for name in self.collectors
            if name not in down and name not in reached
        }
        enqueued, errors = self.alerts.publish("source", active, now, held=held)
        report.alerts += enqueued
        for key, exc in errors:
            report.error("alert", key, exc)

    def _validated(
        self, fetched: list[_Fetched], now: pd.Timestamp, report: TickReport
    ) -> list[pd.DataFrame]:
        """The fetched frames in canonical form, each cut to ``[start, now)`` of its series.

        The frames that are canonical already (the usual tick) are validated in one call: a
        call costs ~2 ms whatever its size, and a tick of 1,000 series brings one point each.
        The others are validated one by one, so that every repair and error names its series
        and one bad frame costs nothing of the others.
        """
        clean = [item for item in fetched if is_canonical(item.raw, item.unique_id)]
        whole = _validate_together(clean, now)
        if whole is None:  # not expected after the checks; one by one tells what it was
            clean, whole = [], empty_series()
        counts = whole["unique_id"].value_counts()
        for item in clean:
            report.points[item.unique_id] = int(counts.get(item.unique_id, 0))
        fresh = [whole] if len(whole) else []
        done = {item.unique_id for item in clean}
        for item in fetched:
            if item.unique_id in done:
                continue
            try:
                checked = validate_series(item.raw, source=item.source)
                frame = checked.frame
                frame = frame[
                    (frame["ds"] >= item.start) & (frame["ds"] < now)
                    & (frame["unique_id"] == item.unique_id)
                ]
                report.repairs.extend(checked.repairs)
                report.points[item.unique_id] = len(frame)
                if len(frame):
                    fresh.append(frame)
            except Exception as exc:
                report.error("collect", item.unique_id, exc)
        return fresh

    def _store_points(self, fresh: list[pd.DataFrame], report: TickReport) -> None:
        """Upsert the tick's points in one transaction; if that fails, series by series."""
        batch = pd.concat(fresh, ignore_index=True)
        try:
            self.store.upsert_points(batch)
            self.history.extend(batch)
            return
        except Exception as exc:
            log.warning("batch upsert failed (%s); retrying series by series", exc)
        for uid, frame in batch.groupby("unique_id", sort=False):
            uid = str(uid)
            try:
                self.store.upsert_points(frame)
                self.history.extend(frame)
            except Exception as exc:
                # not stored: detection and forecasting must not use it, the next tick retries
                report.points[uid] = 0
                report.error("collect", uid, exc)

    def _detect(self, now: pd.Timestamp, report: TickReport) -> None:
        cfg = self.settings.detect
        suite = self.detection
        rescore_from = now - pd.Timedelta(minutes=cfg.rescore_minutes)
        if self._calendar is not None:
            suite.set_events(self._calendar)
        fresh: dict[str, pd.DataFrame] = {}
        for series in self.series:
            uid = series.unique_id
            if not report.points.get(uid) or not suite.watches(uid) or self.stop_requested.is_set():
                continue  # (the multi-series detectors read every series through the platform frame)
            try:
                # a detector new to this process (start, restart, refit) rescores the recent
                # window, so points stored by a process that died before scoring them are seen;
                # after that, only what this tick brought
                known = suite.has(uid)
                start = max(rescore_from, report.fetched_from.get(uid, now)) if known else rescore_from
                if not known:
                    self._fit_series_detector(uid, rescore_from)
                fresh[uid] = self.history.get(uid, start=start, end=now)
            except Exception as exc:
                suite.forget(uid)
                report.error("detect", uid, exc)
        platform = self._platform_fresh(now, rescore_from, report)
        last_seen = {}
        for series in self.series:
            newest = self.history.last(series.unique_id)
            if newest is not None:
                last_seen[series.unique_id] = newest
        steps = {uid: self.step_for(s) for s in self.series if (uid := s.unique_id) in last_seen}
        result = suite.score_all(fresh, platform, now, last_seen, steps)
        for subject, exc in result.errors:
            report.error("detect", subject, exc)
        if len(result.anomalies):
            try:
                report.anomalies += self.store.save_anomalies(result.anomalies)
            except Exception as exc:
                report.error("detect", "store", exc)
                return  # alarms are raised again when the anomalies are stored
        self._enqueue_alerts(result.alarms, result.anomalies, now, report)

    def _fit_series_detector(self, uid: str, until: pd.Timestamp) -> None:
        cfg = self.settings.detect
        history_start = until - pd.Timedelta(days=cfg.history_days)
        history = self.history.get(uid, start=history_start, end=until)
        # do not learn from anomalies: points flagged before stay out of the history
        flagged = self.store.read_anomalies(uid, start=history_start, end=until, limit=100_000)
        if len(flagged):
            history = history[~history["ds"].isin(flagged["ds"])]
        self.detection.fit_series(uid, history)

    def _platform_fresh(
        self, now: pd.Timestamp, rescore_from: pd.Timestamp, report: TickReport
    ) -> pd.DataFrame | None:
        """New points of every series for the multi-series detectors (ratios, latency drift)."""
        suite = self.detection
        if self._platform_mark is None or not suite.platform_fitted:
            history_start = rescore_from - pd.Timedelta(days=self.settings.detect.history_days)
            frames = [self.history.get(s.unique_id, start=history_start, end=rescore_from) for s in self.series]
            frames = [f for f in frames if len(f)]
            if not frames:
                return None
            for subject, exc in suite.fit_platform(pd.concat(frames, ignore_index=True)):
                report.error("detect", subject, exc)
            self._platform_mark = rescore_from
        frames = [self.history.get(s.unique_id, start=self._platform_mark, end=now) for s in self.series]
        self._platform_mark = now
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else None

    def _enqueue_alerts(
        self, alarms: pd.DataFrame, anomalies: pd.DataFrame, now: pd.Timestamp, report: TickReport
    ) -> None:
        """Anomaly alerts through the lifecycle: alarms open conditions (the debouncer already
        merged hits and repeats), new hits keep them open, quiet ones resolve."""
        active = self._not_acknowledged(self.anomaly_conditions.update(alarms, anomalies, now), report)
        enqueued, errors = self.alerts.publish("anomaly", active, now)
        report.alerts += enqueued
        for key, exc in errors:
            report.error("alert", key, exc)

    def _not_acknowledged(
        self, active: list[dict[str, Any]], report: TickReport
    ) -> list[dict[str, Any]]:
        """The open anomaly alerts an operator has not acknowledged or silenced (POST
        /v1/anomalies/acks). One that was firing drops out of the active set, so the lifecycle
        resolves it in Alertmanager; a new hit after the acknowledgement (or after the silence
        ends) opens it again."""
        keys = [(str(a["labels"].get("series", "")), str(a["labels"].get("kind", ""))) for a in active]
        hits = [self.anomaly_conditions.last_hit(uid, kind) for uid, kind in keys]
        known = [h for h in hits if h is not None]
        if not known:  # nothing open to silence
            return active
        try:
            acks = self.store.acks(sorted({uid for uid, _ in keys}), covering=min(known))
        except Exception as exc:  # unreadable acknowledgements must never mute an alert
            report.error("alert", "acknowledgements", exc)
            return active
        return [alert for alert, (uid, kind), hit in zip(active, keys, hits, strict=True)
                if hit is None or silenced(acks, uid, kind, hit) is None]

    def _execute(self, now: pd.Timestamp, report: TickReport) -> None:
        """Push this tick's recommendations to the configured executors (dry run by default)."""
        result = self.executor.execute(report.recommendations, now)
        for url, message in result.errors:
            report.error("execute", url, RuntimeError(message))

    def _model_failure_alerts(self, now: pd.Timestamp, report: TickReport) -> None:
        """'Model failure' per series whose forecaster failed this tick; resolves when it
        forecasts again."""
        failed = {
            e["subject"]: e["error"]
            for e in report.errors
            if e["stage"] == "forecast" and ":" in e["subject"]
        }
        env = self.settings.alerting.env
        active = [
            model_failure_alert(unique_id=uid, error=error, at=now, env=env)
            for uid, error in sorted(failed.items())
        ]
        enqueued, errors = self.alerts.publish("model", active, now)
        report.alerts += enqueued
        for key, exc in errors:
            report.error("alert", key, exc)

    def _saturation_alerts(self, now: pd.Timestamp, report: TickReport) -> None:
        """Predicted saturation per service from this tick's plans (fire, re-send, resolve)."""
        active, unknown = saturation_conditions(
            report.recommendations, self._forecasts, self.services(), now,
            env=self.settings.alerting.env, unit=_unit,
        )  # fmt: skip
        enqueued, errors = self.alerts.publish("saturation", active, now, held=unknown)
        report.alerts += enqueued
        for key, exc in errors:
            report.error("alert", key, exc)

    def horizon_steps(self, series: SeriesSettings) -> int:
        lead = max(
            (
                svc.startup_delay_seconds + svc.margin_seconds
                for svc in self.settings.services.values()
            ),
            default=600,
        )
        seconds = lead + self.settings.forecast.extra_horizon_minutes * 60
        return max(1, math.ceil(seconds / self.step_for(series).total_seconds()))

    def _forecast(self, now: pd.Timestamp, report: TickReport) -> None:
        cfg = self.settings.forecast
        self._refresh_choices(report)
        self._forecasts = {}
        for series in self.series:
            uid = series.unique_id
            if self.stop_requested.is_set():
                return
            try:
                history = self.history.get(uid, start=now - pd.Timedelta(days=cfg.history_days), end=now)
                if history.empty:
                    continue
                choice = self._choices.get(uid, self._default_choice)
                forecast, failure = self.chosen.forecast(
                    choice, history, now, self.horizon_steps(series), self.step_for(series), cfg.level
                )
                if failure:
                    report.error("forecast", uid, RuntimeError(f"fell back to the floor: {failure}"))
                self._forecasts[uid] = forecast
            except Exception as exc:
                report.error("forecast", uid, exc)
        if self.event_forecasts is not None:
            self._event_forecast(self.event_forecasts, now, report)
        if self._forecasts:
            batch = pd.concat(self._forecasts.values(), ignore_index=True)
            report.forecasts += self.store.save_forecast(batch, created_at=now)

    def _refresh_choices(self, report: TickReport) -> None:
        """Pick up the retrain job's newest registry entries (one query; files read once)."""
        try:
            entries = self.store.latest_models()
        except Exception as exc:
            report.error("forecast", "registry", exc)
            return
        for uid, entry in entries.items():
            known = self._choices.get(uid)
            if known is not None and known.version == entry["version"]:
                continue
            try:
                name, members = load_choice(entry)
                unknown = [m for m in members if m not in CATALOG]
                if unknown:
                    raise DataError(f"registry entry of {uid} names unknown models {unknown}")
                self._choices[uid] = Choice(name, members, entry["version"])
            except Exception as exc:
                report.error("forecast", uid, exc)

    def _event_forecast(self, cache: EventForecasts, now: pd.Timestamp, report: TickReport) -> None:
        """Replace the floor's forecast of each load series by the event-aware one, if it has one."""
        by_uid = {s.unique_id: s for s in self.series}
        for name, svc in self.services().items():
            uid = f"{name}:{svc.load_metric}"
            series = by_uid[uid]
            step = self.step_for(series)
            try:
                forecast = cache.forecast(
                    uid, self.history.get(uid), now, self.horizon_steps(series) * step, step,
                    self.settings.forecast.level,
                )  # fmt: skip
            except Exception as exc:  # keep the floor's forecast; say so
                cache.forget(uid)
                report.error("forecast", uid, exc)
                continue
            if forecast is not None and len(forecast):
                self._forecasts[uid] = forecast

    def _plan(self, now: pd.Timestamp, report: TickReport) -> None:
        previous = {r["service"]: r for r in self.store.latest_recommendations()}
        try:  # operator overrides (POST /v1/overrides) in force at this tick
            overrides = active_by_service(self.store.overrides(active_at=now, limit=1000))
        except Exception as exc:  # unreadable overrides must not stop the plan
            report.error("plan", "overrides", exc)
            overrides = {}
        for name, svc in self.services().items():
            try:
                rec = self.recommend(name, svc, now, previous.get(name))
                last = previous.get(name)
                rec = apply_override(
                    rec, overrides.get(name), int(last["recommended_replicas"]) if last else None
                )
                self.store.save_recommendation(rec)
                report.recommendations.append(rec)
            except Exception as exc:
                report.error("plan", name, exc)
        # one audit write for the whole plan, not one transaction per service
        entries = [e for rec in report.recommendations for e in _audit_entries(rec)]
        try:
            self.store.record_decisions(entries)
        except Exception as exc:  # the audit trail failing must not stop the plan
            report.error("audit", "*", exc)

    def recommend(
        self,
        service: str,
        svc: ServiceSettings,
        now: pd.Timestamp,
        previous: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """One recommendation for ``service`` at ``now``; missing data never scales down."""
        uid = f"{service}:{svc.load_metric}"
        lead = pd.Timedelta(seconds=svc.startup_delay_seconds + svc.margin_seconds)
        bounds = CapacityBounds(
            capacity_per_replica=svc.capacity_per_replica,
            target_utilization=svc.target_utilization,
            min_replicas=svc.min_replicas,
            max_replicas=svc.max_replicas,
        )
        recent = self.history.get(
            uid, start=now - pd.Timedelta(seconds=self.settings.stale_after_seconds), end=now
        )
        current_load = float(recent["y"].iloc[-1]) if len(recent) else None
        newest_at = recent["ds"].iloc[-1] if len(recent) else None
        forecast = self._forecasts.get(uid, _NO_FORECAST)
        forecast = forecast[(forecast["ds"] >= now) & (forecast["ds"] <= now + lead)]
        stale_reasons = []
        if current_load is None:
            stale_reasons.append(
                f"no {svc.load_metric} point in the last {self.settings.stale_after_seconds} s"
            )
        if forecast.empty:
            stale_reasons.append("no fresh forecast (model failed or no history)")
        if uid in self._unavailable:
            stale_reasons.append(f"source unavailable ({self._unavailable[uid][:200]})")
        previous_replicas = int(previous["recommended_replicas"]) if previous else None
        inputs: dict[str, Any] = {
            "load_series": uid,
            "capacity_per_replica": svc.capacity_per_replica,
            "target_utilization": svc.target_utilization,
            "min_replicas": svc.min_replicas,
            "max_replicas": svc.max_replicas,
            "lead_time_s": int(lead.total_seconds()),
            "startup_delay_s": svc.startup_delay_seconds,
            "margin_s": svc.margin_seconds,
            "current_load": current_load,
            "newest_point_at": newest_at.isoformat() if newest_at is not None else None,
            "previous_replicas": previous_replicas,
            "level": self.settings.forecast.level,
        }
        # ``now`` is floored to the data step, so the next recommendation with a later ``at``
        # comes one step on: valid for that step plus two missed ticks (three ticks at least)
        tick = pd.Timedelta(seconds=self.settings.tick_interval_seconds)
        valid_until = now + max(3 * tick, pd.Timedelta(self.base_step) + 2 * tick)
        base = {"service": service, "at": now, "valid_until": valid_until, "current_replicas": None}
        if forecast.empty:
            # nothing to plan from: hold what we said last (never a scale-down on missing data)
            held = min(max(previous_replicas or svc.min_replicas, svc.min_replicas), svc.max_replicas)
            return {
                **base,
                "recommended_replicas": held,
                "throttle_rps": None,
                "reason": f"{service}: holding {held} replicas: " + "; ".join(stale_reasons),
                "inputs": inputs,
                "stale": True,
                "model": "none",
            }
        upper = forecast["yhat_upper"].to_numpy(dtype=float)
        plan = plan_replicas(upper, bounds, current_load=current_load)
        peak_row = forecast.iloc[int(forecast["yhat_upper"].to_numpy().argmax())]
        model_name = str(peak_row.get("model", "unknown"))
        reason = describe_plan(
            plan,
            service=service,
            metric=_unit(svc.load_metric),
            peak_at=peak_row["ds"],
            lead_time=lead,
            bounds=bounds,
            model=model_name,
            level=self.settings.forecast.level,
        )
        event_note = self._event_note(now, lead)
        if event_note:
            reason += f"; {event_note}"
        stale = bool(stale_reasons)
        guard = self._guard(service, svc, bounds, previous)
        decision = guard.decide(
            now.timestamp(), plan.recommended_replicas, observed_load=None, data_fresh=not stale
        )
        recommended = decision.replicas
        if decision.rule == "hold_missing_data":
            reason += (
                f"; holding {recommended} replicas (no scale-down on stale data: "
                f"{'; '.join(stale_reasons)})"
            )
        elif decision.rule == "stabilization":
            reason += (
                f"; holding {recommended} replicas: scale-down stabilisation "
                f"({svc.scale_down_stabilization_seconds} s window)"
            )
        elif decision.rule == "cooldown":
            reason += (
                f"; holding {recommended} replicas: scale-down cooldown "
                f"({svc.scale_down_cooldown_seconds} s between scale-downs)"
            )
        elif decision.rule in ("max_step_up", "max_step_down"):
            reason += f"; step limited to {recommended} replicas ({decision.rule})"
        if stale and decision.rule != "hold_missing_data":
            reason += f"; data stale: {'; '.join(stale_reasons)}"
        throttle = None
        throttle_advice = None
        if plan.demand_exceeds_max:
            # how long it lasts: over the whole forecast, not just the lead window
            ahead = self._forecasts.get(uid, _NO_FORECAST)
            ahead = ahead[ahead["ds"] >= now]
            step = ahead["ds"].diff().median() if len(ahead) > 1 else self.base_step
            _, over_minutes = overload_window(
                ahead["ds"], ahead["yhat_upper"].to_numpy(float), bounds.max_load, pd.Timedelta(step)
            )
            advice = throttle_plan(
                demand_peak=max(plan.forecast_peak, current_load or 0.0),
                capacity=bounds.max_load,
                classes=[
                    TrafficClass(c.name, c.priority, c.share) for c in svc.traffic_classes
                ],
                overload_minutes=over_minutes,
            )
            if advice is not None:
                throttle = advice.capacity
                throttle_advice = advice.as_dict()
                reason += f"; throttle: {advice.summary()}"
        inputs.update(
            {
                "forecast_peak": plan.forecast_peak,
                "forecast_peak_at": peak_row["ds"].isoformat(),
                "needed_for_forecast": plan.needed_for_forecast,
                "needed_for_current": plan.needed_for_current,
                "clamped": plan.clamped,
                "unserved_rps": plan.unserved_rps,
                "candidate_replicas": plan.recommended_replicas,
                "guardrail": decision.rule,
                "max_step_up": svc.max_step_up,
                "max_step_down": svc.max_step_down,
                "scale_down_stabilization_s": svc.scale_down_stabilization_seconds,
                "throttle": throttle_advice,
            }
        )
        return {
            **base,
            "recommended_replicas": int(recommended),
            "throttle_rps": throttle,
            "reason": reason,
            "inputs": inputs,
            "stale": stale,
            "model": model_name,
        }

    def _guard(
        self,
        service: str,
        svc: ServiceSettings,
        bounds: CapacityBounds,
        previous: Mapping[str, Any] | None,
    ) -> ScaleGuard:
        """The service's guardrails; after a restart, seeded with the last stored decision."""
        guard = self._guards.get(service)
        if guard is None or guard.bounds != bounds:
            guard = ScaleGuard(
                bounds,
                stabilization_s=float(svc.scale_down_stabilization_seconds),
                max_step_up=svc.max_step_up,
                max_step_down=svc.max_step_down,
                scale_down_cooldown_s=float(svc.scale_down_cooldown_seconds),
            )
            if previous is not None:
                guard.seed(
                    pd.Timestamp(previous["at"]).timestamp(), int(previous["recommended_replicas"])
                )
            self._guards[service] = guard
        return guard

    def _event_note(self, now: pd.Timestamp, lead: pd.Timedelta) -> str | None:
        events = self._calendar
        if events is None or events.empty:
            return None
        events = events[(events["end"] > now) & (events["start"] <= now + lead + pd.Timedelta(hours=1))]
        upcoming = events[events["start"] >= now]
        live = events[(events["start"] < now) & (events["end"] > now)]
        if len(upcoming):
            top = upcoming.sort_values(["importance", "start"], ascending=[False, True]).iloc[0]
            minutes = int((top["start"] - now).total_seconds() // 60)
            return f"next fixture {_event_name(top)} at {top['start']:%H:%M} UTC (in {minutes} min)"
        if len(live):
            top = live.sort_values("importance", ascending=False).iloc[0]
            return f"{len(live)} fixture(s) in play, e.g. {_event_name(top)}"
        return None

    # ------------------------------------------------------------------ retrain slot
    def retrain_policy(self) -> RetrainPolicy:
        return policy_from_settings(self.settings)

    def retrain(self, now: pd.Timestamp | None = None) -> dict[str, str]:
        """The retrain job: per series, choose a forecaster by backtest and register the choice.

        Returns ``unique_id -> chosen model | error text``. Fits fan out over local cores; a
        series that fails keeps its previous choice (or the floor), and the tick goes on.
        """
        from surgecast.registry import save_selection

        now = self.floor_now(now)
        policy = self.retrain_policy()
        start = now - pd.Timedelta(days=policy.train_window_days)
        frames = []
        for series in self.series:
            if self.stop_requested.is_set():
                break
            frame = self.store.read_points(series.unique_id, start=start, end=now)
            if len(frame):
                frames.append(frame)
        results: dict[str, str] = {s.unique_id: "no history" for s in self.series}
        for result in select_many(frames, policy, n_jobs=self.settings.forecast.retrain_jobs):
            if result.model is None:
                log.warning("retrain: %s kept its previous model: %s", result.unique_id, result.error)
                results[result.unique_id] = f"error: {result.error}"
                continue
            try:
                save_selection(self.store, result, policy, models_dir=self.settings.models_dir)
                results[result.unique_id] = result.model
            except Exception as exc:
                results[result.unique_id] = f"error: {type(exc).__name__}: {exc}"
        log.info("retrain: %s", results)
        return results


@dataclass(frozen=True)
class _Fetched:
    """What a collector returned for one series this tick, before validation."""

    unique_id: str
    source: str  # names the series in repairs and errors: "simulator:svc:metric"
    start: pd.Timestamp
    raw: pd.DataFrame


def _validate_together(clean: list[_Fetched], now: pd.Timestamp) -> pd.DataFrame | None:
    """The canonical frames validated in one call and cut to each series' window (None if the
    call repairs or rejects anything, which :func:`is_canonical` rules out)."""
    frames = [item.raw for item in sorted(clean, key=lambda i: i.unique_id) if len(item.raw)]
    if not frames:
        return empty_series()
    try:
        checked = validate_series(pd.concat(frames, ignore_index=True), source="collect")
    except Exception:
        return None
    if checked.repairs:
        return None
    frame = checked.frame
    codes, names = pd.factorize(frame["unique_id"])
    start_of = {item.unique_id: item.start.value for item in clean}
    starts = np.array([start_of[str(n)] for n in names], dtype=np.int64)[codes]
    ds_ns = pd.DatetimeIndex(frame["ds"]).as_unit("ns").asi8
    keep = (ds_ns >= starts) & (ds_ns < pd.Timestamp(now).as_unit("ns").value)
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def _audit_entries(rec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The audit-log lines of one recommendation: the replica decision, and the throttling
    advice when there is one."""
    inputs = dict(rec.get("inputs") or {})
    entries = [{
        "at": rec["at"],
        "service": rec["service"],
        "kind": "recommendation",
        "decision": f"{rec['recommended_replicas']} replicas"
        + (" (stale data)" if rec.get("stale") else ""),
        "reason": rec["reason"],
        "inputs": {**inputs, "model": rec.get("model"), "valid_until": str(rec.get("valid_until"))},
    }]
    throttle = inputs.get("throttle")
    if throttle:
        limits = ", ".join(
            f"{c['name']} {c['action']} at {c['limit_rps']:,.0f} req/s" for c in throttle["classes"]
        )
        entries.append({
            "at": rec["at"],
            "service": rec["service"],
            "kind": "throttle",
            "decision": limits,
            "reason": rec["reason"],
            "inputs": throttle,
        })
    return entries


def _unit(metric: str) -> str:
    """The unit printed after numbers in a reason: ``requests_per_second`` -> ``req/s``."""
    if metric == "requests_per_second":
        return "req/s"
    if metric.endswith("_per_second"):
        return metric.removesuffix("_per_second") + "/s"
    return metric


def _event_name(event: pd.Series) -> str:
    name = event.get("name") if "name" in event else None
    comp = event.get("competition")
    label = str(name) if name is not None and str(name) != "nan" else str(event.get("event_id"))
    return f"{label} ({comp})" if comp is not None else label
