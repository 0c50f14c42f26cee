"""Seasonal robust z-score: how far is a point from the same time on previous days?

For a point at grid position ``t`` (season length ``s``), the reference sample is the values at
``t - j*s + d`` for ``j = 1..n_seasons`` and ``d = -k..k`` (the same phase, give or take ``k``
steps, on each of the previous ``n_seasons`` seasons), of size ``n``. Its ``median`` is the
expected value. One MAD from 7 to 35 values is far too noisy a spread (on Poisson traffic it let
~4 % of normal points through at ``|z| >= 4``), so the spread is pooled: ``MAD~`` is the mean,
over the positions ``t-w..t+w``, of their small-sample-corrected MADs (``MAD * n / (n - 0.8)``),
and it is widened for the uncertainty of the median itself::

    scale = max(1.4826 * MAD~ * sqrt(1 + pi / (2 n)), rel_floor * |median|, min_scale)
    z     = (y - median) / scale
    score = 1 - 2 ** (-(z / threshold) ** 2)      # 0 at z = 0, 0.5 at |z| = threshold, -> 1

so ``score >= 0.5`` exactly when ``is_anomaly`` (``|z| >= threshold``). Everything used for ``t``
lies before ``t - s + k + w`` (``s > k + w``), so scoring is causal. Points flagged as anomalies
are masked out of the history and never become the reference of later points (the detector does
not learn from them). A block of ``s - k - w`` consecutive points only uses data before the
block, so batch scoring runs block by block, vectorised inside a block, and gives exactly the
result of point-by-point online scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from models._frames import (
    Series,
    anomaly_frame,
    grid_positions,
    median_step_ns,
    split_series,
)
from models.anomaly.seasonal_stats import (
    MAD_TO_SIGMA,
    anomaly_score,
    phase_offsets,
    robust_reference,
    rolling_mean,
)
from models.errors import InsufficientHistoryError, NotFittedError, check_saved
from models.frequency import season_length

__all__ = ["RobustZScore"]

_FORMAT = 1

@dataclass
class _History:
    step_ns: int
    season: int
    last_ds_ns: int
    values: np.ndarray  # masked history on the grid, ending at last_ds_ns

    @property
    def anchor_ns(self) -> int:
        return self.last_ds_ns - (self.values.size - 1) * self.step_ns


class RobustZScore:
    """Seasonal robust z-score detector, batch or online, with bounded per-series state.

    Args:
        season_length: points per season; ``None`` infers it per series from the step and
            ``period``.
        n_seasons: how many previous seasons form the reference (the stored history length).
        threshold: ``|z|`` at which a point is an anomaly (its score is then 0.5).
        min_history_seasons: previous seasons with data needed before a point is scored (and
            at least 3 reference values: with no neighbourhood, that is 3 seasons); before that
            (warm-up) the score is 0 and ``expected``/``lower``/``upper`` are NaN.
        neighbourhood: phase tolerance: steps within this time of the same phase are part of
            the reference (``"2min"`` on 1-minute data is ±2 steps; 0 steps on coarser data).
        period: the seasonal period used when ``season_length`` is ``None``.
        rel_floor: the scale is at least this fraction of ``|median|`` (a very smooth series
            must still move by ``threshold * rel_floor`` to alarm).
        min_scale: absolute scale floor, in the units of ``y`` (set it to the metric's
            resolution, e.g. 1 for small counts whose MAD is 0).
        scale_window: the MAD is pooled (averaged) over positions within this time of ``t``
            (``"1h"`` is ±60 steps on 1-minute data, ±1 step on hourly data).

    ``score(frame)`` continues each series from the stored history (points of ``frame`` replace
    stored points from the frame's first timestamp on) and, unless ``learn=False``, stores the
    result, minus the points it flagged. Rows with missing ``y`` are gaps: they get no row.

    Example:
        >>> import numpy as np, pandas as pd
        >>> ds = pd.date_range("2026-01-01", periods=96, freq="h", tz="UTC")
        >>> y = np.tile(np.r_[np.full(12, 10.0), np.full(12, 50.0)], 4) + np.tile([0.0, 1.0], 48)
        >>> y[80] = 200.0
        >>> det = RobustZScore(season_length=24, n_seasons=3).fit(
        ...     pd.DataFrame({"unique_id": "a", "ds": ds[:72], "y": y[:72]}))
        >>> out = det.score(pd.DataFrame({"unique_id": "a", "ds": ds[72:], "y": y[72:]}))
        >>> out.loc[out["is_anomaly"], ["y", "kind"]].values.tolist()
        [[200.0, 'spike']]
    """

    name = "robust_zscore"

    def __init__(
        self,
        season_length: int | None = None,
        n_seasons: int = 7,
        threshold: float = 4.0,
        min_history_seasons: int = 1,
        neighbourhood: str | pd.Timedelta = "2min",
        period: str | pd.Timedelta = "1D",
        rel_floor: float = 0.02,
        min_scale: float = 1e-9,
        scale_window: str | pd.Timedelta = "1h",
    ) -> None:
        if season_length is not None and (
            isinstance(season_length, bool) or int(season_length) != season_length
            or season_length < 2
        ):
            raise ValueError(
                f"season_length must be an integer >= 2 or None, got {season_length!r}"
            )
        if int(n_seasons) != n_seasons or n_seasons < 1:
            raise ValueError(f"n_seasons must be a positive integer, got {n_seasons!r}")
        if not (int(min_history_seasons) == min_history_seasons and 1 <= min_history_seasons
                <= n_seasons):
            raise ValueError(
                f"min_history_seasons must be an integer in [1, n_seasons={n_seasons}], "
                f"got {min_history_seasons!r}"
            )
        if not (np.isfinite(threshold) and threshold > 0):
            raise ValueError(f"threshold must be a positive number, got {threshold!r}")
        if not (np.isfinite(rel_floor) and rel_floor >= 0):
            raise ValueError(f"rel_floor must be >= 0, got {rel_floor!r}")
        if not (np.isfinite(min_scale) and min_scale > 0):
            raise ValueError(f"min_scale must be > 0 (it avoids division by 0), got {min_scale!r}")
        self.season_length = None if season_length is None else int(season_length)
        self.n_seasons = int(n_seasons)
        self.threshold = float(threshold)
        self.min_history_seasons = int(min_history_seasons)
        self.neighbourhood = pd.Timedelta(neighbourhood)
        if self.neighbourhood < pd.Timedelta(0):
            raise ValueError(f"neighbourhood must be >= 0, got {self.neighbourhood}")
        self.scale_window = pd.Timedelta(scale_window)
        if self.scale_window < pd.Timedelta(0):
            raise ValueError(f"scale_window must be >= 0, got {self.scale_window}")
        self.period = pd.Timedelta(period)
        self.rel_floor = float(rel_floor)
        self.min_scale = float(min_scale)
        self._history: dict[str, _History] | None = None

    def _params(self) -> dict[str, Any]:
        return {
            "season_length": self.season_length,
            "n_seasons": self.n_seasons,
            "threshold": self.threshold,
            "min_history_seasons": self.min_history_seasons,
            "neighbourhood": str(self.neighbourhood),
            "period": str(self.period),
            "rel_floor": self.rel_floor,
            "min_scale": self.min_scale,
            "scale_window": str(self.scale_window),
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"RobustZScore({args})"

    def fit(self, frame: pd.DataFrame) -> Self:
        """Score ``frame`` from scratch and keep the last ``n_seasons`` seasons of each series.

        Raises:
            FrameError: the frame breaks the canonical contract.
            InsufficientHistoryError: a series has fewer than two points (no step to infer).
        """
        history: dict[str, _History] = {}
        self._run(frame, history, learn=True, who="RobustZScore.fit")
        self._history = history
        return self

    def score(self, frame: pd.DataFrame, *, learn: bool = True) -> pd.DataFrame:
        """Score every observed point of ``frame``, continuing from the stored history.

        Args:
            frame: a long series frame (new points, or a whole window for a backtest).
            learn: store the scored points (except flagged ones) as history for later calls.

        Raises:
            NotFittedError: called before :meth:`fit`.
        """
        if self._history is None:
            raise NotFittedError("RobustZScore is not fitted: call fit(frame) before score()")
        return self._run(frame, self._history, learn=learn, who="RobustZScore.score")

    def _run(
        self, frame: pd.DataFrame, history: dict[str, _History], *, learn: bool, who: str
    ) -> pd.DataFrame:
        parts: list[pd.DataFrame] = []
        for s in split_series(frame, who=who):
            hist = history.get(s.unique_id)
            step_ns, season = self._step_and_season(s.unique_id, s.ds_ns, hist)
            k = int(self.neighbourhood.value // step_ns)
            w = int(self.scale_window.value // step_ns)
            if season <= k + w:
                raise ValueError(
                    f"{who}: series '{s.unique_id}': the season ({season} steps) must be longer "
                    f"than neighbourhood + scale_window ({k} + {w} steps); shorten them"
                )
            if hist is not None and hist.step_ns == step_ns and s.ds_ns[0] > hist.anchor_ns:
                n_ctx = int(grid_positions(s.ds_ns[:1], hist.anchor_ns, step_ns)[0])
                context = hist.values[: min(n_ctx, hist.values.size)]
                anchor = hist.anchor_ns
            else:
                context, anchor, n_ctx = np.empty(0), int(s.ds_ns[0]), 0
            pos = grid_positions(s.ds_ns, anchor, step_ns)
            values = np.full(int(pos[-1]) + 1, np.nan)
            values[: context.size] = context
            values[pos] = s.y
            med, scale, z, flagged = self._score_grid(values, n_ctx, season, k, w)
            parts.append(self._part(s, med[pos - n_ctx], scale[pos - n_ctx], z[pos - n_ctx],
                                    flagged[pos - n_ctx]))
            if learn:
                values[n_ctx:][flagged] = np.nan
                keep = self.n_seasons * season + k + w  # all the next point can use
                history[s.unique_id] = _History(
                    step_ns, season, anchor + (values.size - 1) * step_ns, values[-keep:].copy()
                )
        return anomaly_frame(parts, self.name)

    def _step_and_season(
        self, uid: str, ds_ns: np.ndarray, hist: _History | None
    ) -> tuple[int, int]:
        if hist is not None:
            return hist.step_ns, hist.season
        if ds_ns.size < 2:
            raise InsufficientHistoryError(
                f"RobustZScore: series '{uid}' has {ds_ns.size} point(s) and no stored history; "
                "pass at least two points so its sampling step can be inferred"
            )
        step = pd.Timedelta(median_step_ns(ds_ns), unit="ns")
        return step.value, self.season_length or season_length(step, self.period)

    def _score_grid(
        self, values: np.ndarray, start: int, season: int, k: int, w: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Score grid positions ``start..`` block by block, masking flagged points in ``values``."""
        n = values.size - start
        med, scale, z = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
        flagged = np.zeros(n, dtype=bool)
        offsets = phase_offsets(season, self.n_seasons, k)
        block = season - k - w  # everything a block uses lies before the block
        for a in range(start, values.size, block):
            b = min(a + block, values.size)
            lo = max(a - w, 0)
            m, mad, count, warm = robust_reference(
                values, np.arange(lo, b + w), offsets, self.n_seasons, self.min_history_seasons
            )
            inner = slice(a - lo, b - lo)
            m, warm, mad = m[inner], warm[inner], rolling_mean(mad, w)[inner]
            # the median itself is uncertain: var(y - median) ~ sigma^2 * (1 + pi / (2 n))
            spread = MAD_TO_SIGMA * mad * np.sqrt(1 + np.pi / (2 * np.maximum(count[inner], 1)))
            positions = np.arange(a, b)
            sc = np.maximum.reduce(
                [spread, self.rel_floor * np.abs(m), np.full(m.size, self.min_scale)]
            )
            y = values[positions]
            ok = warm & ~np.isnan(y)
            zz = np.where(ok, (y - np.where(ok, m, 0.0)) / np.where(ok, sc, 1.0), 0.0)
            hit = ok & (np.abs(zz) >= self.threshold)
            r = positions - start
            med[r], scale[r], z[r], flagged[r] = np.where(warm, m, np.nan), sc, zz, hit
            values[positions[hit]] = np.nan
        return med, scale, z, flagged

    def _part(
        self, s: Series, med: np.ndarray, scale: np.ndarray, z: np.ndarray, flagged: np.ndarray
    ) -> dict[str, Any]:
        kind = np.full(z.size, None, dtype=object)
        kind[flagged & (z > 0)] = "spike"
        kind[flagged & (z < 0)] = "drop"
        band = self.threshold * scale
        return {"unique_id": s.unique_id, "ds_ns": s.ds_ns, "y": s.y, "expected": med,
                "lower": med - band, "upper": med + band,
                "score": anomaly_score(z, self.threshold), "is_anomaly": flagged, "kind": kind}

    def to_dict(self) -> dict[str, Any]:
        """Parameters and stored history as JSON-serialisable data (NaN stored as ``None``)."""
        history = None
        if self._history is not None:
            history = {
                uid: {
                    "step_ns": h.step_ns,
                    "season": h.season,
                    "last_ds_ns": h.last_ds_ns,
                    "values": [None if np.isnan(v) else float(v) for v in h.values],
                }
                for uid, h in sorted(self._history.items())
            }
        return {"detector": self.name, "format": _FORMAT, "params": self._params(),
                "history": history}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a detector saved by :meth:`to_dict`.

        Raises:
            ModelError: ``d`` was not written by a ``RobustZScore`` of a known format.
        """
        check_saved(d, key="detector", name=cls.name, fmt=_FORMAT)
        det = cls(**d["params"])
        if d["history"] is not None:
            det._history = {
                uid: _History(
                    int(h["step_ns"]), int(h["season"]), int(h["last_ds_ns"]),
                    np.array([np.nan if v is None else v for v in h["values"]], dtype=float),
                )
                for uid, h in d["history"].items()
            }
        return det
