"""Every dashboard page under Streamlit's AppTest, against a live API (uvicorn on 127.0.0.1)
backed by a store filled by real ticks of the simulator and one retrain.

Each page must render without an exception and without the "hit a bug" banner, and the key
numbers it shows must be those the API serves. The operator buttons (acknowledge, retrain)
must reach the API; a dead API must give the "unreachable" banner on every page.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from processes import free_port, poll
from streamlit.testing.v1 import AppTest

from actions.what_if import WhatIfSettings, summarise, what_if_plan
from dashboard.client import ApiClient
from dashboard.demo import OPERATOR_TOKEN, ApiServer, demo_settings, fill_store
from surgecast.api import create_app
from surgecast.store import Store
from surgecast.wiring import build_pipeline, build_sources

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGES = ["overview", "series", "anomalies", "models", "what-if"]
ANOMALOUS = "payments:deposit_failures_per_second"


class Retrain:
    """The API's retrain hook, counted (the real job is tested with the pipeline)."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self) -> dict[str, str]:
        with self.lock:
            self.calls += 1
        return {ANOMALOUS: "seasonal_naive"}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    work = tmp_path_factory.mktemp("dashboard")
    settings = demo_settings(work)
    store = Store(settings.store.url)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    fill_store(settings, store, hours=1, now=now)
    build_pipeline(settings, store).retrain()
    at = now - pd.Timedelta(minutes=10)
    # two on one series, as the detectors may add more: the tests must pick the right one
    store.save_anomalies(pd.DataFrame({
        "unique_id": [ANOMALOUS] * 2, "ds": [at, at - pd.Timedelta(minutes=20)], "y": [4.2, 0.0],
        "expected": [0.3, 0.3], "lower": [0.1, 0.1], "upper": [0.6, 0.6], "score": [0.97, 0.91],
        "is_anomaly": [True, True], "kind": ["spike", "drop"], "detector": ["novelty"] * 2,
    }))  # fmt: skip
    # a fixture 2 h ahead, whatever the hour: the overview's outlook always has one
    store.save_event({"event_id": "test-final", "name": "Test Final", "start": now + pd.Timedelta(hours=2),
                      "end": now + pd.Timedelta(hours=4), "sport": "football",
                      "competition": "Test Cup", "importance": 1.0}, "ops", now)  # fmt: skip
    retrain = Retrain()
    app = create_app(settings, store, calendar=build_sources(settings).events, retrain=retrain)
    server = ApiServer(app).start()
    # the tests find the planted spike by its time
    yield {"url": server.url, "retrain": retrain, "planted": at,
           "client": ApiClient(server.url, OPERATOR_TOKEN)}  # fmt: skip
    server.stop()
    store.close()


def run_page(monkeypatch, url: str, page: str, token: str | None = None) -> AppTest:
    monkeypatch.setenv("SURGECAST_API_URL", url)
    monkeypatch.delenv("SURGECAST_API_TOKEN", raising=False)
    if token:
        monkeypatch.setenv("SURGECAST_API_TOKEN", token)
    st.cache_data.clear()  # each test reads the API afresh
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["page"] = page
    return at.run()


