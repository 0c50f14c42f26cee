"""Pure helpers of the Prometheus collector: step grids, chunks, query rewriting, parsing.

No I/O here, so every rule is unit-tested with exact numbers:

- :func:`step_grid` puts a half-open window ``[start, end)`` on the step grid (multiples of the
  step since the epoch), so every chunk and every tick asks for the same timestamps;
- :func:`chunk_grid` splits it below Prometheus' 11,000-points-per-series limit;
- :func:`fresh_only` keeps Prometheus from filling a step that has no sample with an older one
  (its 5-minute lookback), which would store invented points across an outage or at the seam
  between backfilled and scraped data;
- :func:`parse_matrix` turns the JSON ``matrix`` into per-series arrays and counts NaN/±Inf;
- :func:`counter_rate` turns a raw counter into a per-second rate, through resets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "MAX_POINTS",
    "Quality",
    "SeriesData",
    "chunk_grid",
    "count_missing",
    "counter_rate",
    "describe",
    "fresh_only",
    "is_selector",
    "label_key",
    "many_series_error",
    "name_series",
    "parse_matrix",
    "step_grid",
    "template_labels",
]

# Prometheus refuses (end - start) / step > 11,000; stay clear of it (CONVENTIONS.md §3)
MAX_POINTS = 10_000
_SELECTOR = re.compile(r"^\s*[a-zA-Z_:][a-zA-Z0-9_:]*\s*(\{[^{}]*\})?\s*$")


@dataclass
class Quality:
    """What a fetch found wrong and repaired; :meth:`notes` words it for the tick report."""

    nan: int = 0
    inf: int = 0
    missing_steps: int = 0
    duplicates: int = 0
    counter_resets: int = 0
    extra: list[str] = field(default_factory=list)

    def add(self, other: Quality) -> None:
        for name in ("nan", "inf", "missing_steps", "duplicates", "counter_resets"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.extra.extend(other.extra)

    def notes(self, subject: str) -> list[str]:
        """Human lines naming ``subject`` (query or series); empty when nothing happened."""
        parts = [
            (self.nan, "NaN value(s) dropped"),
            (self.inf, "infinite value(s) dropped"),
            (self.missing_steps, "step(s) without a sample inside the range"),
            (self.duplicates, "duplicate point(s) at chunk edges dropped"),
            (self.counter_resets, "counter reset(s) bridged"),
        ]
        said = [f"{n} {what}" for n, what in parts if n]
        lines = [f"{subject}: {', '.join(said)}"] if said else []
        return lines + [f"{subject}: {text}" for text in self.extra]


@dataclass
class SeriesData:
    """One series of a range-query answer: its labels, sample times (s) and values."""

    labels: dict[str, str]
    ts: np.ndarray
    y: np.ndarray
    quality: Quality = field(default_factory=Quality)


def step_grid(start_ns: int, end_ns: int, step_s: int) -> tuple[int, int] | None:
    """First and last grid time (seconds) in ``[start, end)`` given in integer nanoseconds
    (exact: a watermark plus 1 ns must not round back onto the watermark), or ``None``.

    Example:
        >>> s = 10**9
        >>> step_grid(90 * s, 300 * s, 60)   # 120, 180, 240 (300 is excluded)
        (120, 240)
        >>> step_grid(60 * s + 1, 180 * s, 60)
        (120, 120)
        >>> step_grid(121 * s, 180 * s, 60) is None
        True
    """
    if step_s <= 0:
        raise ValueError(f"step must be a positive number of seconds, got {step_s}")
    step_ns = step_s * 10**9
    first = -(-start_ns // step_ns) * step_s
    last = (-(-end_ns // step_ns) - 1) * step_s
    return (first, last) if last >= first else None


def chunk_grid(first: int, last: int, step_s: int, max_points: int = MAX_POINTS) -> list[tuple[int, int]]:
    """Split the grid ``first..last`` (inclusive) into ranges of at most ``max_points`` points.

    The ranges do not overlap (each starts one step after the previous ends), so no point is
    asked twice; the collector still de-duplicates in case a server aligns differently.

    Example:
        >>> chunk_grid(0, 540, 60, max_points=4)   # 10 points: 4 + 4 + 2
        [(0, 180), (240, 420), (480, 540)]
    """
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    span = (max_points - 1) * step_s
    out = []
    lo = first
    while lo <= last:
        hi = min(lo + span, last)
        out.append((lo, hi))
        lo = hi + step_s
    return out


def is_selector(query: str) -> bool:
    """Is ``query`` a plain vector selector with a metric name (``name{a="b"}``)?

    Only for those does ``timestamp(query)`` give the time each value was sampled.

    Example:
        >>> is_selector('bets{service="x"}'), is_selector("sum(rate(bets_total[1m]))")
        (True, False)
    """
    match = _SELECTOR.match(query)
    return bool(match) and "__name__" not in query


def fresh_only(query: str, step_s: int) -> str:
    """``query`` answering only steps with a sample of their own, for a plain selector.

    At a step ``t`` Prometheus answers with the newest sample up to 5 minutes old; wrapped, it
    answers only with a sample in ``(t - step, t]`` and leaves the step out otherwise. For a
    step that has its sample both give the same value. (``timestamp()`` would tell the same,
    but costs ~100 times more on 2.42: 15 s for 10,000 steps.)

    Example:
        >>> fresh_only('up{job="a"}', 60)
        'last_over_time(up{job="a"}[59999ms])'
    """
    return f"last_over_time({query}[{step_s * 1000 - 1}ms])"


def label_key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The identity of a series: its labels without ``__name__``, sorted."""
    return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


