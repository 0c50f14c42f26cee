"""Prometheus sources in the settings and the tick: templates, auth, and a source going away."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from collectors import CollectorUnavailable, SeriesRequest
from collectors.prometheus import PrometheusCollector, QueryOptions
from surgecast.config import SeriesSettings, Settings
from surgecast.errors import ConfigError
from surgecast.prometheus_source import expand_series, query_options
from surgecast.store import Store
from surgecast.wiring import build_pipeline, build_sources, resolve_series

NOW = pd.Timestamp("2026-11-20 18:00", tz="UTC")
PROM = {"type": "prometheus", "url": "http://127.0.0.1:9"}


def prom_settings(tmp_path: Path, series: list[dict[str, Any]], **source: Any) -> Settings:
    return Settings(
        sources={"prometheus": {**PROM, **source}},
        series=series,
        store={"url": f"sqlite:///{tmp_path / 's.db'}"},
        models_dir=str(tmp_path / "models"),
    )


def test_a_templated_series_is_one_query_for_every_service(tmp_path):
    query = "sum by (service) (rate(http_requests_total[1m]))"
    settings = prom_settings(tmp_path, [
        {"service": "{service}", "metric": "requests_per_second", "source": "prometheus", "promql": query},
        {"service": "payments", "metric": "requests_per_second", "source": "prometheus",
         "promql": 'sum(rate(pay_requests_total[1m]))'},
    ])  # fmt: skip
    sources = build_sources(settings)
    series = resolve_series(settings, sources)
    assert [s.unique_id for s in series] == [
        "odds-api:requests_per_second", "bet-placement:requests_per_second",
        "account:requests_per_second", "payments:requests_per_second",
    ]  # fmt: skip
    assert [s.promql for s in series].count(query) == 3  # the explicit payments entry wins
    collector = sources.collectors["prometheus"]
    assert isinstance(collector, PrometheusCollector)
    assert collector.queries[query] == QueryOptions("{service}:requests_per_second")
    assert collector.step_seconds == 60 and collector.url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("entry", "message"),
    [({"service": "{service}-api"}, "a templated entry has service: '{<label>}'"),
     ({"service": "{service}", "metric": "{m}"}, "a templated entry has service")],
)  # fmt: skip
def test_malformed_templates_are_config_errors(entry, message):
    base = {"service": "x", "metric": "rps", "source": "prometheus", "promql": "up"}
    with pytest.raises(ConfigError, match=message):
        expand_series([SeriesSettings(**{**base, **entry})], {"a": None})  # type: ignore[dict-item]


def test_one_query_with_two_meanings_is_refused():
    a = SeriesSettings(service="a", metric="x", source="p", promql="req_total", counter=True)
    b = SeriesSettings(service="b", metric="y", source="p", promql="req_total")
    with pytest.raises(ConfigError, match="used by several series with different options"):
        query_options([a, b])


@pytest.mark.parametrize(
    ("source", "message"),
    [({"bearer_token": "t", "basic_auth_username": "u"}, "either a bearer token or basic auth"),
     ({"basic_auth_password": "p"}, "needs basic_auth_username"),
     ({"step": "1500ms"}, "whole number of seconds"),
     ({"max_points_per_query": 20_000}, "max_points_per_query"),
     ({"retries": -1}, "retries")],
)  # fmt: skip
def test_source_settings_errors_name_the_key(tmp_path, source, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        prom_settings(tmp_path, [{"service": "a", "metric": "b", "source": "prometheus", "promql": "up"}], **source)


def test_a_bearer_token_file_is_read_at_start(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    settings = prom_settings(
        tmp_path, [{"service": "a", "metric": "b", "source": "prometheus", "promql": "up"}],
        bearer_token_file=str(token), headers={"X-Scope-OrgID": "t1"},
    )  # fmt: skip
    collector = build_sources(settings).collectors["prometheus"]
    assert collector._client.headers == {"X-Scope-OrgID": "t1", "Authorization": "Bearer s3cret"}


# -- a source that goes away and comes back, in the tick ----------------------------------------
class Flaky:
    """Wraps a collector; while ``down`` every fetch raises ``CollectorUnavailable``."""

    name = "flaky"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False

    def fetch(self, request: SeriesRequest, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        if self.down:
            raise CollectorUnavailable("prometheus (http://127.0.0.1:9): unreachable: refused")
        return self.inner.fetch(request, start, end)


def test_a_source_outage_holds_stale_plans_alerts_once_and_resolves(tmp_path):
    settings = Settings(
        backfill_days=3, stale_after_seconds=900,
        sources={"simulator": {"type": "simulator", "seed": 11, "step": "5min"}},
        store={"url": f"sqlite:///{tmp_path / 's.db'}"}, models_dir=str(tmp_path / "models"),
        forecast={"history_days": 3, "event_model": "none"}, detect={"history_days": 2},
    )  # fmt: skip
    store = Store(settings.store.url)
    try:
        pipeline = build_pipeline(settings, store)
        flaky = Flaky(pipeline.collectors["simulator"])
        pipeline.collectors["simulator"] = flaky
        ok = pipeline.tick(NOW)
        before = {r["service"]: r["recommended_replicas"] for r in ok.recommendations}
        assert not any(r["stale"] for r in ok.recommendations)

        flaky.down = True
        later = NOW + pd.Timedelta("5min")
        down = pipeline.tick(later)
        assert {e["stage"] for e in down.errors} >= {"collect"}
        for rec in down.recommendations:  # the data is recent, but the source is gone
            assert rec["stale"] is True and "source unavailable (prometheus (http://127.0.0.1:9)" in rec["reason"]
            assert rec["recommended_replicas"] >= before[rec["service"]]
        pending = store.pending_alerts(later)
        [alert] = [a for a in pending if a["payload"]["labels"]["alertname"] == "SurgecastSourceUnavailable"]
        assert alert["payload"]["labels"]["datasource"] == "simulator"
        assert "refused" in alert["payload"]["annotations"]["description"]
        store.mark_alert_delivered(alert["id"], later)
        again = pipeline.tick(later + pd.Timedelta("5min"))  # still down: re-sent, same start
        [resend] = [a for a in store.pending_alerts(later + pd.Timedelta("5min"))
                    if a["payload"]["labels"]["alertname"] == "SurgecastSourceUnavailable"]  # fmt: skip
        assert resend["payload"]["startsAt"] == "2026-11-20T18:05:00Z"
        assert resend["payload"]["endsAt"] > "2026-11-20T18:10"
        assert all(r["stale"] for r in again.recommendations)
        store.mark_alert_delivered(resend["id"], later)

        flaky.down = False
        back = pipeline.tick(later + pd.Timedelta("10min"))
        assert not [e for e in back.errors if e["stage"] == "collect"]
        assert set(back.points.values()) == {3}  # the two missed steps and the new one
        resolved = [a["payload"] for a in store.pending_alerts(later + pd.Timedelta("10min"))
                    if a["payload"]["labels"]["alertname"] == "SurgecastSourceUnavailable"]  # fmt: skip
        assert len(resolved) == 1 and resolved[0]["endsAt"] == "2026-11-20T18:15:00Z"
        assert not any("source unavailable" in r["reason"] for r in back.recommendations)
    finally:
        store.close()
