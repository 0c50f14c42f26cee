"""Alert payloads: Alertmanager v2 shape, stable labels, numbers only in annotations."""

import doctest

import pandas as pd

from actions import alerts
from actions.alerts import anomaly_alert, dedup_key

AT = pd.Timestamp("2026-11-28 19:50", tz="UTC")


def make(**overrides):
    args = dict(unique_id="payments:deposit_failures_per_second", kind="spike", at=AT, value=9.1,
                expected=1.2, score=0.93, detector="novelty")  # fmt: skip
    args.update(overrides)
    return anomaly_alert(**args)


def test_docstring_example_runs():
    assert doctest.testmod(alerts).failed == 0


def test_labels_are_stable_when_the_numbers_change():
    a, b = make(), make(value=12.0, expected=1.1, score=0.95, at=AT + pd.Timedelta("1min"))
    assert a["labels"] == b["labels"]
    assert dedup_key(a["labels"]) == dedup_key(b["labels"])
    assert a["annotations"]["value"] != b["annotations"]["value"]


def test_kind_and_series_separate_conditions():
    assert dedup_key(make()["labels"]) != dedup_key(make(kind="drop")["labels"])
    assert dedup_key(make()["labels"]) != dedup_key(make(unique_id="payments:deposits_per_second")["labels"])


def test_shape_and_severity():
    alert = make()
    assert set(alert) == {"labels", "annotations", "startsAt"}
    assert alert["startsAt"] == "2026-11-28T19:50:00Z"
    assert alert["labels"]["severity"] == "critical"
    assert make(score=0.6)["labels"]["severity"] == "warning"
    assert all(isinstance(v, str) for v in alert["labels"].values())
    assert all(isinstance(v, str) for v in alert["annotations"].values())


def test_missing_expected_is_left_out_of_the_text():
    alert = make(expected=None)
    assert "expected" not in alert["annotations"]["description"]
    assert alert["annotations"]["expected"] == ""


def test_absent_data_reads_as_no_data():
    alert = make(kind="absent", value=float("nan"), expected=None)
    assert "sent no data by 2026-11-28T19:50:00Z" in alert["annotations"]["description"]
    assert alert["annotations"]["value"] == ""
