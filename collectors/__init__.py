"""Collectors: thin adapters that pull series points from metrics sources.

``collectors.prometheus.PrometheusCollector`` is imported from its module (it pulls in the HTTP
client stack, which the simulator-only service does not need).
"""

from collectors.base import Collector, CollectorError, CollectorUnavailable, SeriesRequest
from collectors.files import FileCollector, FixturesCollector
from collectors.simulated import SimulatedCollector

__all__ = [
    "Collector",
    "CollectorError",
    "CollectorUnavailable",
    "FileCollector",
    "FixturesCollector",
    "SeriesRequest",
    "SimulatedCollector",
]
