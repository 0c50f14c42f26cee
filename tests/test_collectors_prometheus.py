"""The Prometheus collector on a fake ``PrometheusConnect`` and a loopback HTTP server.

The fake answers ``custom_query_range`` like Prometheus 2.42 does (evaluation at ``start + k *
step`` up to ``end`` inclusive, HTTP 400 beyond 11,000 points, values as strings) from series
held in memory, so chunking, naming, bad values, retries and the breaker are checked with exact
numbers. The real server is exercised in ``test_prometheus_integration.py``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from prometheus_api_client import PrometheusApiClientException

from collectors import CollectorError, CollectorUnavailable, SeriesRequest
from collectors.prometheus import PrometheusCollector, QueryOptions
from collectors.promql import chunk_grid, fresh_only, is_selector, step_grid
from collectors.resilience import CircuitBreaker, RetryPolicy

T0 = pd.Timestamp("2026-11-01", tz="UTC")
STEP = 60


class FakePrometheus:
    """``custom_query_range`` over in-memory series: {query: [(labels, {ts: "value"})]}."""

    def __init__(self, series: dict[str, list[tuple[dict[str, str], dict[int, str]]]]) -> None:
        self.series = series
        self.calls: list[tuple[str, int, int]] = []
        self.fail: list[Exception] = []  # raised, in order, before answering

    def custom_query_range(self, query: str, start_time: Any, end_time: Any, step: str,
                           params: Any = None, timeout: Any = None) -> list[dict[str, Any]]:  # fmt: skip
        assert start_time.tzinfo is not None and end_time.tzinfo is not None  # aware times only
        lo, hi, st = round(start_time.timestamp()), round(end_time.timestamp()), int(step)
        self.calls.append((query, lo, hi))
        if self.fail:
            raise self.fail.pop(0)
        if (hi - lo) / st > 11_000:
            raise PrometheusApiClientException(
                'HTTP Status Code 400 (b\'{"status":"error","errorType":"bad_data","error":"exceeded '
                'maximum resolution of 11,000 points per timeseries. Try decreasing the query '
                'resolution (?step=XX)"}\')'
            )
        inner = query.removeprefix("last_over_time(").rsplit("[", 1)[0] if query.startswith("last_over_time(") else query
        out = []
        for labels, points in self.series.get(inner, []):
            values = [[t, points[t]] for t in range(lo, hi + 1, st) if t in points]
            if values:
                out.append({"metric": labels, "values": values})
        return out


def minutes(n: int, start: pd.Timestamp = T0) -> list[int]:
    first = int(start.timestamp())
    return list(range(first, first + n * STEP, STEP))


def collector(fake: FakePrometheus, **kw: Any) -> PrometheusCollector:
    kw.setdefault("sleep", lambda s: None)
    return PrometheusCollector("http://prometheus.test:9090", step_seconds=STEP, client=fake, **kw)


# -- pure helpers -------------------------------------------------------------------------------
def test_the_grid_is_half_open_and_aligned_to_the_step():
    s = 10**9
    assert step_grid(0, 600 * s, 60) == (0, 540)
    assert step_grid(1, 600 * s, 60) == (60, 540)  # 1 ns after a point: the next point
    assert step_grid(0, 600 * s + 1, 60) == (0, 600)
    assert step_grid(30 * s, 59 * s, 60) is None


def test_chunks_stay_below_the_limit_and_never_overlap():
    first, last = 0, (14 * 1440 - 1) * 60
    chunks = chunk_grid(first, last, 60)
    assert chunks == [(0, 599_940), (600_000, 1_199_940), (1_200_000, 1_209_540)]
    points = [(hi - lo) // 60 + 1 for lo, hi in chunks]
    assert points == [10_000, 10_000, 160] and sum(points) == 14 * 1440
    assert all((hi - lo) / 60 <= 11_000 for lo, hi in chunks)


@pytest.mark.parametrize(
    ("query", "selector"),
    [("up", True), ('bets{service="a", env=~"p.*"}', True), ("sum(up)", False),
     ("rate(x_total[1m])", False), ('{__name__="up"}', False), ("up or down", False)],
)  # fmt: skip
def test_only_plain_selectors_are_read_fresh_only(query, selector):
    assert is_selector(query) is selector
    if selector:
        assert fresh_only(query, 60) == f"last_over_time({query}[59999ms])"


# -- fetching -----------------------------------------------------------------------------------
def test_fourteen_days_come_back_in_three_chunks_every_point_once():
    ts = minutes(14 * 1440)
    fake = FakePrometheus({"bets": [({"__name__": "bets"}, {t: repr(t / 1e6) for t in ts})]})
    frame = collector(fake).fetch(SeriesRequest("a:bets", "bets"), T0, T0 + pd.Timedelta(days=14))
    assert [c[1:] for c in fake.calls] == [
        (ts[0], ts[9_999]), (ts[10_000], ts[19_999]), (ts[20_000], ts[-1])
    ]
    assert fake.calls[0][0] == "last_over_time(bets[59999ms])"
    assert len(frame) == 14 * 1440 and frame["ds"].is_unique and frame["ds"].is_monotonic_increasing
    assert frame["ds"].iloc[0] == T0 and frame["ds"].iloc[-1] == T0 + pd.Timedelta(days=14) - pd.Timedelta("1min")
    assert str(frame["ds"].dtype) == "datetime64[ns, UTC]"
    np.testing.assert_array_equal(frame["y"].to_numpy(), np.array(ts) / 1e6)
    assert frame.attrs["repairs"] == []


def test_incremental_windows_start_after_the_watermark():
    ts = minutes(10)
    fake = FakePrometheus({"bets": [({}, {t: "1" for t in ts})]})
    mark = T0 + pd.Timedelta(minutes=4)
    frame = collector(fake).fetch(SeriesRequest("a:bets", "bets"), mark + pd.Timedelta(1, "ns"), T0 + pd.Timedelta(minutes=8))
    assert frame["ds"].tolist() == [T0 + pd.Timedelta(minutes=m) for m in (5, 6, 7)]
    assert fake.calls[0][1:] == (ts[5], ts[7])
    # nothing on the grid in the window: no request at all
    empty = collector(fake).fetch(SeriesRequest("a:bets", "bets"), mark + pd.Timedelta(1, "ns"), mark + pd.Timedelta(seconds=30))
    assert len(empty) == 0 and len(fake.calls) == 1


def test_points_seen_twice_at_chunk_edges_are_dropped_and_reported():
    ts = minutes(6)

    class Overlapping(FakePrometheus):
        def custom_query_range(self, query, start_time, end_time, step, params=None, timeout=None):
            # a server that includes the previous chunk's last point again
            start_time = start_time - pd.Timedelta(seconds=60) if self.calls else start_time
            return super().custom_query_range(query, start_time, end_time, step)

    fake = Overlapping({"sum(x)": [({}, {t: str(i) for i, t in enumerate(ts)})]})
    frame = collector(fake, max_points=2).fetch(SeriesRequest("a:x", "sum(x)"), T0, T0 + pd.Timedelta(minutes=6))
    assert frame["y"].tolist() == [0, 1, 2, 3, 4, 5]
    assert frame.attrs["repairs"] == ["prometheus:a:x (sum(x)): 2 duplicate point(s) at chunk edges dropped"]


def test_nan_inf_and_missing_steps_are_dropped_and_reported():
    ts = minutes(8)
    values = {ts[0]: "1", ts[1]: "NaN", ts[2]: "+Inf", ts[3]: "2", ts[6]: "-Inf", ts[7]: "3"}
    fake = FakePrometheus({"sum(x)": [({}, values)]})
    frame = collector(fake).fetch(SeriesRequest("a:x", "sum(x)"), T0, T0 + pd.Timedelta(minutes=8))
    assert frame["y"].tolist() == [1.0, 2.0, 3.0]
    [note] = frame.attrs["repairs"]
    assert note == (
        "prometheus:a:x (sum(x)): 1 NaN value(s) dropped, 2 infinite value(s) dropped, "
        "5 step(s) without a sample inside the range"
    )


def test_a_raw_counter_becomes_a_rate_through_resets():
    ts = minutes(5)
    counter = {ts[0]: "100", ts[1]: "160", ts[2]: "220", ts[3]: "30", ts[4]: "90"}
    fake = FakePrometheus({"req_total": [({"__name__": "req_total"}, counter)]})
    c = collector(fake, queries={"req_total": QueryOptions(counter=True)})
    # the window starts at minute 1: the collector also asks minute 0 for the first difference
    frame = c.fetch(SeriesRequest("a:rps", "req_total"), T0 + pd.Timedelta(minutes=1), T0 + pd.Timedelta(minutes=5))
    assert fake.calls[0][1] == ts[0]
    assert frame["ds"].tolist() == [T0 + pd.Timedelta(minutes=m) for m in (1, 2, 3, 4)]
    assert frame["y"].tolist() == [1.0, 1.0, 0.5, 1.0]
    assert "1 counter reset(s) bridged" in frame.attrs["repairs"][0]
    plain = collector(fake).fetch(SeriesRequest("a:c", "sum(req_total)"), T0, T0 + pd.Timedelta(minutes=5))
    assert len(plain) == 0  # (the fake only knows the selector)


def test_one_query_several_series_named_from_labels_with_one_request():
    ts = minutes(3)
    query = "sum by (service) (rate(http_requests_total[1m]))"
    fake = FakePrometheus({query: [
        ({"service": "payments"}, {t: "2" for t in ts}),
        ({"service": "bet-placement"}, {t: "5" for t in ts}),
    ]})  # fmt: skip
    c = collector(fake, queries={query: QueryOptions("{service}:requests_per_second")})
    end = T0 + pd.Timedelta(minutes=3)
    bets = c.fetch(SeriesRequest("bet-placement:requests_per_second", query), T0, end)
    pays = c.fetch(SeriesRequest("payments:requests_per_second", query), T0, end)
    assert bets["y"].tolist() == [5.0] * 3 and set(bets["unique_id"]) == {"bet-placement:requests_per_second"}
    assert pays["y"].tolist() == [2.0] * 3
    assert len(fake.calls) == 1  # one answer serves every series of the query in a tick
    probes = c.probe(query, T0, end)
    assert [(p.unique_id, p.points, p.latest) for p in probes] == [
        ("bet-placement:requests_per_second", 3, T0 + pd.Timedelta(minutes=2)),
        ("payments:requests_per_second", 3, T0 + pd.Timedelta(minutes=2)),
    ]


def test_several_series_without_a_template_is_an_error_naming_them():
    fake = FakePrometheus({"up": [({"job": "a"}, {0: "1"}), ({"job": "b"}, {0: "1"})]})
    with pytest.raises(CollectorError, match=r"'up' returned 2 series \(\{job=\"a\"\}") as err:
        collector(fake).fetch(SeriesRequest("x:up", "up"), pd.Timestamp(0, tz="UTC"), pd.Timestamp(60, unit="s", tz="UTC"))
    assert "sum by (service)" in str(err.value)
    bad = collector(fake, queries={"up": QueryOptions("{service}:up")})
    with pytest.raises(CollectorError, match=r"uses label 'service', but a result series has only \['job'\]"):
        bad.fetch(SeriesRequest("x:up", "up"), pd.Timestamp(0, tz="UTC"), pd.Timestamp(60, unit="s", tz="UTC"))


# -- faults -------------------------------------------------------------------------------------
def test_transient_failures_are_retried_with_backoff():
    fake = FakePrometheus({"sum(x)": [({}, {t: "1" for t in minutes(2)})]})
    fake.fail = [requests.ConnectionError("refused"), PrometheusApiClientException("HTTP Status Code 503 (b'busy')")]
    waits: list[float] = []
    c = collector(fake, sleep=waits.append, retry=RetryPolicy(retries=2, backoff=0.5))
    frame = c.fetch(SeriesRequest("a:x", "sum(x)"), T0, T0 + pd.Timedelta(minutes=2))
    assert len(frame) == 2 and waits == [0.5, 1.0] and len(fake.calls) == 3
    assert c.breaker.state == "closed"


def test_a_dead_source_opens_the_breaker_and_then_fails_fast():
    now = [0.0]
    fake = FakePrometheus({"sum(x)": [({}, {t: "1" for t in minutes(2)})]})
    fake.fail = [requests.ConnectionError("Connection refused")] * 6
    c = collector(fake, retry=RetryPolicy(retries=2), breaker=CircuitBreaker(2, 30, clock=lambda: now[0]))
    window = (T0, T0 + pd.Timedelta(minutes=2))
    for _ in range(2):
        with pytest.raises(CollectorUnavailable, match=r"prometheus \(http://prometheus.test:9090\): unreachable after 3 attempt\(s\) for query 'sum\(x\)': ConnectionError"):
            c.fetch(SeriesRequest("a:x", "sum(x)"), *window)
    assert len(fake.calls) == 6 and c.breaker.state == "open"
    with pytest.raises(CollectorUnavailable, match="circuit breaker open after 2 failed fetches in a row; next try in 30 s"):
        c.fetch(SeriesRequest("b:x", "sum(x)"), *window)
    assert len(fake.calls) == 6  # no request while open
    now[0] = 31.0  # after the cool-down one trial goes out, and it succeeds: closed again
    assert len(c.fetch(SeriesRequest("b:x", "sum(x)"), *window)) == 2
    assert c.breaker.state == "closed"


def test_a_rejected_query_names_it_and_does_not_trip_the_breaker():
    fake = FakePrometheus({})
    fake.fail = [PrometheusApiClientException(
        'HTTP Status Code 400 (b\'{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"}\')'
    )]  # fmt: skip
    c = collector(fake)
    with pytest.raises(CollectorError, match=r"query 'sum\(\(x\)' rejected: HTTP 400: 1:5: parse error") as err:
        c.fetch(SeriesRequest("a:x", "sum((x)"), T0, T0 + pd.Timedelta(minutes=1))
    assert not isinstance(err.value, CollectorUnavailable) and len(fake.calls) == 1
    assert c.breaker.state == "closed"


def test_refused_credentials_make_the_source_unavailable_without_retrying():
    fake = FakePrometheus({})
    fake.fail = [PrometheusApiClientException("HTTP Status Code 401 (b'Unauthorized')")]
    with pytest.raises(CollectorUnavailable, match="HTTP 401: credentials refused; check bearer_token"):
        collector(fake).fetch(SeriesRequest("a:x", "sum(x)"), T0, T0 + pd.Timedelta(minutes=1))
    assert len(fake.calls) == 1


def test_the_limit_is_enforced_by_the_fake_as_by_prometheus():
    fake = FakePrometheus({"sum(x)": [({}, {})]})
    c = collector(fake, max_points=11_000)
    frame = c.fetch(SeriesRequest("a:x", "sum(x)"), T0, T0 + pd.Timedelta(days=14))
    assert len(frame) == 0 and len(fake.calls) == 2
    with pytest.raises(ValueError, match="max_points"):
        collector(fake, max_points=11_001)


# -- the real HTTP path: auth and headers reach the server -------------------------------------
class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {}, "values": [[int(T0.timestamp()), "4.5"]]}]}})  # fmt: skip
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def recorder() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Recorder", (_Recorder,), {"seen": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_bearer_token_and_headers_are_sent(recorder):
    url, handler = recorder
    c = PrometheusCollector(url, bearer_token="s3cret", headers={"X-Scope-OrgID": "betting"})
    frame = c.fetch(SeriesRequest("a:x", "sum(x)"), T0, T0 + pd.Timedelta(minutes=1))
    c.close()
    assert frame["y"].tolist() == [4.5]
    [seen] = handler.seen
    assert seen["authorization"] == "Bearer s3cret" and seen["x-scope-orgid"] == "betting"
    assert seen["path"].startswith("/api/v1/query_range?query=sum%28x%29")


def test_basic_auth_is_sent_and_a_401_is_reported(recorder):
    url, handler = recorder
    handler.status = 401
    c = PrometheusCollector(url, basic_auth=("surgecast", "pw"))
    with pytest.raises(CollectorUnavailable, match="HTTP 401"):
        c.fetch(SeriesRequest("a:x", "sum(x)"), T0, T0 + pd.Timedelta(minutes=1))
    c.close()
    assert handler.seen[0]["authorization"] == "Basic c3VyZ2VjYXN0OnB3"


def test_tls_options_reach_the_session(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    c = PrometheusCollector("https://prom.test", ca_file=str(ca), cert_file="c.pem", key_file="k.pem")
    session = c._client._session
    assert session.verify == str(ca) and session.cert == ("c.pem", "k.pem")
    insecure = PrometheusCollector("https://prom.test", verify_tls=False)
    assert insecure._client._session.verify is False


def test_an_unreachable_url_is_unavailable_and_named():
    c = PrometheusCollector("http://127.0.0.1:1", retry=RetryPolicy(retries=1, backoff=0), timeout=2)
    with pytest.raises(CollectorUnavailable, match=r"prometheus \(http://127.0.0.1:1\): unreachable after 2"):
        c.fetch(SeriesRequest("a:x", "up"), T0, T0 + pd.Timedelta(minutes=1))
