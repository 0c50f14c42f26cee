"""How long collecting 1,000 series x 1 day at a 1-minute step takes from a real Prometheus.

    python benchmarks/bench_collect.py                    # 1,000 series, 1 day
    python benchmarks/bench_collect.py --series 200 --days 3

Backfills ``--series`` gauges (``surgecast_sim_requests_per_second{service="s0001"}`` ...) with
promtool into a temp dir, starts the Debian ``prometheus`` on 127.0.0.1, then collects every
series over ``--days`` with :class:`collectors.prometheus.PrometheusCollector` two ways:

- **per series**: one query per series, as a tick does for 1,000 configured series;
- **one templated query**: ``surgecast_sim_requests_per_second`` named ``{service}:...`` from the
  label, one request for all of them (``service: "{service}"`` in surgecast.yaml).

Both are checked: every point once, values as backfilled. Figures depend on the machine and its
load: quote them with its size.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the same Prometheus fixture the integration test uses

from prometheus_stack import Prometheus, binary  # noqa: E402

from collectors import SeriesRequest  # noqa: E402
from collectors.prometheus import PrometheusCollector, QueryOptions  # noqa: E402
from simulator import write_openmetrics  # noqa: E402

STEP = pd.Timedelta("1min")


def synthetic(n_series: int, start: pd.Timestamp, end: pd.Timestamp, seed: int = 1) -> pd.DataFrame:
    """A daily cycle plus noise per series: values worth storing, cheap to make."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(start, end, freq=STEP, inclusive="left")
    phase = 2 * np.pi * (ds.hour.to_numpy() * 60 + ds.minute.to_numpy()) / 1440
    ids = [f"s{i:04d}:requests_per_second" for i in range(n_series)]
    base = rng.uniform(5, 500, n_series)[:, None]
    y = base * (1.2 + np.sin(phase)[None, :]) + rng.normal(0, 1, (n_series, len(ds)))
    return pd.DataFrame({
        "unique_id": np.repeat(ids, len(ds)),
        "ds": pd.DatetimeIndex(np.tile(ds.tz_localize(None).to_numpy(), n_series)).tz_localize("UTC"),
        "y": np.round(y, 3).ravel(),
    })  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=float, default=1.0)
    args = parser.parse_args()
    promtool = binary("promtool")
    end = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)  # clear of any head block
    start = end - pd.Timedelta(days=args.days)
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        frame = synthetic(args.series, start, end)
        write_openmetrics(frame, root / "bench.om")
        import subprocess

        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "--max-block-duration=168h", "openmetrics",
             str(root / "bench.om"), str(root / "data")],
            check=True, capture_output=True,
        )  # fmt: skip
        print(f"backfill: {len(frame):,} samples of {args.series} series in "
              f"{time.perf_counter() - began:.1f} s (OpenMetrics + promtool)")  # fmt: skip
        prom = Prometheus(root, root / "data", "global: {scrape_interval: 1m}\nscrape_configs: []\n")
        prom.start()
        try:
            per_series = PrometheusCollector(prom.url, step_seconds=60, timeout=60)
            t = time.perf_counter()
            got = [
                per_series.fetch(
                    SeriesRequest(uid, f'surgecast_sim_requests_per_second{{service="{uid.split(":")[0]}"}}'),
                    start, end,
                )
                for uid in frame["unique_id"].unique()
            ]
            seconds = time.perf_counter() - t
            per_series.close()
            _check(pd.concat(got, ignore_index=True), frame)
            print(f"per series : {args.series} queries, {sum(map(len, got)):,} points in {seconds:.2f} s "
                  f"({seconds / args.series * 1000:.1f} ms per series)")  # fmt: skip

            query = "surgecast_sim_requests_per_second"
            templated = PrometheusCollector(
                prom.url, step_seconds=60, timeout=120,
                queries={query: QueryOptions("{service}:requests_per_second")},
            )  # fmt: skip
            t = time.perf_counter()
            first = templated.fetch(SeriesRequest("s0000:requests_per_second", query), start, end)
            rest = [
                templated.fetch(SeriesRequest(uid, query), start, end)
                for uid in frame["unique_id"].unique()[1:]
            ]
            seconds = time.perf_counter() - t
            templated.close()
            _check(pd.concat([first, *rest], ignore_index=True), frame)
            print(f"templated  : 1 query, {len(first) + sum(map(len, rest)):,} points in {seconds:.2f} s")
        finally:
            prom.stop()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    return 0


def _check(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = got.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    want = want.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    same_times = len(got) == len(want) and np.array_equal(
        got["ds"].dt.as_unit("ns").astype("int64"), want["ds"].dt.as_unit("ns").astype("int64")
    )
    if not same_times:
        raise SystemExit(f"collected {len(got):,} points, backfilled {len(want):,}")
    if not np.allclose(got["y"].to_numpy(), want["y"].to_numpy(), rtol=0, atol=1e-9):
        raise SystemExit("collected values differ from the backfilled ones")


if __name__ == "__main__":
    raise SystemExit(main())
