"""``surgecast detect``: input shapes, one row per input row in order, causality, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from surgecast.detect_cli import OUTPUT_COLUMNS, register

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    register(a)

    @a.callback()
    def _root() -> None:  # keep ``detect`` a sub-command, as in the real CLI
        """test app"""

    return a


def values(n: int = 1500, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = 50 + 10 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 1, n)
    if n > 1200:
        y[1200] += 40
    return y


def nab_like(path: Path, n: int = 1500) -> pd.DataFrame:
    ts = pd.date_range("2014-03-01", periods=n, freq="5min").strftime("%Y-%m-%d %H:%M:%S")
    df = pd.DataFrame({"timestamp": ts, "value": values(n)})
    df.to_csv(path, index=False)
    return df


def detect(app, tmp_path: Path, src: Path, *extra: str) -> pd.DataFrame:
    out = tmp_path / "out.csv"
    res = runner.invoke(app, ["detect", str(src), "-o", str(out), *extra])
    assert res.exit_code == 0, res.output
    return pd.read_csv(out)


def test_timestamp_value_input(app, tmp_path):
    df = nab_like(tmp_path / "cpu.csv")
    out = detect(app, tmp_path, tmp_path / "cpu.csv")
    assert list(out.columns) == OUTPUT_COLUMNS
    assert len(out) == len(df) and set(out["unique_id"]) == {"cpu"}
    assert out["ds"].tolist() == df["timestamp"].tolist()
    np.testing.assert_array_equal(out["y"], df["value"])
    assert out["score"].between(0, 1).all()
    assert (out["score"].iloc[:288] == 0).all()  # warm-up
    assert bool(out.loc[1200, "is_anomaly"]) and out.loc[1200, "kind"] == "spike"


def test_long_input_keeps_row_order_and_series_apart(app, tmp_path):
    ds = pd.date_range("2026-01-01", periods=1500, freq="5min", tz="UTC")
    a = pd.DataFrame({"unique_id": "a", "ds": ds, "y": values(1500, 1)})
    b = pd.DataFrame({"unique_id": "b", "ds": ds, "y": values(1500, 2) * 100})
    mixed = pd.concat([a, b]).sample(frac=1.0, random_state=0).reset_index(drop=True)
    mixed.to_csv(tmp_path / "long.csv", index=False)
    out = detect(app, tmp_path, tmp_path / "long.csv", "--detector", "novelty")
    assert out["unique_id"].tolist() == mixed["unique_id"].tolist()
    np.testing.assert_array_equal(out["y"], mixed["y"])
    alone = a.copy()
    alone.drop(columns="unique_id").to_csv(tmp_path / "a.csv", index=False)
    single = detect(app, tmp_path, tmp_path / "a.csv")
    mine = out[out["unique_id"] == "a"].assign(t=lambda d: pd.to_datetime(d["ds"]))
    np.testing.assert_allclose(mine.sort_values("t")["score"], single["score"], atol=1e-12)


def test_duplicate_timestamps_and_gaps_are_a_sequence(app, tmp_path):
    df = nab_like(tmp_path / "x.csv", 1200)
    dup = pd.concat([df.iloc[:700], pd.DataFrame({"timestamp": [df["timestamp"][699]] * 5,
                                                  "value": [df["value"][699]] * 5}),
                     df.iloc[700:]], ignore_index=True)
    dup.loc[900, "value"] = np.nan  # a missing value
    dup = dup.drop(index=range(1000, 1010)).reset_index(drop=True)  # a gap in time
    dup.to_csv(tmp_path / "dup.csv", index=False)
    out = detect(app, tmp_path, tmp_path / "dup.csv")
    assert len(out) == len(dup) and out["ds"].tolist() == dup["timestamp"].tolist()
    assert out.loc[900, "score"] == 0 and not out.loc[900, "is_anomaly"]


def test_truncating_the_file_changes_no_kept_score(app, tmp_path):
    df = nab_like(tmp_path / "full.csv")
    full = detect(app, tmp_path, tmp_path / "full.csv")["score"].to_numpy()
    for cut in (300, 777, 1201, 1499):
        df.iloc[:cut].to_csv(tmp_path / "cut.csv", index=False)
        part = detect(app, tmp_path, tmp_path / "cut.csv")["score"].to_numpy()
        np.testing.assert_allclose(part, full[:cut], atol=1e-12)


@pytest.mark.parametrize("detector", ["auto", "novelty", "robust_zscore"])
def test_every_detector_runs(app, tmp_path, detector):
    nab_like(tmp_path / "s.csv")
    out = detect(app, tmp_path, tmp_path / "s.csv", "--detector", detector)
    assert len(out) == 1500 and out["score"].between(0, 1).all()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("a,b\n1,2\n", "expected columns"),
        ("timestamp,value\n", "no rows"),
        ("timestamp,value\n2026-01-01 00:00,abc\n2026-01-01 00:05,1\n", "non-numeric"),
        ("timestamp,value\nnot-a-time,1\nalso-not,2\n", "unparseable timestamps"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(app, tmp_path, content, reason):
    (tmp_path / "bad.csv").write_text(content)
    res = runner.invoke(app, ["detect", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code != 0
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and reason in lines[0], res.output
    assert not (tmp_path / "o.csv").exists()


def test_unknown_detector_and_missing_file(app, tmp_path):
    nab_like(tmp_path / "s.csv")
    res = runner.invoke(app, ["detect", str(tmp_path / "s.csv"), "--detector", "nope",
                              "-o", str(tmp_path / "o.csv")])
    assert res.exit_code != 0 and "unknown detector 'nope'" in res.output
    res = runner.invoke(app, ["detect", str(tmp_path / "none.csv"), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code != 0 and "cannot read" in res.output


def test_events_excuse_an_expected_surge_but_not_one_without_a_fixture(app, tmp_path):
    n = 288 * 6
    ds = pd.date_range("2026-10-05", periods=n, freq="5min", tz="UTC")
    rng = np.random.default_rng(2)
    y = 100 + 20 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 2, n)
    kick, night = 288 * 4 + 240, 288 * 5 + 144  # day 5 20:00 (a fixture), day 6 12:00 (none)
    y[kick:kick + 6] += 300
    y[night:night + 6] += 600  # beyond the kickoff surge the detector has already seen
    src = tmp_path / "traffic.csv"
    pd.DataFrame({"ds": ds.strftime("%Y-%m-%d %H:%M:%S"), "y": y}).to_csv(src, index=False)
    cal = tmp_path / "fixtures.csv"
    pd.DataFrame({"start": [str(ds[kick])], "end": [str(ds[kick] + pd.Timedelta("2h"))]}
                 ).to_csv(cal, index=False)
    plain = detect(app, tmp_path, src)
    aware = detect(app, tmp_path, src, "--events", str(cal))
    for out in (plain, aware):
        assert out["is_anomaly"].iloc[night:night + 6].any()  # no fixture: still an anomaly
    assert plain["is_anomaly"].iloc[kick:kick + 6].any()
    assert not aware["is_anomaly"].iloc[kick - 20:kick + 30].any()  # the fixture expected it
    outside = np.r_[0:kick - 20, kick + 30:n]
    assert (plain["score"].to_numpy()[outside] == aware["score"].to_numpy()[outside]).all()


def test_events_file_without_start_is_a_one_line_error(app, tmp_path):
    src = tmp_path / "a.csv"
    nab_like(src, 400)
    cal = tmp_path / "cal.csv"
    cal.write_text("kick,x\n2026-01-01,1\n")
    res = runner.invoke(app, ["detect", str(src), "-o", str(tmp_path / "o.csv"), "--events",
                              str(cal)])
    assert res.exit_code == 2 and "start" in res.output
