"""Alert delivery: the outbox to a real Alertmanager, with retry, backoff and the alert lifecycle.

The end-to-end tests start the Debian ``prometheus-alertmanager`` binary on 127.0.0.1 (a free
port, clustering off, storage and config in ``tmp_path``) and a stdlib HTTP server as its webhook
receiver; the tick runs on the real simulator and a real store. Missing binary = failure, not a
skip (``scripts/system-deps.sh`` installs it). Waits are bounded polls, never timed sleeps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from processes import free_port, http_ready, poll, stop_process
from pydantic import ValidationError

from actions.alerts import SATURATION_ALERTNAME, saturation_labels
from surgecast.config import AlertingSettings, Settings, load_settings
from surgecast.delivery import (
    AlertmanagerSink,
    DeliveryError,
    OutboxDeliverer,
    RetryPolicy,
    WebhookSink,
    build_deliverer,
)
from surgecast.errors import ConfigError
from surgecast.pipeline import Pipeline
from surgecast.scheduler import ServiceState, build_scheduler, run_delivery
from surgecast.store import Store
from surgecast.wiring import build_pipeline, build_sources, resolve_series

AM_BIN = os.environ.get("SURGECAST_ALERTMANAGER_BIN") or shutil.which("prometheus-alertmanager")
READY_TIMEOUT_S = 30.0
T0 = pd.Timestamp("2026-11-28 19:00", tz="UTC")


# -- real processes: Alertmanager and a webhook receiver -----------------------------------------
class Receiver:
    """A stdlib HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def notified(self, status: str, service: str) -> bool:
        """Alertmanager sent a notification with an alert of ``service`` in ``status``."""
        return any(
            a["status"] == status and a["labels"].get("service") == service
            for body in list(self.bodies)
            for a in body.get("alerts", [])
        )


class Alertmanager:
    """The Debian Alertmanager on 127.0.0.1:``port``, no clustering, state in ``root``."""

    def __init__(self, root: Path, port: int, webhook_url: str) -> None:
        self.root, self.port = root, port
        self.url = f"http://127.0.0.1:{port}"
        self.config = root / "alertmanager.yml"
        self.config.write_text(
            "route:\n  receiver: hook\n  group_by: [alertname, service]\n"
            "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
            f"receivers:\n  - name: hook\n    webhook_configs:\n"
            f"      - url: {webhook_url}\n        send_resolved: true\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.root / f"alertmanager-{self.starts}.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(AM_BIN), f"--config.file={self.config}",
                 f"--storage.path={self.root / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 f"--web.external-url={self.url}",
                 "--cluster.listen-address="],  # empty: no gossip listener on 0.0.0.0:9094
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"alertmanager did not become ready; log:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        return http_ready(f"{self.url}/-/ready")

    def stop(self) -> None:
        stop_process(self.proc, timeout_s=15)
        self.proc = None

    def alerts(self, alertname: str = SATURATION_ALERTNAME) -> list[dict[str, Any]]:
        """Active alerts named ``alertname`` (resolved ones are no longer listed)."""
        params = {"filter": f'alertname="{alertname}"'}
        response = httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=5.0)
        response.raise_for_status()
        return list(response.json())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: Receiver) -> Iterator[Alertmanager]:
    if AM_BIN is None:
        pytest.fail(
            "prometheus-alertmanager not found; install it (apt-get install "
            "prometheus-alertmanager, or scripts/system-deps.sh) or set SURGECAST_ALERTMANAGER_BIN"
        )
    root = tmp_path / "alertmanager"
    root.mkdir()
    am = Alertmanager(root, free_port(), receiver.url)
    am.start()
    try:
        yield am
    finally:
        am.stop()


# -- the tick: a forecast that crosses max capacity, then drops ----------------------------------
def tick_times() -> tuple[pd.Timestamp, pd.Timestamp]:
    """Two tick times 10 min apart, both past, so Alertmanager's clock sees the resolution as
    past and the firing alert (endsAt = tick + hold) as current."""
    wall = pd.Timestamp.now(tz="UTC").floor("5min")
    return wall - pd.Timedelta("10min"), wall


