"""Backoff and retry decisions (pure: no clock, no randomness of their own)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bat_backfill.jobs import BackoffPolicy, plan_retry

POLICY = BackoffPolicy()

attempts = st.integers(min_value=1, max_value=POLICY.max_attempts - 1)
unit = st.floats(min_value=0.0, max_value=1.0)


def test_defaults_are_the_documented_policy() -> None:
    assert (POLICY.base_seconds, POLICY.cap_seconds, POLICY.max_attempts) == (60, 6 * 3600, 5)
    assert (POLICY.throttle_factor, POLICY.failed_cooldown_seconds) == (4.0, 24 * 3600)


def test_the_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    policy = BackoffPolicy(base_seconds=60, cap_seconds=300, max_attempts=10)
    ceilings = [
        plan_retry(n, policy, retryable=True, throttled=False, rand=1.0) for n in range(1, 6)
    ]
    assert ceilings == [60.0, 120.0, 240.0, 300.0, 300.0]


def test_equal_jitter_waits_between_half_and_all_of_the_ceiling() -> None:
    low = plan_retry(3, POLICY, retryable=True, throttled=False, rand=0.0)
    high = plan_retry(3, POLICY, retryable=True, throttled=False, rand=1.0)
    assert (low, high) == (120.0, 240.0)


def test_gives_up_when_not_retryable_or_out_of_attempts() -> None:
    assert plan_retry(1, POLICY, retryable=False, throttled=False, rand=0.5) is None
    assert plan_retry(5, POLICY, retryable=True, throttled=False, rand=0.5) is None
    assert plan_retry(50, POLICY, retryable=True, throttled=True, rand=0.5) is None
    one_shot = BackoffPolicy(max_attempts=1)
    assert plan_retry(1, one_shot, retryable=True, throttled=False, rand=0.5) is None


def test_a_zero_attempt_count_is_treated_as_the_first() -> None:
    assert plan_retry(0, POLICY, retryable=True, throttled=False, rand=1.0) == 60.0


def test_huge_attempt_counts_stay_at_the_cap() -> None:
    policy = BackoffPolicy(max_attempts=10_000)
    delay = plan_retry(5_000, policy, retryable=True, throttled=False, rand=1.0)
    assert delay == policy.cap_seconds


@pytest.mark.parametrize("rand", [-0.1, 1.5, float("nan")])
def test_rand_must_be_a_unit_fraction(rand: float) -> None:
    with pytest.raises(ValueError, match="rand"):
        plan_retry(1, POLICY, retryable=True, throttled=False, rand=rand)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_seconds": 0},
        {"base_seconds": 100, "cap_seconds": 50},
        {"max_attempts": 0},
        {"throttle_factor": 0.5},
        {"failed_cooldown_seconds": -1},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)  # type: ignore[arg-type]


@given(attempts, unit)
def test_delay_is_within_half_and_all_of_the_capped_ceiling(n: int, rand: float) -> None:
    delay = plan_retry(n, POLICY, retryable=True, throttled=False, rand=rand)
    assert delay is not None
    ceiling = min(POLICY.cap_seconds, POLICY.base_seconds * 2 ** (n - 1))
    assert ceiling / 2 <= delay <= ceiling


@given(attempts, unit)
def test_the_next_attempt_never_waits_less(n: int, rand: float) -> None:
    policy = BackoffPolicy(max_attempts=100)
    now = plan_retry(n, policy, retryable=True, throttled=False, rand=rand)
    later = plan_retry(n + 1, policy, retryable=True, throttled=False, rand=rand)
    assert now is not None and later is not None
    assert later >= now


@given(attempts, unit)
def test_throttled_waits_throttle_factor_times_longer(n: int, rand: float) -> None:
    plain = plan_retry(n, POLICY, retryable=True, throttled=False, rand=rand)
    throttled = plan_retry(n, POLICY, retryable=True, throttled=True, rand=rand)
    assert plain is not None and throttled is not None
    assert throttled == pytest.approx(plain * POLICY.throttle_factor)
