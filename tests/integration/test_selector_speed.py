"""The fast selector (0004) against its definition: the same selections as a plain query over
backfill_judgement and the queue, derived tables that agree with a rebuild, a queue trigger that
claims do not fire, and a database the original system left behind that, once adopted, selects
the same as a fresh one."""

from __future__ import annotations

import itertools
import random
import threading
import time
from typing import Any

import pg8000.native
import pytest

from bat_backfill.db import queue
from bat_backfill.db.connect import connect
from bat_backfill.db.migrate import MIGRATIONS_DIR, find_migrations, migrate
from bat_backfill.db.queries import query

_numbers = itertools.count(1)

# The selector's definition, computed from scratch on every call: each BaT vehicle judged by
# backfill_judgement and held by its job per backfill_hold; the most important reason first,
# the oldest vehicle first; then failed jobs whose cool-down has passed, to fill the room.
REFERENCE = """
WITH judged AS (
    SELECT j.vehicle_id, j.vehicle_created_at, j.wrong_status, j.missing_fields,
           j.needs_outcome AND (j.auction_end_date IS NULL OR j.auction_end_date < now())
               AS outcome_due
      FROM backfill_judgement(ARRAY(SELECT v.id FROM vehicles v)) j
      LEFT JOIN bat_extraction_queue q ON q.vehicle_id = j.vehicle_id
     WHERE coalesce(backfill_hold(q.status, q.completed_at, q.next_attempt_at, q.error_kind)
                    <= now(), true)
), chosen AS (
    SELECT CASE WHEN wrong_status IS NOT NULL THEN 1 WHEN outcome_due THEN 2 ELSE 3 END AS rank,
           vehicle_id, vehicle_created_at,
           CASE WHEN wrong_status IS NOT NULL THEN wrong_status
                WHEN outcome_due THEN 'missing_outcome'
                ELSE 'missing_fields: ' || missing_fields END AS reason
      FROM judged
     WHERE wrong_status IS NOT NULL OR outcome_due OR missing_fields IS NOT NULL
     ORDER BY 1, vehicle_created_at, vehicle_id
     LIMIT CAST(:n AS int)
), retried AS (
    SELECT 4 AS rank, q.vehicle_id, v.created_at AS vehicle_created_at,
           'retry_failed' AS reason
      FROM bat_extraction_queue q
      JOIN vehicles v ON v.id = q.vehicle_id
     WHERE q.status = 'failed' AND q.error_kind IS DISTINCT FROM 'permanent'
       AND coalesce(q.next_attempt_at, '-infinity') <= now()
       AND bat_vehicle_listing(v.bat_auction_url, v.discovery_url) IS NOT NULL
       AND q.vehicle_id NOT IN (SELECT c.vehicle_id FROM chosen c)
     ORDER BY v.created_at, v.id
     LIMIT greatest(CAST(:n AS int) - (SELECT count(*) FROM chosen), 0)
)
SELECT r.vehicle_id::text, r.reason, bat_vehicle_listing(v.bat_auction_url, v.discovery_url)
  FROM (SELECT * FROM chosen UNION ALL SELECT * FROM retried) r
  JOIN vehicles v ON v.id = r.vehicle_id
 ORDER BY r.rank, r.vehicle_created_at, r.vehicle_id
"""

LIMITS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 200)


def selection(db: pg8000.native.Connection, limit: int) -> list[list[Any]]:
    rows: list[list[Any]] = db.run(
        "SELECT vehicle_id::text, reason, bat_url FROM queue_bat_backfill_vehicles(:n, 75)", n=limit
    )
    return rows


def reference(db: pg8000.native.Connection, limit: int) -> list[list[Any]]:
    rows: list[list[Any]] = db.run(REFERENCE, n=limit)
    return rows


def assert_selector_agrees_with_the_reference(
    db: pg8000.native.Connection, limits: tuple[int, ...] = LIMITS
) -> None:
    for limit in limits:
        assert selection(db, limit) == reference(db, limit), limit


