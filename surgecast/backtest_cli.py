"""``surgecast backtest``: rolling-origin backtest of forecast models over a CSV, one table row per model.

For every series of INPUT (same shapes as ``surgecast forecast``) and every model, the series is
cut at ``K`` rolling origins (:func:`~models.forecasting.backtest.rolling_origin`, windows of
``H`` points that do not overlap); the model is fitted on what came before each origin and scored
on the next ``H`` points. Scores are averaged over windows and series: sMAPE (percent), MASE
(scaled by the in-sample seasonal-naive error at a lag of one day), 90% interval coverage and the
mean fit + predict seconds. ``auto`` and ``ensemble`` are backtested exactly as the forecast
command runs them (their own inner selection sees only each window's training part).

Example (the lead wires :func:`register` into ``surgecast.cli``)::

    app = typer.Typer(); register(app)
    # surgecast backtest traffic.csv --horizon 24 --cutoffs 4 --models naive,mstl,auto
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from models.forecasting.backtest import coverage, mase, rolling_origin, smape
from models.frequency import infer_step, season_length
from surgecast.config import load_settings
from surgecast.errors import ConfigError
from surgecast.forecast_cli import MODELS, InputError, fit_one, read_events, read_series
from surgecast.retrain import RetrainPolicy, policy_from_settings

__all__ = ["DEFAULT_MODELS", "LEVEL", "Score", "backtest_file", "format_table", "register"]

DEFAULT_MODELS = ("naive", "ets", "mstl", "auto")
LEVEL = 0.9
TABLE_COLUMNS = ["model", "series", "windows", "smape", "mase", "coverage90", "fit_seconds"]


@dataclass(frozen=True)
class Score:
    """One model's backtest of one window."""

    model: str
    unique_id: str
    smape: float
    mase: float
    coverage: float
    seconds: float


