"""The scheduler wiring: job options that keep a slow tick from piling up, and a retrain slot."""

from __future__ import annotations

import time

import pandas as pd

from surgecast.config import Settings
from surgecast.scheduler import ServiceState, build_scheduler, run_tick


class FakePipeline:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def tick(self):
        self.calls += 1
        if self.fail:
            raise RuntimeError("boom")
        from surgecast.pipeline import TickReport

        now = pd.Timestamp.now(tz="UTC")
        return TickReport(now=now, started_at=now, finished_at=now)

    def retrain(self, now=None):
        return {}


def test_jobs_have_safe_defaults():
    settings = Settings(tick_interval_seconds=60, retrain_cron_hour=4)
    scheduler = build_scheduler(FakePipeline(), settings, ServiceState())  # type: ignore[arg-type]
    scheduler.start(paused=True)  # job defaults are applied when jobs are really added
    try:
        tick = scheduler.get_job("tick")
        assert tick.max_instances == 1
        assert tick.coalesce is True
        assert tick.misfire_grace_time >= 60
        assert tick.trigger.interval.total_seconds() == 60
        retrain = scheduler.get_job("retrain")
        assert "hour='4'" in str(retrain.trigger)
    finally:
        scheduler.shutdown(wait=False)


def test_first_tick_runs_at_start_and_then_on_interval():
    pipeline = FakePipeline()
    state = ServiceState()
    scheduler = build_scheduler(pipeline, Settings(tick_interval_seconds=1), state)  # type: ignore[arg-type]
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while state.ticks < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.shutdown(wait=True)
    assert state.ticks >= 2
    assert state.snapshot()["last_tick"] is not None


def test_a_failing_tick_is_logged_and_never_raises(caplog):
    state = ServiceState()
    assert run_tick(FakePipeline(fail=True), state) is None  # type: ignore[arg-type]
    assert state.ticks == 0 and state.running is False
    assert "tick failed" in caplog.text

