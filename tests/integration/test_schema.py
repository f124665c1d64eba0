"""Migrations, the schema contract, named queries and the seed's hand-written SQL on real Postgres."""

from __future__ import annotations

import threading
from pathlib import Path

import pg8000.native
import pytest

from bat_backfill.db import queue
from bat_backfill.db.connect import connect
from bat_backfill.db.migrate import (
    ORIGINAL_COLUMNS,
    MigrationError,
    find_migrations,
    incompatibilities,
    migrate,
)
from bat_backfill.db.queries import (
    QueryFileError,
    UnknownQueryError,
    all_queries,
    load_queries,
    parse_queries,
    query,
)
from bat_backfill.models import JobStatus
from tests.seed import SEED_NEXT_BACKFILLS, SEED_PROGRESS_TODAY, SEED_QUEUE

# Every column of the original system's three tables (its names: other programs read them) plus
# the ones bat-backfill adds, and bat-backfill's own tables.
CONTRACT_COLUMNS = {
    "vehicles": """id year make model trim body_style vin mileage color interior_color
        transmission drivetrain engine_size bat_auction_url discovery_url listing_title
        sale_price asking_price high_bid winning_bid bid_count auction_outcome sale_status
        reserve_status auction_end_date sale_date bat_seller bat_buyer bat_location
        bat_lot_number bat_bids bat_comments bat_views bat_watchers origin_metadata description
        created_at updated_at
        mileage_unit image_urls""",
    "auction_events": """id vehicle_id source source_url lot_number auction_end_date outcome
        high_bid winning_bid winning_bidder seller_name total_bids page_views watchers
        comments_count raw_data created_at updated_at
        currency snapshot_key extracted_at""",
    "bat_extraction_queue": """id vehicle_id bat_url status priority error_message attempts
        created_at updated_at completed_at next_attempt_at locked_at locked_by last_attempt_at
        job_no reason dispatched_at lease_expires_at lease_generation error_kind
        attempts_carried""",
    "bat_comments": """comment_id vehicle_id listing_url kind author is_seller posted_at body
        bid_amount likes parent_id first_seen_at""",
    "vehicle_audit": """id vehicle_id field old_value new_value action source_url snapshot_key
        job_id changed_at""",
    "extraction_absences": "vehicle_id field listing_url reason recorded_at",
    "orchestrator_runs": "id started_at finished_at status steps queue_depths error",
}


def add_vehicle(
    db: pg8000.native.Connection, url: str = "https://bringatrailer.com/listing/a/"
) -> str:
    rows = db.run(
        "INSERT INTO vehicles (year, make, model, bat_auction_url) "
        "VALUES (1989, 'Porsche', '911', :url) RETURNING id::text",
        url=url,
    )
    return str(rows[0][0])


def seed_queue(db: pg8000.native.Connection, vehicle_id: str, url: str) -> None:
    db.run(SEED_QUEUE.format(vehicle_id=vehicle_id, url=url))


def queue_row(db: pg8000.native.Connection, vehicle_id: str) -> dict[str, object]:
    rows = db.run(
        "SELECT * FROM bat_extraction_queue WHERE vehicle_id = CAST(:v AS uuid)", v=vehicle_id
    )
    names = [c["name"] for c in db.columns]
    return dict(zip(names, rows[0], strict=True))


# ------------------------------------------------------------------ migrations


def test_migrate_twice_applies_nothing_the_second_time(db: pg8000.native.Connection) -> None:
    names = [m.name for m in find_migrations()]
    recorded = [row[0] for row in db.run("SELECT name FROM schema_migrations ORDER BY version")]
    assert recorded == names
    assert migrate(db) == []
    assert migrate(db) == []


def test_migrate_applies_every_file_in_order_once(empty_db_url: str) -> None:
    conn = connect(empty_db_url)
    try:
        assert migrate(conn) == [m.name for m in find_migrations()]
        assert migrate(conn) == []
    finally:
        conn.close()


