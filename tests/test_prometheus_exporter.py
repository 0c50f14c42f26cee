"""The simulator as Prometheus sees it: the live exporter, the backfill and their CLI commands."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from simulator import Simulator, SimulatorConfig, write_openmetrics
from simulator.backfill import backfill, counters_of
from simulator.exporter import LATENCY_BUCKETS, SimulatorMetrics, serve
from surgecast.cli import app

T0 = pd.Timestamp("2026-11-20 19:00", tz="UTC")  # a Friday evening
runner = CliRunner()


def scrape(metrics: SimulatorMetrics) -> dict[tuple[str, str], float]:
    """Samples by (name, service) from one collection, through the text format."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name if "le" not in s.labels else f"{s.name}:{s.labels['le']}"
            out[(key, s.labels.get("service", ""))] = s.value
    return out


def test_gauges_show_the_point_of_the_step_in_progress():
    sim = Simulator(SimulatorConfig(seed=7, incidents_per_day=0))
    now = [T0 + pd.Timedelta(seconds=20)]
    got = scrape(SimulatorMetrics(sim, clock=lambda: now[0]))
    want = sim.series(T0 + pd.Timedelta("1min"), T0 + pd.Timedelta("2min"))  # ceil(19:00:20)
    assert len(want) == 19
    for uid, y in zip(want["unique_id"], want["y"], strict=True):
        service, metric = uid.split(":")
        assert got[(f"surgecast_sim_{metric}", service)] == y
    # on a boundary the point is that boundary's
    now[0] = T0
    at = sim.series(T0, T0 + pd.Timedelta("1min"), ["payments:requests_per_second"])
    assert scrape(SimulatorMetrics(sim, clock=lambda: now[0]))[
        ("surgecast_sim_requests_per_second", "payments")
    ] == at["y"].iloc[0]


def test_counters_integrate_the_rates_exactly_and_the_histogram_counts_every_request():
    sim = Simulator(SimulatorConfig(seed=7, incidents_per_day=0))
    now = [T0 + pd.Timedelta(seconds=10)]
    metrics = SimulatorMetrics(sim, clock=lambda: now[0])
    first = scrape(metrics)
    assert first.get(("surgecast_sim_bets_total", "bet-placement")) == 0.0  # counting starts now
    now[0] = T0 + pd.Timedelta(seconds=100)
    got = scrape(metrics)
    rate = sim.series(T0 + pd.Timedelta("1min"), T0 + pd.Timedelta("3min"), ["bet-placement:bets_per_second"])["y"]
    # (19:00:10, 19:01] at the 19:01 point for 50 s, (19:01, 19:01:40] at the 19:02 point for 40 s
    assert got[("surgecast_sim_bets_total", "bet-placement")] == pytest.approx(rate.iloc[0] * 50 + rate.iloc[1] * 40)
    requests = got[("surgecast_sim_requests_total", "payments")]
    assert requests > 0
    count = got[("surgecast_sim_request_duration_seconds_count", "payments")]
    assert count == pytest.approx(requests)
    buckets = [got[(f"surgecast_sim_request_duration_seconds_bucket:{le}", "payments")] for le in LATENCY_BUCKETS]
    assert np.all(np.diff(buckets) >= 0) and buckets[-1] <= count
    assert got[("surgecast_sim_request_duration_seconds_bucket:+Inf", "payments")] == pytest.approx(count)
    assert 0 < got[("surgecast_sim_errors_total", "payments")] < requests


def test_a_silenced_series_is_not_exposed():
    sim = Simulator(SimulatorConfig(seed=7, incidents_per_day=2))
    silence = sim.incidents("2026-11-01", "2026-11-08").query("kind == 'metric_silence'").iloc[0]
    during = silence["start"] + pd.Timedelta(minutes=5)
    service, metric = silence["unique_ids"].split(",")[0].split(":")
    got = scrape(SimulatorMetrics(sim, clock=lambda: during))
    assert (f"surgecast_sim_{metric}", service) not in got
    assert ("surgecast_sim_requests_per_second", service) in got


