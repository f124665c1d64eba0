"""Pure dispatch planning: which queue each due job goes to and when it may be fetched."""

from __future__ import annotations

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

    Each job costs one page fetch, so releasing job i after (first_slot + i) intervals keeps
    the fetch rate at or under one per interval however fast the processors are.

    >>> from bat_backfill.models import JobStatus
    >>> jobs = [Job(i, "v", "u", p, JobStatus.PENDING, 0, 0) for i, p in ((1, 75), (2, 100))]
    >>> [(d.job.id, d.high, d.delay_seconds) for d in plan_dispatch(jobs, request_interval_seconds=2)]
    [(2, True, 0), (1, False, 2)]
    """
    ordered = sorted(jobs, key=lambda j: (-j.priority, j.id))
    plan: list[Dispatch] = []
    for i, job in enumerate(ordered):
        delay = int(round((first_slot + i) * request_interval_seconds))
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
