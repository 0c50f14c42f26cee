"""RecentHistory: the tick's in-memory window of recent points per series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from surgecast.history import RecentHistory
from surgecast.store import Store

T0 = pd.Timestamp("2026-11-20 00:00", tz="UTC")


def points(uid: str, minutes: range, y0: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": uid,
            "ds": [T0 + pd.Timedelta(minutes=m) for m in minutes],
            "y": [y0 + m for m in minutes],
        }
    )


@pytest.fixture
def history(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    store.upsert_points(pd.concat([points("a", range(0, 60)), points("b", range(30, 40))]))
    held = RecentHistory(pd.Timedelta("2h"))
    held.load_missing(store, ["a", "b", "c"], T0 + pd.Timedelta("1h"))
    yield held
    store.close()


def test_get_is_the_half_open_window(history):
    got = history.get("a", start=T0 + pd.Timedelta("10min"), end=T0 + pd.Timedelta("20min"))
    assert got["y"].tolist() == [float(m) for m in range(10, 20)]
    assert history.get("a", start=T0 + pd.Timedelta("10min"))["ds"].iloc[-1] == (
        T0 + pd.Timedelta("59min")
    )
    assert len(history.get("a", end=T0 + pd.Timedelta("30s"))) == 1
    assert history.get("a", start=T0 + pd.Timedelta("2h")).empty
    # a window that ends before it starts is empty, not an error
    assert history.get("a", start=T0 + pd.Timedelta("30min"), end=T0).empty
    # a bound between two points, and bounds given in another time zone
    got = history.get("a", start=pd.Timestamp("2026-11-20 01:05:30", tz="Europe/Paris"))
    assert got["ds"].iloc[0] == T0 + pd.Timedelta("6min")


def test_unknown_and_empty_series_give_an_empty_canonical_frame(history):
    for uid in ("c", "nobody"):
        got = history.get(uid, start=T0)
        assert got.empty and list(got.columns) == ["unique_id", "ds", "y"]
        assert isinstance(got["ds"].dtype, pd.DatetimeTZDtype)
        assert history.last(uid) is None


def test_what_get_returns_can_be_changed_without_changing_what_is_held(history):
    got = history.get("a", start=T0, end=T0 + pd.Timedelta("5min"))
    got.loc[got.index[0], "y"] = -1.0
    got["extra"] = 1
    again = history.get("a", start=T0, end=T0 + pd.Timedelta("5min"))
    assert again["y"].iloc[0] == 0.0 and "extra" not in again


def test_extend_merges_late_and_repeated_points_in_order(history):
    history.extend(points("b", range(35, 45), y0=100.0))  # overlaps 35-39, later ones new
    got = history.get("b")
    assert got["ds"].is_monotonic_increasing and got["ds"].is_unique
    assert got["y"].tolist() == [float(m) for m in range(30, 35)] + [
        100.0 + m for m in range(35, 45)
    ]
    assert history.last("b") == T0 + pd.Timedelta("44min")
    # a series not loaded from the store is not started by extend (it loads whole later)
    history.extend(points("d", range(0, 3)))
    assert "d" not in history


def test_trim_forgets_points_older_than_the_window(history):
    history.trim(T0 + pd.Timedelta("2h30min"))
    assert history.get("a")["ds"].iloc[0] == T0 + pd.Timedelta("30min")
    assert history.get("b")["y"].tolist() == [float(m) for m in range(30, 40)]


def test_windows_match_a_plain_filter_on_random_bounds(history):
    rng = np.random.default_rng(3)
    whole = history.get("a")
    for _ in range(200):
        a, b = sorted(rng.integers(-5, 70, size=2))
        start = T0 + pd.Timedelta(seconds=int(a) * 60 + int(rng.integers(0, 2)) * 30)
        end = T0 + pd.Timedelta(minutes=int(b))
        expected = whole[(whole["ds"] >= start) & (whole["ds"] < end)]
        got = history.get("a", start=start, end=end)
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True), expected.reset_index(drop=True)
        )
