"""``surgecast forecast``: input shapes, fallbacks, bad input, output contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from surgecast.cli import app

runner = CliRunner()
COLUMNS = ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model"]


def hourly(days: int = 5, seed: int = 1, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-03-01", periods=days * 24, freq="h")
    y = rng.poisson(scale * (50 + 40 * np.sin(2 * np.pi * np.arange(ds.size) / 24))).astype(float)
    return pd.DataFrame({"ds": ds, "y": y})


def run(path, *extra):
    out = path.parent / "out.csv"
    res = runner.invoke(app, ["forecast", str(path), "--horizon", "6", "-o", str(out),
                              "--n-jobs", "1", *extra])
    return res, out


@pytest.mark.parametrize("names", [("timestamp", "value"), ("ds", "y")])
def test_single_series_shapes(tmp_path, names):
    path = tmp_path / "api_rps.csv"
    hourly().rename(columns=dict(zip(("ds", "y"), names, strict=True))).to_csv(path, index=False)
    res, out = run(path)
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out)
    assert list(fc.columns) == COLUMNS
    assert set(fc["unique_id"]) == {"api_rps"} and len(fc) == 6
    assert fc["ds"].iloc[0] == "2026-03-06 00:00:00"
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()


@pytest.mark.parametrize("model", ["auto", "naive", "ets", "mstl"])
def test_long_multi_series(tmp_path, model):
    parts = [hourly(seed=i, scale=i + 1).assign(unique_id=f"s{i}") for i in range(3)]
    path = tmp_path / "long.csv"
    pd.concat(parts)[["unique_id", "ds", "y"]].to_csv(path, index=False)
    res, out = run(path, "--model", model)
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out)
    assert fc.groupby("unique_id").size().to_dict() == {"s0": 6, "s1": 6, "s2": 6}
    assert fc[COLUMNS[2:5]].notna().all().all()
    if model != "auto":
        assert set(fc["model"]) == {"seasonal_naive" if model == "naive" else model}


def test_integer_index_ds(tmp_path):
    frame = hourly().assign(unique_id="H1", ds=np.arange(1, 121))
    path = tmp_path / "m4.csv"
    frame[["unique_id", "ds", "y"]].to_csv(path, index=False)
    res, out = run(path)
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out)["ds"].tolist() == list(range(121, 127))


def test_failing_series_falls_back_and_short_series_is_skipped(tmp_path):
    good = hourly().assign(unique_id="good")
    # two days: enough for seasonal naive, too short for MSTL, which falls back
    flat = hourly(days=2).assign(unique_id="two_days")
    short = hourly(days=1).head(10).assign(unique_id="short")
    path = tmp_path / "mixed.csv"
    pd.concat([good, flat, short])[["unique_id", "ds", "y"]].to_csv(path, index=False)
    res, out = run(path, "--model", "mstl")
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out)
    assert set(fc["unique_id"]) == {"good", "two_days"}
    assert "short" in res.output
    models = fc.groupby("unique_id")["model"].first().to_dict()
    assert models == {"good": "mstl", "two_days": "seasonal_naive[fallback:mstl]"}


def test_model_failure_records_fallback(tmp_path, monkeypatch):
    from models import ModelError
    from models.forecasting import ets

    def boom(self, values, season):
        raise ModelError("synthetic failure")

    monkeypatch.setattr(ets.ETS, "_fit_values", boom)
    path = tmp_path / "x.csv"
    hourly().to_csv(path, index=False)
    res, out = run(path, "--model", "ets")
    assert res.exit_code == 0, res.output
    assert set(pd.read_csv(out)["model"]) == {"seasonal_naive[fallback:ets]"}


@pytest.mark.parametrize(
    "content, reason",
    [
        ("a,b\n1,2\n", "expected columns"),
        ("ds,y\n2026-01-01,x\n2026-01-02,y\n", "no numeric"),
        ("ds,y\nnot-a-date,1\nnor-this,2\n", "unparseable"),
        ("ds,y\n2026-01-01 00:00,1\n2026-01-01 01:00,2\n2026-01-01 02:00,3\n", "two seasons"),
    ],
)
def test_bad_input_exits_with_one_line(tmp_path, content, reason):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    res, out = run(path)
    assert res.exit_code != 0
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and reason in lines[0], res.output
    assert not out.exists()


# --- the full contract via forecast_cli.register: prophet, ensemble, --events ----------------


@pytest.fixture
def full_app():
    import typer

    from surgecast.forecast_cli import register

    a = typer.Typer()
    register(a)

    @a.callback()
    def _root() -> None:  # keeps ``forecast`` a sub-command, as in ``surgecast``
        """test app"""

    return a


def fixtures(days: int = 7) -> pd.DataFrame:
    start = pd.date_range("2026-03-01 19:00", periods=days, freq="D")
    return pd.DataFrame({"start": start, "competition": "league", "importance": 1.0})


def with_surges(days: int = 5) -> pd.DataFrame:
    frame = hourly(days=days)
    frame.loc[frame["ds"].dt.hour.isin([19, 20]), "y"] += 200.0
    return frame


def full_run(app, path, *extra):
    out = path.parent / "out.csv"
    res = runner.invoke(app, ["forecast", str(path), "--horizon", "6", "-o", str(out),
                              "--n-jobs", "1", *extra])
    return res, out


@pytest.mark.parametrize("model", ["ensemble", "prophet", "naive", "auto"])
def test_new_models_and_events(tmp_path, full_app, model):
    path, events = tmp_path / "rps.csv", tmp_path / "fixtures.csv"
    with_surges().to_csv(path, index=False)
    fixtures().to_csv(events, index=False)
    res, out = full_run(full_app, path, "--model", model, "--events", str(events))
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out)
    assert list(fc.columns) == COLUMNS and len(fc) == 6
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    expected = {"ensemble": "ensemble_median", "prophet": "prophet", "naive": "seasonal_naive"}
    if model in expected:
        assert set(fc["model"]) == {expected[model]}


def test_events_make_seasonal_events_a_candidate():
    from surgecast.forecast_cli import AUTO_CANDIDATES, candidates

    assert candidates(None) == AUTO_CANDIDATES
    assert candidates(fixtures()) == (*AUTO_CANDIDATES, "seasonal_events")


def test_ensemble_without_events_runs_via_main_app(tmp_path):
    path = tmp_path / "rps.csv"
    hourly().to_csv(path, index=False)
    res, out = run(path, "--model", "ensemble")
    assert res.exit_code == 0, res.output
    assert set(pd.read_csv(out)["model"]) == {"ensemble_median"}


@pytest.mark.parametrize(
    "content, reason",
    [
        ("start,importance\n2026-03-01 19:00,1\n", "competition"),
        ("start,competition,importance\nnot-a-time,league,1\n", "start"),
        ("start,competition,importance\n2026-03-01 19:00,league,-1\n", "importance"),
        ("start,competition,importance\n", "no fixtures"),
    ],
)
def test_bad_events_exit_with_one_line(tmp_path, full_app, content, reason):
    path, events = tmp_path / "rps.csv", tmp_path / "fixtures.csv"
    hourly().to_csv(path, index=False)
    events.write_text(content)
    res, out = full_run(full_app, path, "--events", str(events))
    assert res.exit_code != 0
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and reason in lines[0], res.output
    assert not out.exists()


def test_missing_events_file(tmp_path, full_app):
    path = tmp_path / "rps.csv"
    hourly().to_csv(path, index=False)
    res, _ = full_run(full_app, path, "--events", str(tmp_path / "none.csv"))
    assert res.exit_code != 0 and len(res.output.strip().splitlines()) == 1