class YesterdaySpike:
    """The real simulator, with one point of some load series at 50,000 req/s yesterday at
    ``at + 5 min`` (above what 200 replicas of any service carry).

    The seasonal-naive forecast made at ``at`` then crosses max capacity 5 minutes ahead; the
    one made 10 minutes later no longer sees the spike in its lead window.
    """

    name = "simulator"

    def __init__(self, inner: Any, series: set[str], at: pd.Timestamp) -> None:
        self.inner, self.series = inner, series
        self.point = at - pd.Timedelta(days=1) + pd.Timedelta("5min")

    def fetch(self, request: Any, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        frame = self.inner.fetch(request, start, end)
        if request.unique_id in self.series:
            frame.loc[frame["ds"] == self.point, "y"] = 50_000.0
        return frame


def spiked_pipeline(
    tmp_path: Path, store: Store, am_url: str, services: set[str], at: pd.Timestamp
) -> Pipeline:
    capacities = {"odds-api": 250, "bet-placement": 60, "account": 80, "payments": 40}
    config: dict[str, Any] = {
        "backfill_days": 3,
        "stale_after_seconds": 900,
        "sources": {"simulator": {"type": "simulator", "seed": 11, "step": "5min",
                                  "incidents_per_day": 0}},
        "store": {"url": "sqlite://"},
        "models_dir": str(tmp_path / "models"),
        # room for every natural peak (kickoffs): only the injected spike exceeds max_replicas
        "services": {name: {"capacity_per_replica": cap, "max_replicas": 200}
                     for name, cap in capacities.items()},
        "forecast": {"history_days": 3, "event_model": "none"},
        # the detectors train on the last 12 h only: the injected spike is forecast input only
        "detect": {"history_days": 0.5, "rescore_minutes": 60},
        # re-sent every 10 min, endsAt 35 min ahead: the firing alert is current on the wall clock
        "alerting": {"alertmanager_urls": [am_url], "resend_interval_seconds": 600},
    }  # fmt: skip
    settings = Settings(**config)
    sources = build_sources(settings)
    series = {f"{s}:requests_per_second" for s in services}
    collector = YesterdaySpike(sources.collectors["simulator"], series, at)
    return Pipeline(settings, store, {"simulator": collector}, resolve_series(settings, sources))


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'surgecast.db'}")
    try:
        yield store
    finally:
        store.close()


def test_predicted_saturation_fires_in_alertmanager_and_resolves_when_the_forecast_drops(
    tmp_path, sqlite_store, alertmanager, receiver
):
    first, second = tick_times()
    pipeline = spiked_pipeline(tmp_path, sqlite_store, alertmanager.url, {"bet-placement"}, first)
    deliverer = build_deliverer(pipeline.settings.alerting, sqlite_store)

    report = pipeline.tick(first)
    assert report.errors == []
    rec = next(r for r in report.recommendations if r["service"] == "bet-placement")
    assert rec["inputs"]["clamped"] == "max"
    delivered = deliverer.deliver_due()
    assert delivered.ok and delivered.delivered >= 1

    [alert] = alertmanager.alerts()
    assert alert["labels"] == saturation_labels("bet-placement")
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["summary"] == "bet-placement will exceed max capacity in 5 min"
    assert float(alert["annotations"]["forecast_peak"]) > float(alert["annotations"]["max_load"])
    assert pd.Timestamp(alert["startsAt"]) == first
    assert pd.Timestamp(alert["endsAt"]) > pd.Timestamp.now(tz="UTC")
    poll("the firing notification", lambda: receiver.notified("firing", "bet-placement"))

    # ten minutes later the spike is out of the lead window: the alert is resolved
    report = pipeline.tick(second)
    assert report.errors == []
    rec = next(r for r in report.recommendations if r["service"] == "bet-placement")
    assert rec["inputs"]["clamped"] is None
    resolution = [
        a for a in sqlite_store.pending_alerts(now=second)
        if a["payload"]["labels"]["alertname"] == SATURATION_ALERTNAME
    ]  # fmt: skip
    assert [pd.Timestamp(a["payload"]["endsAt"]) for a in resolution] == [second]
    assert deliverer.deliver_due().delivered >= 1
    poll("the alert to leave the active list", lambda: alertmanager.alerts() == [])
    poll("the resolved notification", lambda: receiver.notified("resolved", "bet-placement"))
    # resolved: nothing more to say about it
    assert pipeline.alerts.book("saturation").sent == {}


