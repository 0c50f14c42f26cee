"""Collector over Prometheus (or any server with its HTTP API: Thanos, Mimir, VictoriaMetrics).

Each series is a PromQL expression evaluated with ``/api/v1/query_range`` on the step grid, from
the pipeline's per-series watermark to now, through ``prometheus-api-client`` (CONVENTIONS.md
§4) with explicit timezone-aware times. What it takes care of:

- **limits**: windows longer than :data:`~collectors.promql.MAX_POINTS` steps are split into
  chunks that do not overlap; points seen twice anyway are dropped and counted;
- **faults**: connection errors, timeouts, 408/429/5xx are retried with exponential backoff; a
  source failing ``breaker_failures`` fetches in a row opens a circuit breaker, so a dead
  Prometheus costs a tick seconds, not minutes. Those failures raise
  :class:`~collectors.base.CollectorUnavailable` (the service holds its recommendations and
  alerts); a query Prometheus rejects (HTTP 400/422) raises :class:`~collectors.base.CollectorError`
  naming the query and Prometheus' own message;
- **bad data**: NaN and ±Inf values are dropped; a plain selector is read with
  ``last_over_time(q[step])`` so a step without a sample stays missing instead of being filled
  from an older one by Prometheus' 5-minute lookback (e.g. across an outage); missing steps are
  counted; raw counters (``counter: true``) become
  per-second rates through resets. All of it is reported in ``frame.attrs["repairs"]``;
- **several series per query**: with a name template (``"{service}:requests_per_second"``)
  each result series becomes its own ``unique_id``, named from its labels; one HTTP query per
  tick serves all of them.

Example (against a running Prometheus)::

    collector = PrometheusCollector("http://127.0.0.1:9090", step_seconds=60)
    frame = collector.fetch(
        SeriesRequest("bet-placement:requests_per_second",
                      'sum(rate(http_requests_total{service="bet-placement"}[1m]))'),
        pd.Timestamp("2026-11-27", tz="UTC"), pd.Timestamp("2026-11-28", tz="UTC"))
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from collectors.base import CollectorError, CollectorUnavailable, SeriesRequest
from collectors.promql import (
    MAX_POINTS,
    Quality,
    SeriesData,
    chunk_grid,
    count_missing,
    counter_rate,
    describe,
    fresh_only,
    is_selector,
    label_key,
    many_series_error,
    name_series,
    parse_matrix,
    step_grid,
)
from collectors.resilience import CircuitBreaker, RetryPolicy

__all__ = ["PrometheusCollector", "QueryOptions", "SeriesProbe"]

log = logging.getLogger(__name__)

_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
_AUTH_STATUS = {401, 403}
_STATUS = re.compile(r"HTTP Status Code (\d{3})")


@dataclass(frozen=True)
class QueryOptions:
    """How to read one query's answer.

    Args:
        name_template: ``unique_id`` of each result series from its labels, e.g.
            ``"{service}:requests_per_second"``; without it the query must return one series.
        counter: the query returns a raw counter; convert it to a per-second rate.
    """

    name_template: str | None = None
    counter: bool = False


@dataclass(frozen=True)
class SeriesProbe:
    """One result series of a probe: the name it gets, its labels, points and newest time."""

    unique_id: str | None
    labels: dict[str, str]
    points: int
    latest: pd.Timestamp | None


@dataclass
class _Answer:
    start: int  # ns
    end: int
    series: list[tuple[dict[str, str], np.ndarray, np.ndarray, Quality]]
    by_name: dict[str, list[tuple[np.ndarray, np.ndarray, Quality]]] | None = None


class PrometheusCollector:
    """Range queries against one Prometheus, with retries, a circuit breaker and chunking.

    Args:
        url: base URL, e.g. ``http://prometheus:9090`` (no ``/api/v1``).
        step_seconds: the grid step (whole seconds).
        name: the source's name in messages and alerts.
        timeout: seconds per HTTP request.
        headers: extra HTTP headers (e.g. a tenant header for Mimir).
        bearer_token: sent as ``Authorization: Bearer ...``.
        basic_auth: ``(username, password)``.
        verify_tls: verify the server certificate (``False`` only for testing).
        ca_file: CA bundle to verify the server with.
        cert_file, key_file: client certificate (mutual TLS).
        retry: retries and backoff for transient failures.
        breaker: the circuit breaker (default: 3 failures, 30 s cool-down).
        max_points: points per series per request (< 11,000).
        queries: per-query options (name templates, counters).
        sleep: how to wait between retries (injected in tests).
        client: a ready ``PrometheusConnect`` (tests); otherwise built from the above.
    """

    def __init__(
        self,
        url: str,
        *,
        step_seconds: int = 60,
        name: str = "prometheus",
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        verify_tls: bool = True,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        max_points: int = MAX_POINTS,
        queries: Mapping[str, QueryOptions] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        client: Any = None,
    ) -> None:
        if int(step_seconds) != step_seconds or step_seconds < 1:
            raise ValueError(f"{name}: step must be a whole number of seconds >= 1, got {step_seconds}")
        if not 2 <= max_points <= 11_000:
            raise ValueError(f"{name}: max_points must be in [2, 11000], got {max_points}")
        self.name = name
        self.url = url.rstrip("/")
        self.step_seconds = int(step_seconds)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self.max_points = max_points
        self.queries = dict(queries or {})
        self._sleep = sleep
        self._cache: dict[tuple[str, QueryOptions], _Answer] = {}
        self._client = client or _connect(
            self.url, timeout, headers, bearer_token, basic_auth, verify_tls, ca_file, cert_file,
            key_file,
        )  # fmt: skip

    def close(self) -> None:
        """Release the HTTP connection pool."""
        closer = getattr(self._client, "close", None)
        if closer is not None:
            closer()

    # ------------------------------------------------------------------ the Collector protocol
    def fetch(self, request: SeriesRequest, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Points of ``request`` on the step grid in ``[start, end)`` as ``unique_id, ds, y``.

        Raises:
            CollectorUnavailable: Prometheus cannot be reached (after retries) or the breaker
                is open; the message names the source, URL and last error.
            CollectorError: the query is rejected or returns series it cannot name.
        """
        options = self.queries.get(request.query, QueryOptions())
        # only a templated query's answer serves several series: cache only those (one per query)
        shared = options.name_template is not None
        answer = self._answer(request.query, options, start, end, use_cache=shared)
        if options.name_template is None and len(answer.series) > 1:
            raise CollectorError(
                f"{self.name}: " + many_series_error(
                    request.query, [s[0] for s in answer.series], len(answer.series)
                )
            )  # fmt: skip
        if options.name_template is None:
            found = [(ts, y, quality) for _, ts, y, quality in answer.series]
        else:
            if answer.by_name is None:  # name each series once per answer, not once per fetch
                answer.by_name = {}
                for labels, ts, y, quality in answer.series:
                    uid = self._name(options.name_template, labels, request.query)
                    answer.by_name.setdefault(uid, []).append((ts, y, quality))
            found = answer.by_name.get(request.unique_id, [])
        frames = [_frame(request.unique_id, ts, y) for ts, y, _ in found]
        notes = [
            note
            for _, _, quality in found
            for note in quality.notes(f"{self.name}:{request.unique_id} ({request.query})")
        ]
        frame = frames[0] if len(frames) == 1 else (
            pd.concat(frames, ignore_index=True) if frames else _frame(request.unique_id, *_no_points())
        )  # fmt: skip
        frame.attrs["repairs"] = notes
        return frame

    # ------------------------------------------------------------------ discovery help
    def probe(
        self, query: str, start: pd.Timestamp, end: pd.Timestamp, options: QueryOptions | None = None
    ) -> list[SeriesProbe]:
        """Every series ``query`` returns in ``[start, end)``: its name, labels, size and newest
        point (what ``surgecast collectors check`` prints). Raises like :meth:`fetch`."""
        options = options or self.queries.get(query, QueryOptions())
        answer = self._answer(query, options, start, end, use_cache=False)
        out = []
        for labels, ts, _, _ in answer.series:
            try:
                uid = name_series(options.name_template, labels, query) if options.name_template else None
            except ValueError:
                uid = None
            latest = _frame("x", ts[-1:], ts[-1:])["ds"].iloc[0] if len(ts) else None
            out.append(SeriesProbe(uid, labels, len(ts), latest))
        return out

    # ------------------------------------------------------------------ internals
    def _name(self, template: str, labels: Mapping[str, str], query: str) -> str:
        try:
            return name_series(template, labels, query)
        except ValueError as exc:
            raise CollectorError(f"{self.name}: {exc}") from None

    def _answer(
        self, query: str, options: QueryOptions, start: pd.Timestamp, end: pd.Timestamp,
        use_cache: bool = True,
    ) -> _Answer:
        """All series of ``query`` in ``[start, end)``; the series of one templated query share
        one answer per tick (same query, same window)."""
        start_s, end_s = _nanos(start), _nanos(end)
        key = (query, options)
        cached = self._cache.get(key)
        if use_cache and cached is not None and (cached.start, cached.end) == (start_s, end_s):
            return cached
        answer = _Answer(start_s, end_s, self._query(query, options, start_s, end_s))
        if use_cache:
            self._cache[key] = answer
        return answer

    def _query(
        self, query: str, options: QueryOptions, start_ns: int, end_ns: int
    ) -> list[tuple[dict[str, str], np.ndarray, np.ndarray, Quality]]:
        step = self.step_seconds
        grid = step_grid(start_ns, end_ns, step)
        if grid is None:
            return []
        first, last = grid
        if options.counter:
            first -= step  # a rate needs the point before the first one
        selector = is_selector(query)
        sent = fresh_only(query, step) if selector else query
        parts: dict[tuple[tuple[str, str], ...], list[SeriesData]] = {}
        quality_of: dict[tuple[tuple[str, str], ...], Quality] = {}
        for lo, hi in chunk_grid(first, last, step, self.max_points):
            result = self._range(query, sent, lo, hi)
            try:
                series = parse_matrix(result, query)
            except (ValueError, TypeError, IndexError) as exc:
                raise CollectorError(f"{self.name} ({self.url}): {exc}") from None
            for s in series:
                key = label_key(s.labels)
                parts.setdefault(key, []).append(s)
                quality_of.setdefault(key, Quality()).add(s.quality)
        out = []
        for key, chunks in parts.items():
            quality = quality_of[key]
            ts = np.concatenate([c.ts for c in chunks])
            y = np.concatenate([c.y for c in chunks])
            ts, first_at = np.unique(ts, return_index=True)  # sorted; first sighting kept
            quality.duplicates += len(y) - len(first_at)
            y = y[first_at]
            if options.counter:
                ts, y, quality.counter_resets = counter_rate(ts, y)
            elif not selector and _looks_like_counter(query):
                quality.extra.append(
                    "looks like a raw counter; use rate(...) or set 'counter: true' on the series"
                )
            keep = ts >= grid[0]
            ts, y = ts[keep], y[keep]
            quality.missing_steps = count_missing(ts, step)
            out.append((chunks[0].labels, ts, y, quality))
        out.sort(key=lambda s: label_key(s[0]))
        return out

    def _range(self, query: str, sent: str, lo: int, hi: int) -> list[Any]:
        """One query_range request, retried on transient failures, through the breaker."""
        where = f"{self.name} ({self.url})"
        if not self.breaker.allow():
            raise CollectorUnavailable(
                f"{where}: circuit breaker open after {self.breaker.failures} failed fetches in a "
                f"row; next try in {self.breaker.retry_in():.0f} s; last error: "
                f"{self.breaker.last_error}"
            )
        last_error = ""
        for delay in [0.0, *self.retry.delays()]:
            if delay:
                self._sleep(delay)
            try:
                result = self._client.custom_query_range(
                    sent,
                    start_time=datetime.fromtimestamp(lo, tz=UTC),
                    end_time=datetime.fromtimestamp(hi, tz=UTC),
                    step=str(self.step_seconds),
                    timeout=self.timeout,
                )
            except Exception as exc:
                status = _status(exc)
                text = _short(exc)
                if status in _AUTH_STATUS:
                    self.breaker.failure(text)
                    raise CollectorUnavailable(
                        f"{where}: HTTP {status}: credentials refused; check bearer_token / "
                        f"basic auth of the source ({text})"
                    ) from None
                if status is not None and status not in _TRANSIENT_STATUS:
                    self.breaker.success()  # it answered: the source is up, the query is bad
                    raise CollectorError(f"{where}: query {query!r} rejected: {text}") from None
                if status is None and not _is_transport_error(exc):
                    raise CollectorError(f"{where}: query {query!r} failed: {text}") from exc
                last_error = text
                log.info("%s: query %r failed (%s); retrying", where, query, text)
                continue
            self.breaker.success()
            return list(result)
        self.breaker.failure(last_error)
        raise CollectorUnavailable(
            f"{where}: unreachable after {len(self.retry.delays()) + 1} attempt(s) for query "
            f"{query!r}: {last_error}"
        )


