"""Change-point detector: a two-sided CUSUM on a load-adjusted, robustly standardised residual.

For slow drifts and level shifts (a p95 latency ramping up over hours, a rate stepping down)
that never leave a series' ordinary range point by point. Per series:

1. ``x = log(y)`` (``log=True``): a multiplicative drift is a shift, and scaling ``y`` leaves
   every score unchanged.
2. A reference refreshed every ``block`` points from the previous ``window`` points (points
   inside an alarm are left out, so the detector does not learn from anomalies): with a *load*
   series (latency follows utilisation: the p95 of a service rises at every kickoff), a least
   squares fit ``x ~ 1 + v + v^2``, ``v = load / median(load)``, else the median; the scale is
   the MAD of the reference residuals (floored at ``rel_floor``).
3. ``z = (x - reference) / scale`` and the two-sided CUSUM
   ``S+ = max(0, S+ + z - k)``, ``S- = max(0, S- - z - k)`` (:func:`cusum`).
4. ``score = 1 - 2 ** -((S / h) ** 2)`` with ``S = max(S+, S-)``: 0.5 at ``S = h``; an anomaly
   has ``kind="level_shift"``. A run of more than ``max_run`` alarming points is accepted as the
   new normal: the CUSUM restarts and the run's points re-enter the reference.

What it can see: for a ramp reaching ``m`` times the level in ``D`` minutes the log shift after
``t`` minutes is about ``(m - 1) t / D``; against a per-point noise ``sigma`` (0.03 in log for a
busy service's p95) the best possible evidence after ``t`` points (a matched filter) is
``(m - 1) / D * sqrt(t (t+1) (2t+1) / 6) / sigma``: 12 sigma at 5 minutes for ``m=4, D=60``,
but 1.0 sigma for ``m=2, D=240`` (about 20 minutes to reach 8 sigma). No causal detector can
alarm on the slow case within 5 minutes without alarming on noise all day.

Scoring is causal and batch equals online: the state per series holds the last
``window + block`` values, their load and alarm masks, the CUSUM sums and the current block's
reference.

Example:
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> ds = pd.date_range("2026-01-01", periods=900, freq="min", tz="UTC")
    >>> y = 0.2 * np.exp(0.03 * rng.standard_normal(900))
    >>> y[700:] *= 1 + np.arange(200) / 100  # drifts to x3
    >>> f = pd.DataFrame({"unique_id": "api:latency_p95_seconds", "ds": ds, "y": y})
    >>> out = ChangePoint().fit(f[:600]).score(f[600:])
    >>> first = out.loc[out.is_anomaly, "ds"].min()
    >>> bool(ds[700] < first <= ds[715]), out.loc[out.is_anomaly, "kind"].unique().tolist()
    (True, ['level_shift'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd

from models._frames import split_series, to_utc
from models.anomaly.seasonal_stats import MAD_TO_SIGMA
from models.base import ANOMALY_COLUMNS
from models.errors import FrameError, ModelError, NotFittedError

__all__ = ["ChangePoint", "cusum", "latency_load_series", "load_reference"]

_FORMAT = 1


def cusum(z: np.ndarray, k: float, s_pos: float = 0.0, s_neg: float = 0.0
          ) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided CUSUM of standardised values ``z`` with allowance ``k``, from ``s_pos/s_neg``.

    Example:
        >>> p, n = cusum(np.array([0.0, 2.0, 2.0, -3.0]), k=1.0)
        >>> p.tolist(), n.tolist()
        ([0.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 2.0])
    """
    z = np.asarray(z, dtype=float)
    sp, sn = np.empty(z.size), np.empty(z.size)
    a, b = float(s_pos), float(s_neg)
    for i, v in enumerate(z.tolist()):
        a = max(0.0, a + v - k)
        b = max(0.0, b - v - k)
        sp[i], sn[i] = a, b
    return sp, sn


