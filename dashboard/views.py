"""What the dashboard shows, computed from API answers (pure functions, no Streamlit, no HTTP).

Each function takes the JSON the API returned (lists of dicts) and gives the table or frame a
page renders, so the numbers on screen are tested without a browser.

Example:
    >>> age_label(95.0, stale=False), age_label(1500.0, stale=True)
    ('fresh (2 min)', 'STALE: newest point 25 min old')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from actions.capacity import plan_replicas
from actions.what_if import WhatIfSettings, step_of

__all__ = [
    "OPEN_ANOMALY_WINDOW",
    "age_label",
    "anomaly_states",
    "fixture_outlook",
    "frame",
    "kickoff_uplift",
    "models_table",
    "overview_table",
    "related_context",
    "to_time",
]

# anomalies flagged in this window and neither acknowledged nor silenced count as "open"
OPEN_ANOMALY_WINDOW = pd.Timedelta(hours=1)
# the kickoff window whose peak measures a surge, and the quiet reference before it
SURGE_BEFORE = pd.Timedelta(minutes=10)
SURGE_AFTER = pd.Timedelta(minutes=20)
QUIET_BEFORE = pd.Timedelta(minutes=60)


def to_time(value: Any) -> pd.Timestamp | None:
    """An API time (ISO 8601) as a UTC timestamp; ``None`` stays ``None``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def frame(items: Sequence[Mapping[str, Any]], times: Sequence[str] = ("ds",)) -> pd.DataFrame:
    """A data frame of API items with the named time columns parsed as UTC."""
    out = pd.DataFrame(list(items))
    for col in times:
        if col in out.columns:
            out[col] = pd.to_datetime(out[col], utc=True, format="ISO8601")
    return out


def age_label(age_s: float | None, *, stale: bool, expired_at: pd.Timestamp | None = None) -> str:
    """How fresh the data behind a recommendation is, loud when stale.

    ``expired_at``: the recommendation's ``valid_until`` when it has passed (no tick since).
    """
    if expired_at is not None:
        return f"STALE: no new recommendation since {expired_at:%H:%M}"
    if age_s is None:
        return "STALE: no recent data" if stale else "unknown"
    minutes = max(round(age_s / 60), 0)
    return f"STALE: newest point {minutes} min old" if stale else f"fresh ({minutes} min)"


def _service_of(unique_id: str) -> str:
    return unique_id.partition(":")[0]