def vehicle_columns(rnd: random.Random) -> dict[str, Any]:
    """Random columns of a vehicle in the original system's vocabularies; VINs and discovery
    URLs unique per row (its unique indexes)."""
    n = next(_numbers)
    return {
        "vin": rnd.choice([None, " " * n, f"WP0ZZZ91ZKS{n:06d}", f"WP0ZZZ91ZKS{n:06d}"]),
        "mileage": rnd.choice([None, 58000]),
        "color": rnd.choice([None, "Red", "Red"]),
        "transmission": rnd.choice([None, "Manual", "Manual"]),
        "drivetrain": rnd.choice([None, "RWD", "RWD"]),
        "sale_status": rnd.choice([None, "sold", "bid_to", "not_sold", "auction_live", "ended"]),
        "auction_outcome": rnd.choice(
            [None, None, "sold", "reserve_not_met", "no_sale", "pending"]
        ),
        "sale_price": rnd.choice([None, 89500]),
        "high_bid": rnd.choice([None, 89500]),
        "bat_buyer": rnd.choice([None, "buyer1"]),
        "bat_auction_url": rnd.choice(
            [
                None,
                "  ",
                f"https://carsandbids.com/auctions/{n}/",
                f"http://www.bringatrailer.com/listing/car-{n}",
                f"https://BringATrailer.com/listing/car-{n}/?ref=x",
            ]
            + [f"https://bringatrailer.com/listing/car-{n}/"] * 6
        ),
        "discovery_url": rnd.choice(
            [None, None, f"https://bringatrailer.com/listing/found-{n}", f"https://x.com/{n}"]
        ),
    }


# A vehicle with nothing wrong once it has a verified sale (see add_fine_vehicle).
FINE: dict[str, Any] = {
    "mileage": 1,
    "color": "Red",
    "transmission": "M",
    "drivetrain": "RWD",
    "sale_status": "sold",
    "auction_outcome": "sold",
    "sale_price": 1,
    "high_bid": 1,
    "bat_buyer": "b",
}


def add_vehicle(db: pg8000.native.Connection, rnd: random.Random, **columns: Any) -> str:
    values = {**vehicle_columns(rnd), **columns}
    names = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    # few distinct ages, so equal created_at values (ordered by id) occur; end dates as the
    # original system wrote them ('YYYY-MM-DD', ISO text), some unreadable
    rows = db.run(
        f"INSERT INTO vehicles ({names}, created_at, auction_end_date) "
        f"VALUES ({params}, now() - CAST(:age AS int) * interval '1 day', "
        "CASE CAST(:end_form AS int)"
        " WHEN 0 THEN to_char(now() + (CAST(:end AS int) - CAST(:age AS int)) * interval '1 day',"
        "                     'YYYY-MM-DD')"
        " WHEN 1 THEN to_char((now() + (CAST(:end AS int) - CAST(:age AS int)) * interval '1 day')"
        "                     AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')"
        " WHEN 2 THEN 'TBD' END) "
        "RETURNING id::text",
        age=rnd.randrange(1, 40),
        end=rnd.choice([7, 7, 60]),
        end_form=rnd.choice([0, 0, 1, 2, 3]),
        **values,
    )
    return str(rows[0][0])


def add_fine_vehicle(db: pg8000.native.Connection, rnd: random.Random) -> str:
    n = next(_numbers)
    vid = add_vehicle(
        db,
        rnd,
        **FINE,
        vin=f"FINE{n}",
        bat_auction_url=f"https://bringatrailer.com/listing/fine-{n}/",
        discovery_url=None,
    )
    add_event(db, vid, "sold", extracted=True)
    return vid


OUTCOMES = ["sold", "reserve_not_met", "no_sale", "bid_to", "cancelled", "live", "pending"]


def add_event(
    db: pg8000.native.Connection, vid: str, outcome: str, *, extracted: bool, winner: bool = False
) -> None:
    db.run(
        "INSERT INTO auction_events (vehicle_id, source, source_url, outcome, winning_bidder, "
        "auction_end_date, extracted_at) "
        "VALUES (CAST(:v AS uuid), 'bat', 'https://bringatrailer.com/listing/' || gen_random_uuid(), "
        ":o, CASE WHEN CAST(:winner AS boolean) THEN 'winner1' END, now(), "
        "CASE WHEN CAST(:extracted AS boolean) THEN now() END)",
        v=vid,
        o=outcome,
        winner=winner,
        extracted=extracted,
    )


def add_random_event(db: pg8000.native.Connection, vid: str, rnd: random.Random) -> None:
    add_event(
        db,
        vid,
        rnd.choice(OUTCOMES),
        extracted=rnd.random() < 0.7,
        winner=rnd.random() < 0.2,
    )


