"""The simulator as a Prometheus exporter (``surgecast simulate serve``), for end-to-end tests.

On each scrape at wall time ``w`` it exposes, with prometheus-client:

- gauges ``surgecast_sim_<metric>{service}``: the simulator's point at ``ceil(w, step)``. A
  point at ``t`` is the value over the step ending at ``t`` (as ``rate()`` labels it), so
  while that step runs the exporter shows it, and Prometheus' answer at ``t`` is exactly the
  simulator's point there, the same value ``simulate backfill`` writes for history;
- counters ``surgecast_sim_<what>_total{service}`` (requests, bets, stake, logins, login
  failures, deposits, deposit failures, withdrawals, errors), integrated from the rates since the
  exporter started (so a restart is a counter reset, as in real life);
- a histogram ``surgecast_sim_request_duration_seconds{service}``: each request's latency drawn
  from a log-normal whose 95th percentile is the simulated ``latency_p95_seconds``.

A series the simulator silences (incident ``metric_silence``) is not exposed meanwhile, so
Prometheus marks it stale, as a real dead target would be.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from simulator.config import METRIC_UNITS
from simulator.engine import Simulator

__all__ = ["LATENCY_BUCKETS", "SimulatorMetrics", "counter_name", "serve"]

# prometheus-client's default buckets (seconds)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_Z95 = 1.6448536269514722  # standard normal 95th percentile
_ERRORS = "errors"


def counter_name(metric: str) -> str | None:
    """The counter a rate metric integrates into: ``bets_per_second`` -> ``bets``; else None."""
    if METRIC_UNITS.get(metric, ("", ""))[1] != "rate":
        return None
    return metric.removesuffix("_per_second")


def _lognormal_cdf(x: float, p95: float, sigma: float) -> float:
    mu = math.log(p95) - _Z95 * sigma
    return 0.5 * (1.0 + math.erf((math.log(x) - mu) / (sigma * math.sqrt(2.0))))


class SimulatorMetrics:
    """A prometheus-client custom collector over a :class:`~simulator.Simulator`.

    Args:
        sim: the simulator.
        clock: wall time as an aware ``pd.Timestamp`` (injected in tests).
        prefix: metric name prefix.
        latency_sigma: log-normal shape of request latencies.
    """

    def __init__(
        self,
        sim: Simulator,
        clock: Callable[[], pd.Timestamp] | None = None,
        prefix: str = "surgecast_sim",
        latency_sigma: float = 0.5,
    ) -> None:
        self.sim = sim
        self.clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self.prefix = prefix
        self.sigma = latency_sigma
        self._step_s = int(sim.step.total_seconds())
        self._lock = threading.Lock()
        self._since: float | None = None
        self._counters: dict[tuple[str, str], float] = {}
        self._hist: dict[str, np.ndarray] = {}  # service -> cumulative counts per bucket + sum

    def describe(self) -> list[Any]:
        return []  # no registration-time scrape: names are checked by the test suite

    def _values_at(self, times: list[int]) -> dict[int, dict[str, float]]:
        """Simulator points at the given grid times (seconds), by time then unique_id."""
        lo, hi = min(times), max(times)
        frame = self.sim.series(
            pd.Timestamp(lo, unit="s", tz="UTC"), pd.Timestamp(hi + self._step_s, unit="s", tz="UTC")
        )
        secs = frame["ds"].astype("int64").to_numpy() // 10**9
        out: dict[int, dict[str, float]] = {t: {} for t in times}
        for t, uid, y in zip(secs.tolist(), frame["unique_id"].tolist(), frame["y"].tolist(), strict=True):
            if t in out:
                out[t][uid] = y
        return out

    def _advance(self, now_s: float) -> None:
        """Integrate the rates over ``(since, now]`` into the counters and the histogram."""
        since, self._since = self._since, now_s
        if since is None or now_s <= since:
            return
        step = self._step_s
        cuts = [since, *range((math.floor(since / step) + 1) * step, math.ceil(now_s / step) * step, step), now_s]
        segments = [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
        ends = [math.ceil(b / step) * step for _, b in segments]
        values = self._values_at(sorted(set(ends)))
        for (a, b), t in zip(segments, ends, strict=True):
            at = values[t]
            for uid, y in at.items():
                service, metric = uid.rsplit(":", 1)
                name = counter_name(metric)
                if name is None or not math.isfinite(y):
                    continue
                key = (service, name)
                self._counters[key] = self._counters.get(key, 0.0) + max(y, 0.0) * (b - a)
                if metric == "requests_per_second":
                    self._observe(service, max(y, 0.0) * (b - a), at)

    def _observe(self, service: str, requests: float, at: dict[str, float]) -> None:
        ratio = at.get(f"{service}:error_ratio")
        if ratio is not None and math.isfinite(ratio):
            key = (service, _ERRORS)
            self._counters[key] = self._counters.get(key, 0.0) + requests * min(max(ratio, 0.0), 1.0)
        p95 = at.get(f"{service}:latency_p95_seconds")
        if p95 is None or not math.isfinite(p95) or p95 <= 0:
            return
        cdf = [_lognormal_cdf(le, p95, self.sigma) for le in LATENCY_BUCKETS]
        mean = math.exp(math.log(p95) - _Z95 * self.sigma + self.sigma**2 / 2)
        hist = self._hist.setdefault(service, np.zeros(len(LATENCY_BUCKETS) + 2))
        hist[: len(cdf)] += requests * np.array(cdf)
        hist[-2] += requests  # +Inf bucket = count
        hist[-1] += requests * mean  # sum

    def _start_at_zero(self, current: dict[str, float]) -> None:
        """Expose counters from the first scrape on, at 0, so ``rate()`` has a baseline."""
        for uid in current:
            service, metric = uid.rsplit(":", 1)
            name = counter_name(metric)
            if name is not None:
                self._counters.setdefault((service, name), 0.0)
            if metric == "requests_per_second":
                self._counters.setdefault((service, _ERRORS), 0.0)
                self._hist.setdefault(service, np.zeros(len(LATENCY_BUCKETS) + 2))

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        now = self.clock()
        now_s = now.value / 1e9
        point_at = math.ceil(now_s / self._step_s) * self._step_s
        with self._lock:
            self._advance(now_s)
            current = self._values_at([point_at])[point_at]
            self._start_at_zero(current)
            counters = dict(self._counters)
            hist = {k: v.copy() for k, v in self._hist.items()}
        gauges: dict[str, Any] = {}
        for uid in sorted(current):
            service, metric = uid.rsplit(":", 1)
            if metric not in gauges:
                unit = METRIC_UNITS.get(metric, ("", ""))[0]
                gauges[metric] = GaugeMetricFamily(
                    f"{self.prefix}_{metric}",
                    f"Simulated {metric.replace('_', ' ')} ({unit}), the step ending at the next "
                    "step boundary",
                    labels=["service"],
                )
            gauges[metric].add_metric([service], current[uid])
        yield from gauges.values()
        families: dict[str, Any] = {}
        for (service, name), value in sorted(counters.items()):
            if name not in families:
                families[name] = CounterMetricFamily(
                    f"{self.prefix}_{name}", f"Simulated {name.replace('_', ' ')} since start",
                    labels=["service"],
                )  # fmt: skip
            families[name].add_metric([service], value)
        yield from families.values()
        if hist:
            family = HistogramMetricFamily(
                f"{self.prefix}_request_duration_seconds",
                "Simulated request latency (log-normal, p95 = latency_p95_seconds)",
                labels=["service"],
            )
            for service, h in sorted(hist.items()):
                buckets = [(repr(le), float(c)) for le, c in zip(LATENCY_BUCKETS, h, strict=False)]
                family.add_metric([service], [*buckets, ("+Inf", float(h[-2]))], sum_value=float(h[-1]))
            yield family


def serve(
    sim: Simulator,
    port: int = 9108,
    host: str = "127.0.0.1",
    clock: Callable[[], pd.Timestamp] | None = None,
) -> tuple[Any, threading.Thread, SimulatorMetrics]:
    """Serve ``/metrics`` for ``sim`` in a daemon thread; ``port=0`` picks a free port.

    Returns:
        ``(server, thread, metrics)``: stop with ``server.shutdown(); server.server_close()``;
        the bound port is ``server.server_port``.
    """
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    metrics = SimulatorMetrics(sim, clock=clock)
    registry.register(metrics)  # type: ignore[arg-type]
    server, thread = start_http_server(port, addr=host, registry=registry)
    return server, thread, metrics
