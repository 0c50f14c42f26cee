"""Acceptance 3 of issue 4, measured: detection delay per incident kind, false alarms per day.

    python benchmarks/bench_incidents.py                       # defaults below
    python benchmarks/bench_incidents.py --days 28 --incidents-per-day 2 --seed 7
    python benchmarks/bench_incidents.py --isolation           # with the multivariate one

Scenario A (incidents on): simulator data at a 1-minute step; detectors run causally (fit on a
warm-up, then score the rest as it would arrive), built by the tick's own functions in
``surgecast/detection.py``: Novelty on every volume (``per_series``), the ratio detector over
the service ratios, ChangePoint (CUSUM) on p95 latency given load (``latency_changepoint``) and
on error ratios given load (``error_changepoint``), ``absent_series`` at every tick where a
series is late and, with ``--isolation`` (off in the tick by default), the IsolationForest over
each service's rates and ratios. Every anomaly frame goes through the tick's debouncers (``make_debouncers``,
with the fixture calendar). For each labelled incident the delay is from its start to the first
alarm on an affected series or on a ratio or service model built from one. Target: <= 5 minutes
for every kind. ``ovl`` counts incidents that start while an earlier incident is still running
on the same alarm targets (a payment outage inside a payment outage): their start raises no new
signal, and the earlier incident's alarm is already open.

Scenario B (fixtures on, ``incidents_per_day=0``): the same pipeline over 7 days after warm-up;
every alarm is false. Target: < 1 per day after debouncing.

C (latency_degradation, what can be seen at all): per incident, the log shift of the p95 at
minute 5, the p95 noise there and the matched-filter signal-to-noise of minutes 1-5 (``SNR5``:
the best evidence any detector can have from the p95, knowing the ramp); ``eSNR5``, the same for
the extra errors, counted as binomial around the simulator's exact expected error ratio (an upper
bound: a detector has to estimate that ratio from load); ``both``, the two together; the delay of
an *oracle* CUSUM (k=1) on the true residual ``log(y / expected)`` of the p95 divided by the
noise fitted on it, its level set to the largest sum over the 7 incident-free days of scenario
B; and the detectors' first alarm on the p95 alone and on any target (the error ratio included).

Measured on a 2-core machine (A: 21 days, 2 incidents a day; "outside": alarms outside every
incident window, recovery tails included; B: scenario B with events). Seeds 7, 11 and 23 are
the ones the detectors' levels were chosen on; 41-45 were first run after those choices:

    seed  <=5 min      other kinds <=5  latency <=5 (p95 oracle)  latency median  outside   B
    7     47/52 ovl 4  44/45 (ovl)      3/7  (3)                  6 min           0.43/day  0/day
    11    37/43 ovl 5  31/32 (ovl)      6/11 (2)                  3 min           0.10/day  0/day
    23    42/45 ovl 3  36/36            6/9  (2)                  3 min           0.24/day  0/day
    41    47/55 ovl 9  38/43 (4 ovl)    9/12                      2 min           0.29/day  0/day
    42    46/48 ovl 6  37/38 (ovl)      9/10                      3 min           0.29/day  0.14/day
    43    35/38 ovl 1  31/32 (ovl)      4/6                       2 min           0.19/day  0/day
    44    40/40        28/28            12/12                     1 min           0.52/day  0.14/day
    45    32/33 ovl 1  28/28            4/5                       2 min           0.10/day  0/day

Median delay per kind on every seed: bot_attack 1, ddos 0-1, metric_silence 3, payment_outage
1 minute; latency_degradation as above. Every other-kind incident later than 5 minutes starts
inside an earlier incident on the same targets (a bot attack during a DDoS on odds-api, whose
alarm on bets per odds request is still cooling down; a payment outage inside a payment outage),
except one bot attack on seed 41 (13 minutes), which starts 10 minutes after a DDoS on odds-api
ended: the DDoS alarmed on bets per odds request at 11:36 and 12:36, and the 60-minute cool-down
held the repeat until 13:36 (in the tick, that alert is still open then).

A latency degradation ramps the p95 by ``x m`` over ``D`` minutes and its errors by
``0.24 (m - 1)`` of requests, 12 points on average over a doubling [TT15]. The p95 alone shifts
by ``log(1 + (m - 1) t / D)`` after ``t`` minutes: at minute 5 that is 0.5-3.7 noise sigmas, a
matched-filter SNR of 0.8-5.7 over minutes 1-5, and the oracle, which knows the expected latency
and the noise exactly, alarms within 5 minutes on 3, 2 and 2 (seeds 7, 11, 23). The errors make
the difference: caught early where the service has requests enough (odds-api, account, busy
bet-placement), late on slow ramps on payments. On seeds 7, 11 and 23 every latency
degradation caught later than 5 minutes is inside an earlier one on the same service (ovl) or
has ``both`` <= 12.6. Four of them (2.81 and 3.22 on seed 7, 2.78 on 11, 3.22 on 23: at least
one a seed) have ``both`` <= 3.3: a matched filter that knows the ramp's shape and both expected
values exactly, set at 3.2 sigma, already crosses 0.83 times a day on one series of white
noise, so no detector within the budget of scenario B catches those within 5 minutes. Two more
(4.51 on 11, 4.56 on 23) sit at the level such a filter needs for a few false alarms a year.

History of these rows: the errors of a degradation followed [TT15]'s hourly figure from
2026-11-29 (``0.12 (m - 1)`` at the peak before, 6 points over the hour, half the source's;
latency within 5 minutes then 2/7, 6/11, 5/9). Novelty no longer watches p95s (``per_series``):
on seeds 7/11/23 it had raised 1, 2 and 1 of scenario B's alarms and on seed 45 eight (1.14 a
day), one-point new extremes of a p95 of few requests in the small hours; without it the
latency rows lost one incident within 5 minutes on seed 7 (median 5 -> 6). The failure ratios'
own level (``FAILURE_RATIO_THRESHOLD``, 8 sigma) caught seed 43's 06:25 deposit outage, missed
at 12 sigma. ``--isolation`` changes no delay above and adds 35-65 alarms (mostly duplicates of
the ratio detector's) and 0-2 outside incident windows.
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
from models.anomaly.changepoint import cusum  # noqa: E402
from models.anomaly.isolation import IsolationDetector, default_feature_specs  # noqa: E402
from models.anomaly.load_model import count_scale, count_scale_fit  # noqa: E402
from models.anomaly.novelty import Novelty  # noqa: E402
from models.anomaly.ratios import RatioDetector, default_ratio_specs  # noqa: E402
from simulator import Simulator, SimulatorConfig  # noqa: E402
from simulator.incidents import _degradation_errors  # noqa: E402
from surgecast.detection import (  # noqa: E402
    error_changepoint,
    latency_changepoint,
    make_debouncers,
    per_series,
)

START = pd.Timestamp("2026-10-05", tz="UTC")  # a Monday, autumn football season
STEP = pd.Timedelta("1min")
LATENCY = "latency_p95_seconds"


def absent_frames(frame: pd.DataFrame, start: pd.Timestamp, grace: int) -> pd.DataFrame:
    """``absent_series`` at every tick where some series has missed points (same alarms as
    running it every minute: at the other ticks every series is on time)."""
    f = frame.sort_values(["unique_id", "ds"])
    ds = pd.DatetimeIndex(f["ds"]).as_unit("ns").asi8
    uid = f["unique_id"].to_numpy()
    gap = (uid[1:] == uid[:-1]) & (np.diff(ds) > STEP.value)
    out = []
    for i in np.flatnonzero(gap):
        for tick in range(ds[i] + STEP.value, ds[i + 1], STEP.value):
            t = pd.Timestamp(tick, tz="UTC")
            if t < start:
                continue
            wm = {uid[i]: pd.Timestamp(ds[i], tz="UTC")}
            out.append(absent_series(wm, t, STEP, grace))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def run(sim: Simulator, start: pd.Timestamp, end: pd.Timestamp, warmup_days: int,
        events: pd.DataFrame | None, isolation: bool = False
        ) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """All alarms raised over ``[start, end)`` after ``warmup_days`` of history, the timings,
    and the changepoint's scores."""
    t0 = start - pd.Timedelta(days=warmup_days)
    frame = sim.series(t0, end)
    warm, live = frame[frame["ds"] < start], frame[frame["ds"] >= start]
    timings, scored = {}, []
    tic = time.perf_counter()
    # ratios and error ratios are the ratio detector's, p95s the CUSUM's; Novelty watches volumes
    own = {u: per_series(u) for u in frame["unique_id"].unique()}
    nov = Novelty().fit(warm[warm["unique_id"].map(own)])
    scored.append(nov.score(live[live["unique_id"].map(own)]))
    timings["novelty"] = time.perf_counter() - tic
    tic = time.perf_counter()
    scored.append(RatioDetector().fit(warm).score(live))
    timings["ratio"] = time.perf_counter() - tic
    tic = time.perf_counter()
    cp = latency_changepoint(sim.series_ids())
    assert cp is not None
    cp_scores = cp.fit(warm).score(live)
    scored.append(cp_scores)
    timings["changepoint"] = time.perf_counter() - tic
    tic = time.perf_counter()
    ecp = error_changepoint(sim.series_ids())
    assert ecp is not None
    scored.append(ecp.fit(warm).score(live))
    timings["error_changepoint"] = time.perf_counter() - tic
    if isolation:
        tic = time.perf_counter()
        scored.append(IsolationDetector().fit(warm).score(live))
        timings["isolation"] = time.perf_counter() - tic
    tic = time.perf_counter()
    scored.append(absent_frames(frame, start, grace=3))
    timings["absent"] = time.perf_counter() - tic
    tic = time.perf_counter()
    debouncers, alarms = make_debouncers(events), []
    for s in scored:
        if len(s):
            for det, g in s.groupby("detector"):
                alarms.append(debouncers[str(det)].update(g))
    timings["alarms"] = time.perf_counter() - tic
    out = pd.concat(alarms, ignore_index=True).sort_values("ds", ignore_index=True)
    return out, timings, cp_scores


