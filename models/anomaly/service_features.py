"""The features of a service that :class:`~models.anomaly.isolation.IsolationDetector` watches.

Per service (the part of ``unique_id`` before ``:``), smoothed over the last ``smooth`` points:
the log ratios of :func:`~models.anomaly.ratios.default_ratio_specs` (failures per deposit or
login, bets per request and per odds request, errors per request), stake per bet (bots bet
small), the log of the service's requests (its load) and the log of its p95 latency. Logs of
rates floored at a fraction of their median, so scaling a series shifts its features by a
constant and nothing else.

Example:
    >>> [s.name for s in default_feature_specs(["a:requests_per_second", "a:bets_per_second"])]
    ['a:bets_per_request', 'a:requests']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from models.anomaly.ratios import default_ratio_specs

__all__ = ["FeatureSpec", "default_feature_specs", "feature_floors", "feature_rows",
           "hull_weights"]

_REL_FLOOR = 1e-3  # a rate below this fraction of its median counts as this fraction
_HULL = {"both": (1.0, 1.0), "up": (1.0, 0.0), "down": (0.0, 1.0), "none": (0.0, 0.0)}


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of a service, named ``"{service}:{feature}"``.

    ``denominator=None``: the log of the smoothed ``numerator`` (a level: requests, latency).
    Else the log ratio of the smoothed sums; ``numerator_is_ratio``: the numerator is already a
    proportion of the denominator (``error_ratio`` of requests), so its count is the product.
    ``hull``: which excursions beyond the training range count in ``u_hull``: ``"both"``,
    ``"up"`` (failures: fewer is good news), ``"down"`` or ``"none"`` (the feature only shapes
    the forest: levels, which surge at every kickoff). ``slack`` divides the feature's excess:
    a ratio that follows load (bets per request falls at every final whistle) must go further
    beyond its range before it counts.
    """

    name: str
    numerator: str
    denominator: str | None = None
    numerator_is_ratio: bool = False
    hull: str = "both"
    slack: float = 1.0

    def __post_init__(self) -> None:
        if self.hull not in _HULL:
            raise ValueError(f"FeatureSpec.hull must be one of {sorted(_HULL)}, got {self.hull!r}")
        if not (np.isfinite(self.slack) and self.slack > 0):
            raise ValueError(f"FeatureSpec.slack must be > 0, got {self.slack!r}")

    @property
    def service(self) -> str:
        return self.name.rsplit(":", 1)[0]

    @property
    def is_ratio(self) -> bool:
        return self.denominator is not None


# ratio suffix -> (hull, slack). Failures: only more is news. Bets per request falls at every
# final whistle (results checked, few bets) by up to ~x2, so only a collapse far beyond that
# counts (requests x50, bets flat). Errors per request climb near capacity at big kickoffs:
# the ratio detector, which the fixture calendar can excuse, watches them; here only the forest.
_HULLS = {"failure_ratio": ("up", 1.0), "bets_per_request": ("down", 4.0),
          "errors_per_request": ("none", 1.0)}


def default_feature_specs(unique_ids: Iterable[str], odds_service: str = "odds-api"
                          ) -> list[FeatureSpec]:
    """The features the metric catalogue supports, per service, sorted by name.

    Example:
        >>> [(s.name, s.hull) for s in default_feature_specs(["p:deposits_per_second",
        ...     "p:deposit_failures_per_second", "p:requests_per_second"])]
        [('p:deposit_failure_ratio', 'up'), ('p:requests', 'none')]
    """
    ids = set(unique_ids)
    out = []
    for r in default_ratio_specs(ids, odds_service):
        hull, slack = next((v for k, v in _HULLS.items() if r.name.endswith(k)), ("both", 1.0))
        out.append(FeatureSpec(r.name, r.numerator, r.denominator, r.numerator_is_ratio, hull,
                               slack))
    for s in sorted({u.rsplit(":", 1)[0] for u in ids if ":" in u}):
        if f"{s}:stake_per_second" in ids and f"{s}:bets_per_second" in ids:
            # bots betting small pull it down; stakes are heavy-tailed (a whale makes it jump
            # up, a quiet night's few bets make it noisy), so it gets slack
            out.append(FeatureSpec(f"{s}:stake_per_bet", f"{s}:stake_per_second",
                                   f"{s}:bets_per_second", hull="down", slack=2.0))
        for metric, name in (("requests_per_second", "requests"),
                             ("latency_p95_seconds", "latency")):
            if f"{s}:{metric}" in ids:
                out.append(FeatureSpec(f"{s}:{name}", f"{s}:{metric}", hull="none"))
    return sorted(out, key=lambda f: f.name)


