"""Retry backoff and the circuit breaker, with an injected clock (no waiting)."""

from __future__ import annotations

import pytest

from collectors.resilience import CircuitBreaker, RetryPolicy


def test_backoff_doubles_up_to_the_cap():
    assert RetryPolicy(retries=5, backoff=0.5, factor=2, max_backoff=3).delays() == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert RetryPolicy(retries=0).delays() == []


@pytest.mark.parametrize("kwargs", [{"retries": -1}, {"backoff": -1}, {"factor": 0.5}])
def test_retry_policy_refuses_nonsense(kwargs):
    with pytest.raises(ValueError, match="RetryPolicy needs"):
        RetryPolicy(**kwargs)


def test_breaker_opens_at_the_threshold_and_only_then():
    t = [0.0]
    b = CircuitBreaker(failures=3, reset_after=10, clock=lambda: t[0])
    b.failure("x")
    b.failure("x")
    assert b.state == "closed" and b.allow()
    b.success()  # a success in between starts the count again
    b.failure("x")
    b.failure("x")
    assert b.state == "closed"
    b.failure("refused")
    assert b.state == "open" and not b.allow() and b.last_error == "refused"
    assert b.retry_in() == 10


def test_a_failed_trial_reopens_for_a_full_cool_down():
    t = [0.0]
    b = CircuitBreaker(failures=1, reset_after=10, clock=lambda: t[0])
    b.failure("down")
    t[0] = 10.0
    assert b.allow() and b.state == "half-open"
    assert not b.allow()  # one trial at a time
    b.failure("still down")
    assert b.state == "open" and b.retry_in() == 10 and not b.allow()
    t[0] = 20.0
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow() and b.last_error is None


def test_breaker_refuses_nonsense():
    with pytest.raises(ValueError, match="failures >= 1"):
        CircuitBreaker(failures=0)
