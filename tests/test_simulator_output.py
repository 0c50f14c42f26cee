"""OpenMetrics writer (golden text + real promtool) and the backfill file generator."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator import Simulator, SimulatorConfig, generate_files, write_openmetrics


def _frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": [r[0] for r in rows],
            "ds": pd.to_datetime([r[1] for r in rows], utc=True),
            "y": [r[2] for r in rows],
        }
    )


def test_openmetrics_golden(tmp_path: Path) -> None:
    # deliberately unsorted: the writer groups families and orders samples by time
    frame = _frame([
        ("bet-placement:requests_per_second", "2026-11-28T12:01:00Z", 314.334),
        ("odds-api:requests_per_second", "2026-11-28T12:00:00Z", 9000.5),
        ("bet-placement:requests_per_second", "2026-11-28T12:00:00Z", 1e-05),
        ("bet-placement:error_ratio", "2026-11-28T12:00:00Z", float("nan")),
    ])
    path = tmp_path / "m.om"
    assert write_openmetrics(frame, path) == 4
    assert path.read_text() == (
        "# HELP surgecast_sim_error_ratio Simulated error ratio (ratio)\n"
        "# TYPE surgecast_sim_error_ratio gauge\n"
        'surgecast_sim_error_ratio{service="bet-placement"} NaN 1795867200\n'
        "# HELP surgecast_sim_requests_per_second Simulated requests per second (requests/s)\n"
        "# TYPE surgecast_sim_requests_per_second gauge\n"
        'surgecast_sim_requests_per_second{service="bet-placement"} 1e-05 1795867200\n'
        'surgecast_sim_requests_per_second{service="bet-placement"} 314.334 1795867260\n'
        'surgecast_sim_requests_per_second{service="odds-api"} 9000.5 1795867200\n'
        "# EOF\n"
    )


def test_openmetrics_prefix_subsecond_and_errors(tmp_path: Path) -> None:
    frame = _frame([("svc:x", "2026-11-28T12:00:00.250Z", 2.0)])
    write_openmetrics(frame, tmp_path / "a.om", metric_prefix="my-app")
    text = (tmp_path / "a.om").read_text().splitlines()
    assert text[2] == 'my_app_x{service="svc"} 2.0 1795867200.250'
    empty = frame.iloc[:0]
    assert write_openmetrics(empty, tmp_path / "b.om") == 0
    assert (tmp_path / "b.om").read_text() == "# EOF\n"
    with pytest.raises(ValueError, match="service:metric"):
        write_openmetrics(_frame([("nocolon", "2026-11-28T12:00Z", 1.0)]), tmp_path / "c.om")
    with pytest.raises(ValueError, match="duplicate"):
        write_openmetrics(pd.concat([frame, frame]), tmp_path / "d.om")


@pytest.mark.promtool
def test_promtool_accepts_the_file_and_keeps_every_sample(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool not found on PATH: install the Debian package 'prometheus' "
            "(apt-get install -y prometheus) or put promtool on PATH; CI installs it"
        )
    # a day that ended at least a day ago: well clear of any head block ("> 3 h before now")
    end = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)
    cfg = SimulatorConfig(seed=3, incidents_per_day=2.0)  # include silenced series
    frame = Simulator(cfg).series(end - pd.Timedelta(hours=26), end)
    path = tmp_path / "sim.om"
    written = write_openmetrics(frame, path)
    assert written == len(frame)
    db = tmp_path / "db"
    run = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "--max-block-duration=24h", "openmetrics",
         str(path), str(db)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    listing = subprocess.run([promtool, "tsdb", "list", str(db)], capture_output=True, text=True,
                             timeout=60, check=True).stdout.splitlines()
    samples = sum(int(line.split()[4]) for line in listing[1:] if line.strip())
    assert samples == written
    # promtool 2.42's dump insists on a WAL directory even for backfilled blocks
    (db / "wal").mkdir(exist_ok=True)
    dump = subprocess.run([promtool, "tsdb", "dump", str(db)], capture_output=True, text=True,
                          timeout=120, check=True).stdout.splitlines()
    assert len(dump) == written
    first = frame[frame["unique_id"] == "bet-placement:bets_per_second"].iloc[0]
    want = (f'{{__name__="surgecast_sim_bets_per_second", service="bet-placement"}} '
            f'{float(first["y"])!r} {first["ds"].value // 10**6}')
    assert want in dump


def test_generate_files_round_trip(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    end = "2026-11-28T13:37:20Z"
    paths = generate_files(tmp_path / "out", days=2, seed=5, end=end,
                           formats=("csv", "parquet"), progress=lambda d, t: calls.append((d, t)))
    assert set(paths) == {"series", "series_parquet", "fixtures", "incidents"}
    assert all(p.exists() for p in paths.values())
    # 3 days rendered (partial, full, partial) + 1 group of series written
    assert calls[-1][0] == calls[-1][1] == len(calls) == 4
    sim = Simulator(SimulatorConfig(seed=5))
    stop = pd.Timestamp("2026-11-28T13:37Z")
    want = sim.series(stop - pd.Timedelta(days=2), stop)
    csv = pd.read_csv(paths["series"])
    assert list(csv.columns) == ["unique_id", "ds", "y"]
    assert csv["ds"].iloc[0] == (stop - pd.Timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    csv["ds"] = pd.to_datetime(csv["ds"], utc=True).dt.as_unit("ns")
    assert csv.equals(csv.sort_values(["unique_id", "ds"]).reset_index(drop=True))  # canonical
    assert np.array_equal(csv["y"].to_numpy(), want["y"].to_numpy())  # exact floats
    assert (csv["ds"] == want["ds"]).all()
    pq = pd.read_parquet(paths["series_parquet"])
    pq = pq.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    assert np.array_equal(pq["y"].to_numpy(), want["y"].to_numpy())
    fixtures = pd.read_csv(paths["fixtures"])
    assert set(fixtures["event_id"]) == set(sim.fixtures(stop - pd.Timedelta(days=2),
                                                         stop)["event_id"])
    incidents = pd.read_csv(paths["incidents"])
    assert "unique_ids" in incidents.columns


def test_generate_files_rejects_bad_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="formats"):
        generate_files(tmp_path, days=1, formats=("xlsx",))
