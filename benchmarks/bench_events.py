"""The event-aware claim, measured: error in the ±90 min around kickoffs, with vs without events.

For each simulator seed: train on ``--train-weeks`` weeks (5-minute step), then forecast the next
``--test-days`` days in one go. The fixtures of the test window are new events (different
matches, importances, line-ups of competitions) the model never saw; it only knows their
metadata from the calendar, as an operator would. The same model class is fitted twice on the
same data: with the fixture calendar (training + test window) and without it.

Error = MAE (and sMAPE) of ``bet-placement:requests_per_second`` and
``odds-api:requests_per_second`` over the points within 90 minutes of a kickoff in the test
window (promotions excluded). Issue 3 target: at least 30% lower error with events.

Run: ``.venv/bin/python benchmarks/bench_events.py [--models seasonal_events prophet_events]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from models.forecasting.seasonal_events import SeasonalEvents
from simulator import Simulator, SimulatorConfig

SERIES = ["bet-placement:requests_per_second", "odds-api:requests_per_second"]
MODELS = ("seasonal_events", "prophet_events")


def model_class(name: str) -> type:
    if name == "prophet_events":  # imported lazily: Prophet is slow to import
        from models.forecasting.prophet_events import ProphetEvents

        return ProphetEvents
    return SeasonalEvents
START = pd.Timestamp("2026-02-02", tz="UTC")  # a Monday


def kickoff_mask(ds: pd.Series, fixtures: pd.DataFrame, minutes: int = 90) -> np.ndarray:
    """True where ``ds`` is within ``minutes`` of a (non-promotion) kickoff."""
    kick = pd.DatetimeIndex(fixtures.loc[fixtures["sport"] != "promotion", "start"]).as_unit("ns").asi8
    t = pd.DatetimeIndex(ds).as_unit("ns").asi8
    if kick.size == 0:
        return np.zeros(t.size, dtype=bool)
    kick = np.sort(kick)
    i = np.searchsorted(kick, t)
    left, right = kick[np.clip(i - 1, 0, kick.size - 1)], kick[np.clip(i, 0, kick.size - 1)]
    near = np.minimum(np.abs(t - left), np.abs(t - right))
    return near <= minutes * 60_000_000_000


def smape(y: np.ndarray, f: np.ndarray) -> float:
    d = np.abs(y) + np.abs(f)
    return float(np.mean(np.where(d > 0, 2 * np.abs(y - f) / np.where(d > 0, d, 1), 0.0)) * 100)


def run(seed: int, name: str, train_weeks: int, test_days: int) -> list[dict]:
    sim = Simulator(SimulatorConfig(seed=seed, step="5min"))
    cut = START + pd.Timedelta(weeks=train_weeks)
    end = cut + pd.Timedelta(days=test_days)
    train = sim.series(START, cut, SERIES)
    test = sim.series(cut, end, SERIES)
    calendar = sim.fixtures(START - pd.Timedelta(days=1), end)
    horizon = test_days * 288
    rows = []
    for with_events in (False, True):
        model = model_class(name)()
        t0 = time.perf_counter()
        model.fit(train, events=calendar if with_events else None)
        t1 = time.perf_counter()
        fc = model.predict(horizon, level=0.9)
        t2 = time.perf_counter()
        joined = test.merge(fc, on=["unique_id", "ds"], how="inner")
        mask = kickoff_mask(joined["ds"], calendar[calendar["start"] >= cut])
        for uid, g in joined[mask].groupby("unique_id"):
            y, f = g["y"].to_numpy(), g["yhat"].to_numpy()
            inside = (y >= g["yhat_lower"]) & (y <= g["yhat_upper"])
            rows.append({
                "seed": seed, "model": name, "events": with_events, "series": uid,
                "mae": float(np.mean(np.abs(y - f))), "smape": smape(y, f),
                "cover90": float(inside.mean()), "fit_s": t1 - t0, "predict_s": t2 - t1,
            })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[11, 23])
    ap.add_argument("--train-weeks", type=int, default=5)
    ap.add_argument("--test-days", type=int, default=7)
    args = ap.parse_args()
    rows = [
        r for name in args.models for seed in args.seeds
        for r in run(seed, name, args.train_weeks, args.test_days)
    ]
    res = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    print(f"train {args.train_weeks} weeks at 5 min from {START.date()}, test the next "
          f"{args.test_days} days (new fixtures), seeds {args.seeds}; error within ±90 min of "
          "kickoffs")
    print(res.round(3).to_string(index=False))
    print()
    summary = res.groupby(["model", "series", "events"])[["mae", "smape", "cover90"]].mean()
    wide = summary.unstack("events")
    out = pd.DataFrame({
        "mae_without": wide[("mae", False)], "mae_with": wide[("mae", True)],
        "smape_without": wide[("smape", False)], "smape_with": wide[("smape", True)],
    })
    out["mae_reduction_%"] = 100 * (1 - out["mae_with"] / out["mae_without"])
    out["smape_reduction_%"] = 100 * (1 - out["smape_with"] / out["smape_without"])
    print(out.round(2).to_string())
    print()
    for name, g in out.groupby(level="model"):
        red = 100 * (1 - g["mae_with"].sum() / g["mae_without"].sum())
        red_s = 100 * (1 - g["smape_with"].mean() / g["smape_without"].mean())
        t = res[res["model"] == name].groupby("events")[["fit_s", "predict_s"]].mean()
        print(f"{name}: MAE reduction with events {red:.1f}% (sMAPE {red_s:.1f}%), target >= 30%:"
              f" {'PASS' if min(red, red_s) >= 30 else 'FAIL'}; mean fit {t['fit_s'].to_dict()} s,"
              f" predict {t['predict_s'].round(3).to_dict()} s (2 series, per call)")


if __name__ == "__main__":
    main()