def test_serve_answers_on_loopback_and_stops():
    sim = Simulator(SimulatorConfig(seed=7, incidents_per_day=0))
    server, thread, _ = serve(sim, port=0)
    try:
        response = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5)
        assert response.status_code == 200
        names = {f.name for f in text_string_to_metric_families(response.text)}
        assert {"surgecast_sim_requests_per_second", "surgecast_sim_requests",
                "surgecast_sim_request_duration_seconds"} <= names  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_backfilled_counters_give_the_rate_back():
    frame = pd.DataFrame({
        "unique_id": ["s:bets_per_second"] * 3 + ["s:error_ratio"] * 3,
        "ds": list(pd.date_range(T0, periods=3, freq="1min")) * 2,
        "y": [1.0, 2.0, 0.5, 0.1, 0.1, 0.1],
    })  # fmt: skip
    counters = counters_of(frame, pd.Timedelta("1min"))
    assert counters["unique_id"].unique().tolist() == ["s:bets"]  # ratios have no counter
    assert counters["y"].tolist() == [60.0, 180.0, 210.0]


def test_openmetrics_with_scrape_labels_and_counters(tmp_path: Path):
    frame = pd.DataFrame({"unique_id": ["svc:requests_per_second"], "ds": [T0], "y": [2.5]})
    counters = pd.DataFrame({"unique_id": ["svc:requests"], "ds": [T0], "y": [150.0]})
    path = tmp_path / "m.om"
    labels = {"job": "surgecast-simulator", "instance": "simulator"}
    assert write_openmetrics(frame, path, labels=labels, counters=counters) == 2
    lines = path.read_text().splitlines()
    assert lines[2] == (
        'surgecast_sim_requests_per_second{service="svc",job="surgecast-simulator",'
        'instance="simulator"} 2.5 1795201200'
    )
    assert lines[4] == "# TYPE surgecast_sim_requests counter"
    assert lines[5].startswith('surgecast_sim_requests_total{service="svc",job=') and lines[-1] == "# EOF"


@pytest.mark.promtool
def test_backfill_writes_blocks_and_guards_a_running_prometheus(tmp_path: Path):
    sim = Simulator(SimulatorConfig(seed=7, incidents_per_day=0))
    end = pd.Timestamp.now(tz="UTC").floor("D")
    result = backfill(tmp_path / "data", sim, days=0.5, end=end)
    assert result.samples == 720 * (19 + 11)  # 19 gauges + 11 counters, every minute
    assert result.series == 30 and result.blocks >= 1 and result.end == end
    assert not list((tmp_path / "data").glob("*.om"))  # the OpenMetrics file is removed
    (tmp_path / "data" / "wal").mkdir()
    with pytest.raises(ValueError, match="in use by a Prometheus .* last 3 hours"):
        backfill(tmp_path / "data", sim, days=0.5)
    with pytest.raises(FileNotFoundError, match="Debian package 'prometheus'"):
        backfill(tmp_path / "other", sim, days=0.5, promtool="no-such-promtool")


def test_cli_backfill_and_serve_refuse_bad_options(tmp_path: Path):
    bad = runner.invoke(app, ["simulate", "backfill", "--out", str(tmp_path), "--step", "often"])
    assert bad.exit_code == 2 and "not a duration" in bad.output
    missing = runner.invoke(
        app, ["simulate", "backfill", "--out", str(tmp_path), "--days", "0.1", "--promtool", "nope"]
    )
    assert missing.exit_code == 2 and "not found on PATH" in missing.output
    help_text = runner.invoke(app, ["simulate", "serve", "--help"]).output
    assert "--port" in help_text and "9108" in help_text


def test_collectors_check_names_the_unreachable_url(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "sources:\n  prom: {type: prometheus, url: 'http://127.0.0.1:1', retries: 0}\n"
        "series:\n  - {service: bet-placement, metric: requests_per_second, source: prom,"
        " promql: 'sum(rate(http_requests_total[1m]))'}\n"
        f"store: {{url: 'sqlite:///{tmp_path / 't.db'}'}}\n"
    )
    result = runner.invoke(app, ["collectors", "check", "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert "NO  bet-placement:requests_per_second" in result.output
    assert "http://127.0.0.1:1" in result.output and "CollectorUnavailable" in result.output
    assert "0 of 1 queries return data" in result.output
