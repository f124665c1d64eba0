"""Pure dispatch planning: which queue each due job goes to and when it may be fetched."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .models import Job, Priority

SQS_MAX_DELAY_SECONDS = 900


@dataclass(frozen=True, slots=True)
class Dispatch:
    job: Job
    high: bool  # True: the high-priority queue; False: the backfill queue
    delay_seconds: int


def plan_dispatch(
    jobs: Sequence[Job], *, request_interval_seconds: float, first_slot: int = 0
) -> list[Dispatch]:
    """Spread jobs one request interval apart, highest priority first.

    Each job costs one page fetch. SQS delays are whole seconds, so an interval of a second
    or more is rounded up (2.5 s -> every 3 s) and a shorter one becomes a whole number of
    releases per second (0.3 s -> 3 per second): the plan never beats the configured rate.

    >>> from bat_backfill.models import JobStatus
    >>> jobs = [Job(i, "v", "u", p, JobStatus.PENDING, 0, 0) for i, p in ((1, 75), (2, 100))]
    >>> [(d.job.id, d.high, d.delay_seconds) for d in plan_dispatch(jobs, request_interval_seconds=2)]
    [(2, True, 0), (1, False, 2)]
    """
    ordered = sorted(jobs, key=lambda j: (-j.priority, j.id))
    plan: list[Dispatch] = []
    if request_interval_seconds >= 1:
        step, per_second = math.ceil(request_interval_seconds), 1
    else:
        step, per_second = 1, math.floor(1 / request_interval_seconds)
    for i, job in enumerate(ordered):
        delay = (first_slot + i) // per_second * step
        if delay > SQS_MAX_DELAY_SECONDS:
            break
        plan.append(Dispatch(job, job.priority >= Priority.NEW_LISTING, delay))
    return plan


def dispatch_budget(
    *, interval_seconds: int, request_interval_seconds: float, in_flight: int, other_requests: int
) -> int:
    """How many jobs one run may send: the interval's request slots minus those already used.

    >>> dispatch_budget(interval_seconds=600, request_interval_seconds=2, in_flight=10,
    ...                 other_requests=1)
    289
    """
    slots = int(interval_seconds // request_interval_seconds)
    return max(0, slots - in_flight - other_requests)