JOB_STATES = [
    "status = 'pending'",
    "status = 'processing', lease_expires_at = now() + interval '5 minutes'",
    "status = 'complete', completed_at = now() - interval '2 hours'",
    "status = 'complete', completed_at = now() - interval '3 days'",
    "status = 'failed', next_attempt_at = now() + interval '3 hours'",
    "status = 'failed', next_attempt_at = now() - interval '1 hour'",
    "status = 'failed', next_attempt_at = now() - interval '3 hours'",
    "status = 'failed', next_attempt_at = now() - interval '1 hour', error_kind = 'permanent'",
]

# Holds that end a moment after they are set: once that moment has passed, the derived table
# still records them (no queue change, no sweep), as when time passes between orchestrator runs.
ENDING_STATES = [
    "status = 'complete', completed_at = now() - interval '24 hours' + interval '0.2 seconds'",
    "status = 'failed', next_attempt_at = now() + interval '0.2 seconds'",
]


def set_job(db: pg8000.native.Connection, vid: str, assignments: str) -> None:
    db.run(
        f"UPDATE bat_extraction_queue SET {assignments} WHERE vehicle_id = CAST(:v AS uuid)",
        v=vid,
    )


def random_world(
    db: pg8000.native.Connection, rnd: random.Random, n: int, *, ending: bool = True
) -> list[str]:
    """Vehicles with every defect, events, absences and jobs in every state; with `ending`,
    some holds have ended by the time it returns but are not swept yet."""
    vids = [
        add_fine_vehicle(db, rnd) if rnd.random() < 0.25 else add_vehicle(db, rnd) for _ in range(n)
    ]
    states = JOB_STATES + (ENDING_STATES * 2 if ending else [])
    for vid in vids:
        for _ in range(rnd.choice([0, 0, 1, 2])):
            add_random_event(db, vid, rnd)
        if rnd.random() < 0.2:
            db.run(
                "INSERT INTO extraction_absences (vehicle_id, field) VALUES (CAST(:v AS uuid), :f)",
                v=vid,
                f=rnd.choice(["vin", "mileage", "exterior_color", "drivetrain"]),
            )
        if rnd.random() < 0.6:
            queue.enqueue(db, vid, "u", 75)
            set_job(db, vid, rnd.choice(states))
    if ending:
        time.sleep(0.3)
    return vids


def derived(
    db: pg8000.native.Connection, *, holds: bool = True
) -> tuple[list[list[Any]], list[list[Any]]]:
    candidates = db.run(
        "SELECT vehicle_id, vehicle_created_at, auction_end_date, wrong_status, needs_outcome, "
        f"missing_fields{', held_until' if holds else ''} FROM backfill_candidates "
        "ORDER BY vehicle_id"
    )
    retries = db.run(
        "SELECT vehicle_id, vehicle_created_at, next_attempt_at FROM backfill_retries "
        "ORDER BY vehicle_id"
    )
    return candidates, retries


def assert_derived_tables_agree_with_a_rebuild(
    db: pg8000.native.Connection, *, holds: bool = True
) -> None:
    stored = derived(db, holds=holds)
    db.run("SELECT rebuild_backfill_candidates()")
    assert derived(db, holds=holds) == stored


def trigger_calls(plan: list[list[Any]], trigger: str) -> int:
    for (line,) in plan:
        if line.startswith(f"Trigger {trigger}:"):
            return int(line.rsplit("calls=", 1)[1])
    return 0


