"""Migration 0004 (selector speed): the same selections as 0003's selector, derived tables that
agree with a rebuild, a queue trigger that claims do not fire, and an upgrade that matches a
fresh database."""

from __future__ import annotations

import random
import shutil
import threading
from pathlib import Path
from typing import Any

import pg8000.native
import pytest

from bat_backfill.db import queue
from bat_backfill.db.connect import connect
from bat_backfill.db.migrate import MIGRATIONS_DIR, find_migrations, migrate
from bat_backfill.db.queries import query

_SELECTOR_0003 = "CREATE FUNCTION queue_bat_backfill_vehicles"


def install_0003_selector(db: pg8000.native.Connection) -> None:
    """0003's queue_bat_backfill_vehicles, verbatim, as pg_temp.selector_0003: the reference."""
    text = (MIGRATIONS_DIR / "0003_backfill_selector.sql").read_text("utf-8")
    start = text.index(_SELECTOR_0003)
    end = text.index("$fn$;", start) + len("$fn$;")
    db.run(text[start:end].replace(_SELECTOR_0003, "CREATE FUNCTION pg_temp.selector_0003", 1))


def selection(db: pg8000.native.Connection, function: str, limit: int) -> list[list[Any]]:
    rows: list[list[Any]] = db.run(
        f"SELECT vehicle_id::text, reason, bat_url FROM {function}(:n, 75)", n=limit
    )
    return rows


def add_vehicle(db: pg8000.native.Connection, rnd: random.Random, **columns: Any) -> str:
    values: dict[str, Any] = {
        "vin": rnd.choice([None, "", "WP0ZZZ91ZKS123456"]),
        "mileage": rnd.choice([None, 58000]),
        "color": rnd.choice([None, "Red", "Red"]),
        "transmission": rnd.choice([None, "Manual", "Manual"]),
        "drivetrain": rnd.choice([None, "RWD", "RWD"]),
        "sale_status": rnd.choice([None, "sold", "bid_to", "live"]),
        "sale_price": rnd.choice([None, 89500]),
        "high_bid": rnd.choice([None, 89500]),
        "bat_buyer": rnd.choice([None, "buyer1"]),
        "bat_auction_url": rnd.choice(
            [None, "  "] + [f"https://bringatrailer.com/listing/car-{rnd.random()}/"] * 8
        ),
    }
    values.update(columns)
    names = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    # few distinct ages, so equal created_at values (ordered by id) occur
    rows = db.run(
        f"INSERT INTO vehicles ({names}, created_at, auction_end_date) "
        f"VALUES ({params}, now() - CAST(:age AS int) * interval '1 day', "
        "now() - CAST(:age AS int) * interval '1 day' + CAST(:end AS int) * interval '1 day') "
        "RETURNING id::text",
        age=rnd.randrange(1, 40),
        end=rnd.choice([7, 7, 60]),
        **values,
    )
    return str(rows[0][0])


def add_event(db: pg8000.native.Connection, vid: str, outcome: str | None) -> None:
    db.run(
        "INSERT INTO auction_events (vehicle_id, listing_url, outcome, ended_at) "
        "VALUES (CAST(:v AS uuid), 'https://bringatrailer.com/listing/' || gen_random_uuid(), "
        ":o, now())",
        v=vid,
        o=outcome,
    )


JOB_STATES = [
    "status = 'pending'",
    "status = 'processing', lease_expires_at = now() + interval '5 minutes'",
    "status = 'complete', completed_at = now() - interval '2 hours'",
    "status = 'complete', completed_at = now() - interval '3 days'",
    "status = 'failed', next_attempt_at = now() + interval '3 hours'",
    "status = 'failed', next_attempt_at = now() - interval '1 hour'",
    "status = 'failed', next_attempt_at = now() - interval '3 hours'",
]


def set_job(db: pg8000.native.Connection, vid: str, assignments: str) -> None:
    db.run(
        f"UPDATE bat_extraction_queue SET {assignments} WHERE vehicle_id = CAST(:v AS uuid)",
        v=vid,
    )


