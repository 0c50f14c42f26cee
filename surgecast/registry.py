"""Model registry: what the retrain job chose per series, as checksummed JSON, indexed in the store.

Files are JSON (never pickle). A file is only trusted if the registry wrote it and its SHA-256
matches the index, so a tampered or foreign file is refused. Each entry records the series, the
training window, a hash of the data, the backtest scores, the library versions and the policy.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from surgecast.errors import DataError
from surgecast.retrain import RetrainPolicy, SelectionResult, policy_record
from surgecast.store import Store

__all__ = ["choose", "load_choice", "rollback", "save_selection"]


def _library_versions() -> dict[str, str]:
    import numpy
    import sklearn
    import statsmodels

    return {
        "pandas": pd.__version__,
        "numpy": numpy.__version__,
        "statsmodels": statsmodels.__version__,
        "scikit-learn": sklearn.__version__,
    }


def _write(models_dir: str | Path, unique_id: str, stamp: pd.Timestamp, payload: dict[str, Any]) -> tuple[Path, str, str]:
    text = json.dumps(payload, sort_keys=True, default=str)
    checksum = hashlib.sha256(text.encode()).hexdigest()
    version = f"{stamp:%Y%m%dT%H%M%SZ}-{checksum[:8]}"
    safe_uid = re.sub(r"[^A-Za-z0-9_.-]", "_", unique_id)
    path = Path(models_dir) / safe_uid / f"{version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path, checksum, version


def _read(entry: dict[str, Any]) -> dict[str, Any]:
    path = Path(entry["path"])
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"model file {path} of {entry['unique_id']} cannot be read: {exc}") from exc
    if hashlib.sha256(text.encode()).hexdigest() != entry["checksum"]:
        raise DataError(f"model file {path} does not match its registry checksum; refusing to load it")
    return json.loads(text)


def save_selection(
    store: Store, result: SelectionResult, policy: RetrainPolicy, *, models_dir: str | Path
) -> int:
    """Record the retrain job's choice for one series (the tick rebuilds it from the catalogue)."""
    if result.model is None:
        raise DataError(f"no model was selected for {result.unique_id}: {result.error}")
    payload = {
        "kind": "selection",
        "model": result.model,
        "members": list(result.members),
        "scores": result.scores,
        "policy": policy_record(policy),
    }
    stamp = pd.Timestamp(result.train_end) if result.train_end else pd.Timestamp.now(tz="UTC")
    path, checksum, version = _write(models_dir, result.unique_id, stamp, payload)
    metadata = {
        "series": result.unique_id,
        "training_window": [result.train_start, result.train_end],
        "n_points": result.n_points,
        "data_hash": result.data_hash,
        "scores": result.scores,
        "metrics": result.metrics,
        "backtest_windows": result.windows,
        "fit_seconds": round(result.seconds, 3),
        "libraries": _library_versions(),
        "policy": policy_record(policy),
    }
    return store.register_model(
        result.unique_id, result.model, version, str(path), checksum, metadata,
        created_at=pd.Timestamp.now(tz="UTC"),
    )  # fmt: skip


def choose(result: SelectionResult, model: str) -> SelectionResult:
    """``result`` with ``model`` as the choice instead of the backtest's winner (a data
    scientist overruling it, e.g. for a model that is nearly as good and far cheaper).

    Raises:
        DataError: ``model`` is not a catalogue forecaster.
    """
    from dataclasses import replace

    from models.forecasting.catalog import CATALOG

    if model not in CATALOG:
        raise DataError(f"unknown forecaster {model!r}; known: {', '.join(sorted(CATALOG))}")
    return replace(result, model=model, members=(model,), error=None)


def rollback(store: Store, unique_id: str) -> dict[str, Any]:
    """Make the previous registry entry of ``unique_id`` current again; returns it.

    The registry stays append-only: the previous entry is re-registered (same file, same
    checksum) under a new version, so the next tick picks it up and the history shows the
    rollback.

    Raises:
        NotFound: the series has fewer than two registry entries.
    """
    from surgecast.errors import NotFound

    history = store.model_history(unique_id, limit=50)
    current = history[0]["version"] if history else None
    previous = next((e for e in history[1:] if e["version"] != current), None)
    if previous is None:
        raise NotFound(f"{unique_id} has no earlier model to roll back to")
    _read(previous)  # refuse a file that no longer matches its checksum
    now = pd.Timestamp.now(tz="UTC")
    base = str(previous["version"]).split("+rollback", 1)[0]
    version = f"{base}+rollback{now:%Y%m%dT%H%M%S%f}"
    metadata = {**(previous.get("metadata") or {}), "rollback_of": current, "restores": base}
    store.register_model(
        unique_id, previous["model"], version, previous["path"], previous["checksum"], metadata,
        created_at=now,
    )  # fmt: skip
    entry = store.latest_model(unique_id)
    assert entry is not None
    return entry


def load_choice(entry: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """``(model name, member names)`` of a selection entry, checksum verified."""
    payload = _read(entry)
    if payload.get("kind") != "selection":
        raise DataError(f"registry file {entry['path']} is not a model selection")
    return str(payload["model"]), tuple(payload["members"])