# ------------------------------------------------------------------ same results as the definition


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_selector_returns_what_its_definition_selects(
    db: pg8000.native.Connection, seed: int
) -> None:
    rnd = random.Random(seed)
    random_world(db, rnd, 80)
    unswept = db.run("SELECT count(*) FROM backfill_candidates WHERE held_until <= now()")[0][0]
    assert unswept > 0  # the ended-but-unswept path is exercised
    assert_selector_agrees_with_the_reference(db)
    # after the sweep as well
    assert db.run("SELECT sweep_backfill_holds()")[0][0] == unswept
    assert_selector_agrees_with_the_reference(db, (1, 8, 200))
    # the retry_failed path with the room to itself: the vehicles with nothing wrong have failed
    # and are due (but for the permanent failures), every other one without a failed job waits
    db.run(
        "INSERT INTO bat_extraction_queue AS q (vehicle_id, bat_url, status, next_attempt_at) "
        "SELECT v.id, 'u', 'failed', now() - interval '1 minute' FROM vehicles v "
        "WHERE NOT EXISTS (SELECT 1 FROM backfill_candidates c WHERE c.vehicle_id = v.id) "
        "ON CONFLICT (vehicle_id) DO UPDATE SET status = 'failed', "
        "next_attempt_at = EXCLUDED.next_attempt_at WHERE q.error_kind IS DISTINCT FROM 'permanent'"
    )
    db.run(
        "INSERT INTO bat_extraction_queue AS q (vehicle_id, bat_url, status) "
        "SELECT c.vehicle_id, 'u', 'pending' FROM backfill_candidates c WHERE c.held_until IS NULL "
        "ON CONFLICT (vehicle_id) DO UPDATE SET status = 'pending' WHERE q.status <> 'failed'"
    )
    rows = selection(db, 200)
    retries = sum(row[1] == "retry_failed" for row in rows)
    assert retries >= 2
    # the other reasons first (due failed jobs of defective vehicles), then the retries, cut
    others = len(rows) - retries
    assert_selector_agrees_with_the_reference(db, (others, others + 1, others + 2, 200))


def test_failed_retries_come_oldest_vehicle_first(db: pg8000.native.Connection) -> None:
    rnd = random.Random(5)
    ages = [30, 10, 20, 40]
    vids = []
    for i, age in enumerate(ages):
        vid = add_vehicle(
            db,
            rnd,
            **FINE,
            vin=f"FINE{i}",
            bat_auction_url=f"https://bringatrailer.com/listing/f-{i}/",
            discovery_url=None,
        )
        add_event(db, vid, "sold", extracted=True)
        db.run(
            "UPDATE vehicles SET created_at = now() - CAST(:a AS int) * interval '1 day', "
            "auction_end_date = '2025-01-01' WHERE id = CAST(:v AS uuid)",
            a=age,
            v=vid,
        )
        queue.enqueue(db, vid, "u", 75)
        vids.append(vid)
    # failed longest ago is not what orders them: the oldest vehicle is
    for i, vid in enumerate(vids):
        set_job(db, vid, f"status = 'failed', next_attempt_at = now() - interval '{i + 1} hours'")
    by_age = [vid for _age, vid in sorted(zip(ages, vids, strict=True), reverse=True)]
    rows = selection(db, 10)
    assert [(r[0], r[1]) for r in rows] == [(vid, "retry_failed") for vid in by_age]
    # a vehicle that gets older moves up; one whose URL is not a BaT listing drops out, and so
    # does one whose failure is permanent
    db.run(
        "UPDATE vehicles SET created_at = now() - interval '100 days' WHERE id = CAST(:v AS uuid)",
        v=by_age[-1],
    )
    db.run(
        "UPDATE vehicles SET bat_auction_url = 'https://carsandbids.com/auctions/f/' "
        "WHERE id = CAST(:v AS uuid)",
        v=by_age[0],
    )
    set_job(db, by_age[2], "error_kind = 'permanent'")
    rows = selection(db, 10)
    assert [r[0] for r in rows] == [by_age[-1], by_age[1]]
    assert_selector_agrees_with_the_reference(db, (1, 10))


# ------------------------------------------------------------------ derived tables


