"""Retrain requests through the store: any API process queues one (POST /v1/retrain), the
process that runs the scheduler claims and runs it. The request therefore reaches the ticking
process whether it is the same process, a child of ``surgecast run`` or another machine's
``surgecast scheduler``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from surgecast.store import Store

__all__ = ["retrain_status", "run_retrain_requests"]

log = logging.getLogger(__name__)


def run_retrain_requests(retrain: Callable[[], Mapping[str, str]], store: Store) -> bool:
    """Claim the queued retrain requests and run the job once for all of them; ``False`` when
    none was queued (or another process claimed them first). Never raises for the job's own
    failure: it is recorded as the request's error."""
    started = pd.Timestamp.now(tz="UTC")
    if not store.claim_retrain(started):
        return False
    log.info("retrain requested through the API: running")
    result: dict[str, str] | None = None
    error = None
    try:
        result = {str(k): str(v) for k, v in retrain().items()}
    except Exception as exc:  # reported on GET /v1/retrain
        log.exception("retrain requested through the API failed")
        error = f"{type(exc).__name__}: {exc}"
    store.finish_retrain(started, pd.Timestamp.now(tz="UTC"), result, error)
    return True


def retrain_status(row: Mapping[str, Any] | None) -> dict[str, Any]:
    """The API's view of the newest request: ``state`` none / queued / running / finished."""
    if row is None:
        return {"state": "none", "running": False, "requested_at": None, "requested_by": None,
                "started_at": None, "finished_at": None, "result": None, "error": None}  # fmt: skip
    if row["finished_at"] is not None:
        state = "finished"
    elif row["started_at"] is not None:
        state = "running"
    else:
        state = "queued"
    return {
        "state": state, "running": state in ("queued", "running"),
        "requested_at": row["requested_at"], "requested_by": row["requested_by"],
        "started_at": row["started_at"], "finished_at": row["finished_at"],
        "result": row["result"], "error": row["error"],
    }  # fmt: skip
