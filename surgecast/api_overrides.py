"""Operator overrides of recommendations: written through the API, applied by the tick and, in
between ticks, by the API when it answers (so an override shows at once and ends on time).

Three modes, each for a window ``[starts_at, ends_at)`` of one service:

- ``hold``: recommend exactly ``replicas`` ("hold 40 replicas for the final");
- ``floor``: recommend at least ``replicas`` (the plan may ask for more);
- ``pause``: keep the replicas recommended when the pause began, whatever the plan says.

An applied override is recorded in the recommendation's ``inputs.override`` with the replicas the
plan wanted (``computed_replicas``), so the API can undo it the moment the override ends or is
cancelled, before the next tick writes a fresh plan.

Pure functions on plain dicts; no FastAPI here (the pipeline imports this module).

Example:
    >>> rec = {"service": "payments", "recommended_replicas": 6, "reason": "payments: plan",
    ...        "inputs": {}}
    >>> hold = {"id": 1, "mode": "hold", "replicas": 40, "ends_at": "2026-12-01T22:00:00Z",
    ...         "reason": "final", "created_by": "ops"}
    >>> out = apply_override(rec, hold, previous_replicas=6)
    >>> out["recommended_replicas"], out["inputs"]["override"]["computed_replicas"]
    (40, 6)
    >>> revert_override(out)["recommended_replicas"]
    6
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

__all__ = ["active_by_service", "apply_override", "overridden_replicas", "revert_override"]


def overridden_replicas(mode: str, wanted: int, replicas: int | None, previous: int | None) -> int:
    """The replicas an override of ``mode`` gives when the plan wants ``wanted``."""
    if mode == "hold":
        return int(replicas if replicas is not None else wanted)
    if mode == "floor":
        return max(int(wanted), int(replicas or 0))
    if mode == "pause":
        return int(previous if previous is not None else wanted)
    raise ValueError(f"unknown override mode {mode!r}; expected hold, floor or pause")


def apply_override(
    rec: Mapping[str, Any], override: Mapping[str, Any] | None, previous_replicas: int | None
) -> dict[str, Any]:
    """``rec`` with ``override`` applied (``rec`` itself, copied, when there is none).

    Args:
        rec: a recommendation (``recommended_replicas``, ``reason``, ``inputs``).
        override: an override record of the store, in force now.
        previous_replicas: what was recommended before (a pause keeps it).
    """
    out = dict(rec)
    if override is None:
        return out
    inputs = dict(out.get("inputs") or {})
    known = inputs.get("override")
    wanted = int(known["computed_replicas"]) if known else int(out["recommended_replicas"])
    if known and known.get("id") == override.get("id"):
        return out  # applied already (the tick did, the API reads it back)
    if override["mode"] == "pause" and known and known.get("mode") == "pause":
        previous_replicas = int(out["recommended_replicas"])
    replicas = overridden_replicas(
        str(override["mode"]), wanted, override.get("replicas"), previous_replicas
    )
    ends = pd.Timestamp(override["ends_at"])
    inputs["override"] = {
        "id": override.get("id"),
        "mode": override["mode"],
        "replicas": replicas,
        "computed_replicas": wanted,
        "ends_at": ends.isoformat(),
        "reason": override.get("reason"),
        "created_by": override.get("created_by"),
    }
    out["inputs"] = inputs
    out["recommended_replicas"] = replicas
    base_reason = str(out.get("reason", "")).split("; operator override #")[0]
    out["reason"] = (
        f"{base_reason}; operator override #{override.get('id')} ({override['mode']}): "
        f"{replicas} replicas until {ends:%Y-%m-%d %H:%M} UTC (plan: {wanted})"
        + (f": {override['reason']}" if override.get("reason") else "")
    )
    return out


def revert_override(rec: Mapping[str, Any]) -> dict[str, Any]:
    """``rec`` as the plan made it, without the override it carries (if any)."""
    out = dict(rec)
    inputs = dict(out.get("inputs") or {})
    known = inputs.pop("override", None)
    if not known:
        return out
    out["inputs"] = inputs
    out["recommended_replicas"] = int(known["computed_replicas"])
    out["reason"] = str(out.get("reason", "")).split("; operator override #")[0]
    return out


def active_by_service(overrides: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The override that decides each service: the one created last among those in force."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for o in sorted(overrides, key=lambda o: (pd.Timestamp(o["created_at"]), o.get("id") or 0)):
        chosen[str(o["service"])] = o
    return chosen
