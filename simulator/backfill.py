"""``surgecast simulate backfill``: simulator history into a Prometheus data directory.

Writes the simulator's points as OpenMetrics and runs ``promtool tsdb create-blocks-from
openmetrics`` on them (CONVENTIONS.md §3): each series sorted in time (promtool silently drops
out-of-order samples), timestamps in seconds, ``# EOF`` at the end, 7-day blocks (one call,
a few seconds for 14 days of the default platform).

The samples carry the ``job`` and ``instance`` labels the scrape of ``simulate serve`` adds
(``deploy/prometheus.yml`` pins ``instance``), so history and live scrapes are the same series
and one query reads both.

Where the backfill may end: a Prometheus **started after** the backfill accepts live samples
from the newest backfilled time on (its head starts where the blocks end), so the default ends
at the current step. A Prometheus **already running** on the directory keeps its last 3 hours
in memory: backfilling them can collide with its head block, so the function refuses unless
``end`` is at least 3 hours ago.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import pandas as pd

from simulator.engine import Simulator
from simulator.exporter import counter_name
from simulator.openmetrics import write_openmetrics

__all__ = ["DEFAULT_LABELS", "BackfillResult", "backfill", "counters_of"]

DEFAULT_LABELS = {"job": "surgecast-simulator", "instance": "simulator"}
_HEAD = pd.Timedelta(hours=3)


@dataclass(frozen=True)
class BackfillResult:
    """What was written: samples, the time range ``[start, end)``, blocks and timings."""

    samples: int
    series: int
    start: pd.Timestamp
    end: pd.Timestamp
    blocks: int
    seconds: float
    openmetrics: Path | None


def counters_of(frame: pd.DataFrame, step: pd.Timedelta) -> pd.DataFrame:
    """Cumulative counters of the rate series in ``frame`` (``service:bets_per_second`` ->
    ``service:bets``): the sum of rate × step up to each point, so that ``rate(x_total[1m])``
    at a point gives the simulator's value there."""
    ids = frame["unique_id"].astype(str)
    services, metrics = ids.str.rsplit(":", n=1).str[0], ids.str.rsplit(":", n=1).str[1]
    names = metrics.map(lambda m: counter_name(m) or "")
    keep = names != ""
    out = frame.loc[keep, ["ds", "y"]].copy()
    out["unique_id"] = (services[keep] + ":" + names[keep]).to_numpy()
    out = out.sort_values(["unique_id", "ds"], kind="stable")
    out["y"] = out.groupby("unique_id")["y"].cumsum() * step.total_seconds()
    return out.loc[:, ["unique_id", "ds", "y"]].reset_index(drop=True)


def backfill(
    out_dir: str | PathLike[str],
    sim: Simulator,
    *,
    days: float,
    end: pd.Timestamp | None = None,
    labels: Mapping[str, str] | None = None,
    counters: bool = True,
    promtool: str = "promtool",
    max_block_duration: str = "168h",
    keep_openmetrics: bool = False,
) -> BackfillResult:
    """Backfill ``days`` of ``sim`` ending before ``end`` (default: now, on the step grid).

    Raises:
        FileNotFoundError: ``promtool`` is not on PATH (names the Debian package).
        ValueError: ``end`` is within 3 hours of now while a Prometheus uses ``out_dir``.
        RuntimeError: promtool failed (its output is in the message).
    """
    began = time.perf_counter()
    exe = shutil.which(promtool)
    if exe is None:
        raise FileNotFoundError(
            f"{promtool!r} not found on PATH: install the Debian package 'prometheus' "
            "(apt-get install prometheus) or pass the promtool path"
        )
    now = pd.Timestamp.now(tz="UTC")
    end = (pd.Timestamp(end) if end is not None else now).floor(sim.step)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    out = Path(out_dir)
    if (out / "wal").exists() and end > now - _HEAD:
        raise ValueError(
            f"{out} is in use by a Prometheus (it has a wal/): backfilling the last 3 hours "
            f"would collide with its head block; pass an end before {now - _HEAD:%Y-%m-%dT%H:%MZ} "
            "or backfill into a fresh directory before starting Prometheus"
        )
    start = end - pd.Timedelta(days=days)
    out.mkdir(parents=True, exist_ok=True)
    before = _blocks(out)
    frame = sim.series(start, end)
    om = out / f"backfill-{int(end.timestamp())}.om"
    extra = dict(DEFAULT_LABELS if labels is None else labels)
    counter_frame = counters_of(frame, sim.step) if counters else None
    samples = write_openmetrics(frame, om, labels=extra, counters=counter_frame)
    try:
        run = subprocess.run(
            [exe, "tsdb", "create-blocks-from", f"--max-block-duration={max_block_duration}",
             "openmetrics", str(om), str(out)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        if not keep_openmetrics:
            om.unlink(missing_ok=True)
    if run.returncode != 0:
        raise RuntimeError(
            f"promtool tsdb create-blocks-from failed (exit {run.returncode}) on {om}: "
            f"{(run.stderr or run.stdout)[-2000:]}"
        )
    blocks = len(_blocks(out) - before)
    n_series = int(frame["unique_id"].nunique()) + (
        int(counter_frame["unique_id"].nunique()) if counter_frame is not None else 0
    )
    return BackfillResult(
        samples=samples,
        series=n_series,
        start=start,
        end=end,
        blocks=blocks,
        seconds=time.perf_counter() - began,
        openmetrics=om if keep_openmetrics else None,
    )


def _blocks(directory: Path) -> set[str]:
    """TSDB block directories (26-character ULIDs with a meta.json)."""
    if not directory.is_dir():
        return set()
    return {p.name for p in directory.iterdir() if len(p.name) == 26 and (p / "meta.json").exists()}
