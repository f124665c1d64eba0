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
from bat_backfill.jobs import BackoffPolicy
from bat_backfill.models import JobStatus

_numbers = itertools.count(1)

# A vehicle the selector has no reason to touch (with a verified sale, see add_fine_vehicle).
# Its VIN is made unique per vehicle by add_vehicle: the original system's unique index.
GOOD: dict[str, Any] = {
    "mileage": 58000,
    "color": "Guards Red",
    "transmission": "Five-Speed Manual",
    "drivetrain": "RWD",
    "sale_status": "sold",
    "auction_outcome": "sold",
    "sale_price": 89500,
    "high_bid": 89500,
    "bat_buyer": "buyer1",
}

# The seed's manual re-queue statement, verbatim but for the values it leaves out ("...").
SEED_REQUEUE = (
    "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, priority, status) "
    "VALUES (CAST(:vehicle_id AS uuid), :bat_url,75,'pending') ON CONFLICT (vehicle_id) DO UPDATE "
    "SET status = 'pending', priority = GREATEST(bat_extraction_queue.priority, 75);"
)


def add_vehicle(db: pg8000.native.Connection, age_days: float = 30, **columns: Any) -> str:
    """A vehicle created `age_days` ago whose auction ended a week after (a 'YYYY-MM-DD' text,
    as the original system stored it); GOOD unless overridden."""
    n = next(_numbers)
    values = {**GOOD, "vin": f"WP0ZZZ91ZKS{n:06d}", **columns}
    values.setdefault("bat_auction_url", f"https://bringatrailer.com/listing/car-{n}/")
    names = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    rows = db.run(
        f"INSERT INTO vehicles ({names}, created_at, auction_end_date) "
        f"VALUES ({params}, now() - CAST(:age AS float8) * interval '1 day', "
        "to_char((now() - CAST(:age AS float8) * interval '1 day' + interval '7 days') "
        "AT TIME ZONE 'UTC', 'YYYY-MM-DD')) RETURNING id::text",
        age=age_days,
        **values,
    )
    return str(rows[0][0])


def add_event(
    db: pg8000.native.Connection,
    vehicle_id: str,
    outcome: str,
    n: int = 0,
    *,
    extracted: bool = True,
    winner: str | None = None,
) -> None:
    """An auction event; `extracted`: bat-backfill read it from the page, else another program
    (the original system) wrote it."""
    db.run(
        "INSERT INTO auction_events (vehicle_id, source, source_url, outcome, auction_end_date, "
        "winning_bidder, extracted_at) "
        "VALUES (CAST(:v AS uuid), 'bat', :url, :outcome, "
        "now() - CAST(:n AS int) * interval '1 day', :winner, "
        "CASE WHEN CAST(:extracted AS boolean) THEN now() END)",
        v=vehicle_id,
        url=f"https://bringatrailer.com/listing/event-{vehicle_id}-{n}/",
        outcome=outcome,
        n=100 - n,  # later events (higher n) ended more recently
        winner=winner,
        extracted=extracted,
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


def selection(db: pg8000.native.Connection, limit: int = 50) -> list[tuple[str, str, str]]:
    rows = db.run(
        "SELECT vehicle_id::text, reason, bat_url FROM queue_bat_backfill_vehicles(:n, 75)", n=limit
    )
    return [(str(vid), str(reason), str(url)) for vid, reason, url in rows]


def select(db: pg8000.native.Connection, limit: int = 50) -> list[tuple[str, str]]:
    return [(vid, reason) for vid, reason, _url in selection(db, limit)]


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
        "SELECT status, priority, attempts, reason, bat_url, error_message, error_kind, "
        "dispatched_at FROM bat_extraction_queue WHERE vehicle_id = CAST(:v AS uuid)",
        v=vehicle_id,
    )
    names = [c["name"] for c in db.columns]
    return dict(zip(names, rows[0], strict=True))


