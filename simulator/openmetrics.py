"""Write a canonical series frame as an OpenMetrics text file for ``promtool`` backfilling.

Layout that ``promtool tsdb create-blocks-from openmetrics`` accepts (CONVENTIONS.md §3):
``# HELP`` and ``# TYPE gauge`` open each metric family, the family's samples follow
contiguously, each series' samples in time order (promtool silently drops out-of-order samples),
timestamps in seconds, and the file ends with ``# EOF``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from simulator.config import METRIC_UNITS

__all__ = ["write_openmetrics"]

_NAME_OK = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def _metric_name(prefix: str, metric: str) -> str:
    name = f"{prefix}_{metric}" if prefix else metric
    name = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    if not _NAME_OK.match(name):
        name = "_" + name
    return name


def _escape(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_values(y: np.ndarray) -> list[str]:
    # float repr is the shortest round-trip form; OpenMetrics spells the specials differently
    out = list(map(float.__repr__, y.tolist()))
    special = np.flatnonzero(~np.isfinite(y))
    for i in special.tolist():
        v = y[i]
        out[i] = "NaN" if np.isnan(v) else ("+Inf" if v > 0 else "-Inf")
    return out


def _format_times(ns: np.ndarray) -> list[str]:
    if np.all(ns % 10**9 == 0):
        return list(map(str, (ns // 10**9).tolist()))
    # sub-second grid: milliseconds are enough for Prometheus (it stores ms)
    ms = (ns // 10**6).tolist()
    return [f"{m // 1000}.{m % 1000:03d}" for m in ms]


def write_openmetrics(
    frame: pd.DataFrame,
    path: str | PathLike[str],
    *,
    metric_prefix: str = "surgecast_sim",
    labels: Mapping[str, str] | None = None,
    counters: pd.DataFrame | None = None,
) -> int:
    """Write ``frame`` (``unique_id, ds, y``) as OpenMetrics gauges; return the sample count.

    ``unique_id`` ``"bet-placement:requests_per_second"`` becomes
    ``surgecast_sim_requests_per_second{service="bet-placement"} <value> <unix seconds>``.

    Args:
        frame: canonical long frame; ``ds`` tz-aware or naive UTC.
        path: output file (overwritten).
        metric_prefix: prepended to every metric name with ``_``.
        labels: constant labels added to every sample after ``service``, e.g. the ``job`` and
            ``instance`` a Prometheus scrape adds, so backfilled and scraped samples are one
            series.
        counters: optional second frame of cumulative counters (``service:requests`` ->
            family ``surgecast_sim_requests``, samples ``surgecast_sim_requests_total``).

    Returns:
        Number of sample lines written (rows of ``frame`` plus rows of ``counters``).

    Example:
        >>> import pandas as pd, tempfile, os
        >>> f = pd.DataFrame({"unique_id": ["api:requests_per_second"],
        ...                   "ds": pd.to_datetime(["2026-11-28T12:00Z"]), "y": [3.5]})
        >>> p = os.path.join(tempfile.mkdtemp(), "m.om")
        >>> write_openmetrics(f, p)
        1
    """
    extra = "".join(f',{k}="{_escape(str(v))}"' for k, v in (labels or {}).items())
    out = Path(path)
    with out.open("w", encoding="utf-8", newline="\n") as fh:
        n = _write_families(fh, frame, metric_prefix, extra, "gauge")
        if counters is not None:
            n += _write_families(fh, counters, metric_prefix, extra, "counter")
        fh.write("# EOF\n")
    return n


def _write_families(
    fh: TextIO, frame: pd.DataFrame, metric_prefix: str, extra: str, kind: str
) -> int:
    """One family per metric, each series contiguous and time-ordered; returns samples written."""
    missing = {"unique_id", "ds", "y"} - set(frame.columns)
    if missing:
        raise ValueError(f"write_openmetrics: frame lacks column(s) {sorted(missing)}")
    if len(frame) == 0:
        return 0
    # split the few distinct ids, not every row
    codes, uniques = pd.factorize(frame["unique_id"].astype(str), sort=True)
    split = [str(u).rsplit(":", 1) for u in uniques]
    if any(len(p) != 2 or not p[0] or not p[1] for p in split):
        raise ValueError(
            "write_openmetrics: unique_id must look like 'service:metric', e.g. "
            "'bet-placement:requests_per_second'"
        )
    id_metric = np.array([p[1] for p in split], dtype=object)
    id_service = np.array([p[0] for p in split], dtype=object)
    metric_names, metric_code = np.unique(id_metric, return_inverse=True)
    service_names, service_code = np.unique(id_service, return_inverse=True)
    ns = pd.to_datetime(frame["ds"], utc=True).dt.as_unit("ns").to_numpy(dtype="datetime64[ns]")
    ns = ns.astype(np.int64)
    row_metric = metric_code[codes]
    row_service = service_code[codes]
    # family contiguous, each series contiguous and time-ordered (promtool drops the rest)
    order = np.lexsort((ns, row_service, row_metric))
    ns, row_metric, row_service = ns[order], row_metric[order], row_service[order]
    y = frame["y"].to_numpy(dtype=float)[order]
    same = (np.diff(ns) == 0) & (np.diff(row_metric) == 0) & (np.diff(row_service) == 0)
    if same.any():
        raise ValueError("write_openmetrics: duplicate (unique_id, ds) rows; deduplicate first")
    values = _format_values(y)
    times = _format_times(ns)
    bounds = np.flatnonzero(np.diff(row_metric)) + 1
    starts = np.concatenate([[0], bounds]).tolist()
    ends = np.concatenate([bounds, [len(y)]]).tolist()
    for lo, hi in zip(starts, ends, strict=True):
        metric = str(metric_names[row_metric[lo]])
        name = _metric_name(metric_prefix, metric)
        unit = METRIC_UNITS.get(metric, ("", ""))[0]
        help_text = f"Simulated {metric.replace('_', ' ')}" + (f" ({unit})" if unit else "")
        sample = name
        if kind == "counter":
            help_text, sample = f"Simulated {metric.replace('_', ' ')} (cumulative)", f"{name}_total"
        fh.write(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
        heads = [f'{sample}{{service="{_escape(str(s))}"{extra}}} ' for s in service_names]
        fh.write("".join([
            f"{heads[c]}{v} {t}\n"
            for c, v, t in zip(row_service[lo:hi].tolist(), values[lo:hi], times[lo:hi],
                               strict=True)
        ]))
    return int(len(y))