def _rolling_sum(a: np.ndarray, smooth: int) -> np.ndarray:
    """Causal sum over the last ``smooth`` rows, ignoring gaps (NaN when all are gaps).

    Summed offset by offset in a fixed order, so a row's sum is bit-identical whether the rows
    arrive in one batch or one at a time.
    """
    fin = np.isfinite(a)
    v = np.where(fin, a, 0.0)
    total, count = v.copy(), fin.astype(np.int64)
    for o in range(1, smooth):
        total[o:] += v[:-o]
        count[o:] += fin[:-o]
    return np.where(count > 0, total, np.nan)


def feature_rows(raw: np.ndarray, columns: list[str], specs: list[FeatureSpec], smooth: int,
                 floors: dict[str, float]) -> np.ndarray:
    """Features (rows x specs) from raw input rows (rows x ``columns``, NaN: missing).

    Every row uses itself and the ``smooth - 1`` rows before it; the first ``smooth - 1`` rows
    of ``raw`` are history (their features are computed too, from fewer rows). Missing inputs
    give NaN features.

    Example:
        >>> raw = np.array([[1.0, 10.0], [3.0, 10.0]])
        >>> spec = FeatureSpec("s:r", "s:num", "s:den")
        >>> np.round(np.exp(feature_rows(raw, ["s:num", "s:den"], [spec], 2, {})), 3).tolist()
        [[0.1], [0.2]]
    """
    col = {c: i for i, c in enumerate(columns)}
    out = np.full((raw.shape[0], len(specs)), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, sp in enumerate(specs):
            num = raw[:, col[sp.numerator]]
            if sp.denominator is None:
                mean = _rolling_sum(num, smooth) / _rolling_sum(np.isfinite(num) * 1.0, smooth)
                # (the count's sum is never NaN: a row without any value gives 0/0 = NaN)
                out[:, j] = np.log(np.maximum(mean, floors.get(sp.numerator, 0.0)))
                continue
            den = raw[:, col[sp.denominator]]
            if sp.numerator_is_ratio:
                num = num * den
            both = np.isfinite(num) & np.isfinite(den)
            sn = _rolling_sum(np.where(both, num, np.nan), smooth)
            sd = _rolling_sum(np.where(both, den, np.nan), smooth)
            fn = floors.get(f"{sp.name}#num", 0.0) * smooth
            fd = floors.get(f"{sp.name}#den", 0.0) * smooth
            out[:, j] = np.log(np.maximum(sn, fn)) - np.log(np.maximum(sd, fd))
    out[~np.isfinite(out)] = np.nan
    return out


def feature_floors(raw: np.ndarray, columns: list[str], specs: list[FeatureSpec]) -> dict[str, float]:
    """Relative floors (``_REL_FLOOR`` x median positive value) so no feature is ``log(0)``."""
    col = {c: i for i, c in enumerate(columns)}

    def floor(v: np.ndarray) -> float:
        pos = v[np.isfinite(v) & (v > 0)]
        return _REL_FLOOR * float(np.median(pos)) if pos.size else 1e-300

    out: dict[str, float] = {}
    for sp in specs:
        num = raw[:, col[sp.numerator]]
        if sp.denominator is None:
            out[sp.numerator] = floor(num)
            continue
        den = raw[:, col[sp.denominator]]
        out[f"{sp.name}#num"] = floor(num * den if sp.numerator_is_ratio else num)
        out[f"{sp.name}#den"] = floor(den)
    return out


def hull_weights(specs: list[FeatureSpec]) -> tuple[np.ndarray, np.ndarray]:
    """Per feature: the weight of an excursion above and below the range (``1 / slack``)."""
    up = np.array([_HULL[sp.hull][0] / sp.slack for sp in specs])
    down = np.array([_HULL[sp.hull][1] / sp.slack for sp in specs])
    return up, down
