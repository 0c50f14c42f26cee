"""``surgecast replay``: run the predictive replica policy over a load trace, strictly online.

    surgecast replay TRACE.csv --capacity-per-replica 100 --startup-delay 5m \\
        [--target-utilization 0.7] [--min-replicas 1] [--max-replicas 1000] \\
        [--events FIXTURES.csv] -o RECS.csv [--report]

TRACE is ``timestamp,value`` (or ``ds,y``): demand in req/s per row, on a regular grid (missing
rows are fine). RECS has one row per trace row: ``ds`` (as read), ``replicas`` (what the policy
asks for at that time), and the decision's audit trail: ``forecast_peak``, ``planned_load``,
``quantile``, ``rule`` (the guardrail that decided, or ``forecast``) and ``reason`` in words
(plus ``timestamp``, a copy of ``ds``, when the trace names its time column so).
At row ``t`` the policy knows the rows before ``t`` only, so cutting the trace at ``t`` never
changes an earlier row.

``--report`` prints, for the predictive policy and the reference policies (reactive =
Kubernetes HPA semantics, yesterday = max(reactive, yesterday's load shifted earlier), oracle =
perfect foresight), the share of demand unserved, minutes overloaded and replica-hours, under
the replay model of :mod:`actions.replay`.

Bad input gets a one-line error (exit 2): unreadable file, unknown columns, unparseable times,
duplicate timestamps, negative demand, off-grid rows. Missing values (empty, NaN) are kept as
rows the policy has no observation for: it holds its replicas rather than scale down.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from actions.replay import oracle_replicas, reactive_replicas, replay, yesterday_replicas
from models.errors import FrameError
from surgecast.errors import DataError
from surgecast.forecast_cli import InputError, read_events
from surgecast.replay import ReplayPolicy, predictive_schedule
from surgecast.store import Store
from surgecast.store_codec import mask_url

__all__ = ["read_trace", "register", "report_table"]

# the policy's own defaults, so the CLI and the library cannot drift apart
_DEFAULTS = ReplayPolicy(capacity_per_replica=1.0, startup_delay_s=0.0)


def read_trace(path: Path) -> tuple[pd.Series, pd.DatetimeIndex, np.ndarray]:
    """Read a trace: the raw times (named as in the file), parsed UTC times, demand (NaN = gap).

    Rows are returned in time order (a file out of order is sorted, and stderr says so).

    Raises:
        DataError: unreadable, wrong columns, no rows, bad times, duplicates, negative values.
    """
    name = Path(path).name
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}".splitlines()[0]) from exc
    cols = {str(c).strip().lower(): c for c in raw.columns}
    if {"timestamp", "value"} <= set(cols):
        t, v = cols["timestamp"], cols["value"]
    elif {"ds", "y"} <= set(cols):
        t, v = cols["ds"], cols["y"]
    else:
        raise DataError(
            f"{name}: expected columns timestamp,value or ds,y; got {list(raw.columns)}"
        )
    if len(raw) < 2:
        raise DataError(f"{name}: a trace needs at least 2 rows, got {len(raw)}")
    text = raw[v].str.strip()
    values = pd.to_numeric(text.replace({"": "nan"}), errors="coerce")
    bad = values.isna() & ~text.str.lower().isin(["", "nan", "na", "null", "none"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{name}: row {row + 2}: value {text.iloc[row]!r} is not a number")
    values = values.astype(float).where(np.isfinite(values.astype(float)))
    if (values < 0).any():
        row = int(np.flatnonzero((values < 0).to_numpy())[0])
        raise DataError(f"{name}: row {row + 2}: negative demand {values.iloc[row]}")
    try:
        ds = pd.to_datetime(raw[t].str.strip(), utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name}: unparseable timestamps ({exc})".splitlines()[0]) from exc
    if ds.isna().any():
        row = int(np.flatnonzero(ds.isna().to_numpy())[0])
        raise DataError(f"{name}: row {row + 2}: missing timestamp")
    dup = ds.duplicated(keep=False)
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            f"{name}: row {row + 2}: timestamp {raw[t].iloc[row]} appears more than once"
        )
    order = np.argsort(ds.to_numpy(), kind="stable")
    if (order != np.arange(order.size)).any():
        print(f"note: {name}: rows were out of time order; sorted", file=sys.stderr)
    missing = int(values.isna().sum())
    if missing:
        print(
            f"note: {name}: {missing} row(s) without a value: no observation there; the policy "
            "holds rather than scale down",
            file=sys.stderr,
        )
    return (
        raw[t].iloc[order].reset_index(drop=True).rename(str(t).strip().lower()),
        pd.DatetimeIndex(ds.iloc[order]).as_unit("ns"),
        values.iloc[order].to_numpy(dtype=float),
    )


def parse_duration(text: str) -> float:
    """Seconds in ``5m``, ``300s``, ``1h``, ``5min`` or a bare number of seconds."""
    try:
        seconds = (
            float(text)
            if text.strip().replace(".", "", 1).isdigit()
            else pd.Timedelta(text.strip()).total_seconds()
        )
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"--startup-delay: cannot read {text!r} as a duration (e.g. 5m, 300s)"
        ) from exc
    if not (math.isfinite(seconds) and seconds >= 0):
        raise DataError(f"--startup-delay must be >= 0, got {text!r}")
    return seconds


def report_table(
    times: pd.DatetimeIndex, load: np.ndarray, predictive: np.ndarray, policy: ReplayPolicy
) -> str:
    """The predictive policy next to reactive, yesterday and oracle, as a Markdown table."""
    cap, u, delay = (
        policy.capacity_per_replica,
        policy.target_utilization,
        int(policy.startup_delay_s),
    )
    lo = policy.min_replicas
    rows = {
        "predictive (surgecast)": predictive,
        "reactive (HPA)": reactive_replicas(times, load, cap, u, min_replicas=lo),
        "yesterday": yesterday_replicas(times, load, cap, u, delay, min_replicas=lo),
        "oracle (perfect foresight)": oracle_replicas(times, load, cap, u, delay, min_replicas=lo),
    }
    results = {name: replay(times, load, reps, cap, delay) for name, reps in rows.items()}
    lines = [
        "| policy | unserved % | overloaded min | replica-hours | peak replicas |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r.unserved_pct:.3f} | {r.overload_minutes:,.0f} | "
            f"{r.replica_hours:,.0f} | {r.peak_replicas} |"
        )
    ours, reactive = results["predictive (surgecast)"], results["reactive (HPA)"]
    if reactive.overload_minutes > 0:
        lines.append(
            f"\noverloaded minutes vs reactive: "
            f"{100 * (1 - ours.overload_minutes / reactive.overload_minutes):.1f}% fewer; "
            f"replica-hours x{ours.replica_hours / reactive.replica_hours:.3f}"
        )
    return "\n".join(lines)


def write_audit(url: str, service: str, times: pd.DatetimeIndex, recs: pd.DataFrame) -> int:
    """Every replay decision into the store's audit log (kind ``replay``), in batches."""
    store = Store(url)
    try:
        written = 0
        batch = 5000
        for lo in range(0, len(recs), batch):
            part = recs.iloc[lo : lo + batch]
            entries = [
                {
                    "at": times[lo + j],
                    "service": service,
                    "kind": "replay",
                    "decision": f"{int(row.replicas)} replicas ({row.rule})",
                    "reason": row.reason,
                    "inputs": {
                        "forecast_peak": _finite(row.forecast_peak),
                        "planned_load": _finite(row.planned_load),
                        "quantile": _finite(row.quantile),
                    },
                }
                for j, row in enumerate(part.itertuples(index=False))
            ]
            written += store.record_decisions(entries)
        return written
    finally:
        store.close()


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def register(app: typer.Typer) -> None:
    """Add the ``replay`` command to ``app``."""

    @app.command("replay")
    def replay_command(
        trace: Path = typer.Argument(..., help="CSV: timestamp,value (or ds,y), demand in req/s"),
        capacity_per_replica: float = typer.Option(
            ..., "--capacity-per-replica", help="req/s one ready replica serves"
        ),
        startup_delay: str = typer.Option(..., "--startup-delay", help="e.g. 5m, 90s"),
        output: Path = typer.Option(
            ..., "-o", "--output", help="where to write the recommendations"
        ),
        target_utilization: float = typer.Option(0.7, "--target-utilization"),
        min_replicas: int = typer.Option(1, "--min-replicas"),
        max_replicas: int = typer.Option(1000, "--max-replicas"),
        events: Path | None = typer.Option(None, "--events", help="fixture calendar CSV"),
        replica_cost: float = typer.Option(
            _DEFAULTS.replica_cost,
            "--replica-cost",
            help="overload probability a typical replica count must buy (lower = more headroom)",
        ),
        event_overload_weight: float = typer.Option(
            _DEFAULTS.event_overload_weight,
            "--event-overload-weight",
            help="how much more an overload near a fixture matters (needs --events)",
        ),
        stabilization: str = typer.Option(
            "5m", "--stabilization", help="scale-down stabilisation window"
        ),
        report: bool = typer.Option(
            False, "--report", help="compare with reactive/yesterday/oracle"
        ),
        audit: str | None = typer.Option(
            None,
            "--audit",
            help="also write every decision to this store's audit log "
            "(e.g. sqlite:///replay.db), as kind 'replay'",
        ),
        service: str = typer.Option("replay", "--service", help="service name in the audit log"),
    ) -> None:
        """Recommend replicas for every row of TRACE, seeing only the past at each row."""
        try:
            policy = ReplayPolicy(
                capacity_per_replica=capacity_per_replica,
                startup_delay_s=parse_duration(startup_delay),
                target_utilization=target_utilization,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                replica_cost=replica_cost,
                stabilization_s=parse_duration(stabilization),
                floor_utilization=1.0,
                event_overload_weight=event_overload_weight,
            )
            policy.bounds()
            calendar = read_events(events) if events is not None else None
            raw_ds, times, load = read_trace(trace)
            recs = predictive_schedule(times, load, policy, events=calendar)
        except (DataError, InputError, FrameError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
        audit_frame = recs.copy()
        recs["ds"] = raw_ds.to_numpy()
        if raw_ds.name == "timestamp":  # the trace's own name too, for tools that join on it
            recs.insert(2, "timestamp", raw_ds.to_numpy())
        output.parent.mkdir(parents=True, exist_ok=True)
        recs.to_csv(output, index=False)
        if audit is not None:
            written = write_audit(audit, service, times, audit_frame)
            print(f"audit: {written:,} decisions written to {mask_url(audit)}", file=sys.stderr)
        if report:
            print(report_table(times, load, recs["replicas"].to_numpy(), policy))


if __name__ == "__main__":
    _app = typer.Typer(add_completion=False)
    register(_app)
    _app()
