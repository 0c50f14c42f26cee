"""Absent data: a series that stops arriving is an anomaly of kind ``absent``.

Pure function over the per-series *watermarks* (the last ``ds`` received). A series is absent
at ``now`` when more than ``grace_steps`` expected points are missing: with a 1-minute step and
``grace_steps=3`` a series silent from 12:00 (last point 11:59) alarms at 12:03.

Score: ``missed = floor((now - watermark) / step)`` points are missing; the score is
``1 - 2 ** (-missed / (grace_steps + 1))``, 0.5 exactly at the first absent tick and towards 1
the longer the silence, so it shares the threshold (0.5) of the other detectors.

Example:
    >>> import pandas as pd
    >>> wm = {"a": pd.Timestamp("2026-01-01 11:59", tz="UTC"),
    ...       "b": pd.Timestamp("2026-01-01 12:02", tz="UTC")}
    >>> out = absent_series(wm, pd.Timestamp("2026-01-01 12:03", tz="UTC"), pd.Timedelta("1min"))
    >>> out[["unique_id", "kind", "score"]].values.tolist()
    [['a', 'absent', 0.5]]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from models.base import ANOMALY_COLUMNS

__all__ = ["absent_series"]

DETECTOR = "absent"


def _utc(ts: object, name: str) -> pd.Timestamp:
    t = pd.Timestamp(ts)  # type: ignore[arg-type]
    if t.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got {ts!r}")
    return t.tz_convert("UTC")


def absent_series(
    watermarks: Mapping[str, pd.Timestamp], now: pd.Timestamp,
    expected_step: Mapping[str, pd.Timedelta] | pd.Timedelta | str,
    grace_steps: int = 3, *, include_present: bool = False,
) -> pd.DataFrame:
    """Anomaly frame (``ANOMALY_COLUMNS``) of the series that stopped arriving by ``now``.

    Args:
        watermarks: ``unique_id -> last ds received`` (UTC).
        now: the evaluation time (points with ``ds <= now`` were due).
        expected_step: the sampling step, one for all series or per ``unique_id``.
        grace_steps: missing points tolerated before alarming (late scrapes, jitter).
        include_present: also return a row (score < 0.5, not anomalous) for live series.

    Returns:
        one row per absent series (``ds = now``, ``y`` NaN, ``kind = "absent"``), sorted by id.

    Raises:
        ValueError: a step is missing or not positive, or a timestamp is naive.
    """
    if isinstance(grace_steps, bool) or int(grace_steps) != grace_steps or grace_steps < 0:
        raise ValueError(f"grace_steps must be an integer >= 0, got {grace_steps!r}")
    now = _utc(now, "now")
    ids = sorted(watermarks)
    steps = np.empty(len(ids), dtype=np.int64)
    for i, uid in enumerate(ids):
        if isinstance(expected_step, Mapping):
            if uid not in expected_step:
                raise ValueError(f"expected_step has no step for series '{uid}'; add it")
            step = pd.Timedelta(expected_step[uid])
        else:
            step = pd.Timedelta(expected_step)
        if step <= pd.Timedelta(0):
            raise ValueError(f"expected_step of '{uid}' must be positive, got {step}")
        steps[i] = step.value
    wm = np.array([_utc(watermarks[u], f"watermarks['{u}']").value for u in ids], dtype=np.int64)
    missed = np.maximum((now.value - wm) // np.maximum(steps, 1), 0).astype(float)
    score = 1.0 - np.exp2(-missed / (grace_steps + 1))
    flagged = missed > grace_steps
    keep = np.ones(len(ids), dtype=bool) if include_present else flagged
    n = int(keep.sum())
    nan = np.full(n, np.nan)
    out = pd.DataFrame({
        "unique_id": pd.Series(np.array(ids, dtype=object)[keep], dtype=str),
        "ds": pd.DatetimeIndex([now] * n).as_unit("ns"),
        "y": nan, "expected": nan, "lower": nan, "upper": nan,
        "score": score[keep], "is_anomaly": flagged[keep],
        "kind": pd.Series(np.where(flagged[keep], "absent", None), dtype=object),
        "detector": pd.Series([DETECTOR] * n, dtype=str),
    })
    return out[list(ANOMALY_COLUMNS)]
