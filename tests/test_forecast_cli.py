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
