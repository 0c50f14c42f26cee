"""Novelty detector: a point is anomalous when it takes a view of the series to a new extreme.

Three views of the series are watched, each over the last ``window`` points (a bounded memory):

* ``y`` itself (spikes and drops beyond everything seen recently);
* the seasonal difference ``y_t - median_j y_{t-jP}`` (``P`` points a season, a day by default;
  ``j = 1..3``, so one odd day does not echo a season later), which
  catches a day that breaks the daily pattern although every value is ordinary;
* the short mean of the last ``smooth`` points (level shifts too small for a single point).

For a view ``x``, with ``hi``/``lo`` the max/min of its previous ``window`` values, the novelty is
``nu = max(x - hi, lo - x) / (hi - lo)`` (0 inside the range) and the view's score
``1 - 2 ** (-nu / half)``: 0 inside the range, 0.5 at ``nu = half`` (6.4 % of the range beyond
it by default), towards 1 far out. The raw score is the largest of the three. Alarms are then **suppressed**: a raw score counts only if it beats every raw score of the
previous ``suppress`` points, else the output is 0, so a persisting anomaly alarms once and
early (what the NAB score and an on-call engineer both reward). Everything is a ratio of
differences, so scaling the series (or shifting a series far from 0) leaves scores unchanged,
and a constant series never alarms.

Unlike :class:`~models.anomaly.robust_zscore.RobustZScore`, a flagged point *does* enter the
range: this detector reports each new extreme once and then accepts it (after an outage or a
level shift the new level is the new normal). Not learning from anomalies would keep a shifted
series alarming for ever. Suppression keeps the repeated alarm count down instead.

Scoring is causal over the row sequence (the score of a row uses only earlier rows and itself);
the stored state is the last ``window + 3 seasons + smooth + suppress`` values of each series, and
batch scoring gives the same scores as scoring the points one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from models._frames import Series, anomaly_frame, median_step_ns, split_series
from models.errors import InsufficientHistoryError, NotFittedError, check_saved
from models.frequency import season_length

__all__ = ["Novelty", "novelty_scores"]

_FORMAT = 1
_REL_FLOOR = 1e-3  # a range narrower than this fraction of the values' size counts as flat
_KINDS = np.array([None, "spike", "drop", "level_shift"], dtype=object)


def _rolling(x: np.ndarray, window: int, how: str, min_periods: int) -> np.ndarray:
    """``pandas.Series(x).rolling(window, min_periods).max()`` (or ``min``), in numpy.

    The van Herk / Gil-Werman scheme: within blocks of ``window`` points, running extremes
    from the left and from the right; a window spans at most two blocks, so its extreme is
    one comparison. Extremes are exact, so for what the views hold (finite values with NaN
    gaps, ``min_periods >= 1``) the values are pandas' to the bit, without its per-call cost
    (an online score makes seven of these calls per series, every tick). Unlike pandas, an
    infinite value would count as a value.
    """
    op, fill = (np.fmax, -np.inf) if how == "max" else (np.fmin, np.inf)
    n = x.size
    missing = np.isnan(x)
    blocks = np.full(-(-n // window) * window, fill)
    blocks[:n] = np.where(missing, fill, x)
    blocks = blocks.reshape(-1, window)
    left = op.accumulate(blocks, axis=1).ravel()
    right = op.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    out = left[:n].copy()  # windows ending in the first block start at 0
    ends = np.arange(window - 1, n)
    out[window - 1:] = op(right[ends - window + 1], left[ends])
    present = np.cumsum(~missing)
    count = present - np.r_[np.zeros(min(window, n), dtype=present.dtype), present[:-window]]
    return np.where(count >= min_periods, out, np.nan)


def _view_novelty(x: np.ndarray, window: int, min_periods: int) -> tuple[np.ndarray, ...]:
    """Novelty of each ``x_t`` against the previous ``window`` values (NaN-safe, 0 in warm-up)."""
    prev = np.r_[np.nan, x[:-1]]
    hi = _rolling(prev, window, "max", min_periods)
    lo = _rolling(prev, window, "min", min_periods)
    width = np.maximum(hi - lo, np.maximum(_REL_FLOOR * np.maximum(np.abs(hi), np.abs(lo)), 1e-12))
    with np.errstate(invalid="ignore"):
        nu = np.maximum(x - hi, lo - x) / width
    return np.nan_to_num(np.maximum(nu, 0.0), nan=0.0), hi, lo


def _trailing_mean(y: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``y[t-n+1..t]`` (NaN until ``n`` values, or when one of them is NaN).

    Each mean sums its own ``n`` values, so it does not depend on where ``y`` starts (a running
    sum would): scoring from a stored tail gives the same bits as scoring the whole series.
    """
    out = np.full(y.size, np.nan)
    if y.size >= n:
        out[n - 1:] = np.lib.stride_tricks.sliding_window_view(y, n).mean(axis=1)
    return out


