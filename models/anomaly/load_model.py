"""Latency given load: the reference a load-adjusted detector compares with (pure functions).

A service's p95 latency rises with utilisation at every kickoff; what matters is latency
*beyond what the load explains*. :func:`load_reference` fits ``log p95 ~ 1 + sum_j (v_j + v_j^2)``
over one or more load series ``v_j`` (each divided by its median): the service's own requests
and, optionally, the platform's front-door traffic (shared databases, networks and caches make
every service slower when the whole platform is busy, even when its own requests are not).
:func:`count_scale_fit` models the spread of the residual: a p95 estimated from ``n`` requests
has a sampling error shrinking like ``1 / sqrt(n)``, so a quiet night is noisier than a busy
evening. :class:`~models.anomaly.changepoint.ChangePoint` uses both.

Example:
    >>> v = np.linspace(0.5, 2.0, 200)
    >>> ref = load_reference(-1.6 + 0.1 * v + 0.2 * v**2, 10 * v, 0.01)
    >>> r = unpack_reference(ref, 1)
    >>> np.round(predict_load(r, np.array([5.0, 20.0])), 6).tolist()
    [-1.5, -0.6]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from models.anomaly.seasonal_stats import MAD_TO_SIGMA

__all__ = [
    "Reference", "count_scale", "count_scale_fit", "latency_load_series", "load_reference",
    "load_series", "predict_load", "unpack_reference",
]


class Reference(NamedTuple):
    """A fitted reference (see :func:`load_reference` for the fields)."""

    coef: np.ndarray
    load_scale: np.ndarray
    v_max: np.ndarray
    v_busy: float
    scale_busy: float
    scale: float
    level: float


def _as_2d(load: np.ndarray | None) -> np.ndarray | None:
    if load is None:
        return None
    a = np.asarray(load, dtype=float)
    return a.reshape(-1, 1) if a.ndim == 1 else a


def load_reference(x: np.ndarray, load: np.ndarray | None, floor: float
                   ) -> list[float] | None:
    """Fit ``x`` on its load: ``[*coef, *load_scale, *v_max, v_busy, scale_busy, scale, level]``.

    ``load`` is ``None``, one load series (1-D) or ``k`` of them (``n x k``). ``coef`` are the
    least-squares coefficients of ``x ~ 1 + sum_j (v_j + v_j^2)``, ``v_j = load_j /
    load_scale_j`` (refit once without points beyond 4 MADs), or ``[median]`` without load (then
    ``load_scale = [1]`` and ``v_max = [inf]``). A load series with fewer than 10 usable points
    is left out of the fit (zero coefficients). ``scale`` is the robust spread of the residuals
    (at least ``floor``); ``scale_busy`` the spread of those with ``v_1 >= v_busy`` (the top
    decile of the first load: peaks are noisier and the fit is least sure there). ``v_max`` is
    each load's largest reference value: beyond it the fit extrapolates, so a scorer should take
    no evidence there. ``None`` when fewer than 10 usable points.

    Example:
        >>> load_reference(np.array([1.0] * 20), None, 0.01)
        [1.0, 1.0, inf, inf, 0.01, 0.01, 1.0]
    """
    lo = _as_2d(load)
    ok = np.isfinite(x)
    used = np.zeros(0, dtype=bool)
    if lo is not None:
        good = np.isfinite(lo) & (lo > 0)
        used = (good & ok[:, None]).sum(axis=0) >= 10
        used[0] = True  # the first (own) load is required
        ok &= good[:, used].all(axis=1)
    if ok.sum() < 10:
        return None
    xs = x[ok]
    level = float(np.median(xs))
    if lo is None:
        coef, lscale, v_max = np.array([level]), np.ones(1), np.full(1, np.inf)
        res = xs - level
    else:
        k = lo.shape[1]
        lscale, v_max = np.ones(k), np.full(k, np.inf)
        cols = [np.ones(int(ok.sum()))]
        for j in np.flatnonzero(used):
            lscale[j] = float(np.median(lo[ok, j]))
            v = lo[ok, j] / lscale[j]
            v_max[j] = float(v.max())
            cols += [v, v * v]
        design = np.column_stack(cols)
        fitted = np.linalg.lstsq(design, xs, rcond=None)[0]
        res = xs - design @ fitted
        mad = np.median(np.abs(res - np.median(res)))
        keep = np.abs(res) <= 4 * MAD_TO_SIGMA * mad + 1e-12
        if keep.sum() >= 10:
            fitted = np.linalg.lstsq(design[keep], xs[keep], rcond=None)[0]
            res = xs - design @ fitted
        coef = np.zeros(1 + 2 * k)
        coef[0] = fitted[0]
        for i, j in enumerate(np.flatnonzero(used)):
            coef[1 + 2 * j:3 + 2 * j] = fitted[1 + 2 * i:3 + 2 * i]

    def spread(r: np.ndarray) -> float:
        return max(MAD_TO_SIGMA * float(np.median(np.abs(r - np.median(r)))), floor)
    scale = spread(res)
    v_busy, scale_busy = np.inf, scale
    if lo is not None:
        v = lo[ok, 0] / lscale[0]
        v_busy = float(np.quantile(v, 0.9))
        busy = v >= v_busy
        if busy.sum() >= 10:
            scale_busy = max(spread(res[busy]), scale)
    return [*coef.tolist(), *lscale.tolist(), *v_max.tolist(), v_busy, scale_busy, scale, level]


def unpack_reference(ref: Sequence[float], k: int) -> Reference:
    """Split a :func:`load_reference` list fitted on ``k`` load series (0: none)."""
    nc, nl = (1 + 2 * k, k) if k else (1, 1)
    r = np.asarray(ref, dtype=float)
    return Reference(r[:nc], r[nc:nc + nl], r[nc + nl:nc + 2 * nl], float(r[-4]), float(r[-3]),
                     float(r[-2]), float(r[-1]))


def predict_load(ref: Reference, load: np.ndarray | None, n: int | None = None) -> np.ndarray:
    """The reference's expectation for ``load`` (``n`` copies of the level without load)."""
    lo = _as_2d(load)
    if ref.coef.size == 1 or lo is None:
        return np.full(n if n is not None else (0 if lo is None else lo.shape[0]), ref.coef[0])
    out = np.full(lo.shape[0], ref.coef[0])
    for j in range(lo.shape[1]):
        a, b = ref.coef[1 + 2 * j], ref.coef[2 + 2 * j]
        if a == 0.0 and b == 0.0:
            continue  # left out of the fit: its load may be missing
        v = lo[:, j] / ref.load_scale[j]
        out = out + a * v + b * v * v
    return out


