"""The backfill selector and auto-queue SQL functions, each reason on a minimal vehicle."""

from __future__ import annotations

import itertools
import random
import threading
from typing import Any

import pg8000.native
import pytest

from bat_backfill.db import queue
from bat_backfill.db.connect import connect

_numbers = itertools.count(1)

# A vehicle the selector has no reason to touch (with a sold auction event, see add_fine_vehicle).
GOOD: dict[str, Any] = {
    "vin": "WP0ZZZ91ZKS123456",
    "mileage": 58000,
    "color": "Guards Red",
    "transmission": "Five-Speed Manual",
    "drivetrain": "RWD",
    "sale_status": "sold",
    "sale_price": 89500,
    "high_bid": 89500,
    "bat_buyer": "buyer1",
}


def add_vehicle(db: pg8000.native.Connection, age_days: float = 30, **columns: Any) -> str:
    """A vehicle created `age_days` ago whose auction ended a week after; GOOD unless overridden."""
    values = {**GOOD, **columns}
    values.setdefault("bat_auction_url", f"https://bringatrailer.com/listing/car-{next(_numbers)}/")
    names = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    rows = db.run(
        f"INSERT INTO vehicles ({names}, created_at, auction_end_date) "
        f"VALUES ({params}, now() - CAST(:age AS float8) * interval '1 day', "
        "now() - CAST(:age AS float8) * interval '1 day' + interval '7 days') RETURNING id::text",
        age=age_days,
        **values,
    )
    return str(rows[0][0])


def add_event(
    db: pg8000.native.Connection, vehicle_id: str, outcome: str | None, n: int = 0
) -> None:
    db.run(
        "INSERT INTO auction_events (vehicle_id, listing_url, outcome, ended_at) "
        "VALUES (CAST(:v AS uuid), :url, :outcome, now() - CAST(:n AS int) * interval '1 day')",
        v=vehicle_id,
        url=f"https://bringatrailer.com/listing/event-{vehicle_id}-{n}/",
        outcome=outcome,
        n=100 - n,  # later events (higher n) ended more recently
    )


def add_fine_vehicle(db: pg8000.native.Connection, age_days: float = 30, **columns: Any) -> str:
    vid = add_vehicle(db, age_days, **columns)
    add_event(db, vid, "sold")
    return vid


def add_absence(db: pg8000.native.Connection, vehicle_id: str, field: str) -> None:
    db.run(
        "INSERT INTO extraction_absences (vehicle_id, field) VALUES (CAST(:v AS uuid), :f)",
        v=vehicle_id,
        f=field,
    )


def select(db: pg8000.native.Connection, limit: int = 50) -> list[tuple[str, str]]:
    rows = db.run(
        "SELECT vehicle_id::text, reason, bat_url FROM queue_bat_backfill_vehicles(:n, 75)", n=limit
    )
    return [(str(vid), str(reason)) for vid, reason, _url in rows]


def reasons(db: pg8000.native.Connection) -> dict[str, str]:
    return dict(select(db))


def auto_queue(
    db: pg8000.native.Connection, batch: int = 20, priority: int = 75
) -> tuple[int, int]:
    ((queued, skipped),) = db.run(
        "SELECT queued_count, skipped_count FROM auto_queue_bat_backfills(:b, :p)",
        b=batch,
        p=priority,
    )
    return int(queued), int(skipped)


def set_job(db: pg8000.native.Connection, vehicle_id: str, assignments: str) -> None:
    db.run(
        f"UPDATE bat_extraction_queue SET {assignments} WHERE vehicle_id = CAST(:v AS uuid)",
        v=vehicle_id,
    )


def job_row(db: pg8000.native.Connection, vehicle_id: str) -> dict[str, Any]:
    rows = db.run(
        "SELECT status, priority, attempts, reason, last_error, dispatched_at "
        "FROM bat_extraction_queue WHERE vehicle_id = CAST(:v AS uuid)",
        v=vehicle_id,
    )
    names = [c["name"] for c in db.columns]
    return dict(zip(names, rows[0], strict=True))


# ------------------------------------------------------------------ reasons