def test_two_concurrent_migrators_apply_each_migration_once(empty_db_url: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        conn = connect(empty_db_url)
        try:
            start.wait()
            results.append(migrate(conn))
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
    assert sorted(results, key=len) == [[], [m.name for m in find_migrations()]]


def test_a_failing_migration_is_rolled_back_and_not_recorded(
    empty_db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int);\nSELECT no_such_column;")
    conn = connect(empty_db_url)
    try:
        with pytest.raises(MigrationError, match="0002_bad"):
            migrate(conn, tmp_path)
        assert [r[0] for r in conn.run("SELECT name FROM schema_migrations")] == ["0001_good"]
        assert conn.run("SELECT to_regclass('half') IS NULL")[0][0] is True
        # the lock was released: a fixed file applies
        (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int);")
        assert migrate(conn, tmp_path) == ["0002_bad"]
    finally:
        conn.close()


def test_migration_files_must_be_numbered(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        find_migrations(tmp_path)
    (tmp_path / "schema.sql").unlink()
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="share a version"):
        find_migrations(tmp_path)


# ------------------------------------------------------------------ schema contract


@pytest.mark.parametrize("table", sorted(CONTRACT_COLUMNS))
def test_tables_have_the_contract_columns(db: pg8000.native.Connection, table: str) -> None:
    rows = db.run(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = :t",
        t=table,
    )
    columns = {name: kind for name, kind in rows}
    assert set(CONTRACT_COLUMNS[table].split()) <= set(columns)
    for name, kind in columns.items():
        if name.endswith("_at"):
            assert kind == "timestamp with time zone", name


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        ("INSERT INTO vehicles (sale_status) VALUES ('sold_maybe')", "sale_status"),
        ("INSERT INTO vehicles (mileage_unit) VALUES ('furlongs')", "mileage_unit"),
        ("INSERT INTO vehicles (auction_outcome) VALUES ('bid_to')", "auction_outcome"),
        ("INSERT INTO vehicles (reserve_status) VALUES ('maybe')", "reserve_status"),
        (
            "INSERT INTO auction_events (source, outcome) VALUES ('bat', 'withdrawn')",
            "outcome",
        ),
        ("INSERT INTO auction_events (outcome) VALUES ('sold')", "source"),
        (
            "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, status) "
            "VALUES (gen_random_uuid(), 'u', 'done')",
            "status",
        ),
        (
            "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, error_kind) "
            "VALUES (gen_random_uuid(), 'u', 'fatal')",
            "error_kind",
        ),
    ],
)
def test_check_constraints_reject_unknown_states(
    db: pg8000.native.Connection, sql: str, constraint: str
) -> None:
    with pytest.raises(pg8000.native.DatabaseError, match=constraint):
        db.run(sql)


def test_a_vin_belongs_to_one_vehicle_row(db: pg8000.native.Connection) -> None:
    # the original system's unique index on vehicles.vin; rows without a VIN are not bound by it
    db.run("INSERT INTO vehicles (vin) VALUES ('WP0AA29829U760958'), (NULL), (NULL)")
    with pytest.raises(pg8000.native.DatabaseError, match="vehicles_vin_unique_index"):
        db.run("INSERT INTO vehicles (vin) VALUES ('WP0AA29829U760958')")
    assert db.run("SELECT count(*), count(vin) FROM vehicles") == [[3, 1]]


def test_deleting_a_vehicle_removes_what_hangs_off_it(db: pg8000.native.Connection) -> None:
    vid = add_vehicle(db)
    queue.enqueue(db, vid, "u", 75)
    db.run(
        "INSERT INTO bat_comments (comment_id, vehicle_id, listing_url, body) "
        "VALUES (1, CAST(:v AS uuid), 'u', 'nice')",
        v=vid,
    )
    db.run(
        "INSERT INTO vehicle_audit (vehicle_id, field, action) VALUES (CAST(:v AS uuid), 'vin', 'fill')",
        v=vid,
    )
    db.run(
        "INSERT INTO extraction_absences (vehicle_id, field) VALUES (CAST(:v AS uuid), 'vin')",
        v=vid,
    )
    tables = (
        "bat_extraction_queue",
        "backfill_candidates",
        "bat_comments",
        "vehicle_audit",
        "extraction_absences",
    )
    assert all(db.run(f"SELECT count(*) FROM {table}")[0][0] == 1 for table in tables)
    db.run("DELETE FROM vehicles WHERE id = CAST(:v AS uuid)", v=vid)
    for table in tables:
        assert db.run(f"SELECT count(*) FROM {table}")[0][0] == 0, table


def test_the_original_event_foreign_key_still_guards_a_vehicle_with_events(
    db: pg8000.native.Connection,
) -> None:
    # auction_events.vehicle_id keeps the original system's foreign key (no cascade): its
    # events are other programs' records, never deleted behind their backs.
    vid = add_vehicle(db)
    db.run(
        "INSERT INTO auction_events (vehicle_id, source, source_url, outcome) "
        "VALUES (CAST(:v AS uuid), 'bat', 'u', 'sold')",
        v=vid,
    )
    queue.enqueue(db, vid, "u", 75)
    with pytest.raises(pg8000.native.DatabaseError, match="foreign key"):
        db.run("DELETE FROM vehicles WHERE id = CAST(:v AS uuid)", v=vid)
    for table in ("vehicles", "auction_events", "bat_extraction_queue"):
        assert db.run(f"SELECT count(*) FROM {table}")[0][0] == 1, table


