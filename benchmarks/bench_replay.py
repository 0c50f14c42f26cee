"""Issue 5 acceptance 1, measured: the predictive replica policy against reactive scaling.

    .venv/bin/python benchmarks/bench_replay.py                  # dev traces + simulator
    .venv/bin/python benchmarks/bench_replay.py --skip-simulator

A. Dev traces (``../shared/data/traffic/series``): each rescaled to a mean of 700 req/s,
   C = 100 req/s per replica, D = 5 min, u = 0.7. For each, the predictive policy (exactly
   what ``surgecast replay`` writes), reactive (HPA), yesterday and oracle under the replay
   model of :mod:`actions.replay`. Bar: median over traces at least 70 % fewer overloaded
   minutes than reactive with at most 10 % more replica-hours, and better than yesterday on
   both.
B. Simulator traces with fixtures: ``bet-placement:requests_per_second`` at a 1-minute step
   for ``--days`` days per seed (the first week is history), same setting; overloaded
   minutes within ±30 min of every kickoff ("the hour around kickoffs"), predictive (with and
   without the fixture calendar) vs reactive. Bar: at least 90 % fewer. The policy reads only
   the calendar's ``start, end, sport, competition, importance`` (never the simulator's
   ``expected_uplift`` or names). ``--seeds 11 23 7 31`` checks more than the default two.

The official harness (``../shared/bench/eval_cli_replay.py``) runs the CLI on the same dev
traces; its figures agree with part A (same replay model).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actions.replay import (  # noqa: E402
    oracle_replicas,
    reactive_replicas,
    replay,
    yesterday_replicas,
)
from simulator import Simulator, SimulatorConfig  # noqa: E402
from surgecast.replay import ReplayPolicy, predictive_schedule  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT.parent / "shared" / "data" / "traffic" / "series"
C, U, DELAY = 100.0, 0.7, 300
SIM_START = pd.Timestamp("2026-09-07", tz="UTC")  # a Monday in the football season
SERIES = "bet-placement:requests_per_second"


def policies(
    times: pd.DatetimeIndex,
    load: np.ndarray,
    events: pd.DataFrame | None = None,
    policy: ReplayPolicy | None = None,
) -> dict[str, np.ndarray]:
    pol = policy or ReplayPolicy(C, DELAY, target_utilization=U)
    t0 = time.perf_counter()
    ours = predictive_schedule(times, load, pol, events=events)["replicas"].to_numpy()
    elapsed = time.perf_counter() - t0
    print(f"  predictive policy: {len(load):,} rows in {elapsed:.2f} s")
    return {
        "predictive": ours,
        "reactive": reactive_replicas(times, load, C, U),
        "yesterday": yesterday_replicas(times, load, C, U, DELAY),
        "oracle": oracle_replicas(times, load, C, U, DELAY),
    }


def dev_traces() -> tuple[list[float], list[float]]:
    reductions, costs = [], []
    for path in sorted(TRACES.glob("*.csv")):
        frame = pd.read_csv(path, parse_dates=["timestamp"])
        times = pd.DatetimeIndex(frame["timestamp"]).tz_localize("UTC")
        load = frame["value"].to_numpy(float) * (700.0 / frame["value"].mean())
        print(f"{path.stem}: {len(load):,} rows")
        res = {n: replay(times, load, r, C, DELAY) for n, r in policies(times, load).items()}
        for name, r in res.items():
            print(
                f"  {name:11s} unserved {r.unserved_pct:7.3f} %  overloaded {r.overload_minutes:7,.0f}"
                f" min  replica-hours {r.replica_hours:9,.0f}"
            )
        ours, react, yest = res["predictive"], res["reactive"], res["yesterday"]
        red = 1 - ours.overload_minutes / react.overload_minutes
        cost = ours.replica_hours / react.replica_hours
        beats = (
            ours.overload_minutes < yest.overload_minutes
            and ours.replica_hours < yest.replica_hours
        )
        print(
            f"  → {100 * red:.1f} % fewer overloaded minutes than reactive, replica-hours "
            f"x{cost:.3f}; beats yesterday on both: {beats}"
        )
        reductions.append(red)
        costs.append(cost)
    print(
        f"\nDEV MEDIAN overload reduction {np.median(reductions):.4f} (bar >= 0.70), "
        f"cost ratio {np.median(costs):.4f} (bar <= 1.10)\n"
    )
    return reductions, costs


def kickoff_window_mask(
    start: pd.Timestamp, sim_step_s: int, n: int, kickoffs: pd.Series, minutes: int = 30
) -> np.ndarray:
    t = start.value + np.arange(n, dtype=np.int64) * sim_step_s * 1_000_000_000
    mask = np.zeros(n, dtype=bool)
    for k in pd.DatetimeIndex(kickoffs).as_unit("ns").asi8:
        mask |= np.abs(t - k) <= minutes * 60_000_000_000
    return mask


def simulator_traces(seeds: list[int], days: int, event_weight: float) -> None:
    summary: list[tuple[int, float, float]] = []
    for seed in seeds:
        sim = Simulator(SimulatorConfig(seed=seed, step="1min", incidents_per_day=0))
        end = SIM_START + pd.Timedelta(days=days)
        frame = sim.series(SIM_START, end, [SERIES])
        times = pd.DatetimeIndex(frame["ds"])
        load = frame["y"].to_numpy(float)
        load = load * (700.0 / load.mean())
        calendar = sim.fixtures(SIM_START - pd.Timedelta(days=1), end + pd.Timedelta(days=1))
        scored = calendar[
            (calendar["sport"] != "promotion")
            & (calendar["start"] >= SIM_START + pd.Timedelta(days=7))
            & (calendar["start"] < end - pd.Timedelta(hours=1))
        ]
        print(
            f"simulator seed {seed}: {len(load):,} rows, {len(scored)} kickoffs scored "
            f"(after the first week)"
        )
        runs = policies(
            times,
            load,
            events=calendar[["start", "end", "sport", "competition", "importance"]],
            policy=ReplayPolicy(C, DELAY, target_utilization=U, event_overload_weight=event_weight),
        )
        runs["predictive, no calendar"] = predictive_schedule(
            times, load, ReplayPolicy(C, DELAY, target_utilization=U)
        )["replicas"].to_numpy()
        results = {n: replay(times, load, r, C, DELAY) for n, r in runs.items()}
        base = None
        for name, r in results.items():
            mask = kickoff_window_mask(times[0], r.sim_step_s, r.overloaded.size, scored["start"])
            near = r.overloaded[mask].sum() * r.sim_step_s / 60
            if name == "reactive":
                base = near
            print(
                f"  {name:24s} overloaded {r.overload_minutes:6,.0f} min (±30 min of kickoffs: "
                f"{near:5,.0f})  replica-hours {r.replica_hours:8,.0f}"
            )
        step_s = int((times[1] - times[0]).total_seconds())
        row_mask = kickoff_window_mask(times[0], step_s, len(load), scored["start"])
        step_h = step_s / 3600
        asked_near = {n: runs[n][row_mask].sum() * step_h for n in ("predictive", "reactive")}
        for name in ("predictive", "predictive, no calendar"):
            r = results[name]
            mask = kickoff_window_mask(times[0], r.sim_step_s, r.overloaded.size, scored["start"])
            near = r.overloaded[mask].sum() * r.sim_step_s / 60
            red = 1 - near / base if base else float("nan")
            cost = r.replica_hours / results["reactive"].replica_hours
            print(
                f"  → {name}: {100 * red:.1f} % fewer overloaded minutes around kickoffs than "
                f"reactive (bar >= 90 %); replica-hours x{cost:.3f}"
            )
            if name == "predictive":
                summary.append((seed, red, cost))
        print(
            f"  replica-hours asked for within ±30 min of kickoffs: predictive x"
            f"{asked_near['predictive'] / asked_near['reactive']:.3f} of reactive"
        )
        print()
    if summary:
        worst = min(summary, key=lambda x: x[1])
        costs = [c for _, _, c in summary]
        print(
            f"SIMULATOR: worst reduction around kickoffs {worst[1]:.4f} (seed {worst[0]}; bar >= "
            f"0.90) over seeds {[s for s, _, _ in summary]}; replica-hours x{min(costs):.3f}"
            f"..x{max(costs):.3f} of reactive"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[11, 23])
    ap.add_argument("--days", type=int, default=21)
    ap.add_argument("--skip-simulator", action="store_true")
    ap.add_argument("--skip-dev", action="store_true")
    ap.add_argument(
        "--event-weight",
        type=float,
        default=ReplayPolicy(C, DELAY).event_overload_weight,
        help="event_overload_weight of the predictive policy with the calendar",
    )
    args = ap.parse_args()
    if not args.skip_dev:
        dev_traces()
    if not args.skip_simulator:
        simulator_traces(args.seeds, args.days, args.event_weight)


if __name__ == "__main__":
    main()
