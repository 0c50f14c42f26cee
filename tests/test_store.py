"""Store: engine behaviour, points, forecasts and anomalies, on SQLite and a real PostgreSQL.

The ``store`` / ``store_url`` fixtures (``pg_fixture.py``) run every test here on both backends.
"""

from __future__ import annotations

import datetime as dt
import socket
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from surgecast.errors import DataError, StoreError
from surgecast.store import Store

T0 = pd.Timestamp("2026-11-28T17:00:00Z")


def series(uid: str, n: int, *, start: pd.Timestamp = T0, freq: str = "1min",
           offset: float = 0.0) -> pd.DataFrame:
    ds = pd.date_range(start, periods=n, freq=freq)
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.arange(n, dtype=float) + offset})


def two_series() -> pd.DataFrame:
    return pd.concat([series("api:rps", 5), series("bets:rate", 3, offset=100.0)],
                     ignore_index=True)


# -- engine --------------------------------------------------------------------------------------
def test_dialect_and_masked_url(store: Store, store_url: str) -> None:
    assert store.dialect == store_url.split(":")[0].split("+")[0]
    store.ping()
    assert "***" not in store.url  # no password in these URLs: nothing to mask


def test_sqlite_uses_wal_busy_timeout_and_normal_sync(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "s.db"  # the parent directory is created
    store = Store(f"sqlite:///{path}")
    try:
        store.upsert_points(series("a", 2))
        raw = sqlite3.connect(path)
        try:
            # journal_mode is persistent in the file; a fresh connection sees what the store set
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            raw.close()
        # the per-connection pragmas, seen through the store's own pool
        with store._engine.connect() as conn:
            assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 30_000
            assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 1  # NORMAL
    finally:
        store.close()


def test_unreachable_database_raises_store_error_with_masked_password() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError) as info:
        Store(f"postgresql+psycopg://surge:s3cr3t-pw@127.0.0.1:{port}/surgecast")
    message = str(info.value)
    assert "s3cr3t-pw" not in message
    assert f"postgresql+psycopg://surge:***@127.0.0.1:{port}/surgecast" in message
    assert "reachable" in message  # the hint


@pytest.mark.parametrize(
    "url", ["not a url", "mysql://root:pw@localhost/db", "oracle+nope://u:pw@h/db"]
)
def test_bad_urls_raise_store_error_without_password(url: str) -> None:
    with pytest.raises(StoreError) as info:
        Store(url)
    assert ":pw@" not in str(info.value)


def test_ping_and_use_after_close_raise_store_error(store: Store) -> None:
    store.ping()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.ping()
    with pytest.raises(StoreError, match="closed"):
        store.read_points()
    store.close()  # twice is harmless


