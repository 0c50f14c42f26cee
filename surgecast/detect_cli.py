"""``surgecast detect``: run a detector causally over a CSV, one output row per input row.

Input shapes: ``timestamp,value``, ``ds,y`` (one series, named after the file stem) or long
``unique_id,ds,y``. Each series is a *sequence* in time order (rows with equal timestamps keep
their file order): repeated timestamps (a daylight-saving artefact in NAB files) are nudged apart
by nanoseconds inside the detector, never dropped, and every input row gets exactly one output
row, in input order, with its ``ds`` written as it was read. Rows with a missing value are gaps:
they score 0 and have no band.

With ``--events FIXTURES.csv`` (columns ``start`` kickoff, optional ``end``; UTC) the calendar
is used in the alarm stage: an upward surge (``spike``/``level_shift``) inside a fixture's
ramp/in-play window (:func:`models.anomaly.events.expected_by_events`) is expected, so it scores
0 and is not an anomaly; the same surge at a time with no fixture still alarms. Drops are never
excused. Without ``--events`` nothing changes.

The detector starts from scratch and scores the whole file in one causal pass (batch scoring is
the same as feeding the points one by one), so truncating the file changes no kept score.

Example (the lead wires :func:`register` into ``surgecast.cli``)::

    app = typer.Typer(); register(app)
    # surgecast detect traffic.csv --detector auto -o anomalies.csv
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from models import DETECTORS, ModelError
from models.anomaly.alarms import SPIKE_KINDS
from models.anomaly.events import expected_by_events
from surgecast.errors import DataError

__all__ = ["DEFAULT_DETECTOR", "OUTPUT_COLUMNS", "apply_events", "detect_frame", "read_events",
           "read_input", "register"]

DEFAULT_DETECTOR = "novelty"
OUTPUT_COLUMNS = ["unique_id", "ds", "y", "score", "is_anomaly", "expected", "lower", "upper",
                  "kind"]


def read_input(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """Read ``path`` into a long frame in file order (``ds`` parsed to UTC) and the raw ``ds``.

    Raises:
        DataError: unreadable file, unknown columns, no rows, non-numeric values or bad times.
    """
    try:
        raw = pd.read_csv(path, dtype={"unique_id": str})
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}".splitlines()[0]) from exc
    cols = {str(c).strip().lower(): c for c in raw.columns}
    if {"unique_id", "ds", "y"} <= set(cols):
        uid, t, v = raw[cols["unique_id"]].astype(str), cols["ds"], cols["y"]
    elif {"ds", "y"} <= set(cols) or {"timestamp", "value"} <= set(cols):
        t, v = (cols["ds"], cols["y"]) if "ds" in cols else (cols["timestamp"], cols["value"])
        uid = pd.Series(path.stem, index=raw.index, dtype=str)
    else:
        raise DataError(f"{path.name}: expected columns timestamp,value or ds,y or "
                        f"unique_id,ds,y; got {list(raw.columns)}")
    if raw.empty:
        raise DataError(f"{path.name}: no rows")
    y = pd.to_numeric(raw[v], errors="coerce")
    bad = y.isna() & raw[v].notna()
    if bad.any():
        raise DataError(f"{path.name}: non-numeric value {raw[v][bad].iloc[0]!r} in row "
                        f"{int(np.flatnonzero(bad.to_numpy())[0]) + 2}")
    ds = _parse_times(raw[t], path.name)
    frame = pd.DataFrame({"unique_id": uid.astype(str), "ds": ds, "y": y.astype(float)})
    return frame, raw[t]


def read_events(path: Path) -> pd.DataFrame:
    """Read a fixture calendar: ``start`` (or ``kickoff``) and optional ``end``, parsed to UTC.

    Raises:
        DataError: unreadable file, no ``start`` column or bad times.
    """
    if not path.is_file():
        raise DataError(f"--events: no such file {path}")
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"--events: cannot read {path}: {exc}".splitlines()[0]) from exc
    cols = {str(c).strip().lower(): c for c in raw.columns}
    start = cols.get("start", cols.get("kickoff"))
    if start is None:
        raise DataError(f"--events {path.name}: expected a 'start' (kickoff) column, optional "
                        f"'end'; got {list(raw.columns)}")
    out = pd.DataFrame({"start": _parse_times(raw[start], path.name)})
    if "end" in cols:
        end = raw[cols["end"]]
        out["end"] = _parse_times(end.fillna(raw[start]), path.name)
    return out


def apply_events(out: pd.DataFrame, ds: pd.Series, events: pd.DataFrame) -> pd.DataFrame:
    """Alarm stage with the calendar: surges inside a fixture window score 0, not anomalies."""
    spike = out["kind"].isin(SPIKE_KINDS).to_numpy()
    if spike.any():
        exp = np.zeros(len(out), dtype=bool)
        exp[spike] = expected_by_events(pd.DatetimeIndex(ds)[spike], events)
        out.loc[exp, "score"] = 0.0
        out.loc[exp, "is_anomaly"] = False
        out.loc[exp, "kind"] = None
    return out


def _parse_times(col: pd.Series, name: str) -> pd.Series:
    if col.isna().any():
        raise DataError(f"{name}: missing timestamp in row {int(np.flatnonzero(col.isna())[0]) + 2}")
    try:
        if pd.api.types.is_integer_dtype(col):  # an index (e.g. M4's t): hourly steps
            return pd.Timestamp("2000-01-03", tz="UTC") + pd.to_timedelta(col, unit="h")
        try:
            with warnings.catch_warnings():  # "could not infer format": the fallback handles it
                warnings.simplefilter("ignore", UserWarning)
                return pd.to_datetime(col, utc=True)
        except (ValueError, TypeError):
            return pd.to_datetime(col, utc=True, format="mixed")
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"{name}: unparseable timestamps ({exc})".splitlines()[0]) from exc


def _sequence_order(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row order (series, then time, ties in file order) and strictly increasing int64 times."""
    ns = pd.DatetimeIndex(frame["ds"]).as_unit("ns").asi8
    codes = pd.factorize(frame["unique_id"])[0]
    order = np.lexsort((np.arange(len(frame)), ns, codes))
    t, c = ns[order], codes[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    rank = np.arange(t.size) - np.repeat(starts, np.diff(np.r_[starts, t.size]))
    # ds'_i = max(ds_i, ds'_{i-1} + 1 ns) within a series: cummax of (t - rank) per series
    shifted = t - rank
    seg = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, t.size]))
    run = pd.Series(shifted).groupby(seg).cummax().to_numpy()
    return order, run + rank