def parse_models(text: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``, checked against the forecast command's model names.

    Raises:
        InputError: an unknown or empty model list.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if not names or unknown:
        raise InputError(
            f"--models must be a comma-separated subset of {', '.join(MODELS)}; got {text!r}"
        )
    return list(dict.fromkeys(names))


def backtest_series(
    frame: pd.DataFrame, models: list[str], horizon: int, cutoffs: int,
    events: pd.DataFrame | None = None,
) -> list[Score]:
    """Backtest ``models`` on one series (``unique_id, ds, y``); failed windows are skipped."""
    uid = str(frame["unique_id"].iloc[0])
    season = season_length(infer_step(frame["ds"]))
    out = []
    for train, test in rolling_origin(frame, horizon, cutoffs):
        y = test["y"].to_numpy(float)
        for name in models:
            t0 = time.perf_counter()
            try:
                fc = fit_one(train.reset_index(drop=True), name, horizon, LEVEL, events)
            except InputError:
                continue
            seconds = time.perf_counter() - t0
            ok = np.isfinite(y)
            yhat, lo, hi = (fc[c].to_numpy(float)[ok] for c in ("yhat", "yhat_lower", "yhat_upper"))
            out.append(Score(
                model=name, unique_id=uid, smape=smape(y[ok], yhat),
                mase=mase(y[ok], yhat, train["y"].to_numpy(float), season),
                coverage=coverage(y[ok], lo, hi), seconds=seconds,
            ))
    return out


def backtest_file(
    path: Path, horizon: int | None, cutoffs: int | None, models: list[str],
    events: Path | None = None, policy: RetrainPolicy | None = None,
) -> pd.DataFrame:
    """The per-model table for every series of ``path`` (means over series and windows).

    With ``policy`` (the service's :class:`~surgecast.retrain.RetrainPolicy`), the horizon, the
    number of origins and the training window come from it, as in the retrain job.

    Raises:
        InputError: bad input, bad arguments, or no window could be backtested.
    """
    if policy is None and (horizon is None or cutoffs is None):
        raise InputError("give --horizon and --cutoffs, or --policy to use the service's retrain policy")
    if (horizon is not None and horizon < 1) or (cutoffs is not None and cutoffs < 1):
        raise InputError(f"--horizon and --cutoffs must be >= 1; got {horizon} and {cutoffs}")
    calendar = None if events is None else read_events(events)
    frame, _ = read_series(path)
    scores = []
    for _, g in frame.groupby("unique_id", sort=True):
        g = g.reset_index(drop=True)
        h, k = horizon, cutoffs
        try:
            if policy is not None:
                step = infer_step(g["ds"])
                h = h or policy.horizon_steps(step)
                k = k or policy.windows
                keep_from = g["ds"].iloc[-1] - pd.Timedelta(days=policy.train_window_days) - h * k * step
                g = g[g["ds"] >= keep_from].reset_index(drop=True)
            if h is None or k is None:  # unreachable: checked above; keeps the types honest
                raise InputError("give --horizon and --cutoffs")
            scores += backtest_series(g, models, h, k, calendar)
        except ValueError as exc:  # no inferable step: that series is skipped
            print(f"skipped: series {g['unique_id'].iloc[0]!r}: {exc}".splitlines()[0],
                  file=sys.stderr)
    if not scores:
        raise InputError(
            f"{path.name}: no backtest window of {horizon} steps after at least {horizon} "
            f"training points; lower --horizon or --cutoffs"
        )
    df = pd.DataFrame([s.__dict__ for s in scores])
    table = df.groupby("model", sort=False).agg(
        series=("unique_id", "nunique"), windows=("unique_id", "size"), smape=("smape", "mean"),
        mase=("mase", "mean"), coverage90=("coverage", "mean"), fit_seconds=("seconds", "mean"),
    ).reset_index()
    order = {m: i for i, m in enumerate(models)}
    return table.sort_values("model", key=lambda s: s.map(order), ignore_index=True)[TABLE_COLUMNS]


def format_table(table: pd.DataFrame) -> str:
    """Fixed-width text table (sMAPE in percent, coverage as a share)."""
    head = f"{'model':<10} {'series':>6} {'windows':>7} {'sMAPE':>8} {'MASE':>7} " \
           f"{'cov90':>6} {'fit_s':>7}"
    rows = [
        f"{r.model:<10} {r.series:>6d} {r.windows:>7d} {r.smape:>8.3f} {r.mase:>7.3f} "
        f"{r.coverage90:>6.3f} {r.fit_seconds:>7.3f}"
        for r in table.itertuples(index=False)
    ]
    return "\n".join([head, *rows])


def register(app: typer.Typer) -> None:
    """Add the ``backtest`` command to ``app``."""

    @app.command("backtest")
    def backtest(
        input: Path = typer.Argument(..., help="CSV: timestamp,value | ds,y | unique_id,ds,y."),
        horizon: int | None = typer.Option(None, "--horizon", help="Steps per backtest window."),
        cutoffs: int | None = typer.Option(None, "--cutoffs", help="Rolling origins per series."),
        models: str = typer.Option(
            ",".join(DEFAULT_MODELS), "--models", help=f"Comma-separated: {', '.join(MODELS)}."
        ),
        events: Path | None = typer.Option(
            None, "--events", help="Fixture calendar CSV: start, importance, competition."
        ),
        policy: bool = typer.Option(
            False, "--policy",
            help="Use the service's retrain policy (horizon, origins, training window) from --config.",
        ),
        config: Path | None = typer.Option(None, "--config", help="surgecast.yaml for --policy."),
    ) -> None:
        """Backtest models over rolling origins; print sMAPE, MASE, 90% coverage, fit seconds."""
        try:
            retrain_policy = policy_from_settings(load_settings(config)) if policy else None
            table = backtest_file(
                input, horizon, cutoffs, parse_models(models), events, policy=retrain_policy
            )
        except ConfigError as exc:
            print(f"error: {exc}".splitlines()[0], file=sys.stderr)
            raise typer.Exit(2) from exc
        except InputError as exc:
            print(f"error: {exc}".splitlines()[0], file=sys.stderr)
            raise typer.Exit(2) from exc
        print(format_table(table))


if __name__ == "__main__":
    _app = typer.Typer(add_completion=False)
    register(_app)  # one command: ``python -m surgecast.backtest_cli INPUT --horizon H ...``
    _app()
