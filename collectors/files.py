"""Collectors over files: series from CSV/Parquet, scheduled events from CSV/JSON.

:class:`FileCollector` reads a canonical long file (``unique_id, ds, y``) or a single series
(``timestamp, value`` or ``ds, y``; the series is then whatever ``unique_id`` asks for it). The
file is re-read when it changes, so an export job may rewrite it between ticks.

:class:`FixturesCollector` reads the fixtures calendar (``event_id, start, end, sport,
competition, importance``, ``name`` optional) from CSV or JSON (a list of objects, or
``{"events": [...]}``) and validates it once, with errors naming the file, row and field: the
events frame of DESIGN.md §3, known future inputs to the forecasts.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from collectors.base import CollectorError, CollectorUnavailable, SeriesRequest

__all__ = ["EVENT_COLUMNS", "FileCollector", "FixturesCollector", "read_events", "read_series_file"]

EVENT_COLUMNS = ("event_id", "start", "end", "sport", "competition", "importance")
_SHOWN = 5


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data.get("events", data) if isinstance(data, dict) else data
            if not isinstance(rows, list):
                raise CollectorError(f"{path}: expected a JSON list of objects or {{\"events\": [...]}}")
            return pd.DataFrame(rows)
        return pd.read_csv(path)
    except FileNotFoundError as exc:
        raise CollectorUnavailable(f"{path}: file not found") from exc
    except (OSError, ValueError) as exc:
        raise CollectorError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from exc


def _times(values: pd.Series, path: Path, column: str) -> pd.Series:
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    bad = parsed.isna()
    if bad.any():
        rows = ", ".join(str(i + 2) for i in values.index[bad][:_SHOWN])  # +2: header, 1-based
        raise CollectorError(
            f"{path}: column {column!r} has values that are not times at line(s) {rows} "
            f"(first: {values[bad].iloc[0]!r}); use ISO 8601 such as 2026-11-28T20:00:00Z"
        )
    return parsed.astype("datetime64[ns, UTC]")


def read_series_file(path: str | PathLike[str]) -> tuple[pd.DataFrame, bool]:
    """Read a series file; return ``(frame, canonical)``.

    ``canonical`` is False for a single series (``timestamp, value`` or ``ds, y``), whose
    ``unique_id`` column is then empty, to be named by the caller.

    Raises:
        CollectorUnavailable: the file does not exist.
        CollectorError: unreadable, wrong columns, or times that do not parse (names the line).
    """
    file = Path(path)
    raw = _read_table(file)
    cols = {str(c).strip().lower(): c for c in raw.columns}
    if {"unique_id", "ds", "y"} <= set(cols):
        uid, t, v, canonical = raw[cols["unique_id"]].astype(str), cols["ds"], cols["y"], True
    elif {"timestamp", "value"} <= set(cols) or {"ds", "y"} <= set(cols):
        t, v = (cols["ds"], cols["y"]) if "ds" in cols else (cols["timestamp"], cols["value"])
        uid, canonical = pd.Series([""] * len(raw), dtype=object), False
    else:
        raise CollectorError(
            f"{file}: expected columns unique_id,ds,y or timestamp,value (or ds,y); got "
            f"{list(raw.columns)}"
        )
    y = pd.to_numeric(raw[v], errors="coerce")
    bad = y.isna() & raw[v].notna() & ~raw[v].astype(str).str.strip().str.lower().isin({"nan", ""})
    if bad.any():
        rows = ", ".join(str(i + 2) for i in raw.index[bad][:_SHOWN])
        raise CollectorError(f"{file}: column {v!r} is not numeric at line(s) {rows}")
    frame = pd.DataFrame({"unique_id": uid.to_numpy(), "ds": _times(raw[t], file, str(t)), "y": y.astype(float)})
    return frame.sort_values(["unique_id", "ds"], kind="stable", ignore_index=True), canonical


class FileCollector:
    """Series from a CSV or Parquet file (see the module docstring).

    For a canonical file the request's ``query`` is the ``unique_id`` in the file (by default
    the series' own id); a single-series file answers every request.
    """

    def __init__(self, path: str | PathLike[str], name: str = "file") -> None:
        self.path = Path(path)
        self.name = name
        self._stamp: tuple[float, int] | None = None
        self._frame = pd.DataFrame()
        self._canonical = True

    def _load(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError as exc:
            raise CollectorUnavailable(f"{self.name}: {self.path}: file not found") from exc
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            self._frame, self._canonical = read_series_file(self.path)
            self._stamp = stamp

    def fetch(self, request: SeriesRequest, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        self._load()
        frame = self._frame
        if self._canonical:
            frame = frame[frame["unique_id"].to_numpy() == request.query]
            if frame.empty and request.query not in set(self._frame["unique_id"]):
                known = sorted(set(self._frame["unique_id"]))
                raise CollectorError(
                    f"{self.name}: {self.path} has no series {request.query!r}; it has "
                    f"{', '.join(known[:8])}{' ...' if len(known) > 8 else ''}"
                )
        frame = frame[(frame["ds"] >= start) & (frame["ds"] < end)]
        return frame.assign(unique_id=request.unique_id).reset_index(drop=True)


def read_events(path: str | PathLike[str]) -> pd.DataFrame:
    """Read and validate a fixtures calendar (CSV or JSON).

    Returns:
        ``event_id, start, end, sport, competition, importance`` (+ ``name`` when given),
        sorted by ``start``; times UTC.

    Raises:
        CollectorUnavailable: the file does not exist.
        CollectorError: a missing column, a bad time, ``end`` not after ``start``, a negative
            or non-numeric importance, or a repeated ``event_id``; names the file and lines.
    """
    file = Path(path)
    raw = _read_table(file)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in EVENT_COLUMNS if c not in raw.columns]
    if missing:
        raise CollectorError(
            f"{file}: missing column(s) {missing}; a fixtures calendar needs "
            f"{list(EVENT_COLUMNS)} (name optional)"
        )
    out = raw.loc[:, [*EVENT_COLUMNS, *(["name"] if "name" in raw.columns else [])]].copy()
    out["event_id"] = out["event_id"].astype(str)
    out["start"] = _times(out["start"], file, "start")
    out["end"] = _times(out["end"], file, "end")
    backwards = out["end"] <= out["start"]
    if backwards.any():
        rows = ", ".join(str(i + 2) for i in out.index[backwards][:_SHOWN])
        raise CollectorError(f"{file}: 'end' is not after 'start' at line(s) {rows}")
    importance = pd.to_numeric(out["importance"], errors="coerce")
    bad = importance.isna() | (importance < 0) | ~np.isfinite(importance.fillna(0))
    if bad.any():
        rows = ", ".join(str(i + 2) for i in out.index[bad][:_SHOWN])
        raise CollectorError(
            f"{file}: 'importance' must be a number >= 0 (e.g. 1 for a league match, 3 for a "
            f"final) at line(s) {rows}"
        )
    out["importance"] = importance.astype(float)
    repeated = out["event_id"].duplicated(keep=False)
    if repeated.any():
        raise CollectorError(
            f"{file}: event_id repeated: {sorted(set(out.loc[repeated, 'event_id']))[:_SHOWN]}"
        )
    for col in ("sport", "competition"):
        out[col] = out[col].fillna("unknown").astype(str)
    return out.sort_values(["start", "event_id"], ignore_index=True)


class FixturesCollector:
    """Scheduled events from a fixtures file, re-read when it changes."""

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp: tuple[float, int] | None = None
        self._events = pd.DataFrame(columns=list(EVENT_COLUMNS))

    def events(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Events overlapping ``[start, end)``."""
        stat = self.path.stat() if self.path.exists() else None
        if stat is None:
            raise CollectorUnavailable(f"fixtures: {self.path}: file not found")
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            self._events = read_events(self.path)
            self._stamp = stamp
        ev = self._events
        return ev[(ev["start"] < end) & (ev["end"] > start)].reset_index(drop=True)
