"""Clocks: the accelerated demo clock runs `speed` times the wall clock from its origin."""

import time

import pandas as pd
import pytest

from surgecast.clock import accelerated_clock, system_clock


def test_system_clock_is_utc():
    assert str(system_clock().tz) == "UTC"


def test_accelerated_clock_starts_at_origin_and_runs_faster():
    origin = pd.Timestamp("2026-06-01 12:00", tz="UTC")
    clock = accelerated_clock(120.0, origin)
    first = clock()
    assert origin <= first < origin + pd.Timedelta(seconds=30)
    time.sleep(0.25)
    elapsed = clock() - first
    # 0.25 s real at x120 is ~30 s simulated; only a lower bound is machine-independent
    assert elapsed >= pd.Timedelta(seconds=29)


def test_accelerated_clock_rejects_non_positive_speed():
    with pytest.raises(ValueError, match="speed must be > 0"):
        accelerated_clock(0)


def _read_clock(clock, out) -> None:  # runs in a spawned child
    out.put(clock())


def test_an_accelerated_clock_reads_the_same_in_a_spawned_child():
    import multiprocessing
    import pickle

    origin = pd.Timestamp("2026-11-28 19:00", tz="UTC")
    clock = accelerated_clock(120.0, origin)
    assert pickle.loads(pickle.dumps(clock)) == clock  # surgecast run hands it to its scheduler
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=_read_clock, args=(clock, out))
    before = clock()
    child.start()
    seen = out.get(timeout=60)
    child.join(timeout=30)
    after = clock()
    assert before <= seen <= after  # one simulated timeline, not one per process
    assert seen - origin > pd.Timedelta(0)