def load_reference(x: np.ndarray, load: np.ndarray | None, floor: float
                   ) -> list[float] | None:
    """Fit the reference of ``x``: ``[*coef, load_scale, v_max, v_busy, scale_busy, scale, level]``.

    ``coef`` are the least-squares coefficients of ``x ~ 1 + v + v^2`` (``v = load / load_scale``,
    refit once without points beyond 4 MADs) or ``[median]`` without load. ``scale`` is the
    robust spread of the residuals (at least ``floor``); ``scale_busy`` the spread of those with ``v >= v_busy`` (the
    top decile of load: peaks are noisier and the fit is least sure there). ``None`` when fewer
    than 10 usable points. ``v_max`` is the largest reference load: beyond it the fit
    extrapolates, so the scorer takes no evidence from such points.

    Example:
        >>> load_reference(np.array([1.0] * 20), None, 0.01)
        [1.0, 1.0, inf, inf, 0.01, 0.01, 1.0]
    """
    ok = np.isfinite(x)
    if load is not None:
        ok &= np.isfinite(load) & (load > 0)
    if ok.sum() < 10:
        return None
    xs = x[ok]
    level = float(np.median(xs))
    if load is None:
        coef, lscale = np.array([level]), 1.0
        res = xs - level
    else:
        lscale = float(np.median(load[ok]))
        v = load[ok] / lscale
        design = np.column_stack([np.ones_like(v), v, v * v])
        coef = np.linalg.lstsq(design, xs, rcond=None)[0]
        res = xs - design @ coef
        mad = np.median(np.abs(res - np.median(res)))
        keep = np.abs(res) <= 4 * MAD_TO_SIGMA * mad + 1e-12
        if keep.sum() >= 10:
            coef = np.linalg.lstsq(design[keep], xs[keep], rcond=None)[0]
            res = xs - design @ coef

    def spread(r: np.ndarray) -> float:
        return max(MAD_TO_SIGMA * float(np.median(np.abs(r - np.median(r)))), floor)
    scale = spread(res)
    v_max, v_busy, scale_busy = np.inf, np.inf, scale
    if load is not None:
        v = load[ok] / lscale
        v_max, v_busy = float(v.max()), float(np.quantile(v, 0.9))
        busy = v >= v_busy
        if busy.sum() >= 10:
            scale_busy = max(spread(res[busy]), scale)
    return [*coef.tolist(), lscale, v_max, v_busy, scale_busy, scale, level]


def _predict(coef: np.ndarray, lscale: float, load: np.ndarray | None, n: int) -> np.ndarray:
    if coef.size == 1 or load is None:
        return np.full(n, coef[0])
    v = load / lscale
    return coef[0] + coef[1] * v + coef[2] * v * v


def latency_load_series(unique_ids: list[str]) -> dict[str, str]:
    """Default load pairing: ``svc:latency_p95_seconds`` -> ``svc:requests_per_second``.

    Example:
        >>> latency_load_series(["a:latency_p95_seconds", "a:requests_per_second", "b:x"])
        {'a:latency_p95_seconds': 'a:requests_per_second'}
    """
    ids = set(unique_ids)
    out = {}
    for u in sorted(ids):
        if u.endswith(":latency_p95_seconds"):
            req = u.rsplit(":", 1)[0] + ":requests_per_second"
            if req in ids:
                out[u] = req
    return out


@dataclass
class _State:
    seen: int
    last_ds_ns: int
    x: np.ndarray  # last window + block transformed values (NaN: gap)
    load: np.ndarray
    mask: np.ndarray  # points inside an alarm run (kept out of the reference)
    s_pos: float = 0.0
    s_neg: float = 0.0
    run: int = 0
    last_load: float = float("nan")
    ref_block: int = -1
    ref: list[float] = field(default_factory=list)  # coef..., load_scale, scale, level


