"""A self-contained dashboard stack on 127.0.0.1, for the README screenshot and the browser test.

It fills a SQLite store with real ticks of the built-in simulator (a few hours at 5-minute
steps, over two days of backfilled history), serves the surgecast API from it with uvicorn,
starts the Streamlit dashboard as a child process, and drives Debian's ``chromium`` headless
through Playwright to capture each page. Nothing is downloaded: Playwright runs the system
browser (``executable_path``), never a bundled one.

Regenerate the README screenshot (``make screenshot``)::

    python -m dashboard.demo --out docs/dashboard-overview.png
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from surgecast.processes import free_port, http_ready, poll, stop_process

__all__ = [
    "CHROMIUM",
    "PAGE_READY",
    "ApiServer",
    "capture_pages",
    "demo_settings",
    "fill_store",
    "start_dashboard",
    "wait_http",
]

log = logging.getLogger(__name__)

CHROMIUM = os.environ.get("SURGECAST_CHROMIUM", "/usr/bin/chromium")
OPERATOR_TOKEN = "demo-operator-token-0123456789"
# the element that shows a page has rendered its data (not just its skeleton)
PAGE_READY = {
    "overview": '[data-testid="stMetricValue"]',
    "series": '[data-testid="stVegaLiteChart"]',
    "anomalies": '[data-testid="stHeading"] >> text=/Anomalies \\(|Alerts/',
    "models": '[data-testid="stMarkdownContainer"] >> text=Retrain',
    "what-if": '[data-testid="stVegaLiteChart"]',
}


def wait_http(url: str, timeout_s: float = 60.0) -> None:
    """Wait until ``GET url`` answers 200; raise ``TimeoutError`` after ``timeout_s``."""
    poll(f"{url} to answer 200", lambda: http_ready(url), timeout_s=timeout_s)


def demo_settings(workdir: Path, *, seed: int = 3) -> Any:
    """Settings of the demo: simulator at 5-minute steps, four days of history (enough for the
    retrain's backtests), SQLite in
    ``workdir``, one operator token (so the acknowledge and retrain buttons work)."""
    from surgecast.config import Settings

    return Settings(
        backfill_days=4,
        stale_after_seconds=900,
        sources={"simulator": {"type": "simulator", "seed": seed, "step": "5min"}},
        store={"url": f"sqlite:///{workdir / 'demo.db'}"},
        forecast={"history_days": 4},
        detect={"history_days": 1},
        models_dir=str(workdir / "models"),
        api={"scaling_cache_seconds": 0, "tokens": [
            {"name": "demo", "token": OPERATOR_TOKEN, "scope": "operator"}]},
    )  # fmt: skip


def fill_store(settings: Any, store: Any, *, hours: float, now: pd.Timestamp) -> int:
    """Tick the pipeline every 5 minutes over the ``hours`` before ``now`` and once at ``now``,
    as the scheduler would have. Returns the number of ticks."""
    from surgecast.wiring import build_pipeline

    pipeline = build_pipeline(settings, store)
    steps = int(hours * 12)
    grid = now.floor("5min")
    for k in range(steps, -1, -1):
        # the last tick at now itself, so the newest recommendation is valid for a few minutes
        report = pipeline.tick(grid - pd.Timedelta(minutes=5 * k) if k else now)
        if k % 12 == 0:
            log.info("demo store: tick %s (%d to go, %d errors)", report.now, k, len(report.errors))
    return steps + 1


@dataclass
class ApiServer:
    """The surgecast API served by uvicorn in a thread on 127.0.0.1 (``stop`` ends it)."""

    app: Any
    port: int = 0

    def __post_init__(self) -> None:
        import uvicorn

        self.port = self.port or free_port()
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False))  # fmt: skip
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        self._thread.start()
        wait_http(f"{self.url}/healthz")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def start_dashboard(api_url: str, port: int, *, log_path: Path, token: str | None = None,
                    refresh: str = "30s") -> subprocess.Popen[bytes]:  # fmt: skip
    """``streamlit run dashboard/app.py`` on 127.0.0.1:``port`` reading ``api_url``, its output
    in ``log_path``; returns once ``/_stcore/health`` answers."""
    from surgecast.runner import dashboard_command

    env = {**os.environ, "SURGECAST_API_URL": api_url, "SURGECAST_DASHBOARD_REFRESH": refresh}
    if token:
        env["SURGECAST_API_TOKEN"] = token
    command = dashboard_command("127.0.0.1", port) + ["--server.fileWatcherType", "none"]
    with open(log_path, "ab") as log_file:  # a file, not a pipe: a full pipe would block it
        proc = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout_s=60)
    except TimeoutError:
        proc.kill()
        proc.wait(timeout=10)
        tail = Path(log_path).read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the dashboard did not start; its log ends with:\n{tail}") from None
    return proc


@contextlib.contextmanager
def browser(width: int = 1600, height: int = 1000) -> Iterator[Any]:
    """A Playwright page in headless Debian chromium (no browser download)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} not found: apt-get install chromium (or set SURGECAST_CHROMIUM)")
    with sync_playwright() as pw:
        chrome = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield chrome.new_page(viewport={"width": width, "height": height})
        finally:
            chrome.close()