def assert_rendered(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    bugs = [e.value for e in at.error if "hit a bug" in e.value or "unreachable" in e.value]
    assert not bugs, bugs


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_overview_shows_every_services_recommendation_as_the_api_serves_it(live, monkeypatch):
    at = run_page(monkeypatch, live["url"], "overview")
    assert_rendered(at)
    recs = live["client"].get("/v1/recommendations")
    assert len(recs) == 4
    shown = metrics(at)
    for rec in recs:
        assert shown[rec["service"]] == f"{rec['recommended_replicas']} replicas"
    table = at.dataframe[0].value.set_index("service")
    for rec in recs:
        row = table.loc[rec["service"]]
        assert row["replicas"] == rec["recommended_replicas"]
        assert row["forecast peak"] == pytest.approx(rec["inputs"]["forecast_peak"])
        assert row["load now"] == pytest.approx(rec["inputs"]["current_load"])
        assert row["reason"] == rec["reason"]
    assert any("fixtures" in h.value for h in at.subheader)
    outlook = at.dataframe[1].value  # the planted "Test Final" at least
    assert "Test Final" in set(outlook["fixture"])
    timeline = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert len(timeline["layer"]) == 4  # bars, ready-by ticks, labels, now
    assert any(m.value.startswith("- Test Final ") for m in at.markdown)


def test_series_explorer_charts_the_series_and_its_numbers_match_the_api(live, monkeypatch):
    at = run_page(monkeypatch, live["url"], "series")
    assert_rendered(at)
    uid = at.selectbox(key="series").value
    assert uid.endswith(":requests_per_second")
    points = live["client"].get(f"/v1/series/{uid}/points")["points"]
    last = points[-1]
    assert metrics(at)["Last value"] == f"{last['y']:,.4g} at {pd.Timestamp(last['ds']):%H:%M}"
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    # the values (actuals, forecast band and line) and the replicas' step line on a second axis
    assert spec["resolve"]["scale"]["y"] == "independent"
    values, step = spec["layer"]
    assert step["mark"]["interpolate"] == "step-after"
    assert step["encoding"]["y"]["field"] == "replicas"
    marks = {(m["mark"]["type"], m["encoding"].get("y", {}).get("field")) for m in values["layer"]}
    assert {("area", "yhat_lower"), ("line", "yhat"), ("line", "y")} <= marks
    # another series and window re-render without error
    at.selectbox(key="series").select(ANOMALOUS).run()
    at.radio(key="window").set_value("24 h").run()
    assert_rendered(at)
    flagged = live["client"].get("/v1/anomalies", params={"unique_id": ANOMALOUS})["items"]
    assert len(flagged) >= 2  # the planted ones at least
    assert metrics(at)["Anomalies in window"] == str(len(flagged))


def test_anomalies_page_lists_the_api_anomalies_and_acknowledges_one(live, monkeypatch):
    at = run_page(monkeypatch, live["url"], "anomalies", token=OPERATOR_TOKEN)
    assert_rendered(at)
    items = live["client"].get("/v1/anomalies")["items"]
    table = at.dataframe[0].value
    assert len(table) == len(items) >= 1
    planted = (table["unique_id"] == ANOMALOUS) & (table["ds"] == live["planted"])
    assert planted.sum() == 1
    row = table[planted].iloc[0]
    assert row["kind"] == "spike" and row["score"] == pytest.approx(0.97)
    at.selectbox(key="a_detail").select(int(table.index[planted][0])).run()
    assert metrics(at)["Expected range"] == "0.1 .. 0.6"
    at.text_input(key="ack_reason").input("provider incident, handled")
    at.button[0].click().run()  # the form's Acknowledge
    assert_rendered(at)
    assert any("Acknowledged" in s.value for s in at.success)
    after = live["client"].get("/v1/anomalies", params={"unique_id": ANOMALOUS})["items"]
    [acked] = [a for a in after if pd.Timestamp(a["ds"]) == live["planted"]]
    assert acked["acknowledged"] is True


def test_anomalies_page_filters_by_state(live, monkeypatch):
    at = run_page(monkeypatch, live["url"], "anomalies")
    at.multiselect(key="a_state").select("silenced").run()
    assert_rendered(at)
    assert any("No anomalies match" in i.value for i in at.info)  # none is silenced
    at = run_page(monkeypatch, live["url"], "anomalies")
    shown = at.dataframe[0].value
    assert len(shown) >= 2  # the two planted anomalies at least
    for state in sorted(set(shown["state"])):  # each state shows exactly its own rows
        at = run_page(monkeypatch, live["url"], "anomalies")
        at.multiselect(key="a_state").select(state).run()
        assert_rendered(at)
        only = at.dataframe[0].value
        assert set(only["state"]) == {state} and len(only) == (shown["state"] == state).sum()


def test_models_page_shows_the_registry_and_retrains_with_an_operator_token(live, monkeypatch):
    at = run_page(monkeypatch, live["url"], "models", token=OPERATOR_TOKEN)
    assert_rendered(at)
    models = live["client"].get("/v1/models")
    table = at.dataframe[0].value.set_index("series")
    assert len(table) == len(models) >= 10
    for m in models:
        assert table.loc[m["unique_id"], "model"] == m["model"]
        if m["model"] in m["scores"]:
            assert table.loc[m["unique_id"], "MASE"] == pytest.approx(m["scores"][m["model"]])
        assert 0.0 <= table.loc[m["unique_id"], "coverage"] <= 1.0
    before = live["retrain"].calls
    at.button(key="retrain").click().run()
    assert_rendered(at)
    assert any("Retrain" in s.value for s in at.success)
    poll("the retrain hook", lambda: live["retrain"].calls > before, timeout_s=30)
    assert live["retrain"].calls == before + 1


def test_retrain_without_a_token_is_disabled(live, monkeypatch):
    at = run_page(monkeypatch, live["url"], "models")
    assert_rendered(at)
    assert at.button(key="retrain").disabled


def test_what_if_plans_with_the_service_planner_over_the_api_forecast(live, monkeypatch):
    before = pd.Timestamp.now(tz="UTC")
    at = run_page(monkeypatch, live["url"], "what-if")
    at.toggle(key="w_extend").set_value(False).run()
    assert_rendered(at)
    service = at.selectbox(key="w_service").value
    rec = live["client"].get(f"/v1/recommendations/{service}")
    inputs = rec["inputs"]
    cfg = WhatIfSettings(
        capacity_per_replica=inputs["capacity_per_replica"] * 2,
        target_utilization=inputs["target_utilization"], startup_delay_s=inputs["startup_delay_s"],
        margin_s=inputs["margin_s"], min_replicas=inputs["min_replicas"],
        max_replicas=inputs["max_replicas"], level=inputs["level"],
        ready_now=rec["recommended_replicas"],
    )  # fmt: skip
    at.number_input(key="w_capacity").set_value(cfg.capacity_per_replica).run()
    assert_rendered(at)
    after = pd.Timestamp.now(tz="UTC")
    points = live["client"].get(f"/v1/series/{inputs['load_series']}/forecast",
                                params={"start": before.isoformat()})["points"]  # fmt: skip
    fc = pd.DataFrame(points)
    fc["ds"] = pd.to_datetime(fc["ds"], utc=True)
    expected = set()
    for now in (before, after):  # the page's clock is between the two
        rows = fc[fc["ds"] >= now.floor("min")].reset_index(drop=True)
        expected.add(str(summarise(what_if_plan(rows, cfg), cfg).peak_replicas))
    assert metrics(at)["Peak replicas"] in expected


def test_every_page_says_the_api_is_unreachable_without_a_stack_trace(monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"
    for page in PAGES:
        at = run_page(monkeypatch, dead, page)
        assert not at.exception, (page, [e.value for e in at.exception])
        assert any("API unreachable" in e.value for e in at.error), page


def test_an_empty_store_gives_the_no_data_yet_state(tmp_path, monkeypatch):
    settings = demo_settings(tmp_path)
    store = Store(settings.store.url)
    server = ApiServer(create_app(settings, store)).start()
    try:
        for page in ("overview", "what-if"):
            at = run_page(monkeypatch, server.url, page)
            assert_rendered(at)
            assert any(i.value.startswith("No data yet") for i in at.info), page
        at = run_page(monkeypatch, server.url, "models")
        assert any("No model registered yet" in i.value for i in at.info)
    finally:
        server.stop()
        store.close()


def test_before_the_first_tick_of_surgecast_run_the_overview_says_it_is_running(tmp_path, monkeypatch):
    settings = demo_settings(tmp_path)
    store = Store(settings.store.url)
    alive = {"scheduler": "child process", "pid": 1, "alive": True}
    server = ApiServer(create_app(settings, store, process_info=lambda: alive)).start()
    try:  # /readyz answers 503 until a tick finishes; its body still names the scheduler
        at = run_page(monkeypatch, server.url, "overview")
        assert_rendered(at)
        assert any("the first tick is running now" in i.value for i in at.info)
    finally:
        server.stop()
        store.close()