def random_world(
    db: pg8000.native.Connection, rnd: random.Random, n: int, *, expire: bool = True
) -> list[str]:
    """Vehicles with every defect, events, absences and jobs in every state; with `expire`,
    some recorded holds ended but not swept yet (as if time passed: a rebuild, judging now,
    would hold those vehicles again)."""
    vids = [add_vehicle(db, rnd) for _ in range(n)]
    for vid in vids:
        for _ in range(rnd.choice([0, 0, 1, 2])):
            add_event(db, vid, rnd.choice([None, "sold", "bid_to", "no_sale", "live"]))
        if rnd.random() < 0.2:
            db.run(
                "INSERT INTO extraction_absences (vehicle_id, field) VALUES (CAST(:v AS uuid), :f)",
                v=vid,
                f=rnd.choice(["vin", "mileage", "exterior_color", "drivetrain"]),
            )
        if rnd.random() < 0.6:
            queue.enqueue(db, vid, "u", 75)
            set_job(db, vid, rnd.choice(JOB_STATES))
    if not expire:
        return vids
    # time passes: some recorded holds end while nothing changes in the queue
    db.run(
        "UPDATE backfill_candidates SET held_until = now() - interval '1 second' "
        "WHERE held_until IS NOT NULL AND held_until <> 'infinity' AND random() < 0.5"
    )
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


# ------------------------------------------------------------------ same results as 0003


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_selector_returns_what_the_0003_selector_returned(
    db: pg8000.native.Connection, seed: int
) -> None:
    rnd = random.Random(seed)
    random_world(db, rnd, 80)
    install_0003_selector(db)
    for limit in (1, 2, 3, 5, 8, 13, 21, 34, 55, 200):
        assert selection(db, "queue_bat_backfill_vehicles", limit) == selection(
            db, "pg_temp.selector_0003", limit
        ), limit
    # the retry_failed path: every candidate held, only failed jobs left
    db.run("START TRANSACTION")
    try:
        db.run("UPDATE backfill_candidates SET held_until = 'infinity' WHERE held_until IS NULL")
        for limit in (1, 3, 8, 200):
            new = selection(db, "queue_bat_backfill_vehicles", limit)
            assert new == selection(db, "pg_temp.selector_0003", limit), limit
    finally:
        db.run("ROLLBACK")
    # after the sweep as well
    db.run("SELECT sweep_backfill_holds()")
    for limit in (1, 8, 200):
        assert selection(db, "queue_bat_backfill_vehicles", limit) == selection(
            db, "pg_temp.selector_0003", limit
        ), limit


def test_failed_retries_come_oldest_vehicle_first(db: pg8000.native.Connection) -> None:
    rnd = random.Random(5)
    fine = {
        "vin": "V",
        "mileage": 1,
        "color": "Red",
        "transmission": "M",
        "drivetrain": "RWD",
        "sale_status": "sold",
        "sale_price": 1,
        "high_bid": 1,
        "bat_buyer": "b",
        "bat_auction_url": "https://bringatrailer.com/listing/f/",
    }
    ages = [30, 10, 20, 40]
    vids = []
    for age in ages:
        vid = add_vehicle(db, rnd, **fine)
        add_event(db, vid, "sold")
        db.run(
            "UPDATE vehicles SET created_at = now() - CAST(:a AS int) * interval '1 day' "
            "WHERE id = CAST(:v AS uuid)",
            a=age,
            v=vid,
        )
        queue.enqueue(db, vid, "u", 75)
        vids.append(vid)
    # failed longest ago is not what orders them: the oldest vehicle is
    for i, vid in enumerate(vids):
        set_job(db, vid, f"status = 'failed', next_attempt_at = now() - interval '{i + 1} hours'")
    by_age = [vid for _age, vid in sorted(zip(ages, vids, strict=True), reverse=True)]
    rows = selection(db, "queue_bat_backfill_vehicles", 10)
    assert [(r[0], r[1]) for r in rows] == [(vid, "retry_failed") for vid in by_age]
    # a vehicle that gets older moves up; one that loses its URL drops out
    db.run(
        "UPDATE vehicles SET created_at = now() - interval '100 days' WHERE id = CAST(:v AS uuid)",
        v=by_age[-1],
    )
    db.run("UPDATE vehicles SET bat_auction_url = NULL WHERE id = CAST(:v AS uuid)", v=by_age[0])
    rows = selection(db, "queue_bat_backfill_vehicles", 10)
    assert [r[0] for r in rows] == [by_age[-1], by_age[1], by_age[2]]


# ------------------------------------------------------------------ derived tables


