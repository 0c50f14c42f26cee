"""Model registry: fitted models as JSON files with a checksum, indexed in the store.

Models are saved as JSON (never pickle): a file is only loaded back if the registry wrote it and
its SHA-256 matches the index, so a tampered or foreign file is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from models import FORECASTERS
from surgecast.errors import DataError, NotFound
from surgecast.store import Store

__all__ = ["load_model", "save_model"]


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


def save_model(
    store: Store,
    unique_id: str,
    model: Any,
    *,
    trained_until: pd.Timestamp,
    n_points: int,
    models_dir: str | Path = "./var/models",
    scores: dict[str, float] | None = None,
) -> int:
    """Write ``model.to_dict()`` as JSON under ``models_dir`` and index it in the store."""
    payload = {"model": model.name, "state": model.to_dict()}
    text = json.dumps(payload, sort_keys=True, default=str)
    checksum = hashlib.sha256(text.encode()).hexdigest()
    version = f"{trained_until:%Y%m%dT%H%M%SZ}-{checksum[:8]}"
    safe_uid = re.sub(r"[^A-Za-z0-9_.-]", "_", unique_id)
    path = Path(models_dir) / safe_uid / f"{version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    metadata = {
        "trained_until": trained_until.isoformat(),
        "n_points": n_points,
        "scores": scores or {},
        "libraries": _library_versions(),
    }
    return store.register_model(
        unique_id,
        model.name,
        version,
        str(path),
        checksum,
        metadata,
        created_at=pd.Timestamp.now(tz="UTC"),
    )


def load_model(store: Store, unique_id: str) -> Any:
    """Load the newest registered model of ``unique_id``, verifying its checksum."""
    entry = store.latest_model(unique_id)
    if entry is None:
        raise NotFound(f"no registered model for series {unique_id!r}; run a retrain first")
    text = Path(entry["path"]).read_text(encoding="utf-8")
    if hashlib.sha256(text.encode()).hexdigest() != entry["checksum"]:
        raise DataError(
            f"model file {entry['path']} does not match its registry checksum; refusing to load it"
        )
    payload = json.loads(text)
    cls = FORECASTERS.get(payload["model"])
    if cls is None:
        raise DataError(f"model {payload['model']!r} in {entry['path']} is not a known forecaster")
    return cls.from_dict(payload["state"])