class ChangePoint:
    """Two-sided CUSUM change-point detector (``Detector`` protocol, kind ``level_shift``).

    Args:
        window: points of reference history (4320 = three days at 1 minute: the reference must have seen
            evening peaks of load).
        block: the reference is refreshed every ``block`` points.
        k: the CUSUM allowance in standardised units (shifts below ``k`` sigma are ignored).
        h: the CUSUM decision level (score 0.5).
        rel_floor: smallest residual scale (log units with ``log=True``: 1 %).
        min_ref: reference points needed before scoring (warm-up scores 0).
        max_run: an alarm run longer than this many points is accepted as the new level.
        log: score ``log(y)`` (non-positive values are gaps); else ``y`` itself.
        load: ``unique_id -> load series id`` (``None``: :func:`latency_load_series`); the load
            series themselves are not scored unless ``targets`` includes them.
        targets: which series to score (``None``: every series that is not only a load).
        two_sided: also alarm downward shifts (``False``: only upward, e.g. for latency, where
            the recovery after an incident is no news).
        cap: the CUSUM sums are capped at ``cap * h``. An hour-long incident would otherwise
            pile up hundreds of units that drain at only ``k`` per point after it ends, and the
            series would keep alarming for hours after recovery; capped, the alarm clears within
            ``(cap - 1) * h / k`` points of the recovery (4 with the defaults).
    """

    name = "changepoint"

    def __init__(
        self, window: int = 4320, block: int = 60, k: float = 1.0, h: float = 8.0,
        rel_floor: float = 0.01, min_ref: int = 120, max_run: int = 360, log: bool = True,
        load: Mapping[str, str] | Callable[[list[str]], dict[str, str]] | None = None,
        targets: list[str] | None = None, two_sided: bool = True, cap: float = 1.5,
    ) -> None:
        for label, v, low in (("window", window, 10), ("block", block, 1), ("min_ref", min_ref, 10),
                              ("max_run", max_run, 1)):
            if isinstance(v, bool) or int(v) != v or v < low:
                raise ValueError(f"{label} must be an integer >= {low}, got {v!r}")
        if not (np.isfinite(cap) and cap >= 1.0):
            raise ValueError(f"cap must be a finite multiple of h >= 1, got {cap!r}")
        if not (np.isfinite(k) and k >= 0 and np.isfinite(h) and h > 0 and rel_floor > 0):
            raise ValueError(f"need k >= 0, h > 0, rel_floor > 0; got k={k!r}, h={h!r}, "
                             f"rel_floor={rel_floor!r}")
        self.window, self.block, self.k, self.h = int(window), int(block), float(k), float(h)
        self.rel_floor, self.min_ref, self.max_run = float(rel_floor), int(min_ref), int(max_run)
        self.log, self.two_sided = bool(log), bool(two_sided)
        self.cap = float(cap)
        self._load_rule = load
        self.load: dict[str, str] | None = dict(load) if isinstance(load, Mapping) else None
        self.targets = None if targets is None else list(targets)
        self._state: dict[str, _State] | None = None

    def _params(self) -> dict[str, Any]:
        return {"window": self.window, "block": self.block, "k": self.k, "h": self.h,
                "rel_floor": self.rel_floor, "min_ref": self.min_ref, "max_run": self.max_run,
                "log": self.log, "two_sided": self.two_sided, "cap": self.cap}

    def __repr__(self) -> str:
        return "ChangePoint(" + ", ".join(f"{k}={v!r}" for k, v in self._params().items()) + ")"

    def fit(self, frame: pd.DataFrame) -> Self:
        """Score ``frame`` from scratch and keep the bounded state of every series.

        Raises:
            FrameError: the frame breaks the canonical contract.
        """
        if "unique_id" not in frame.columns:
            raise FrameError("ChangePoint.fit: missing column 'unique_id'")
        if self.load is None:
            ids = sorted(frame["unique_id"].astype(str).unique().tolist())
            rule = self._load_rule if callable(self._load_rule) else latency_load_series
            self.load = dict(rule(ids))
        self._state = {}
        self._run(frame, who="ChangePoint.fit")
        return self

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Score the new points of ``frame`` (target series, plus their load series).

        Raises:
            NotFittedError: called before :meth:`fit`.
        """
        if self._state is None:
            raise NotFittedError("ChangePoint is not fitted: call fit(frame) before score()")
        return self._run(frame, who="ChangePoint.score")

    def _run(self, frame: pd.DataFrame, *, who: str) -> pd.DataFrame:
        assert self._state is not None and self.load is not None  # set by fit
        series = {s.unique_id: s for s in split_series(frame, who=who)}
        loads = set(self.load.values())
        parts = []
        for uid, s in series.items():
            if self.targets is not None and uid not in self.targets:
                continue
            if self.targets is None and uid in loads and uid not in self.load:
                continue
            st = self._state.get(uid)
            keep = s.ds_ns > (st.last_ds_ns if st is not None else np.iinfo(np.int64).min)
            ds_ns, y = s.ds_ns[keep], s.y[keep]
            if ds_ns.size == 0:
                continue
            lo = series.get(self.load.get(uid, ""))
            load = None
            if uid in self.load:
                load = np.full(ds_ns.size, np.nan)
                if lo is not None:
                    _, ia, ib = np.intersect1d(ds_ns, lo.ds_ns, assume_unique=True,
                                               return_indices=True)
                    load[ia] = lo.y[ib]
                last = st.last_load if st is not None else np.nan
                load = pd.Series(np.r_[last, load]).ffill().to_numpy()[1:]
            if st is None:
                st = _State(0, -1, np.empty(0), np.empty(0), np.empty(0, dtype=bool))
            if self.log:
                with np.errstate(divide="ignore", invalid="ignore"):
                    x = np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), np.nan)
            else:
                x = y.astype(float)
            parts.append(self._score_series(uid, st, ds_ns, y, x, load))
        if not parts:
            e = np.empty(0)
            return self._frame("", np.empty(0, dtype=np.int64), e, e, e, e, e, e.astype(bool))
        return pd.concat(parts, ignore_index=True)

    def _score_series(self, uid: str, st: _State, ds_ns: np.ndarray, y: np.ndarray,
                      x: np.ndarray, load: np.ndarray | None) -> pd.DataFrame:
        n_new = x.size
        hx = np.r_[st.x, x]
        hl = np.r_[st.load, load if load is not None else np.full(n_new, np.nan)]
        mask = np.r_[st.mask, np.zeros(n_new, dtype=bool)]
        first = st.seen - st.x.size  # global position of hx[0]
        score, exp, scale_out, flag = (np.zeros(n_new), np.full(n_new, np.nan),
                                       np.full(n_new, np.nan), np.zeros(n_new, dtype=bool))
        sp, sn, run = st.s_pos, st.s_neg, st.run
        ref_block, ref = st.ref_block, list(st.ref)
        a = st.x.size
        while a < hx.size:
            gpos = first + a
            blk = gpos // self.block
            b = min(hx.size, a + (blk + 1) * self.block - gpos)
            if blk != ref_block:
                hi = blk * self.block - first
                lo_i = max(0, hi - self.window)
                rx = np.where(mask[lo_i:hi], np.nan, hx[lo_i:hi])
                rl = hl[lo_i:hi] if load is not None else None
                # log units are relative already: an absolute floor keeps scale invariance
                floor = (self.rel_floor if self.log else
                         self.rel_floor * max(abs(float(np.nanmedian(rx))), 1e-12)
                         if np.isfinite(rx).any() else self.rel_floor)
                fit = (load_reference(rx, rl, floor)
                       if np.isfinite(rx).sum() >= self.min_ref else None)
                ref = [] if fit is None else fit
                ref_block = blk
            if ref:
                coef, (lscale, v_max, v_busy, s_busy, s_all) = np.asarray(ref[:-6]), ref[-6:-1]
                lb = hl[a:b] if load is not None else None
                pred = _predict(coef, lscale, lb, b - a)
                sc = np.full(b - a, s_all)
                z = (hx[a:b] - pred) / sc
                if lb is not None:
                    v = np.nan_to_num(lb / lscale, nan=0.0)
                    sc = np.where(v >= v_busy, s_busy, s_all)
                    # beyond the reference's load the fit extrapolates: no evidence either way
                    z = np.where(v > v_max, 0.0, (hx[a:b] - pred) / sc)
                z = np.nan_to_num(z, nan=0.0)
                s_cap = self.cap * self.h
                for i in range(b - a):
                    sp = min(max(0.0, sp + z[i] - self.k), s_cap)
                    sn = min(max(0.0, sn - z[i] - self.k), s_cap) if self.two_sided else 0.0
                    s = max(sp, sn)
                    j = a + i - st.x.size
                    score[j] = 1.0 - 2.0 ** (-((s / self.h) ** 2))
                    exp[j], scale_out[j] = pred[i], sc[i]
                    if s >= self.h:
                        flag[j], mask[a + i], run = True, True, run + 1
                        if run > self.max_run:  # a lasting shift is the new normal
                            mask[max(0, a + i - run + 1):a + i + 1] = False
                            sp = sn = 0.0
                            run = 0
                    else:
                        run = 0
            a = b
        tail = self.window + self.block
        self._state[uid] = _State(  # type: ignore[index]
            st.seen + n_new, int(ds_ns[-1]), hx[-tail:].copy(), hl[-tail:].copy(),
            mask[-tail:].copy(), sp, sn, run,
            float(load[-1]) if load is not None else float("nan"), ref_block, ref)
        band = self.h / max(1.0, np.sqrt(self.h)) * scale_out  # a single-point shift of sqrt(h) sigma
        tf = np.exp if self.log else (lambda v: v)
        return self._frame(uid, ds_ns, y, tf(exp), tf(exp - band), tf(exp + band), score, flag)

    def _frame(self, uid: str, ds_ns: np.ndarray, y: np.ndarray, expected: np.ndarray,
               lower: np.ndarray, upper: np.ndarray, score: np.ndarray, flag: np.ndarray
               ) -> pd.DataFrame:
        n = score.size
        return pd.DataFrame({
            "unique_id": pd.Series([uid] * n, dtype=str), "ds": to_utc(ds_ns), "y": y,
            "expected": expected, "lower": lower, "upper": upper, "score": score,
            "is_anomaly": flag,
            "kind": pd.Series(np.where(flag, "level_shift", None), dtype=object),
            "detector": pd.Series([self.name] * n, dtype=str),
        })[list(ANOMALY_COLUMNS)]

    def to_dict(self) -> dict[str, Any]:
        """Parameters, load pairing and per-series state as JSON-serialisable data."""
        def fl(a: np.ndarray) -> list[float | None]:
            return [None if not np.isfinite(v) else float(v) for v in a]
        state = None if self._state is None else {
            uid: {"seen": st.seen, "last_ds_ns": st.last_ds_ns, "x": fl(st.x),
                  "load": fl(st.load), "mask": [bool(v) for v in st.mask], "s_pos": st.s_pos,
                  "s_neg": st.s_neg, "run": st.run,
                  "last_load": None if not np.isfinite(st.last_load) else st.last_load,
                  "ref_block": st.ref_block, "ref": [float(v) for v in st.ref]}
            for uid, st in sorted(self._state.items())}
        return {"detector": self.name, "format": _FORMAT, "params": self._params(),
                "load": self.load, "targets": self.targets, "state": state}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a detector saved by :meth:`to_dict` (it scores identically).

        Raises:
            ModelError: ``d`` was not written by a ``ChangePoint`` of a known format.
        """
        if d.get("detector") != cls.name or d.get("format") != _FORMAT:
            raise ModelError(f"not a saved {cls.name} (format {_FORMAT}): "
                             f"detector={d.get('detector')!r}, format={d.get('format')!r}")
        det = cls(**d["params"], load=d["load"], targets=d["targets"])

        def arr(v: list) -> np.ndarray:
            return np.array([np.nan if a is None else a for a in v], dtype=float)
        if d["state"] is not None:
            det._state = {
                uid: _State(int(s["seen"]), int(s["last_ds_ns"]), arr(s["x"]), arr(s["load"]),
                            np.array(s["mask"], dtype=bool), float(s["s_pos"]),
                            float(s["s_neg"]), int(s["run"]),
                            np.nan if s["last_load"] is None else float(s["last_load"]),
                            int(s["ref_block"]), [float(v) for v in s["ref"]])
                for uid, s in d["state"].items()}
        return det