def parse_matrix(result: Sequence[Mapping[str, Any]], query: str) -> list[SeriesData]:
    """The JSON ``data.result`` of a range query as arrays; NaN and ±Inf dropped and counted
    in each series' ``quality``.

    Raises:
        ValueError: the answer is not a matrix (names the query).

    Example:
        >>> [s] = parse_matrix([{"metric": {"service": "a"},
        ...     "values": [[60, "1.5"], [120, "NaN"], [180, "+Inf"]]}], "q")
        >>> s.ts.tolist(), s.y.tolist(), s.quality.nan, s.quality.inf
        ([60.0], [1.5], 1, 1)
    """
    out = []
    for entry in result:
        if not isinstance(entry, Mapping) or "values" not in entry:
            raise ValueError(f"query {query!r}: expected a range-query matrix, got {str(entry)[:200]}")
        values = entry["values"]
        ts = np.fromiter((float(v[0]) for v in values), dtype=float, count=len(values))
        y = np.fromiter((float(v[1]) for v in values), dtype=float, count=len(values))
        labels = {str(k): str(v) for k, v in (entry.get("metric") or {}).items()}
        nan, inf = np.isnan(y), np.isinf(y)
        quality = Quality(nan=int(nan.sum()), inf=int(inf.sum()))
        keep = ~(nan | inf)
        ts, y = ts[keep], y[keep]
        out.append(SeriesData(labels, ts, y, quality))
    return out


def count_missing(ts: np.ndarray, step_s: int) -> int:
    """Grid steps absent between the first and the last point of a sorted series."""
    if len(ts) < 2:
        return 0
    span = int(round((ts[-1] - ts[0]) / step_s)) + 1
    return max(span - len(ts), 0)


def counter_rate(ts: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-second rate of a raw counter between consecutive points; a drop is a reset.

    The first point has no predecessor and is dropped (the collector asks one step earlier).
    After a reset the counter restarted from zero, so the increase is the new value, as
    Prometheus' ``rate()`` counts it.

    Returns:
        ``(ts, rate, resets)``.

    Example:
        >>> ts = np.array([0.0, 60.0, 120.0, 180.0]); y = np.array([100.0, 160.0, 30.0, 90.0])
        >>> t, r, resets = counter_rate(ts, y)
        >>> t.tolist(), r.tolist(), resets
        ([60.0, 120.0, 180.0], [1.0, 0.5, 1.0], 1)
    """
    if len(ts) < 2:
        return ts[:0], y[:0], 0
    delta = np.diff(y)
    reset = delta < 0
    increase = np.where(reset, y[1:], delta)
    return ts[1:], increase / np.diff(ts), int(reset.sum())


def name_series(template: str, labels: Mapping[str, str], query: str) -> str:
    """The ``unique_id`` of one result series: ``template`` with ``{label}`` filled in.

    Raises:
        ValueError: the template names a label the series does not have (lists the ones it has).

    Example:
        >>> name_series("{service}:requests_per_second", {"service": "payments"}, "q")
        'payments:requests_per_second'
    """
    try:
        return template.format_map(dict(labels))
    except KeyError as exc:
        raise ValueError(
            f"query {query!r}: name template {template!r} uses label {exc.args[0]!r}, but a "
            f"result series has only {sorted(labels)}; use one of those or aggregate with "
            f"'sum by ({exc.args[0]}) (...)'"
        ) from None
    except (ValueError, IndexError) as exc:
        raise ValueError(f"name template {template!r} is not valid: {exc}") from None


def template_labels(template: str) -> list[str]:
    """The ``{label}`` names a template uses.

    Example:
        >>> template_labels("{service}:{metric}_rate")
        ['service', 'metric']
    """
    return re.findall(r"\{([^{}]+)\}", template)


def describe(labels: Mapping[str, str]) -> str:
    """``{a="1", b="2"}``, for messages."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def many_series_error(query: str, labels: Iterable[Mapping[str, str]], n: int) -> str:
    shown = ", ".join(describe(lab) for lab in list(labels)[:3])
    return (
        f"query {query!r} returned {n} series ({shown}{' ...' if n > 3 else ''}) where one was "
        "expected; aggregate it (e.g. 'sum by (service) (...)' with service: '{service}' in the "
        "series entry to get one series per service) or narrow the selector"
    )