def overview_table(
    recommendations: Sequence[Mapping[str, Any]],
    anomalies: Sequence[Mapping[str, Any]],
    now: pd.Timestamp,
) -> pd.DataFrame:
    """One row per service: load now, ready capacity, forecast peak in the lead window, the
    recommendation and its reason, throttling advice, open anomalies and data freshness.

    Ready capacity is what the previous recommendation's replicas carry at 100 % (surgecast
    does not see the running replica count; the autoscaler applies the recommendation).
    """
    open_by_service: dict[str, int] = {}
    for a in anomalies:
        at = to_time(a["ds"])
        if a.get("acknowledged") or a.get("silenced") or at is None or at < now - OPEN_ANOMALY_WINDOW:
            continue
        service = _service_of(a["unique_id"])
        open_by_service[service] = open_by_service.get(service, 0) + 1
    rows = []
    for rec in recommendations:
        inputs = rec.get("inputs") or {}
        capacity = inputs.get("capacity_per_replica")
        previous = inputs.get("previous_replicas")
        newest = to_time(inputs.get("newest_point_at"))
        age = (now - newest).total_seconds() if newest is not None else None
        throttle = inputs.get("throttle") or None
        valid_until = to_time(rec.get("valid_until"))
        expired = valid_until if valid_until is not None and now > valid_until else None
        rows.append({
            "service": rec["service"],
            "load now": inputs.get("current_load"),
            "ready capacity": previous * capacity if previous and capacity else None,
            "forecast peak": inputs.get("forecast_peak"),
            "peak at": to_time(inputs.get("forecast_peak_at")),
            "replicas": int(rec["recommended_replicas"]),
            "lead (min)": (inputs.get("lead_time_s") or 0) / 60 or None,
            "throttle": throttle.get("summary") if isinstance(throttle, dict) and throttle.get("summary")
            else (f"limit to {rec['throttle_rps']:,.0f} req/s" if rec.get("throttle_rps") else ""),
            "open anomalies": open_by_service.get(rec["service"], 0),
            "data": age_label(age, stale=bool(rec.get("stale")), expired_at=expired),
            "stale": bool(rec.get("stale")),
            "reason": rec.get("reason", ""),
            "model": rec.get("model", ""),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _value_near(points: pd.DataFrame, at: pd.Timestamp, tolerance: pd.Timedelta) -> float | None:
    if points.empty:
        return None
    gap = (points["ds"] - at).abs()
    i = int(gap.to_numpy().argmin())
    return float(points["y"].iloc[i]) if gap.iloc[i] <= tolerance else None


def kickoff_uplift(
    points: pd.DataFrame, fixtures: Sequence[Mapping[str, Any]], now: pd.Timestamp
) -> dict[str, list[float]]:
    """Past surges per competition: peak load in ``[kickoff - 10 min, kickoff + 20 min]`` over
    the load an hour before kickoff, for kickoffs whose window has passed and whose series has
    data. Keys are competitions (or the sport when there is none)."""
    out: dict[str, list[float]] = {}
    if points.empty:
        return out
    step = step_of(points["ds"], pd.Timedelta(minutes=5))
    for fx in fixtures:
        kickoff = to_time(fx["start"])
        if kickoff is None or kickoff + SURGE_AFTER > now:
            continue
        quiet = _value_near(points, kickoff - QUIET_BEFORE, step)
        window = points[(points["ds"] >= kickoff - SURGE_BEFORE) & (points["ds"] <= kickoff + SURGE_AFTER)]
        if not quiet or quiet <= 0 or window.empty:
            continue
        key = fx.get("competition") or fx.get("sport") or "other"
        out.setdefault(key, []).append(float(window["y"].max()) / quiet)
    return out


def fixture_outlook(
    fixtures: Sequence[Mapping[str, Any]],
    recommendations: Sequence[Mapping[str, Any]],
    forecasts: Mapping[str, pd.DataFrame],
    history: Mapping[str, pd.DataFrame],
    now: pd.Timestamp,
    hours: float = 6.0,
) -> pd.DataFrame:
    """The next hours' fixtures with the surge predicted for each and the replicas it needs.

    For each fixture starting in ``[now - 10 min, now + hours]`` and each service: when the
    service's stored forecast covers the kickoff window, the peak of its upper bound there
    ("forecast"); otherwise the load a day earlier, an hour before kickoff, times the median past
    surge of the same competition ("history", with how many kickoffs it rests on). The line shown
    names the service with the largest surge over the load now, with the replicas it needs
    ``startup`` before kickoff.

    Args:
        forecasts: service -> stored forecast (``ds, yhat, yhat_upper``) of its load series.
        history: service -> points (``ds, y``) of its load series, a couple of days back.
    """
    recs = {r["service"]: r for r in recommendations}
    uplifts = {s: kickoff_uplift(history.get(s, pd.DataFrame()), fixtures, now) for s in recs}
    rows = []
    for fx in fixtures:
        kickoff = to_time(fx["start"])
        if kickoff is None or not (now - SURGE_BEFORE <= kickoff <= now + pd.Timedelta(hours=hours)):
            continue
        best: dict[str, Any] | None = None
        for service, rec in recs.items():
            guess = _surge_for(fx, kickoff, rec, forecasts.get(service), history.get(service),
                               uplifts[service])  # fmt: skip
            if guess is not None and (best is None or guess["multiplier"] > best["multiplier"]):
                best = {"service": service, **guess}
        row = {
            "kickoff": kickoff, "end": to_time(fx.get("end")), "fixture": fx.get("name") or fx["event_id"],
            "competition": fx.get("competition") or fx.get("sport") or "",
            "importance": fx.get("importance"), "registered": bool(fx.get("registered")),
        }  # fmt: skip
        if best is None:
            row.update({"service": "", "surge": None, "peak": None, "replicas": None, "ready by": None,
                        "basis": "no data yet", "outlook": f"{row['fixture']} "
                        f"{kickoff:%H:%M}: no forecast or past kickoffs to go on yet"})  # fmt: skip
        else:
            row.update({
                "service": best["service"], "surge": best["multiplier"], "peak": best["peak"],
                "replicas": best["replicas"], "ready by": best["ready_by"], "basis": best["basis"],
                "outlook": f"{row['fixture']} {kickoff:%H:%M}: {best['service']} "
                f"x{best['multiplier']:.1f}, {best['replicas']} replicas by {best['ready_by']:%H:%M}",
            })  # fmt: skip
        rows.append(row)
    columns = ["kickoff", "end", "fixture", "competition", "importance", "registered", "service", "surge",
               "peak", "replicas", "ready by", "basis", "outlook"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _surge_for(
    fx: Mapping[str, Any],
    kickoff: pd.Timestamp,
    rec: Mapping[str, Any],
    forecast: pd.DataFrame | None,
    history: pd.DataFrame | None,
    uplift: Mapping[str, list[float]],
) -> dict[str, Any] | None:
    inputs = rec.get("inputs") or {}
    now_load = inputs.get("current_load")
    capacity = inputs.get("capacity_per_replica")
    if not now_load or now_load <= 0 or not capacity:
        return None
    lead = pd.Timedelta(seconds=inputs.get("lead_time_s") or 0)
    peak: float | None = None
    multiplier = 1.0
    basis = ""
    if forecast is not None and not forecast.empty and forecast["ds"].max() >= kickoff + SURGE_AFTER:
        window = forecast[(forecast["ds"] >= kickoff - SURGE_BEFORE) & (forecast["ds"] <= kickoff + SURGE_AFTER)]
        upper = window["yhat_upper"].to_numpy(float)
        if not window.empty and np.isfinite(upper).any():
            peak, basis = float(np.nanmax(upper)), "forecast"
            step = step_of(forecast["ds"], pd.Timedelta(minutes=5))
            quiet = _value_near(forecast.rename(columns={"yhat": "y"}), kickoff - QUIET_BEFORE, step)
            reference = quiet if quiet else now_load  # kickoff within the hour: against now
            multiplier = float(np.nanmax(window["yhat"].to_numpy(float))) / reference
    if peak is None and history is not None and not history.empty:
        key = fx.get("competition") or fx.get("sport") or "other"
        past = uplift.get(key) or [v for vs in uplift.values() for v in vs]
        step = step_of(history["ds"], pd.Timedelta(minutes=5))
        quiet = _value_near(history, kickoff - QUIET_BEFORE - pd.Timedelta(days=1), step)
        if past and quiet:
            multiplier = float(np.median(past))
            peak = quiet * multiplier
            seen = f"{len(past)} past {'kickoffs' if len(past) > 1 else 'kickoff'}"
            basis = f"history ({seen} of {key})" if uplift.get(key) else f"history ({seen}, all)"
    if peak is None:
        return None
    bounds = WhatIfSettings.from_inputs(inputs).bounds  # the planner's own clamp
    replicas = plan_replicas([peak], bounds).recommended_replicas
    return {"multiplier": multiplier, "peak": peak, "replicas": int(replicas),
            "ready_by": kickoff - lead, "basis": basis}  # fmt: skip


def anomaly_states(
    anomalies: Sequence[Mapping[str, Any]], alerts: Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    """The anomalies list with a ``state``: acknowledged, silenced, firing (its alert is still
    active), resolved (its alert ended) or flagged (no alert: below the debounce)."""
    firing: dict[tuple[str, str], bool] = {}
    for alert in alerts:
        labels = (alert.get("payload") or {}).get("labels") or {}
        if labels.get("alertname") != "SurgecastAnomaly":
            continue
        key = (labels.get("series", ""), labels.get("kind", ""))
        firing[key] = firing.get(key, False) or bool(alert.get("firing"))
    rows = []
    for a in anomalies:
        key = (a["unique_id"], a.get("kind") or "")
        if a.get("acknowledged"):
            state = "acknowledged"
        elif a.get("silenced"):
            state = "silenced"
        elif key in firing:
            state = "firing" if firing[key] else "resolved"
        else:
            state = "flagged"
        rows.append({**a, "service": _service_of(a["unique_id"]), "state": state})
    out = frame(rows)
    if out.empty:
        return pd.DataFrame(columns=["ds", "service", "unique_id", "kind", "state", "score", "y",
                                     "expected", "lower", "upper", "detector", "ack_id"])  # fmt: skip
    return out.sort_values("ds", ascending=False, kind="stable").reset_index(drop=True)


def related_context(
    anomaly: Mapping[str, Any], service_points: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """The other series of the anomaly's service at the anomaly's time, each with its value,
    its median over the hour before, and the ratio of the two: what moved with it."""
    at = to_time(anomaly["ds"])
    rows = []
    for uid, points in sorted(service_points.items()):
        if points.empty or at is None:
            continue
        before = points[(points["ds"] < at) & (points["ds"] >= at - pd.Timedelta(hours=1))]
        value = _value_near(points, at, pd.Timedelta(minutes=5))
        typical = float(before["y"].median()) if len(before) else None
        ratio = value / typical if value is not None and typical else None
        rows.append({"series": uid, "value": value, "median of the hour before": typical,
                     "ratio": ratio, "this anomaly": uid == anomaly["unique_id"]})  # fmt: skip
    return pd.DataFrame(rows)


def models_table(models: Sequence[Mapping[str, Any]], now: pd.Timestamp) -> pd.DataFrame:
    """Per series: the model in use, the backtest scores of the retrain that chose it (MASE of
    each candidate; lower is better, 1 = the seasonal-naive floor), sMAPE and interval coverage
    when the retrain recorded them, and when it was trained."""
    rows = []
    for m in models:
        scores = {k: v for k, v in (m.get("scores") or {}).items() if isinstance(v, int | float)}
        meta = m.get("metadata") or {}
        metrics = meta.get("metrics") if isinstance(meta.get("metrics"), Mapping) else {}
        created = to_time(m["created_at"])
        chosen = scores.get(m["model"], min(scores.values()) if scores else None)
        others = sorted((v, k) for k, v in scores.items() if k != m["model"])
        rows.append({
            "series": m["unique_id"], "model": m["model"], "version": m["version"],
            "MASE": chosen,
            "next best": f"{others[0][1]} ({others[0][0]:.3f})" if others else "",
            "sMAPE (%)": metrics.get("smape"), "coverage": metrics.get("coverage"),
            "trained": created,
            "age (h)": (now - created).total_seconds() / 3600 if created else None,
            "backtest windows": m.get("backtest_windows"),
        })  # fmt: skip
    return pd.DataFrame(rows)
