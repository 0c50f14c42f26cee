"""Building Prometheus collectors and series from settings (part of the composition root).

One PromQL expression may return several label sets. A series entry whose ``service`` is a
label placeholder (``service: "{service}"``, or ``"{job}"`` ...) is one query for every
configured service: it expands to a series per service in ``services``, and the collector names
each result series ``<label value>:<metric>``, so the four services of::

    series:
      - service: "{service}"
        metric: requests_per_second
        source: prometheus
        promql: sum by (service) (rate(http_requests_total[1m]))

cost one HTTP query per tick. An explicit entry for the same ``service:metric`` wins over the
expansion (to give one service a different query).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from collectors.prometheus import PrometheusCollector, QueryOptions
from collectors.resilience import CircuitBreaker, RetryPolicy
from surgecast.config import PrometheusSource, SeriesSettings, ServiceSettings
from surgecast.errors import ConfigError

__all__ = ["expand_series", "is_template", "prometheus_collector", "query_options"]

_PLACEHOLDER = re.compile(r"^\{([a-zA-Z_][a-zA-Z0-9_]*)\}$")


def is_template(series: SeriesSettings) -> bool:
    """Does this entry stand for one series per service (``service: "{label}"``)?"""
    return "{" in series.service or "}" in series.service


def _template_label(series: SeriesSettings) -> str:
    match = _PLACEHOLDER.match(series.service)
    if match is None or "{" in series.metric:
        raise ConfigError(
            f"series {series.unique_id!r}: a templated entry has service: '{{<label>}}' (e.g. "
            "'{service}') and a plain metric name; other placeholders are not supported"
        )
    if not series.promql:
        raise ConfigError(f"series {series.unique_id!r}: a templated entry needs 'promql'")
    return match.group(1)


def name_template(series: SeriesSettings) -> str:
    """The collector's name template of a templated entry: ``{service}:requests_per_second``."""
    return f"{{{_template_label(series)}}}:{series.metric}"


def expand_series(
    series: Iterable[SeriesSettings], services: Mapping[str, ServiceSettings]
) -> list[SeriesSettings]:
    """Templated entries become one entry per configured service; explicit entries win.

    Raises:
        ConfigError: a template is malformed, or expands to nothing (no services configured).
    """
    listed = list(series)
    explicit = {s.unique_id for s in listed if not is_template(s)}
    out: list[SeriesSettings] = []
    for entry in listed:
        if not is_template(entry):
            out.append(entry)
            continue
        _template_label(entry)
        if not services:
            raise ConfigError(
                f"series {entry.unique_id!r}: a templated entry expands over 'services', which "
                "is empty; list the services to watch"
            )
        for name in services:
            concrete = entry.model_copy(update={"service": name})
            if concrete.unique_id not in explicit:
                out.append(concrete)
    return out


def query_options(series: Iterable[SeriesSettings]) -> dict[str, QueryOptions]:
    """Per PromQL: how its answer is named and read (templates, counters).

    Raises:
        ConfigError: one query is configured twice with different options.
    """
    options: dict[str, QueryOptions] = {}
    for entry in series:
        if not entry.promql:
            continue
        wanted = QueryOptions(name_template(entry) if is_template(entry) else None, entry.counter)
        known = options.setdefault(entry.promql, wanted)
        if known != wanted:
            raise ConfigError(
                f"promql {entry.promql!r} is used by several series with different options "
                f"({known} vs {wanted}); give each series its own query"
            )
    return options


def prometheus_collector(
    name: str, source: PrometheusSource, series: Iterable[SeriesSettings]
) -> PrometheusCollector:
    """The collector of source ``name``, with auth, TLS, retries and its series' query options.

    ``series`` are the configured entries as written (templates not yet expanded).

    Raises:
        ConfigError: the bearer token file cannot be read.
    """
    token = source.bearer_token
    if source.bearer_token_file:
        try:
            token = Path(source.bearer_token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"sources.{name}.bearer_token_file: cannot read {source.bearer_token_file}: {exc}"
            ) from exc
    basic = (
        (source.basic_auth_username, source.basic_auth_password or "")
        if source.basic_auth_username
        else None
    )
    mine = [s for s in series if s.source == name]
    return PrometheusCollector(
        source.url,
        step_seconds=int(pd.Timedelta(source.step).total_seconds()),
        name=name,
        timeout=source.timeout_seconds,
        headers=source.headers,
        bearer_token=token,
        basic_auth=basic,
        verify_tls=source.verify_tls,
        ca_file=source.ca_file,
        cert_file=source.cert_file,
        key_file=source.key_file,
        retry=RetryPolicy(retries=source.retries, backoff=source.backoff_seconds),
        breaker=CircuitBreaker(source.breaker_failures, source.breaker_reset_seconds),
        max_points=source.max_points_per_query,
        queries=query_options(mine),
    )

