"""Alert payloads in Alertmanager's v2 shape (labels identify, annotations explain).

Pure functions: the service core decides when to enqueue them in the store's outbox; delivery
(with retry) is the outbox's business. Labels stay stable for one condition so Alertmanager
de-duplicates re-sends (CONVENTIONS.md §2); numbers go in annotations, never in labels.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

__all__ = ["anomaly_alert", "dedup_key"]


def dedup_key(labels: dict[str, str]) -> str:
    """A stable key for one alert condition: its sorted label set."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def _iso(value: datetime) -> str:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.isoformat().replace("+00:00", "Z")


def anomaly_alert(
    *,
    unique_id: str,
    kind: str,
    at: datetime,
    value: float,
    expected: float | None,
    score: float,
    detector: str,
    env: str = "prod",
) -> dict[str, Any]:
    """One Alertmanager v2 alert for an anomaly on ``unique_id``.

    Example:
        >>> a = anomaly_alert(unique_id="payments:deposit_failures_per_second", kind="spike",
        ...     at=pd.Timestamp("2026-11-28 19:50", tz="UTC"), value=9.1, expected=1.2,
        ...     score=0.93, detector="novelty")
        >>> a["labels"]["alertname"], a["labels"]["service"], a["startsAt"]
        ('SurgecastAnomaly', 'payments', '2026-11-28T19:50:00Z')
    """
    service, _, metric = unique_id.partition(":")
    labels = {
        "alertname": "SurgecastAnomaly",
        "service": service,
        "series": unique_id,
        "kind": kind,
        "severity": "warning" if score < 0.9 else "critical",
        "source": "surgecast",
        "env": env,
    }
    expected_text = "" if expected is None or pd.isna(expected) else f" (expected about {expected:,.3g})"
    return {
        "labels": labels,
        "annotations": {
            "summary": f"{service}: {kind} in {metric or unique_id}",
            "description": (
                f"{unique_id} sent no data by {_iso(at)}; anomaly score {score:.2f} from {detector}"
                if pd.isna(value)
                else f"{unique_id} was {value:,.3g} at {_iso(at)}{expected_text}; "
                f"anomaly score {score:.2f} from {detector}"
            ),
            "value": "" if pd.isna(value) else f"{value:.6g}",
            "expected": "" if expected is None or pd.isna(expected) else f"{expected:.6g}",
            "score": f"{score:.3f}",
        },
        "startsAt": _iso(at),
    }
