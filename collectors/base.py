"""The ``Collector`` protocol: a source of series points, one request at a time.

Collectors are thin adapters to the outside world. They return raw long frames
(``unique_id, ds, y``); the service core validates them once at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

__all__ = ["Collector", "CollectorError", "CollectorUnavailable", "SeriesRequest"]


class CollectorError(Exception):
    """A source could not be read; the message names the source and the query."""


class CollectorUnavailable(CollectorError):
    """The source itself is unreachable (connection, timeout, 5xx after retries, refused
    credentials, or its circuit breaker is open), as opposed to one bad query.

    The service holds its recommendations, marks them stale and alerts on this.
    """


@dataclass(frozen=True)
class SeriesRequest:
    """What to fetch: the series' canonical id and the source-specific query for it."""

    unique_id: str
    query: str


@runtime_checkable
class Collector(Protocol):
    """A metrics source. ``fetch`` returns points with ``start <= ds < end``."""

    name: str

    def fetch(self, request: SeriesRequest, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Return a long frame ``unique_id, ds, y`` for ``request`` in ``[start, end)``."""
        ...
