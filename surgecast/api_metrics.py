"""``/metrics``: surgecast's answers and its own health as Prometheus gauges.

One :class:`~prometheus_client.CollectorRegistry` per app (no global state): a
:class:`SurgecastCollector` reads the scaling view's in-memory snapshot and, per scrape, the
forecasts, anomaly scores and the last tick from the store. A store that fails leaves those
families out and sets ``surgecast_store_up`` to 0; the replica gauges still answer from memory.

Families (gauges):

- ``surgecast_forecast{service,metric,quantile}``: peak of each forecast quantile over the
  service's lead window (quantiles ``(1-level)/2``, ``0.5``, ``(1+level)/2``);
- ``surgecast_recommended_replicas{service}``, ``surgecast_forecast_rps{service}``,
  ``surgecast_capacity_per_replica{service}``: exactly what ``/v1/scaling/{service}`` answers;
- ``surgecast_recommendation_stale{service}``, ``surgecast_override_active{service}``;
- ``surgecast_throttle_rps{service,priority}``: advised rate limit per priority while the
  forecast exceeds max capacity (absent otherwise);
- ``surgecast_anomaly_score{series}``: highest anomaly score in the last 15 minutes (0 if none);
- health: ``surgecast_tick_duration_seconds``, ``surgecast_last_tick_timestamp_seconds``,
  ``surgecast_last_tick_ok``, ``surgecast_tick_errors{stage}``, ``surgecast_collector_errors``
  and ``surgecast_model_fallbacks`` (of the last tick), ``surgecast_store_up``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pandas as pd
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from surgecast.api_scaling import ScalingView, scaling_answer
from surgecast.errors import SurgecastError

__all__ = ["ANOMALY_WINDOW", "SurgecastCollector", "build_registry"]

log = logging.getLogger(__name__)

ANOMALY_WINDOW = pd.Timedelta(minutes=15)


def _g(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class SurgecastCollector(Collector):
    """Builds every family at scrape time from the scaling view and the store."""

    def __init__(self, view: ScalingView) -> None:
        self.view = view
        self.settings = view.settings
        self._series: set[str] = set()  # series seen in forecasts: their score is 0 when calm

    def collect(self) -> Iterator[Metric]:
        now = self.view.now()
        yield from self._answers(now)
        store_up = _g("surgecast_store_up", "1 if the store answered this scrape")
        try:
            families = list(self._forecasts(now)) + list(self._scores(now)) + list(self._health())
            store_up.add_metric([], 1.0)
        except SurgecastError as exc:
            log.warning("/metrics: the store failed: %s", exc)
            families = []
            store_up.add_metric([], 0.0)
        yield from families
        yield store_up

    def _answers(self, now: pd.Timestamp) -> Iterator[Metric]:
        replicas = _g("surgecast_recommended_replicas", "replicas recommended now", ["service"])
        rps = _g("surgecast_forecast_rps", "load to provision for (KEDA forecast_rps)", ["service"])
        cap = _g("surgecast_capacity_per_replica", "planned load per replica", ["service"])
        stale = _g("surgecast_recommendation_stale", "1 if the answer is stale", ["service"])
        held = _g("surgecast_override_active", "1 while an operator override applies", ["service"])
        throttle = _g(
            "surgecast_throttle_rps", "advised rate limit per priority", ["service", "priority"]
        )
        try:
            snap = self.view.snapshot()
        except SurgecastError as exc:
            log.warning("/metrics: no scaling snapshot: %s", exc)
            snap = None
        for service, rec in sorted((snap.recs if snap else {}).items()):
            svc = self.settings.services[service]
            answer = scaling_answer(
                service, svc, rec, now, current_load=snap.loads.get(service),  # type: ignore[union-attr]
                overrides=snap.overrides, stale_after_s=self.settings.stale_after_seconds,  # type: ignore[union-attr]
            )  # fmt: skip
            replicas.add_metric([service], answer["recommended_replicas"])
            rps.add_metric([service], answer["forecast_rps"])
            cap.add_metric([service], answer["capacity_per_replica"])
            stale.add_metric([service], float(answer["stale"]))
            held.add_metric([service], float(answer["override"] is not None))
            advice = (rec.get("inputs") or {}).get("throttle") or {}
            per_priority: dict[str, float] = {}
            for c in advice.get("classes") or []:
                per_priority[c["priority"]] = per_priority.get(c["priority"], 0.0) + float(
                    c["limit_rps"]
                )
            for priority, limit in sorted(per_priority.items()):
                throttle.add_metric([service, priority], limit)
        yield from (replicas, rps, cap, stale, held, throttle)

    def _forecasts(self, now: pd.Timestamp) -> Iterator[Metric]:
        fam = _g("surgecast_forecast", "forecast peak over the lead window", ["service", "metric", "quantile"])
        leads = {
            name: pd.Timedelta(seconds=s.startup_delay_seconds + s.margin_seconds)
            for name, s in self.settings.services.items()
        }
        longest = max(leads.values(), default=pd.Timedelta(minutes=10))
        frame = self.view.store.forecasts_between(now, now + longest + pd.Timedelta(seconds=1))
        level = self.settings.forecast.level
        quantiles = {
            "yhat_lower": f"{(1 - level) / 2:g}", "yhat": "0.5", "yhat_upper": f"{(1 + level) / 2:g}",
        }  # fmt: skip
        self._series = set(frame["unique_id"].unique())
        for uid, rows in frame.groupby("unique_id", sort=True):
            service, _, metric = str(uid).partition(":")
            rows = rows[rows["ds"] <= now + leads.get(service, longest)]
            for column, q in quantiles.items():
                values = rows[column].dropna()
                if len(values):
                    fam.add_metric([service, metric, q], float(values.max()))
        yield fam

    def _scores(self, now: pd.Timestamp) -> Iterator[Metric]:
        fam = _g("surgecast_anomaly_score", "highest anomaly score in the last 15 min", ["series"])
        scores = self.view.store.latest_scores(now - ANOMALY_WINDOW)
        known = {s.unique_id for s in self.settings.series or []} | self._series | set(scores)
        for uid in sorted(known):
            fam.add_metric([uid], scores.get(uid, 0.0))
        yield fam

    def _health(self) -> Iterator[Metric]:
        last = self.view.store.last_tick()
        duration = _g("surgecast_tick_duration_seconds", "duration of the last tick")
        stamp = _g("surgecast_last_tick_timestamp_seconds", "when the last tick finished (Unix)")
        ok = _g("surgecast_last_tick_ok", "1 if the last tick had no error")
        errors = _g("surgecast_tick_errors", "errors of the last tick per stage", ["stage"])
        collector = _g("surgecast_collector_errors", "series the last tick failed to collect")
        fallbacks = _g("surgecast_model_fallbacks", "series whose model fell back last tick")
        if last is not None:
            summary: dict[str, Any] = last.get("summary") or {}
            duration.add_metric([], (last["finished_at"] - last["started_at"]).total_seconds())
            stamp.add_metric([], last["finished_at"].timestamp())
            ok.add_metric([], float(bool(last["ok"])))
            by_stage: dict[str, int] = {}
            for e in summary.get("errors") or []:
                by_stage[e["stage"]] = by_stage.get(e["stage"], 0) + 1
            for stage, n in sorted(by_stage.items()):
                errors.add_metric([stage], n)
            collector.add_metric([], by_stage.get("collect", 0))
            fell_back = sum(
                1 for e in summary.get("errors") or []
                if e["stage"] == "forecast" and "fell back" in e.get("error", "")
            )  # fmt: skip
            fallbacks.add_metric([], fell_back)
        yield from (duration, stamp, ok, errors, collector, fallbacks)


def build_registry(view: ScalingView) -> CollectorRegistry:
    """A fresh registry holding only surgecast's collector (one per app)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SurgecastCollector(view))
    return registry
