"""Multivariate detector: an IsolationForest over each service's rates and ratios.

A DDoS sends requests x50 while bets stay flat; a payment provider fails and failures/deposits
goes from 0.5 % to 9 %. Each single series may still sit inside its daily range; the *joint*
picture does not. Per service (the part of ``unique_id`` before ``:``) the features
(:class:`FeatureSpec`, :func:`default_feature_specs`) are, smoothed over the last ``smooth``
points: the log ratios of :func:`~models.anomaly.ratios.default_ratio_specs` (failures per
deposit or login, bets per request and per odds request, errors per request), stake per bet
(bots bet small), the log of the service's requests (its load) and the log of its p95 latency
(:mod:`models.anomaly.service_features`). Each feature is standardised by the median and MAD of
the training rows, so scaling a series (seconds to milliseconds, a service twice as big) leaves
every score unchanged.

Two views are scored, each relative to the training rows (:func:`isolation_scores`):

* ``u_if``: the forest's anomaly score ``s`` (scikit-learn's ``-score_samples``: short average
  path = isolated) beyond the largest training score, in units of that maximum's distance to
  the median training score. It sees *combinations* no training row had.
* ``u_hull``: how far the most extreme ratio lies beyond its training range, in units of that
  range (only in the directions :class:`FeatureSpec` ``hull`` names, divided by its ``slack``). A forest splits only inside the training range, so a point beyond it shares the
  leaves of the training extremes and cannot score higher than them however far out it is;
  ``u_hull`` ranks those.

The score is ``1 - 2 ** -r`` with ``r = max(u_if / if_half, u_hull / hull_half)`` (0 inside
everything seen, 0.5 at ``r = 1``); ``kind`` is ``ratio`` when the most extreme feature is a
ratio, else ``spike``/``drop`` by its direction. One row per service and timestamp:
``unique_id = "{service}:isolation"``, ``y`` the forest score ``s``.

What does the catching, measured: mostly ``u_hull``. Both injected cases of
``tests/test_models_isolation.py`` (requests x50 with flat bets; failures 0.5 % -> 9 %, each at
an hour when the single series stays inside its daily range) cross through ``u_hull`` alone.
In the first 5 minutes of 140 simulator incidents (seeds 7, 11, 23 of
``benchmarks/bench_incidents.py``) ``u_hull`` reached 1.5-11 on bot attacks and DDoS and
0.27-0.72 on payment outages, while ``u_if`` passed ``if_half`` once (a DDoS, 0.43) and stayed
under 0.13 on every bot attack and payment outage. A forest's score saturates: a row beyond the
range, or in an empty corner of it, is isolated about as fast as the most isolated training
rows, and clean weeks already reach ``u_if`` 0.28 (an evening's p95 at a 4 am load reached
0.2-0.3). The forest stays as the joint view, set above every clean week measured.

Training follows the live loop: every ``refit`` rows a new forest is fitted (``random_state``
fixed: the same rows give the same forest) on the previous ``window`` rows, leaving out rows it
flagged, so it never learns from anomalies (and rows far out on a hull feature: the warm-up may
hold an incident nobody flagged). When too few rows are left (an outage longer than the
window) the previous forest stays. Scoring is causal: a row's score uses the forest of its
block (fitted on earlier rows) and the rolling sums up to it; batch equals online. The state
per service is the last ``window + refit`` feature rows and flags and the current forest's
training rows, from which :meth:`IsolationDetector.from_dict` refits it.

Example:
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> ds = pd.date_range("2026-01-01", periods=3000, freq="min", tz="UTC")
    >>> dep = rng.poisson(600, ds.size) / 60.0
    >>> fail = rng.binomial((dep * 60).astype(int), 0.005) / 60.0
    >>> fail[2900:] = rng.binomial((dep[2900:] * 60).astype(int), 0.09) / 60.0  # 0.5 % -> 9 %
    >>> f = pd.concat([pd.DataFrame({"unique_id": "pay:deposits_per_second", "ds": ds, "y": dep}),
    ...     pd.DataFrame({"unique_id": "pay:deposit_failures_per_second", "ds": ds, "y": fail})])
    >>> det = IsolationDetector(refit=1440, window=2880).fit(f[f.ds < ds[2880]])
    >>> out = det.score(f[f.ds >= ds[2880]])
    >>> first = out.loc[out.is_anomaly, "ds"].min()
    >>> bool(ds[2900] <= first <= ds[2902]), out.unique_id.unique().tolist()
    (True, ['pay:isolation'])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from models._frames import anomaly_frame, split_series
from models.anomaly.seasonal_stats import MAD_TO_SIGMA
from models.anomaly.service_features import (
    FeatureSpec,
    default_feature_specs,
    feature_floors,
    feature_rows,
    hull_weights,
)
from models.errors import FrameError, NotFittedError, check_saved

__all__ = ["FeatureSpec", "IsolationDetector", "default_feature_specs", "feature_rows",
           "isolation_scores"]

_FORMAT = 1
_MAD_FLOOR = 0.01  # log units: features moving less than ~1 % are flat


@dataclass
class _Model:
    """One block's forest and the training statistics it is calibrated with."""

    forest: IsolationForest
    med: np.ndarray  # per feature: training median and robust spread
    mad: np.ndarray
    z_lo: np.ndarray  # per feature: training range of the standardised feature
    z_hi: np.ndarray
    s_med: float  # training forest scores: median and maximum
    s_hi: float
    s_lo: float