def detect_frame(frame: pd.DataFrame, detector: str = "auto") -> pd.DataFrame:
    """Score ``frame`` (file order, possibly repeated timestamps) causally; one row per input row.

    Raises:
        DataError: unknown detector, or the detector rejected the data.
    """
    name = DEFAULT_DETECTOR if detector == "auto" else detector
    if name not in DETECTORS:
        raise DataError(f"unknown detector {detector!r}; choose auto or one of {sorted(DETECTORS)}")
    order, unique_ns = _sequence_order(frame)
    inner = pd.DataFrame({
        "unique_id": frame["unique_id"].to_numpy()[order],
        "ds": pd.DatetimeIndex(unique_ns.astype("datetime64[ns]")).tz_localize("UTC"),
        "y": frame["y"].to_numpy()[order],
    })
    det = DETECTORS[name]()
    try:
        scored = det.fit(inner.iloc[:0]).score(inner)
    except ModelError as exc:
        raise DataError(str(exc).splitlines()[0]) from exc
    except ValueError as exc:  # parameter/season checks of the detector
        raise DataError(f"{name}: {exc}".splitlines()[0]) from exc
    key = pd.MultiIndex.from_arrays([scored["unique_id"].to_numpy(),
                                     pd.DatetimeIndex(scored["ds"]).as_unit("ns").asi8])
    want = pd.MultiIndex.from_arrays([inner["unique_id"].to_numpy(), unique_ns])
    pos = key.get_indexer(want)  # -1: a gap (missing y) the detector did not score
    hit = pos >= 0
    out = pd.DataFrame(index=np.arange(len(frame)))
    back = np.empty(len(frame), dtype=np.int64)
    back[order] = np.arange(len(frame))  # input row -> position in sequence order
    p = pos[back]
    h = hit[back]
    out["unique_id"] = frame["unique_id"].to_numpy()
    out["y"] = frame["y"].to_numpy()
    for col in ("score", "expected", "lower", "upper"):
        vals = scored[col].to_numpy(float)
        out[col] = np.where(h, vals[np.maximum(p, 0)], 0.0 if col == "score" else np.nan)
    out["score"] = np.clip(out["score"], 0.0, 1.0)
    flags = scored["is_anomaly"].to_numpy(bool)
    out["is_anomaly"] = h & flags[np.maximum(p, 0)] if len(flags) else False
    kinds = scored["kind"].to_numpy(object)
    out["kind"] = np.where(h, kinds[np.maximum(p, 0)], None) if len(kinds) else None
    return out


def register(app: typer.Typer) -> None:
    """Add the ``detect`` command to ``app``."""

    @app.command("detect")
    def detect(
        input: Path = typer.Argument(..., help="CSV: timestamp,value or ds,y or unique_id,ds,y"),
        output: Path = typer.Option(..., "-o", "--output", help="where to write the anomalies"),
        detector: str = typer.Option("auto", "--detector", help="auto or a detector name"),
        events: Path | None = typer.Option(None, "--events", help="fixture calendar CSV"),
    ) -> None:
        """Score every row of INPUT causally; write unique_id,ds,y,score,is_anomaly,... rows."""
        try:
            calendar = read_events(events) if events is not None else None
            frame, raw_ds = read_input(input)
            out = detect_frame(frame, detector)
            if calendar is not None:
                out = apply_events(out, frame["ds"], calendar)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
        out.insert(1, "ds", raw_ds.to_numpy())
        output.parent.mkdir(parents=True, exist_ok=True)
        out[OUTPUT_COLUMNS].to_csv(output, index=False)


if __name__ == "__main__":
    _app = typer.Typer(add_completion=False)
    register(_app)  # one command: ``python -m surgecast.detect_cli INPUT -o OUTPUT`` runs it
    _app()
