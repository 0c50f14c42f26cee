"""File and fixtures collectors: layouts, re-reading, validation messages, and the tick."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from collectors import CollectorError, CollectorUnavailable, SeriesRequest
from collectors.files import FileCollector, FixturesCollector, read_events
from surgecast.config import Settings
from surgecast.store import Store
from surgecast.wiring import build_pipeline

T0 = pd.Timestamp("2026-11-20 18:00", tz="UTC")


def test_a_canonical_csv_serves_each_series_in_the_window(tmp_path: Path):
    path = tmp_path / "series.csv"
    path.write_text(
        "unique_id,ds,y\n"
        "bet-placement:rps,2026-11-20T18:01:00Z,2\n"
        "bet-placement:rps,2026-11-20T18:00:00Z,1\n"
        "payments:rps,2026-11-20T18:00:00Z,9\n"
        "bet-placement:rps,2026-11-20T18:02:00Z,3\n"
    )
    c = FileCollector(path)
    frame = c.fetch(SeriesRequest("bet-placement:rps", "bet-placement:rps"), T0, T0 + pd.Timedelta("2min"))
    assert frame["y"].tolist() == [1.0, 2.0] and str(frame["ds"].dtype) == "datetime64[ns, UTC]"
    other = c.fetch(SeriesRequest("pay:rps", "payments:rps"), T0, T0 + pd.Timedelta("1h"))
    assert other["unique_id"].tolist() == ["pay:rps"] and other["y"].tolist() == [9.0]
    with pytest.raises(CollectorError, match=r"has no series 'odds:rps'; it has bet-placement:rps, payments:rps"):
        c.fetch(SeriesRequest("odds:rps", "odds:rps"), T0, T0 + pd.Timedelta("1h"))


def test_a_timestamp_value_parquet_is_one_series_and_is_re_read(tmp_path: Path):
    path = tmp_path / "load.parquet"
    pd.DataFrame({"timestamp": pd.date_range(T0, periods=3, freq="1min"), "value": [5.0, 6.0, 7.0]}).to_parquet(path)
    c = FileCollector(path)
    first = c.fetch(SeriesRequest("a:rps", "ignored"), T0, T0 + pd.Timedelta("1h"))
    assert first["y"].tolist() == [5.0, 6.0, 7.0] and set(first["unique_id"]) == {"a:rps"}
    pd.DataFrame({"timestamp": pd.date_range(T0, periods=4, freq="1min"), "value": [5.0, 6.0, 7.0, 8.0]}).to_parquet(path)
    os.utime(path, (1, 1))  # a different mtime even on coarse clocks
    assert len(c.fetch(SeriesRequest("a:rps", "ignored"), T0, T0 + pd.Timedelta("1h"))) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [("when,amount\n1,2\n", "expected columns unique_id,ds,y or timestamp,value"),
     ("timestamp,value\n2026-11-20T18:00Z,1\nyesterday,2\n", r"'timestamp' has values that are not times at line\(s\) 3"),
     ("timestamp,value\n2026-11-20T18:00Z,lots\n", r"'value' is not numeric at line\(s\) 2")],
)  # fmt: skip
def test_bad_series_files_name_the_file_column_and_line(tmp_path: Path, text, message):
    path = tmp_path / "s.csv"
    path.write_text(text)
    with pytest.raises(CollectorError, match=message):
        FileCollector(path).fetch(SeriesRequest("a:b", "a:b"), T0, T0 + pd.Timedelta("1h"))


def test_a_missing_file_is_an_unavailable_source(tmp_path: Path):
    with pytest.raises(CollectorUnavailable, match="file not found"):
        FileCollector(tmp_path / "gone.csv").fetch(SeriesRequest("a:b", "a:b"), T0, T0)


EVENTS = [
    {"event_id": "m1", "start": "2026-11-20T18:30:00Z", "end": "2026-11-20T20:25:00Z",
     "sport": "football", "competition": "Champions League", "importance": 2.5, "name": "A v B"},
    {"event_id": "m2", "start": "2026-11-21T15:00:00Z", "end": "2026-11-21T16:55:00Z",
     "sport": "football", "competition": "Premier League", "importance": 1},
]  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "json", "json-wrapped"])
def test_fixtures_from_csv_or_json(tmp_path: Path, fmt):
    if fmt == "csv":
        path = tmp_path / "fixtures.csv"
        pd.DataFrame(EVENTS).to_csv(path, index=False)
    else:
        path = tmp_path / "fixtures.json"
        path.write_text(json.dumps({"events": EVENTS} if fmt == "json-wrapped" else EVENTS))
    events = read_events(path)
    assert events["event_id"].tolist() == ["m1", "m2"]
    assert events["start"].iloc[0] == pd.Timestamp("2026-11-20 18:30", tz="UTC")
    assert events["importance"].tolist() == [2.5, 1.0]
    window = FixturesCollector(path).events(T0, T0 + pd.Timedelta(hours=3))
    assert window["event_id"].tolist() == ["m1"]


@pytest.mark.parametrize(
    ("change", "message"),
    [({"importance": "big"}, r"'importance' must be a number >= 0 .* line\(s\) 2"),
     ({"importance": -1}, r"'importance' must be a number >= 0"),
     ({"end": "2026-11-20T18:00:00Z"}, r"'end' is not after 'start' at line\(s\) 2"),
     ({"start": "soon"}, r"'start' has values that are not times at line\(s\) 2"),
     ({"event_id": "m2"}, r"event_id repeated: \['m2'\]")],
)  # fmt: skip
def test_bad_fixtures_are_refused_with_the_line(tmp_path: Path, change, message):
    path = tmp_path / "fixtures.csv"
    pd.DataFrame([{**EVENTS[0], **change}, EVENTS[1]]).to_csv(path, index=False)
    with pytest.raises(CollectorError, match=message):
        read_events(path)
    path.write_text("event_id,start\nx,2026-11-20T20:00Z\n")
    with pytest.raises(CollectorError, match=r"missing column\(s\) \['end', 'sport', 'competition', 'importance'\]"):
        read_events(path)


def test_a_file_source_with_fixtures_drives_the_tick(tmp_path: Path):
    from simulator import Simulator, SimulatorConfig

    sim = Simulator(SimulatorConfig(seed=3, step="5min", incidents_per_day=0))
    frame = sim.series(T0 - pd.Timedelta(days=3), T0, ["bet-placement:requests_per_second"])
    frame.to_csv(tmp_path / "series.csv", index=False)
    pd.DataFrame(EVENTS).to_csv(tmp_path / "fixtures.csv", index=False)
    settings = Settings(
        backfill_days=3, stale_after_seconds=900,
        sources={"export": {"type": "file", "path": str(tmp_path / "series.csv"), "step": "5min",
                            "fixtures_file": str(tmp_path / "fixtures.csv")}},
        series=[{"service": "bet-placement", "metric": "requests_per_second", "source": "export"}],
        store={"url": f"sqlite:///{tmp_path / 's.db'}"}, models_dir=str(tmp_path / "models"),
        forecast={"history_days": 3}, detect={"history_days": 2},
    )  # fmt: skip
    store = Store(settings.store.url)
    try:
        pipeline = build_pipeline(settings, store)
        report = pipeline.tick(T0)
        assert [e for e in report.errors if e["stage"] == "collect"] == []
        assert report.points["bet-placement:requests_per_second"] == len(frame)
        [rec] = report.recommendations
        assert rec["service"] == "bet-placement" and rec["stale"] is False
        assert "A v B" in rec["reason"]  # the fixture from the file, 30 min ahead
    finally:
        store.close()
