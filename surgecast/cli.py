"""The ``surgecast`` command line.

Every command takes ``--config PATH`` (default ``./surgecast.yaml`` if present, else the embedded
defaults: simulator source, SQLite store in ./var, API on 127.0.0.1:8000, dashboard on :8501).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from surgecast.config import Settings, load_settings
from surgecast.errors import SurgecastError
from surgecast.logs import setup_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="surgecast",
    help="Predict betting-traffic surges, spot abnormal rates, and recommend replicas before the failure.",
    no_args_is_help=True,
    add_completion=False,
)
simulate_app = typer.Typer(help="The built-in betting-platform simulator.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect and validate configuration files.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")
app.add_typer(config_app, name="config")

err = Console(stderr=True)
out = Console()

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML config file (default: ./surgecast.yaml or embedded defaults)."
    ),
]


def _setup_logging(verbose: bool = False) -> None:
    setup_logging(logging.DEBUG if verbose else logging.INFO)


def _settings(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except SurgecastError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from exc


@app.command()
def run(
    config: ConfigOption = None,
    no_dashboard: Annotated[
        bool, typer.Option("--no-dashboard", help="Do not start the dashboard.")
    ] = False,
    speed: Annotated[
        float | None,
        typer.Option(help="Demo: run simulated time this many times faster (simulator sources).", min=0.01),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run everything: scheduler (tick every minute), HTTP API and dashboard. Ctrl-C stops it."""
    from surgecast.runner import run_service

    _setup_logging(verbose)
    settings = _settings(config)
    if speed is not None:
        settings = _with_speed(settings, speed)
    api = f"http://{settings.api.host}:{settings.api.port}"
    err.print(f"surgecast: API on {api} (try {api}/v1/recommendations), store {settings.store.url}")
    raise typer.Exit(_serve(lambda: run_service(settings, with_dashboard=not no_dashboard)))


def _serve(start: Callable[[], int]) -> int:
    """Run a long-lived process; a configuration or store problem is one clear line, exit 2."""
    try:
        return start()
    except SurgecastError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2


def _with_speed(settings: Settings, speed: float) -> Settings:
    from surgecast.config import SimulatorSource

    sources = {
        name: src.model_copy(update={"speed": speed}) if isinstance(src, SimulatorSource) else src
        for name, src in settings.sources.items()
    }
    if not any(isinstance(s, SimulatorSource) for s in sources.values()):
        err.print("[red]error:[/red] --speed needs a simulator source in the configuration")
        raise typer.Exit(2)
    return settings.model_copy(update={"sources": sources})


@app.command()
def api(config: ConfigOption = None) -> None:
    """Run the HTTP API alone (no ticks); pair it with `surgecast scheduler`."""
    from surgecast.runner import run_api

    _setup_logging()
    settings = _settings(config)
    raise typer.Exit(_serve(lambda: run_api(settings)))


@app.command()
def scheduler(config: ConfigOption = None) -> None:
    """Run the tick loop alone (one per deployment), without the API."""
    from surgecast.runner import run_scheduler

    _setup_logging()
    settings = _settings(config)
    raise typer.Exit(_serve(lambda: run_scheduler(settings)))


