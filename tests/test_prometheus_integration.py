"""surgecast against a real Prometheus (acceptance 1-4 of the collectors issue).

One Prometheus for the module: 14 days of simulator history backfilled with promtool through
``surgecast simulate backfill``, then Prometheus (Debian binary, own data dir, 127.0.0.1) started
with ``deploy/prometheus.yml`` scraping the live simulator exporter, and surgecast configured by
``deploy/surgecast.yaml`` (the README's "Run against your Prometheus" config) with only the URL
and store changed. Values are checked against the simulator itself.

Times are real: a live point exists only once its minute is over, so the fault test waits for
the next minute boundary (bounded polling, never a timing assertion).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from prometheus_stack import REPO, Prometheus, binary, poll, prometheus_config
from typer.testing import CliRunner

from collectors import SeriesRequest
from collectors.prometheus import PrometheusCollector
from simulator import Simulator, SimulatorConfig
from simulator.exporter import serve
from surgecast.cli import app
from surgecast.config import Settings
from surgecast.store import Store
from surgecast.wiring import build_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.promtool]

SEED = 7
STEP = pd.Timedelta("1min")
LOAD = [f"{s}:requests_per_second" for s in ("odds-api", "bet-placement", "account", "payments")]
runner = CliRunner()


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        # no incidents: every series has every minute, so "every point once" is exact
        self.config = SimulatorConfig(seed=SEED, incidents_per_day=0.0)
        self.sim = Simulator(self.config)
        self.end = pd.Timestamp.now(tz="UTC").floor(STEP)
        self.prometheus: Prometheus
        self.ready_at = self.end

    def seam(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Minutes that may lack a sample: from the backfill's end until the first scrape (at
        most one scrape interval after Prometheus was ready)."""
        return self.end, (self.ready_at + pd.Timedelta(seconds=15)).ceil(STEP)

    def settings(self, tmp_path: Path, **source: Any) -> Settings:
        """``deploy/surgecast.yaml`` with this stack's URL, a store in ``tmp_path``."""
        data = yaml.safe_load((REPO / "deploy/surgecast.yaml").read_text(encoding="utf-8"))
        data["sources"]["prometheus"].update(url=self.prometheus.url, **source)
        data["store"] = {"url": f"sqlite:///{tmp_path / 'surgecast.db'}"}
        data["models_dir"] = str(tmp_path / "models")
        return Settings(**data)

    def expected(self, uid: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return self.sim.series(start, end, [uid])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary("promtool")
    root = tmp_path_factory.mktemp("prometheus")
    s = Stack(root)
    result = runner.invoke(app, [
        "simulate", "backfill", "--days", "14", "--out", str(root / "data"), "--seed", str(SEED),
        "--incidents-per-day", "0", "--end", s.end.isoformat(),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    server, _, _ = serve(s.sim, port=0)
    s.exporter = server
    s.prometheus = Prometheus(root, root / "data", prometheus_config(f"127.0.0.1:{server.server_port}"))
    try:
        s.prometheus.start()
        s.ready_at = pd.Timestamp.now(tz="UTC")
        yield s
    finally:
        s.prometheus.stop()
        server.shutdown()
        server.server_close()


def assert_matches_simulator(store: Store, stack: Stack, uid: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Every stored point of ``uid`` in ``[start, end)`` is the simulator's value there."""
    got = store.read_points(uid, start=start, end=end)
    want = stack.expected(uid, start, end)
    merged = got.merge(want, on=["unique_id", "ds"], how="left", suffixes=("", "_sim"))
    assert merged["y_sim"].notna().all(), f"{uid}: points off the simulator's grid"
    np.testing.assert_allclose(merged["y"], merged["y_sim"], rtol=1e-12, atol=1e-12)
    return got


def test_ticks_forecast_and_recommend_from_prometheus_history(stack: Stack, tmp_path: Path) -> None:
    settings = stack.settings(tmp_path)
    store = Store(settings.store.url)
    try:
        pipeline = build_pipeline(settings, store)
        assert len(pipeline.series) == 3 * 4 + 7  # three templated queries x 4 services + 7
        report = pipeline.tick()
        now = report.now
        assert [e for e in report.errors if e["stage"] == "collect"] == []
        start = now - pd.Timedelta(days=14)
        for uid in LOAD:
            got = assert_matches_simulator(store, stack, uid, start, now)
            # every minute of 14 days, except at the seam between backfill and first scrape
            want = stack.expected(uid, start, now)
            missing = want.loc[~want["ds"].isin(got["ds"]), "ds"]
            seam_from, seam_to = stack.seam()
            assert ((missing >= seam_from) & (missing < seam_to)).all(), missing.tolist()
            assert got["ds"].is_unique
        assert report.forecasts > 0
        recs = {r["service"]: r for r in store.latest_recommendations()}
        assert set(recs) == {"odds-api", "bet-placement", "account", "payments"}
        for service, rec in recs.items():
            assert rec["stale"] is False, rec["reason"]
            inputs = rec["inputs"]
            newest = pd.Timestamp(inputs["newest_point_at"])
            want = stack.expected(f"{service}:requests_per_second", newest, newest + STEP)
            assert inputs["current_load"] == pytest.approx(float(want["y"].iloc[0]), rel=1e-12)
            assert inputs["forecast_peak"] > 0
            assert rec["recommended_replicas"] >= settings.services[service].min_replicas
        forecast = store.read_forecast("bet-placement:requests_per_second")
        assert len(forecast) and forecast["ds"].max() > now
        assert np.isfinite(forecast["yhat"]).all() and (forecast["yhat_upper"] > 0).all()
    finally:
        store.close()


def test_the_readme_commands_check_and_tick(stack: Stack, tmp_path: Path) -> None:
    settings = stack.settings(tmp_path)
    config = tmp_path / "surgecast.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")), encoding="utf-8")
    check = runner.invoke(app, ["collectors", "check", "--config", str(config)])
    assert check.exit_code == 0, check.output
    assert "10 of 10 queries return data" in check.output
    assert "bet-placement:requests_per_second" in check.output  # named from the label
    tick = runner.invoke(app, ["tick", "--once", "--config", str(config)])
    assert "bet-placement" in tick.output, tick.output
    assert "points from 19 series" in tick.output, tick.output
    assert "CollectorError" not in tick.output and "CollectorUnavailable" not in tick.output


def test_fourteen_days_at_one_minute_return_every_point_once(stack: Stack) -> None:
    query = 'surgecast_sim_requests_per_second{service="odds-api"}'
    start, end = stack.end - pd.Timedelta(days=14), stack.end
    # one request would be refused: beyond Prometheus' 11,000 points per series
    refused = stack.prometheus.query_range(query, start.timestamp(), end.timestamp() - 60, 60)
    assert refused.status_code == 400 and "11,000 points" in refused.text
    collector = PrometheusCollector(stack.prometheus.url, step_seconds=60)
    calls: list[tuple[Any, Any]] = []
    real = collector._client.custom_query_range

    def counting(query: str, **kw: Any) -> Any:
        calls.append((kw["start_time"], kw["end_time"]))
        return real(query, **kw)

    collector._client.custom_query_range = counting
    frame = collector.fetch(SeriesRequest("odds-api:requests_per_second", query), start, end)
    collector.close()
    assert len(calls) == 3  # 10,000 + 10,000 + 160 points
    want = stack.expected("odds-api:requests_per_second", start, end)
    assert len(frame) == len(want) == 14 * 1440
    assert frame["ds"].is_unique and frame["ds"].is_monotonic_increasing
    assert frame["ds"].tolist() == want["ds"].tolist()
    np.testing.assert_allclose(frame["y"], want["y"], rtol=1e-12, atol=0)
    assert frame.attrs["repairs"] == []


def test_recording_rules_read_the_exporters_counters_and_histogram(stack: Stack) -> None:
    def recorded() -> bool:
        names = ("service:requests:rate1m", "service:request_duration_seconds:p95_5m")
        return all(len(stack.prometheus.query(n)) == 4 for n in names)

    poll("recording rules over scraped counters", recorded, timeout_s=180, every_s=1.0)
    for row in stack.prometheus.query("service:requests:rate1m"):
        assert float(row["value"][1]) > 0
    for row in stack.prometheus.query("service:request_duration_seconds:p95_5m"):
        assert 0 < float(row["value"][1]) < 10


def test_a_dead_prometheus_holds_stale_plans_alerts_and_the_gap_is_filled(
    stack: Stack, tmp_path: Path
) -> None:
    # fail fast (one retry) and try again at once after the restart (no breaker cool-down)
    settings = stack.settings(tmp_path, retries=1, backoff_seconds=0.1, breaker_reset_seconds=0)
    store = Store(settings.store.url)
    try:
        pipeline = build_pipeline(settings, store)
        first = pipeline.tick()
        assert [e for e in first.errors if e["stage"] == "collect"] == []
        before = {r["service"]: r["recommended_replicas"] for r in first.recommendations}
        uid = "bet-placement:requests_per_second"
        mark = store.watermarks()[uid]
        probe = PrometheusCollector(stack.prometheus.url, step_seconds=60)
        query = 'surgecast_sim_requests_per_second{service="bet-placement"}'

        def scraped_after_mark() -> bool:
            now = pd.Timestamp.now(tz="UTC").floor(STEP)
            return len(probe.fetch(SeriesRequest(uid, query), mark + pd.Timedelta(1, "ns"), now)) > 0

        # a minute the first tick could not see yet, scraped live from the exporter
        poll("a scraped minute after the first tick", scraped_after_mark, timeout_s=240, every_s=1.0)
        probe.close()

        stack.prometheus.kill()
        down = pipeline.tick()
        assert down.finished_at is not None
        failures = [e for e in down.errors if e["stage"] == "collect"]
        assert len(failures) == len(pipeline.series)
        assert all("CollectorUnavailable" in e["error"] for e in failures)
        assert any(stack.prometheus.url in e["error"] for e in failures)
        for rec in down.recommendations:
            assert rec["stale"] is True, rec
            assert "source unavailable" in rec["reason"]
            assert rec["recommended_replicas"] >= before[rec["service"]]
        alerts = [a["payload"] for a in store.pending_alerts(down.now + pd.Timedelta(hours=1))]
        unavailable = [a for a in alerts if a["labels"]["alertname"] == "SurgecastSourceUnavailable"]
        assert len(unavailable) == 1 and unavailable[0]["labels"]["datasource"] == "prometheus"

        stack.prometheus.start()
        back = pipeline.tick()
        assert [e for e in back.errors if e["stage"] == "collect"] == []
        assert back.points[uid] >= 1  # the minutes scraped before the crash, not seen before
        assert not any("duplicate" in r for r in back.repairs)
        got = assert_matches_simulator(store, stack, uid, mark, back.now)
        assert len(got) >= 2  # the watermark point and at least one filled minute
        for series in pipeline.series:  # every point once, each the simulator's value
            stored = assert_matches_simulator(
                store, stack, series.unique_id, back.now - pd.Timedelta(days=15), back.now
            )
            assert stored["ds"].is_unique
        for rec in back.recommendations:
            assert "source unavailable" not in rec["reason"]
    finally:
        store.close()
