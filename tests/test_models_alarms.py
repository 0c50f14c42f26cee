"""The label and alarm stages (models/anomaly/alarms.py) and event awareness (events.py)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.anomaly.alarms import (
    ALARM_COLUMNS,
    Debouncer,
    debounce,
    suppress_repeats,
    threshold,
)
from models.anomaly.events import expected_by_events

T0 = pd.Timestamp("2026-11-28 12:00", tz="UTC")


def scores(values, uid="s:requests_per_second", kind="spike", det="novelty"):
    ds = pd.date_range(T0, periods=len(values), freq="min")
    return pd.DataFrame({"unique_id": uid, "ds": ds, "score": np.asarray(values, float),
                         "kind": kind, "detector": det})


def test_threshold_labels():
    assert threshold(np.array([0.49, 0.5, np.nan, 1.0])).tolist() == [False, True, False, True]
    with pytest.raises(ValueError):
        threshold(np.array([0.1]), 0.0)


def test_debounce_and_repeat_suppression_exact():
    assert debounce(np.array([0, 1, 5, 6, 7]), 3, 3).tolist() == [False] * 4 + [True]
    assert suppress_repeats(np.array([0, 10, 29, 30]), 30, last_ns=-5).tolist() == [
        False, False, True, False]


def test_debouncer_raises_one_alarm_per_cooldown():
    out = Debouncer(n=2, m=3, cooldown="10min").update(scores([0, .9, .8, .9, .9, 0, 0]))
    assert list(out.columns) == list(ALARM_COLUMNS)
    assert out["ds"].tolist() == [T0 + pd.Timedelta("2min")]
    assert out["start"].tolist() == [T0 + pd.Timedelta("1min")]
    assert out["score"].tolist() == [0.9]


def test_isolated_hit_is_debounced_away():
    assert Debouncer(n=2, m=5).update(scores([0, 0.9] + [0] * 10)).empty


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=80), st.integers(1, 4), st.integers(0, 4),
       st.integers(0, 20), st.integers(0, 80), st.sampled_from([None, "3min", "10min"]))
def test_online_equals_batch_and_alarms_are_hits(vals, n, extra, cool, cut, rearm):
    frame = scores(vals)
    kw = {"n": n, "m": n + extra, "cooldown": pd.Timedelta(minutes=cool), "rearm": rearm}
    batch = Debouncer(**kw).update(frame)
    online = Debouncer(**kw)
    parts = [online.update(frame.iloc[:cut]), online.update(frame.iloc[cut:])]
    rebuilt = Debouncer.from_dict(online.to_dict())  # state survives a round trip
    assert rebuilt.to_dict() == online.to_dict()
    got = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else parts[0]
    assert got["ds"].tolist() == batch["ds"].tolist()
    hits = set(frame.loc[frame["score"] >= 0.5, "ds"])
    assert set(batch["ds"]) <= hits
    assert ((batch["score"] >= 0.5) & (batch["start"] <= batch["ds"])).all()
    # a longer cool-down or more hits needed never adds alarms
    assert len(Debouncer(**{**kw, "cooldown": kw["cooldown"] * 2 + pd.Timedelta("1min")})
               .update(frame)) <= len(batch)
    assert len(Debouncer(n=n + 1, m=n + 1 + extra, cooldown=kw["cooldown"]).update(frame)) <= len(
        batch)
    # re-arming only ever lifts the cool-down: never fewer alarms than without it
    assert len(Debouncer(**{**kw, "rearm": None}).update(frame)) <= len(batch)


def test_rearm_lets_a_second_incident_alarm_within_the_cooldown():
    # two hit episodes 20 min apart: with a 60 min cool-down only the first alarms, unless a
    # series quiet for `rearm` is re-armed; hits 5 min apart stay one episode
    vals = [0, .9, .9] + [0] * 20 + [.9, .9, 0]
    assert len(Debouncer(n=2, m=3, cooldown="60min").update(scores(vals))) == 1
    two = Debouncer(n=2, m=3, cooldown="60min", rearm="15min").update(scores(vals))
    assert two["ds"].tolist() == [T0 + pd.Timedelta("2min"), T0 + pd.Timedelta("24min")]
    close = [0, .9, .9] + [0] * 5 + [.9, .9, 0]
    assert len(Debouncer(n=2, m=3, cooldown="60min", rearm="15min").update(scores(close))) == 1
    with pytest.raises(ValueError, match="rearm"):
        Debouncer(rearm="0min")


@given(st.floats(0, 0.4999))
def test_low_scores_never_alarm(v):
    assert Debouncer().update(scores([v] * 30)).empty


def test_events_excuse_traffic_spikes_but_not_ratios_or_drops():
    events = pd.DataFrame({"start": [T0 + pd.Timedelta("30min")]})
    spike = scores([0.9], kind="spike")
    assert Debouncer(events=events).update(spike).empty
    assert len(Debouncer().update(spike)) == 1  # no calendar: it alarms
    assert len(Debouncer(events=events).update(scores([0.9], kind="drop"))) == 1
    ratio = scores([0.9], uid="payments:deposit_failure_ratio", kind="ratio", det="ratio")
    assert len(Debouncer(events=events).update(ratio)) == 1
    latency = scores([0.9], uid="s:latency_p95_seconds")
    assert len(Debouncer(events=events).update(latency)) == 1
    # a drop where yesterday had a kickoff is excused when drop_lags says so
    yesterday = pd.DataFrame({"start": [T0 - pd.Timedelta("1D")]})
    drop = scores([0.9], kind="drop")
    assert Debouncer(events=yesterday, drop_lags=["1D"]).update(drop).empty


def test_expected_by_events_windows():
    ev = pd.DataFrame({"start": pd.to_datetime(["2026-11-28 15:00", "2026-11-28 16:00"], utc=True),
                       "end": pd.to_datetime(["2026-11-28 19:00", "2026-11-28 17:45"], utc=True)})
    ds = pd.to_datetime(["2026-11-28 13:44", "2026-11-28 13:45", "2026-11-28 19:00",
                         "2026-11-28 19:01"], utc=True)
    assert expected_by_events(ds, ev).tolist() == [False, True, True, False]
    assert not expected_by_events(ds, None).any()
    with pytest.raises(ValueError, match="timezone"):
        expected_by_events(pd.to_datetime(["2026-11-28"]), ev)
