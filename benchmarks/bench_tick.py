"""How long one tick takes: the default configuration, and 1,000 simulated series.

    python benchmarks/bench_tick.py                 # both scenarios
    python benchmarks/bench_tick.py --only default  # or --only 1000
    python benchmarks/bench_tick.py --store-url postgresql+psycopg://...   # another store

Each scenario starts from an empty SQLite store in a temp dir (unless --store-url), runs the
first tick (which backfills history), then several steady-state ticks one step apart, and prints
per-stage timings. Figures depend on the machine: quote them with its size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors import SimulatedCollector  # noqa: E402
from simulator import ServiceSpec, Simulator, SimulatorConfig  # noqa: E402
from surgecast.config import Settings  # noqa: E402
from surgecast.pipeline import Pipeline  # noqa: E402
from surgecast.store import Store  # noqa: E402
from surgecast.wiring import build_pipeline, resolve_series  # noqa: E402

NOW = pd.Timestamp("2026-11-21 15:00", tz="UTC")  # a Saturday 15:00 kickoff slot


def _fmt(report) -> str:
    stages = ", ".join(f"{k} {v:6.2f}s" for k, v in report.durations.items())
    total = (report.finished_at - report.started_at).total_seconds()
    return f"total {total:7.2f}s  ({stages})  points {sum(report.points.values()):,}  errors {len(report.errors)}"


def _run(pipeline: Pipeline, steady_ticks: int, step: pd.Timedelta) -> None:
    print(f"  series: {len(pipeline.series)}, services planned: {len(pipeline.services())}")
    first = pipeline.tick(NOW)
    print(f"  first tick (backfill): {_fmt(first)}")
    totals = []
    for i in range(1, steady_ticks + 1):
        report = pipeline.tick(NOW + i * step)
        totals.append((report.finished_at - report.started_at).total_seconds())
        print(f"  steady tick {i}:         {_fmt(report)}")
    if totals:
        print(
            f"  steady-state tick: median {statistics.median(totals):.2f}s, "
            f"min {min(totals):.2f}s, max {max(totals):.2f}s over {len(totals)} ticks"
        )


def default_scenario(store_url: str, workdir: Path, steady_ticks: int) -> None:
    print("== default configuration (simulator, 19 series, 28 days of 1-min history) ==")
    settings = Settings(store={"url": store_url}, models_dir=str(workdir / "models"))
    store = Store(store_url)
    try:
        _run(build_pipeline(settings, store), steady_ticks, pd.Timedelta("1min"))
    finally:
        store.close()


def thousand_series_scenario(store_url: str, workdir: Path, steady_ticks: int, days: float) -> None:
    kinds = ["odds-api", "bet-placement", "account", "payments"]
    services = tuple(
        ServiceSpec(name=f"svc-{i:03d}", kind=kinds[i % 4], scale=0.5 + (i % 7) / 4)
        for i in range(212)
    )
    sim = Simulator(SimulatorConfig(seed=7, step="1min", services=services))
    series_ids = sim.series_ids()[:1000]
    print(
        f"== 1,000 simulated series ({len(services)} services, {days:g} days of 1-min history) =="
    )
    settings = Settings(
        store={"url": store_url},
        backfill_days=days,
        models_dir=str(workdir / "models"),
        forecast={"history_days": days},
        detect={"history_days": days},
        series=[
            {"service": uid.split(":")[0], "metric": uid.split(":")[1], "simulator": uid}
            for uid in series_ids
        ],
        services={
            s.name: {"capacity_per_replica": 100, "max_replicas": 200}
            for s in services
            if f"{s.name}:requests_per_second" in series_ids
        },
    )
    store = Store(store_url)
    try:
        pipeline = Pipeline(
            settings, store, {"simulator": SimulatedCollector(sim)}, resolve_series(settings, None)
        )  # type: ignore[arg-type]
        _run(pipeline, steady_ticks, pd.Timedelta("1min"))
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["default", "1000"], default=None)
    parser.add_argument("--store-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--ticks", type=int, default=5, help="steady-state ticks after the first")
    parser.add_argument("--days", type=float, default=3, help="history for the 1,000-series run")
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; pandas {pd.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.only in (None, "default"):
            url = args.store_url or f"sqlite:///{workdir / 'default.db'}"
            began = time.perf_counter()
            default_scenario(url, workdir, args.ticks)
            print(f"  scenario wall time {time.perf_counter() - began:.1f}s\n")
        if args.only in (None, "1000"):
            url = args.store_url or f"sqlite:///{workdir / 'thousand.db'}"
            began = time.perf_counter()
            thousand_series_scenario(url, workdir, args.ticks, args.days)
            print(f"  scenario wall time {time.perf_counter() - began:.1f}s")


if __name__ == "__main__":
    main()
