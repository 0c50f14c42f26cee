"""The webhook executor against a real local HTTP server: dry run by default, a pushed document
per tick, and a dead webhook that never stops the tick."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pandas as pd
import pytest
from processes import free_port

from surgecast.config import Settings
from surgecast.executors import WebhookExecutor
from surgecast.store import Store
from surgecast.wiring import build_pipeline

NOW = pd.Timestamp("2026-11-20 18:00", tz="UTC")


@pytest.fixture
def receiver():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


def settings_for(tmp_path, **executors) -> Settings:
    return Settings(
        backfill_days=1,
        stale_after_seconds=900,
        sources={"simulator": {"type": "simulator", "seed": 11, "step": "5min"}},
        store={"url": f"sqlite:///{tmp_path / 's.db'}"},
        models_dir=str(tmp_path / "models"),
        forecast={"history_days": 1, "event_model": "none"},
        detect={"history_days": 1},
        executors=executors,
    )


def test_dry_run_is_the_default_and_sends_nothing(tmp_path, receiver):
    url, received = receiver
    settings = settings_for(tmp_path, webhook_urls=[url])
    assert settings.executors.dry_run is True
    store = Store(settings.store.url)
    try:
        report = build_pipeline(settings, store).tick(NOW)
    finally:
        store.close()
    assert report.recommendations and received == []


def test_the_tick_pushes_its_recommendations(tmp_path, receiver):
    url, received = receiver
    settings = settings_for(tmp_path, webhook_urls=[url], dry_run=False)
    store = Store(settings.store.url)
    try:
        report = build_pipeline(settings, store).tick(NOW)
    finally:
        store.close()
    assert not [e for e in report.errors if e["stage"] == "execute"]
    assert len(received) == 1
    doc = received[0]
    assert doc["source"] == "surgecast" and doc["at"] == "2026-11-20T18:00:00Z"
    pushed = {r["service"]: r["recommended_replicas"] for r in doc["recommendations"]}
    assert pushed == {r["service"]: r["recommended_replicas"] for r in report.recommendations}
    assert all(r["reason"] for r in doc["recommendations"])


def test_a_dead_webhook_is_reported_and_never_stops_the_tick(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/hook"
    settings = settings_for(tmp_path, webhook_urls=[dead], dry_run=False, timeout_seconds=1)
    store = Store(settings.store.url)
    try:
        report = build_pipeline(settings, store).tick(NOW)
        assert len(store.latest_recommendations()) == len(settings.services)
    finally:
        store.close()
    errors = [e for e in report.errors if e["stage"] == "execute"]
    assert len(errors) == 1 and dead in errors[0]["error"]


def test_no_urls_or_no_recommendations_send_nothing():
    ex = WebhookExecutor([], dry_run=False)
    assert ex.execute([{"service": "x", "recommended_replicas": 1, "reason": "r"}], NOW).sent == 0
    assert WebhookExecutor(["http://127.0.0.1:1/"], dry_run=False).execute([], NOW).sent == 0


def test_webhook_urls_are_validated(tmp_path):
    with pytest.raises(ValueError, match="webhook_urls"):
        settings_for(tmp_path, webhook_urls=["ftp://example/hook"])