def count_scale_fit(res: np.ndarray, counts: np.ndarray) -> list[float] | None:
    """Fit the residual spread as ``a + b u``, ``u = 1 / sqrt(count + 1)``: ``[a, b, u_lo, u_hi]``.

    A p95 estimated from ``n`` requests has a sampling error shrinking like ``1 / sqrt(n)`` on
    top of the service's own jitter: a quiet night's latency is noisier than a busy evening's,
    and one spread for both either misses drifts by day or alarms by night. The fit regresses
    ``sqrt(pi / 2) |res|`` (the spread of a normal residual, on average) on ``[1, u]``,
    ``u = 1 / sqrt(count + 1)``, weighted by the inverse spread and leaving out residuals
    beyond 4 spreads, three rounds from the overall MAD. ``u_lo, u_hi`` are the 1 % and 99 %
    quantiles of ``u``: :func:`count_scale` never goes below the spread at ``u_lo`` (more
    requests than the reference had do not make the p95 surer than it has been seen to be).
    ``None`` (the caller keeps one spread) with fewer than 50 usable points, counts that vary
    by less than a factor 1.5 (the line would be a guess), or a fit not increasing in ``u``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> n = rng.uniform(10, 2000, 20000)
        >>> r = (0.03 + 0.6 / np.sqrt(n + 1)) * rng.standard_normal(n.size)
        >>> bool(np.allclose(count_scale_fit(r, n)[:2], [0.03, 0.6], rtol=0.05))
        True
    """
    ok = np.isfinite(res) & np.isfinite(counts) & (counts >= 0)
    if ok.sum() < 50:
        return None
    u, r = 1.0 / np.sqrt(counts[ok] + 1.0), np.abs(res[ok] - np.median(res[ok]))
    u_lo, u_hi = (float(q) for q in np.quantile(u, [0.01, 0.99]))
    if u_hi < np.sqrt(1.5) * u_lo:
        return None
    sigma = np.full(u.size, max(MAD_TO_SIGMA * float(np.median(r)), 1e-12))
    a = b = float("nan")
    for _ in range(3):
        keep = r <= 4.0 * sigma
        if keep.sum() < 50:
            return None
        w = 1.0 / sigma[keep]
        design = np.column_stack([np.ones(int(keep.sum())), u[keep]]) * w[:, None]
        a, b = np.linalg.lstsq(design, np.sqrt(np.pi / 2) * r[keep] * w, rcond=None)[0]
        sigma = np.maximum(a + b * u, 1e-12)
    if not (np.isfinite(a) and np.isfinite(b)) or b < 0:
        return None
    return [max(float(a), 0.0), float(b), u_lo, u_hi]


