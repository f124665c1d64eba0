"""Pure job rules: how long a failed job waits before its next attempt, and when to give up."""

from __future__ import annotations

from dataclasses import dataclass

# 2**60 times any sane base is far beyond any cap; stops the float from overflowing.
_MAX_DOUBLINGS = 60


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Retry policy of the extraction queue (seconds); `max_attempts` counts every claim."""

    base_seconds: float = 60
    cap_seconds: float = 6 * 3600
    max_attempts: int = 5
    # 403/429 mean BaT wants us to slow down: wait this many times longer.
    throttle_factor: float = 4.0
    # A job that gave up waits this long before the selector may queue it again.
    failed_cooldown_seconds: float = 24 * 3600

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.cap_seconds < self.base_seconds:
            raise ValueError("need 0 < base_seconds <= cap_seconds")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.throttle_factor < 1:
            raise ValueError("throttle_factor must be at least 1")
        if self.failed_cooldown_seconds < 0:
            raise ValueError("failed_cooldown_seconds must not be negative")


def plan_retry(
    attempts: int,
    policy: BackoffPolicy,
    *,
    retryable: bool,
    throttled: bool,
    rand: float,
) -> float | None:
    """Seconds to wait before the next attempt, or None to give up (mark the job failed).

    `attempts` is how many attempts have been made, the failed one included. The ceiling
    doubles per attempt from `base_seconds` up to `cap_seconds`, times `throttle_factor` when
    BaT throttled us; equal jitter (`rand` in [0, 1]) waits between half and all of it, so
    retries never bunch up and never come back almost at once.

    >>> policy = BackoffPolicy(base_seconds=60, max_attempts=5)
    >>> [plan_retry(n, policy, retryable=True, throttled=False, rand=1.0) for n in (1, 2, 3)]
    [60.0, 120.0, 240.0]
    >>> plan_retry(1, policy, retryable=True, throttled=False, rand=0.0)
    30.0
    >>> plan_retry(2, policy, retryable=True, throttled=True, rand=1.0)
    480.0
    >>> plan_retry(5, policy, retryable=True, throttled=False, rand=0.5) is None
    True
    >>> plan_retry(1, policy, retryable=False, throttled=False, rand=0.5) is None
    True
    """
    if not 0.0 <= rand <= 1.0:
        raise ValueError(f"rand must be within [0, 1], not {rand}")
    if not retryable or attempts >= policy.max_attempts:
        return None
    doublings = min(max(attempts, 1) - 1, _MAX_DOUBLINGS)
    ceiling = min(policy.cap_seconds, policy.base_seconds * 2.0**doublings)
    if throttled:
        ceiling *= policy.throttle_factor
    return ceiling / 2 + rand * ceiling / 2
