"""Ratio features of a service and a robust online detector over them (kind ``ratio``).

A payment provider failing moves *failures / deposits* from 15 % to 60 %, a bot attack moves
*bets / odds requests* x5 and a DDoS collapses *bets / requests*, often while every single
volume still looks like an ordinary kickoff. Failure ratios barely move with load and are never
excused by events; errors per request (near capacity) and bets per request (at the final
whistle) do follow load, and a caller may let the fixture calendar excuse those
(``Debouncer(spike_kinds=("ratio",), is_traffic=...)``, as ``benchmarks/bench_incidents.py`` does).

Features (:class:`RatioSpec`, :func:`default_ratio_specs`): a numerator and a denominator
series (rates per second, turned into counts per step), summed over the last ``smooth`` points,
and compared on the log scale ``x = log((num + 1/2) / (den + 1/2))``.

Score (:func:`ratio_zscores`): for a point in block ``[b, b + block)`` (blocks of ``block``
points aligned on the series' positions) the reference is the last ``window`` points before
``b``: ``med`` the median of ``x``, and the spread from the median absolute count-weighted
residual ``MAD((x - med) * w)``, ``w = (1/num + 1/den) ** -1/2`` (the delta-method noise of a
log ratio of counts, so quiet nights and busy evenings share one noise model, and a failure
ratio jumping x5 is judged with the noise of the failures it now has). Then
``z = (x - med) / max(1.4826 * MAD / w, rel_floor)`` and the score is
``1 - 2 ** -((z / threshold) ** 2)`` (0.5 at ``|z| = threshold``). Points flagged as anomalies
are kept out of later references (the detector does not learn from them). Because a block only
uses data before it, batch scoring equals scoring one point at a time.

Example:
    >>> import numpy as np, pandas as pd
    >>> ds = pd.date_range("2026-01-01", periods=400, freq="min", tz="UTC")
    >>> rng = np.random.default_rng(0)
    >>> dep = np.full(400, 2.0); fail = rng.binomial(120, 0.15, 400) / 60.0
    >>> fail[300:] = rng.binomial(120, 0.7, 100) / 60.0
    >>> f = pd.concat([pd.DataFrame({"unique_id": "p:deposits_per_second", "ds": ds, "y": dep}),
    ...     pd.DataFrame({"unique_id": "p:deposit_failures_per_second", "ds": ds, "y": fail})])
    >>> out = RatioDetector().fit(f[f.ds < ds[200]]).score(f[f.ds >= ds[200]])
    >>> first = out.loc[out.is_anomaly, "ds"].min()  # the outage starts at ds[300]
    >>> bool(ds[300] <= first <= ds[305]), out["unique_id"].unique().tolist()
    (True, ['p:deposit_failure_ratio'])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from models._frames import anomaly_frame, median_step_ns, split_series, to_utc
from models.anomaly.seasonal_stats import anomaly_score
from models.errors import FrameError, NotFittedError, check_saved

__all__ = [
    "RatioDetector", "RatioSpec", "default_ratio_specs", "log_count_ratio", "ratio_frame",
    "ratio_zscores",
]

_FORMAT = 1
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class RatioSpec:
    """One ratio feature: ``numerator / denominator`` named ``name``.

    ``numerator_is_ratio``: the numerator series is already a proportion of the denominator
    (``error_ratio`` of ``requests_per_second``), so its count is ``ratio * denominator``.
    ``threshold``: this ratio's own alarm level in robust sigmas (``None``: the detector's).
    """

    name: str
    numerator: str
    denominator: str
    numerator_is_ratio: bool = False
    threshold: float | None = None


# Failures per attempt (deposits, logins) are binomial around a rate that neither load nor
# kickoffs move, so the count-aware noise model fits them and a 12-sigma level (needed for the
# ratios that do follow load) only delays them: a provider outage at 06:25, 15 % -> 70 % of 30
# deposits a minute, reached 10.8 sigma and was never flagged. Over 7 incident-free days of the
# simulator (seeds 1-5, 7, 11, 23) the largest failure-ratio z was 5.3.
FAILURE_RATIO_THRESHOLD = 8.0


def default_ratio_specs(unique_ids: Iterable[str], odds_service: str = "odds-api") -> list[RatioSpec]:
    """The ratios the simulator's metric catalogue supports, for every service in ``unique_ids``.

    Per service ``s``: ``s:deposit_failure_ratio``, ``s:login_failure_ratio``,
    ``s:bets_per_request``, ``s:errors_per_request`` and, when ``odds_service`` reports
    requests, ``s:bets_per_odds_request`` (bots bet without reading odds).

    Example:
        >>> [s.name for s in default_ratio_specs(["p:deposits_per_second",
        ...                                        "p:deposit_failures_per_second"])]
        ['p:deposit_failure_ratio']
    """
    ids = set(unique_ids)
    services = sorted({u.rsplit(":", 1)[0] for u in ids if ":" in u})
    failures = FAILURE_RATIO_THRESHOLD
    pairs = (("deposit_failure_ratio", "deposit_failures_per_second", "deposits_per_second", False,
              failures),
             ("login_failure_ratio", "login_failures_per_second", "logins_per_second", False,
              failures),
             ("bets_per_request", "bets_per_second", "requests_per_second", False, None),
             ("errors_per_request", "error_ratio", "requests_per_second", True, None))
    out = []
    odds = f"{odds_service}:requests_per_second"
    for s in services:
        for name, num, den, is_ratio, level in pairs:
            if f"{s}:{num}" in ids and f"{s}:{den}" in ids:
                out.append(RatioSpec(f"{s}:{name}", f"{s}:{num}", f"{s}:{den}", is_ratio, level))
        if s != odds_service and f"{s}:bets_per_second" in ids and odds in ids:
            out.append(RatioSpec(f"{s}:bets_per_odds_request", f"{s}:bets_per_second", odds))
    return out


def log_count_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``log((num + 1/2) / (den + 1/2))`` of counts: finite at zero counts (a quiet night's zero
    errors is a value), and the half keeps a ratio of few counts from swinging to infinity.

    Example:
        >>> log_count_ratio(np.array([0.0, 9.5]), np.array([0.5, 9.5])).round(3).tolist()
        [-0.693, 0.0]
    """
    with np.errstate(invalid="ignore"):
        return np.log((num + 0.5) / (den + 0.5))


