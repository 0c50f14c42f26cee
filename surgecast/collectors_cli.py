"""``surgecast collectors check``, ``surgecast simulate serve`` and ``surgecast simulate backfill``.

``collectors check`` runs every configured query once over a recent window and prints, per
query, whether it returns data, how many series, their names and the newest point: a new
user's config is debugged in one command. ``simulate serve`` exposes the simulator at
``/metrics`` for a real Prometheus to scrape; ``simulate backfill`` writes its history into a
Prometheus data directory with promtool (``deploy/`` has the configs that join the three).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console

from surgecast.config import PrometheusSource, SeriesSettings, Settings, load_settings
from surgecast.errors import SurgecastError

__all__ = ["CheckRow", "check_series", "register"]

err = Console(stderr=True)
out = Console()


def _step(text: str, option: str) -> pd.Timedelta:
    try:
        step = pd.Timedelta(text)  # "1m" is a minute here, never a month
    except ValueError as exc:
        err.print(f"[red]error:[/red] {option} {text!r} is not a duration like 1m, 5m or 1h")
        raise typer.Exit(2) from exc
    if step <= pd.Timedelta(0) or step.total_seconds() % 1:
        err.print(f"[red]error:[/red] {option} {text!r} must be a positive whole number of seconds")
        raise typer.Exit(2)
    return step


def _simulator(seed: int, step: pd.Timedelta, incidents_per_day: float) -> Any:
    from simulator import Simulator, SimulatorConfig

    return Simulator(
        SimulatorConfig(
            seed=seed, step=f"{int(step.total_seconds())}s", incidents_per_day=incidents_per_day
        )
    )


class CheckRow(dict[str, Any]):
    """One line of ``collectors check``: series, source, query, ok, series count, latest, names."""


def check_series(settings: Settings, window: pd.Timedelta, now: pd.Timestamp | None = None) -> list[CheckRow]:
    """Run each configured query once over ``[now - window, now)``; never raises per query."""
    from collectors import SeriesRequest
    from collectors.prometheus import PrometheusCollector
    from surgecast.wiring import build_sources, resolve_series

    now = (now or pd.Timestamp.now(tz="UTC")).floor("s")
    sources = build_sources(settings)
    entries: list[SeriesSettings] = (
        list(settings.series) if settings.series is not None else resolve_series(settings, sources)
    )
    rows = []
    for entry in entries:
        row = CheckRow(series=entry.unique_id, source=entry.source, query=entry.query, ok=False,
                       n_series=0, latest=None, names=[], error=None)  # fmt: skip
        collector = sources.collectors[entry.source]
        try:
            if isinstance(collector, PrometheusCollector):
                probes = [p for p in collector.probe(entry.query, now - window, now) if p.points]
                names = [p.unique_id or _labels(p.labels) for p in probes]
                latest = [p.latest for p in probes if p.latest is not None]
            else:
                frame = collector.fetch(SeriesRequest(entry.unique_id, entry.query), now - window, now)
                names = [entry.unique_id] if len(frame) else []
                latest = [frame["ds"].max()] if len(frame) else []
            row["names"] = names
            row["n_series"] = len(names)
            row["latest"] = max(latest) if latest else None
            row["ok"] = bool(names)
            if not names:
                row["error"] = f"no data in the last {window}"
        except Exception as exc:  # report every query, whatever fails
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    for collector in sources.collectors.values():
        close = getattr(collector, "close", None)
        if close is not None:
            close()
    return rows


def _labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def register(app: typer.Typer, simulate_app: typer.Typer) -> None:
    """Add ``collectors check`` to ``app`` and ``serve`` / ``backfill`` to ``simulate_app``."""
    collectors_app = typer.Typer(help="Inspect the configured metrics sources.", no_args_is_help=True)
    app.add_typer(collectors_app, name="collectors")

    @collectors_app.command("check")
    def collectors_check(
        config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
        window: Annotated[str, typer.Option(help="How far back to look, e.g. 1h, 30m.")] = "1h",
    ) -> None:
        """Run every configured query once: does it return data, how many series, the newest
        point. Exit 0 when every query returns data, 1 otherwise."""
        try:
            settings = load_settings(config)
            rows = check_series(settings, _step(window, "--window"))
        except SurgecastError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from exc
        urls = {n: s.url for n, s in settings.sources.items() if isinstance(s, PrometheusSource)}
        for name, url in urls.items():
            out.print(f"source {name}: {url}", highlight=False)
        for r in rows:
            mark = "[green]ok[/green]" if r["ok"] else "[red]NO[/red]"
            out.print(f"{mark}  {r['series']}  (source {r['source']})", highlight=False)
            out.print(f"    query: {r['query']}", highlight=False, markup=False)
            if r["ok"]:
                names = ", ".join(r["names"][:6]) + (" ..." if len(r["names"]) > 6 else "")
                out.print(
                    f"    {r['n_series']} series, newest point {r['latest']:%Y-%m-%d %H:%M:%S} UTC: "
                    f"{names}", highlight=False, markup=False,
                )  # fmt: skip
            else:
                out.print(f"    error: {r['error']}", highlight=False, markup=False)
        bad = [r for r in rows if not r["ok"]]
        out.print(f"{len(rows) - len(bad)} of {len(rows)} queries return data")
        raise typer.Exit(1 if bad else 0)

    @simulate_app.command("serve")
    def simulate_serve(
        port: Annotated[int, typer.Option(help="Port of /metrics.", min=0, max=65535)] = 9108,
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        seed: Annotated[int, typer.Option(help="Random seed (same as the simulator source).")] = 7,
        step: Annotated[str, typer.Option(help="Grid step, e.g. 1m.")] = "1m",
        incidents_per_day: Annotated[float, typer.Option(min=0)] = 0.35,
    ) -> None:
        """Expose the simulator's live metrics at /metrics for Prometheus (Ctrl-C stops)."""
        from simulator.exporter import serve

        sim = _simulator(seed, _step(step, "--step"), incidents_per_day)
        try:
            server, _, _ = serve(sim, port=port, host=host)
        except OSError as exc:
            err.print(f"[red]error:[/red] cannot listen on {host}:{port}: {exc}")
            raise typer.Exit(2) from exc
        err.print(f"simulator exporter on http://{host}:{server.server_port}/metrics (Ctrl-C stops)")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
            server.server_close()

    @simulate_app.command("backfill")
    def simulate_backfill(
        out_dir: Annotated[Path, typer.Option("--out", "-o", help="Prometheus data directory.")],
        days: Annotated[float, typer.Option(help="Days of history.", min=0.01)] = 14,
        end: Annotated[str | None, typer.Option(help="End (ISO 8601 UTC); default now.")] = None,
        seed: Annotated[int, typer.Option(help="Random seed (same as the exporter's).")] = 7,
        step: Annotated[str, typer.Option(help="Grid step, e.g. 1m.")] = "1m",
        incidents_per_day: Annotated[float, typer.Option(min=0)] = 0.35,
        counters: Annotated[bool, typer.Option(help="Also write *_total counters.")] = True,
        promtool: Annotated[str, typer.Option(help="promtool executable.")] = "promtool",
        keep_openmetrics: Annotated[bool, typer.Option(help="Keep the .om file.")] = False,
    ) -> None:
        """Write simulator history into a Prometheus data dir (OpenMetrics + promtool).

        Start Prometheus on the directory afterwards, with retention above DAYS (e.g.
        --storage.tsdb.retention.time=30d; the default 15d deletes older blocks at start).
        """
        from simulator.backfill import backfill

        end_ts = None
        if end is not None:
            end_ts = pd.Timestamp(end)
            end_ts = end_ts.tz_localize("UTC") if end_ts.tzinfo is None else end_ts.tz_convert("UTC")
        sim = _simulator(seed, _step(step, "--step"), incidents_per_day)
        err.print(f"backfilling {days:g} days into {out_dir} ...")
        try:
            result = backfill(
                out_dir, sim, days=days, end=end_ts, counters=counters, promtool=promtool,
                keep_openmetrics=keep_openmetrics,
            )  # fmt: skip
        except (FileNotFoundError, ValueError, RuntimeError) as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from exc
        out.print(
            f"{result.samples:,} samples of {result.series} series from {result.start:%Y-%m-%d %H:%M} "
            f"to {result.end:%Y-%m-%d %H:%M} UTC in {result.blocks} block(s), {result.seconds:.1f} s"
            + (f"; OpenMetrics kept at {result.openmetrics}" if result.openmetrics else "")
        )