def isolation_scores(model: _Model, feats: np.ndarray, up: np.ndarray, down: np.ndarray
                     ) -> tuple[np.ndarray, ...]:
    """``s, u_if, u_hull, top, sign`` of feature rows against one block's model.

    ``up``/``down`` (per feature: 0, or ``1 / slack``) weigh the excursions beyond the range
    in ``u_hull``. ``top`` is the feature of the largest counted excess (or of the largest ``|z|``
    when none), ``sign`` its direction. Missing features count as the training median.
    """
    z = (feats - model.med) / model.mad
    z = np.where(np.isfinite(z), z, 0.0)
    s = -model.forest.score_samples(z)
    u_if = (s - model.s_hi) / max(model.s_hi - model.s_med, 1e-3)
    width = np.maximum(model.z_hi - model.z_lo, 1.0)
    excess = np.maximum(up * (z - model.z_hi), down * (model.z_lo - z)) / width
    u_hull = excess.max(axis=1)
    top = np.where(u_hull > 0, excess.argmax(axis=1), np.abs(z).argmax(axis=1))
    sign = np.sign(z[np.arange(z.shape[0]), top])
    return s, u_if, u_hull, top, sign


@dataclass
class _Group:
    """Per-service state: columns, floors, the last rows, and the current block's model."""

    columns: list[str]
    floors: dict[str, float]
    seen: int = 0
    last_ds_ns: int = -1
    tail: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))  # last smooth-1 raw rows
    feats: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))  # last window + refit
    flags: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    block: int = -1
    train: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))  # the model's rows
    model: _Model | None = None


