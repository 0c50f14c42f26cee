"""``surgecast backtest``: the per-model table, model parsing, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from surgecast.backtest_cli import TABLE_COLUMNS, backtest_file, format_table, register

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    a = typer.Typer()
    register(a)

    @a.callback()
    def _root() -> None:  # keeps ``backtest`` a sub-command, as in ``surgecast``
        """test app"""

    return a


def hourly(days: int = 6, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-03-02", periods=days * 24, freq="h")
    y = rng.poisson(60 + 40 * np.sin(2 * np.pi * np.arange(ds.size) / 24)).astype(float)
    return pd.DataFrame({"timestamp": ds, "value": y})


def test_table_per_model(tmp_path, app):
    path = tmp_path / "rps.csv"
    hourly().to_csv(path, index=False)
    res = runner.invoke(app, ["backtest", str(path), "--horizon", "12", "--cutoffs", "2",
                              "--models", "naive,mstl"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].split() == ["model", "series", "windows", "sMAPE", "MASE", "cov90", "fit_s"]
    assert [line.split()[0] for line in lines[1:]] == ["naive", "mstl"]
    assert [line.split()[2] for line in lines[1:]] == ["2", "2"]


def test_backtest_file_values(tmp_path):
    path = tmp_path / "rps.csv"
    frame = hourly()
    frame.to_csv(path, index=False)
    table = backtest_file(path, 24, 2, ["naive"])
    assert list(table.columns) == TABLE_COLUMNS
    row = table.iloc[0]
    assert row["windows"] == 2 and row["series"] == 1
    assert 0.0 <= row["coverage90"] <= 1.0 and row["fit_seconds"] >= 0.0
    # seasonal naive at the one-day lag on a 24-step window: MASE over the window = its own
    # error over the in-sample seasonal-naive error, recomputed here by hand for the last window
    y = frame["value"].to_numpy(float)
    c2, c1 = len(y) - 24, len(y) - 48
    per = [np.mean(np.abs(y[c:c + 24] - y[c - 24:c])) / np.mean(np.abs(y[24:c] - y[:c - 24]))
           for c in (c1, c2)]
    assert row["mase"] == pytest.approx(np.mean(per))
    assert "naive" in format_table(table)


def test_long_input_many_series(tmp_path, app):
    parts = [hourly(seed=i).rename(columns={"timestamp": "ds", "value": "y"}).assign(
        unique_id=f"s{i}") for i in range(2)]
    path = tmp_path / "long.csv"
    pd.concat(parts)[["unique_id", "ds", "y"]].to_csv(path, index=False)
    res = runner.invoke(app, ["backtest", str(path), "--horizon", "12", "--cutoffs", "1",
                              "--models", "naive"])
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[1].split()[1:3] == ["2", "2"]


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--models", "naive,nope"], "--models"),
        (["--models", "naive", "--horizon", "0"], "--horizon"),
        (["--models", "naive", "--horizon", "500"], "no backtest window"),
    ],
)
def test_bad_arguments_one_line(tmp_path, app, args, reason):
    path = tmp_path / "rps.csv"
    hourly().to_csv(path, index=False)
    base = ["backtest", str(path), "--cutoffs", "2"]
    if "--horizon" not in args:
        base += ["--horizon", "12"]
    res = runner.invoke(app, base + args)
    assert res.exit_code != 0
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and reason in lines[0], res.output


def test_policy_takes_horizon_origins_and_window_from_the_service_config(tmp_path, app):
    path = tmp_path / "rps.csv"
    hourly(days=10).to_csv(path, index=False)
    config = tmp_path / "surgecast.yaml"
    # lead 10 min + extra 110 min = 2 h = 2 hourly steps; 3 origins
    config.write_text("forecast: {extra_horizon_minutes: 110, retrain_backtest_windows: 3}\n")
    res = runner.invoke(app, ["backtest", str(path), "--policy", "--config", str(config),
                              "--models", "naive"])  # fmt: skip
    assert res.exit_code == 0, res.output
    row = res.output.strip().splitlines()[1].split()
    assert row[0] == "naive" and row[2] == "3"


def test_without_policy_horizon_and_cutoffs_are_required(tmp_path, app):
    path = tmp_path / "rps.csv"
    hourly().to_csv(path, index=False)
    res = runner.invoke(app, ["backtest", str(path), "--models", "naive"])
    assert res.exit_code == 2
    assert "--policy" in res.output