def test_an_outage_queues_alerts_and_delivers_each_once_after_a_restart(
    tmp_path, sqlite_store, alertmanager
):
    first, _ = tick_times()
    services = {"bet-placement", "odds-api", "payments"}
    pipeline = spiked_pipeline(tmp_path, sqlite_store, alertmanager.url, services, first)
    deliverer = build_deliverer(pipeline.settings.alerting, sqlite_store)
    alertmanager.stop()

    assert pipeline.tick(first).errors == []
    queued = sqlite_store.pending_alerts(now=first + pd.Timedelta(days=1))
    saturation = {
        a["payload"]["labels"]["service"]
        for a in queued
        if a["payload"]["labels"]["alertname"] == SATURATION_ALERTNAME
    }
    assert saturation == services

    # Alertmanager is down: every attempt fails, the alerts wait with growing backoff
    now = pd.Timestamp.now(tz="UTC")
    expected_waits = [10, 20, 40]
    for attempt, wait in enumerate(expected_waits, start=1):
        report = deliverer.deliver_due(now)
        assert (report.delivered, report.retrying, report.given_up) == (0, len(queued), 0)
        assert "ConnectError" in report.errors[0]
        assert deliverer.deliver_due(now + pd.Timedelta(seconds=wait - 1)).retrying == 0
        waiting = sqlite_store.pending_alerts(now=now + pd.Timedelta(days=1))
        assert sorted(a["id"] for a in waiting) == sorted(a["id"] for a in queued)  # none lost
        assert {a["attempts"] for a in waiting} == {attempt}
        assert {a["next_attempt_at"] for a in waiting} == {now + pd.Timedelta(seconds=wait)}
        now += pd.Timedelta(seconds=wait)
    # a tick meanwhile duplicates nothing: still one pending alert per condition
    assert pipeline.tick(first + pd.Timedelta("5min")).errors == []
    before = {a["id"] for a in queued}
    queued = sqlite_store.pending_alerts(now=now + pd.Timedelta(days=1))
    assert before <= {a["id"] for a in queued}
    assert len({a["dedup_key"] for a in queued}) == len(queued)

    alertmanager.start()  # same port, same storage
    report = deliverer.deliver_due(now)
    assert report.ok and report.delivered == len(queued)
    assert sqlite_store.pending_alerts(now=now + pd.Timedelta(days=1)) == []
    assert deliverer.deliver_due(now + pd.Timedelta(hours=1)).delivered == 0

    shown = alertmanager.alerts()
    fingerprints = [a["fingerprint"] for a in shown]
    assert len(fingerprints) == len(set(fingerprints)) == len(services)
    assert sorted(a["labels"]["service"] for a in shown) == sorted(services)
    for alert in shown:
        assert alert["labels"] == saturation_labels(alert["labels"]["service"])
        assert alert["status"]["state"] == "active"


# -- sinks: errors say what failed; 4xx is permanent, 5xx and timeouts are not -------------------
def test_alertmanager_sink_posts_a_json_array_to_the_v2_endpoint():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    sink = AlertmanagerSink("http://am:9093/", transport=httpx.MockTransport(handler))
    sink.send([{"labels": {"alertname": "A"}}], T0)
    assert str(seen[0].url) == "http://am:9093/api/v2/alerts"
    assert json.loads(seen[0].content) == [{"labels": {"alertname": "A"}}]


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (422, True), (429, False), (500, False), (503, False)]
)
def test_sink_errors_name_the_url_and_the_answer(status, permanent):
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text="bad alert"))
    sink = AlertmanagerSink("http://am:9093", transport=transport)
    with pytest.raises(DeliveryError) as info:
        sink.send([{"labels": {"alertname": "A"}}], T0)
    assert info.value.permanent is permanent
    assert f"http://am:9093/api/v2/alerts answered HTTP {status}: bad alert" in str(info.value)


def test_a_timeout_is_a_transient_delivery_error():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    sink = AlertmanagerSink("http://am:9093", timeout_seconds=0.5,
                            transport=httpx.MockTransport(handler))  # fmt: skip
    with pytest.raises(DeliveryError, match=r"no answer within 0.5 s") as info:
        sink.send([{"labels": {"alertname": "A"}}], T0)
    assert info.value.permanent is False


