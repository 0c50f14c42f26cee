"""Conversions between Python/pandas values and what :mod:`surgecast.store` keeps in the database.

Timestamps are stored as BIGINT **nanoseconds since the Unix epoch, UTC**. Integers compare,
index and range-scan the same way on SQLite and PostgreSQL, carry no timezone to lose, and
round-trip every ``datetime64[ns, UTC]`` value exactly (SQLite has no datetime type and
PostgreSQL's ``timestamptz`` stops at microseconds). The range is that of pandas itself
(1677-09-21 .. 2262-04-11). JSON documents are stored as text so both backends hold the same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from surgecast.errors import DataError

__all__ = [
    "TimestampLike",
    "decode_json",
    "encode_json",
    "from_ns",
    "mask_url",
    "ns_to_series",
    "optional_ns",
    "series_to_ns",
    "to_ns",
    "to_utc",
]

TimestampLike: TypeAlias = pd.Timestamp | dt.datetime | np.datetime64 | str
_ISO_HINT = "use an aware datetime, a pd.Timestamp or ISO 8601 such as 2026-11-28T17:00:00Z"


def to_utc(value: TimestampLike, *, field: str) -> pd.Timestamp:
    """Return ``value`` as a nanosecond-unit ``pd.Timestamp`` in UTC; naive values are taken as UTC.

    Args:
        value: a ``pd.Timestamp``, ``datetime``, ``numpy.datetime64`` or ISO 8601 string.
        field: the argument's name, used in the error message.

    Raises:
        DataError: the value is not a timestamp (numbers are refused: their unit is ambiguous).

    Example:
        >>> to_utc("2026-01-01T01:00+01:00", field="at").isoformat()
        '2026-01-01T00:00:00+00:00'
    """
    if isinstance(value, bool | int | float | np.number) or value is None:
        raise DataError(f"{field}: expected a timestamp, got {value!r}; {_ISO_HINT}")
    try:
        ts = pd.Timestamp(value)
        if ts is pd.NaT:
            raise ValueError("NaT")
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.as_unit("ns")
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(
            f"{field}: {value!r} is not a usable timestamp ({exc}); {_ISO_HINT}"
        ) from exc


def to_ns(value: TimestampLike, *, field: str) -> int:
    """Return ``value`` as integer nanoseconds since the epoch (the stored form)."""
    return int(to_utc(value, field=field).value)


def optional_ns(value: TimestampLike | None, *, field: str) -> int | None:
    """Like :func:`to_ns` but ``None`` (an open bound, an unset field) stays ``None``."""
    return None if value is None else to_ns(value, field=field)


def from_ns(value: int | None) -> pd.Timestamp | None:
    """Return the stored integer as an aware UTC ``pd.Timestamp`` (``None`` stays ``None``)."""
    return None if value is None else pd.Timestamp(int(value), unit="ns", tz="UTC")


def series_to_ns(ds: pd.Series, *, source: str) -> np.ndarray:
    """Vectorised :func:`to_ns` for a frame's ``ds`` column; returns an ``int64`` array."""
    if isinstance(ds.dtype, pd.DatetimeTZDtype):
        utc = ds.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_any_dtype(ds):
        utc = ds.dt.tz_localize("UTC")  # naive means UTC throughout surgecast
    elif pd.api.types.is_numeric_dtype(ds):
        raise DataError(
            f"{source}: column 'ds' holds numbers, not timestamps; convert epoch values with "
            "pd.to_datetime(..., unit='s', utc=True) first"
        )
    else:
        utc = pd.to_datetime(ds, errors="coerce", utc=True, format="mixed")
        bad = utc.isna()
        if bad.any():
            raise DataError(
                f"{source}: column 'ds' has missing or unparsable values at rows "
                f"{list(ds.index[bad][:5])}; {_ISO_HINT}"
            )
    if utc.isna().any():
        raise DataError(f"{source}: column 'ds' is empty at rows {list(ds.index[utc.isna()][:5])}")
    return utc.dt.as_unit("ns").astype("int64").to_numpy()


def ns_to_series(values: Any) -> pd.Series:
    """Return stored integers as a ``datetime64[ns, UTC]`` series (the canonical ``ds`` dtype)."""
    raw = np.asarray(values, dtype="int64").view("datetime64[ns]")
    return pd.Series(raw).dt.tz_localize("UTC")


def _plain(value: Any) -> Any:
    """Make ``value`` strict-JSON-ready: numpy scalars to Python, NaN/inf to null, times to ISO."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray | pd.Series):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON has no NaN; PostgreSQL and browsers would reject it
    if isinstance(value, pd.Timestamp | dt.datetime | np.datetime64):
        return to_utc(value, field="json").isoformat()
    if isinstance(value, pd.Timedelta | dt.timedelta):
        return pd.Timedelta(value).total_seconds()
    return value


def encode_json(value: Mapping[str, Any] | None, *, field: str) -> str:
    """Serialise a mapping to strict JSON text, or raise ``DataError`` naming ``field``."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise DataError(f"{field}: expected a mapping (dict), got {type(value).__name__}")
    try:
        return json.dumps(_plain(value), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{field}: cannot be stored as JSON ({exc}); use str, numbers, bools, lists and dicts"
        ) from exc


def decode_json(text: str | None) -> dict[str, Any]:
    """Parse stored JSON text back into a dict (``None`` gives an empty dict)."""
    return {} if text is None else dict(json.loads(text))


def mask_url(url: str | URL) -> str:
    """Return ``url`` with any password replaced by ``***`` (safe for logs and error messages)."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        # unparsable: show only the scheme, the rest may hold a password we cannot locate
        scheme = str(url).split(":", 1)[0] if ":" in str(url) else "?"
        return f"{scheme}://<unparsable URL>"
    return parsed.render_as_string(hide_password=True)
