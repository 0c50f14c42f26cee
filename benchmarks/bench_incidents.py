"""Acceptance 3 of issue 4, measured: detection delay per incident kind, false alarms per day.

    python benchmarks/bench_incidents.py                       # defaults below
    python benchmarks/bench_incidents.py --days 28 --incidents-per-day 2 --seed 7

Scenario A (incidents on): simulator data at a 1-minute step; detectors run causally (fit on a
warm-up, then score the rest as it would arrive): Novelty on every series, the ratio detector
over the service ratios, ChangePoint (CUSUM) on p95 latency, and ``absent_series`` at every tick where a series is late. Every
anomaly frame goes through one :class:`Debouncer` (with the fixture calendar). For each labelled
incident the delay is from its start to the first alarm on an affected series or on a ratio
built from one. Target: <= 5 minutes for every kind.

Scenario B (fixtures on, ``incidents_per_day=0``): the same pipeline over 7 days after warm-up;
every alarm is false. Target: < 1 per day after debouncing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.anomaly.absent import absent_series  # noqa: E402
from models.anomaly.alarms import Debouncer  # noqa: E402
from models.anomaly.changepoint import ChangePoint  # noqa: E402
from models.anomaly.novelty import Novelty  # noqa: E402
from models.anomaly.ratios import RatioDetector, default_ratio_specs  # noqa: E402
from simulator import Simulator, SimulatorConfig  # noqa: E402

START = pd.Timestamp("2026-10-05", tz="UTC")  # a Monday, autumn football season
STEP = pd.Timedelta("1min")
REARM = "15min"  # a series quiet this long is re-armed: a new incident on it alarms at once


def absent_frames(frame: pd.DataFrame, start: pd.Timestamp, grace: int) -> pd.DataFrame:
    """``absent_series`` at every tick where some series has missed points (same alarms as
    running it every minute: at the other ticks every series is on time)."""
    f = frame.sort_values(["unique_id", "ds"])
    ds = pd.DatetimeIndex(f["ds"]).as_unit("ns").asi8
    uid = f["unique_id"].to_numpy()
    gap = (uid[1:] == uid[:-1]) & (np.diff(ds) > STEP.value)
    last = frame.groupby("unique_id")["ds"].agg(["min", "max"])
    out = []
    for i in np.flatnonzero(gap):
        for tick in range(ds[i] + STEP.value, ds[i + 1], STEP.value):
            t = pd.Timestamp(tick, tz="UTC")
            if t < start:
                continue
            wm = {uid[i]: pd.Timestamp(ds[i], tz="UTC")}
            out.append(absent_series(wm, t, STEP, grace))
    del last
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def run(sim: Simulator, start: pd.Timestamp, end: pd.Timestamp, warmup_days: int,
        debouncers: dict, events: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """All alarms raised over ``[start, end)`` after ``warmup_days`` of history."""
    t0 = start - pd.Timedelta(days=warmup_days)
    frame = sim.series(t0, end)
    warm, live = frame[frame["ds"] < start], frame[frame["ds"] >= start]
    timings = {}
    tic = time.perf_counter()
    # ratios and error ratios are the ratio detector's; Novelty watches volumes and latency
    nov = Novelty().fit(warm[~warm["unique_id"].str.endswith("error_ratio")])
    scored = [nov.score(live[~live["unique_id"].str.endswith("error_ratio")])]
    timings["novelty"] = time.perf_counter() - tic
    tic = time.perf_counter()
    rat = RatioDetector().fit(warm)
    scored.append(rat.score(live))
    timings["ratio"] = time.perf_counter() - tic
    tic = time.perf_counter()
    # slow latency drifts: CUSUM on log p95 adjusted for the service's own request load
    latency = [u for u in frame["unique_id"].unique() if u.endswith("latency_p95_seconds")]
    cp = ChangePoint(targets=latency, two_sided=False).fit(warm)
    scored.append(cp.score(live))
    timings["changepoint"] = time.perf_counter() - tic
    tic = time.perf_counter()
    scored.append(absent_frames(frame, start, grace=3))
    timings["absent"] = time.perf_counter() - tic
    tic = time.perf_counter()
    alarms = []
    for s in scored:
        if len(s):
            for det, g in s.groupby("detector"):
                alarms.append(debouncers[det].update(g))
    timings["alarms"] = time.perf_counter() - tic
    out = pd.concat(alarms, ignore_index=True).sort_values("ds", ignore_index=True)
    return out, timings


def load_driven(unique_id: str) -> bool:
    """Volumes and p95 latency rise with every kickoff (the simulator's latency follows load)."""
    return unique_id.endswith(("_per_second", "latency_p95_seconds"))


def load_driven_ratio(unique_id: str) -> bool:
    """Ratios that follow load: errors per request rise near capacity (every evening kickoff),
    bets per request fall at the final whistle (everyone checks results, few bet). Failure
    ratios (deposits, logins) and bets per odds request do not: events never excuse them."""
    return unique_id.endswith(("errors_per_request", "bets_per_request"))


def make_debouncers(events: pd.DataFrame) -> dict:
    # Novelty suppresses its own repeats (one hit per new extreme): debounce n=1. The cooldown
    # suppresses repeats within one episode of hits; REARM quiet minutes end the episode
    return {"novelty": Debouncer(n=1, m=1, cooldown="60min", rearm=REARM, events=events,
                                 drop_lags=("1D", "2D", "3D"), is_traffic=load_driven),
            # inside a fixture window a load-driven ratio moving is expected; outside it (a
            # DDoS at a quiet hour) it alarms, and failure ratios alarm at any time
            "ratio": Debouncer(n=2, m=3, cooldown="60min", rearm=REARM, events=events,
                               spike_kinds=("ratio",), is_traffic=load_driven_ratio),
            # the CUSUM already accumulates evidence: one hit is an alarm; a load-adjusted
            # latency shift is never excused by a kickoff (default is_traffic: volumes only)
            "changepoint": Debouncer(n=1, m=1, cooldown="60min", rearm=REARM, events=events),
            "absent": Debouncer(n=1, m=1, cooldown="60min", rearm=REARM, events=events)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=21)
    ap.add_argument("--incidents-per-day", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--warmup-days", type=int, default=3)
    args = ap.parse_args()

    # ---------------------------------------------------------------- A: incidents
    sim = Simulator(SimulatorConfig(seed=args.seed, step="1min",
                                    incidents_per_day=args.incidents_per_day))
    end = START + pd.Timedelta(days=args.days)
    events = sim.fixtures(START - pd.Timedelta(days=args.warmup_days), end)
    alarms, timings = run(sim, START, end, args.warmup_days, make_debouncers(events), events)
    inc = sim.incidents(START, end)
    inc = inc[inc["start"] >= START].reset_index(drop=True)
    specs = default_ratio_specs(sim.series_ids())
    inputs = {s.name: {s.numerator, s.denominator} for s in specs}
    a_uid, a_ds = alarms["unique_id"].to_numpy(), alarms["ds"]
    rows, used = [], np.zeros(len(alarms), dtype=bool)
    for r in inc.itertuples():
        affected = set(r.unique_ids.split(","))
        hit_series = np.array([u in affected or bool(inputs.get(u, set()) & affected)
                               for u in a_uid], dtype=bool)
        window = hit_series & (a_ds >= r.start).to_numpy() & (a_ds <= r.end).to_numpy()
        used |= window
        first = a_ds[window].min() if window.any() else pd.NaT
        delay = (first - r.start).total_seconds() / 60 if window.any() else np.nan
        by = ", ".join(sorted(set(alarms.loc[window, "detector"]))) if window.any() else "-"
        rows.append((r.kind, delay, by))
    res = pd.DataFrame(rows, columns=["kind", "delay_min", "detectors"])
    print(f"\nA. detection delay, {args.days} days from {START.date()}, 1-min step, seed "
          f"{args.seed}, incidents_per_day={args.incidents_per_day} ({len(inc)} incidents)")
    print(f"{'kind':22s} {'n':>3s} {'detected':>8s} {'<=5min':>6s} {'median':>7s} {'p90':>6s} "
          f"{'max':>6s}  first alarm by")
    for kind, g in res.groupby("kind"):
        d = g["delay_min"].dropna()

        def q(p: float, d: pd.Series = d) -> str:
            return f"{np.percentile(d, p):6.0f}" if len(d) else "     -"
        dets = ", ".join(sorted({x for s in g["detectors"] for x in s.split(", ") if x != "-"}))
        print(f"{kind:22s} {len(g):3d} {len(d):8d} {int((d <= 5).sum()):6d} {q(50):>7s} "
              f"{q(90)} {q(100)}  {dets}")
    d = res["delay_min"].dropna()
    print(f"{'all':22s} {len(res):3d} {len(d):8d} {int((d <= 5).sum()):6d}")
    n_fp = int((~used).sum())
    print(f"alarms {len(alarms)}, outside any incident window {n_fp} "
          f"({n_fp / args.days:.2f}/day); time: "
          + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))

    # ---------------------------------------------------------------- B: no incidents
    sim0 = Simulator(SimulatorConfig(seed=args.seed, step="1min", incidents_per_day=0))
    end0 = START + pd.Timedelta(days=7)
    events0 = sim0.fixtures(START - pd.Timedelta(days=args.warmup_days), end0)
    print(f"\nB. false alarms, 7 days from {START.date()} with fixtures, no incidents "
          f"({int((events0['start'] >= START).sum())} events)")
    for label, ev in (("with events", events0), ("without events", None)):
        al, _ = run(sim0, START, end0, args.warmup_days, make_debouncers(ev), ev)
        per = al.groupby("detector").size().to_dict() if len(al) else {}
        kinds = al.groupby("kind").size().to_dict() if len(al) else {}
        print(f"{label:15s} alarms {len(al):4d}  per day {len(al) / 7:5.2f}  by detector "
              f"{per}  by kind {kinds}")
    print()


if __name__ == "__main__":
    main()