@app.command()
def tick(
    config: ConfigOption = None,
    once: Annotated[bool, typer.Option("--once", help="Run exactly one tick and exit.")] = True,
    at: Annotated[str | None, typer.Option(help="Tick time (ISO 8601, UTC); default now.")] = None,
) -> None:
    """Run one tick (collect, detect, forecast, plan, persist) and print what it did."""
    from surgecast.store import Store
    from surgecast.wiring import build_pipeline

    _setup_logging()
    settings = _settings(config)
    try:
        store = Store(settings.store.url)
        pipeline = build_pipeline(settings, store)
        now = _tick_time(at)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True,
        ) as progress:  # fmt: skip
            task = progress.add_task("collecting series", total=len(pipeline.series))

            def on_progress(stage: str, done: int, total: int) -> None:
                progress.update(task, completed=done, total=total, description=f"{stage}")

            report = pipeline.tick(now, progress=on_progress)
    except SurgecastError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    table = Table(title=f"tick at {report.now:%Y-%m-%d %H:%M} UTC")
    for col in ("service", "replicas", "stale", "reason"):
        table.add_column(col, overflow="fold")
    for rec in report.recommendations:
        table.add_row(
            rec["service"], str(rec["recommended_replicas"]), str(rec["stale"]), rec["reason"]
        )
    out.print(table)
    out.print(
        f"{sum(report.points.values())} points from {len(report.points)} series, "
        f"{report.anomalies} anomalies, {report.forecasts} forecast rows, "
        f"{len(report.errors)} errors; stages "
        + ", ".join(f"{k} {v:.2f}s" for k, v in report.durations.items())
    )
    for e in report.errors:
        err.print(f"[yellow]{e['stage']}[/yellow] {e['subject']}: {e['error']}", highlight=False)
    store.close()
    raise typer.Exit(0 if report.ok else 1)


def _tick_time(at: str | None) -> pd.Timestamp | None:
    """Parse ``--at``; a tick in the future would shadow every real tick until then."""
    if at is None:
        return None
    try:
        ts = pd.Timestamp(at)
    except ValueError as exc:
        err.print(f"[red]error:[/red] --at {at!r} is not an ISO 8601 time")
        raise typer.Exit(2) from exc
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if ts > pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=1):
        err.print(f"[red]error:[/red] --at {ts.isoformat()} is in the future; tick at now or earlier")
        raise typer.Exit(2)
    return ts


@simulate_app.command("generate")
def simulate_generate(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory to write into.")],
    days: Annotated[float, typer.Option(help="Days of history ending now.", min=0.01)] = 28,
    step: Annotated[str, typer.Option(help="Grid step, e.g. 1m, 5m, 1h.")] = "1m",
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 7,
    end: Annotated[str | None, typer.Option(help="End (ISO 8601 UTC); default now.")] = None,
    parquet: Annotated[bool, typer.Option("--parquet", help="Also write series.parquet.")] = False,
) -> None:
    """Write simulated series, fixtures and incident labels as CSV (and Parquet)."""
    from simulator import generate_files

    try:
        step_td = pd.Timedelta(step)  # "1m" is a minute here, never a month
    except ValueError as exc:
        err.print(f"[red]error:[/red] --step {step!r} is not a duration like 1m, 5m or 1h")
        raise typer.Exit(2) from exc
    end_ts = pd.Timestamp(end) if end else None
    if end_ts is not None and end_ts.tzinfo is None:
        end_ts = end_ts.tz_localize("UTC")
    with Progress(
        TextColumn("generating days"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
    ) as progress:  # fmt: skip
        task = progress.add_task("generate", total=None)
        paths = generate_files(
            out_dir,
            days=days,
            step=f"{int(step_td.total_seconds())}s",
            seed=seed,
            end=end_ts,
            formats=("csv", "parquet") if parquet else ("csv",),
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    for name, path in paths.items():
        out.print(f"{name}: {path}")


@config_app.command("check")
def config_check(
    path: Annotated[
        Path | None, typer.Argument(help="YAML file (default ./surgecast.yaml).")
    ] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Print the effective settings as JSON.")
    ] = False,
) -> None:
    """Validate a config file: exit 0 if good, 2 with the file, key and expectation if not."""
    settings = _settings(path)
    where = str(path) if path else "effective configuration"
    out.print(f"{where}: OK ({len(settings.services)} services, {len(settings.sources)} source(s))")
    if show:
        out.print_json(json.dumps(settings.model_dump(mode="json")))


def _register_commands() -> None:
    from surgecast.backtest_cli import register as register_backtest
    from surgecast.collectors_cli import register as register_collectors
    from surgecast.detect_cli import register as register_detect
    from surgecast.forecast_cli import register as register_forecast
    from surgecast.replay_cli import register as register_replay

    register_forecast(app)
    register_backtest(app)
    register_detect(app)
    register_replay(app)
    register_collectors(app, simulate_app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