def ratio_frame(frame: pd.DataFrame, specs: Iterable[RatioSpec]) -> pd.DataFrame:
    """Per-step counts of each ratio's numerator and denominator, aligned on ``ds``.

    Returns ``unique_id`` (the ratio name), ``ds``, ``num``, ``den`` (rates per second times the
    series' step in seconds: counts per step); timestamps missing from either side are dropped.
    """
    by_id = {s.unique_id: s for s in split_series(frame, who="ratio_frame")}
    parts = []
    for spec in specs:
        a, b = by_id.get(spec.numerator), by_id.get(spec.denominator)
        if a is None or b is None:
            continue
        common, ia, ib = np.intersect1d(a.ds_ns, b.ds_ns, assume_unique=True, return_indices=True)
        if common.size == 0:
            continue
        step_s = median_step_ns(b.ds_ns) / 1e9 if b.ds_ns.size > 1 else 60.0
        den = np.maximum(b.y[ib], 0.0) * step_s
        num = np.maximum(a.y[ia], 0.0) * (den if spec.numerator_is_ratio else step_s)
        parts.append(pd.DataFrame({"unique_id": spec.name, "ds": to_utc(common),
                                   "num": num, "den": den}))
    if not parts:
        return pd.DataFrame({"unique_id": pd.Series([], dtype=str), "ds": to_utc(np.empty(0)),
                             "num": np.empty(0), "den": np.empty(0)})
    return pd.concat(parts, ignore_index=True)


