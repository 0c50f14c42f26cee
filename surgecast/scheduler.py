"""APScheduler 3.x wiring: the tick every ``tick_interval_seconds``, a daily retrain slot, the
alert outbox delivered every ``alerting.delivery_interval_seconds``, and the retrain requests
queued through the API run within ``RETRAIN_POLL_SECONDS``.

One ``BackgroundScheduler`` per deployment (CONVENTIONS.md §5: a job store cannot be shared
between processes), with ``max_instances=1`` so a slow tick is never run twice at once and
``coalesce=True`` so ticks missed while one ran collapse into one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from apscheduler.schedulers.background import BackgroundScheduler

from surgecast.config import Settings
from surgecast.delivery import DeliveryReport, OutboxDeliverer, build_deliverer
from surgecast.pipeline import Pipeline, TickReport
from surgecast.retrain_queue import run_retrain_requests

__all__ = ["RETRAIN_POLL_SECONDS", "ServiceState", "build_scheduler", "run_delivery"]

log = logging.getLogger(__name__)

# how often the scheduler looks for retrain requests queued through the API
RETRAIN_POLL_SECONDS = 5


@dataclass
class ServiceState:
    """What this process knows about its own ticks (the API reads it for /readyz)."""

    last_report: TickReport | None = None
    ticks: int = 0
    running: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            report = self.last_report
            return {
                "ticks": self.ticks,
                "running": self.running,
                "last_tick": report.summary() if report else None,
            }


def run_tick(pipeline: Pipeline, state: ServiceState) -> TickReport | None:
    """The tick job: never raises, so the scheduler keeps its schedule whatever happens."""
    with state.lock:
        state.running = True
    try:
        report = pipeline.tick()
        log.info(
            "tick %s: %d points, %d anomalies, %d forecasts, %d recommendations, %d errors (%.1f s)",
            report.now,
            sum(report.points.values()),
            report.anomalies,
            report.forecasts,
            len(report.recommendations),
            len(report.errors),
            (report.finished_at - report.started_at).total_seconds() if report.finished_at else 0.0,
        )
        with state.lock:
            state.last_report = report
            state.ticks += 1
        return report
    except Exception:
        log.exception("tick failed")
        return None
    finally:
        with state.lock:
            state.running = False


def run_delivery(deliverer: OutboxDeliverer) -> DeliveryReport | None:
    """The alert delivery job: never raises (failed alerts are retried by the outbox)."""
    try:
        report = deliverer.deliver_due()
    except Exception:  # e.g. the store is down: the alerts stay pending, try again next run
        log.exception("alert delivery failed")
        return None
    if report.delivered or report.retrying or report.given_up:
        log.info(
            "alerts: %d delivered, %d to retry, %d given up",
            report.delivered, report.retrying, report.given_up,
        )  # fmt: skip
    return report


def build_scheduler(
    pipeline: Pipeline,
    settings: Settings,
    state: ServiceState,
    *,
    first_tick_now: bool = True,
    deliverer: OutboxDeliverer | None = None,
) -> BackgroundScheduler:
    """A scheduler with the tick job (first run immediately), the daily retrain job and the
    alert delivery job (``deliverer``, by default built from ``settings.alerting`` on the
    pipeline's store)."""
    interval = settings.tick_interval_seconds
    scheduler = BackgroundScheduler(
        timezone="UTC",
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            # a tick that starts late is still worth running, up to a few intervals late
            "misfire_grace_time": max(30, 5 * interval),
        },
    )
    # APScheduler 3 pauses a job given next_run_time=None, so only pass it to start at once
    first: dict[str, Any] = (
        {"next_run_time": pd.Timestamp.now(tz="UTC").to_pydatetime()} if first_tick_now else {}
    )
    scheduler.add_job(
        run_tick,
        "interval",
        args=[pipeline, state],
        seconds=interval,
        id="tick",
        name="surgecast tick",
        replace_existing=True,
        **first,
    )
    delay = settings.forecast.retrain_at_start_minutes
    if delay is not None and first_tick_now:
        # a fresh service should not wait for 03:17 to choose its models
        scheduler.add_job(
            pipeline.retrain,
            "date",
            run_date=(pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=delay)).to_pydatetime(),
            id="retrain-at-start",
            name="surgecast retrain after start",
            replace_existing=True,
        )
    scheduler.add_job(
        pipeline.retrain,
        "cron",
        hour=settings.retrain_cron_hour,
        minute=17,
        id="retrain",
        name="surgecast daily retrain",
        replace_existing=True,
    )
    if deliverer is None and isinstance(pipeline, Pipeline):
        # the tick's clock: alerts are due at the (possibly accelerated) time they were queued
        deliverer = build_deliverer(settings.alerting, pipeline.store, clock=pipeline.clock)
    if deliverer is not None:
        every = settings.alerting.delivery_interval_seconds
        scheduler.add_job(
            run_delivery,
            "interval",
            args=[deliverer],
            seconds=every,
            id="deliver-alerts",
            name="surgecast alert delivery",
            replace_existing=True,
            misfire_grace_time=max(5, 2 * every),
        )
    if isinstance(pipeline, Pipeline):
        if first_tick_now:  # a request this process's predecessor started died with it
            abandoned = pipeline.store.abandon_retrains(
                pd.Timestamp.now(tz="UTC"), "the scheduler stopped before the retrain finished"
            )
            if abandoned:
                log.warning("%d retrain request(s) left unfinished by a stopped scheduler", abandoned)
        scheduler.add_job(
            run_retrain_requests,
            "interval",
            args=[pipeline.retrain, pipeline.store],
            seconds=RETRAIN_POLL_SECONDS,
            id="retrain-requests",
            name="surgecast retrain requests (POST /v1/retrain)",
            replace_existing=True,
        )
    return scheduler
