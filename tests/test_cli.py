"""The command line as a user types it."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from surgecast.cli import app

runner = CliRunner()


def test_help_explains_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "api", "scheduler", "tick", "simulate", "config"):
        assert command in result.output
    sim_help = runner.invoke(app, ["simulate", "generate", "--help"])
    assert "--days" in sim_help.output and "--seed" in sim_help.output


def test_simulate_generate_writes_series_fixtures_and_incidents(tmp_path):
    out = tmp_path / "sim"
    result = runner.invoke(
        app,
        ["simulate", "generate", "--days", "2", "--step", "5m", "--seed", "7", "--out", str(out),
         "--end", "2026-11-21T00:00:00", "--parquet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    series = pd.read_csv(out / "series.csv")
    assert list(series.columns) == ["unique_id", "ds", "y"]
    per_series = series.groupby("unique_id").size()
    assert (
        per_series <= 2 * 288
    ).all() and per_series.max() == 2 * 288  # 5-minute step, not months
    assert pd.to_datetime(series["ds"]).max() < pd.Timestamp("2026-11-21", tz="UTC")
    assert (out / "series.parquet").exists()
    fixtures = pd.read_csv(out / "fixtures.csv")
    assert {"event_id", "start", "end", "sport", "competition", "importance"} <= set(
        fixtures.columns
    )
    assert len(fixtures) > 0
    assert (out / "incidents.csv").exists()


def test_simulate_generate_is_deterministic(tmp_path):
    args = ["simulate", "generate", "--days", "1", "--step", "10m", "--end", "2026-11-21T00:00:00"]
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "a")]).exit_code == 0
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "b")]).exit_code == 0
    assert (tmp_path / "a/series.csv").read_bytes() == (tmp_path / "b/series.csv").read_bytes()


def test_simulate_generate_rejects_a_bad_step(tmp_path):
    result = runner.invoke(app, ["simulate", "generate", "--step", "often", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a duration" in result.output


def test_tick_once_prints_the_recommendations(tmp_path, monkeypatch):
    config = tmp_path / "c.yaml"
    config.write_text(
        "backfill_days: 2\nstale_after_seconds: 3600\n"
        "sources:\n  simulator: {type: simulator, step: 10min}\n"
        f"store: {{url: 'sqlite:///{tmp_path / 't.db'}'}}\n"
        "forecast: {history_days: 2}\n"
        f"models_dir: {tmp_path / 'models'}\n"
    )
    result = runner.invoke(
        app, ["tick", "--once", "--config", str(config), "--at", "2026-11-20T18:00:00"]
    )
    assert result.exit_code == 0, result.output
    for service in ("odds-api", "bet-placement", "account", "payments"):
        assert service in result.output
    assert "0 errors" in result.output


def test_tick_on_an_unreachable_store_fails_clearly(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("store: {url: 'postgresql+psycopg://nobody:secret@127.0.0.1:1/none'}\n")
    result = runner.invoke(app, ["tick", "--once", "--config", str(config)])
    assert result.exit_code == 1
    assert "secret" not in result.output
    assert "error" in result.output.lower()


def test_speed_applies_to_simulator_sources_only():
    from surgecast.cli import _with_speed
    from surgecast.config import Settings

    fast = _with_speed(Settings(), 60.0)
    assert fast.sources["simulator"].speed == 60.0
    assert Settings().sources["simulator"].speed == 1.0  # the original is untouched


def test_tick_refuses_a_future_time(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"store: {{url: 'sqlite:///{tmp_path / 't.db'}'}}\n")
    future = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=3)).isoformat()
    result = runner.invoke(app, ["tick", "--once", "--config", str(config), "--at", future])
    assert result.exit_code == 2
    assert "is in the future" in result.output


def test_scheduler_with_a_broken_source_fails_in_one_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "sources:\n  prom: {type: prometheus, url: 'http://127.0.0.1:1', "
        f"bearer_token_file: '{tmp_path / 'missing-token'}'}}\n"
        "series:\n  - {service: a, metric: b, source: prom, promql: 'up'}\n"
        f"store: {{url: 'sqlite:///{tmp_path / 't.db'}'}}\n"
    )
    result = runner.invoke(app, ["scheduler", "--config", str(config)])
    assert result.exit_code == 2
    assert "sources.prom.bearer_token_file: cannot read" in result.output
    assert "Traceback" not in result.output