def test_the_derived_tables_always_agree_with_a_rebuild(db: pg8000.native.Connection) -> None:
    rnd = random.Random(11)
    vids = random_world(db, rnd, 30, ending=False)
    # jobs move between every state, vehicles change the columns backfill_retries reads, jobs
    # and vehicles are deleted and a job is moved to another vehicle
    for step in range(200):
        vid = rnd.choice(vids)
        action = rnd.randrange(9)
        if action == 0:
            queue.enqueue(db, vid, "u", 75)
        elif action in (1, 2):
            set_job(db, vid, rnd.choice(JOB_STATES))
        elif action == 3:
            db.run(
                "UPDATE vehicles SET created_at = created_at - interval '1 day' "
                "WHERE id = CAST(:v AS uuid)",
                v=vid,
            )
        elif action == 4:
            db.run(
                "UPDATE vehicles SET bat_auction_url = :u WHERE id = CAST(:v AS uuid)",
                u=rnd.choice(
                    [
                        None,
                        " ",
                        f"https://bringatrailer.com/listing/n{step}/",
                        f"http://bringatrailer.com/listing/n{step}",
                        "https://carsandbids.com/auctions/n/",
                    ]
                ),
                v=vid,
            )
        elif action == 5:
            db.run("DELETE FROM bat_extraction_queue WHERE vehicle_id = CAST(:v AS uuid)", v=vid)
        elif action == 6:
            free = db.run(
                "SELECT v.id::text FROM vehicles v WHERE NOT EXISTS "
                "(SELECT 1 FROM bat_extraction_queue q WHERE q.vehicle_id = v.id) LIMIT 1"
            )
            if free:
                db.run(
                    "UPDATE bat_extraction_queue SET vehicle_id = CAST(:new AS uuid) "
                    "WHERE vehicle_id = CAST(:old AS uuid)",
                    new=free[0][0],
                    old=vid,
                )
        elif action == 7:
            add_random_event(db, vid, rnd)
        elif step % 50 == 8:
            db.run("DELETE FROM auction_events WHERE vehicle_id = CAST(:v AS uuid)", v=vid)
            db.run("DELETE FROM vehicles WHERE id = CAST(:v AS uuid)", v=vid)
            vids.remove(vid)
            vids.append(add_vehicle(db, rnd))
        if step % 40 == 39:
            assert_derived_tables_agree_with_a_rebuild(db)
            assert_selector_agrees_with_the_reference(db, (5, 200))
    # bulk statements take the set-based paths
    db.run(
        "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, status, next_attempt_at) "
        "SELECT v.id, 'u', 'failed', now() - interval '1 minute' FROM vehicles v "
        "WHERE NOT EXISTS (SELECT 1 FROM bat_extraction_queue q WHERE q.vehicle_id = v.id)"
    )
    db.run("UPDATE vehicles SET created_at = created_at - interval '1 hour' WHERE random() < 0.5")
    assert db.run("SELECT count(*) FROM backfill_retries")[0][0] > 3
    assert_derived_tables_agree_with_a_rebuild(db)
    assert_selector_agrees_with_the_reference(db, (5, 200))
    db.run("UPDATE bat_extraction_queue SET error_kind = 'permanent' WHERE random() < 0.3")
    assert_derived_tables_agree_with_a_rebuild(db)
    db.run("DELETE FROM bat_extraction_queue WHERE status = 'failed' AND random() < 0.5")
    assert_derived_tables_agree_with_a_rebuild(db)
    assert_selector_agrees_with_the_reference(db, (5, 200))
    db.run("TRUNCATE bat_extraction_queue")
    assert derived(db)[1] == []
    assert_derived_tables_agree_with_a_rebuild(db)
    assert_selector_agrees_with_the_reference(db, (5, 200))


