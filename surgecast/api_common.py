"""What the API's routers share: the :class:`ApiContext`, parameter checks that name the field,
JSON clean-up and time-cursor pagination."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import pandas as pd
from pydantic import AwareDatetime, BeforeValidator

from surgecast.api_auth import TokenAuth
from surgecast.api_scaling import ScalingView
from surgecast.config import Settings
from surgecast.errors import DataError, StoreError
from surgecast.pipeline import Pipeline
from surgecast.scheduler import ServiceState
from surgecast.store import Store

__all__ = [
    "MAX_RANGE",
    "ApiContext",
    "BadParameter",
    "attach_registered_events",
    "EventsProvider",
    "IsoTime",
    "json_value",
    "page",
    "present_recommendation",
    "time_range",
    "utc_param",
    "with_registered_events",
]

T = TypeVar("T")
EventsProvider = Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame]
MAX_RANGE = pd.Timedelta(days=31)


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_only(value: Any) -> Any:
    # pydantic would read "0.5" as seconds since 1970: a time parameter must look like one
    if isinstance(value, str) and not _ISO.match(value):
        raise ValueError("expected an ISO 8601 date-time with an offset, e.g. 2026-11-28T17:00:00Z")
    return value


IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]
"""A time parameter: ISO 8601 with a timezone offset (RFC 3339), nothing else."""


class BadParameter(DataError):
    """A request parameter that parsed but cannot be used (422, ``loc`` names it)."""

    def __init__(self, field: str, message: str, where: str = "query") -> None:
        super().__init__(message)
        self.field = field
        self.where = where


@dataclass
class ApiContext:
    """Everything a router needs, built once by :func:`surgecast.api.create_app`."""

    settings: Settings
    store: Store
    state: ServiceState | None
    view: ScalingView
    auth: TokenAuth
    calendar: EventsProvider | None = None

    def now(self) -> pd.Timestamp:
        return self.view.now()

    @property
    def services(self) -> list[str]:
        return sorted(self.settings.services)


def utc_param(value: datetime | None, field: str) -> pd.Timestamp | None:
    """A parsed datetime parameter as aware UTC; naive is UTC; out of pandas' range is 422."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value).as_unit("ns")  # the store's range: 1677-09-21 .. 2262-04-11
    except (ValueError, OverflowError) as exc:  # OutOfBoundsDatetime is a ValueError
        raise BadParameter(field, f"{field}: {value} is out of range (1678..2261)") from exc
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def time_range(
    start: datetime | None,
    end: datetime | None,
    *,
    now: pd.Timestamp,
    default_span: pd.Timedelta,
    default_end_ahead: pd.Timedelta = pd.Timedelta(seconds=1),
    max_span: pd.Timedelta = MAX_RANGE,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` with defaults (end: now + ``default_end_ahead``, by default just after now
    so rows made at ``now`` are in; start: end - span),
    refused (422) when empty or longer than ``max_span``."""
    end_ts = utc_param(end, "end")
    start_ts = utc_param(start, "start")
    if end_ts is None:
        end_ts = now + default_end_ahead
    if start_ts is None:
        start_ts = end_ts - default_span
    if start_ts >= end_ts:
        raise BadParameter("start", "start must be before end")
    if end_ts - start_ts > max_span:
        raise BadParameter(
            "end", f"the range start..end may span at most {max_span.days} days; page through longer ranges"
        )
    return start_ts, end_ts


def page(items: Sequence[T], limit: int, time_of: Callable[[T], Any]) -> tuple[list[T], Any]:
    """Cut the newest ``limit + 1`` rows (oldest first) to a page and its cursor.

    Returns the page and ``next_end``: pass it as ``end`` (exclusive) to get the older rows, or
    ``None`` when there are none. Rows sharing the time of the row that did not fit are moved to
    the next page, so no row is skipped or repeated (unless more than ``limit`` rows share one
    time: then the page holds ``limit`` of them and the rest are skipped).
    """
    rows = list(items)
    if len(rows) <= limit:
        return rows, None
    cut = time_of(rows[0])
    kept = [r for r in rows[1:] if time_of(r) > cut] or rows[1:]
    return kept, time_of(kept[0])


def json_value(value: Any) -> Any:
    """Timestamps to ISO strings, NaN/inf to ``None``, numpy scalars to Python, recursively."""
    if isinstance(value, pd.Timestamp | datetime):
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return json_value(value.item())
    return value


def with_registered_events(calendar: EventsProvider | None, store: Store) -> EventsProvider:
    """The fixtures calendar plus the events operators registered (``POST /v1/events``).

    The tick uses this as its events provider, so a registered promotion informs forecasts and
    excuses the surge it causes from anomaly alarms. A store failure leaves the calendar alone.
    """

    def events(start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        frames = []
        if calendar is not None:
            frames.append(calendar(start, end))
        try:
            frames.append(store.registered_events(start, end))
        except StoreError:
            pass
        frames = [f for f in frames if len(f)]
        if not frames:
            return frames_empty()
        out = pd.concat(frames, ignore_index=True)
        return out.sort_values(["start", "event_id"], ignore_index=True)

    return events


def frames_empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": pd.Series([], dtype="str"),
            "start": pd.Series([], dtype="datetime64[ns, UTC]"),
            "end": pd.Series([], dtype="datetime64[ns, UTC]"),
            "sport": pd.Series([], dtype="str"),
            "competition": pd.Series([], dtype="str"),
            "importance": pd.Series([], dtype=float),
        }
    )


def present_recommendation(rec: dict[str, Any], now: pd.Timestamp) -> dict[str, Any]:
    """A stored recommendation as JSON; past its ``valid_until`` it reads as stale."""
    out = json_value(dict(rec))
    valid_until = rec.get("valid_until")
    out["stale"] = bool(rec.get("stale")) or (valid_until is not None and now > valid_until)
    out["inputs"] = out.get("inputs") or {}
    return out


def attach_registered_events(pipeline: Pipeline, store: Store) -> EventsProvider | None:
    """Make the pipeline's ticks see registered events beside its calendar; return the bare
    calendar (what ``create_app(calendar=...)`` shows as not registered)."""
    calendar = pipeline.events
    events = with_registered_events(calendar, store)
    pipeline.events = events
    if pipeline.event_forecasts is not None:
        pipeline.event_forecasts.events = events
    return calendar
