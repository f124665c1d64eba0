"""The extraction job queue in Postgres: enqueue, lease with fencing, finish, rescue, dispatch."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pg8000.native

from bat_backfill.contracts import Lease
from bat_backfill.db.queries import Rows, run_named
from bat_backfill.errors import LeaseLostError
from bat_backfill.jobs import BackoffPolicy, plan_retry
from bat_backfill.models import Job, JobStatus

# Stored error texts are for operators; a whole traceback or HTML page is not.
MAX_ERROR_CHARS = 2000


def _jobs(rows: Rows) -> list[Job]:
    jobs = []
    for record in rows.dicts():
        jobs.append(
            Job(
                id=int(record["id"]),
                vehicle_id=str(record["vehicle_id"]),
                bat_url=record["bat_url"],
                priority=int(record["priority"]),
                status=JobStatus(record["status"]),
                attempts=int(record["attempts"]),
                lease_generation=int(record["lease_generation"]),
                locked_by=record["locked_by"],
                lease_expires_at=record["lease_expires_at"],
                reason=record["reason"],
            )
        )
    return jobs


def _first_job(rows: Rows) -> Job | None:
    jobs = _jobs(rows)
    return jobs[0] if jobs else None


def _check_aware(now: datetime | None) -> datetime | None:
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def enqueue(
    conn: pg8000.native.Connection,
    vehicle_id: str,
    bat_url: str,
    priority: int,
    reason: str | None = None,
) -> int:
    """Queue a vehicle; the job id. An existing row keeps the higher priority and is re-queued
    if complete or failed; a pending or processing row keeps its state."""
    rows = run_named(
        conn,
        "enqueue",
        vehicle_id=vehicle_id,
        bat_url=bat_url,
        priority=priority,
        reason=reason,
    )
    return int(rows[0][0])


def claim_next(
    conn: pg8000.native.Connection,
    worker: str,
    lease_seconds: int,
    *,
    now: datetime | None = None,
) -> Job | None:
    """Lease the best due pending job (highest priority, then oldest), or None if there is none."""
    rows = run_named(
        conn, "claim_next", worker=worker, lease_seconds=lease_seconds, now=_check_aware(now)
    )
    return _first_job(rows)


def claim_job(
    conn: pg8000.native.Connection,
    job_id: int,
    worker: str,
    lease_seconds: int,
    *,
    force: bool = False,
    now: datetime | None = None,
) -> Job | None:
    """Lease the named job if pending (and due, unless `force`) or orphaned under an expired
    lease; None if it is processing under a live lease, complete, failed or missing."""
    rows = run_named(
        conn,
        "claim_job",
        job_id=job_id,
        worker=worker,
        lease_seconds=lease_seconds,
        force=force,
        now=_check_aware(now),
    )
    return _first_job(rows)


def assert_lease(conn: pg8000.native.Connection, lease: Lease) -> None:
    """Raise LeaseLostError unless `lease` still holds its job row.

    Call it inside the transaction that writes the job's results, before writing: it locks the
    row until that transaction ends, so a rescue or takeover cannot slip in between.
    """
    rows = run_named(
        conn, "lock_leased_job", job_id=lease.job_id, lease_generation=lease.generation
    )
    if not rows:
        raise LeaseLostError(
            f"job {lease.job_id} is no longer held by lease generation {lease.generation}"
        )


def complete(conn: pg8000.native.Connection, job: Job, *, now: datetime | None = None) -> bool:
    """Mark the job complete; False (and nothing changed) if its lease was lost."""
    rows = run_named(
        conn,
        "complete_job",
        job_id=job.id,
        lease_generation=job.lease_generation,
        now=_check_aware(now),
    )
    return bool(rows)


def fail(
    conn: pg8000.native.Connection,
    job: Job,
    error: str,
    *,
    retryable: bool,
    throttled: bool = False,
    policy: BackoffPolicy,
    rand: float | None = None,
    now: datetime | None = None,
) -> JobStatus | None:
    """Record a failed attempt: pending again after a jittered backoff while retryable attempts
    remain, otherwise failed (retried by the selector after the policy's cool-down). The new
    status, or None if the lease was lost (nothing changed)."""
    jitter = random.random() if rand is None else rand  # noqa: S311 - jitter, not a secret
    delay = plan_retry(job.attempts, policy, retryable=retryable, throttled=throttled, rand=jitter)
    status = JobStatus.PENDING if delay is not None else JobStatus.FAILED
    rows = run_named(
        conn,
        "fail_job",
        job_id=job.id,
        lease_generation=job.lease_generation,
        status=status.value,
        delay_seconds=delay if delay is not None else policy.failed_cooldown_seconds,
        error=error[:MAX_ERROR_CHARS],
        error_kind="retryable" if retryable else "permanent",
        now=_check_aware(now),
    )
    return JobStatus(rows[0][0]) if rows else None


def hand_back(conn: pg8000.native.Connection, job: Job, error: str) -> bool:
    """A crashed attempt: pending again at once with the attempt counted and the error kept
    (the SQS message is redelivered as it is); False if the lease was lost."""
    rows = run_named(
        conn,
        "hand_back_job",
        job_id=job.id,
        lease_generation=job.lease_generation,
        error=error,
    )
    return bool(rows)


def rescue_expired(conn: pg8000.native.Connection, *, now: datetime | None = None) -> int:
    """Put processing jobs whose lease has expired back to pending; how many were rescued."""
    return len(run_named(conn, "rescue_expired_leases", now=_check_aware(now)))


def select_for_dispatch(
    conn: pg8000.native.Connection,
    limit: int,
    redispatch_after_seconds: int,
    *,
    now: datetime | None = None,
) -> list[Job]:
    """The best due pending jobs not sent to SQS (or sent more than `redispatch_after_seconds`
    ago), best first. Nothing is marked: call `mark_dispatched` with those SQS accepted."""
    rows = run_named(
        conn,
        "select_for_dispatch",
        limit=limit,
        redispatch_after_seconds=redispatch_after_seconds,
        now=_check_aware(now),
    )
    return _jobs(rows)


def mark_dispatched(
    conn: pg8000.native.Connection,
    jobs: Sequence[Job],
    redispatch_after_seconds: int,
    *,
    now: datetime | None = None,
) -> list[int]:
    """Mark jobs whose messages SQS accepted as dispatched; the ids marked. A job claimed, sent
    by another run or raised in priority since it was selected is left as it is."""
    if not jobs:
        return []
    rows = run_named(
        conn,
        "mark_dispatched",
        job_ids=[j.id for j in jobs],
        lease_generations=[j.lease_generation for j in jobs],
        priorities=[j.priority for j in jobs],
        redispatch_after_seconds=redispatch_after_seconds,
        now=_check_aware(now),
    )
    return [int(r[0]) for r in rows]


def reset_for_redrive(
    conn: pg8000.native.Connection, job_ids: Sequence[int], *, now: datetime | None = None
) -> int:
    """Make failed, or pending and already dispatched, jobs pending afresh (attempts 0, not
    dispatched, due now); complete and processing jobs are untouched. How many were reset."""
    if not job_ids:
        return 0
    rows = run_named(
        conn, "reset_for_redrive", job_ids=[int(i) for i in job_ids], now=_check_aware(now)
    )
    return len(rows)


def held_jobs(
    conn: pg8000.native.Connection,
    *,
    job_id: int | None = None,
    vehicle_id: str | None = None,
    worker: str | None = None,
) -> list[Job]:
    """Processing jobs matching every filter given, with the generation of the lease holding
    each; `lease_expires_at` is when that lease ends (for a row the original system locked
    without a lease, 30 minutes after it was locked)."""
    rows = run_named(conn, "held_jobs", job_id=job_id, vehicle_id=vehicle_id, worker=worker)
    return _jobs(rows)


def release(
    conn: pg8000.native.Connection, jobs: Sequence[Job], *, now: datetime | None = None
) -> list[Job]:
    """Put processing jobs back to pending, due now, the attempt not counted; each only while
    the lease generation in `jobs` still holds it, so a newer claim is never undone. The old
    holder is fenced out. The jobs released, as they are now."""
    if not jobs:
        return []
    rows = run_named(
        conn,
        "release_jobs",
        job_ids=[j.id for j in jobs],
        lease_generations=[j.lease_generation for j in jobs],
        now=_check_aware(now),
    )
    return _jobs(rows)


def queue_depths(conn: pg8000.native.Connection) -> list[dict[str, Any]]:
    """Job counts as rows {status, priority, count}, by status then priority (highest first)."""
    return [
        {"status": status, "priority": int(priority), "count": int(count)}
        for status, priority, count in run_named(conn, "queue_depths")
    ]


def job_summary(conn: pg8000.native.Connection, job_id: int) -> dict[str, Any] | None:
    """{priority, status, reason} of one job, or None if there is no such job."""
    rows = run_named(conn, "job_summary", job_id=job_id).dicts()
    return rows[0] if rows else None