def test_a_vehicle_with_nothing_wrong_is_not_selected(db: pg8000.native.Connection) -> None:
    add_fine_vehicle(db)
    add_fine_vehicle(db, sale_status="bid_to", sale_price=None, bat_buyer=None)
    assert select(db) == []


@pytest.mark.parametrize(
    ("columns", "events", "reason"),
    [
        ({}, [], "wrong_sale_status: sold without a sale record"),
        (
            {"sale_status": None, "high_bid": None},
            [],
            "wrong_sale_status: sale price without a sale record",
        ),
        (
            {"sale_status": "bid_to"},
            ["bid_to"],
            "wrong_sale_status: sale price on a bid_to outcome",
        ),
        (
            {"sale_status": None},
            ["sold", "no_sale"],  # sold once, relisted, and the latest listing did not sell
            "wrong_sale_status: sale price on a no_sale auction event",
        ),
        (
            # "Bid to USD $89,500" stored as a sale: the seed's example
            {"bat_buyer": None},
            [],
            "wrong_sale_status: sale price equals the high bid, no buyer, no sale record",
        ),
        ({"sale_status": "live"}, ["sold"], "wrong_sale_status: sale price on a live outcome"),
    ],
)
def test_wrong_sale_status(
    db: pg8000.native.Connection, columns: dict[str, Any], events: list[str], reason: str
) -> None:
    vid = add_vehicle(db, **columns)
    for n, outcome in enumerate(events):
        add_event(db, vid, outcome, n)
    assert reasons(db) == {vid: reason}


def test_a_sale_record_clears_wrong_status(db: pg8000.native.Connection) -> None:
    vid = add_vehicle(db)
    assert reasons(db) == {vid: "wrong_sale_status: sold without a sale record"}
    add_event(db, vid, "sold")
    assert select(db) == []


def test_missing_fields_are_named(db: pg8000.native.Connection) -> None:
    vid = add_fine_vehicle(db, vin=None, mileage=None)
    blank = add_fine_vehicle(db, color="  ", transmission=None, drivetrain="")
    assert reasons(db) == {
        vid: "missing_fields: vin, mileage",
        blank: "missing_fields: color, transmission, drivetrain",
    }


def test_recorded_absences_suppress_missing_fields(db: pg8000.native.Connection) -> None:
    partly = add_fine_vehicle(db, age_days=20, vin=None, drivetrain=None, color=None)
    wholly = add_fine_vehicle(db, age_days=10, drivetrain=None)
    add_absence(db, partly, "drivetrain")
    add_absence(db, partly, "exterior_color")  # the Listing key works as well as the column
    add_absence(db, wholly, "drivetrain")
    assert reasons(db) == {partly: "missing_fields: vin"}

    # the page states the drivetrain now: the stale absence is deleted and the field asked for
    db.run(
        "DELETE FROM extraction_absences WHERE vehicle_id = CAST(:v AS uuid) AND field = 'drivetrain'",
        v=wholly,
    )
    assert reasons(db) == {partly: "missing_fields: vin", wholly: "missing_fields: drivetrain"}


def test_missing_outcome_of_an_ended_listing(db: pg8000.native.Connection) -> None:
    no_event = add_vehicle(db, sale_status=None, sale_price=None, bat_buyer=None)
    no_end = add_vehicle(db, sale_status=None, sale_price=None, bat_buyer=None)
    db.run("UPDATE vehicles SET auction_end_date = NULL WHERE id = CAST(:v AS uuid)", v=no_end)
    live_event_only = add_vehicle(db, sale_status=None, sale_price=None, bat_buyer=None)
    add_event(db, live_event_only, "live")
    running = add_vehicle(db, age_days=2, sale_status="live", sale_price=None, bat_buyer=None)
    add_event(db, running, "live")  # ends in five days: no outcome yet, rightly
    unknown_outcome = add_vehicle(db, sale_status=None, sale_price=None, bat_buyer=None)
    add_event(db, unknown_outcome, None)

    assert reasons(db) == {
        no_event: "missing_outcome",
        no_end: "missing_outcome",
        live_event_only: "missing_outcome",
        unknown_outcome: "missing_outcome",
    }


