"""Fixture calendar → regression features: pure functions, no model state.

A forecaster learns the kickoff surge of an event from its *metadata* (competition, sport,
importance, kickoff hour, weekday), never from a per-match multiplier, so a Champions League
night it has never seen gets the uplift of its class. Each grid point ``t`` gets, for every
event overlapping it, the event's ``importance`` added to the column of its phase bin:

* ``pre``  — minutes before kickoff, ``-pre_minutes <= t - start < 0`` (the betting ramp),
* ``live`` — from kickoff to the final whistle (``start <= t < end``); bins of ``bin_minutes``
  up to ``live_minutes``, then one open-ended ``late`` bin (long tennis matches, promotions),
* ``post`` — ``0 <= t - end < post_minutes`` (settlement and login wave).

Columns come in blocks: one per event class (a competition seen often enough in training, else
``other``; promotions are the class ``promotion``), one ``all`` block every event adds to (a
shared profile ridge shrinks towards, so rare classes borrow strength), and six coarse
modulators ``evening|pre`` ... ``weekend|post`` for the kickoff hour (17:00-01:59 UTC) and the
weekday (Saturday, Sunday). Overlapping events add up (importance-weighted profiles).

Example:
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"start": pd.to_datetime(["2026-03-03 20:00"], utc=True),
    ...                    "end": pd.to_datetime(["2026-03-03 21:52"], utc=True),
    ...                    "sport": ["football"], "competition": ["Champions League"],
    ...                    "importance": [0.8]})
    >>> ds = pd.date_range("2026-03-03 19:30", periods=4, freq="15min", tz="UTC")
    >>> X = event_features(ds, ev, ["Champions League"], bin_minutes=15)
    >>> X.loc[:, (X != 0).any()].columns.tolist()[:4]
    ['Champions League|pre03', 'Champions League|pre04', 'Champions League|live00', 'Champions League|live01']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.errors import FrameError

__all__ = [
    "EVENT_COLUMNS",
    "event_class",
    "event_classes",
    "event_features",
    "events_to_records",
    "feature_names",
    "normalise_events",
    "records_to_events",
]

EVENT_COLUMNS = ("start", "end", "sport", "competition", "importance")
_NS_PER_MIN = 60_000_000_000
_MODULATORS = ("evening", "weekend")
_PHASES = ("pre", "live", "post")


def normalise_events(events: pd.DataFrame, *, who: str = "events") -> pd.DataFrame:
    """Validate an events frame and return ``start, end`` (UTC) ``sport, competition, importance``.

    ``end`` may be missing (NaT): the event then lasts 105 minutes. Extra columns (``event_id``,
    ``name``, ``expected_uplift``...) are dropped: the uplift is learned, never read.

    Raises:
        FrameError: a column is missing, times are not parseable, or importance is not a
            finite number >= 0.
    """
    if not isinstance(events, pd.DataFrame):
        raise FrameError(f"{who}: expected a pandas DataFrame, got {type(events).__name__}")
    missing = [c for c in ("start", "sport", "competition", "importance") if c not in events]
    if missing:
        raise FrameError(
            f"{who}: missing column(s) {missing}; pass the fixture frame with columns "
            f"{list(EVENT_COLUMNS)}"
        )
    try:
        start = pd.to_datetime(events["start"], utc=True).dt.as_unit("ns")
        end_raw = events["end"] if "end" in events else pd.Series(pd.NaT, index=events.index)
        end = pd.to_datetime(end_raw, utc=True).dt.as_unit("ns")
    except (TypeError, ValueError) as exc:
        raise FrameError(f"{who}: 'start'/'end' must be timestamps ({exc})") from exc
    if start.isna().any():
        raise FrameError(f"{who}: 'start' has missing values; every event needs a kickoff")
    end = end.fillna(start + pd.Timedelta(minutes=105))
    imp = pd.to_numeric(events["importance"], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(imp)) or np.any(imp < 0):
        raise FrameError(f"{who}: 'importance' must be finite numbers >= 0")
    out = pd.DataFrame(
        {
            "start": start.to_numpy(),
            "end": end.where(end >= start, start).to_numpy(),
            "sport": events["sport"].astype(str).to_numpy(),
            "competition": events["competition"].astype(str).to_numpy(),
            "importance": imp,
        }
    )
    return out.sort_values(["start", "competition"], kind="stable").reset_index(drop=True)


def event_class(sport: str, competition: str) -> str:
    """The class key of one event: its competition, or ``promotion`` for any promotion.

    Example:
        >>> event_class("football", "Champions League"), event_class("promotion", "Acca Boost")
        ('Champions League', 'promotion')
    """
    return "promotion" if sport == "promotion" else competition


def event_classes(events: pd.DataFrame, min_events: int = 3) -> list[str]:
    """Classes with at least ``min_events`` events in ``events`` (sorted); the rest go to ``other``.

    Example:
        >>> import pandas as pd
        >>> ev = pd.DataFrame({"sport": ["tennis"] * 3 + ["football"],
        ...                    "competition": ["ATP Tour"] * 3 + ["Serie A"]})
        >>> event_classes(ev)
        ['ATP Tour']
    """
    keys = [event_class(s, c) for s, c in zip(events["sport"], events["competition"], strict=True)]
    counts = pd.Series(keys, dtype=object).value_counts()
    return sorted(str(k) for k, n in counts.items() if n >= min_events and k not in ("all", "other"))


def _bins(bin_minutes: int, pre_minutes: int, live_minutes: int, post_minutes: int):
    return (
        -(-pre_minutes // bin_minutes),
        -(-live_minutes // bin_minutes),
        -(-post_minutes // bin_minutes),
    )


def feature_names(
    classes: Sequence[str], *, bin_minutes: int = 5, pre_minutes: int = 75,
    live_minutes: int = 105, post_minutes: int = 45,
) -> list[str]:
    """Column names of :func:`event_features`, in order.

    Example:
        >>> feature_names([], bin_minutes=75, pre_minutes=75, live_minutes=75, post_minutes=75)[:4]
        ['other|pre00', 'other|live00', 'other|late', 'other|post00']
    """
    n_pre, n_live, n_post = _bins(bin_minutes, pre_minutes, live_minutes, post_minutes)
    block = (
        [f"pre{k:02d}" for k in range(n_pre)]
        + [f"live{k:02d}" for k in range(n_live)]
        + ["late"]
        + [f"post{k:02d}" for k in range(n_post)]
    )
    names = [f"{c}|{b}" for c in [*classes, "other", "all"] for b in block]
    return names + [f"{m}|{p}" for m in _MODULATORS for p in _PHASES]


def event_features(
    ds: pd.DatetimeIndex | pd.Series | np.ndarray,
    events: pd.DataFrame | None,
    classes: Sequence[str],
    *,
    bin_minutes: int = 5,
    pre_minutes: int = 75,
    live_minutes: int = 105,
    post_minutes: int = 45,
) -> pd.DataFrame:
    """Importance-weighted event-phase features at each timestamp of ``ds`` (see module doc).

    Args:
        ds: sorted timestamps (aware UTC, or int64 ns since the epoch).
        events: the fixture frame (see :func:`normalise_events`); ``None`` gives all zeros.
        classes: the event classes with their own block (from :func:`event_classes` on the
            training events); anything else adds to ``other``.
        bin_minutes: width of one phase bin.
        pre_minutes, live_minutes, post_minutes: lengths of the pre-match ramp, of the binned
            in-play window (later in-play minutes share the ``late`` bin), and of the post-match
            window after ``end``.

    Returns:
        A float frame, one row per timestamp, columns :func:`feature_names`.
    """
    if bin_minutes < 1:
        raise ValueError(f"bin_minutes must be >= 1, got {bin_minutes}")
    names = feature_names(
        classes, bin_minutes=bin_minutes, pre_minutes=pre_minutes,
        live_minutes=live_minutes, post_minutes=post_minutes,
    )
    t = _as_ns(ds)
    X = np.zeros((t.size, len(names)))
    if events is None or len(events) == 0 or t.size == 0:
        return pd.DataFrame(X, columns=names)
    ev = normalise_events(events)
    n_pre, n_live, n_post = _bins(bin_minutes, pre_minutes, live_minutes, post_minutes)
    width = n_pre + n_live + 1 + n_post
    col_of = {c: i for i, c in enumerate([*classes, "other", "all"])}
    mod0 = len(col_of) * width
    starts = pd.DatetimeIndex(ev["start"]).as_unit("ns").asi8
    ends = pd.DatetimeIndex(ev["end"]).as_unit("ns").asi8
    kick = pd.DatetimeIndex(ev["start"])
    evening = np.asarray((kick.hour >= 17) | (kick.hour < 2))
    weekend = np.asarray(kick.day_of_week >= 5)
    bin_ns = bin_minutes * _NS_PER_MIN
    for i in range(len(ev)):
        s, e, w = int(starts[i]), int(ends[i]), float(ev["importance"].iat[i])
        lo = np.searchsorted(t, s - pre_minutes * _NS_PER_MIN, side="left")
        hi = np.searchsorted(t, e + post_minutes * _NS_PER_MIN, side="left")
        if hi <= lo or w == 0.0:
            continue
        tt = t[lo:hi]
        rel = tt - s
        pre = rel < 0
        live = (rel >= 0) & (tt < e)
        post = tt >= e
        pos = np.empty(tt.size, dtype=np.int64)
        # floor division, so the last pre bin ends exactly at kickoff
        pos[pre] = n_pre + np.floor_divide(rel[pre], bin_ns)
        pos[live] = n_pre + np.minimum(rel[live] // bin_ns, n_live)
        pos[post] = n_pre + n_live + 1 + (tt[post] - e) // bin_ns
        ok = pos >= 0
        rows = lo + np.flatnonzero(ok)
        pos = pos[ok]
        phase = np.where(pos < n_pre, 0, np.where(pos < n_pre + n_live + 1, 1, 2))
        key = event_class(str(ev["sport"].iat[i]), str(ev["competition"].iat[i]))
        block = col_of.get(key, col_of["other"])
        np.add.at(X, (rows, block * width + pos), w)
        np.add.at(X, (rows, col_of["all"] * width + pos), w)
        if evening[i]:
            np.add.at(X, (rows, mod0 + phase), w)
        if weekend[i]:
            np.add.at(X, (rows, mod0 + 3 + phase), w)
    return pd.DataFrame(X, columns=names)


def _as_ns(ds: pd.DatetimeIndex | pd.Series | np.ndarray) -> np.ndarray:
    if isinstance(ds, np.ndarray) and ds.dtype.kind in "iu":
        return ds.astype(np.int64)
    return pd.DatetimeIndex(pd.to_datetime(ds, utc=True)).as_unit("ns").asi8


def events_to_records(events: pd.DataFrame | None) -> list[list[Any]] | None:
    """A normalised events frame as JSON-ready rows ``[start_ns, end_ns, sport, comp, imp]``."""
    if events is None:
        return None
    ev = normalise_events(events)
    return [
        [int(s), int(e), str(sp), str(c), float(w)]
        for s, e, sp, c, w in zip(
            pd.DatetimeIndex(ev["start"]).as_unit("ns").asi8,
            pd.DatetimeIndex(ev["end"]).as_unit("ns").asi8,
            ev["sport"], ev["competition"], ev["importance"], strict=True,
        )
    ]


def records_to_events(records: list[list[Any]] | None) -> pd.DataFrame | None:
    """Inverse of :func:`events_to_records`."""
    if records is None:
        return None
    cols = list(zip(*records, strict=True)) if records else [[], [], [], [], []]
    return normalise_events(
        pd.DataFrame(
            {
                "start": pd.to_datetime(np.asarray(cols[0], dtype=np.int64), utc=True),
                "end": pd.to_datetime(np.asarray(cols[1], dtype=np.int64), utc=True),
                "sport": list(cols[2]),
                "competition": list(cols[3]),
                "importance": np.asarray(cols[4], dtype=float),
            }
        )
    )
