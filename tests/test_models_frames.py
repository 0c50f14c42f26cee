"""split_series: the models' one way from a long frame to per-series arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models._frames import split_series
from models.errors import FrameError

T0 = pd.Timestamp("2026-11-20", tz="UTC")


def long_frame(ids, minutes, y) -> pd.DataFrame:
    return pd.DataFrame(
        {"unique_id": ids, "ds": [T0 + pd.Timedelta(minutes=m) for m in minutes], "y": y}
    )


def as_tuples(parts):
    return [(p.unique_id, p.ds_ns.tolist(), p.y.tolist()) for p in parts]


def test_one_series_is_sorted_and_loses_its_missing_values():
    frame = long_frame(["a"] * 4, [3, 1, 2, 0], [3.0, np.nan, 2.0, 0.0])
    [(uid, ds, y)] = as_tuples(split_series(frame, who="t"))
    assert uid == "a" and y == [0.0, 2.0, 3.0]
    assert ds == [(T0 + pd.Timedelta(minutes=m)).value for m in (0, 2, 3)]


def test_ids_equal_at_both_ends_but_not_between_are_two_series():
    frame = long_frame(["a", "b", "a"], [0, 0, 1], [1.0, 2.0, 3.0])
    assert [uid for uid, _, _ in as_tuples(split_series(frame, who="t"))] == ["a", "b"]
    assert as_tuples(split_series(frame, who="t"))[0][2] == [1.0, 3.0]


def test_non_string_ids_are_named_by_their_text():
    frame = long_frame([7, 7, 8], [0, 1, 0], [1.0, 2.0, 3.0])
    assert [uid for uid, _, _ in as_tuples(split_series(frame, who="t"))] == ["7", "8"]
    frame = long_frame([7, 7], [0, 1], [1.0, 2.0])
    assert [uid for uid, _, _ in as_tuples(split_series(frame, who="t"))] == ["7"]


@pytest.mark.parametrize("ids", [["a", "a"], ["a", "b"]])
def test_duplicate_timestamps_are_refused_naming_the_series(ids):
    frame = long_frame(ids + ["a"], [0, 0, 0], [1.0, 2.0, 3.0])
    with pytest.raises(FrameError, match="series 'a' has duplicate timestamps"):
        split_series(frame, who="t")


def test_one_series_split_equals_the_same_rows_inside_a_larger_frame():
    rng = np.random.default_rng(5)
    frames = [long_frame([uid] * 50, rng.permutation(50), rng.normal(size=50)) for uid in "xyz"]
    together = {p.unique_id: p for p in split_series(pd.concat(frames), who="t")}
    for frame in frames:
        [alone] = split_series(frame, who="t")
        other = together[alone.unique_id]
        assert np.array_equal(alone.ds_ns, other.ds_ns) and np.array_equal(alone.y, other.y)


def test_an_empty_frame_has_no_series():
    empty = long_frame(["a"], [0], [1.0]).iloc[:0]
    assert split_series(empty, who="t") == []


def test_anomaly_frame_joins_series_in_the_anomaly_columns():
    from models._frames import anomaly_frame
    from models.base import ANOMALY_COLUMNS

    ds = np.array([T0.value, T0.value + 60 * 10**9], dtype=np.int64)
    part = {"ds_ns": ds, "y": [1.0, 2.0], "expected": [1.0, 1.0], "lower": [0.5, 0.5],
            "upper": [1.5, 1.5], "score": [0.0, 0.9], "is_anomaly": [False, True],
            "kind": np.array([None, "spike"], dtype=object)}
    both = anomaly_frame([{"unique_id": "a", **part}, {"unique_id": "b", **part}], "novelty")
    empty = anomaly_frame([], "novelty")
    for frame in (both, empty):
        assert tuple(frame.columns) == ANOMALY_COLUMNS
        text = pd.Series(["a"], dtype=str).dtype  # what the detectors' frames always had
        assert frame["unique_id"].dtype == text and frame["detector"].dtype == text
        assert str(frame["ds"].dtype) == "datetime64[ns, UTC]"
        assert frame["is_anomaly"].dtype == bool and frame["kind"].dtype == object
    assert both["unique_id"].tolist() == ["a", "a", "b", "b"]
    assert both["kind"].tolist() == [None, "spike", None, "spike"]
    assert set(both["detector"]) == {"novelty"} and both["ds"].iloc[1] == T0 + pd.Timedelta("1min")
