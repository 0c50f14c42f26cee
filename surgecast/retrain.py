"""The retraining job: per series, choose a forecaster by rolling-origin backtest and register it.

One :class:`RetrainPolicy` (training window, retrain frequency, horizon, backtest windows) drives
both this job and ``surgecast backtest``-style evaluation. Fits fan out over local cores with
joblib through one pure function, :func:`select_one`, so a distributed backend (Dask, via
``joblib.parallel_backend("dask")``) can replace the local pool without code changes. The tick
picks up a new registry entry at its next run and rebuilds the chosen model from
:mod:`models.forecasting.catalog` on fresh data.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from models.forecasting import selection
from models.forecasting.catalog import AUTO_CANDIDATES, build
from models.frequency import infer_step, season_length

__all__ = ["RetrainPolicy", "SelectionResult", "policy_from_settings", "select_many", "select_one"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainPolicy:
    """How models are retrained and evaluated (config as data; saved with every model)."""

    train_window_days: float = 28
    retrain_every_hours: float = 24
    horizon_minutes: int = 60
    windows: int = 5
    candidates: tuple[str, ...] = AUTO_CANDIDATES
    level: float = 0.9

    def horizon_steps(self, step: pd.Timedelta) -> int:
        return max(1, math.ceil(pd.Timedelta(minutes=self.horizon_minutes) / step))


@dataclass(frozen=True)
class SelectionResult:
    """What the job decided for one series; ``error`` is set instead when it could not."""

    unique_id: str
    model: str | None
    members: tuple[str, ...]
    scores: dict[str, float]
    windows: int
    n_points: int
    train_start: str | None
    train_end: str | None
    data_hash: str
    seconds: float
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # backtest sMAPE, coverage


def _data_hash(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    digest.update(frame["ds"].to_numpy(dtype="datetime64[ns]").view(np.int64).tobytes())
    digest.update(frame["y"].to_numpy(dtype=float).tobytes())
    return digest.hexdigest()[:16]


def select_one(frame: pd.DataFrame, policy: RetrainPolicy) -> SelectionResult:
    """Backtest the policy's candidates on one series and return the winner (pure: no I/O)."""
    began = time.perf_counter()
    uid = str(frame["unique_id"].iloc[0]) if len(frame) else "?"
    base = {
        "unique_id": uid, "n_points": len(frame), "data_hash": _data_hash(frame),
        "train_start": frame["ds"].iloc[0].isoformat() if len(frame) else None,
        "train_end": frame["ds"].iloc[-1].isoformat() if len(frame) else None,
    }  # fmt: skip
    try:
        step = infer_step(frame["ds"])
        season = season_length(step)
        grid = frame.set_index("ds")["y"].asfreq(step)  # backtests assume a regular grid
        regular = grid.interpolate(limit_direction="both").reset_index()
        regular.insert(0, "unique_id", uid)
        builders = {name: (lambda name=name: build(name)) for name in policy.candidates}
        _, chosen = selection.select_and_fit(
            regular, policy.horizon_steps(step), policy.level, builders, season, policy.windows
        )
    except Exception as exc:  # one series failing must not stop the job
        return SelectionResult(
            model=None, members=(), scores={}, windows=0, seconds=time.perf_counter() - began,
            error=f"{type(exc).__name__}: {exc}", **base,
        )  # fmt: skip
    return SelectionResult(
        model=chosen.model, members=tuple(chosen.members),
        scores={k: float(v) for k, v in chosen.scores.items()}, windows=chosen.windows,
        metrics=dict(chosen.metrics), seconds=time.perf_counter() - began, **base,
    )  # fmt: skip


def select_many(
    frames: list[pd.DataFrame], policy: RetrainPolicy, n_jobs: int = 2
) -> list[SelectionResult]:
    """:func:`select_one` over many series on local cores (joblib/loky)."""
    if not frames:
        return []
    return list(Parallel(n_jobs=n_jobs)(delayed(select_one)(f, policy) for f in frames))


def policy_from_settings(settings: Any) -> RetrainPolicy:
    """The service's policy from its ``Settings``: the one object the retrain job and
    ``surgecast backtest --policy`` both use."""
    cfg = settings.forecast
    lead = max(
        (s.startup_delay_seconds + s.margin_seconds for s in settings.services.values()), default=600
    )
    return RetrainPolicy(
        train_window_days=cfg.retrain_window_days,
        horizon_minutes=math.ceil(lead / 60) + cfg.extra_horizon_minutes,
        windows=cfg.retrain_backtest_windows,
        level=cfg.level,
    )


def policy_record(policy: RetrainPolicy) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(policy).items()}
