"""What the API tests share: a small simulator-backed configuration, an operator token and a
clock that stands still until a test moves it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from surgecast.config import Settings

__all__ = ["OPERATOR", "OPERATOR_HEADERS", "FixedClock", "operator_api", "small_settings"]

OPERATOR = "operator-token-0123456789"
OPERATOR_HEADERS = {"Authorization": f"Bearer {OPERATOR}"}


class FixedClock:
    """``clock()`` is ``at``; tests move time by assigning ``at``."""

    def __init__(self, at: pd.Timestamp) -> None:
        self.at = at

    def __call__(self) -> pd.Timestamp:
        return self.at


def operator_api(name: str = "ops", **api: Any) -> dict[str, Any]:
    """``api`` settings with one operator token (``OPERATOR``) and no scaling cache."""
    return {"scaling_cache_seconds": 0,
            "tokens": [{"name": name, "token": OPERATOR, "scope": "operator"}], **api}


def small_settings(tmp: Path, db: str, *, api: dict[str, Any] | None = None) -> Settings:
    """Two days of 5-minute simulator data (seed 3) in the SQLite file ``tmp / db``."""
    return Settings(
        backfill_days=2,
        stale_after_seconds=900,
        sources={"simulator": {"type": "simulator", "seed": 3, "step": "5min"}},
        store={"url": f"sqlite:///{tmp / db}"},
        forecast={"history_days": 2},
        detect={"history_days": 1},
        models_dir=str(tmp / "models"),
        api=api or {},
    )
