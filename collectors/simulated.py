"""Collector over an in-process simulated platform (the embedded default source)."""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from collectors.base import CollectorError, SeriesRequest

__all__ = ["SimulatedCollector"]


class _SeriesSource(Protocol):
    def series_ids(self) -> list[str]: ...

    def series(
        self, start: pd.Timestamp, end: pd.Timestamp, unique_ids: list[str] | None = None
    ) -> pd.DataFrame: ...


class SimulatedCollector:
    """Reads series from anything with ``series(start, end, unique_ids)``, e.g. ``simulator.Simulator``.

    The source is injected (not imported) so this package stays a leaf and tests can pass a fake.
    """

    name = "simulator"

    def __init__(self, source: _SeriesSource) -> None:
        self._source = source
        self._known = set(source.series_ids())

    def fetch(self, request: SeriesRequest, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        if request.query not in self._known:
            raise CollectorError(
                f"simulator has no series {request.query!r}; known series: "
                f"{', '.join(sorted(self._known)[:8])}{' ...' if len(self._known) > 8 else ''}"
            )
        frame = self._source.series(start, end, unique_ids=[request.query])
        frame = frame.assign(unique_id=request.unique_id)
        return frame.loc[:, ["unique_id", "ds", "y"]]