def alarm_inputs(ids: list[str]) -> dict[str, set[str]]:
    """Alarm id -> the series it is built from (a ratio, a service's multivariate model)."""
    out = {s.name: {s.numerator, s.denominator} for s in default_ratio_specs(ids)}
    for f in default_feature_specs(ids):
        out.setdefault(f"{f.service}:isolation", set()).update(
            {f.numerator} | ({f.denominator} if f.denominator else set()))
    return out


def targets(affected: set[str], inputs: dict[str, set[str]]) -> set[str]:
    """Every alarm id that counts for an incident on ``affected``."""
    return affected | {a for a, used in inputs.items() if used & affected}


def oracle_residuals(sim: Simulator, start: pd.Timestamp, end: pd.Timestamp
                     ) -> dict[str, pd.Series]:
    """Per latency series: ``log(y / expected)`` and the request count per step."""
    y = sim.series(start, end)
    e = sim.expected(start, end)
    out = {}
    for uid in sorted(u for u in sim.series_ids() if u.endswith(LATENCY)):
        yy = y[y["unique_id"] == uid].set_index("ds")["y"]
        ee = e[e["unique_id"] == uid].set_index("ds")["y"]
        req = y[y["unique_id"] == uid.replace(LATENCY, "requests_per_second")]
        n = req.set_index("ds")["y"].reindex(ee.index).ffill() * sim.step.total_seconds()
        out[uid] = pd.DataFrame({"r": np.log(yy.reindex(ee.index) / ee), "n": n})
    return out