class IsolationDetector:
    """IsolationForest over per-service rates and ratios (``Detector`` protocol).

    Args:
        specs: the features; ``None`` derives them at ``fit`` (:func:`default_feature_specs`).
        window: training rows of each forest (4320 = three days at 1 minute: evenings,
            kickoffs and quiet nights all in).
        refit: a new forest every ``refit`` rows (1440: daily), on the previous ``window``
            rows minus the flagged ones.
        smooth: rows summed before taking a ratio (counts of a quiet minute are noisy).
        if_half, hull_half: ``u_if`` and ``u_hull`` at which a row scores 0.5 (over 7 x 7
            simulated days without incidents, seeds 7, 11, 23 and 31-34, the largest were 0.28
            and 0.33; an alarm takes two hits in three rows).
        n_estimators, max_samples: the forest's size (scikit-learn's parameters).
        min_ref: training rows needed before a service is scored (warm-up scores 0).
        trim: training rows with a hull feature beyond this many robust sigmas of its median
            are left out (unflagged incidents in the warm-up).
        random_state: the forests' seed (scores are deterministic).

    ``score(frame)`` takes the input series and returns one row per service and timestamp.
    """

    name = "isolation"

    def __init__(
        self, specs: Iterable[FeatureSpec] | None = None, window: int = 4320, refit: int = 1440,
        smooth: int = 3, if_half: float = 0.35, hull_half: float = 0.35,
        n_estimators: int = 100,
        max_samples: int = 256, min_ref: int = 720, trim: float = 6.0, random_state: int = 0,
    ) -> None:
        for label, v, low in (("window", window, 10), ("refit", refit, 1), ("smooth", smooth, 1),
                              ("n_estimators", n_estimators, 1), ("max_samples", max_samples, 2),
                              ("min_ref", min_ref, 10), ("random_state", random_state, 0)):
            if isinstance(v, bool) or int(v) != v or v < low:
                raise ValueError(f"{label} must be an integer >= {low}, got {v!r}")
        for label, h in (("if_half", if_half), ("hull_half", hull_half), ("trim", trim)):
            if not (np.isfinite(h) and h > 0):
                raise ValueError(f"{label} must be > 0, got {h!r}")
        self.specs = None if specs is None else list(specs)
        self.window, self.refit, self.smooth = int(window), int(refit), int(smooth)
        self.if_half, self.hull_half = float(if_half), float(hull_half)
        self.n_estimators, self.max_samples = int(n_estimators), int(max_samples)
        self.min_ref, self.random_state, self.trim = int(min_ref), int(random_state), float(trim)
        self._groups: dict[str, _Group] | None = None

    def _params(self) -> dict[str, Any]:
        return {"window": self.window, "refit": self.refit, "smooth": self.smooth,
                "if_half": self.if_half, "hull_half": self.hull_half,
                "n_estimators": self.n_estimators, "max_samples": self.max_samples,
                "min_ref": self.min_ref, "trim": self.trim, "random_state": self.random_state}

    def __repr__(self) -> str:
        return ("IsolationDetector(" + ", ".join(f"{k}={v!r}" for k, v in self._params().items())
                + ")")

    def _by_service(self) -> dict[str, list[FeatureSpec]]:
        out: dict[str, list[FeatureSpec]] = {}
        for sp in self.specs or []:
            out.setdefault(sp.service, []).append(sp)
        return out

    def fit(self, frame: pd.DataFrame) -> Self:
        """Score ``frame`` from scratch (training forests as the live loop would).

        Raises:
            FrameError: the frame breaks the contract or supports no feature.
        """
        if "unique_id" not in frame.columns:
            raise FrameError("IsolationDetector.fit: missing column 'unique_id'")
        if self.specs is None:
            self.specs = default_feature_specs(frame["unique_id"].astype(str).unique())
        if not self.specs:
            raise FrameError("IsolationDetector.fit: no feature has its series in the frame; "
                             "pass specs=[FeatureSpec(name, numerator, denominator)]")
        self._groups = {}
        self._run(frame, who="IsolationDetector.fit", fitting=True)
        return self

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Score the new rows of ``frame`` (one per service and timestamp).

        Raises:
            NotFittedError: called before :meth:`fit`.
        """
        if self._groups is None:
            raise NotFittedError("IsolationDetector is not fitted: call fit(frame) before score()")
        return self._run(frame, who="IsolationDetector.score", fitting=False)

    def _run(self, frame: pd.DataFrame, *, who: str, fitting: bool) -> pd.DataFrame:
        assert self._groups is not None
        series = {s.unique_id: s for s in split_series(frame, who=who)}
        parts = []
        for svc, specs in sorted(self._by_service().items()):
            columns = sorted({c for sp in specs for c in (sp.numerator, sp.denominator) if c})
            grp = self._groups.get(svc)
            after = grp.last_ds_ns if grp is not None else np.iinfo(np.int64).min
            present = [series[c] for c in columns if c in series]
            if not present:
                continue
            ds_ns = np.unique(np.concatenate([s.ds_ns[s.ds_ns > after] for s in present]))
            if ds_ns.size == 0:
                continue
            raw = np.full((ds_ns.size, len(columns)), np.nan)
            for i, c in enumerate(columns):
                s = series.get(c)
                if s is not None:
                    _, ia, ib = np.intersect1d(ds_ns, s.ds_ns, assume_unique=True,
                                               return_indices=True)
                    raw[ia, i] = s.y[ib]
            if grp is None:
                if not fitting:
                    continue  # a service first seen after fit: the next fit takes it in
                grp = _Group(columns, feature_floors(raw, columns, specs),
                             tail=np.empty((0, len(columns))),
                             feats=np.empty((0, len(specs))), train=np.empty((0, len(specs))))
                self._groups[svc] = grp
            parts.append(self._score_group(svc, grp, specs, ds_ns, raw))
        return anomaly_frame(parts, self.name)

    def _train(self, rows: np.ndarray, weight: np.ndarray) -> _Model | None:
        """A forest and its calibration from training ``rows`` (``None``: too few rows).

        Rows with a hull feature beyond ``trim`` robust sigmas (times its slack: ``weight`` is
        ``1 / slack``, 0 outside the hull) are left out too: the warm-up may hold an incident
        nobody flagged, and a forest that learned a payment outage would never flag the next.
        """
        ok = rows[np.isfinite(rows).any(axis=1)]
        if ok.shape[0] < self.min_ref:
            return None
        med = np.nanmedian(ok, axis=0)
        med = np.where(np.isfinite(med), med, 0.0)
        mad = MAD_TO_SIGMA * np.nanmedian(np.abs(ok - med), axis=0)
        mad = np.maximum(np.where(np.isfinite(mad), mad, 0.0), _MAD_FLOOR)
        z = np.where(np.isfinite(ok), (ok - med) / mad, 0.0)
        z = z[(np.abs(z) * weight <= self.trim).all(axis=1)]
        if z.shape[0] < self.min_ref:
            return None
        forest = IsolationForest(n_estimators=self.n_estimators,
                                 max_samples=min(self.max_samples, z.shape[0]),
                                 random_state=self.random_state).fit(z)
        s = -forest.score_samples(z)
        return _Model(forest, med, mad, z.min(axis=0), z.max(axis=0), float(np.median(s)),
                      float(s.max()), float(s.min()))

    def _score_group(self, svc: str, grp: _Group, specs: list[FeatureSpec], ds_ns: np.ndarray,
                     raw: np.ndarray) -> dict[str, Any]:
        n_new, k = ds_ns.size, self.smooth - 1
        feats_new = feature_rows(np.vstack([grp.tail, raw]), grp.columns, specs, self.smooth,
                                 grp.floors)[grp.tail.shape[0]:]
        feats = np.vstack([grp.feats, feats_new])
        flags = np.r_[grp.flags, np.zeros(n_new, dtype=bool)]
        first = grp.seen - grp.feats.shape[0]  # global position of feats[0]
        s_out, exp, lo, hi = (np.full(n_new, np.nan) for _ in range(4))
        score, kind = np.zeros(n_new), np.full(n_new, None, dtype=object)
        flag = np.zeros(n_new, dtype=bool)
        up, down = hull_weights(specs)
        a = grp.feats.shape[0]
        while a < feats.shape[0]:
            gpos = first + a
            blk = gpos // self.refit
            b = min(feats.shape[0], a + (blk + 1) * self.refit - gpos)
            if blk != grp.block:
                end = blk * self.refit - first
                keep = slice(max(0, end - self.window), max(end, 0))
                rows = feats[keep][~flags[keep]]
                model = self._train(rows, np.maximum(up, down))
                if model is not None:  # else too few clean rows (a long outage): keep the last
                    grp.model, grp.train = model, rows
                grp.block = blk
            m = grp.model
            if m is not None:
                s, u_if, u_hull, top, sign = isolation_scores(m, feats[a:b], up, down)
                r = np.maximum(u_if / self.if_half, u_hull / self.hull_half)
                sl = slice(a - grp.feats.shape[0], b - grp.feats.shape[0])
                score[sl] = np.where(r > 0, 1.0 - 2.0 ** (-np.maximum(r, 0.0)), 0.0)
                hit = r >= 1.0
                flags[a:b], flag[sl] = hit, hit
                is_ratio = np.array([specs[t].is_ratio for t in top], dtype=bool)
                label = np.where(is_ratio, "ratio", np.where(sign < 0, "drop", "spike"))
                kind[sl] = [str(v) if h else None for v, h in zip(label, hit, strict=True)]
                s_out[sl], exp[sl], lo[sl] = s, m.s_med, min(m.s_lo, m.s_med)
                hi[sl] = m.s_hi + self.if_half * max(m.s_hi - m.s_med, 1e-3)
            a = b
        tail = self.window + self.refit
        grp.seen += n_new
        grp.last_ds_ns = int(ds_ns[-1])
        grp.tail = np.vstack([grp.tail, raw])[-k:] if k else np.empty((0, raw.shape[1]))
        grp.feats, grp.flags = feats[-tail:].copy(), flags[-tail:].copy()
        y = np.where(np.isfinite(s_out), s_out, 0.0)
        return {"unique_id": f"{svc}:isolation", "ds_ns": ds_ns, "y": y, "expected": exp,
                "lower": lo, "upper": hi, "score": score, "is_anomaly": flag, "kind": kind}

    def to_dict(self) -> dict[str, Any]:
        """Parameters, features and per-service rows as JSON-serialisable data.

        The forests are not saved: :meth:`from_dict` refits each from its saved training rows
        with the same seed, which gives the same forest.
        """
        def fl(a: np.ndarray) -> list[float | None]:
            return [None if not np.isfinite(v) else float(v) for v in a]
        groups = None if self._groups is None else {
            svc: {"columns": g.columns, "floors": g.floors, "seen": g.seen,
                  "last_ds_ns": g.last_ds_ns, "tail": [fl(r) for r in g.tail],
                  "feats": [fl(r) for r in g.feats], "flags": [bool(v) for v in g.flags],
                  "block": g.block, "train": [fl(r) for r in g.train]}
            for svc, g in sorted(self._groups.items())}
        specs = None if self.specs is None else [
            [s.name, s.numerator, s.denominator, s.numerator_is_ratio, s.hull, s.slack]
            for s in self.specs]
        return {"detector": self.name, "format": _FORMAT, "params": self._params(),
                "specs": specs, "groups": groups}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a detector saved by :meth:`to_dict` (it scores identically).

        Raises:
            ModelError: ``d`` was not written by an ``IsolationDetector`` of a known format.
        """
        check_saved(d, key="detector", name=cls.name, fmt=_FORMAT)
        specs = None if d["specs"] is None else [FeatureSpec(*s) for s in d["specs"]]
        det = cls(specs=specs, **d["params"])
        if d["groups"] is None:
            return det

        def arr(rows: list, width: int) -> np.ndarray:
            a = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=float)
            return a.reshape(len(rows), width)
        det._groups = {}
        by_service = det._by_service()
        for svc, g in d["groups"].items():
            n_feat = len(by_service.get(svc, []))
            grp = _Group(list(g["columns"]), {k: float(v) for k, v in g["floors"].items()},
                         int(g["seen"]), int(g["last_ds_ns"]), arr(g["tail"], len(g["columns"])),
                         arr(g["feats"], n_feat), np.array(g["flags"], dtype=bool),
                         int(g["block"]), arr(g["train"], n_feat))
            if len(grp.train):  # the same rows and seed give the same forest
                grp.model = det._train(grp.train, np.maximum(*hull_weights(by_service[svc])))
            det._groups[svc] = grp
        return det