def test_the_columns_migrate_checks_are_the_columns_the_migrations_make(
    db: pg8000.native.Connection,
) -> None:
    # db.migrate.ORIGINAL_COLUMNS is what `incompatibilities` holds an adopted database to.
    for table, columns in ORIGINAL_COLUMNS.items():
        present = {
            row[0]
            for row in db.run(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = :t",
                t=table,
            )
        }
        assert set(columns) <= present, table
        assert set(columns) <= set(CONTRACT_COLUMNS[table].split()), table
    assert incompatibilities(db) == []


# ------------------------------------------------------------------ the seed's statements


def test_seed_statements_run_verbatim_and_mean_what_they_say(db: pg8000.native.Connection) -> None:
    url = "https://bringatrailer.com/listing/1989-porsche-911/"
    vid = add_vehicle(db, url)
    seed_queue(db, vid, url)
    seed_queue(db, vid, url)  # running it twice is harmless

    rows = db.run(SEED_NEXT_BACKFILLS)
    names = [c["name"] for c in db.columns]
    assert len(rows) == 1
    row = dict(zip(names, rows[0], strict=True))
    assert str(row["vehicle_id"]) == vid
    assert (row["status"], row["priority"], row["attempts"]) == ("pending", 75, 0)
    assert (row["year"], row["make"], row["model"], row["bat_auction_url"]) == (
        1989,
        "Porsche",
        "911",
        url,
    )
    assert db.run(SEED_PROGRESS_TODAY) == [[1, 0, 0, 0]]
    job = queue.claim_next(db, "w", 60)
    assert job is not None
    assert db.run(SEED_PROGRESS_TODAY) == [[0, 1, 0, 0]]
    assert queue.complete(db, job)
    assert db.run(SEED_PROGRESS_TODAY) == [[0, 0, 1, 0]]


def test_a_row_queued_by_hand_is_claimed_and_dispatched_next(db: pg8000.native.Connection) -> None:
    vid = add_vehicle(db)
    seed_queue(db, vid, "https://bringatrailer.com/listing/a/")
    dispatched = queue.select_for_dispatch(db, 10, 600)
    assert [j.vehicle_id for j in dispatched] == [vid]
    job = queue.claim_next(db, "worker-1", 60)
    assert job is not None
    assert job.vehicle_id == vid
    assert job.status is JobStatus.PROCESSING


def test_priority_100_is_claimed_before_75(db: pg8000.native.Connection) -> None:
    backfill = add_vehicle(db, "https://bringatrailer.com/listing/old/")
    seed_queue(db, backfill, "https://bringatrailer.com/listing/old/")
    new = add_vehicle(db, "https://bringatrailer.com/listing/new/")
    queue.enqueue(db, new, "https://bringatrailer.com/listing/new/", 100)
    first, second = queue.claim_next(db, "w", 60), queue.claim_next(db, "w", 60)
    assert first is not None and second is not None
    assert (first.vehicle_id, first.priority) == (new, 100)
    assert (second.vehicle_id, second.priority) == (backfill, 75)


@pytest.mark.parametrize("finish", ["complete", "failed"])
def test_a_finished_row_requeued_with_the_seed_statement_is_claimable_again(
    db: pg8000.native.Connection, finish: str
) -> None:
    url = "https://bringatrailer.com/listing/a/"
    vid = add_vehicle(db, url)
    queue.enqueue(db, vid, url, 75)
    dispatched = queue.select_for_dispatch(db, 10, 600)
    assert len(dispatched) == 1
    job = queue.claim_next(db, "w", 60)
    assert job is not None
    if finish == "complete":
        assert queue.complete(db, job)
    else:
        db.run(
            "UPDATE bat_extraction_queue SET status = 'failed', attempts = 5, "
            "next_attempt_at = now() + interval '1 day', error_message = 'HTTP 503' WHERE job_no = :id",
            id=job.id,
        )

    seed_queue(db, vid, url)

    row = queue_row(db, vid)
    assert row["status"] == "pending"
    assert row["attempts"] == 0  # the original system kept 5 here: never claimable again
    assert row["dispatched_at"] is None  # so the next orchestrator run sends it
    assert row["completed_at"] is None and row["locked_by"] is None
    assert [j.id for j in queue.select_for_dispatch(db, 10, 600)] == [job.id]
    again = queue.claim_next(db, "w", 60)
    assert again is not None and again.id == job.id and again.attempts == 1


def test_the_seed_statement_never_takes_a_job_from_a_live_worker(
    db: pg8000.native.Connection,
) -> None:
    url = "https://bringatrailer.com/listing/a/"
    vid = add_vehicle(db, url)
    queue.enqueue(db, vid, url, 75)
    job = queue.claim_next(db, "w", 600)
    assert job is not None

    seed_queue(db, vid, url)

    row = queue_row(db, vid)
    assert (row["status"], row["lease_generation"]) == ("processing", job.lease_generation)
    assert queue.claim_next(db, "other", 60) is None
    assert queue.complete(db, job)