def open_page(page: Any, dashboard_url: str, name: str, timeout_s: float = 60.0) -> None:
    """Navigate to one dashboard page and wait until its data has rendered."""
    page.goto(f"{dashboard_url}/?page={name}")
    page.wait_for_selector(PAGE_READY[name], timeout=timeout_s * 1000)
    # Streamlit streams elements over its websocket: wait until the run is over
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_s * 1000
    )
    page.wait_for_timeout(800)  # vega draws its canvas after the element appears


def capture_pages(
    dashboard_url: str, out_dir: Path, pages: list[str], *,
    check: Callable[[Any, str], None] | None = None, height: int = 1000,
) -> dict[str, Path]:  # fmt: skip
    """A PNG of each page into ``out_dir`` (a 1600 x ``height`` window: Streamlit scrolls
    inside its main block, so the window's height is what a screenshot holds);
    ``check(page, name)`` runs on each page before its screenshot (the browser test's
    assertions)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = {}
    with browser(height=height) as page:
        for name in pages:
            open_page(page, dashboard_url, name)
            if check is not None:
                check(page, name)
            shots[name] = out_dir / f"{name}.png"
            page.screenshot(path=str(shots[name]), full_page=True)
    return shots


def demo_time(at: str | None, wall: pd.Timestamp | None = None) -> pd.Timestamp:
    """``at`` as a UTC time, or by default the last Saturday 17:20 UTC before ``wall``.

    Example:
        >>> demo_time(None, pd.Timestamp("2026-11-28 22:00", tz="UTC"))
        Timestamp('2026-11-28 17:20:00+0000', tz='UTC')
    """
    if at is not None:
        ts = pd.Timestamp(at)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    wall = wall if wall is not None else pd.Timestamp.now(tz="UTC")
    day = wall.normalize() - pd.Timedelta(days=(wall.dayofweek - 5) % 7)
    at_ts = day + pd.Timedelta(hours=17, minutes=20)
    return at_ts if at_ts <= wall else at_ts - pd.Timedelta(days=7)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard-overview.png"),
                        help="where the overview screenshot goes")  # fmt: skip
    parser.add_argument("--all-pages", type=Path, default=None,
                        help="also write every page's screenshot into this directory")  # fmt: skip
    parser.add_argument("--hours", type=float, default=3.0, help="hours of ticks in the store")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--at", default=None,
        help="the demo's now (ISO 8601, UTC); default: the last Saturday 17:20 UTC, ten minutes "
        "before three football kickoffs of the simulator's calendar",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from surgecast.api import create_app
    from surgecast.clock import accelerated_clock
    from surgecast.store import Store
    from surgecast.wiring import build_sources

    work = Path(tempfile.mkdtemp(prefix="surgecast-demo-"))
    store = None
    server = None
    dash = None
    try:
        settings = demo_settings(work, seed=args.seed)
        store = Store(settings.store.url)
        now = demo_time(args.at)
        print(f"filling a demo store with {args.hours:g} h of simulator ticks up to {now} ...",
              flush=True)  # fmt: skip
        fill_store(settings, store, hours=args.hours, now=now)
        # the API's clock runs on from the demo's now; the dashboard takes its now from the API
        app = create_app(settings, store, clock=accelerated_clock(1.0, now),
                         calendar=build_sources(settings).events)  # fmt: skip
        server = ApiServer(app).start()
        dash_port = free_port()
        dash = start_dashboard(server.url, dash_port, log_path=work / "dashboard.log")
        pages = list(PAGE_READY) if args.all_pages else ["overview"]
        shots = capture_pages(f"http://127.0.0.1:{dash_port}", work / "shots", pages, height=1500)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shots["overview"], args.out)
        print(f"wrote {args.out}")
        if args.all_pages:
            args.all_pages.mkdir(parents=True, exist_ok=True)
            for path in shots.values():
                shutil.copyfile(path, args.all_pages / path.name)
            print(f"wrote {len(shots)} pages into {args.all_pages}")
    finally:
        stop_process(dash, timeout_s=10)
        if server is not None:
            server.stop()
        if store is not None:
            store.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