def test_concurrent_queue_and_vehicle_changes_leave_the_derived_tables_right(
    db_url: str,
) -> None:
    setup = connect(db_url)
    rnd = random.Random(3)
    try:
        vids = [
            add_vehicle(setup, rnd, bat_auction_url=f"https://bringatrailer.com/listing/c-{i}/")
            for i in range(6)
        ]
        for vid in vids:
            queue.enqueue(setup, vid, "u", 75)
    finally:
        setup.close()
    errors: list[BaseException] = []

    def jobs() -> None:
        conn = connect(db_url)
        r = random.Random(1)
        try:
            for _ in range(150):
                vid = r.choice(vids)
                job = queue.claim_job(conn, queue.enqueue(conn, vid, "u", 75), "w", 60, force=True)
                if job is None:
                    continue
                if r.random() < 0.7:
                    queue.complete(conn, job)
                else:
                    set_job(
                        conn, vid, "status = 'failed', next_attempt_at = now() + interval '1 hour'"
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            conn.close()

    def facts() -> None:
        conn = connect(db_url)
        r = random.Random(2)
        try:
            for step in range(150):
                vid = r.choice(vids)
                if step % 3 == 0:
                    conn.run(
                        "DELETE FROM auction_events WHERE vehicle_id = CAST(:v AS uuid)", v=vid
                    )
                elif step % 3 == 1:
                    add_event(
                        conn,
                        vid,
                        r.choice(["sold", "reserve_not_met", "pending"]),
                        extracted=r.random() < 0.5,
                    )
                else:
                    conn.run(
                        "UPDATE vehicles SET vin = :vin, created_at = created_at - interval '1 second' "
                        "WHERE id = CAST(:v AS uuid)",
                        vin=r.choice([None, f"V{vids.index(vid)}"]),
                        v=vid,
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=jobs), threading.Thread(target=facts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check = connect(db_url)
    try:
        assert_derived_tables_agree_with_a_rebuild(check)
    finally:
        check.close()


# ------------------------------------------------------------------ cost


def test_backfill_hold_is_inlined(db: pg8000.native.Connection) -> None:
    assert db.run("SELECT provolatile FROM pg_proc WHERE proname = 'backfill_hold'") == [["s"]]
    plan = "\n".join(
        line
        for (line,) in db.run(
            "EXPLAIN VERBOSE SELECT backfill_hold(q.status, q.completed_at, q.next_attempt_at, "
            "q.error_kind) FROM bat_extraction_queue q"
        )
    )
    assert "CASE" in plan and "backfill_hold" not in plan


def test_claims_and_dispatch_marks_do_not_fire_the_hold_trigger(
    db: pg8000.native.Connection,
) -> None:
    rnd = random.Random(9)
    vid = add_vehicle(db, rnd, vin=None, bat_auction_url="https://bringatrailer.com/listing/h/")
    job_id = queue.enqueue(db, vid, "u", 75)
    trigger = "backfill_candidates_after_queue_update"

    def explained(name: str, **params: Any) -> list[list[Any]]:
        rows: list[list[Any]] = db.run("EXPLAIN (ANALYZE, COSTS OFF) " + query(name), **params)
        return rows

    (selected,) = queue.select_for_dispatch(db, 10, 600)
    plan = explained(
        "mark_dispatched",
        now=None,
        job_ids=[selected.id],
        lease_generations=[selected.lease_generation],
        priorities=[selected.priority],
        redispatch_after_seconds=600,
    )
    assert trigger_calls(plan, trigger) == 0
    plan = explained("claim_next", now=None, worker="w", lease_seconds=60)
    assert trigger_calls(plan, trigger) == 0
    ((generation,),) = db.run(
        "SELECT lease_generation FROM bat_extraction_queue WHERE job_no = :id", id=job_id
    )
    plan = explained(
        "fail_job",
        now=None,
        job_id=job_id,
        lease_generation=generation,
        status="pending",
        delay_seconds=0,
        error="x",
        error_kind="retryable",
    )
    assert trigger_calls(plan, trigger) == 0  # processing -> pending: held for good either way
    assert (
        db.run(
            "SELECT held_until FROM backfill_candidates WHERE vehicle_id = CAST(:v AS uuid)", v=vid
        )[0][0]
        is not None
    )
    job = queue.claim_next(db, "w", 60)
    assert job is not None
    plan = explained("complete_job", now=None, job_id=job.id, lease_generation=job.lease_generation)
    assert trigger_calls(plan, trigger) == 1
    ((held, day),) = db.run(
        "SELECT c.held_until, q.completed_at + interval '24 hours' FROM backfill_candidates c "
        "JOIN bat_extraction_queue q USING (vehicle_id) WHERE c.vehicle_id = CAST(:v AS uuid)",
        v=vid,
    )
    assert held == day


# ------------------------------------------------------------------ adoption


# The catalog objects the migrations make, compared between two databases.
CATALOG = """
SELECT 'trigger', t.tgrelid::regclass::text || ' ' || t.tgname, pg_get_triggerdef(t.oid)
  FROM pg_trigger t WHERE NOT t.tgisinternal
UNION ALL
SELECT 'index', i.relname, pg_get_indexdef(i.oid)
  FROM pg_class i WHERE i.relkind = 'i' AND i.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'function', p.oid::regprocedure::text, md5(pg_get_functiondef(p.oid))
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'column', c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND NOT a.attisdropped
ORDER BY 1, 2
"""


def fill_original_database(conn: pg8000.native.Connection, rnd: random.Random, n: int) -> None:
    """Rows as the original system wrote them, in its columns only: events it wrote (nothing
    extracted by bat-backfill), queue rows with uuid ids, NULL next_attempt_at, a worker that
    died while processing, a pending row stuck at its attempt limit."""
    vids = []
    for _ in range(n):
        values = vehicle_columns(rnd)
        names = ", ".join(values)
        params = ", ".join(f":{name}" for name in values)
        ((vid,),) = conn.run(
            f"INSERT INTO vehicles ({names}, created_at, auction_end_date) "
            f"VALUES ({params}, now() - CAST(:age AS int) * interval '1 day', :end) "
            "RETURNING id::text",
            age=rnd.randrange(1, 400),
            end=rnd.choice([None, "2024-08-02", "2025-12-24T18:14:07+00:00", "2999-01-01", "?"]),
            **values,
        )
        vids.append(str(vid))
    for vid in vids:
        for i in range(rnd.choice([0, 1, 1, 2])):
            conn.run(
                "INSERT INTO auction_events (vehicle_id, source, source_url, outcome, high_bid, "
                "winning_bidder) VALUES (CAST(:v AS uuid), 'bat', :u, :o, 89500, :w)",
                v=vid,
                u=f"https://bringatrailer.com/listing/old-{vid}-{i}",
                o=rnd.choice(OUTCOMES),
                w=rnd.choice([None, None, "", "winner1"]),
            )
        if rnd.random() < 0.6:
            conn.run(
                "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, status, priority, attempts, "
                "error_message, completed_at, next_attempt_at, locked_at, locked_by) "
                "SELECT CAST(:v AS uuid), 'https://bringatrailer.com/listing/old', s.status, 75, "
                "s.attempts, s.error, s.completed_at, s.next_attempt_at, s.locked_at, s.locked_by "
                "FROM (VALUES "
                "('pending', 3, 'HTTP 500: Missing vehicle_id', NULL::timestamptz, NULL::timestamptz,"
                " NULL::timestamptz, NULL), "
                "('processing', 1, NULL, NULL, NULL, now() - interval '2 days', 'worker-gone'), "
                "('complete', 1, NULL, now() - interval '300 days', NULL, NULL, NULL), "
                "('complete', 1, NULL, now() - interval '1 hour', NULL, NULL, NULL), "
                "('complete', 1, NULL, NULL, NULL, NULL, NULL), "
                "('failed', 3, 'HTTP 404', NULL, NULL, NULL, NULL), "
                "('failed', 3, 'HTTP 503', NULL, now() + interval '1 hour', NULL, NULL)"
                ") AS s (status, attempts, error, completed_at, next_attempt_at, locked_at, locked_by) "
                "OFFSET CAST(:pick AS int) LIMIT 1",
                v=vid,
                pick=rnd.randrange(7),
            )


def test_an_adopted_original_database_selects_like_a_fresh_one(
    empty_db_url: str, db: pg8000.native.Connection
) -> None:
    """The original system's tables (0001 is their shape) with its rows, then every migration:
    the selector built over the existing rows selects what its definition selects, keeps
    selecting it as bat-backfill works, and the schema is the fresh one's."""
    conn = connect(empty_db_url)
    try:
        conn.run((MIGRATIONS_DIR / "0001_original_tables.sql").read_text("utf-8"))
        fill_original_database(conn, random.Random(4), 120)
        assert migrate(conn) == [m.name for m in find_migrations()]
        assert migrate(conn) == []
        # the original system's queue rows are numbered for bat-backfill
        ((unnumbered, numbers, jobs),) = conn.run(
            "SELECT count(*) FILTER (WHERE job_no IS NULL), count(DISTINCT job_no), count(*) "
            "FROM bat_extraction_queue"
        )
        assert (unnumbered, numbers) == (0, jobs) and jobs > 0
        assert_derived_tables_agree_with_a_rebuild(conn)
        assert_selector_agrees_with_the_reference(conn)
        picked = selection(conn, 200)
        assert {row[1].split(":")[0] for row in picked} >= {
            "wrong_sale_status",
            "missing_outcome",
            "missing_fields",
        }
        # bat-backfill at work: jobs claimed and finished, events extracted, new rows
        rnd = random.Random(8)
        vids = [str(r[0]) for r in conn.run("SELECT id::text FROM vehicles ORDER BY id")]
        for _ in range(3):
            conn.run("SELECT auto_queue_bat_backfills(20, 75)")
            for _ in range(15):
                job = queue.claim_next(conn, "w", 60)
                if job is None:
                    break
                add_random_event(conn, job.vehicle_id, rnd)
                queue.complete(conn, job)
            for vid in rnd.sample(vids, 10):
                add_random_event(conn, vid, rnd)
            add_vehicle(conn, rnd)
        assert_derived_tables_agree_with_a_rebuild(conn)
        assert_selector_agrees_with_the_reference(conn)
        adopted = conn.run(CATALOG)
    finally:
        conn.close()
    assert adopted == db.run(CATALOG)