def test_the_seed_statement_rescues_a_job_whose_lease_expired(db: pg8000.native.Connection) -> None:
    url = "https://bringatrailer.com/listing/a/"
    vid = add_vehicle(db, url)
    queue.enqueue(db, vid, url, 75)
    job = queue.claim_next(db, "w", 600)
    assert job is not None
    db.run(
        "UPDATE bat_extraction_queue SET lease_expires_at = now() - interval '1 minute' "
        "WHERE job_no = :id",
        id=job.id,
    )

    seed_queue(db, vid, url)

    row = queue_row(db, vid)
    assert (row["status"], row["locked_by"]) == ("pending", None)
    assert not queue.complete(db, job)  # the dead worker is fenced out
    assert queue.claim_next(db, "new", 60) is not None


def test_updates_stamp_updated_at(db: pg8000.native.Connection) -> None:
    vid = add_vehicle(db)
    job_id = queue.enqueue(db, vid, "u", 75)
    db.run(
        "UPDATE bat_extraction_queue SET updated_at = now() - interval '1 hour' WHERE job_no = :id",
        id=job_id,
    )
    db.run("UPDATE bat_extraction_queue SET priority = 80 WHERE job_no = :id", id=job_id)
    stamped = db.run(
        "SELECT updated_at > now() - interval '1 minute' FROM bat_extraction_queue WHERE job_no = :id",
        id=job_id,
    )
    assert stamped == [[True]]


# ------------------------------------------------------------------ named queries


def test_every_named_query_has_a_purpose_and_sql() -> None:
    catalogue = all_queries()
    for name in (
        "enqueue",
        "claim_next",
        "claim_job",
        "lock_leased_job",
        "complete_job",
        "fail_job",
        "rescue_expired_leases",
        "select_for_dispatch",
        "reset_for_redrive",
        "queue_depths",
    ):
        assert catalogue[name].source == "queue.sql"
    for named in catalogue.values():
        assert named.purpose and "\n" not in named.purpose, named.name
        assert named.sql.strip() and not named.sql.rstrip().endswith(";"), named.name
    assert query("claim_next") is catalogue["claim_next"].sql


def test_every_queue_query_is_valid_sql(db: pg8000.native.Connection) -> None:
    # PREPARE parses and plans without running: catches a typo in a query no test runs.
    for named in all_queries().values():
        if named.source != "queue.sql":
            continue
        statement, _ = pg8000.native.to_statement(named.sql)
        db.run(f"PREPARE check_{named.name} AS {statement}")


def test_query_file_layout_is_enforced(tmp_path: Path) -> None:
    good = "-- a file header\n\n-- name: one\n-- purpose: says one.\nSELECT 1;\n"
    (named,) = parse_queries(good, "x.sql")
    assert (named.name, named.purpose, named.sql) == ("one", "says one.", "SELECT 1")
    with pytest.raises(QueryFileError, match="purpose"):
        parse_queries("-- name: one\nSELECT 1;\n", "x.sql")
    with pytest.raises(QueryFileError, match="before the first"):
        parse_queries("SELECT 1;\n-- name: one\n-- p\nSELECT 1;\n", "x.sql")
    with pytest.raises(QueryFileError, match="no SQL"):
        parse_queries("-- name: one\n-- p\n\n-- name: two\n-- p\nSELECT 2;\n", "x.sql")
    (tmp_path / "a.sql").write_text("-- name: one\n-- p\nSELECT 1;\n")
    (tmp_path / "b.sql").write_text("-- name: one\n-- p\nSELECT 2;\n")
    with pytest.raises(QueryFileError, match=r"defined in a\.sql and b\.sql"):
        load_queries(tmp_path)


def test_an_unknown_query_name_is_a_clear_error() -> None:
    with pytest.raises(UnknownQueryError, match="no_such_query"):
        query("no_such_query")


# ------------------------------------------------------------------ the schema snapshot


def test_schema_sql_is_what_the_migrations_produce(pg_server: str) -> None:
    from bat_backfill_tools.schema import SCHEMA_FILE, migrated_schema, pg_dump_major

    server = connect(pg_server)
    major = int(server.run("SHOW server_version_num")[0][0]) // 10_000
    server.close()
    if major != pg_dump_major():
        pytest.skip(f"schema.sql is written by pg_dump {pg_dump_major()}, the server is {major}")
    # `make schema` rewrites the file; a migration changed without it fails here.
    assert migrated_schema(pg_server) == SCHEMA_FILE.read_text()
