"""The dashboard in a real browser: Debian chromium, headless, driven by Playwright.

The API (uvicorn on 127.0.0.1, a store with two hours of simulator ticks) and the dashboard
(``streamlit run``, a child process on 127.0.0.1) run for real. Each page is opened, waited for
until its data has rendered, checked, and captured as a PNG into the artefacts directory
(``$SURGECAST_ARTEFACTS/dashboard``, default ``./artefacts/dashboard``). Then the API is
stopped and the overview must say so in its banner.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from processes import free_port, stop_process

from dashboard.client import ApiClient
from dashboard.demo import (
    PAGE_READY,
    ApiServer,
    browser,
    capture_pages,
    demo_settings,
    fill_store,
    start_dashboard,
)
from surgecast.api import create_app
from surgecast.store import Store
from surgecast.wiring import build_sources

pytestmark = pytest.mark.slow  # ~1 min; make test installs chromium (scripts/system-deps.sh)

ARTEFACTS = Path(os.environ.get("SURGECAST_ARTEFACTS", Path(__file__).resolve().parents[1] / "artefacts"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    work = tmp_path_factory.mktemp("browser")
    settings = demo_settings(work)
    store = Store(settings.store.url)
    fill_store(settings, store, hours=2, now=pd.Timestamp.now(tz="UTC").floor("s"))
    server = ApiServer(create_app(settings, store, calendar=build_sources(settings).events)).start()
    port = free_port()
    dashboard = start_dashboard(server.url, port, log_path=work / "dashboard.log", refresh="5s")
    yield {"api": server, "url": f"http://127.0.0.1:{port}", "store": store}
    stop_process(dashboard, timeout_s=10)
    server.stop()
    store.close()


def text_of(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.textContent.trim())")


def test_every_page_renders_in_chromium_with_services_chart_and_recommendations(stack):
    recs = ApiClient(stack["api"].url).get("/v1/recommendations")
    services = sorted(r["service"] for r in recs)
    assert len(services) == 4

    def check(page, name: str) -> None:
        assert not page.query_selector('[data-testid="stException"]'), name
        body = page.inner_text("body")
        assert "hit a bug" not in body and "API unreachable" not in body, name
        if name == "overview":
            labels = text_of(page, '[data-testid="stMetricLabel"]')
            assert sorted(labels) == services
            values = text_of(page, '[data-testid="stMetricValue"]')
            assert sorted(values) == sorted(f"{r['recommended_replicas']} replicas" for r in recs)
            # the recommendations table: a data grid whose first column holds the services
            cells = text_of(page, '[data-testid="stDataFrame"] [data-testid^="glide-cell-0-"]')
            assert set(services) <= set(cells), cells
        if name in ("series", "what-if"):
            box = page.query_selector('[data-testid="stVegaLiteChart"]').bounding_box()
            assert box and box["width"] > 300 and box["height"] > 200, box
            drawn = page.query_selector('[data-testid="stVegaLiteChart"] canvas, '
                                        '[data-testid="stVegaLiteChart"] svg')  # fmt: skip
            assert drawn is not None, "the chart has no canvas"

    shots = capture_pages(stack["url"], ARTEFACTS / "dashboard", list(PAGE_READY), check=check)
    for name, path in shots.items():
        assert path.stat().st_size > 20_000, f"{name}: screenshot too small to hold the page"


def test_the_overview_says_the_api_is_unreachable_when_it_is_down(stack):
    stack["api"].stop()
    with browser() as page:
        page.goto(f"{stack['url']}/?page=overview")
        page.wait_for_selector("text=surgecast API unreachable", timeout=60_000)
        assert not page.query_selector('[data-testid="stException"]')
        (ARTEFACTS / "dashboard").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / "dashboard" / "api-down.png"), full_page=True)
