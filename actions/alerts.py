"""Alert payloads in Alertmanager's v2 shape (labels identify, annotations explain).

Pure functions: the service core decides when to enqueue them in the store's outbox; delivery
(with retry) is the outbox's business. Labels stay stable for one condition so Alertmanager
de-duplicates re-sends (CONVENTIONS.md §2); numbers go in annotations, never in labels.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

__all__ = [
    "SATURATION_ALERTNAME",
    "anomaly_alert",
    "as_utc",
    "dedup_key",
    "iso_utc",
    "saturation_alert",
    "saturation_labels",
]

SATURATION_ALERTNAME = "SurgecastPredictedSaturation"


def dedup_key(labels: dict[str, str]) -> str:
    """A stable key for one alert condition: its sorted label set."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def as_utc(value: datetime | str) -> pd.Timestamp:
    """``value`` as a UTC ``pd.Timestamp``; a naive time is taken as UTC.

    Example:
        >>> as_utc("2026-11-28 20:50+01:00")
        Timestamp('2026-11-28 19:50:00+0000', tz='UTC')
    """
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def iso_utc(value: datetime | str) -> str:
    """RFC 3339 in UTC with a ``Z``, as Alertmanager prints it; a naive time is taken as UTC.

    Example:
        >>> iso_utc(pd.Timestamp("2026-11-28 20:50", tz="Europe/London"))
        '2026-11-28T20:50:00Z'
    """
    return as_utc(value).isoformat().replace("+00:00", "Z")


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
    expected_text = (
        "" if expected is None or pd.isna(expected) else f" (expected about {expected:,.3g})"
    )
    return {
        "labels": labels,
        "annotations": {
            "summary": f"{service}: {kind} in {metric or unique_id}",
            "description": (
                f"{unique_id} sent no data by {iso_utc(at)}; anomaly score {score:.2f} from {detector}"
                if pd.isna(value)
                else f"{unique_id} was {value:,.3g} at {iso_utc(at)}{expected_text}; "
                f"anomaly score {score:.2f} from {detector}"
            ),
            "value": "" if pd.isna(value) else f"{value:.6g}",
            "expected": "" if expected is None or pd.isna(expected) else f"{expected:.6g}",
            "score": f"{score:.3f}",
        },
        "startsAt": iso_utc(at),
    }


def saturation_labels(service: str, env: str = "prod") -> dict[str, str]:
    """The labels of ``service``'s predicted-saturation alert (no numbers: they never change)."""
    return {
        "alertname": SATURATION_ALERTNAME,
        "service": service,
        "severity": "critical",
        "source": "surgecast",
        "env": env,
    }


def saturation_alert(
    *,
    service: str,
    at: datetime,
    forecast_peak: float,
    max_load: float,
    minutes_until: float,
    peak_at: datetime | str | None = None,
    max_replicas: int | None = None,
    unit: str = "req/s",
    env: str = "prod",
) -> dict[str, Any]:
    """One Alertmanager v2 alert: ``service``'s demand will exceed what max replicas carry.

    Args:
        service: the scaled service.
        at: when the forecast was made (``startsAt`` of a new condition).
        forecast_peak: the peak of the forecast's upper bound (or the current load, if higher).
        max_load: the load ``max_replicas`` carry at the target utilisation.
        minutes_until: minutes from ``at`` until the demand first exceeds ``max_load``
            (0: it already does).
        peak_at: when the forecast peaks.
        max_replicas: the replica limit, for the text.
        unit: the load unit printed after numbers.
        env: the ``env`` label.

    Example:
        >>> a = saturation_alert(service="bet-placement", at=pd.Timestamp("2026-11-28 19:38", tz="UTC"),
        ...     forecast_peak=2310.0, max_load=2016.0, minutes_until=12)
        >>> a["labels"]["alertname"], a["annotations"]["summary"]
        ('SurgecastPredictedSaturation', 'bet-placement will exceed max capacity in 12 min')
    """
    minutes = max(float(minutes_until), 0.0)
    when = "now" if minutes < 1 else f"in {minutes:.0f} min"
    summary = (
        f"{service} exceeds max capacity now"
        if minutes < 1
        else f"{service} will exceed max capacity {when}"
    )
    limit = f" ({max_replicas} replicas)" if max_replicas is not None else ""
    peak_text = f" at {iso_utc(peak_at)}" if peak_at is not None else ""
    excess = max(forecast_peak - max_load, 0.0)
    return {
        "labels": saturation_labels(service, env),
        "annotations": {
            "summary": summary,
            "description": (
                f"{service}: forecast demand peaks at {forecast_peak:,.0f} {unit}{peak_text}; "
                f"max replicas{limit} carry {max_load:,.0f} {unit} at the target utilisation, "
                f"{excess:,.0f} {unit} over; first exceeded {when} (forecast made at "
                f"{iso_utc(at)}). Scaling cannot absorb it: throttle non-critical traffic or "
                "raise max_replicas"
            ),
            "forecast_peak": f"{forecast_peak:.6g}",
            "max_load": f"{max_load:.6g}",
            "excess": f"{excess:.6g}",
            "minutes_until": f"{minutes:.0f}",
            "peak_at": "" if peak_at is None else iso_utc(peak_at),
        },
        "startsAt": iso_utc(at),
    }