def count_scale(fit: Sequence[float], counts: np.ndarray) -> np.ndarray:
    """The spread :func:`count_scale_fit` gives ``counts`` (NaN where a count is missing).

    Example:
        >>> count_scale([0.03, 0.6, 0.01, 0.1], np.array([99.0, 1e6, np.nan])).round(3).tolist()
        [0.09, 0.036, nan]
    """
    a, b, u_lo, _ = fit
    with np.errstate(invalid="ignore"):
        u = np.maximum(1.0 / np.sqrt(np.maximum(counts, 0.0) + 1.0), u_lo)
    return a + b * u


def load_series(unique_ids: Sequence[str], metric: str, platform: str | None = None
                ) -> dict[str, str | tuple[str, ...]]:
    """Load pairing of every ``svc:<metric>`` with ``svc:requests_per_second``.

    With ``platform`` (a service name, e.g. the odds API every customer reads), its
    ``requests_per_second`` is a second load of every other service's ``metric``.

    Example:
        >>> load_series(["a:error_ratio", "a:requests_per_second", "b:x"], "error_ratio")
        {'a:error_ratio': 'a:requests_per_second'}
    """
    ids = set(unique_ids)
    front = f"{platform}:requests_per_second" if platform else None
    out: dict[str, str | tuple[str, ...]] = {}
    for u in sorted(ids):
        if u.endswith(f":{metric}"):
            req = u.rsplit(":", 1)[0] + ":requests_per_second"
            if req in ids:
                out[u] = (req, front) if front in ids and front != req else req
    return out


def latency_load_series(unique_ids: Sequence[str], platform: str | None = None
                        ) -> dict[str, str | tuple[str, ...]]:
    """Default load pairing: ``svc:latency_p95_seconds`` -> ``svc:requests_per_second``.

    With ``platform`` (a service name, e.g. the odds API every customer reads), its
    ``requests_per_second`` is a second load of every other service's latency.

    Example:
        >>> latency_load_series(["a:latency_p95_seconds", "a:requests_per_second", "b:x"])
        {'a:latency_p95_seconds': 'a:requests_per_second'}
        >>> latency_load_series(["a:latency_p95_seconds", "a:requests_per_second",
        ...                      "o:requests_per_second"], platform="o")
        {'a:latency_p95_seconds': ('a:requests_per_second', 'o:requests_per_second')}
    """
    return load_series(unique_ids, "latency_p95_seconds", platform)