def test_webhook_sink_adds_the_status(receiver):
    sink = WebhookSink(receiver.url)
    firing = {"labels": {"alertname": "A"}, "endsAt": "2026-11-28T19:10:00Z"}
    resolved = {"labels": {"alertname": "B"}, "endsAt": "2026-11-28T18:59:00Z"}
    sink.send([firing, resolved], T0)
    [body] = receiver.bodies
    assert body["source"] == "surgecast"
    assert [a["status"] for a in body["alerts"]] == ["firing", "resolved"]


# -- the deliverer on a real store with a scripted sink ------------------------------------------
class ScriptedSink:
    """A sink whose answers the test sets: ``down`` (transient) or ``reject`` (labels refused)."""

    name = "scripted"

    def __init__(self) -> None:
        self.down = False
        self.reject: set[str] = set()
        self.received: list[list[Any]] = []

    def send(self, alerts, now):
        if self.down:
            raise DeliveryError("scripted: connection refused")
        bad = [a for a in alerts if a["labels"]["alertname"] in self.reject]
        if bad:
            raise DeliveryError("scripted: HTTP 400 invalid alert", permanent=True)
        self.received.append(list(alerts))


def alert(name: str) -> dict[str, Any]:
    return {"labels": {"alertname": name}, "startsAt": "2026-11-28T19:00:00Z"}


def test_backoff_doubles_up_to_the_cap():
    policy = RetryPolicy(base=pd.Timedelta("10s"), factor=2.0, cap=pd.Timedelta("5min"))
    assert [policy.delay(n).total_seconds() for n in range(8)] == [
        10, 20, 40, 80, 160, 300, 300, 300,
    ]  # fmt: skip
    assert policy.next_attempt(T0, 0, T0 + pd.Timedelta("1s")) == T0 + pd.Timedelta("11s")


