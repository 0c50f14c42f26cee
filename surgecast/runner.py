"""Long-running processes: scheduler + API (+ dashboard) in one, or each apart.

Shutdown is the same everywhere: SIGINT/SIGTERM asks the pipeline to stop between series, shuts
the scheduler down, stops uvicorn and the dashboard child, and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

import uvicorn

from surgecast.api import create_app
from surgecast.api_common import EventsProvider, attach_registered_events
from surgecast.clock import system_clock
from surgecast.config import Settings
from surgecast.errors import ConfigError
from surgecast.scheduler import ServiceState, build_scheduler
from surgecast.store import Store
from surgecast.wiring import build_pipeline, build_sources

__all__ = ["dashboard_command", "run_api", "run_scheduler", "run_service"]

log = logging.getLogger(__name__)


def dashboard_command(settings: Settings) -> list[str]:
    import dashboard

    app = Path(dashboard.__file__).with_name("app.py")
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.headless", "true",
        "--server.address", settings.dashboard.host,
        "--server.port", str(settings.dashboard.port),
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",  # no "Deploy" button on a wall screen
    ]  # fmt: skip


def _start_dashboard(settings: Settings) -> subprocess.Popen[bytes] | None:
    if not settings.dashboard.enabled:
        return None
    env = dict(os.environ)
    env["SURGECAST_API_URL"] = (
        settings.dashboard.api_url or f"http://{settings.api.host}:{settings.api.port}"
    )
    log.info("dashboard on http://%s:%d", settings.dashboard.host, settings.dashboard.port)
    # own process group: a Ctrl-C reaches it through us, so we decide the order of shutdown
    return subprocess.Popen(dashboard_command(settings), env=env, start_new_session=True)


def _stop_child(child: subprocess.Popen[bytes] | None) -> None:
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=5)


def _calendar(settings: Settings) -> EventsProvider | None:
    """The fixtures calendar of an API-only process (the simulator's, if it is the source)."""
    try:
        sources = build_sources(settings)
    except ConfigError:
        return None
    return sources.events if sources.simulators else None


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_service(
    settings: Settings, *, with_scheduler: bool = True, with_dashboard: bool = True
) -> int:
    """``surgecast run``: scheduler, API and dashboard in one process tree. Returns the exit code."""
    store = Store(settings.store.url)
    state = ServiceState()
    pipeline = build_pipeline(settings, store) if with_scheduler else None
    scheduler = build_scheduler(pipeline, settings, state) if pipeline is not None else None
    calendar = attach_registered_events(pipeline, store) if pipeline else _calendar(settings)
    app = create_app(
        settings, store, state, clock=pipeline.clock if pipeline else system_clock,
        calendar=calendar, retrain=pipeline.retrain if pipeline else None,
    )  # fmt: skip
    config = uvicorn.Config(
        app, host=settings.api.host, port=settings.api.port, log_level="info", access_log=False
    )
    server = uvicorn.Server(config)
    child = _start_dashboard(settings) if with_dashboard else None
    if scheduler is not None:
        scheduler.start()
        log.info("scheduler started: tick every %d s", settings.tick_interval_seconds)
    # uvicorn re-raises the signal that stopped it once it has shut down; with this handler a
    # SIGTERM (like SIGINT) ends up as KeyboardInterrupt below, so cleanup runs and we exit 0
    previous_term = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the captured SIGINT after its graceful shutdown
    finally:
        if pipeline is not None:
            pipeline.stop_requested.set()
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        _stop_child(child)
        store.close()
        signal.signal(signal.SIGTERM, previous_term)
    log.info("surgecast stopped")
    return 0


def run_api(settings: Settings) -> int:
    """``surgecast api``: the API alone (several replicas may run beside one scheduler)."""
    return run_service(settings, with_scheduler=False, with_dashboard=False)


def run_scheduler(settings: Settings) -> int:
    """``surgecast scheduler``: the tick loop alone, until SIGINT or SIGTERM."""
    store = Store(settings.store.url)
    state = ServiceState()
    pipeline = build_pipeline(settings, store)
    attach_registered_events(pipeline, store)
    scheduler = build_scheduler(pipeline, settings, state)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        pipeline.stop_requested.set()
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    scheduler.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        scheduler.shutdown(wait=False)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.close()
    return 0