def latency_bound(sim0: Simulator, sim: Simulator, end: pd.Timestamp, inc: pd.DataFrame,
                  alarms: pd.DataFrame, delays: dict[str, float]) -> None:
    """Section C: what a ramp shows in its p95 in its first 5 minutes, an oracle's delay on
    the p95 alone, the detectors' first alarm on the p95 and on any of the incident's targets
    (``delays``: section A's, by incident id: the error ratio counts there)."""
    null = oracle_residuals(sim0, START, START + pd.Timedelta(days=7))
    noise, level, h = {}, {}, 0.0
    for uid, d in null.items():
        level[uid] = float(d["r"].median())
        noise[uid] = count_scale_fit(d["r"].to_numpy() - level[uid], d["n"].to_numpy())
    def sigma_of(uid: str, d: pd.DataFrame) -> np.ndarray:
        fit = noise[uid]
        return count_scale(fit, d["n"].to_numpy()) if fit else np.full(len(d), d["r"].std())

    def z_of(uid: str, d: pd.DataFrame) -> np.ndarray:
        return np.nan_to_num((d["r"].to_numpy() - level[uid]) / sigma_of(uid, d))
    for uid, d in null.items():
        h = max(h, float(cusum(z_of(uid, d), k=1.0)[0].max()))
    live = oracle_residuals(sim, START, end)
    lat = inc[inc["kind"] == "latency_degradation"]
    base = sim.expected(START, end).pivot(index="ds", columns="unique_id", values="y")
    print(f"\nC. latency_degradation: evidence at minute 5 (oracle CUSUM k=1, h={h:.2f}: the "
          "largest over scenario B)")
    print(f"{'start':17s} {'service':14s} {'x m':>5s} {'D':>4s} {'shift5':>6s} {'sigma':>6s} "
          f"{'SNR5':>5s} {'eSNR5':>5s} {'both':>5s} {'oracle':>6s} {'p95':>6s} {'any':>6s}")
    rows = []
    for r in lat.itertuples():
        uid = next(u for u in r.unique_ids.split(",") if u.endswith(LATENCY))
        d = live[uid]
        s = pd.Series(cusum(z_of(uid, d), k=1.0)[0], index=d.index)
        dur = (r.end - r.start) / STEP
        t = np.arange(1, 6)
        shift = np.log1p((r.magnitude - 1) * t / dur)
        sigma = float(sigma_of(uid, d.loc[[r.start]])[0])
        snr = float(np.sqrt((shift**2).sum()) / sigma)
        # the errors' evidence, as if they were binomial around the known expected ratio (the
        # real spread is wider: errors per request rise with load), so an upper bound
        minutes = r.start + t * STEP  # minutes 1-5 of the ramp, as for the p95 above
        p0 = base.reindex(minutes)[f"{r.service}:error_ratio"].to_numpy()
        n = d["n"].reindex(minutes).to_numpy()
        extra = np.minimum(p0 + _degradation_errors(r.magnitude) * t / dur, 0.5) - p0
        esnr = float((n * extra).sum() / np.sqrt((n * p0 * (1 - p0)).sum()))
        hit = s.loc[r.start:r.end]
        oracle = (hit.index[hit.to_numpy() >= h][0] - r.start) / STEP if (hit >= h).any() else np.nan
        mine = alarms[(alarms["unique_id"] == uid) & (alarms["ds"] >= r.start)
                      & (alarms["ds"] <= r.end)]["ds"]
        delay = (mine.min() - r.start) / STEP if len(mine) else np.nan
        anyd = delays.get(r.incident_id, np.nan)
        rows.append((oracle, delay, anyd))
        print(f"{r.start:%m-%d %H:%M}      {r.service:14s} {r.magnitude:5.2f} {dur:4.0f} "
              f"{shift[-1]:6.3f} {sigma:6.3f} {snr:5.2f} {esnr:5.2f} {np.hypot(snr, esnr):5.2f} "
              f"{oracle:6.0f} {delay:6.0f} {anyd:6.0f}")
    o, m, a = (np.array([r[i] for r in rows], dtype=float) for i in (0, 1, 2))
    print(f"within 5 min: p95 oracle {int((o <= 5).sum())}, the detectors on the p95 "
          f"{int((m <= 5).sum())}, on any target {int((a <= 5).sum())} of {len(rows)}; medians "
          f"{np.nanmedian(o):.0f}, {np.nanmedian(m):.0f} and {np.nanmedian(a):.0f} min")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=21)
    ap.add_argument("--incidents-per-day", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--warmup-days", type=int, default=3)
    ap.add_argument("--isolation", action="store_true",
                    help="add the multivariate IsolationDetector (off in the tick by default)")
    args = ap.parse_args()
    iso = args.isolation

    # ---------------------------------------------------------------- A: incidents
    sim = Simulator(SimulatorConfig(seed=args.seed, step="1min",
                                    incidents_per_day=args.incidents_per_day))
    end = START + pd.Timedelta(days=args.days)
    events = sim.fixtures(START - pd.Timedelta(days=args.warmup_days), end)
    alarms, timings, _ = run(sim, START, end, args.warmup_days, events, iso)
    inc = sim.incidents(START, end)
    inc = inc[inc["start"] >= START].reset_index(drop=True)
    inputs = alarm_inputs(sim.series_ids())
    a_uid, a_ds = alarms["unique_id"].to_numpy(), alarms["ds"]
    rows, used = [], np.zeros(len(alarms), dtype=bool)
    running: list[tuple[pd.Timestamp, set[str]]] = []
    for r in inc.itertuples():
        mine = targets(set(r.unique_ids.split(",")), inputs)
        overlap = any(e > r.start and mine & t for e, t in running)
        running.append((r.end, mine))
        hit_series = np.array([u in mine for u in a_uid], dtype=bool)
        window = hit_series & (a_ds >= r.start).to_numpy() & (a_ds <= r.end).to_numpy()
        used |= window
        first = a_ds[window].min() if window.any() else pd.NaT
        delay = (first - r.start).total_seconds() / 60 if window.any() else np.nan
        by = ", ".join(sorted(set(alarms.loc[window, "detector"]))) if window.any() else "-"
        rows.append((r.incident_id, r.kind, delay, by, overlap))
    res = pd.DataFrame(rows, columns=["incident_id", "kind", "delay_min", "detectors", "overlap"])
    print(f"\nA. detection delay, {args.days} days from {START.date()}, 1-min step, seed "
          f"{args.seed}, incidents_per_day={args.incidents_per_day} ({len(inc)} incidents)"
          f"{', with isolation' if iso else ''}")
    print(f"{'kind':22s} {'n':>3s} {'ovl':>3s} {'detected':>8s} {'<=5min':>6s} {'median':>7s} "
          f"{'p90':>6s} {'max':>6s}  first alarm by")
    for kind, g in res.groupby("kind"):
        d = g["delay_min"].dropna()

        def q(p: float, d: pd.Series = d) -> str:
            return f"{np.percentile(d, p):6.0f}" if len(d) else "     -"
        dets = ", ".join(sorted({x for s in g["detectors"] for x in s.split(", ") if x != "-"}))
        print(f"{kind:22s} {len(g):3d} {int(g['overlap'].sum()):3d} {len(d):8d} "
              f"{int((d <= 5).sum()):6d} {q(50):>7s} {q(90)} {q(100)}  {dets}")
    d = res["delay_min"].dropna()
    late = res[~(res["delay_min"] <= 5)]
    print(f"{'all':22s} {len(res):3d} {int(res['overlap'].sum()):3d} {len(d):8d} "
          f"{int((d <= 5).sum()):6d}")
    print("later than 5 min: " + (", ".join(
        f"{k} {v:.0f}{' (ovl)' if o else ''}" for k, v, o in
        late[["kind", "delay_min", "overlap"]].itertuples(index=False)) or "none"))
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
        al, _, _ = run(sim0, START, end0, args.warmup_days, ev, iso)
        per = al.groupby("detector").size().to_dict() if len(al) else {}
        kinds = al.groupby("kind").size().to_dict() if len(al) else {}
        print(f"{label:15s} alarms {len(al):4d}  per day {len(al) / 7:5.2f}  by detector "
              f"{per}  by kind {kinds}")

    # ---------------------------------------------------------------- C: latency bound
    latency_bound(sim0, sim, end, inc, alarms,
                  dict(zip(res["incident_id"], res["delay_min"], strict=True)))
    print()


if __name__ == "__main__":
    main()
