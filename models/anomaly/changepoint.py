"""Change-point detector: a two-sided CUSUM on a load-adjusted, robustly standardised residual.

For slow drifts and level shifts (a p95 latency ramping up over hours, a rate stepping down)
that never leave a series' ordinary range point by point. Per series:

1. ``x = log(y)`` (``log=True``): a multiplicative drift is a shift, and scaling ``y`` leaves
   every score unchanged. An error ratio (``ratio_of_load=True``) is scored as
   ``log((y n + 1/2) / (n + 1/2))``, ``n`` the requests per point: zero errors is a value.
2. A reference refreshed every ``block`` points from the previous ``window`` points (points
   inside an alarm are left out, so the detector does not learn from anomalies): with *load*
   series (latency follows utilisation: the p95 of a service rises at every kickoff), a least
   squares fit ``x ~ 1 + sum_j (v_j + v_j^2)``, ``v_j = load_j / median(load_j)``
   (:func:`~models.anomaly.load_model.load_reference`), else the median; the scale is the MAD
   of the reference residuals (floored at ``rel_floor``) or, with ``count_scale=True``, a
   spread ``a + b / sqrt(requests per point + 1)`` fitted on them
   (:func:`~models.anomaly.load_model.count_scale_fit`: a p95 from few requests is noisier).
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
alarm on the slow case within 5 minutes without alarming on noise all day
(``benchmarks/bench_incidents.py`` prints this bound per simulated incident).

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd

from models._frames import anomaly_frame, median_step_ns, split_series
from models.anomaly.load_model import (
    count_scale,
    count_scale_fit,
    latency_load_series,
    load_reference,
    predict_load,
    unpack_reference,
)
from models.anomaly.ratios import log_count_ratio
from models.errors import FrameError, ModelError, NotFittedError

__all__ = ["ChangePoint", "cusum", "latency_load_series", "load_reference"]

_FORMAT = 2
_READS = (1, 2)  # format 1: one load per series, one spread; it still loads

LoadMap = Mapping[str, str | Sequence[str]]
LoadRule = Callable[[list[str]], Mapping[str, str | Sequence[str]]]


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


def _loads(mapping: LoadMap) -> dict[str, tuple[str, ...]]:
    return {u: (v,) if isinstance(v, str) else tuple(v) for u, v in mapping.items()}


@dataclass
class _State:
    seen: int
    last_ds_ns: int
    x: np.ndarray  # last window + block transformed values (NaN: gap)
    load: np.ndarray  # their loads, points x load series (0 columns: no load)
    mask: np.ndarray  # points inside an alarm run (kept out of the reference)
    s_pos: float = 0.0
    s_neg: float = 0.0
    run: int = 0
    last_load: np.ndarray = field(default_factory=lambda: np.empty(0))  # per load series
    ref_block: int = -1
    ref: list[float] = field(default_factory=list)  # see load_model.load_reference
    sref: list[float] = field(default_factory=list)  # count spread (empty: one spread)
    step_s: float = float("nan")  # seconds per point (request rates -> counts per point)


class ChangePoint:
    """Two-sided CUSUM change-point detector (``Detector`` protocol, kind ``level_shift``).

    Args:
        window: points of reference history (4320 = three days at 1 minute: the reference must
            have seen evening peaks of load).
        block: the reference is refreshed every ``block`` points.
        k: the CUSUM allowance in standardised units (shifts below ``k`` sigma are ignored).
        h: the CUSUM decision level (score 0.5).
        rel_floor: smallest residual scale (log units with ``log=True``: 1 %).
        min_ref: reference points needed before scoring (warm-up scores 0).
        max_run: an alarm run longer than this many points is accepted as the new level.
        log: score ``log(y)`` (non-positive values are gaps); else ``y`` itself.
        load: ``unique_id -> load series id`` or a tuple of them, the first being the series'
            own requests (``None``: :func:`latency_load_series`; a callable: a rule applied to
            the ids seen by :meth:`fit`); load series are not scored unless ``targets`` says so.
        targets: which series to score (``None``: every series that is not only a load).
        two_sided: also alarm downward shifts (``False``: only upward, e.g. for latency, where
            the recovery after an incident is no news).
        cap: the CUSUM sums are capped at ``cap * h``. An hour-long incident would otherwise
            pile up hundreds of units that drain at only ``k`` per point after it ends, and the
            series would keep alarming for hours after recovery; capped, the alarm clears within
            ``(cap - 1) * h / k`` points of the recovery (4 with the defaults).
        count_scale: standardise by a spread that follows the first load's request count per
            point (a p95 of few requests is noisier) instead of one spread per reference.
        ratio_of_load: each target is a proportion of its first load series (``error_ratio``
            of ``requests_per_second``), scored on the log of its count-smoothed value (step 1
            above; implies the log scale). A point without a request count takes the last one
            seen (as every load does); before any is seen it is a gap.
            The score then rests on counts (ten errors in a thousand requests are more evidence
            than one in a hundred), so scaling ``y`` is not neutral as it is for a latency.
    """

    name = "changepoint"

    def __init__(
        self, window: int = 4320, block: int = 60, k: float = 1.0, h: float = 8.0,
        rel_floor: float = 0.01, min_ref: int = 120, max_run: int = 360, log: bool = True,
        load: LoadMap | LoadRule | None = None, targets: list[str] | None = None,
        two_sided: bool = True, cap: float = 1.5, count_scale: bool = False,
        ratio_of_load: bool = False,
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
        if ratio_of_load and not log:
            raise ValueError("ratio_of_load scores the log of a proportion: it needs log=True")
        self.cap, self.count_scale = float(cap), bool(count_scale)
        self.ratio_of_load = bool(ratio_of_load)
        self._load_rule = load
        self.load: dict[str, tuple[str, ...]] | None = (
            _loads(load) if isinstance(load, Mapping) else None)
        self.targets = None if targets is None else list(targets)
        self._state: dict[str, _State] | None = None

    def _params(self) -> dict[str, Any]:
        return {"window": self.window, "block": self.block, "k": self.k, "h": self.h,
                "rel_floor": self.rel_floor, "min_ref": self.min_ref, "max_run": self.max_run,
                "log": self.log, "two_sided": self.two_sided, "cap": self.cap,
                "count_scale": self.count_scale, "ratio_of_load": self.ratio_of_load}

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
            self.load = _loads(rule(ids))
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
        loads = {v for vs in self.load.values() for v in vs}
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
            names = self.load.get(uid, ())
            load = np.full((ds_ns.size, len(names)), np.nan)
            for j, name in enumerate(names):
                lo = series.get(name)
                if lo is not None:
                    _, ia, ib = np.intersect1d(ds_ns, lo.ds_ns, assume_unique=True,
                                               return_indices=True)
                    load[ia, j] = lo.y[ib]
            if st is None:
                st = _State(0, -1, np.empty(0), np.empty((0, len(names))),
                            np.empty(0, dtype=bool), last_load=np.full(len(names), np.nan))
            if names:
                load = pd.DataFrame(np.vstack([st.last_load, load])).ffill().to_numpy()[1:]
                own = series.get(names[0])
                if not np.isfinite(st.step_s) and own is not None and own.ds_ns.size > 1:
                    st.step_s = median_step_ns(own.ds_ns) / 1e9
            if self.ratio_of_load:
                # requests per point (the last known count carries forward; none yet: a gap)
                n = load[:, 0] * self._step(st) if names else np.full(y.size, np.nan)
                x = log_count_ratio(np.clip(y, 0.0, None) * n, n)
                x = np.where(np.isfinite(y) & (n >= 0), x, np.nan)
            elif self.log:
                with np.errstate(divide="ignore", invalid="ignore"):
                    x = np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), np.nan)
            else:
                x = y.astype(float)
            parts.append(self._score_series(uid, st, ds_ns, y, x, load))
        return anomaly_frame(parts, self.name)

    def _reference(self, st: _State, rx: np.ndarray, rl: np.ndarray | None
                   ) -> tuple[list[float], list[float]]:
        # log units are relative already: an absolute floor keeps scale invariance
        floor = (self.rel_floor if self.log else
                 self.rel_floor * max(abs(float(np.nanmedian(rx))), 1e-12)
                 if np.isfinite(rx).any() else self.rel_floor)
        fit = load_reference(rx, rl, floor) if np.isfinite(rx).sum() >= self.min_ref else None
        if fit is None:
            return [], []
        sref: list[float] = []
        if rl is not None and self.count_scale:
            res = rx - predict_load(unpack_reference(fit, rl.shape[1]), rl)
            sref = count_scale_fit(res, rl[:, 0] * self._step(st)) or []
        return fit, sref

    def _standardise(self, st: _State, ref: list[float], sref: list[float], xb: np.ndarray,
                     lb: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``z, expected, spread`` of the points ``xb`` (loads ``lb``) against the reference."""
        r = unpack_reference(ref, 0 if lb is None else lb.shape[1])
        pred = predict_load(r, lb, xb.size)
        sc = np.full(xb.size, r.scale)
        if lb is None:
            return np.nan_to_num((xb - pred) / sc, nan=0.0), pred, sc
        v = np.nan_to_num(lb[:, 0] / r.load_scale[0], nan=0.0)
        if sref:
            # the spread of a p95 from this many requests (unknown count: the overall spread)
            sc = count_scale(sref, lb[:, 0] * self._step(st))
            sc = np.maximum(np.where(np.isfinite(sc), sc, r.scale),
                            self.rel_floor if self.log else 0.0)
            # peaks: the fit is least sure there (the busy spread is at least the overall one)
            sc = np.where(v >= r.v_busy, np.maximum(sc, r.scale_busy), sc)
        else:
            sc = np.where(v >= r.v_busy, r.scale_busy, r.scale)
        # beyond the reference's load the fit extrapolates: no evidence either way
        beyond = (np.nan_to_num(lb / r.load_scale, nan=0.0) > r.v_max).any(axis=1)
        z = np.where(beyond, 0.0, (xb - pred) / sc)
        return np.nan_to_num(z, nan=0.0), pred, sc

    def _score_series(self, uid: str, st: _State, ds_ns: np.ndarray, y: np.ndarray,
                      x: np.ndarray, load: np.ndarray) -> dict[str, Any]:
        n_new, has_load = x.size, load.shape[1] > 0
        hx = np.r_[st.x, x]
        hl = np.vstack([st.load, load])
        mask = np.r_[st.mask, np.zeros(n_new, dtype=bool)]
        first = st.seen - st.x.size  # global position of hx[0]
        score, exp, scale_out, flag = (np.zeros(n_new), np.full(n_new, np.nan),
                                       np.full(n_new, np.nan), np.zeros(n_new, dtype=bool))
        sp, sn, run = st.s_pos, st.s_neg, st.run
        ref_block, ref, sref = st.ref_block, list(st.ref), list(st.sref)
        s_cap = self.cap * self.h
        a = st.x.size
        while a < hx.size:
            gpos = first + a
            blk = gpos // self.block
            b = min(hx.size, a + (blk + 1) * self.block - gpos)
            if blk != ref_block:
                hi = blk * self.block - first
                lo_i = max(0, hi - self.window)
                rx = np.where(mask[lo_i:hi], np.nan, hx[lo_i:hi])
                ref, sref = self._reference(st, rx, hl[lo_i:hi] if has_load else None)
                ref_block = blk
            if ref:
                z, pred, sc = self._standardise(st, ref, sref, hx[a:b],
                                                hl[a:b] if has_load else None)
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
            mask[-tail:].copy(), sp, sn, run, load[-1].copy(), ref_block, ref, sref, st.step_s)
        band = self.h / max(1.0, np.sqrt(self.h)) * scale_out  # a single-point shift of sqrt(h) sigma
        tf = np.exp if self.log else (lambda v: v)
        return {"unique_id": uid, "ds_ns": ds_ns, "y": y, "expected": tf(exp),
                "lower": tf(exp - band), "upper": tf(exp + band), "score": score,
                "is_anomaly": flag, "kind": np.where(flag, "level_shift", None)}

    @staticmethod
    def _step(st: _State) -> float:
        return st.step_s if np.isfinite(st.step_s) else 60.0

    def to_dict(self) -> dict[str, Any]:
        """Parameters, load pairing and per-series state as JSON-serialisable data."""
        def fl(a: np.ndarray) -> list[float | None]:
            return [None if not np.isfinite(v) else float(v) for v in a]
        state = None if self._state is None else {
            uid: {"seen": st.seen, "last_ds_ns": st.last_ds_ns, "x": fl(st.x),
                  "load": [fl(row) for row in st.load], "mask": [bool(v) for v in st.mask],
                  "s_pos": st.s_pos, "s_neg": st.s_neg, "run": st.run,
                  "last_load": fl(st.last_load), "ref_block": st.ref_block,
                  "ref": [float(v) for v in st.ref], "sref": [float(v) for v in st.sref],
                  "step_s": None if not np.isfinite(st.step_s) else st.step_s}
            for uid, st in sorted(self._state.items())}
        load = None if self.load is None else {u: list(v) for u, v in self.load.items()}
        return {"detector": self.name, "format": _FORMAT, "params": self._params(),
                "load": load, "targets": self.targets, "state": state}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a detector saved by :meth:`to_dict` (it scores identically).

        Reads format 1 (one load per series, a scalar ``last_load``) as well.

        Raises:
            ModelError: ``d`` was not written by a ``ChangePoint`` of a known format.
        """
        if d.get("detector") != cls.name or d.get("format") not in _READS:
            raise ModelError(f"not a saved {cls.name} (formats {list(_READS)}): "
                             f"detector={d.get('detector')!r}, format={d.get('format')!r}")
        det = cls(**d["params"], load=d["load"], targets=d["targets"])

        def arr(v: Any) -> np.ndarray:
            return np.array([np.nan if a is None else a for a in v], dtype=float)
        if d["state"] is not None:
            assert det.load is not None  # a saved state always has its pairing
            det._state = {}
            for uid, s in d["state"].items():
                k = len(det.load.get(uid, ()))
                if d["format"] == 1:  # 1-D loads (NaN without one), scalar last load
                    load = arr(s["load"]).reshape(-1, 1)[:, :k]
                    last = arr([s["last_load"]])[:k]
                else:
                    load = np.array([arr(row) for row in s["load"]],
                                    dtype=float).reshape(len(s["load"]), k)
                    last = arr(s["last_load"])
                det._state[uid] = _State(
                    int(s["seen"]), int(s["last_ds_ns"]), arr(s["x"]), load,
                    np.array(s["mask"], dtype=bool), float(s["s_pos"]), float(s["s_neg"]),
                    int(s["run"]), last, int(s["ref_block"]), [float(v) for v in s["ref"]],
                    [float(v) for v in s.get("sref", [])],
                    np.nan if s.get("step_s") is None else float(s["step_s"]))
        return det