def test_vehicles_without_a_listing_url_are_never_selected(db: pg8000.native.Connection) -> None:
    add_vehicle(db, bat_auction_url=None, vin=None)
    add_vehicle(db, bat_auction_url="  ", vin=None)
    assert select(db) == []


def test_failed_jobs_are_retried_after_their_cool_down(db: pg8000.native.Connection) -> None:
    due = add_fine_vehicle(db, age_days=20)
    cooling = add_fine_vehicle(db, age_days=10)
    cooling_defective = add_vehicle(db, age_days=5)  # wrong status, but its job is cooling down
    for vid in (due, cooling, cooling_defective):
        queue.enqueue(db, vid, "u", 75)
        set_job(
            db, vid, "status = 'failed', attempts = 5, next_attempt_at = now() + interval '1 day'"
        )
    set_job(db, due, "next_attempt_at = now() - interval '1 minute'")

    assert select(db) == [(due, "retry_failed")]


def test_a_due_failed_job_with_a_defect_is_selected_for_the_defect(
    db: pg8000.native.Connection,
) -> None:
    vid = add_vehicle(db, vin=None)
    queue.enqueue(db, vid, "u", 75)
    set_job(db, vid, "status = 'failed', next_attempt_at = now() - interval '1 minute'")
    assert select(db) == [(vid, "wrong_sale_status: sold without a sale record")]


# ------------------------------------------------------------------ holds and order


def test_pending_and_processing_vehicles_are_not_selected_again(
    db: pg8000.native.Connection,
) -> None:
    pending = add_vehicle(db, age_days=30)
    processing = add_vehicle(db, age_days=20)
    free = add_vehicle(db, age_days=10)
    queue.enqueue(db, pending, "u", 75)
    assert dict(select(db)).keys() == {processing, free}
    queue.enqueue(db, processing, "u", 75)
    assert queue.claim_job(db, queue.enqueue(db, processing, "u", 75), "w", 60) is not None
    assert dict(select(db)).keys() == {free}


def test_recently_completed_vehicles_wait_a_day(db: pg8000.native.Connection) -> None:
    vid = add_fine_vehicle(db, drivetrain=None)  # a page that does not state it, no absence
    queue.enqueue(db, vid, "u", 75)
    job = queue.claim_next(db, "w", 60)
    assert job is not None and queue.complete(db, job)
    assert select(db) == []
    set_job(db, vid, "completed_at = now() - interval '25 hours'")
    assert select(db) == [(vid, "missing_fields: drivetrain")]


def test_a_hold_that_ends_later_is_honoured_before_and_after_the_sweep(
    db: pg8000.native.Connection,
) -> None:
    vid = add_fine_vehicle(db, vin=None)
    queue.enqueue(db, vid, "u", 75)
    set_job(db, vid, "status = 'complete', completed_at = now() - interval '1 hour'")
    assert select(db) == []
    # time passes: the recorded hold ends while nothing changes in the queue
    db.run(
        "UPDATE backfill_candidates SET held_until = now() - interval '1 second' "
        "WHERE vehicle_id = CAST(:v AS uuid)",
        v=vid,
    )
    assert select(db) == [(vid, "missing_fields: vin")]
    assert db.run("SELECT sweep_backfill_holds()") == [[1]]
    assert select(db) == [(vid, "missing_fields: vin")]


def test_order_is_reason_then_oldest_and_each_vehicle_appears_once(
    db: pg8000.native.Connection,
) -> None:
    fields_old = add_fine_vehicle(db, age_days=90, mileage=None)
    outcome_old = add_vehicle(db, age_days=80, sale_status=None, sale_price=None, bat_buyer=None)
    status_new = add_vehicle(db, age_days=5, vin=None)  # wrong status and missing vin
    status_old = add_vehicle(db, age_days=50)
    failed = add_fine_vehicle(db, age_days=100)
    queue.enqueue(db, failed, "u", 75)
    set_job(db, failed, "status = 'failed', next_attempt_at = now() - interval '1 hour'")

    expected = [
        (status_old, "wrong_sale_status: sold without a sale record"),
        (status_new, "wrong_sale_status: sold without a sale record"),
        (outcome_old, "missing_outcome"),
        (fields_old, "missing_fields: mileage"),
        (failed, "retry_failed"),
    ]
    assert select(db) == expected
    assert select(db) == expected  # deterministic
    assert select(db, limit=2) == expected[:2]
    assert select(db, limit=4) == expected[:4]
    assert select(db, limit=0) == []