def test_retry_gives_up_after_max_attempts_or_max_age():
    policy = RetryPolicy(max_attempts=3, max_age=pd.Timedelta("1h"))
    assert policy.next_attempt(T0, 1, T0) is not None
    assert policy.next_attempt(T0, 2, T0) is None  # this failure is the third attempt
    assert policy.next_attempt(T0, 0, T0 + pd.Timedelta("1h")) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"base": pd.Timedelta(0)}, {"cap": pd.Timedelta("1s")}, {"factor": 0.5}, {"max_attempts": 0}],
)
def test_retry_policy_refuses_nonsense(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_an_outage_loses_nothing_and_duplicates_nothing(sqlite_store, caplog):
    sink = ScriptedSink()
    deliverer = OutboxDeliverer(sqlite_store, [sink], RetryPolicy(), batch_size=2)
    ids = [sqlite_store.enqueue_alert(n, alert(n), T0) for n in ("a", "b", "c")]
    sink.down = True
    report = deliverer.deliver_due(T0)
    # the first batch failed; the second was not tried (one request per run during an outage)
    assert (report.delivered, report.retrying) == (0, 2)
    assert "retry at" in caplog.text
    sink.down = False
    report = deliverer.deliver_due(T0 + pd.Timedelta("10s"))
    assert report.delivered == 3 and report.ok
    names = [a["labels"]["alertname"] for batch in sink.received for a in batch]
    assert sorted(names) == ["a", "b", "c"]
    assert sqlite_store.pending_alerts(now=T0 + pd.Timedelta(days=2)) == []
    assert None not in ids


def test_a_rejected_alert_is_failed_alone_and_loudly(sqlite_store, caplog):
    sink = ScriptedSink()
    sink.reject = {"bad"}
    deliverer = OutboxDeliverer(sqlite_store, [sink], RetryPolicy())
    for name in ("good", "bad", "fine"):
        sqlite_store.enqueue_alert(name, alert(name), T0)
    report = deliverer.deliver_due(T0)
    assert (report.delivered, report.given_up, report.retrying) == (2, 1, 0)
    assert "GAVE UP on alert" in caplog.text and "(bad)" in caplog.text
    assert sqlite_store.pending_alerts(now=T0 + pd.Timedelta(days=2)) == []


def test_alerts_past_max_attempts_are_given_up(sqlite_store):
    sink = ScriptedSink()
    sink.down = True
    deliverer = OutboxDeliverer(sqlite_store, [sink], RetryPolicy(max_attempts=2))
    sqlite_store.enqueue_alert("a", alert("a"), T0)
    assert deliverer.deliver_due(T0).retrying == 1
    report = deliverer.deliver_due(T0 + pd.Timedelta("10s"))
    assert report.given_up == 1
    assert sqlite_store.pending_alerts(now=T0 + pd.Timedelta(days=2)) == []


def test_no_sink_means_alerts_wait_and_it_is_said_once(sqlite_store, caplog):
    deliverer = OutboxDeliverer(sqlite_store, [])
    sqlite_store.enqueue_alert("a", alert("a"), T0)
    deliverer.deliver_due(T0)
    deliverer.deliver_due(T0 + pd.Timedelta("15s"))
    assert caplog.text.count("no Alertmanager or webhook configured") == 1
    assert len(sqlite_store.pending_alerts(now=T0 + pd.Timedelta("1min"))) == 1


# -- configuration and the scheduler job --------------------------------------------------------
def test_alerting_defaults_queue_only():
    cfg = Settings().alerting
    assert cfg.alertmanager_urls == [] and cfg.webhook_urls == []
    assert build_deliverer(cfg, outbox=None).sinks == []  # type: ignore[arg-type]


def test_alerting_config_builds_one_sink_per_url():
    cfg = AlertingSettings(
        alertmanager_urls=["http://127.0.0.1:9093/", "http://127.0.0.1:9094"],
        webhook_urls=["https://hooks.example/x"],
        timeout_seconds=2.0,
    )
    sinks = build_deliverer(cfg, outbox=None).sinks  # type: ignore[arg-type]
    assert [s.endpoint for s in sinks] == [  # type: ignore[attr-defined]
        "http://127.0.0.1:9093/api/v2/alerts",
        "http://127.0.0.1:9094/api/v2/alerts",
        "https://hooks.example/x",
    ]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("alerting:\n  alertmanager_urls: [127.0.0.1:9093]\n",
         "key 'alerting.alertmanager_urls.0'.*not an http:// or https:// URL"),
        ("alerting:\n  alertmanager_urls: [http://am:9093/api/v2/alerts]\n",
         "base URL.*/api/v2/alerts is added"),
        ("alerting:\n  backoff_base_seconds: 60\n  backoff_max_seconds: 30\n",
         r"backoff_max_seconds \(30.0\) is below backoff_base_seconds \(60.0\)"),
        ("alerting:\n  max_attempts: 0\n", "key 'alerting.max_attempts'"),
        ("alerting:\n  resend_every: 60\n",
         "unknown key 'alerting.resend_every'.*resend_interval_seconds"),
    ],
)  # fmt: skip
def test_alerting_config_errors_name_the_key(tmp_path, monkeypatch, yaml_text, message):
    monkeypatch.delenv("SURGECAST_CONFIG", raising=False)
    path = tmp_path / "conf.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_alerting_settings_are_frozen():
    with pytest.raises(ValidationError, match="frozen"):
        Settings().alerting.timeout_seconds = 1  # type: ignore[misc]


class FakePipeline:
    def tick(self):
        raise AssertionError("not run in this test")

    def retrain(self, now=None):
        return {}


def test_the_delivery_job_never_overlaps_and_never_raises(sqlite_store, caplog):
    settings = Settings(**{"alerting": {"delivery_interval_seconds": 15}})
    deliverer = OutboxDeliverer(sqlite_store, [ScriptedSink()])
    scheduler = build_scheduler(FakePipeline(), settings, ServiceState(), deliverer=deliverer)  # type: ignore[arg-type]
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job("deliver-alerts")
        assert (job.max_instances, job.coalesce) == (1, True)
        assert job.trigger.interval.total_seconds() == 15
    finally:
        scheduler.shutdown(wait=False)

    # a real pipeline gets the delivery job from its settings, on its own store
    real = build_pipeline(Settings(**{"store": {"url": "sqlite://"}}), sqlite_store)
    scheduler = build_scheduler(real, real.settings, ServiceState(), first_tick_now=False)
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job("deliver-alerts")
        assert job.args[0].outbox is sqlite_store and job.args[0].sinks == []
    finally:
        scheduler.shutdown(wait=False)

    class BrokenOutbox:
        def pending_alerts(self, now, limit=100):
            raise RuntimeError("store down")

    assert run_delivery(OutboxDeliverer(BrokenOutbox(), [ScriptedSink()])) is None  # type: ignore[arg-type]
    assert "alert delivery failed" in caplog.text
