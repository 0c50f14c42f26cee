"""The label and alarm stages, separate from scoring (STYLE.md: score → label → alarm).

1. **label** — :func:`threshold`: a calibrated score in [0, 1] is a *hit* when ``>= level``.
2. **debounce** — :func:`debounce`: a hit raises an alarm only when at least ``n`` hits fall in
   the last ``m`` points of its series (one odd point is not a page).
3. **suppress repeats** — :func:`suppress_repeats`: no new alarm for the same series and kind
   within ``cooldown`` of the previous one.
4. **expected surges** — hits of the spike kinds on traffic series inside a fixture's
   ramp/in-play window (:func:`models.anomaly.events.expected_by_events`) are dropped before
   debouncing. Ratio, absent, drop and latency hits are never excused by events: a kickoff
   moves volumes, not conversion or failure ratios.

:class:`Debouncer` chains 1-4 online with bounded state (per series: a point counter and the
last ``n - 1`` hits; per series and kind: the last alarm time, pruned after ``cooldown``), and
gives the same alarms whether a frame arrives whole or a point at a time.

Alarm frame columns (:data:`ALARM_COLUMNS`): ``unique_id, start`` (first hit of the debounce
window), ``ds`` (raise time), ``kind, score`` (max score of the window's hits), ``detector``.

Example:
    >>> import pandas as pd
    >>> ds = pd.date_range("2026-01-01", periods=6, freq="min", tz="UTC")
    >>> scores = pd.DataFrame({"unique_id": "a", "ds": ds, "score": [0, .9, 0, .8, .7, .9],
    ...                        "kind": "spike", "detector": "novelty"})
    >>> Debouncer(n=2, m=3, cooldown="10min").update(scores)[["ds", "kind"]].values.tolist()
    [[Timestamp('2026-01-01 00:03:00+0000', tz='UTC'), 'spike']]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Self

import numpy as np
import pandas as pd

from models._frames import to_utc
from models.anomaly.events import expected_by_events
from models.errors import FrameError, ModelError

__all__ = [
    "ALARM_COLUMNS", "SPIKE_KINDS", "Debouncer", "debounce", "is_traffic_series",
    "suppress_repeats", "threshold",
]

ALARM_COLUMNS = ("unique_id", "start", "ds", "kind", "score", "detector")
SPIKE_KINDS = ("spike", "level_shift")
_FORMAT = 1


def threshold(score: np.ndarray | pd.Series, level: float = 0.5) -> np.ndarray:
    """Label stage: ``score >= level`` (NaN is never a hit).

    Example:
        >>> threshold(np.array([0.2, 0.5, np.nan, 0.9])).tolist()
        [False, True, False, True]
    """
    if not (np.isfinite(level) and 0.0 < level <= 1.0):
        raise ValueError(f"level must be in (0, 1], got {level!r}")
    s = np.asarray(score, dtype=float)
    return np.nan_to_num(s, nan=-1.0) >= level


def debounce(positions: np.ndarray, n: int, m: int) -> np.ndarray:
    """Which hits fire: the hit at position ``p`` fires when ``>= n`` hits lie in ``(p - m, p]``.

    Args:
        positions: increasing point positions (in the series' row sequence) of the hits.
        n: hits needed; ``n=1`` fires on every hit.
        m: window length in points (``m >= n``).

    Example:
        >>> debounce(np.array([0, 5, 6, 20]), n=2, m=3).tolist()
        [False, False, True, False]
    """
    _check_nm(n, m)
    p = np.asarray(positions, dtype=np.int64)
    first = np.searchsorted(p, p - m + 1, side="left")
    return (np.arange(p.size) - first + 1) >= n


def suppress_repeats(ds_ns: np.ndarray, cooldown_ns: int, last_ns: int | None = None) -> np.ndarray:
    """Which alarms of one series+kind survive: none within ``cooldown_ns`` of the last raised.

    ``last_ns`` is the previous raised alarm (from an earlier call), ``None`` when there is none.

    Example:
        >>> suppress_repeats(np.array([0, 5, 10, 31, 40]), cooldown_ns=30).tolist()
        [True, False, False, True, False]
    """
    keep = np.zeros(len(ds_ns), dtype=bool)
    last = last_ns
    for i, t in enumerate(np.asarray(ds_ns, dtype=np.int64)):
        if last is None or t - last >= cooldown_ns:
            keep[i], last = True, int(t)
    return keep


def is_traffic_series(unique_id: str) -> bool:
    """Default traffic test: volumes (``*_per_second``) surge with kickoffs; ratios do not."""
    return unique_id.endswith("_per_second")


def _check_nm(n: int, m: int) -> None:
    for label, v in (("n", n), ("m", m)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ValueError(f"{label} must be an integer >= 1, got {v!r}")
    if m < n:
        raise ValueError(f"the window m={m} must hold at least n={n} hits; raise m or lower n")


def empty_alarms() -> pd.DataFrame:
    """An alarm frame with no rows (the columns and dtypes of :data:`ALARM_COLUMNS`)."""
    return pd.DataFrame({
        "unique_id": pd.Series([], dtype=str), "start": to_utc(np.empty(0, dtype=np.int64)),
        "ds": to_utc(np.empty(0, dtype=np.int64)), "kind": pd.Series([], dtype=object),
        "score": pd.Series([], dtype=float), "detector": pd.Series([], dtype=str),
    })


class Debouncer:
    """Online label → debounce → suppress stage over anomaly frames from any detector.

    Args:
        n: hits needed in the last ``m`` points of a series to raise an alarm.
        m: the debounce window in points.
        cooldown: no new alarm for the same series and kind within this time.
        level: the label threshold on calibrated scores (0.5 is every detector's own).
        events: the fixture calendar (``start``, optional ``end``); surges of ``spike_kinds``
            on traffic series inside ``[start - pre, max(start + post, end)]`` are expected.
        spike_kinds: kinds an event can excuse.
        is_traffic: which series an event can excuse (default: ids ending ``_per_second``).
        pre, post: the event window around kickoff.
        drop_lags: ``drop`` hits on traffic series are also expected when ``ds - lag`` lies in
            an event window: a seasonal detector (Novelty compares with the same time 1-3 days
            back) sees a drop when yesterday had a kickoff now and today has none. The price: a
            real traffic drop at such a time is left to the ratio detector.
        rearm: a series with no hit for at least this long starts a new *episode*: the cooldown
            only suppresses repeats within one episode, so a second incident on the same series
            (a payment outage 30 minutes after the previous one cleared) alarms at once.
            ``None``: the cooldown holds regardless.

    State is keyed by ``(detector, unique_id)``: pass *every* scored row of a series (not just
    hits) so its point positions advance. ``set_events`` replaces the calendar between updates.
    """

    def __init__(
        self, n: int = 1, m: int = 1, cooldown: str | pd.Timedelta = "30min", level: float = 0.5,
        events: pd.DataFrame | None = None, spike_kinds: Iterable[str] = SPIKE_KINDS,
        is_traffic: Callable[[str], bool] = is_traffic_series,
        pre: str | pd.Timedelta = "75min", post: str | pd.Timedelta = "150min",
        drop_lags: Iterable[str | pd.Timedelta] = (),
        rearm: str | pd.Timedelta | None = None,
    ) -> None:
        _check_nm(n, m)
        threshold(np.empty(0), level)  # validates level
        self.n, self.m, self.level = int(n), int(m), float(level)
        self.cooldown = pd.Timedelta(cooldown)
        if self.cooldown < pd.Timedelta(0):
            raise ValueError(f"cooldown must be >= 0, got {cooldown!r}")
        self.spike_kinds = tuple(spike_kinds)
        self.is_traffic = is_traffic
        self.pre, self.post = pd.Timedelta(pre), pd.Timedelta(post)
        self.drop_lags = tuple(pd.Timedelta(lag) for lag in drop_lags)
        self.rearm = None if rearm is None else pd.Timedelta(rearm)
        if self.rearm is not None and self.rearm <= pd.Timedelta(0):
            raise ValueError(f"rearm must be > 0 or None, got {rearm!r}")
        self.events = events
        # per series: (last hit ds_ns, start ds_ns of the current episode of hits)
        self._episode: dict[tuple[str, str], tuple[int, int]] = {}
        self._seen: dict[tuple[str, str], int] = {}
        # the last n - 1 hits of a series: (position, ds_ns, score)
        self._recent: dict[tuple[str, str], list[tuple[int, int, float]]] = {}
        self._last: dict[tuple[str, str, str], int] = {}  # (detector, uid, kind) -> alarm ds_ns

    def set_events(self, events: pd.DataFrame | None) -> None:
        """Replace the fixture calendar (e.g. refreshed each tick)."""
        self.events = events

    def expected(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows whose hit an event explains (spike kinds, traffic series, inside a window)."""
        if self.events is None or len(self.events) == 0 or len(frame) == 0:
            return np.zeros(len(frame), dtype=bool)
        kinds = frame["kind"].isin(self.spike_kinds).to_numpy()
        uids = frame["unique_id"].astype(str)
        traffic = uids.map({u: bool(self.is_traffic(u)) for u in uids.unique()}).to_numpy(bool)
        ds = pd.DatetimeIndex(frame["ds"])
        out = kinds & traffic
        if out.any():
            out[out] = expected_by_events(ds[out], self.events, self.pre, self.post)
        drops = (frame["kind"] == "drop").to_numpy() & traffic
        for lag in self.drop_lags if drops.any() else ():
            idx = np.flatnonzero(drops & ~out)
            out[idx] = expected_by_events(ds[idx] - lag, self.events, self.pre, self.post)
        return out

    def update(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Take newly scored rows (any detectors, any series); return the alarms they raise.

        ``frame`` needs ``unique_id, ds, score`` and ``kind``; ``detector`` defaults to
        ``"unknown"``. Rows of a series must be newer than the ones it saw before.
        """
        missing = [c for c in ("unique_id", "ds", "score", "kind") if c not in frame.columns]
        if missing:
            raise FrameError(f"Debouncer.update: missing column(s) {missing}; pass an anomaly "
                             "frame (unique_id, ds, score, kind, detector)")
        if len(frame) == 0:
            return empty_alarms()
        det = (frame["detector"].astype(str) if "detector" in frame.columns
               else pd.Series("unknown", index=frame.index))
        work = pd.DataFrame({
            "detector": det.to_numpy(), "unique_id": frame["unique_id"].astype(str).to_numpy(),
            "ds": pd.DatetimeIndex(frame["ds"]).tz_convert("UTC").as_unit("ns").asi8,
            "score": frame["score"].to_numpy(dtype=float, na_value=np.nan),
            "kind": frame["kind"].astype(object).where(frame["kind"].notna(), "anomaly")
            .to_numpy(),
        }).sort_values(["detector", "unique_id", "ds"], kind="stable")
        keys = list(zip(work["detector"], work["unique_id"], strict=True))
        pos = work.groupby(["detector", "unique_id"], sort=False).cumcount().to_numpy()
        base = np.array([self._seen.get(k, 0) for k in keys], dtype=np.int64)
        work["pos"] = base + pos
        hit = threshold(work["score"].to_numpy(), self.level)
        if hit.any():
            ev = self.expected(pd.DataFrame({"unique_id": work["unique_id"].to_numpy()[hit],
                                             "ds": to_utc(work["ds"].to_numpy()[hit]),
                                             "kind": work["kind"].to_numpy()[hit]}))
            hit[np.flatnonzero(hit)[ev]] = False
        # every series advances its position counter, hit or not
        last_pos = work.groupby(["detector", "unique_id"], sort=False)["pos"].max()
        rows: list[tuple[str, int, int, str, float, str]] = []
        for (d, u), g in work[hit].groupby(["detector", "unique_id"], sort=False):
            rows += self._series_alarms(d, u, g)
        for (d, u), p in last_pos.items():
            self._seen[(d, u)] = int(p) + 1
        self._prune(int(work["ds"].max()))
        if not rows:
            return empty_alarms()
        u, s, t, k, sc, d = (list(c) for c in zip(*rows, strict=True))
        out = pd.DataFrame({"unique_id": pd.Series(u, dtype=str), "start": to_utc(np.array(s)),
                            "ds": to_utc(np.array(t)), "kind": pd.Series(k, dtype=object),
                            "score": np.array(sc, dtype=float), "detector": pd.Series(d, dtype=str)})
        return out.sort_values(["ds", "unique_id", "kind"], kind="stable").reset_index(drop=True)

    def _series_alarms(self, d: str, u: str, g: pd.DataFrame) -> list[tuple]:
        prev = self._recent.get((d, u), [])
        p = np.r_[[h[0] for h in prev], g["pos"].to_numpy()].astype(np.int64)
        t = np.r_[[h[1] for h in prev], g["ds"].to_numpy()].astype(np.int64)
        sc = np.r_[[h[2] for h in prev], g["score"].to_numpy()].astype(float)
        kinds = np.r_[np.array(["?"] * len(prev), dtype=object), g["kind"].to_numpy()]
        fire = debounce(p, self.n, self.m)
        fire[: len(prev)] = False  # earlier hits were decided in an earlier call
        # episode start of every new hit (a gap of >= rearm between hits starts a new one)
        ep = np.zeros(t.size, dtype=np.int64)
        last_hit, ep_start = self._episode.get((d, u), (None, None))
        for i in range(len(prev), t.size):
            if (last_hit is None or ep_start is None
                    or (self.rearm is not None and t[i] - last_hit >= self.rearm.value)):
                ep_start = int(t[i])
            last_hit = int(t[i])
            ep[i] = ep_start
        if last_hit is not None and ep_start is not None:
            self._episode[(d, u)] = (last_hit, ep_start)
        out = []
        for i in np.flatnonzero(fire):
            key = (d, u, str(kinds[i]))
            last = self._last.get(key)
            if (last is not None and t[i] - last < self.cooldown.value
                    and (self.rearm is None or last >= ep[i])):
                continue
            self._last[key] = int(t[i])
            first = int(np.searchsorted(p, p[i] - self.m + 1))
            first = max(first, i - self.n + 1)  # the n hits that fired it
            out.append((u, int(t[first]), int(t[i]), str(kinds[i]),
                        float(sc[first:i + 1].max()), d))
        keep = self.n - 1
        self._recent[(d, u)] = ([(int(a), int(b), float(c)) for a, b, c in
                                 zip(p[-keep:], t[-keep:], sc[-keep:], strict=True)]
                                if keep else [])
        return out

    def _prune(self, now_ns: int) -> None:
        horizon = now_ns - self.cooldown.value
        for key in [k for k, v in self._last.items() if v < horizon]:
            del self._last[key]

    def to_dict(self) -> dict[str, Any]:
        """Parameters and state as JSON-serialisable data (the calendar and ``is_traffic`` are
        not saved: pass them again to :meth:`from_dict`)."""
        return {
            "alarms": "debouncer", "format": _FORMAT,
            "params": {"n": self.n, "m": self.m, "cooldown": str(self.cooldown),
                       "level": self.level, "spike_kinds": list(self.spike_kinds),
                       "pre": str(self.pre), "post": str(self.post),
                       "drop_lags": [str(lag) for lag in self.drop_lags],
                       "rearm": None if self.rearm is None else str(self.rearm)},
            "seen": [[d, u, c] for (d, u), c in sorted(self._seen.items())],
            "recent": [[d, u, [list(h) for h in hs]] for (d, u), hs in sorted(self._recent.items())],
            "last": [[d, u, k, t] for (d, u, k), t in sorted(self._last.items())],
            "episodes": [[d, u, h, e] for (d, u), (h, e) in sorted(self._episode.items())],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], events: pd.DataFrame | None = None,
                  is_traffic: Callable[[str], bool] = is_traffic_series) -> Self:
        """Rebuild a :class:`Debouncer` saved by :meth:`to_dict`.

        Raises:
            ModelError: ``d`` was not written by a ``Debouncer`` of a known format.
        """
        if d.get("alarms") != "debouncer" or d.get("format") != _FORMAT:
            raise ModelError(f"not a saved debouncer (format {_FORMAT}): alarms={d.get('alarms')!r}"
                             f", format={d.get('format')!r}")
        out = cls(**d["params"], events=events, is_traffic=is_traffic)
        out._seen = {(a, b): int(c) for a, b, c in d["seen"]}
        out._recent = {(a, b): [(int(x), int(y), float(z)) for x, y, z in hs]
                       for a, b, hs in d["recent"]}
        out._last = {(a, b, k): int(t) for a, b, k, t in d["last"]}
        out._episode = {(a, b): (int(h), int(e)) for a, b, h, e in d.get("episodes", [])}
        return out