def _connect(
    url: str,
    timeout: float,
    headers: Mapping[str, str] | None,
    bearer_token: str | None,
    basic_auth: tuple[str, str] | None,
    verify_tls: bool,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
) -> Any:
    """A ``PrometheusConnect`` with our auth and TLS, and without its own retries (ours count
    towards the breaker, and its default 3 x backoff 1 s would triple a dead source's cost)."""
    import requests
    from prometheus_api_client import PrometheusConnect
    from urllib3.util.retry import Retry

    session = requests.Session()
    session.verify = ca_file if (ca_file and verify_tls) else verify_tls
    if cert_file:
        session.cert = (cert_file, key_file) if key_file else cert_file
    sent_headers = dict(headers or {})
    if bearer_token:
        sent_headers["Authorization"] = f"Bearer {bearer_token}"
    return PrometheusConnect(
        url, headers=sent_headers or None, retry=Retry(total=0, redirect=3), auth=basic_auth,
        session=session, timeout=timeout,
    )  # fmt: skip


def _status(exc: Exception) -> int | None:
    """The HTTP status of a ``PrometheusApiClientException`` (it only keeps it in its text)."""
    match = _STATUS.search(str(exc))
    return int(match.group(1)) if match else None


def _is_transport_error(exc: Exception) -> bool:
    import requests

    return isinstance(exc, requests.RequestException | OSError)


def _short(exc: Exception, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}"
    # Prometheus' JSON error body is the useful part of the client's message
    match = re.search(r'"error":"((?:[^"\\]|\\.)*)"', text)
    if match:
        text = f"HTTP {_status(exc)}: {match.group(1)}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _looks_like_counter(query: str) -> bool:
    return is_selector(query) and query.split("{")[0].strip().endswith("_total")


def _nanos(ts: pd.Timestamp) -> int:
    ts = pd.Timestamp(ts)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.as_unit("ns").value)


def _no_points() -> tuple[np.ndarray, np.ndarray]:
    return np.array([], dtype=float), np.array([], dtype=float)


def _frame(uid: str, ts: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    ms = np.round(np.asarray(ts, dtype=float) * 1000).astype(np.int64)
    return pd.DataFrame(
        {
            "unique_id": pd.Series([uid] * len(ms), dtype=object),
            "ds": pd.to_datetime(ms, unit="ms", utc=True).as_unit("ns"),
            "y": np.asarray(y, dtype=float),
        }
    )


def labels_text(labels: Mapping[str, str]) -> str:
    """``{a="1"}`` for the CLI."""
    return describe(labels)
