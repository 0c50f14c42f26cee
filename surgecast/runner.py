"""Long-running processes: scheduler + API (+ dashboard) together, or each apart.

``surgecast run`` serves the API in its own process and runs the scheduler and the dashboard as
child processes: a tick is CPU-bound Python, and in the API's process it would hold the GIL
while an autoscaler waits for its answer. Operator writes and retrain requests reach the
scheduler through the store, as they do between ``surgecast api`` and ``surgecast scheduler``.

Shutdown is the same everywhere: SIGINT/SIGTERM asks the pipeline to stop between series, shuts
the scheduler down, stops uvicorn and the dashboard child, and exits 0.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from surgecast.api import create_app
from surgecast.api_common import EventsProvider, attach_registered_events
from surgecast.clock import Clock, system_clock
from surgecast.config import Settings
from surgecast.errors import ConfigError
from surgecast.logs import setup_logging
from surgecast.processes import stop_process
from surgecast.scheduler import ServiceState, build_scheduler
from surgecast.store import Store
from surgecast.wiring import build_pipeline, build_sources

__all__ = ["dashboard_command", "run_api", "run_scheduler", "run_service"]

log = logging.getLogger(__name__)


def dashboard_command(host: str, port: int) -> list[str]:
    """``streamlit run dashboard/app.py`` headless on ``host:port``."""
    import dashboard

    app = Path(dashboard.__file__).with_name("app.py")
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.headless", "true",
        "--server.address", host,
        "--server.port", str(port),
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
    command = dashboard_command(settings.dashboard.host, settings.dashboard.port)
    return subprocess.Popen(command, env=env, start_new_session=True)


def _clock_and_calendar(settings: Settings) -> tuple[Clock, EventsProvider | None]:
    """The clock the ticks run on (an accelerated one for a ``--speed`` demo) and the fixtures
    calendar (simulator or fixtures files), for a process that serves the API."""
    try:
        sources = build_sources(settings)
    except ConfigError:
        return system_clock, None
    return sources.clock, sources.calendar


# how long a scheduler child stopped by a stop signal (exit 0 once its handler runs; killed by
# the signal if it came during start-up) may precede this process's own stop
SIGNAL_GRACE_S = 2.0
STOP_CODES = (0, -signal.SIGTERM, -signal.SIGINT)


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _scheduler_main(settings: Settings, clock: Clock, log_level: int) -> None:
    """The scheduler child of ``surgecast run`` (a spawned process: its own interpreter and GIL,
    so a tick never stalls the API's answers)."""
    setup_logging(log_level)
    raise SystemExit(run_scheduler(settings, clock=clock))


def _start_scheduler(settings: Settings, clock: Clock) -> multiprocessing.process.BaseProcess:
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    child = context.Process(
        target=_scheduler_main, args=(settings, clock, logging.getLogger().getEffectiveLevel()),
        name="surgecast-scheduler",
    )  # fmt: skip
    child.start()
    log.info("scheduler started in process %d: tick every %d s", child.pid, settings.tick_interval_seconds)
    return child


def _stop_scheduler(child: multiprocessing.process.BaseProcess | None) -> None:
    if child is None or not child.is_alive():
        return
    child.terminate()  # SIGTERM: the scheduler stops between series and exits 0
    child.join(timeout=30)
    if child.is_alive():
        log.warning("the scheduler process did not stop within 30 s: killing it")
        child.kill()
        child.join(timeout=10)


def run_service(
    settings: Settings, *, with_scheduler: bool = True, with_dashboard: bool = True
) -> int:
    """``surgecast run``: the API in this process, the scheduler and the dashboard as child
    processes. Returns the exit code: 0 after SIGINT/SIGTERM, 1 if the scheduler died."""
    store = Store(settings.store.url)
    clock, calendar = _clock_and_calendar(settings)
    scheduler = _start_scheduler(settings, clock) if with_scheduler else None

    def process_info() -> dict[str, Any]:
        assert scheduler is not None
        return {"scheduler": "child process", "pid": scheduler.pid, "alive": scheduler.is_alive()}

    app = create_app(
        settings, store, clock=clock, calendar=calendar,
        process_info=process_info if scheduler is not None else None,
    )  # fmt: skip
    config = uvicorn.Config(
        app, host=settings.api.host, port=settings.api.port, log_level="info", access_log=False
    )
    server = uvicorn.Server(config)
    child = _start_dashboard(settings) if with_dashboard else None
    stopping = threading.Event()
    scheduler_died = threading.Event()

    def stopping_too() -> bool:
        # a signal to the whole group (Ctrl-C, systemd's SIGTERM to the unit) stops the child
        # as well, and it may exit (code 0) before this process's own handler has run
        assert scheduler is not None
        deadline = time.monotonic() + SIGNAL_GRACE_S
        while time.monotonic() < deadline:
            if stopping.is_set() or server.should_exit:
                return True
            code = scheduler.exitcode  # None until reaped, a moment after the sentinel
            if code is not None and code not in STOP_CODES:
                return False  # killed or failed: no stop signal explains that
            time.sleep(0.05)
        return stopping.is_set() or server.should_exit

    def watch_scheduler() -> None:
        assert scheduler is not None
        # wait on the sentinel, not join(): only the main thread reaps the child
        multiprocessing.connection.wait([scheduler.sentinel])
        if not stopping_too():
            log.error("the scheduler process exited (code %s): stopping surgecast", scheduler.exitcode)
            scheduler_died.set()
            server.should_exit = True

    if scheduler is not None:
        threading.Thread(target=watch_scheduler, name="scheduler-watch", daemon=True).start()
    # uvicorn re-raises the signal that stopped it once it has shut down; with this handler a
    # SIGTERM (like SIGINT) ends up as KeyboardInterrupt below, so cleanup runs and we exit 0
    previous_term = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the captured SIGINT after its graceful shutdown
    finally:
        stopping.set()
        _stop_scheduler(scheduler)
        stop_process(child, timeout_s=5)
        store.close()
        signal.signal(signal.SIGTERM, previous_term)
    log.info("surgecast stopped")
    return 1 if scheduler_died.is_set() else 0


def run_api(settings: Settings) -> int:
    """``surgecast api``: the API alone (several replicas may run beside one scheduler)."""
    return run_service(settings, with_scheduler=False, with_dashboard=False)


def run_scheduler(settings: Settings, *, clock: Clock | None = None) -> int:
    """``surgecast scheduler``: the tick loop alone, until SIGINT or SIGTERM."""
    store = Store(settings.store.url)
    state = ServiceState()
    pipeline = build_pipeline(settings, store, clock=clock)
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