def test_equal_ages_are_ordered_by_id(db: pg8000.native.Connection) -> None:
    ids = [add_vehicle(db, vin=None) for _ in range(3)]
    db.run("UPDATE vehicles SET created_at = '2024-01-01T00:00:00Z'")
    assert [vid for vid, _ in select(db)] == sorted(ids)


def test_the_candidate_table_always_agrees_with_the_judgement(
    db: pg8000.native.Connection,
) -> None:
    """Random edits of vehicles, events, absences and jobs; the derived table never drifts."""
    rnd = random.Random(7)
    vids = [add_vehicle(db, age_days=rnd.uniform(1, 400)) for _ in range(12)]
    column_values: dict[str, list[Any]] = {
        "vin": [None, "", "VIN1"],
        "mileage": [None, 1000],
        "color": [None, "Red"],
        "drivetrain": [None, "AWD"],
        "sale_status": [None, "sold", "bid_to", "no_sale", "live"],
        "sale_price": [None, 5000],
        "high_bid": [None, 5000],
        "bat_buyer": [None, "x"],
        "bat_auction_url": [None, "https://bringatrailer.com/listing/z/"],
    }
    for step in range(150):
        vid = rnd.choice(vids)
        action = rnd.randrange(7)
        if action == 0:
            column = rnd.choice(sorted(column_values))
            db.run(
                f"UPDATE vehicles SET {column} = :value WHERE id = CAST(:v AS uuid)",
                value=rnd.choice(column_values[column]),
                v=vid,
            )
        elif action == 1:
            add_event(
                db, vid, rnd.choice([None, "sold", "bid_to", "no_sale", "withdrawn", "live"]), step
            )
        elif action == 2:
            db.run("DELETE FROM auction_events WHERE vehicle_id = CAST(:v AS uuid)", v=vid)
        elif action == 3:
            db.run(
                "INSERT INTO extraction_absences (vehicle_id, field) VALUES (CAST(:v AS uuid), :f) "
                "ON CONFLICT DO NOTHING",
                v=vid,
                f=rnd.choice(["vin", "mileage", "exterior_color", "drivetrain"]),
            )
        elif action == 4:
            db.run("DELETE FROM extraction_absences WHERE vehicle_id = CAST(:v AS uuid)", v=vid)
        elif action == 5:
            queue.enqueue(db, vid, "u", 75)
        else:
            set_job(
                db,
                vid,
                rnd.choice(
                    [
                        "status = 'complete', completed_at = now() - interval '2 hours'",
                        "status = 'complete', completed_at = now() - interval '2 days'",
                        "status = 'failed', next_attempt_at = now() + interval '1 hour'",
                        "status = 'failed', next_attempt_at = now() - interval '1 hour'",
                        "status = 'pending'",
                    ]
                ),
            )
        if step % 10 == 9:
            db.run(
                "UPDATE vehicles SET created_at = created_at - interval '1 day' WHERE random() < 0.3"
            )
    stored = db.run(
        "SELECT vehicle_id, vehicle_created_at, auction_end_date, wrong_status, needs_outcome, "
        "missing_fields, held_until FROM backfill_candidates ORDER BY vehicle_id"
    )
    db.run("SELECT rebuild_backfill_candidates()")
    rebuilt = db.run(
        "SELECT vehicle_id, vehicle_created_at, auction_end_date, wrong_status, needs_outcome, "
        "missing_fields, held_until FROM backfill_candidates ORDER BY vehicle_id"
    )
    assert stored == rebuilt
    assert len(rebuilt) > 3


# ------------------------------------------------------------------ auto-queue


