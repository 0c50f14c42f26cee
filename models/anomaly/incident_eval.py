"""Score a detector against labelled incidents (simulator labels or any ``start/end`` list):
which incidents it caught and how fast, and how many false alarms it raised, per threshold.

A *hit* is a point whose score reaches the threshold. An incident is detected by the first hit on
one of its series within ``[start, end + slack]``; its delay is from ``start``. Hits outside every
incident window of their series are false; consecutive false hits on a series less than
``merge`` apart count as one false alarm (what a debounced pager would send).

Example:
    >>> import pandas as pd
    >>> t = pd.date_range("2026-01-01", periods=6, freq="5min", tz="UTC")
    >>> scores = pd.DataFrame({"unique_id": "a", "ds": t, "score": [0, 0, .9, .95, 0, .99]})
    >>> inc = pd.DataFrame({"incident_id": ["i1"], "kind": ["ddos"], "unique_ids": ["a"],
    ...                     "start": [t[1]], "end": [t[3]]})
    >>> caught, false_alarms = incident_report(scores, inc, threshold=0.8, slack="5min")
    >>> caught[["incident_id", "detected", "delay_minutes"]].values.tolist(), false_alarms
    ([['i1', True, 5.0]], 1)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["incident_report", "threshold_sweep"]


def _windows(incidents: pd.DataFrame, slack: pd.Timedelta) -> dict[str, list[tuple[int, int, int]]]:
    by_series: dict[str, list[tuple[int, int, int]]] = {}
    for k, row in enumerate(incidents.itertuples(index=False)):
        lo = pd.Timestamp(row.start).value
        hi = (pd.Timestamp(row.end) + slack).value
        for uid in str(row.unique_ids).split(","):
            by_series.setdefault(uid.strip(), []).append((lo, hi, k))
    return by_series


def incident_report(
    scores: pd.DataFrame,
    incidents: pd.DataFrame,
    threshold: float,
    slack: str = "30min",
    merge: str = "30min",
) -> tuple[pd.DataFrame, int]:
    """Per incident: detected and delay (minutes); and the number of false alarms.

    Args:
        scores: ``unique_id, ds, score`` (a detector's output).
        incidents: ``incident_id, kind, unique_ids`` (comma-separated), ``start, end``.
        threshold: a score at or above it is a hit.
        slack: a hit up to this long after an incident's end still belongs to it.
        merge: false hits on a series closer than this are one false alarm.
    """
    slack_td, merge_ns = pd.Timedelta(slack), pd.Timedelta(merge).value
    windows = _windows(incidents, slack_td)
    first_hit = np.full(len(incidents), np.iinfo(np.int64).max, dtype=np.int64)
    false_alarms = 0
    hits = scores[scores["score"].to_numpy(float) >= threshold]
    for uid, g in hits.groupby("unique_id", sort=False):
        t = np.sort(pd.DatetimeIndex(g["ds"]).as_unit("ns").asi8)
        inside = np.zeros(t.size, dtype=bool)
        for lo, hi, k in windows.get(str(uid), []):
            sel = (t >= lo) & (t <= hi)
            if sel.any():
                first_hit[k] = min(first_hit[k], int(t[sel][0]))
            inside |= sel
        false_t = t[~inside]
        if false_t.size:
            false_alarms += 1 + int((np.diff(false_t) >= merge_ns).sum())
    detected = first_hit < np.iinfo(np.int64).max
    starts = pd.DatetimeIndex(incidents["start"]).as_unit("ns").asi8 if len(incidents) else np.zeros(0, np.int64)
    delay = np.where(detected, (first_hit - starts) / 60e9, np.nan)
    report = pd.DataFrame({
        "incident_id": incidents["incident_id"].to_numpy(),
        "kind": incidents["kind"].to_numpy(),
        "detected": detected,
        "delay_minutes": np.maximum(delay, 0.0),
    })
    return report, false_alarms


def threshold_sweep(
    scores: pd.DataFrame,
    incidents: pd.DataFrame,
    thresholds: Sequence[float],
    days: float,
    slack: str = "30min",
) -> pd.DataFrame:
    """Recall, median delay and false alarms per day for each threshold (the trade-off table)."""
    rows = []
    for thr in thresholds:
        report, false_alarms = incident_report(scores, incidents, thr, slack=slack)
        caught = report[report["detected"]]
        rows.append({
            "threshold": float(thr),
            "recall": float(report["detected"].mean()) if len(report) else float("nan"),
            "median_delay_minutes": float(caught["delay_minutes"].median()) if len(caught) else float("nan"),
            "false_alarms_per_day": false_alarms / days if days > 0 else float("nan"),
        })
    return pd.DataFrame(rows)