def _seasonal_reference(y: np.ndarray, season: int, seasons: int, first: int = 0) -> np.ndarray:
    """Median of ``y`` at ``t - j * season`` over the available ``j = 1..seasons``, for
    ``t >= first``.

    A median of several seasons keeps one odd day from echoing as an anomaly a season later.
    """
    lags = np.full((seasons, y.size - first), np.nan)
    for j in range(1, seasons + 1):
        lag = j * season
        begin = max(first, lag)  # the first t with a value one lag back
        if begin < y.size:
            lags[j - 1, begin - first:] = y[begin - lag:y.size - lag]
    # nanmedian by hand: the first season has no lag at all, and numpy warns once per such
    # point (thousands per call) where this sort puts NaN last and counts what is there
    ordered = np.sort(lags, axis=0)
    count = (~np.isnan(lags)).sum(axis=0)  # an infinite value is a value, as for nanmedian
    hi = np.take_along_axis(ordered, (count // 2)[None, :], axis=0)[0]
    lo = np.take_along_axis(ordered, np.maximum(count - 1, 0)[None, :] // 2, axis=0)[0]
    return np.where(count > 0, np.where(count % 2 == 1, hi, (lo + hi) / 2), np.nan)


def _to_score(nu: np.ndarray, half: float) -> np.ndarray:
    return 1.0 - np.exp2(-nu / half)


def novelty_scores(
    y: np.ndarray, season: int, window: int = 2000, smooth: int = 12, suppress: int = 100,
    half: float = 0.064, ref_seasons: int = 3, min_periods: int = 20, first: int = 0,
) -> dict[str, np.ndarray]:
    """Score a sequence causally; returns ``score``, ``raw``, ``view`` (0..2), ``sign``, ``hi``, ``lo``.

    ``view`` says which view won (0 = value, 1 = seasonal difference, 2 = short mean) and
    ``sign`` the direction (+1 above the range, -1 below); ``hi``/``lo`` is the value's range.
    The arrays cover the points from ``first`` on, with the values a whole run would give
    them: a point's score reaches back ``window + suppress`` points (its range, then the
    scores it must beat), so only those are computed (online, one new point a tick).
    """
    y = np.asarray(y, dtype=float)
    begin = max(0, first - window - suppress)
    lagged = _seasonal_reference(y, season, ref_seasons, first=begin)
    head = max(0, begin - smooth + 1)  # the short mean at ``begin`` reaches back this far
    mean = _trailing_mean(y[head:], smooth)[begin - head:]
    y = y[begin:]
    views = (y, y - lagged, mean)
    novs = [_view_novelty(v, window, min_periods) for v in views]
    scores = np.vstack([_to_score(nu, half) for nu, _, _ in novs])
    view = np.argmax(scores, axis=0)
    raw = scores[view, np.arange(y.size)]
    chosen = np.vstack(views)[view, np.arange(y.size)]
    hi_c = np.vstack([h for _, h, _ in novs])[view, np.arange(y.size)]
    sign = np.where(chosen > hi_c, 1, -1)
    best_before = _rolling(np.r_[0.0, raw[:-1]], suppress, "max", 1)
    score = np.where(raw > best_before, raw, 0.0)
    out = {"score": score, "raw": raw, "view": view, "sign": sign,
           "hi": novs[0][1], "lo": novs[0][2], "mean": np.r_[np.nan, mean[:-1]]}
    return {k: v[first - begin:] for k, v in out.items()}


@dataclass
class _State:
    season: int
    seen: int  # points scored so far (the warm-up counts them)
    ds_ns: np.ndarray  # the stored tail
    values: np.ndarray


class Novelty:
    """Sequence novelty detector (value, seasonal difference, short mean) with alarm suppression.

    Args:
        window: points of memory: a view is novel when it leaves its range over this many.
        smooth: points in the short mean (the level-shift view).
        suppress: a score counts only when it beats every raw score of this many earlier points.
        half: the novelty (beyond the range, as a fraction of its width) that scores 0.5.
        threshold: ``score >= threshold`` is an anomaly (0.5: a novelty of ``half``).
        season_length: points a season; ``None`` infers it per series from the step and
            ``period`` (a 5-minute series has 288).
        period: the seasonal period used when ``season_length`` is ``None``.
        warmup: the first points of a series score 0 (and have no band); ``None``: one season
            (the ranges are still growing then, so new extremes are not yet news).
        ref_seasons: the seasonal difference is taken from the median of this many seasons.

    Rows are a sequence: gaps in time are ignored. ``score(frame)`` continues each series from the
    stored tail (stored points at or after the frame's first timestamp are replaced).

    Example:
        >>> import numpy as np, pandas as pd
        >>> ds = pd.date_range("2026-01-01", periods=600, freq="5min", tz="UTC")
        >>> y = 10 + np.sin(np.arange(600) / 9.0); y[500] = 30.0
        >>> out = Novelty().fit(pd.DataFrame({"unique_id": "a", "ds": ds, "y": y}))
        >>> out = out.score(pd.DataFrame({"unique_id": "a", "ds": ds, "y": y}))
        >>> out.loc[out["is_anomaly"], ["y", "kind"]].values.tolist()
        [[30.0, 'spike']]
    """

    name = "novelty"

    def __init__(
        self, window: int = 2000, smooth: int = 12, suppress: int = 100, half: float = 0.064,
        threshold: float = 0.5,
        season_length: int | None = None, period: str | pd.Timedelta = "1D",
        warmup: int | None = None, ref_seasons: int = 3,
    ) -> None:
        for label, v, low in (("window", window, 2), ("smooth", smooth, 1),
                              ("suppress", suppress, 1), ("warmup", 0 if warmup is None else warmup, 0)):
            if isinstance(v, bool) or int(v) != v or v < low:
                raise ValueError(f"{label} must be an integer >= {low}, got {v!r}")
        if not (np.isfinite(threshold) and 0.0 < threshold < 1.0):
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        if not (np.isfinite(half) and half > 0):
            raise ValueError(f"half must be > 0, got {half!r}")
        if season_length is not None and (isinstance(season_length, bool)
                                          or int(season_length) != season_length
                                          or season_length < 1):
            raise ValueError(f"season_length must be a positive integer or None, got {season_length!r}")
        self.window, self.smooth, self.suppress = int(window), int(smooth), int(suppress)
        self.threshold, self.half = float(threshold), float(half)
        self.season_length = None if season_length is None else int(season_length)
        self.period = pd.Timedelta(period)
        self.warmup = None if warmup is None else int(warmup)
        if isinstance(ref_seasons, bool) or int(ref_seasons) != ref_seasons or ref_seasons < 1:
            raise ValueError(f"ref_seasons must be an integer >= 1, got {ref_seasons!r}")
        self.ref_seasons = int(ref_seasons)
        self._state: dict[str, _State] | None = None

    def _params(self) -> dict[str, Any]:
        return {"window": self.window, "smooth": self.smooth, "suppress": self.suppress,
                "half": self.half, "threshold": self.threshold, "season_length": self.season_length,
                "period": str(self.period), "warmup": self.warmup,
                "ref_seasons": self.ref_seasons}

    def __repr__(self) -> str:
        return "Novelty(" + ", ".join(f"{k}={v!r}" for k, v in self._params().items()) + ")"

    def fit(self, frame: pd.DataFrame) -> Self:
        """Score ``frame`` from scratch and keep the bounded tail of each series.

        Raises:
            FrameError: the frame breaks the canonical contract.
            InsufficientHistoryError: a series has fewer than two points (no step to infer).
        """
        state: dict[str, _State] = {}
        self._run(frame, state, learn=True, who="Novelty.fit")
        self._state = state
        return self

    def score(self, frame: pd.DataFrame, *, learn: bool = True) -> pd.DataFrame:
        """Score every observed point of ``frame``, continuing from the stored tail.

        Raises:
            NotFittedError: called before :meth:`fit`.
        """
        if self._state is None:
            raise NotFittedError("Novelty is not fitted: call fit(frame) before score()")
        return self._run(frame, self._state, learn=learn, who="Novelty.score")

    def _season(self, uid: str, ds_ns: np.ndarray) -> int:
        if self.season_length is not None:
            return self.season_length
        if ds_ns.size < 2:
            raise InsufficientHistoryError(
                f"Novelty: series '{uid}' has {ds_ns.size} point(s) and no stored history; pass "
                "at least two points so its sampling step can be inferred"
            )
        return season_length(pd.Timedelta(median_step_ns(ds_ns), unit="ns"), self.period)

    def _run(self, frame: pd.DataFrame, state: dict[str, _State], *, learn: bool,
             who: str) -> pd.DataFrame:
        parts = []
        keep = self.window + self.smooth + self.suppress + 2
        for s in split_series(frame, who=who):
            st = state.get(s.unique_id)
            if st is not None:
                old = st.ds_ns < s.ds_ns[0]
                dropped = int((~old).sum())
                st = _State(st.season, st.seen - dropped, st.ds_ns[old], st.values[old])
                if st.values.size == 0:
                    st = None
            season = st.season if st is not None else self._season(s.unique_id, s.ds_ns)
            ctx = st.values if st is not None else np.empty(0)
            ctx_ds = st.ds_ns if st is not None else np.empty(0, dtype=np.int64)
            seen = st.seen if st is not None else 0
            y = np.r_[ctx, s.y]
            r = novelty_scores(y, season, self.window, self.smooth, self.suppress,
                               self.half, self.ref_seasons, first=ctx.size)
            index = seen + np.arange(s.y.size)  # position of each new point in its series
            warmup = season if self.warmup is None else self.warmup
            parts.append(self._part(s, r, index >= warmup))
            if learn:
                tail = keep + self.ref_seasons * season
                state[s.unique_id] = _State(season, seen + s.y.size, np.r_[ctx_ds, s.ds_ns][-tail:],
                                            y[-tail:].copy())
        return anomaly_frame(parts, self.name)

    def _part(self, s: Series, r: dict[str, np.ndarray], warm: np.ndarray) -> dict[str, Any]:
        score = np.where(warm, r["score"], 0.0)
        flagged = score >= self.threshold
        hi, lo = r["hi"], r["lo"]
        banded = warm & np.isfinite(hi) & np.isfinite(lo)
        # the value view alarms (at this threshold) beyond range * nu_threshold outside [lo, hi]
        margin = -self.half * np.log2(1.0 - self.threshold) * (hi - lo)
        lower = np.where(banded, lo - margin, np.nan)
        upper = np.where(banded, hi + margin, np.nan)
        expected = np.where(banded, np.clip(np.nan_to_num(r["mean"], nan=0.0), lower, upper), np.nan)
        code = np.where(r["view"] == 2, 3, np.where(r["sign"] > 0, 1, 2)).astype(int)
        kind = _KINDS[np.where(flagged, code, 0)]
        return {"unique_id": s.unique_id, "ds_ns": s.ds_ns, "y": s.y, "expected": expected,
                "lower": lower, "upper": upper, "score": score, "is_anomaly": flagged,
                "kind": kind}

    def to_dict(self) -> dict[str, Any]:
        """Parameters and stored tails as JSON-serialisable data."""
        state = None
        if self._state is not None:
            state = {uid: {"season": st.season, "seen": st.seen,
                           "ds_ns": [int(v) for v in st.ds_ns],
                           "values": [float(v) for v in st.values]}
                     for uid, st in sorted(self._state.items())}
        return {"detector": self.name, "format": _FORMAT, "params": self._params(), "state": state}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a detector saved by :meth:`to_dict`.

        Raises:
            ModelError: ``d`` was not written by a ``Novelty`` detector of a known format.
        """
        check_saved(d, key="detector", name=cls.name, fmt=_FORMAT)
        det = cls(**d["params"])
        if d["state"] is not None:
            det._state = {uid: _State(int(st["season"]), int(st["seen"]),
                                      np.asarray(st["ds_ns"], dtype=np.int64),
                                      np.asarray(st["values"], dtype=float))
                          for uid, st in d["state"].items()}
        return det
