"""How fast `surgecast detect` runs: one million points through the CLI, end to end.

    python benchmarks/bench_detect.py [--points 1000000] [--series 1]

Writes a synthetic daily-seasonal Poisson series (with a few injected spikes) to a temp CSV,
runs the real console script on it (read, detect causally, write) and prints the wall time and
throughput. Figures depend on the machine: quote them with its size.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--series", type=int, default=1)
    parser.add_argument("--detector", default="auto")
    args = parser.parse_args()
    per = args.points // args.series
    rng = np.random.default_rng(7)
    ds = pd.date_range("2024-01-01", periods=per, freq="min", tz="UTC")
    minute = np.arange(per) % 1440
    base = 200 + 150 * np.sin(2 * np.pi * minute / 1440)
    frames = []
    for i in range(args.series):
        y = rng.poisson(base).astype(float)
        y[rng.integers(2000, per, 5)] *= 4
        frames.append(pd.DataFrame({"unique_id": f"s{i:03d}", "ds": ds, "y": y}))
    frame = pd.concat(frames, ignore_index=True)
    exe = Path(sys.executable).with_name("surgecast")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.csv", Path(tmp) / "out.csv"
        frame.to_csv(src, index=False)
        began = time.perf_counter()
        subprocess.run([str(exe), "detect", str(src), "--detector", args.detector, "-o", str(out)], check=True)
        wall = time.perf_counter() - began
        rows = sum(1 for _ in out.open()) - 1
    print(f"detect --detector {args.detector}: {len(frame):,} points in {args.series} series, "
          f"{rows:,} output rows, wall {wall:.1f} s, {len(frame) / wall:,.0f} points/s")


if __name__ == "__main__":
    main()