def queue_rows(db: pg8000.native.Connection) -> list[list[Any]]:
    rows: list[list[Any]] = db.run(
        "SELECT vehicle_id::text, status, priority, reason, bat_url FROM bat_extraction_queue "
        "ORDER BY vehicle_id"
    )
    return rows


# ------------------------------------------------------------------ reasons


def test_a_vehicle_with_nothing_wrong_is_not_selected(db: pg8000.native.Connection) -> None:
    add_fine_vehicle(db)
    add_fine_vehicle(
        db, sale_status="bid_to", auction_outcome="reserve_not_met", sale_price=None, bat_buyer=None
    )
    assert select(db) == []


@pytest.mark.parametrize(
    ("columns", "events", "reason"),
    [
        ({}, [], "wrong_sale_status: sold without a verified sale"),
        (
            {"sale_status": None, "auction_outcome": None, "high_bid": None},
            [],
            "wrong_sale_status: sale price without a verified sale",
        ),
        (
            {"sale_status": "bid_to"},
            ["bid_to"],
            "wrong_sale_status: sale price on a bid_to vehicle",
        ),
        (
            {"sale_status": "not_sold", "auction_outcome": "no_sale"},
            ["sold"],
            "wrong_sale_status: sale price on a not_sold vehicle",
        ),
        (
            {"sale_status": None, "auction_outcome": "reserve_not_met"},
            ["sold"],
            "wrong_sale_status: sale price on a reserve_not_met outcome",
        ),
        (
            {"sale_status": None, "auction_outcome": None},
            ["sold", "no_sale"],  # sold once, relisted, and the latest listing did not sell
            "wrong_sale_status: sale price on a no_sale auction event",
        ),
        (
            # "Bid to USD $89,500" stored as a sale: the seed's example
            {"bat_buyer": None},
            [],
            "wrong_sale_status: sale price equals the high bid, no buyer, no verified sale",
        ),
        (
            {"sale_status": "auction_live", "auction_outcome": "pending"},
            ["sold"],
            "wrong_sale_status: sale price on a auction_live vehicle",
        ),
        (
            # the original system's outcome column alone says sold
            {"sale_status": None, "sale_price": None},
            [],
            "wrong_sale_status: sold without a verified sale",
        ),
    ],
)
def test_wrong_sale_status(
    db: pg8000.native.Connection, columns: dict[str, Any], events: list[str], reason: str
) -> None:
    vid = add_vehicle(db, **columns)
    for n, outcome in enumerate(events):
        add_event(db, vid, outcome, n)
    assert reasons(db) == {vid: reason}


def test_a_verified_sale_clears_wrong_status(db: pg8000.native.Connection) -> None:
    vid = add_vehicle(db)
    assert reasons(db) == {vid: "wrong_sale_status: sold without a verified sale"}
    add_event(db, vid, "sold")
    assert select(db) == []


def test_the_seeds_example_is_selected_until_a_sale_is_verified(
    db: pg8000.native.Connection,
) -> None:
    """sale_price = high_bid = 89500, status 'sold', and a 'sold' event that the original system
    wrote without a winner: the "Bid to USD $89,500" lot of the seed, not a sale."""
    seed = {"bat_buyer": None}
    example = add_vehicle(db, age_days=30, **seed)
    add_event(db, example, "sold", extracted=False)
    extracted = add_vehicle(db, age_days=20, **seed)
    add_event(db, extracted, "sold", extracted=True)
    named = add_vehicle(db, age_days=10, **seed)
    add_event(db, named, "sold", extracted=False, winner="winner1")
    blank_winner = add_vehicle(db, age_days=5, **seed)
    add_event(db, blank_winner, "sold", extracted=False, winner="  ")

    bid_to_as_sale = "wrong_sale_status: sale price equals the high bid, no buyer, no verified sale"
    assert select(db) == [(example, bid_to_as_sale), (blank_winner, bid_to_as_sale)]
    # once bat-backfill has read the page and found the sale, it leaves the backfill set
    db.run(
        "UPDATE auction_events SET extracted_at = now() WHERE vehicle_id = CAST(:v AS uuid)",
        v=example,
    )
    assert select(db) == [(blank_winner, bid_to_as_sale)]


