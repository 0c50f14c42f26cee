"""The composition root: turn ``Settings`` into collectors, series and a ``Pipeline``.

Nothing here runs at import time; every process (``run``, ``api``, ``scheduler``, ``tick``) and
every test builds its own objects from its own settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from collectors import Collector, SimulatedCollector
from surgecast.clock import Clock, accelerated_clock, system_clock
from surgecast.config import (
    FileSource,
    PrometheusSource,
    SeriesSettings,
    Settings,
    SimulatorSource,
)
from surgecast.pipeline import Pipeline
from surgecast.store import Store

__all__ = ["Sources", "build_pipeline", "build_sources", "resolve_series"]


@dataclass
class Sources:
    """The live source objects of one process."""

    collectors: dict[str, Collector]
    simulators: dict[str, Any]
    clock: Clock
    calendars: list[Any] = field(default_factory=list)  # FixturesCollector per fixtures_file

    def events(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        frames = [sim.fixtures(start, end) for sim in self.simulators.values()]
        frames += [calendar.events(start, end) for calendar in self.calendars]
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def calendar(self) -> Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame] | None:
        """The fixtures calendar (:meth:`events`), or ``None`` when no source has fixtures."""
        return self.events if self.simulators or self.calendars else None


def make_simulator(source: SimulatorSource) -> Any:
    from simulator import Simulator, SimulatorConfig

    return Simulator(
        SimulatorConfig(
            seed=source.seed, step=source.step, incidents_per_day=source.incidents_per_day
        )
    )


def build_sources(settings: Settings) -> Sources:
    collectors: dict[str, Collector] = {}
    simulators: dict[str, Any] = {}
    calendars: list[Any] = []
    speeds = []
    for name, source in settings.sources.items():
        if isinstance(source, SimulatorSource):
            sim = make_simulator(source)
            simulators[name] = sim
            collectors[name] = SimulatedCollector(sim)
            speeds.append(source.speed)
        elif isinstance(source, PrometheusSource):
            from surgecast.prometheus_source import prometheus_collector

            collectors[name] = prometheus_collector(name, source, settings.series or [])
        elif isinstance(source, FileSource):
            from collectors.files import FileCollector

            collectors[name] = FileCollector(source.path, name=name)
        fixtures_file = getattr(source, "fixtures_file", None)
        if fixtures_file:
            from collectors.files import FixturesCollector

            calendars.append(FixturesCollector(fixtures_file))
    speed = max(speeds, default=1.0)
    clock = system_clock if speed == 1.0 else accelerated_clock(speed)
    return Sources(collectors, simulators, clock, calendars)


def resolve_series(settings: Settings, sources: Sources) -> list[SeriesSettings]:
    """The configured series, or by default every series of every simulator source."""
    if settings.series is not None:
        from surgecast.prometheus_source import expand_series

        return expand_series(settings.series, settings.services)
    resolved = []
    for name, sim in sources.simulators.items():
        for uid in sim.series_ids():
            service, _, metric = uid.partition(":")
            resolved.append(
                SeriesSettings(service=service, metric=metric, source=name, simulator=uid)
            )
    return resolved


def build_pipeline(settings: Settings, store: Store, *, clock: Clock | None = None) -> Pipeline:
    sources = build_sources(settings)
    return Pipeline(
        settings,
        store,
        sources.collectors,
        resolve_series(settings, sources),
        events=sources.calendar,
        clock=clock or sources.clock,
    )