def _weight(x: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``1 / sd`` of a log count ratio up to a constant: ``(1/num + 1/den) ** -1/2``.

    The delta-method variance of ``log(num / den)`` for counts is ``1/num + 1/den``; ``num`` is
    recovered from ``x = log((num + 1/2) / (den + 1/2))``. A failure ratio jumping from 15 % to
    80 % has five times the failures, so its log ratio is far less noisy than the reference's:
    the spread follows the counts actually seen, not the denominator alone.
    """
    d = np.maximum(den, 0.0) + 0.5
    with np.errstate(over="ignore", invalid="ignore"):
        num = np.exp(x) * d
    w = 1.0 / np.sqrt(1.0 / np.maximum(num, 0.5) + 1.0 / d)
    return np.where(np.isfinite(w), w, np.sqrt(np.maximum(den, 1.0)))


def ratio_zscores(
    x: np.ndarray, n: np.ndarray, start: int, first_pos: int, *, window: int, block: int,
    threshold: float, rel_floor: float, min_count: float, min_ref: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Score ``x[start:]`` against the masked history before each block; masks hits in place.

    ``x``/``n`` are the log ratios and smoothed denominator counts of positions
    ``first_pos, first_pos + 1, ...`` (history first, NaN where masked). Returns
    ``z, med, scale, flagged`` for the scored points.
    """
    size = x.size - start
    z, med, scale = np.zeros(size), np.full(size, np.nan), np.full(size, np.nan)
    flagged = np.zeros(size, dtype=bool)
    a = start
    while a < x.size:
        gpos = first_pos + a
        b_start = gpos - gpos % block  # global block start
        b = min(x.size, a + (b_start + block - gpos))
        lo, hi = max(0, b_start - first_pos - window), b_start - first_pos
        ref_x, ref_n = x[max(lo, 0):max(hi, 0)], n[max(lo, 0):max(hi, 0)]
        ok = np.isfinite(ref_x)
        if ok.sum() >= min_ref:
            m = float(np.median(ref_x[ok]))
            mad = float(np.median(np.abs(ref_x[ok] - m) * _weight(ref_x[ok], ref_n[ok])))
            sl = slice(a - start, b - start)
            nn = n[a:b]
            sc = np.maximum(MAD_TO_SIGMA * mad / _weight(x[a:b], nn), rel_floor)
            zz = np.where(nn >= min_count, (x[a:b] - m) / sc, 0.0)
            zz = np.nan_to_num(zz, nan=0.0)
            hit = np.abs(zz) >= threshold
            z[sl], med[sl], scale[sl], flagged[sl] = zz, m, sc, hit
            x[a:b][hit] = np.nan
        a = b
    return z, med, scale, flagged


@dataclass
class _State:
    seen: int
    tail_num: np.ndarray  # the last smooth - 1 raw counts (for the rolling sums)
    tail_den: np.ndarray
    last_ds_ns: int
    x: np.ndarray  # masked log ratios of the last `window + block` points
    n: np.ndarray


class RatioDetector:
    """Robust online detector over service ratios (``Detector`` protocol, kind ``ratio``).

    Args:
        specs: the ratios; ``None`` derives them at ``fit`` with :func:`default_ratio_specs`.
        window: points of reference history (360 = 6 h at 1 minute).
        block: the reference is refreshed every ``block`` points.
        smooth: counts are summed over this many points before taking the ratio.
        threshold: ``|z|`` at which a point is an anomaly (score 0.5), for the ratios whose spec
            sets none (the default specs set ``FAILURE_RATIO_THRESHOLD`` for failure ratios).
        rel_floor: smallest spread of the log ratio (0.05: moves under ~5 % never alarm alone).
        min_count: a point whose smoothed denominator count is below this scores 0.
        min_ref: reference points needed before scoring (warm-up scores 0).

    ``score(frame)`` takes the *input* series (numerators and denominators) and returns one
    anomaly row per ratio point, ``unique_id`` the ratio name, ``y`` the smoothed ratio.
    """

    name = "ratio"

    def __init__(
        self, specs: Iterable[RatioSpec] | None = None, window: int = 360, block: int = 10,
        smooth: int = 3, threshold: float = 12.0, rel_floor: float = 0.05, min_count: float = 20.0,
        min_ref: int = 60,
    ) -> None:
        for label, v, low in (("window", window, 2), ("block", block, 1), ("smooth", smooth, 1),
                              ("min_ref", min_ref, 1)):
            if isinstance(v, bool) or int(v) != v or v < low:
                raise ValueError(f"{label} must be an integer >= {low}, got {v!r}")
        if not (np.isfinite(threshold) and threshold > 0):
            raise ValueError(f"threshold must be > 0, got {threshold!r}")
        if not (rel_floor > 0 and min_count >= 0):
            raise ValueError("rel_floor must be > 0 and min_count >= 0")
        self.specs = None if specs is None else list(specs)
        self.window, self.block, self.smooth = int(window), int(block), int(smooth)
        self.threshold, self.rel_floor = float(threshold), float(rel_floor)
        self.min_count, self.min_ref = float(min_count), int(min_ref)
        self._state: dict[str, _State] | None = None

    def _params(self) -> dict[str, Any]:
        return {"window": self.window, "block": self.block, "smooth": self.smooth,
                "threshold": self.threshold, "rel_floor": self.rel_floor,
                "min_count": self.min_count, "min_ref": self.min_ref}

    def __repr__(self) -> str:
        return "RatioDetector(" + ", ".join(f"{k}={v!r}" for k, v in self._params().items()) + ")"

    def fit(self, frame: pd.DataFrame) -> Self:
        """Score ``frame`` from scratch and keep the bounded reference of every ratio.

        Raises:
            FrameError: the frame breaks the contract or holds no ratio's two series.
        """
        if self.specs is None:
            if "unique_id" not in frame.columns:
                raise FrameError("RatioDetector.fit: missing column 'unique_id'")
            self.specs = default_ratio_specs(frame["unique_id"].astype(str).unique())
        if not self.specs:
            raise FrameError("RatioDetector.fit: no ratio has both its series in the frame; pass "
                             "specs=[RatioSpec(name, numerator, denominator)]")
        self._state = {}
        self._run(frame, learn=True)
        return self

    def score(self, frame: pd.DataFrame, *, learn: bool = True) -> pd.DataFrame:
        """Score the ratio points of ``frame`` (new points of the input series).

        Raises:
            NotFittedError: called before :meth:`fit`.
        """
        if self._state is None:
            raise NotFittedError("RatioDetector is not fitted: call fit(frame) before score()")
        return self._run(frame, learn=learn)

    def _run(self, frame: pd.DataFrame, *, learn: bool) -> pd.DataFrame:
        if self._state is None or self.specs is None:
            raise NotFittedError("RatioDetector is not fitted: call fit(frame) before score()")
        rf = ratio_frame(frame, self.specs)
        level = {s.name: self.threshold if s.threshold is None else s.threshold for s in self.specs}
        parts = []
        for uid, g in rf.groupby("unique_id", sort=True):
            st = self._state.get(str(uid))
            threshold = level[str(uid)]
            ds_ns = pd.DatetimeIndex(g["ds"]).as_unit("ns").asi8
            num, den = g["num"].to_numpy(), g["den"].to_numpy()
            if st is not None and ds_ns[0] <= st.last_ds_ns:
                keep = ds_ns > st.last_ds_ns  # already scored points are not scored again
                ds_ns, num, den = ds_ns[keep], num[keep], den[keep]
                if ds_ns.size == 0:
                    continue
            if st is None:
                st = _State(0, np.empty(0), np.empty(0), -1, np.empty(0), np.empty(0))
            rn = np.r_[st.tail_num, num]
            rd = np.r_[st.tail_den, den]
            sn = pd.Series(rn).rolling(self.smooth, min_periods=1).sum().to_numpy()[-num.size:]
            sd = pd.Series(rd).rolling(self.smooth, min_periods=1).sum().to_numpy()[-num.size:]
            xn = log_count_ratio(sn, sd)
            x, n = np.r_[st.x, xn], np.r_[st.n, sd]
            z, med, sc, flagged = ratio_zscores(
                x, n, st.x.size, st.seen - st.x.size, window=self.window, block=self.block,
                threshold=threshold, rel_floor=self.rel_floor, min_count=self.min_count,
                min_ref=self.min_ref)
            parts.append(self._part(str(uid), ds_ns, np.exp(xn), z, med, sc, flagged, threshold))
            if learn:
                k = self.smooth - 1
                self._state[str(uid)] = _State(
                    st.seen + num.size, rn[rn.size - k:] if k else np.empty(0),
                    rd[rd.size - k:] if k else np.empty(0), int(ds_ns[-1]),
                    # a block may start up to block - 1 points back: keep window + block
                    x[-(self.window + self.block):].copy(), n[-(self.window + self.block):].copy())
        return anomaly_frame(parts, self.name)

    def _part(self, uid: str, ds_ns: np.ndarray, y: np.ndarray, z: np.ndarray, med: np.ndarray,
              sc: np.ndarray, flagged: np.ndarray, threshold: float) -> dict[str, Any]:
        band = threshold * sc
        return {"unique_id": uid, "ds_ns": ds_ns, "y": y, "expected": np.exp(med),
                "lower": np.exp(med - band), "upper": np.exp(med + band),
                "score": anomaly_score(z, threshold), "is_anomaly": flagged,
                "kind": np.where(flagged, "ratio", None)}

    def to_dict(self) -> dict[str, Any]:
        """Parameters, specs and per-ratio state as JSON-serialisable data (NaN as ``None``)."""
        def fl(a: np.ndarray) -> list[float | None]:
            return [None if not np.isfinite(v) else float(v) for v in a]
        state = None if self._state is None else {
            uid: {"seen": st.seen, "tail_num": fl(st.tail_num), "tail_den": fl(st.tail_den),
                  "last_ds_ns": st.last_ds_ns, "x": fl(st.x), "n": fl(st.n)}
            for uid, st in sorted(self._state.items())}
        specs = None if self.specs is None else [
            [s.name, s.numerator, s.denominator, s.numerator_is_ratio, s.threshold]
            for s in self.specs]
        return {"detector": self.name, "format": _FORMAT, "params": self._params(),
                "specs": specs, "state": state}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a detector saved by :meth:`to_dict` (it scores identically).

        Raises:
            ModelError: ``d`` was not written by a ``RatioDetector`` of a known format.
        """
        check_saved(d, key="detector", name=cls.name, fmt=_FORMAT)
        specs = None if d["specs"] is None else [RatioSpec(*s) for s in d["specs"]]
        det = cls(specs=specs, **d["params"])

        def arr(v: list) -> np.ndarray:
            return np.array([np.nan if a is None else a for a in v], dtype=float)
        if d["state"] is not None:
            det._state = {uid: _State(int(s["seen"]), arr(s["tail_num"]), arr(s["tail_den"]),
                                      int(s["last_ds_ns"]), arr(s["x"]), arr(s["n"]))
                          for uid, s in d["state"].items()}
        return det