def test_concurrent_writes_from_two_threads(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(uid: str) -> None:
        try:
            for batch in range(10):
                start = T0 + pd.Timedelta(minutes=100 * batch)
                store.upsert_points(series(uid, 100, start=start))
                store.read_points(uid, limit=5)
                store.record_tick(start, start, True, {"uid": uid})
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"s{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    summary = store.series_summary()
    assert summary["unique_id"].tolist() == ["s0", "s1"]
    assert summary["n_points"].tolist() == [1000, 1000]


# -- points --------------------------------------------------------------------------------------
def test_upsert_is_idempotent(store: Store) -> None:
    frame = two_series()
    assert store.upsert_points(frame) == 8
    first = store.read_points()
    assert store.upsert_points(frame) == 0  # nothing changed, nothing written
    assert store.upsert_points(frame.iloc[::-1]) == 0  # unsorted input is repaired, same data
    again = store.read_points()
    pd.testing.assert_frame_equal(first, again)
    assert len(again) == 8
    assert again["y"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 100.0, 101.0, 102.0]


def test_upsert_updates_changed_values_and_adds_new_ones(store: Store) -> None:
    store.upsert_points(series("api:rps", 5))
    changed = series("api:rps", 6)  # one new point at the end
    changed.loc[2, "y"] = 42.5
    assert store.upsert_points(changed) == 2  # one update, one insert
    got = store.read_points("api:rps")
    assert got["y"].tolist() == [0.0, 1.0, 42.5, 3.0, 4.0, 5.0]


def test_empty_frame_writes_nothing(store: Store) -> None:
    assert store.upsert_points(series("a", 0)) == 0
    empty = store.read_points()
    assert list(empty.columns) == ["unique_id", "ds", "y"]
    assert str(empty["ds"].dtype) == "datetime64[ns, UTC]"
    assert len(empty) == 0


def test_timestamps_round_trip_exactly_including_nanoseconds(store: Store) -> None:
    stamps = pd.DatetimeIndex(
        ["2026-03-29T00:59:59.123456789", "2026-03-29T01:00:00.000000001",
         "1999-12-31T23:59:59.5", "2200-01-01T00:00:00"], tz="UTC",
    )
    # given in Berlin time across the DST switch: stored and returned as the same instants in UTC
    frame = pd.DataFrame({"unique_id": "x", "ds": stamps.tz_convert("Europe/Berlin"),
                          "y": [1.0, 2.0, 3.0, 4.0]})
    store.upsert_points(frame)
    got = store.read_points("x")
    assert str(got["ds"].dtype) == "datetime64[ns, UTC]"
    assert got["ds"].tolist() == sorted(stamps.tolist())
    assert got["ds"].astype("int64").tolist() == sorted(stamps.asi8.tolist())
    assert store.watermarks() == {"x": pd.Timestamp("2200-01-01T00:00:00Z")}


def test_naive_input_is_taken_as_utc(store: Store) -> None:
    frame = pd.DataFrame({"unique_id": ["a"], "ds": [pd.Timestamp("2026-01-01 12:00")], "y": [1]})
    store.upsert_points(frame)
    assert store.read_points()["ds"].tolist() == [pd.Timestamp("2026-01-01T12:00Z")]


def test_non_canonical_input_is_validated_and_repaired(store: Store) -> None:
    raw = pd.DataFrame({
        "unique_id": ["b", "a", "a", "a"],
        "ds": ["2026-01-01T00:01:00Z", "2026-01-01T01:00:00+01:00", "2026-01-01T00:01:00Z",
               "2026-01-01T00:02:00Z"],
        "y": ["2", 1, np.nan, 3.5],  # text number, a missing value to drop
    })
    assert store.upsert_points(raw) == 3
    got = store.read_points()
    assert got["unique_id"].tolist() == ["a", "a", "b"]
    assert got["ds"].tolist() == [pd.Timestamp("2026-01-01T00:00Z"),
                                  pd.Timestamp("2026-01-01T00:02Z"),
                                  pd.Timestamp("2026-01-01T00:01Z")]
    assert got["y"].tolist() == [1.0, 3.5, 2.0]
    with pytest.raises(DataError, match="conflicting"):
        store.upsert_points(pd.DataFrame({"unique_id": ["a", "a"], "ds": [T0, T0], "y": [1, 2]}))


def test_default_url_is_a_sqlite_file_under_var(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = Store()
    try:
        assert store.dialect == "sqlite"
        assert store.url == "sqlite:///./var/surgecast.db"
        assert (tmp_path / "var" / "surgecast.db").is_file()
    finally:
        store.close()


def test_watermarks_and_summary(store: Store) -> None:
    assert store.watermarks() == {}
    assert store.series_summary().empty
    store.upsert_points(two_series())
    assert store.watermarks() == {
        "api:rps": T0 + pd.Timedelta(minutes=4),
        "bets:rate": T0 + pd.Timedelta(minutes=2),
    }
    summary = store.series_summary()
    assert summary.to_dict("list") == {
        "unique_id": ["api:rps", "bets:rate"],
        "first_ds": [T0, T0],
        "last_ds": [T0 + pd.Timedelta(minutes=4), T0 + pd.Timedelta(minutes=2)],
        "n_points": [5, 3],
    }


def test_range_reads_are_half_open_and_filter_series(store: Store) -> None:
    store.upsert_points(two_series())
    start, end = T0 + pd.Timedelta(minutes=1), T0 + pd.Timedelta(minutes=3)
    got = store.read_points(start=start, end=end)
    assert list(zip(got["unique_id"], got["y"], strict=True)) == [
        ("api:rps", 1.0), ("api:rps", 2.0), ("bets:rate", 101.0), ("bets:rate", 102.0)]
    assert store.read_points("bets:rate")["y"].tolist() == [100.0, 101.0, 102.0]
    assert len(store.read_points(["api:rps", "bets:rate"])) == 8
    assert store.read_points([]).empty
    assert store.read_points("nope").empty
    assert store.read_points(start=end, end=start).empty
    # limit: the first N rows of the sorted result
    assert store.read_points(limit=6)["y"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 100.0]


@pytest.mark.parametrize(
    "bound",
    [
        T0 + pd.Timedelta(minutes=3),
        (T0 + pd.Timedelta(minutes=3)).to_pydatetime(),
        dt.datetime(2026, 11, 28, 18, 3, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        dt.datetime(2026, 11, 28, 17, 3),  # naive: UTC
        "2026-11-28T17:03:00Z",
        "2026-11-28T19:03:00+02:00",
    ],
)
def test_bounds_accept_timestamps_datetimes_and_iso_strings(store: Store, bound: object) -> None:
    store.upsert_points(series("a", 5))
    assert store.read_points(start=bound)["y"].tolist() == [3.0, 4.0]


def test_bad_input_raises_data_error(store: Store) -> None:
    with pytest.raises(DataError, match="missing column"):
        store.upsert_points(pd.DataFrame({"unique_id": ["a"], "y": [1.0]}))
    with pytest.raises(DataError, match="start"):
        store.read_points(start="last tuesday-ish")
    with pytest.raises(DataError, match="end"):
        store.read_points(end=1_700_000_000)  # an epoch number: ambiguous unit
    with pytest.raises(DataError, match="limit"):
        store.read_points(limit=-1)


# -- forecasts -----------------------------------------------------------------------------------
def forecast(values: list[float], *, model: str = "ets", level: float | None = 0.9
             ) -> pd.DataFrame:
    n = len(values)
    frame = pd.DataFrame({
        "unique_id": "api:rps",
        "ds": pd.date_range(T0, periods=n, freq="5min"),
        "yhat": values,
        "yhat_lower": [v - 1 for v in values],
        "yhat_upper": [v + 1 for v in values],
        "model": model,
    })
    if level is not None:
        frame["level"] = level
    return frame


def test_forecast_round_trip_and_newest_wins(store: Store) -> None:
    t1, t2 = T0 - pd.Timedelta(minutes=10), T0 - pd.Timedelta(minutes=5)
    assert store.save_forecast(forecast([10.0, 11.0, 12.0]), created_at=t1) == 3
    got = store.read_forecast("api:rps")
    assert list(got.columns) == ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model",
                                 "level", "created_at"]
    assert got["created_at"].tolist() == [t1] * 3
    assert str(got["created_at"].dtype) == "datetime64[ns, UTC]"

    store.save_forecast(forecast([20.0, 21.0], model="prophet"), created_at=t2)
    got = store.read_forecast("api:rps")
    assert got["yhat"].tolist() == [20.0, 21.0, 12.0]  # overlap replaced, tail kept
    assert got["model"].tolist() == ["prophet", "prophet", "ets"]

    # a late-arriving older forecast does not overwrite the newer one
    assert store.save_forecast(forecast([99.0, 99.0, 99.0]), created_at=t1) == 1
    assert store.read_forecast("api:rps")["yhat"].tolist() == [20.0, 21.0, 99.0]


def test_forecast_nan_bounds_range_and_optional_level(store: Store) -> None:
    frame = forecast([1.0, 2.0, 3.0], level=None)
    frame.loc[1, "yhat_upper"] = np.nan
    store.save_forecast(frame, created_at="2026-11-28T16:00:00Z")
    got = store.read_forecast("api:rps", start=T0 + pd.Timedelta(minutes=5))
    assert got["yhat"].tolist() == [2.0, 3.0]
    assert np.isnan(got["yhat_upper"].iloc[0]) and got["yhat_upper"].iloc[1] == 4.0
    assert got["level"].isna().all()
    assert store.read_forecast("unknown").empty


def test_forecast_rejects_duplicates_and_missing_columns(store: Store) -> None:
    frame = forecast([1.0, 2.0])
    with pytest.raises(DataError, match="share the key"):
        store.save_forecast(pd.concat([frame, frame]), created_at=T0)
    with pytest.raises(DataError, match="yhat_upper"):
        store.save_forecast(frame.drop(columns="yhat_upper"), created_at=T0)
    assert store.read_forecast("api:rps").empty


# -- anomalies -----------------------------------------------------------------------------------
def anomaly_frame() -> pd.DataFrame:
    ds = pd.date_range(T0, periods=4, freq="1min")
    return pd.DataFrame({
        "unique_id": ["pay:fail_ratio"] * 4,
        "ds": ds,
        "y": [0.005, 0.09, 0.004, np.nan],
        "expected": [0.005] * 4,
        "lower": [0.0] * 4,
        "upper": [0.01] * 4,
        "score": [0.1, 0.99, 0.05, 1.0],
        "is_anomaly": [False, True, False, True],
        "kind": [None, "ratio", None, "absent"],
        "detector": "zscore",
    })


def test_anomalies_round_trip_filter_and_replace(store: Store) -> None:
    assert store.save_anomalies(anomaly_frame()) == 4
    flagged = store.read_anomalies()
    assert flagged["kind"].tolist() == ["ratio", "absent"]
    assert flagged["is_anomaly"].tolist() == [True, True]
    assert np.isnan(flagged["y"].iloc[1])
    assert flagged["ds"].tolist() == [T0 + pd.Timedelta(minutes=m) for m in (1, 3)]

    everything = store.read_anomalies("pay:fail_ratio", only_anomalies=False)
    assert len(everything) == 4
    assert everything["kind"].tolist() == [None, "ratio", None, "absent"]
    assert everything["is_anomaly"].dtype == bool

    rescored = anomaly_frame().iloc[[1]].assign(is_anomaly=False, score=0.4, kind=None)
    assert store.save_anomalies(rescored) == 1
    assert store.read_anomalies()["kind"].tolist() == ["absent"]
    assert len(store.read_anomalies(only_anomalies=False)) == 4  # replaced, not added

    # another detector on the same points is a separate row
    store.save_anomalies(anomaly_frame().assign(detector="iforest"))
    assert len(store.read_anomalies(only_anomalies=False)) == 8


def test_anomaly_reads_keep_the_newest_within_limit_and_range(store: Store) -> None:
    store.save_anomalies(anomaly_frame())
    newest = store.read_anomalies(only_anomalies=False, limit=2)
    assert newest["ds"].tolist() == [T0 + pd.Timedelta(minutes=2), T0 + pd.Timedelta(minutes=3)]
    window = store.read_anomalies(start=T0, end=T0 + pd.Timedelta(minutes=3))
    assert window["ds"].tolist() == [T0 + pd.Timedelta(minutes=1)]
    assert store.read_anomalies("other").empty
    with pytest.raises(DataError, match="is_anomaly"):
        store.save_anomalies(anomaly_frame().assign(is_anomaly=[1, 0, None, 1]))
