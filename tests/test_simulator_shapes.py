"""Pure shape functions: exact numbers and simple properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.shapes import (
    daily_profile,
    inplay_profile,
    post_wave,
    prematch_ramp,
    seasonal_factor,
    spike_train,
    trapezoid,
    weekly_factor,
)


def test_prematch_ramp_is_exponential_and_peaks_before_kickoff() -> None:
    m = np.array([80.0, 75.0, 32.0, 17.0, 2.0, 1.0, 0.0, -1.0])
    r = prematch_ramp(m, tau=15.0, window=75.0, peak_offset=2.0)
    assert r[0] == 0.0  # before the window
    assert r[1] == pytest.approx(np.exp(-73 / 15))
    assert r[2] == pytest.approx(np.exp(-2))
    assert r[3] == pytest.approx(np.exp(-1))
    assert r[4] == r[5] == 1.0
    assert r[6] == r[7] == 0.0  # in-play takes over at kickoff


def test_inplay_football_half_time_dip_and_level() -> None:
    m = np.array([-1.0, 1.0, 44.0, 50.0, 70.0, 111.0, 112.0])
    s = inplay_profile(m, "football", 112.0, 0.65)
    assert s[0] == 0.0 and s[-1] == 0.0
    assert s[2] > s[1] > 0
    assert s[3] < 0.5 * s[2]
    assert s[2] == pytest.approx(0.65 / 2, rel=0.02)  # base before HT; a goal lifts it to ~0.65


def test_goal_spikes_decay_within_minutes() -> None:
    m = np.arange(0, 20, 0.5)
    s = spike_train(m, np.array([2.0]), np.array([3.0]), np.array([1.5]))
    assert s[m < 2].sum() == 0
    assert s[m == 2][0] == pytest.approx(2.0)
    assert s[m == 7][0] < 0.1 * 2.0  # mostly gone after 5 min
    assert spike_train(m, np.array([]), np.array([]), np.array([])).sum() == 0


def test_daily_profile_is_periodic_with_evening_peak() -> None:
    h = np.arange(0, 24, 0.25)
    p = daily_profile(h)
    assert daily_profile(np.array([15.0]))[0] == 1.0
    assert 19 <= h[np.argmax(p)] <= 21.5
    assert 3 <= h[np.argmin(p)] <= 5
    assert daily_profile(np.array([24.0]))[0] == pytest.approx(daily_profile(np.array([0.0]))[0])


@given(st.floats(0, 168 * 3))
def test_weekly_factor_is_bounded_and_periodic(h: float) -> None:
    w = np.array([1, 1, 1, 1, 1, 1.4, 1.4])
    v = weekly_factor(np.array([h]), w)[0]
    assert 1.0 <= v <= 1.4
    assert v == pytest.approx(weekly_factor(np.array([h + 168.0]), w)[0])


def test_weekly_factor_switches_in_the_night_trough() -> None:
    w = np.array([1, 1, 1, 1, 1, 1.4, 1.4])
    sat = 5 * 24.0
    assert weekly_factor(np.array([sat + 12.0]), w)[0] == pytest.approx(1.4)
    assert weekly_factor(np.array([sat - 2.0]), w)[0] == pytest.approx(1.0)  # Friday 22:00
    assert weekly_factor(np.array([sat + 4.0]), w)[0] == pytest.approx(1.2)  # halfway at 04:00


def test_slow_factors_and_windows() -> None:
    assert seasonal_factor(np.array([365.25]), 0.1, 0.0)[0] == pytest.approx(1.1)
    assert post_wave(np.array([-1.0, 0.0, 5.0]), 5.0).tolist() == pytest.approx([0, 1, np.exp(-1)])
    tr = trapezoid(np.array([9.0, 10.0, 15.0, 29.0, 30.0]), 10.0, 30.0, 10.0)
    assert tr.tolist() == pytest.approx([0.0, 0.0, 0.5, 0.1, 0.0])
    assert trapezoid(np.array([10.0, 29.0, 30.0]), 10.0, 30.0, 0.0).tolist() == [1.0, 1.0, 0.0]
