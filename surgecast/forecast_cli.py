"""``surgecast forecast``: read a CSV, fit one model (or pick one) per series, write forecasts.

Input shapes: ``timestamp,value``, ``ds,y`` (one series, named after the file stem) or long
``unique_id,ds,y``. Integer ``ds`` (an index such as M4's ``t``) is read as hourly steps from
2000-01-03, the synthetic calendar the reference harness uses, and written back as integers.
Each series is fitted by :func:`fit_one` (pure, so joblib can fan it out); a failing model falls
back to seasonal naive and says so in ``model`` (e.g. ``seasonal_naive[fallback:ets]``).

``--events FIXTURES.csv`` (columns ``start, importance, competition``; ``end`` and ``sport``
optional) is the fixture calendar covering the history *and* the forecast window: with it,
:class:`~models.forecasting.seasonal_events.SeasonalEvents` joins ``auto``'s candidates and
``prophet`` uses the fixtures as regressors.

Example (the lead wires :func:`register` into ``surgecast.cli``)::

    app = typer.Typer(); register(app)
    # surgecast forecast traffic.csv --horizon 288 --events fixtures.csv -o forecast.csv
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import typer
from joblib import Parallel, delayed

from models import ModelError
from models.forecasting import selection
from models.forecasting.catalog import AUTO_CANDIDATES as CATALOG_AUTO
from models.forecasting.catalog import build
from models.forecasting.events import normalise_events
from models.forecasting.seasonal_events import SeasonalEvents
from models.frequency import infer_step, season_length

__all__ = [
    "MODELS", "InputError", "fit_one", "forecast_file", "read_events", "read_series",
    "register", "select_and_fit",
]

MODELS = ("auto", "naive", "ets", "mstl", "prophet", "ensemble")
EVENT_REQUIRED = ("start", "importance", "competition")
OUTPUT_COLUMNS = ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model"]
INDEX_ORIGIN = pd.Timestamp("2000-01-03", tz="UTC")
#: ``auto``'s candidates (see :mod:`models.forecasting.catalog`; ETS is left out there)
AUTO_CANDIDATES = CATALOG_AUTO


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


def read_events(path: Path) -> pd.DataFrame:
    """Read and validate a fixture calendar (``start, importance, competition``; ``end``, ``sport``
    optional, ``sport`` defaulting to ``unknown``).

    Raises:
        InputError: unreadable file, a missing column, bad times or importance (one line).
    """
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"--events: cannot read {path}: {exc}".splitlines()[0]) from exc
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in EVENT_REQUIRED if c not in raw.columns]
    if missing:
        raise InputError(
            f"--events {Path(path).name}: missing column(s) {', '.join(missing)}; "
            f"a fixture calendar needs {', '.join(EVENT_REQUIRED)} (end, sport optional)"
        )
    if raw.empty:
        raise InputError(f"--events {Path(path).name}: no fixtures")
    if "sport" not in raw.columns:
        raw["sport"] = "unknown"
    try:
        return normalise_events(raw, who=f"--events {Path(path).name}")
    except ValueError as exc:  # FrameError: bad times or importance
        raise InputError(str(exc).splitlines()[0]) from exc


class _WithEvents:
    """Binds a fixture calendar to an event-aware model so ``fit(frame)`` passes it on (the
    backtest in :mod:`models.forecasting.selection` knows nothing of events)."""

    def __init__(self, model: Any, events: pd.DataFrame | None) -> None:
        self.model, self.events = model, events

    def fit(self, frame: pd.DataFrame, events: pd.DataFrame | None = None) -> Self:
        self.model.fit(frame, events=self.events if events is None else events)
        return self

    def predict(self, horizon: int, level: float = 0.9) -> pd.DataFrame:
        return self.model.predict(horizon, level)


def _build(name: str, events: pd.DataFrame | None = None):
    if name == "seasonal_events":
        return _WithEvents(SeasonalEvents(), events)
    if name == "prophet":
        from models.forecasting.prophet_events import ProphetEvents  # slow import: lazily

        return _WithEvents(ProphetEvents(), events)
    return build(name)  # the same catalogue the service's retrain job uses


def _fit_predict(
    name: str, frame: pd.DataFrame, horizon: int, level: float,
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    out = _build(name, events).fit(frame).predict(horizon, level)
    out["model"] = name
    return out


def candidates(events: pd.DataFrame | None) -> tuple[str, ...]:
    """``auto``'s candidate names: :data:`AUTO_CANDIDATES`, plus ``seasonal_events`` with fixtures."""
    return AUTO_CANDIDATES + (("seasonal_events",) if events is not None else ())


