"""Event-aware forecasts for the series that drive replicas, refitted every few minutes.

The seasonal-naive floor is refitted each tick for every series, but it cannot know that a
derby kicks off at 19:45. ``SeasonalEvents`` learns the uplift of each class of fixture from the
calendar; its fit takes seconds (about 5 s for 14 days of 1-min points), so it is refitted only
every ``refit_minutes`` and forecasts far enough ahead to cover the lead window until the next
refit. Between refits the tick slices the cached forecast from ``now``. If the fit fails the
floor's forecast stays in use, and the failure is reported.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from models.forecasting.seasonal_events import SeasonalEvents

__all__ = ["EventForecasts"]

log = logging.getLogger(__name__)

EventsProvider = Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame]


@dataclass
class _Cached:
    fitted_at: pd.Timestamp
    forecast: pd.DataFrame


class EventForecasts:
    """A cache of event-aware forecasts per series, refitted when older than ``refit``."""

    def __init__(
        self,
        events: EventsProvider,
        *,
        refit: pd.Timedelta,
        history: pd.Timedelta,
        min_history: pd.Timedelta = pd.Timedelta(days=7),
    ) -> None:
        self.events = events
        self.refit = refit
        self.history = history
        self.min_history = min_history
        self._cache: dict[str, _Cached] = {}

    def forecast(
        self,
        unique_id: str,
        points: pd.DataFrame,
        now: pd.Timestamp,
        lead: pd.Timedelta,
        step: pd.Timedelta,
        level: float,
    ) -> pd.DataFrame | None:
        """The event-aware forecast of ``unique_id`` over ``[now, now + lead]``, or ``None``.

        ``None`` means "no opinion": too little history. Raises what the model raises; the
        caller keeps the floor's forecast then.
        """
        cached = self._cache.get(unique_id)
        if cached is None or now - cached.fitted_at >= self.refit or cached.fitted_at > now:
            history = points[points["ds"] >= now - self.history]
            if history.empty or history["ds"].iloc[-1] - history["ds"].iloc[0] < self.min_history:
                return None
            ahead = lead + self.refit + step
            calendar = self.events(history["ds"].iloc[0] - pd.Timedelta(hours=3), now + ahead)
            model = SeasonalEvents().fit(history, events=calendar if len(calendar) else None)
            horizon = math.ceil((now + ahead - history["ds"].iloc[-1]) / step)
            cached = _Cached(now, model.predict(max(1, horizon), level=level))
            self._cache[unique_id] = cached
            log.info("refitted %s for %s on %d points", model.name, unique_id, len(history))
        window = cached.forecast
        return window[(window["ds"] >= now) & (window["ds"] <= now + lead)].reset_index(drop=True)

    def forget(self, unique_id: str) -> None:
        self._cache.pop(unique_id, None)