def test_the_derived_tables_always_agree_with_a_rebuild(db: pg8000.native.Connection) -> None:
    rnd = random.Random(11)
    vids = random_world(db, rnd, 30, expire=False)
    # jobs move between every state, vehicles change the columns backfill_retries reads, jobs
    # and vehicles are deleted and a job is moved to another vehicle
    for step in range(200):
        vid = rnd.choice(vids)
        action = rnd.randrange(8)
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
                u=rnd.choice([None, " ", f"https://bringatrailer.com/listing/n{step}/"]),
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
        elif step % 50 == 7:
            db.run("DELETE FROM vehicles WHERE id = CAST(:v AS uuid)", v=vid)
            vids.remove(vid)
            vids.append(add_vehicle(db, rnd))
        if step % 40 == 39:
            assert_derived_tables_agree_with_a_rebuild(db)
    # bulk statements take the set-based paths
    db.run(
        "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, status, next_attempt_at) "
        "SELECT v.id, 'u', 'failed', now() - interval '1 minute' FROM vehicles v "
        "WHERE NOT EXISTS (SELECT 1 FROM bat_extraction_queue q WHERE q.vehicle_id = v.id)"
    )
    db.run("UPDATE vehicles SET created_at = created_at - interval '1 hour' WHERE random() < 0.5")
    assert db.run("SELECT count(*) FROM backfill_retries")[0][0] > 3
    assert_derived_tables_agree_with_a_rebuild(db)
    db.run("DELETE FROM bat_extraction_queue WHERE status = 'failed' AND random() < 0.5")
    assert_derived_tables_agree_with_a_rebuild(db)
    db.run("TRUNCATE bat_extraction_queue")
    assert derived(db)[1] == []
    assert_derived_tables_agree_with_a_rebuild(db)


def test_concurrent_queue_and_vehicle_changes_leave_the_derived_tables_right(
    db_url: str,
) -> None:
    setup = connect(db_url)
    rnd = random.Random(3)
    try:
        vids = [add_vehicle(setup, rnd, bat_auction_url=f"https://x/{i}/") for i in range(6)]
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
                    add_event(conn, vid, r.choice(["sold", "bid_to", None]))
                else:
                    conn.run(
                        "UPDATE vehicles SET vin = :vin, created_at = created_at - interval '1 second' "
                        "WHERE id = CAST(:v AS uuid)",
                        vin=r.choice([None, "V"]),
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
            "EXPLAIN VERBOSE SELECT backfill_hold(q.status, q.completed_at, q.next_attempt_at) "
            "FROM bat_extraction_queue q"
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

    plan = explained("select_for_dispatch", now=None, limit=10, redispatch_after_seconds=600)
    assert trigger_calls(plan, trigger) == 0
    plan = explained("claim_next", now=None, worker="w", lease_seconds=60)
    assert trigger_calls(plan, trigger) == 0
    ((generation,),) = db.run(
        "SELECT lease_generation FROM bat_extraction_queue WHERE id = :id", id=job_id
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


# ------------------------------------------------------------------ upgrade


def test_upgrading_a_0003_database_matches_a_fresh_one(
    empty_db_url: str, db: pg8000.native.Connection, tmp_path: Path
) -> None:
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:4]) <= 3:
            shutil.copy(path, tmp_path / path.name)
    conn = connect(empty_db_url)
    try:
        assert migrate(conn, tmp_path) == [m.name for m in find_migrations(tmp_path)]
        random_world(conn, random.Random(4), 60)
        before = {n: selection(conn, "queue_bat_backfill_vehicles", n) for n in (5, 200)}
        conn.run("START TRANSACTION")
        conn.run("UPDATE backfill_candidates SET held_until = 'infinity' WHERE held_until IS NULL")
        retries_before = selection(conn, "queue_bat_backfill_vehicles", 200)
        conn.run("ROLLBACK")
        assert any(r[1] == "retry_failed" for r in retries_before)

        assert migrate(conn) == [m.name for m in find_migrations() if m.version > 3]
        assert migrate(conn) == []
        assert {n: selection(conn, "queue_bat_backfill_vehicles", n) for n in (5, 200)} == before
        conn.run("START TRANSACTION")
        conn.run("UPDATE backfill_candidates SET held_until = 'infinity' WHERE held_until IS NULL")
        assert selection(conn, "queue_bat_backfill_vehicles", 200) == retries_before
        conn.run("ROLLBACK")
        # the holds ended by hand above would be judged again by a rebuild
        assert_derived_tables_agree_with_a_rebuild(conn, holds=False)
        triggers = conn.run(
            "SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "WHERE tgrelid = 'bat_extraction_queue'::regclass AND NOT tgisinternal ORDER BY 1"
        )
    finally:
        conn.close()
    # the fresh database (all migrations at once) has the same queue triggers
    assert (
        db.run(
            "SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "WHERE tgrelid = 'bat_extraction_queue'::regclass AND NOT tgisinternal ORDER BY 1"
        )
        == triggers
    )