def select_and_fit(
    frame: pd.DataFrame, horizon: int, level: float, events: pd.DataFrame | None = None,
    choose: str | None = None,
) -> pd.DataFrame:
    """``auto``: rolling-origin backtest of :func:`candidates` plus their median, the best few
    averaged by inverse backtest MASE, with a conformal interval from the combination's backtest
    errors (see :mod:`models.forecasting.selection`).
    ``choose="ensemble_median"`` skips the choice and always uses the median of all of them."""
    season = season_length(infer_step(frame["ds"]))
    builders = {n: (lambda n=n: _build(n, events)) for n in candidates(events)}
    try:
        out, _ = selection.select_and_fit(frame, horizon, level, builders, season, choose=choose)
    except ModelError as exc:
        raise InsufficientError(str(exc)) from exc
    return out


def fit_one(
    frame: pd.DataFrame, model: str, horizon: int, level: float,
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
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
            return select_and_fit(frame, horizon, level, events)
        if name == "ensemble":
            return select_and_fit(frame, horizon, level, events, choose="ensemble_median")
        return _fit_predict(name, frame, horizon, level, events)
    except (ModelError, ValueError, np.linalg.LinAlgError) as exc:
        if name == "seasonal_naive":
            raise InputError(f"series '{frame['unique_id'].iloc[0]}': {exc}") from exc
        try:
            fc = _fit_predict("seasonal_naive", frame, horizon, level)
        except (ModelError, ValueError) as exc2:
            raise InputError(f"series '{frame['unique_id'].iloc[0]}': {exc2}") from exc2
        fc["model"] = f"seasonal_naive[fallback:{name}]"
        return fc


def _safe_fit_one(frame, model, horizon, level, events=None):
    try:
        return fit_one(frame, model, horizon, level, events), None
    except InputError as exc:
        return None, str(exc)


def forecast_file(
    path: Path, horizon: int, level: float, model: str, n_jobs: int = 2,
    events: Path | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Forecast every series of ``path``; return the output frame and one line per skipped series.

    Raises:
        InputError: bad input, or no series could be forecast.
    """
    if model not in MODELS:
        raise InputError(f"--model must be one of {', '.join(MODELS)}; got {model!r}")
    if horizon < 1:
        raise InputError(f"--horizon must be a positive number of steps, got {horizon}")
    calendar = None if events is None else read_events(events)
    frame, is_index = read_series(path)
    groups = [g.reset_index(drop=True) for _, g in frame.groupby("unique_id", sort=True)]
    results = Parallel(n_jobs=min(n_jobs, len(groups)) or 1)(
        delayed(_safe_fit_one)(g, model, horizon, level, calendar) for g in groups
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


def register(app: typer.Typer) -> None:
    """Add the ``forecast`` command (the full contract, ``--events`` included) to ``app``."""

    @app.command("forecast")
    def forecast(
        input: Path = typer.Argument(..., help="CSV: timestamp,value | ds,y | unique_id,ds,y."),
        horizon: int = typer.Option(..., "--horizon", help="Steps to forecast per series."),
        output: Path = typer.Option(..., "--output", "-o", help="Output CSV path."),
        level: float = typer.Option(90.0, "--level", help="Interval coverage in percent."),
        model: str = typer.Option("auto", "--model", help=" | ".join(MODELS)),
        events: Path | None = typer.Option(
            None, "--events", help="Fixture calendar CSV: start, importance, competition."
        ),
        n_jobs: int = typer.Option(2, "--n-jobs", help="Parallel series fits."),
    ) -> None:
        """Forecast every series of INPUT H steps ahead; write unique_id,ds,yhat,lower,upper,model."""
        if not 0.0 < level < 100.0:
            print(f"error: --level must be in (0, 100), got {level}", file=sys.stderr)
            raise typer.Exit(2)
        try:
            frame, problems = forecast_file(
                input, horizon, level / 100.0, model, n_jobs=n_jobs, events=events
            )
        except InputError as exc:
            print(f"error: {exc}".splitlines()[0], file=sys.stderr)
            raise typer.Exit(2) from exc
        for line in problems:
            print(f"skipped: {line}", file=sys.stderr)
        frame.to_csv(output, index=False)
