"""Event awareness: is a timestamp inside a fixture's expected surge window?

A kickoff surge is not an anomaly. The alarm stage asks :func:`expected_by_events` whether a
hit on a traffic series falls in an event's ramp (``pre`` before kickoff: the pre-match ramp
starts 60-75 min out, shared/BETTING_TRAFFIC.md [GBG]) or in-play/settlement window (``post``
after kickoff, or the event's ``end`` when later). Pure function; the calendar is passed in.

Example:
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"start": pd.to_datetime(["2026-11-28 15:00"], utc=True)})
    >>> ds = pd.to_datetime(["2026-11-28 13:00", "2026-11-28 14:30", "2026-11-28 17:40"], utc=True)
    >>> expected_by_events(ds, ev).tolist()
    [False, True, False]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["expected_by_events", "event_windows"]


def _ns(values: object) -> np.ndarray:
    idx = pd.DatetimeIndex(values)  # type: ignore[arg-type]
    if idx.tz is None:
        raise ValueError("timestamps must be timezone-aware (UTC); use pd.to_datetime(..., utc=True)")
    return idx.tz_convert("UTC").as_unit("ns").asi8


def event_windows(
    events: pd.DataFrame | None, pre: str | pd.Timedelta = "75min",
    post: str | pd.Timedelta = "150min",
) -> tuple[np.ndarray, np.ndarray]:
    """Merged ``[start - pre, max(start + post, end)]`` windows as sorted int64 ns arrays.

    ``events`` needs a ``start`` column (kickoff); ``end`` (final whistle) is optional.
    """
    if events is None or len(events) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    if "start" not in events.columns:
        raise ValueError("events needs a 'start' column (kickoff, UTC); optional 'end'")
    pre_ns, post_ns = pd.Timedelta(pre).value, pd.Timedelta(post).value
    if pre_ns < 0 or post_ns < 0:
        raise ValueError(f"pre and post must be >= 0, got {pre!r}, {post!r}")
    start = _ns(events["start"])
    hi = start + post_ns
    if "end" in events.columns:
        hi = np.maximum(hi, _ns(events["end"]))
    lo = start - pre_ns
    order = np.argsort(lo, kind="stable")
    lo, hi = lo[order], np.maximum.accumulate(hi[order])
    # merge overlapping windows: a new window starts where lo passes every earlier hi
    new = np.r_[True, lo[1:] > hi[:-1]]
    group = np.cumsum(new) - 1
    m_lo = lo[new]
    m_hi = np.zeros(m_lo.size, dtype=np.int64)
    np.maximum.at(m_hi, group, hi)
    return m_lo, m_hi


def expected_by_events(
    ds: object, events: pd.DataFrame | None, pre: str | pd.Timedelta = "75min",
    post: str | pd.Timedelta = "150min",
) -> np.ndarray:
    """Boolean mask: ``ds`` lies in some event's ``[start - pre, max(start + post, end)]``.

    Args:
        ds: UTC timestamps (a Series, an index or a list).
        events: the fixture calendar (``start`` kickoff, optional ``end``); ``None`` or empty:
            nothing is expected.
        pre: the ramp before kickoff.
        post: the in-play and settlement window after kickoff.
    """
    t = _ns(ds)
    lo, hi = event_windows(events, pre, post)
    if lo.size == 0:
        return np.zeros(t.size, dtype=bool)
    i = np.searchsorted(lo, t, side="right") - 1
    return (i >= 0) & (t <= hi[np.maximum(i, 0)])
