"""Collectors: thin adapters that pull series points from metrics sources."""

from collectors.base import Collector, CollectorError, SeriesRequest
from collectors.simulated import SimulatedCollector

__all__ = ["Collector", "CollectorError", "SeriesRequest", "SimulatedCollector"]