def test_a_legacy_sold_event_verifies_nothing_whatever_else_the_row_says(
    db: pg8000.native.Connection,
) -> None:
    with_buyer = add_vehicle(db, age_days=20)
    add_event(db, with_buyer, "sold", extracted=False)
    price_only = add_vehicle(db, age_days=10, sale_status=None, auction_outcome=None)
    add_event(db, price_only, "sold", extracted=False)
    assert select(db) == [
        (with_buyer, "wrong_sale_status: sold without a verified sale"),
        (price_only, "wrong_sale_status: sale price without a verified sale"),
    ]


def test_missing_fields_are_named(db: pg8000.native.Connection) -> None:
    vid = add_fine_vehicle(db, vin=None, mileage=None)
    blank = add_fine_vehicle(db, vin="  ", color="  ", transmission=None, drivetrain="")
    assert reasons(db) == {
        vid: "missing_fields: vin, mileage",
        blank: "missing_fields: vin, color, transmission, drivetrain",
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


UNSOLD: dict[str, Any] = {
    "sale_status": None,
    "auction_outcome": None,
    "sale_price": None,
    "bat_buyer": None,
}


def test_missing_outcome_of_an_ended_listing(db: pg8000.native.Connection) -> None:
    no_event = add_vehicle(db, **UNSOLD)
    no_end = add_vehicle(db, **UNSOLD)
    db.run("UPDATE vehicles SET auction_end_date = NULL WHERE id = CAST(:v AS uuid)", v=no_end)
    live_event_only = add_vehicle(db, **UNSOLD)
    add_event(db, live_event_only, "live")
    running = add_vehicle(db, age_days=2, **{**UNSOLD, "sale_status": "auction_live"})
    add_event(db, running, "live")  # ends in five days: no outcome yet, rightly
    pending_outcome = add_vehicle(db, **UNSOLD)
    add_event(db, pending_outcome, "pending")
    # an outcome the original system wrote is not one bat-backfill read from the page
    legacy_outcome = add_vehicle(db, **UNSOLD)
    add_event(db, legacy_outcome, "reserve_not_met", extracted=False)
    extracted_outcome = add_vehicle(db, **UNSOLD)
    add_event(db, extracted_outcome, "reserve_not_met")

    assert reasons(db) == {
        no_event: "missing_outcome",
        no_end: "missing_outcome",
        live_event_only: "missing_outcome",
        pending_outcome: "missing_outcome",
        legacy_outcome: "missing_outcome",
    }


def test_the_original_systems_text_end_dates(db: pg8000.native.Connection) -> None:
    """auction_end_date is text: 'YYYY-MM-DD', ISO timestamps, or anything another program
    wrote. A running auction is not asked for its outcome; an unreadable end is no end."""
    ends = {
        "future_date": "to_char(now() + interval '3 days', 'YYYY-MM-DD')",
        "future_iso": "to_char((now() + interval '2 hours') AT TIME ZONE 'UTC', "
        '\'YYYY-MM-DD"T"HH24:MI:SS"+00:00"\')',
        "past_iso": "to_char((now() - interval '2 hours') AT TIME ZONE 'UTC', "
        '\'YYYY-MM-DD"T"HH24:MI:SS"+00:00"\')',
        "past_date": "'2025-11-07'",
        "impossible_date": "'2025-13-45'",
        "words": "'ends Sunday'",
        "blank": "''",
    }
    vids = {}
    for name, end in ends.items():
        vid = add_vehicle(db, **UNSOLD)
        db.run(f"UPDATE vehicles SET auction_end_date = {end} WHERE id = CAST(:v AS uuid)", v=vid)
        vids[name] = vid
    running = {vids["future_date"], vids["future_iso"]}
    assert reasons(db) == {vid: "missing_outcome" for vid in vids.values() if vid not in running}
    # the auction ends: now it needs its outcome
    db.run(
        "UPDATE vehicles SET auction_end_date = to_char(now() - interval '1 day', 'YYYY-MM-DD') "
        "WHERE id = CAST(:v AS uuid)",
        v=vids["future_date"],
    )
    assert reasons(db)[vids["future_date"]] == "missing_outcome"
    assert vids["future_iso"] not in reasons(db)


def test_vehicles_without_a_bat_listing_are_never_selected(db: pg8000.native.Connection) -> None:
    for url in (
        None,
        "  ",
        "https://carsandbids.com/auctions/9x1/2001-bmw-m3-coupe",
        "https://notbringatrailer.com/listing/car-x/",
        "https://bringatrailer.com/porsche/911/",  # a BaT page, but not a listing
        "ftp://bringatrailer.com/listing/car-y/",
    ):
        add_vehicle(db, bat_auction_url=url, vin=None)
    add_vehicle(
        db,
        bat_auction_url=None,
        discovery_url="https://carsandbids.com/auctions/9x2/2001-bmw-m3-sedan",
        vin=None,
    )
    add_vehicle(
        db,
        bat_auction_url="https://www.ebay.com/itm/1234",
        discovery_url="https://carsandbids.com/auctions/9x3/2002-bmw-m3",
        vin=None,
    )
    assert select(db) == []
    assert auto_queue(db) == (0, 0)
    assert queue_rows(db) == []


def test_any_spelling_of_a_listing_url_is_selected_and_returned_canonical(
    db: pg8000.native.Connection,
) -> None:
    spellings = {
        "http://bringatrailer.com/listing/spelt-1/": "spelt-1",
        "https://www.bringatrailer.com/listing/spelt-2/": "spelt-2",
        "https://BringATrailer.COM/listing/spelt-3/": "spelt-3",
        "https://bringatrailer.com/listing/spelt-4": "spelt-4",
        "https://bringatrailer.com/listing/spelt-5/?utm_source=newsletter": "spelt-5",
        "https://bringatrailer.com/listing/spelt-6/#comments": "spelt-6",
        "http://www.bringatrailer.com/listing/spelt-7": "spelt-7",
    }
    expected = {}
    for age, (url, slug) in enumerate(spellings.items()):
        vid = add_fine_vehicle(db, age_days=100 - age, bat_auction_url=url, vin=None)
        expected[vid] = f"https://bringatrailer.com/listing/{slug}/"
    # the only BaT URL is the one discovery found
    via_discovery = add_fine_vehicle(
        db,
        age_days=10,
        bat_auction_url=None,
        discovery_url="https://bringatrailer.com/listing/spelt-8",
        vin=None,
    )
    expected[via_discovery] = "https://bringatrailer.com/listing/spelt-8/"

    assert selection(db) == [(vid, "missing_fields: vin", url) for vid, url in expected.items()]
    assert auto_queue(db) == (len(expected), 0)
    assert {row[0]: row[4] for row in queue_rows(db)} == expected


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

    # the original system left next_attempt_at NULL: such a failed job is due
    set_job(db, cooling, "next_attempt_at = NULL")
    assert select(db) == [(due, "retry_failed"), (cooling, "retry_failed")]


def test_a_due_failed_job_with_a_defect_is_selected_for_the_defect(
    db: pg8000.native.Connection,
) -> None:
    vid = add_vehicle(db, vin=None)
    queue.enqueue(db, vid, "u", 75)
    set_job(db, vid, "status = 'failed', next_attempt_at = now() - interval '1 minute'")
    assert select(db) == [(vid, "wrong_sale_status: sold without a verified sale")]


def test_a_permanent_failure_holds_its_vehicle_until_requeued_by_hand(
    db: pg8000.native.Connection,
) -> None:
    vid = add_vehicle(db, vin=None)  # wrong status and a missing VIN: wanted for two reasons
    url = "https://bringatrailer.com/listing/gone-1/"
    job = queue.claim_job(db, queue.enqueue(db, vid, url, 75), "w", 60)
    assert job is not None
    # the page is gone: not retryable
    assert queue.fail(db, job, "HTTP 404", retryable=False, policy=BackoffPolicy()) == (
        JobStatus.FAILED
    )
    assert (job_row(db, vid)["error_kind"], job_row(db, vid)["error_message"]) == (
        "permanent",
        "HTTP 404",
    )
    # however long ago it failed, it is neither selected, retried nor auto-queued
    set_job(db, vid, "next_attempt_at = now() - interval '400 days'")
    db.run("SELECT sweep_backfill_holds()")
    assert select(db) == []
    assert auto_queue(db) == (0, 0)
    assert job_row(db, vid)["status"] == "failed"

    # an operator re-queues it by hand with the seed's statement: the next claim takes it
    db.run(SEED_REQUEUE, vehicle_id=vid, bat_url=url)
    row = job_row(db, vid)
    assert (row["status"], row["attempts"], row["error_kind"]) == ("pending", 0, None)
    claimed = queue.claim_next(db, "w", 60)
    assert claimed is not None and claimed.vehicle_id == vid
    # a retryable failure after that waits for its cool-down only
    gave_up = queue.fail(
        db, claimed, "HTTP 503", retryable=True, policy=BackoffPolicy(max_attempts=1)
    )
    assert gave_up == JobStatus.FAILED
    assert job_row(db, vid)["error_kind"] == "retryable"
    assert select(db) == []
    set_job(db, vid, "next_attempt_at = now() - interval '1 minute'")
    assert select(db) == [(vid, "wrong_sale_status: sold without a verified sale")]


# ------------------------------------------------------------------ holds and order


def test_pending_and_processing_vehicles_are_not_selected_again(
    db: pg8000.native.Connection,
) -> None:
    pending = add_vehicle(db, age_days=30)
    processing = add_vehicle(db, age_days=20)
    free = add_vehicle(db, age_days=10)
    queue.enqueue(db, pending, "u", 75)
    assert dict(select(db)).keys() == {processing, free}
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
    outcome_old = add_vehicle(db, age_days=80, **UNSOLD)
    status_new = add_vehicle(db, age_days=5, vin=None)  # wrong status and missing vin
    status_old = add_vehicle(db, age_days=50)
    failed = add_fine_vehicle(db, age_days=100)
    queue.enqueue(db, failed, "u", 75)
    set_job(db, failed, "status = 'failed', next_attempt_at = now() - interval '1 hour'")

    expected = [
        (status_old, "wrong_sale_status: sold without a verified sale"),
        (status_new, "wrong_sale_status: sold without a verified sale"),
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

    def column_values(i: int) -> dict[str, list[Any]]:
        # VINs and discovery URLs are unique per row (the original system's indexes)
        return {
            "vin": [None, " " * (i + 1), f"VIN{i}"],
            "mileage": [None, 1000],
            "color": [None, "Red"],
            "drivetrain": [None, "AWD"],
            "sale_status": [None, "sold", "bid_to", "not_sold", "auction_live", "ended"],
            "auction_outcome": [None, "sold", "reserve_not_met", "no_sale", "pending", "ended"],
            "sale_price": [None, 5000],
            "high_bid": [None, 5000],
            "bat_buyer": [None, "x"],
            "bat_auction_url": [
                None,
                "https://bringatrailer.com/listing/z/",
                f"http://www.bringatrailer.com/listing/z-{i}",
                "https://carsandbids.com/auctions/z/",
            ],
            "discovery_url": [None, f"https://bringatrailer.com/listing/d-{i}"],
            "auction_end_date": [
                None,
                "2025-11-07",
                "2999-01-01",
                "2025-12-24T18:14:07+00:00",
                "?",
            ],
        }

    for step in range(150):
        i = rnd.randrange(len(vids))
        vid = vids[i]
        action = rnd.randrange(7)
        if action == 0:
            values = column_values(i)
            column = rnd.choice(sorted(values))
            db.run(
                f"UPDATE vehicles SET {column} = :value WHERE id = CAST(:v AS uuid)",
                value=rnd.choice(values[column]),
                v=vid,
            )
        elif action == 1:
            add_event(
                db,
                vid,
                rnd.choice(["sold", "reserve_not_met", "no_sale", "bid_to", "cancelled", "live"]),
                step,
                extracted=rnd.random() < 0.7,
                winner=rnd.choice([None, "w"]),
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
                        "status = 'failed', error_kind = 'permanent'",
                        "status = 'failed', next_attempt_at = NULL",
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
    assert job_row(db, old)["reason"] == "wrong_sale_status: sold without a verified sale"
    assert (job_row(db, new)["status"], job_row(db, new)["priority"]) == ("pending", 75)
    assert job_row(db, new)["reason"] == "missing_fields: vin"
    # nothing queued twice: the two waiting vehicles are what it skips
    assert auto_queue(db) == (0, 2)


def test_auto_queue_takes_a_batch_of_the_most_important(db: pg8000.native.Connection) -> None:
    fields = add_fine_vehicle(db, age_days=100, vin=None)
    status = [add_vehicle(db, age_days=age) for age in (50, 40, 30)]
    assert auto_queue(db, batch=2) == (2, 0)
    queued = {str(r[0]) for r in db.run("SELECT vehicle_id FROM bat_extraction_queue")}
    assert queued == set(status[:2])
    assert auto_queue(db, batch=2) == (2, 2)
    queued = {str(r[0]) for r in db.run("SELECT vehicle_id FROM bat_extraction_queue")}
    assert queued == {*status, fields}


def test_skipped_counts_the_vehicles_needing_a_backfill_that_are_already_queued(
    db: pg8000.native.Connection,
) -> None:
    """The seed's skipped_count: vehicles that needed a backfill but were already queued
    (pending or processing)."""
    pending = add_vehicle(db, age_days=60)
    processing = add_vehicle(db, age_days=50)
    queued_but_fine = add_fine_vehicle(db, age_days=40)  # waiting, yet needs nothing
    recently_done = add_vehicle(db, age_days=30)  # held for a day, not queued
    permanent = add_vehicle(db, age_days=20)  # held for good, not queued
    free = add_vehicle(db, age_days=10)
    for vid in (pending, processing, queued_but_fine, recently_done, permanent):
        queue.enqueue(db, vid, "u", 75)
    assert queue.claim_job(db, queue.enqueue(db, processing, "u", 75), "w", 60) is not None
    set_job(db, recently_done, "status = 'complete', completed_at = now() - interval '1 hour'")
    set_job(db, permanent, "status = 'failed', error_kind = 'permanent'")

    assert auto_queue(db) == (1, 2)  # `free` queued; `pending` and `processing` skipped
    assert job_row(db, free)["status"] == "pending"
    assert auto_queue(db) == (0, 3)  # and now `free` too
    # the processing one is rescued or finished: it leaves the count
    set_job(db, processing, "status = 'complete', completed_at = now()")
    assert auto_queue(db) == (0, 2)


def test_auto_queue_requeues_failed_jobs_with_attempts_reset(db: pg8000.native.Connection) -> None:
    vid = add_vehicle(db)
    queue.enqueue(db, vid, "u", 75)
    set_job(
        db,
        vid,
        "status = 'failed', attempts = 5, error_message = 'HTTP 503', error_kind = 'retryable', "
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
            add_vehicle(setup, age_days=age + 1, vin=None if age % 2 else f"V{age}")
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
        assert rows == vehicles == sum(queued for queued, _ in results)
        # every run selected 10: what it did not queue, the other had queued meanwhile (a race
        # loser, skipped); on top, it skipped the vehicles already waiting when it started,
        # never more than were queued in all
        for queued, skipped in results:
            assert queued + skipped >= 10
            assert skipped - (10 - queued) <= rows
        # the next run skips exactly the vehicles waiting now
        assert auto_queue(check, batch=10) == (10, rows)
    finally:
        check.close()


# ------------------------------------------------------------------ the new-vehicle trigger


def test_new_bat_vehicles_are_queued_at_100_by_the_trigger(db: pg8000.native.Connection) -> None:
    db.run("SET bat_backfill.queue_new_vehicles = 'on'")
    spelled = add_vehicle(db, bat_auction_url="http://www.bringatrailer.com/listing/new-1")
    discovered = add_vehicle(
        db, bat_auction_url=None, discovery_url="https://bringatrailer.com/listing/new-2/"
    )
    elsewhere = add_vehicle(
        db, bat_auction_url=None, discovery_url="https://carsandbids.com/auctions/n3/new-3"
    )
    # rows written by one statement are queued by one statement
    bulk = [
        str(r[0])
        for r in db.run(
            "INSERT INTO vehicles (vin, bat_auction_url) VALUES "
            "('BULKVIN0000000001', 'https://bringatrailer.com/listing/new-4/'), "
            "('BULKVIN0000000002', 'https://bringatrailer.com/listing/new-5/?ref=home'), "
            "('BULKVIN0000000003', 'https://example.com/new-6') RETURNING id::text"
        )
    ]
    # a program that writes a vehicle together with its own job keeps that job
    ((with_job,),) = db.run(
        "WITH v AS (INSERT INTO vehicles (vin, bat_auction_url) "
        "           VALUES ('OWNJOB00000000001', 'https://bringatrailer.com/listing/new-7/') "
        "           RETURNING id) "
        "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, priority, status, reason) "
        "SELECT v.id, 'https://bringatrailer.com/listing/new-7/', 75, 'pending', 'by hand' FROM v "
        "RETURNING vehicle_id::text"
    )
    expected = sorted(
        [
            [spelled, "pending", 100, "new_listing", "https://bringatrailer.com/listing/new-1/"],
            [discovered, "pending", 100, "new_listing", "https://bringatrailer.com/listing/new-2/"],
            [bulk[0], "pending", 100, "new_listing", "https://bringatrailer.com/listing/new-4/"],
            [bulk[1], "pending", 100, "new_listing", "https://bringatrailer.com/listing/new-5/"],
            [with_job, "pending", 75, "by hand", "https://bringatrailer.com/listing/new-7/"],
        ]
    )
    assert queue_rows(db) == expected
    assert elsewhere not in {row[0] for row in queue_rows(db)}

    # the auto-queue finds them all waiting: it queues nothing again and counts them skipped
    needing = db.run(
        "SELECT count(*) FROM backfill_candidates c JOIN bat_extraction_queue q USING (vehicle_id)"
    )[0][0]
    assert needing == len(expected)  # every new row lacks an outcome at least
    assert auto_queue(db) == (0, len(expected))
    assert queue_rows(db) == expected
    # the next orchestrator claim takes a new listing first
    job = queue.claim_next(db, "w", 60)
    assert job is not None and (job.priority, job.reason) == (100, "new_listing")


def test_the_trigger_stands_aside_when_turned_off(db: pg8000.native.Connection) -> None:
    db.run("SET bat_backfill.queue_new_vehicles = 'off'")
    add_vehicle(db)
    assert queue_rows(db) == []
    db.run("SET bat_backfill.queue_new_vehicles = 'on'")
    vid = add_vehicle(db)
    assert [row[0] for row in queue_rows(db)] == [vid]
