"""The canonical frame's validation: repairs what is safe and says so, rejects the rest."""

import numpy as np
import pandas as pd
import pytest

from surgecast.errors import DataError
from surgecast.frames import empty_series, is_canonical, validate_series


def frame(**cols):
    return pd.DataFrame(cols)


def test_valid_frame_passes_unchanged_without_repairs():
    raw = frame(
        unique_id=["a", "a", "b"],
        ds=pd.to_datetime(["2026-01-01 00:00", "2026-01-01 00:01", "2026-01-01 00:00"], utc=True),
        y=[1.0, 2.0, 3.0],
    )
    checked = validate_series(raw)
    assert checked.repairs == []
    assert checked.frame["y"].tolist() == [1.0, 2.0, 3.0]
    assert str(checked.frame["ds"].dtype) == "datetime64[ns, UTC]"


def test_out_of_order_rows_are_sorted_and_reported():
    raw = frame(unique_id=["a", "a"], ds=["2026-01-01T00:01Z", "2026-01-01T00:00Z"], y=[2, 1])
    checked = validate_series(raw)
    assert checked.frame["y"].tolist() == [1.0, 2.0]
    assert any("sorted" in r for r in checked.repairs)


def test_naive_and_foreign_timezones_become_utc():
    naive = frame(unique_id=["a"], ds=pd.to_datetime(["2026-06-01 12:00"]), y=[1])
    checked = validate_series(naive)
    assert checked.frame["ds"].iloc[0] == pd.Timestamp("2026-06-01 12:00", tz="UTC")
    assert any("taken as UTC" in r for r in checked.repairs)
    paris = frame(
        unique_id=["a"], ds=pd.to_datetime(["2026-06-01 14:00"]).tz_localize("Europe/Paris"), y=[1]
    )
    checked = validate_series(paris)
    assert checked.frame["ds"].iloc[0] == pd.Timestamp("2026-06-01 12:00", tz="UTC")
    assert any("converted ds" in r for r in checked.repairs)


def test_exact_duplicates_are_dropped_and_counted():
    raw = frame(
        unique_id=["a", "a", "a"], ds=["2026-01-01T00:00Z"] * 2 + ["2026-01-01T00:01Z"], y=[1, 1, 2]
    )
    checked = validate_series(raw)
    assert len(checked.frame) == 2
    assert any("1 exact duplicate" in r for r in checked.repairs)


def test_conflicting_duplicates_are_rejected_naming_the_series_and_time():
    raw = frame(unique_id=["a", "a"], ds=["2026-01-01T00:00Z"] * 2, y=[1, 5])
    with pytest.raises(
        DataError, match=r"conflicting values, first 'a' at 2026-01-01T00:00:00\+00:00"
    ):
        validate_series(raw)


def test_non_numeric_values_are_rejected_naming_rows():
    raw = frame(unique_id=["a", "a"], ds=["2026-01-01T00:00Z", "2026-01-01T00:01Z"], y=[1, "lots"])
    with pytest.raises(
        DataError, match=r"column 'y' has non-numeric values at rows 1 \(first: 'lots'\)"
    ):
        validate_series(raw)


def test_missing_and_infinite_values_are_dropped_and_reported():
    raw = frame(
        unique_id=["a"] * 4,
        ds=pd.date_range("2026-01-01", periods=4, freq="min", tz="UTC"),
        y=[1.0, np.nan, np.inf, 4.0],
    )
    checked = validate_series(raw)
    assert checked.frame["y"].tolist() == [1.0, 4.0]
    assert any("1 missing (NaN) and 1 infinite" in r for r in checked.repairs)


def test_missing_columns_are_named():
    with pytest.raises(DataError, match=r"missing column\(s\) \['y'\]"):
        validate_series(frame(unique_id=["a"], ds=["2026-01-01"]))


def test_unparseable_timestamps_are_rejected():
    raw = frame(unique_id=["a", "a"], ds=["2026-01-01T00:00Z", "yesterday-ish"], y=[1, 2])
    with pytest.raises(DataError, match="column 'ds' has values that are not timestamps at rows 1"):
        validate_series(raw)


def test_epoch_numbers_are_rejected_with_a_hint():
    with pytest.raises(DataError, match="unit='s'"):
        validate_series(frame(unique_id=["a"], ds=[1_700_000_000], y=[1]))


def test_empty_unique_id_is_rejected():
    with pytest.raises(DataError, match="'unique_id' is empty at rows 0"):
        validate_series(frame(unique_id=[""], ds=["2026-01-01T00:00Z"], y=[1]))


def test_empty_frame_is_canonical():
    checked = validate_series(frame(unique_id=[], ds=[], y=[]))
    assert checked.frame.empty
    assert list(checked.frame.columns) == ["unique_id", "ds", "y"]
    assert str(empty_series()["ds"].dtype) == "datetime64[ns, UTC]"


def test_not_a_frame_is_rejected():
    with pytest.raises(DataError, match="expected a pandas DataFrame"):
        validate_series([1, 2, 3])  # type: ignore[arg-type]


def _one_series() -> pd.DataFrame:
    ds = pd.date_range("2026-11-20", periods=4, freq="min", tz="UTC")
    return pd.DataFrame({"unique_id": "a:rps", "ds": ds, "y": [1.0, 2.0, 3.0, 4.0]})


@pytest.mark.parametrize(
    ("change", "canonical"),
    [
        (lambda f: f, True),
        (lambda f: f.iloc[:0], True),
        (lambda f: f.assign(y=[1.0, float("nan"), 3.0, 4.0]), False),
        (lambda f: f.assign(y=[1.0, float("inf"), 3.0, 4.0]), False),
        (lambda f: f.assign(y=[1, 2, 3, 4]), False),
        (lambda f: f.iloc[::-1], False),
        (lambda f: pd.concat([f, f.tail(1)]), False),
        (lambda f: f.assign(unique_id=["a:rps", "a:rps", "b:rps", "a:rps"]), False),
        (lambda f: f.assign(ds=f["ds"].dt.tz_convert("Europe/Paris")), False),
        (lambda f: f.assign(ds=f["ds"].dt.tz_localize(None)), False),
        (lambda f: f.drop(columns="y"), False),
    ],
    ids=["clean", "empty", "nan", "inf", "int", "unsorted", "duplicate", "other-id", "paris",
         "naive", "no-y"],
)
def test_is_canonical_means_validation_would_change_nothing(change, canonical):
    frame = change(_one_series())
    assert is_canonical(frame, "a:rps") is canonical
    if canonical:
        checked = validate_series(frame)
        assert checked.repairs == []
        pd.testing.assert_frame_equal(
            checked.frame, frame.reset_index(drop=True).astype({"ds": "datetime64[ns, UTC]"}),
            check_dtype=False,
        )
    else:  # validation repairs, rejects or converts it, or it holds another series' rows
        try:
            checked = validate_series(frame)
            changed = bool(checked.repairs) or not checked.frame.equals(frame.reset_index(drop=True))
        except DataError:
            changed = True
        assert changed or set(frame["unique_id"]) != {"a:rps"}