def test_auto_queue_queues_the_selection_with_its_reason(db: pg8000.native.Connection) -> None:
    old = add_vehicle(db, age_days=30)
    new = add_fine_vehicle(db, age_days=10, vin=None)
    add_fine_vehicle(db)

    assert auto_queue(db, batch=20, priority=75) == (2, 0)
    assert job_row(db, old)["reason"] == "wrong_sale_status: sold without a sale record"
    assert (job_row(db, new)["status"], job_row(db, new)["priority"]) == ("pending", 75)
    assert job_row(db, new)["reason"] == "missing_fields: vin"
    assert auto_queue(db) == (0, 0)  # nothing queued twice


def test_auto_queue_takes_a_batch_of_the_most_important(db: pg8000.native.Connection) -> None:
    fields = add_fine_vehicle(db, age_days=100, vin=None)
    status = [add_vehicle(db, age_days=age) for age in (50, 40, 30)]
    assert auto_queue(db, batch=2) == (2, 0)
    queued = {str(r[0]) for r in db.run("SELECT vehicle_id FROM bat_extraction_queue")}
    assert queued == set(status[:2])
    assert auto_queue(db, batch=2) == (2, 0)
    queued = {str(r[0]) for r in db.run("SELECT vehicle_id FROM bat_extraction_queue")}
    assert queued == {*status, fields}


def test_auto_queue_requeues_failed_jobs_with_attempts_reset(db: pg8000.native.Connection) -> None:
    vid = add_vehicle(db)
    queue.enqueue(db, vid, "u", 75)
    set_job(
        db,
        vid,
        "status = 'failed', attempts = 5, last_error = 'HTTP 503', error_kind = 'retryable', "
        "next_attempt_at = now() - interval '1 minute', dispatched_at = now()",
    )
    assert auto_queue(db) == (1, 0)
    row = job_row(db, vid)
    assert (row["status"], row["attempts"], row["dispatched_at"]) == ("pending", 0, None)
    assert queue.claim_next(db, "w", 60) is not None


def test_auto_queue_never_lowers_a_priority(db: pg8000.native.Connection) -> None:
    vid = add_vehicle(db)
    queue.enqueue(db, vid, "u", 100)
    set_job(db, vid, "status = 'complete', completed_at = now() - interval '3 days'")
    assert auto_queue(db, priority=75) == (1, 0)
    assert (job_row(db, vid)["status"], job_row(db, vid)["priority"]) == ("pending", 100)


def test_a_concurrent_run_counts_what_it_could_not_queue_as_skipped(db_url: str) -> None:
    first, second = connect(db_url), connect(db_url)
    try:
        vids = {add_vehicle(first, age_days=age) for age in (3, 2, 1)}
        first.run("START TRANSACTION")
        assert auto_queue(first) == (3, 0)
        result: list[tuple[int, int]] = []
        blocked = threading.Thread(target=lambda: result.append(auto_queue(second)))
        blocked.start()
        blocked.join(0.5)
        assert blocked.is_alive()  # waiting on the first run's uncommitted rows
        first.run("COMMIT")
        blocked.join(10)
        assert result == [(0, 3)]
        rows = first.run("SELECT vehicle_id::text, status FROM bat_extraction_queue")
        assert sorted(rows) == sorted([v, "pending"] for v in vids)
    finally:
        first.close()
        second.close()


def test_concurrent_auto_queue_runs_never_double_queue_or_fail(db_url: str) -> None:
    setup = connect(db_url)
    try:
        for age in range(100):  # more than the 8 runs x 10 can take: every run selects 10
            add_vehicle(setup, age_days=age + 1, vin=None if age % 2 else "V")
    finally:
        setup.close()
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        conn = connect(db_url)
        try:
            start.wait()
            for _ in range(4):
                results.append(auto_queue(conn, batch=10))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check = connect(db_url)
    try:
        ((rows, vehicles),) = check.run(
            "SELECT count(*), count(DISTINCT vehicle_id) FROM bat_extraction_queue"
        )
    finally:
        check.close()
    assert rows == vehicles == sum(queued for queued, _ in results)
    # every selected vehicle was either queued by one run or counted as skipped by the other
    assert sum(queued + skipped for queued, skipped in results) == 8 * 10
