"""The job queue on real Postgres: claims, leases and fencing, failures and backoff, dispatch."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pg8000.native
import pytest

from bat_backfill.contracts import Lease
from bat_backfill.db import queue
from bat_backfill.db.connect import connect
from bat_backfill.errors import LeaseLostError
from bat_backfill.jobs import BackoffPolicy
from bat_backfill.models import Job, JobStatus, Priority

POLICY = BackoffPolicy(base_seconds=60, cap_seconds=6 * 3600, max_attempts=3)


def add_vehicle(db: pg8000.native.Connection) -> str:
    # vehicles.vin has a unique index: every row gets a VIN of its own
    rows = db.run(
        "INSERT INTO vehicles (bat_auction_url, vin) "
        "SELECT 'https://bringatrailer.com/listing/' || u || '/', 'V' || u "
        "FROM CAST(gen_random_uuid() AS text) u "
        "RETURNING id::text"
    )
    return str(rows[0][0])


def add_job(db: pg8000.native.Connection, priority: int = Priority.BACKFILL) -> int:
    return queue.enqueue(db, add_vehicle(db), "https://bringatrailer.com/listing/x/", priority)


def row(db: pg8000.native.Connection, job_id: int) -> dict[str, Any]:
    rows = db.run("SELECT * FROM bat_extraction_queue WHERE job_no = :id", id=job_id)
    names = [c["name"] for c in db.columns]
    return dict(zip(names, rows[0], strict=True))


def db_now(db: pg8000.native.Connection) -> datetime:
    value = db.run("SELECT now()")[0][0]
    assert isinstance(value, datetime)
    return value


def claim(db: pg8000.native.Connection, worker: str = "w", **kw: Any) -> Job:
    job = queue.claim_next(db, worker, 60, **kw)
    assert job is not None
    return job


# ------------------------------------------------------------------ enqueue


def test_enqueue_raises_priority_and_never_lowers_it(db: pg8000.native.Connection) -> None:
    vid = add_vehicle(db)
    job_id = queue.enqueue(db, vid, "u", 75, reason="missing_fields: vin")
    assert queue.enqueue(db, vid, "u", 100) == job_id
    assert row(db, job_id)["priority"] == 100
    assert queue.enqueue(db, vid, "u", 75) == job_id
    assert row(db, job_id)["priority"] == 100
    assert row(db, job_id)["reason"] == "missing_fields: vin"  # no new reason: kept


def test_enqueue_requeues_a_finished_job_and_leaves_a_held_one_alone(
    db: pg8000.native.Connection,
) -> None:
    vid = add_vehicle(db)
    job_id = queue.enqueue(db, vid, "u", 75)
    job = claim(db)
    assert queue.enqueue(db, vid, "other-url", 100, reason="new listing") == job_id
    held = row(db, job_id)
    assert (held["status"], held["lease_generation"], held["bat_url"]) == (
        "processing",
        job.lease_generation,
        "u",
    )
    assert queue.complete(db, job)
    queue.enqueue(db, vid, "u2", 75, reason="again")
    again = row(db, job_id)
    assert (again["status"], again["attempts"], again["priority"], again["reason"]) == (
        "pending",
        0,
        100,
        "again",
    )


def sent(
    db: pg8000.native.Connection, limit: int = 10, *, now: datetime | None = None
) -> list[Job]:
    """What one dispatch selects, all of it then accepted by SQS and marked."""
    jobs = queue.select_for_dispatch(db, limit, 600, now=now)
    queue.mark_dispatched(db, jobs, 600, now=now)
    return jobs


def test_a_waiting_job_raised_to_high_priority_is_dispatched_again(
    db: pg8000.native.Connection,
) -> None:
    vid = add_vehicle(db)
    job_id = queue.enqueue(db, vid, "u", 75)
    assert [j.id for j in sent(db)] == [job_id]
    queue.enqueue(db, vid, "u", 75)  # same priority: the message already sent will do
    assert sent(db) == []
    queue.enqueue(db, vid, "u", 100)
    (again,) = sent(db)
    assert (again.id, again.priority) == (job_id, 100)


# ------------------------------------------------------------------ claims


def test_claim_next_takes_priority_then_age_and_only_due_jobs(db: pg8000.native.Connection) -> None:
    assert queue.claim_next(db, "w", 60) is None
    old_backfill = add_job(db, 75)
    new_listing = add_job(db, 100)
    not_due = add_job(db, 100)
    db.run(
        "UPDATE bat_extraction_queue SET next_attempt_at = now() + interval '1 hour' WHERE job_no = :id",
        id=not_due,
    )
    newer_backfill = add_job(db, 75)
    order = [claim(db).id for _ in range(3)]
    assert order == [new_listing, old_backfill, newer_backfill]
    assert queue.claim_next(db, "w", 60) is None


def test_a_claim_leases_the_job(db: pg8000.native.Connection) -> None:
    job_id = add_job(db)
    now = db_now(db)
    job = claim(db, "worker-7", now=now)
    assert (job.id, job.status, job.attempts, job.lease_generation) == (
        job_id,
        JobStatus.PROCESSING,
        1,
        1,
    )
    assert job.locked_by == "worker-7"
    assert job.lease_expires_at == now + timedelta(seconds=60)
    assert row(db, job_id)["locked_at"] == now


def test_claim_job_takes_only_a_claimable_named_job(db: pg8000.native.Connection) -> None:
    job_id = add_job(db)
    db.run(
        "UPDATE bat_extraction_queue SET next_attempt_at = now() + interval '1 hour' WHERE job_no = :id",
        id=job_id,
    )
    assert queue.claim_job(db, job_id, "w", 60) is None  # not due
    job = queue.claim_job(db, job_id, "w", 60, force=True)
    assert job is not None and job.id == job_id
    assert queue.claim_job(db, job_id, "w2", 60, force=True) is None  # live lease
    assert queue.claim_job(db, 999_999, "w", 60) is None  # missing
    later = db_now(db) + timedelta(minutes=5)
    taken = queue.claim_job(db, job_id, "w2", 60, now=later)  # lease expired: an orphan
    assert taken is not None and taken.lease_generation == job.lease_generation + 1
    assert not queue.complete(db, job)
    assert queue.complete(db, taken)
    assert queue.claim_job(db, job_id, "w", 60, force=True) is None  # complete


def test_claim_next_takes_the_best_due_jobs_in_order(db: pg8000.native.Connection) -> None:
    ids = [add_job(db, p) for p in (75, 100, 75, 100, 75)]
    claimed = [queue.claim_next(db, "w", 60) for _ in ids]
    assert [j.id for j in claimed if j] == [ids[1], ids[3], ids[0], ids[2], ids[4]]
    assert all(j and j.status is JobStatus.PROCESSING and j.attempts == 1 for j in claimed)
    assert queue.claim_next(db, "w", 60) is None


def test_concurrent_claimers_claim_every_job_exactly_once(db_url: str) -> None:
    setup = connect(db_url)
    try:
        setup.run(
            "INSERT INTO vehicles (bat_auction_url) "
            "SELECT 'https://bringatrailer.com/listing/c' || g || '/' FROM generate_series(1, 200) g"
        )
        setup.run(
            "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, priority) "
            "SELECT id, bat_auction_url, CASE WHEN random() < 0.3 THEN 100 ELSE 75 END FROM vehicles"
        )
    finally:
        setup.close()
    claimed: list[list[int]] = [[] for _ in range(6)]
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def work(n: int) -> None:
        conn = connect(db_url)
        try:
            start.wait()
            while (job := queue.claim_next(conn, f"worker-{n}", 60)) is not None:
                claimed[n].append(job.id)
                assert queue.complete(conn, job)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    everything = [job_id for ids in claimed for job_id in ids]
    assert len(everything) == len(set(everything)) == 200
    assert sum(1 for ids in claimed if ids) > 1  # the work was actually shared
    check = connect(db_url)
    try:
        assert check.run("SELECT status, count(*) FROM bat_extraction_queue GROUP BY 1") == [
            ["complete", 200]
        ]
    finally:
        check.close()


# ------------------------------------------------------------------ leases and fencing


def test_a_rescued_stale_worker_is_fenced_out(db: pg8000.native.Connection) -> None:
    job_id = add_job(db)
    stale = claim(db, "slow-worker")
    later = db_now(db) + timedelta(minutes=2)

    assert queue.rescue_expired(db, now=later) == 1
    rescued = row(db, job_id)
    assert (rescued["status"], rescued["locked_by"], rescued["dispatched_at"]) == (
        "pending",
        None,
        None,
    )

    with pytest.raises(LeaseLostError):
        queue.assert_lease(db, Lease(stale.id, stale.lease_generation))
    assert not queue.complete(db, stale)
    assert queue.fail(db, stale, "late", retryable=True, policy=POLICY, rand=0.5) is None
    assert not queue.hand_back(db, stale, "late")
    assert row(db, job_id)["status"] == "pending"

    fresh = claim(db, "new-worker", now=later)
    assert fresh.lease_generation > stale.lease_generation
    queue.assert_lease(db, Lease(fresh.id, fresh.lease_generation))
    assert queue.complete(db, fresh)
    assert row(db, job_id)["status"] == "complete"
    assert queue.rescue_expired(db, now=later + timedelta(hours=1)) == 0


def test_rescue_leaves_live_leases_alone(db: pg8000.native.Connection) -> None:
    add_job(db)
    job = claim(db)
    assert queue.rescue_expired(db) == 0
    assert queue.complete(db, job)


def test_the_lease_check_holds_off_a_rescue_until_the_writer_commits(db_url: str) -> None:
    worker, orchestrator = connect(db_url), connect(db_url)
    try:
        job_id = add_job(worker)
        job = claim(worker)
        worker.run("START TRANSACTION")
        queue.assert_lease(worker, Lease(job.id, job.lease_generation))  # row locked until COMMIT
        later = db_now(orchestrator) + timedelta(hours=1)
        assert queue.rescue_expired(orchestrator, now=later) == 0  # skipped, not waited for
        assert queue.complete(worker, job)
        worker.run("COMMIT")
        assert queue.rescue_expired(orchestrator, now=later) == 0
        assert row(orchestrator, job_id)["status"] == "complete"
    finally:
        worker.close()
        orchestrator.close()


def test_a_row_written_without_our_columns_is_due_and_claimable(
    db: pg8000.native.Connection,
) -> None:
    # another program writes rows the original system's way: no next_attempt_at, no lease
    # generation; NULL means due now and generation 0
    vid = add_vehicle(db)
    db.run(
        "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, priority, next_attempt_at, "
        "lease_generation) VALUES (CAST(:v AS uuid), 'u', 75, NULL, NULL)",
        v=vid,
    )
    job = claim(db)
    assert (job.vehicle_id, job.lease_generation, job.attempts) == (vid, 1, 1)
    queue.assert_lease(db, Lease(job.id, job.lease_generation))
    assert queue.complete(db, job)
    assert row(db, job.id)["status"] == "complete"


def test_a_row_locked_without_a_lease_is_rescued_half_an_hour_after_it_was_locked(
    db: pg8000.native.Connection,
) -> None:
    # the original system's workers set locked_at and locked_by, never lease_expires_at
    job_id = add_job(db)
    now = db_now(db)
    db.run(
        "UPDATE bat_extraction_queue SET status = 'processing', locked_at = :locked, "
        "locked_by = 'old-worker', lease_generation = NULL, attempts = 2 WHERE job_no = :id",
        locked=now - timedelta(minutes=29),
        id=job_id,
    )
    assert queue.rescue_expired(db, now=now) == 0
    assert queue.claim_job(db, job_id, "w", 60, now=now) is None  # still held
    assert queue.rescue_expired(db, now=now + timedelta(minutes=2)) == 1
    rescued = row(db, job_id)
    assert (rescued["status"], rescued["locked_by"], rescued["locked_at"]) == (
        "pending",
        None,
        None,
    )
    assert (rescued["attempts"], rescued["lease_generation"]) == (2, 1)


# ------------------------------------------------------------------ release


def test_a_released_job_is_pending_at_once_and_its_attempt_not_counted(
    db: pg8000.native.Connection,
) -> None:
    job_id = add_job(db)
    queue.mark_dispatched(db, queue.select_for_dispatch(db, 10, 600), 600)
    held = claim(db, "killed-worker")
    assert queue.held_jobs(db, worker="killed-worker") == [held]

    (released,) = queue.release(db, queue.held_jobs(db, job_id=job_id))

    now = db_now(db)
    after = row(db, job_id)
    assert (after["status"], after["attempts"], after["locked_by"], after["dispatched_at"]) == (
        "pending",
        0,
        None,
        None,
    )
    assert after["lease_generation"] == released.lease_generation == held.lease_generation + 1
    assert after["next_attempt_at"] <= now
    # the old holder is fenced out; the next claim is an ordinary first attempt
    assert not queue.complete(db, held)
    with pytest.raises(LeaseLostError):
        queue.assert_lease(db, Lease(held.id, held.lease_generation))
    assert claim(db).attempts == 1


def test_a_release_never_undoes_a_newer_claim(db: pg8000.native.Connection) -> None:
    job_id = add_job(db)
    claim(db, "first")
    seen = queue.held_jobs(db, job_id=job_id)
    later = db_now(db) + timedelta(hours=1)
    assert queue.rescue_expired(db, now=later) == 1
    newer = claim(db, "second", now=later)

    assert queue.release(db, seen) == []
    after = row(db, job_id)
    assert (after["status"], after["locked_by"], after["lease_generation"]) == (
        "processing",
        "second",
        newer.lease_generation,
    )


def test_held_jobs_are_found_by_job_vehicle_or_worker(db: pg8000.native.Connection) -> None:
    a, b, waiting = add_job(db), add_job(db), add_job(db)
    first = claim(db, "w1")
    second = claim(db, "w2")
    vehicle = row(db, b)["vehicle_id"]
    assert {j.id for j in queue.held_jobs(db)} == {a, b} == {first.id, second.id}
    assert [j.id for j in queue.held_jobs(db, worker="w1")] == [first.id]
    assert [j.id for j in queue.held_jobs(db, vehicle_id=str(vehicle))] == [b]
    assert queue.held_jobs(db, job_id=waiting) == []
    assert queue.held_jobs(db, job_id=a, worker="w2") == []
    assert queue.release(db, []) == []


def test_a_release_keeps_the_attempts_the_original_system_made(
    db: pg8000.native.Connection,
) -> None:
    job_id = add_job(db)
    db.run(
        "UPDATE bat_extraction_queue SET status = 'processing', locked_by = 'old-worker', "
        "locked_at = now(), lease_expires_at = now() + interval '10 minutes', attempts = 3, "
        "attempts_carried = 3 WHERE job_no = :id",
        id=job_id,
    )
    (released,) = queue.release(db, queue.held_jobs(db, worker="old-worker"))
    assert (released.status, row(db, job_id)["attempts"]) == (JobStatus.PENDING, 3)


# ------------------------------------------------------------------ failures


def test_retryable_failures_back_off_longer_each_time_then_fail(
    db: pg8000.native.Connection,
) -> None:
    job_id = add_job(db)
    now = db_now(db)
    delays = []
    for attempt in (1, 2):
        job = claim(db, now=now)
        assert job.attempts == attempt
        status = queue.fail(
            db, job, f"HTTP 503 #{attempt}", retryable=True, policy=POLICY, rand=1.0, now=now
        )
        assert status is JobStatus.PENDING
        stored = row(db, job_id)
        assert (stored["error_message"], stored["error_kind"]) == (
            f"HTTP 503 #{attempt}",
            "retryable",
        )
        delays.append(stored["next_attempt_at"] - now)
        assert queue.claim_next(db, "w", 60, now=now) is None  # not due yet
        now = stored["next_attempt_at"]
    assert delays == [timedelta(seconds=60), timedelta(seconds=120)]

    job = claim(db, now=now)
    assert job.attempts == POLICY.max_attempts
    assert queue.fail(db, job, "HTTP 503 #3", retryable=True, policy=POLICY, rand=1.0, now=now) is (
        JobStatus.FAILED
    )
    failed = row(db, job_id)
    assert (failed["status"], failed["error_message"], failed["locked_by"]) == (
        "failed",
        "HTTP 503 #3",
        None,
    )
    assert failed["next_attempt_at"] == now + timedelta(seconds=POLICY.failed_cooldown_seconds)


def test_throttling_backs_off_longer(db: pg8000.native.Connection) -> None:
    plain, throttled = add_job(db, 100), add_job(db, 75)
    now = db_now(db)
    for job_id, is_throttled in ((plain, False), (throttled, True)):
        job = claim(db, now=now)
        assert job.id == job_id
        queue.fail(
            db,
            job,
            "HTTP 429",
            retryable=True,
            throttled=is_throttled,
            policy=POLICY,
            rand=0.5,
            now=now,
        )
    assert row(db, throttled)["next_attempt_at"] - now == 4 * (
        row(db, plain)["next_attempt_at"] - now
    )


def test_a_permanent_failure_fails_at_once_with_a_truncated_error(
    db: pg8000.native.Connection,
) -> None:
    job_id = add_job(db)
    job = claim(db)
    error = "not a BaT listing page: " + "x" * 10_000
    assert queue.fail(db, job, error, retryable=False, policy=POLICY) is JobStatus.FAILED
    failed = row(db, job_id)
    assert (failed["status"], failed["error_kind"], failed["attempts"]) == (
        "failed",
        "permanent",
        1,
    )
    assert failed["error_message"] == error[: queue.MAX_ERROR_CHARS]


def test_complete_clears_the_lease_and_error(db: pg8000.native.Connection) -> None:
    job_id = add_job(db)
    now = db_now(db)
    job = claim(db, now=now)
    queue.fail(db, job, "timeout", retryable=True, policy=POLICY, rand=0.0, now=now)
    job = claim(db, now=now + timedelta(hours=1))
    assert queue.complete(db, job)
    assert not queue.complete(db, job)  # only once
    done = row(db, job_id)
    assert (done["status"], done["locked_by"], done["lease_expires_at"], done["error_message"]) == (
        "complete",
        None,
        None,
        None,
    )
    assert done["completed_at"] is not None


# ------------------------------------------------------------------ dispatch and redrive


def test_select_for_dispatch_sends_each_due_job_once_until_redispatch(
    db: pg8000.native.Connection,
) -> None:
    ids = [add_job(db, p) for p in (75, 100, 75)]
    held = add_job(db)
    claim_now = queue.claim_job(db, held, "w", 60)
    assert claim_now is not None
    now = db_now(db)
    first = sent(db, 2, now=now)
    assert [j.id for j in first] == [ids[1], ids[0]]
    assert [j.id for j in sent(db, now=now)] == [ids[2]]
    assert sent(db, now=now) == []
    assert row(db, ids[0])["dispatched_at"] == now
    later = now + timedelta(seconds=601)
    assert [j.id for j in sent(db, now=later)] == [ids[1], ids[0], ids[2]]


def test_selecting_for_dispatch_marks_nothing(db: pg8000.native.Connection) -> None:
    ids = [add_job(db) for _ in range(3)]
    first = queue.select_for_dispatch(db, 10, 600)
    assert [j.id for j in queue.select_for_dispatch(db, 10, 600)] == [j.id for j in first] == ids
    assert all(row(db, i)["dispatched_at"] is None for i in ids)


def test_only_jobs_unchanged_since_their_selection_are_marked_dispatched(
    db: pg8000.native.Connection,
) -> None:
    untouched, claimed, raised, finished, sent_elsewhere = (add_job(db) for _ in range(5))
    selected = {j.id: j for j in queue.select_for_dispatch(db, 10, 600)}
    # Meanwhile: claimed (and already handed back to pending), raised to priority 100,
    # completed, and sent by another dispatcher.
    job = queue.claim_job(db, claimed, "w", 60)
    assert job is not None and queue.hand_back(db, job, "crashed")
    queue.enqueue(db, str(selected[raised].vehicle_id), "u", 100)
    done = queue.claim_job(db, finished, "w", 60)
    assert done is not None and queue.complete(db, done)
    queue.mark_dispatched(db, [selected[sent_elsewhere]], 600)
    before = row(db, sent_elsewhere)["dispatched_at"]

    marked = queue.mark_dispatched(db, list(selected.values()), 600)

    assert marked == [untouched]
    for job_id in (claimed, raised, finished):
        assert row(db, job_id)["dispatched_at"] is None, job_id
    assert row(db, sent_elsewhere)["dispatched_at"] == before
    assert queue.mark_dispatched(db, [], 600) == []


def test_two_dispatchers_never_send_the_same_job(db_url: str) -> None:
    one, two = connect(db_url), connect(db_url)
    try:
        ids = [add_job(one) for _ in range(6)]
        one.run("START TRANSACTION")
        first = queue.select_for_dispatch(one, 4, 600)
        second = queue.select_for_dispatch(two, 4, 600)  # skips the rows `one` holds
        one.run("COMMIT")
        assert sorted(j.id for j in first + second) == sorted(ids)
    finally:
        one.close()
        two.close()


def test_reset_for_redrive_starts_failed_and_dispatched_jobs_afresh(
    db: pg8000.native.Connection,
) -> None:
    failed, dispatched, complete, processing, fresh = (add_job(db) for _ in range(5))
    db.run(
        "UPDATE bat_extraction_queue SET status = 'failed', attempts = 5, "
        "next_attempt_at = now() + interval '1 day' WHERE job_no = :id",
        id=failed,
    )
    db.run(
        "UPDATE bat_extraction_queue SET dispatched_at = now(), attempts = 2 WHERE job_no = :id",
        id=dispatched,
    )
    db.run(
        "UPDATE bat_extraction_queue SET status = 'complete', completed_at = now() WHERE job_no = :id",
        id=complete,
    )
    held = queue.claim_job(db, processing, "w", 60)
    assert held is not None

    assert queue.reset_for_redrive(db, [failed, dispatched, complete, processing, fresh]) == 2
    assert queue.reset_for_redrive(db, []) == 0
    for job_id in (failed, dispatched):
        reset = row(db, job_id)
        assert (reset["status"], reset["attempts"], reset["dispatched_at"]) == ("pending", 0, None)
    assert row(db, complete)["status"] == "complete"
    assert row(db, processing)["status"] == "processing"
    assert {j.id for j in queue.select_for_dispatch(db, 10, 600)} == {failed, dispatched, fresh}


def test_queue_depths_counts_by_status_and_priority(db: pg8000.native.Connection) -> None:
    for priority in (100, 75, 75, 75):
        add_job(db, priority)
    claim(db)
    assert queue.queue_depths(db) == [
        {"status": "pending", "priority": 75, "count": 3},
        {"status": "processing", "priority": 100, "count": 1},
    ]


def test_a_naive_now_is_refused(db: pg8000.native.Connection) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        queue.claim_next(db, "w", 60, now=datetime(2026, 1, 1))  # naive on purpose
    assert queue.claim_next(db, "w", 60, now=datetime(2026, 1, 1, tzinfo=UTC)) is None
