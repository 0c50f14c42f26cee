"""``surgecast forecast``: read a CSV, fit one model (or pick one) per series, write forecasts.

Input shapes: ``timestamp,value``, ``ds,y`` (one series, named after the file stem) or long
``unique_id,ds,y``. Integer ``ds`` (an index such as M4's ``t``) is read as hourly steps from
2000-01-03, the synthetic calendar the reference harness uses, and written back as integers.
Each series is fitted by :func:`fit_one` (pure, so joblib can fan it out); a failing model falls
back to seasonal naive and says so in ``model`` (e.g. ``seasonal_naive[fallback:ets]``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from models import ModelError, SeasonalNaive
from models.forecasting import ETS, MSTLForecaster
from models.frequency import infer_step, season_length

__all__ = ["MODELS", "InputError", "fit_one", "forecast_file", "read_series", "select_and_fit"]

MODELS = ("auto", "naive", "ets", "mstl")
OUTPUT_COLUMNS = ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model"]
INDEX_ORIGIN = pd.Timestamp("2000-01-03", tz="UTC")
_CANDIDATES = ("seasonal_naive", "seasonal_naive_7d", "ets", "mstl")


class InputError(ValueError):
    """The input file cannot be forecast; the message is one line saying why."""


class InsufficientError(ValueError):
    """``auto`` could not run its holdout; the caller falls back."""


def read_series(path: Path) -> tuple[pd.DataFrame, bool]:
    """Read ``path`` into a canonical long frame; return it and whether ``ds`` was an index."""
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    cols = {c.strip().lower(): c for c in raw.columns}
    if {"unique_id", "ds", "y"} <= set(cols):
        frame = pd.DataFrame({"unique_id": raw[cols["unique_id"]].astype(str),
                              "ds": raw[cols["ds"]], "y": raw[cols["y"]]})
    elif {"ds", "y"} <= set(cols) or {"timestamp", "value"} <= set(cols):
        t, v = ("ds", "y") if "ds" in cols else ("timestamp", "value")
        frame = pd.DataFrame({"unique_id": path.stem, "ds": raw[cols[t]], "y": raw[cols[v]]})
    else:
        raise InputError(
            f"{path.name}: expected columns timestamp,value or ds,y or unique_id,ds,y; "
            f"got {list(raw.columns)}"
        )
    if frame.empty:
        raise InputError(f"{path.name}: no rows")
    y = pd.to_numeric(frame["y"], errors="coerce")
    if y.notna().sum() == 0:
        raise InputError(f"{path.name}: the value column has no numeric values")
    frame["y"] = y.astype(float)
    is_index = pd.api.types.is_integer_dtype(frame["ds"])
    if is_index:
        frame["ds"] = INDEX_ORIGIN + pd.to_timedelta(frame["ds"].astype("int64"), unit="h")
    else:
        try:
            frame["ds"] = pd.to_datetime(frame["ds"], utc=True, format="mixed")
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path.name}: unparseable timestamps ({exc})".splitlines()[0]) from exc
    if frame.duplicated(["unique_id", "ds"]).any():
        raise InputError(f"{path.name}: duplicate timestamps within a series")
    return frame.sort_values(["unique_id", "ds"], ignore_index=True), is_index


def _build(name: str):
    if name == "seasonal_naive_7d":
        return SeasonalNaive(period="7D")
    # ETS and MSTL are not in models.FORECASTERS yet: tests/test_models_api.py pins that registry
    # to seasonal naive; the lead decides when to widen it (then this table goes)
    return {"seasonal_naive": SeasonalNaive, "ets": ETS, "mstl": MSTLForecaster}[name]()


def _fit_predict(name: str, frame: pd.DataFrame, horizon: int, level: float) -> pd.DataFrame:
    return _build(name).fit(frame).predict(horizon, level)


def _mase(actual: np.ndarray, pred: np.ndarray, history: np.ndarray, season: int) -> float:
    lag = season if history.size > season else 1
    scale = float(np.mean(np.abs(history[lag:] - history[:-lag])))
    return float(np.mean(np.abs(actual - pred))) / (scale if scale > 0 else 1.0)


def select_and_fit(frame: pd.DataFrame, horizon: int, level: float) -> pd.DataFrame:
    """``auto``: hold out the last ``horizon`` points (at least one season), score each candidate
    and their median by MASE, refit the winner on everything, and widen or narrow its interval
    by a conformal factor measured on the holdout (so a nominal 90% covers about 90%)."""
    season = season_length(infer_step(frame["ds"]))
    hold = min(max(horizon, season), max(len(frame) - 2 * season, 0))
    if hold < 1:
        raise InsufficientError("too short for a holdout")
    train, test = frame.iloc[:-hold], frame["y"].to_numpy()[-hold:]
    history = train["y"].to_numpy()
    fcs: dict[str, pd.DataFrame] = {}
    for name in _CANDIDATES:
        try:
            fcs[name] = _fit_predict(name, train, hold, level)
        except (ModelError, ValueError, np.linalg.LinAlgError):
            continue
    if not fcs:
        raise InsufficientError("no candidate could be fitted on the holdout")
    preds = {n: f["yhat"].to_numpy() for n, f in fcs.items()}
    if len(preds) >= 3:
        preds["median"] = np.median(np.vstack(list(preds.values())), axis=0)
    scores = {n: _mase(test, p, history, season) for n, p in preds.items()}
    best = min(scores, key=lambda n: (scores[n], n))
    members = [n for n in fcs] if best == "median" else [best]
    full = [_fit_predict(n, frame, horizon, level) for n in members]
    out = full[0].copy()
    for col in ("yhat", "yhat_lower", "yhat_upper"):
        out[col] = np.median(np.vstack([f[col].to_numpy() for f in full]), axis=0)
    # conformal width factor from the holdout: how much the band must scale to cover `level`
    hold_lo = np.median(np.vstack([fcs[n]["yhat_lower"].to_numpy() for n in members]), axis=0)
    hold_hi = np.median(np.vstack([fcs[n]["yhat_upper"].to_numpy() for n in members]), axis=0)
    yh = preds[best]
    err = test - yh
    half = np.where(err >= 0, hold_hi - yh, yh - hold_lo)
    ratio = np.abs(err) / np.maximum(half, 1e-9 * (1.0 + np.abs(yh)))
    factor = float(np.clip(np.quantile(ratio, level), 0.5, 3.0))
    out["yhat_lower"] = out["yhat"] - factor * (out["yhat"] - out["yhat_lower"])
    out["yhat_upper"] = out["yhat"] + factor * (out["yhat_upper"] - out["yhat"])
    if (frame["y"] >= 0).all():
        out["yhat_lower"] = out["yhat_lower"].clip(lower=0.0)
    out["model"] = "ensemble_median" if best == "median" else best
    return out


def fit_one(frame: pd.DataFrame, model: str, horizon: int, level: float) -> pd.DataFrame:
    """Forecast one series (pure: no I/O, no globals), falling back to seasonal naive.

    Raises:
        InputError: not even seasonal naive can be fitted (too little history).
    """
    name = "seasonal_naive" if model == "naive" else model
    uid = frame["unique_id"].iloc[0]
    try:
        season = season_length(infer_step(frame["ds"]))
    except ValueError as exc:
        raise InputError(f"series '{uid}': {exc}") from exc
    if frame["y"].notna().sum() < 2 * season:
        raise InputError(
            f"series '{uid}' has {int(frame['y'].notna().sum())} points; it needs at least two "
            f"seasons ({2 * season} points at this step)"
        )
    try:
        if name == "auto":
            return select_and_fit(frame, horizon, level)
        return _fit_predict(name, frame, horizon, level)
    except (ModelError, ValueError, np.linalg.LinAlgError) as exc:
        if name == "seasonal_naive":
            raise InputError(f"series '{frame['unique_id'].iloc[0]}': {exc}") from exc
        try:
            fc = _fit_predict("seasonal_naive", frame, horizon, level)
        except (ModelError, ValueError) as exc2:
            raise InputError(f"series '{frame['unique_id'].iloc[0]}': {exc2}") from exc2
        fc["model"] = f"seasonal_naive[fallback:{name}]"
        return fc


def _safe_fit_one(frame, model, horizon, level):
    try:
        return fit_one(frame, model, horizon, level), None
    except InputError as exc:
        return None, str(exc)


def forecast_file(
    path: Path, horizon: int, level: float, model: str, n_jobs: int = 2
) -> tuple[pd.DataFrame, list[str]]:
    """Forecast every series of ``path``; return the output frame and one line per skipped series.

    Raises:
        InputError: bad input, or no series could be forecast.
    """
    if model not in MODELS:
        raise InputError(f"--model must be one of {', '.join(MODELS)}; got {model!r}")
    if horizon < 1:
        raise InputError(f"--horizon must be a positive number of steps, got {horizon}")
    frame, is_index = read_series(path)
    groups = [g.reset_index(drop=True) for _, g in frame.groupby("unique_id", sort=True)]
    results = Parallel(n_jobs=min(n_jobs, len(groups)) or 1)(
        delayed(_safe_fit_one)(g, model, horizon, level) for g in groups
    )
    parts = [fc for fc, _ in results if fc is not None]
    problems = [msg for _, msg in results if msg is not None]
    if not parts:
        raise InputError(problems[0] if problems else "no series to forecast")
    out = pd.concat(parts, ignore_index=True)[OUTPUT_COLUMNS]
    if is_index:
        out["ds"] = ((out["ds"] - INDEX_ORIGIN) // pd.Timedelta("1h")).astype("int64")
    else:
        out["ds"] = out["ds"].dt.tz_localize(None)  # written back as naive, like the input
    return out, problems
