"""Fault injection: BaT misbehaving, workers dying, leases lost, duplicates, a database restart.

Each test checks the job's state, the vehicle's data, and that nothing is duplicated or lost.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from bat_backfill_tools import localpg
from bat_backfill_tools.invoke import LocalContext, load_handler_module
from bat_backfill_tools.pageserver import Reply
from bat_backfill_tools.samplepages import render_page

from bat_backfill.contracts import ExtractionRequest
from bat_backfill.db import queue as jobqueue
from bat_backfill.db.connect import connect
from bat_backfill.db.migrate import migrate
from bat_backfill.errors import LeaseLostError
from bat_backfill.extract import extract_listing
from bat_backfill.parsing import parse_listing
from bat_backfill.process import InProcessExtractors, job_request, process_message
from bat_backfill.services import build_services
from tests.functional.support import (
    CAYMAN,
    CAYMAN_ID,
    FERRARI,
    FERRARI_ID,
    FERRARI_PAGE,
    add_job,
    add_vehicle,
    job_body,
    job_row,
    sqs_record,
    vehicle_row,
)

FERRARI_SLUG = "2001-ferrari-360-spider-89"


def unsold_ferrari(db: Any) -> int:
    """The classic defect: an unsold lot stored as sold at its high bid."""
    add_vehicle(db, FERRARI_ID, FERRARI, sale_status="sold", sale_price=53_000, high_bid=53_000,
                mileage=58_000, mileage_unit="miles")  # fmt: skip
    return add_job(db, FERRARI_ID, FERRARI, 75)


def snapshot(db: Any) -> dict[str, Any]:
    return {
        "vehicle": vehicle_row(db, FERRARI_ID),
        "audit": db.run("SELECT count(*) FROM vehicle_audit")[0][0],
        "events": db.run("SELECT count(*) FROM auction_events")[0][0],
        "comments": db.run("SELECT count(*) FROM bat_comments")[0][0],
    }


def deliver(services: Any, job_id: int) -> dict[str, Any]:
    return process_message(services, job_body(job_id), InProcessExtractors(services)).to_dict()


# -- 1. BaT answers with an error: retried later with backoff, the vehicle untouched ---------


@pytest.mark.parametrize(
    ("reply", "throttled"),
    [
        (Reply(429, b"slow down"), True),
        (Reply(403, b"forbidden"), True),
        (Reply(500, b"oops"), False),
        (Reply(503, b"busy"), False),
        (Reply(200, b"", delay_seconds=1.5), False),  # a timeout
        (Reply(200, b"", drop_connection=True), False),  # a reset connection
    ],
    ids=["429", "403", "500", "503", "timeout", "reset"],
)
def test_transient_errors_are_retried_later_with_backoff(
    db, lambda_env, monkeypatch, bat, reply, throttled
):
    job_id = unsold_ferrari(db)
    monkeypatch.setenv("FETCH_TIMEOUT_SECONDS", "0.5")
    services = build_services()
    bat.set_listing(FERRARI_SLUG, reply)
    before = snapshot(db)
    started = datetime.now(UTC)
    report = deliver(services, job_id)
    row = job_row(db, job_id)
    assert report["status"] == "retry"
    assert (row["status"], row["attempts"], row["error_kind"]) == ("pending", 1, "retryable")
    assert row["dispatched_at"] is None and row["locked_by"] is None
    wait = (row["next_attempt_at"] - started).total_seconds()
    base = services.settings.backoff_base_seconds
    # Equal jitter: between half and all of the ceiling; 403/429 wait 4x longer.
    low, high = (base * 2, base * 4) if throttled else (base / 2, base)
    assert low - 1 <= wait <= high + 1
    assert snapshot(db) == before


# -- 2. Bad pages: a clear permanent error, nothing written ---------------------------------


def _bad_pages() -> dict[str, Reply]:
    page = render_page(FERRARI_PAGE)
    cut = (
        page.index('<div class="essentials"')
        if '<div class="essentials"' in page
        else len(page) // 2
    )
    no_result = page.replace("listing-available-info", "listing-gone").replace(
        'id="listing-bid"', 'id="gone"'
    )
    html = {"Content-Type": "text/html"}
    return {
        "404": Reply(404, b"<html>Not found</html>", html),
        "another site": Reply(200, b"<!doctype html><html><head><title>Parked</title></head>"
                                   b"<body>This domain is for sale</body></html>", html),
        "truncated": Reply(200, page[:cut].encode(), html),
        "no result section": Reply(200, no_result.encode(), html),
        "multi-megabyte": Reply(200, page.encode() + b"<!--" + b"x" * 6_000_000 + b"-->", html),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(_bad_pages()))
def test_bad_pages_fail_permanently_and_change_nothing(db, services, bat, case):
    job_id = unsold_ferrari(db)
    bat.set_listing(FERRARI_SLUG, _bad_pages()[case])
    before = snapshot(db)
    report = deliver(services, job_id)
    row = job_row(db, job_id)
    assert report["status"] == "failed"
    assert (row["status"], row["error_kind"]) == ("failed", "permanent")
    assert row["error_message"] and FERRARI in row["error_message"]
    assert snapshot(db) == before


def test_a_queue_row_with_a_foreign_url_is_never_fetched(db, services, bat):
    add_vehicle(db, FERRARI_ID, "https://evil.example/listing/x/")
    job_id = add_job(db, FERRARI_ID, "https://evil.example/listing/x/")
    report = process_message(services, job_body(job_id, url="x"),
                             InProcessExtractors(services))  # fmt: skip
    assert report.status == "failed" and "not a BaT listing URL" in (report.error or "")
    assert bat.hits == {}


# -- 3. A worker dies between the steps, or inside the transaction --------------------------


def test_worker_dying_between_the_two_steps_is_finished_by_the_redelivery(db, services):
    job_id = unsold_ferrari(db)
    job = jobqueue.claim_job(db, job_id, "worker-that-dies", 600)
    assert job is not None
    InProcessExtractors(services).listing(job_request(job))  # step 1 done, then the worker vanishes
    after_step_one = snapshot(db)
    db.run("UPDATE bat_extraction_queue SET lease_expires_at = now() - interval '1 second'")
    assert jobqueue.rescue_expired(db) == 1
    report = deliver(services, job_id)  # SQS redelivers the message
    assert report["status"] == "complete"
    final = snapshot(db)
    assert final["audit"] == after_step_one["audit"]  # nothing repaired twice
    assert final["comments"] > 0
    deliver(services, job_id)  # a late duplicate changes nothing
    assert snapshot(db) == final


def test_a_transaction_that_dies_writes_nothing_and_the_retry_completes(db, services, aws):
    job_id = unsold_ferrari(db)
    # The database fails the first auction-event write, inside the repair transaction.
    db.run("CREATE TABLE fault_once (armed boolean)")
    db.run("INSERT INTO fault_once VALUES (true)")
    db.run("""
        CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF (SELECT armed FROM fault_once) THEN
            UPDATE fault_once SET armed = false;
            RAISE EXCEPTION 'injected fault';
          END IF;
          RETURN NEW;
        END $$""")
    db.run("CREATE TRIGGER fail_once BEFORE INSERT ON auction_events "
           "FOR EACH ROW EXECUTE FUNCTION fail_once()")  # fmt: skip
    before = snapshot(db)
    event = {"Records": [sqs_record(job_body(job_id))]}
    processor = load_handler_module("queue_processor")  # one warm container for both calls
    first = processor.handler(event, LocalContext("p"))
    assert first == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    # The rollback also undid the disarm, so the fault is still armed: disarm by hand.
    assert snapshot(db) == before
    assert job_row(db, job_id)["status"] == "pending"  # handed back, claimable again
    db.run("UPDATE fault_once SET armed = false")
    again = processor.handler(event, LocalContext("p"))
    assert again == {"batchItemFailures": []}
    assert job_row(db, job_id)["status"] == "complete"
    assert vehicle_row(db, FERRARI_ID)["sale_status"] == "bid_to"


def test_a_job_that_keeps_crashing_its_worker_is_given_up(db, services):
    job_id = unsold_ferrari(db)
    max_attempts = services.settings.max_attempts
    # Every earlier attempt crashed (Lambda timeouts): each claim counted, none finished.
    db.run("UPDATE bat_extraction_queue SET attempts = :n", n=max_attempts)
    before = snapshot(db)
    report = deliver(services, job_id)
    row = job_row(db, job_id)
    assert report["status"] == "failed"
    assert (row["status"], row["error_kind"]) == ("failed", "permanent")
    assert "crashed" in row["error_message"]
    assert snapshot(db) == before


# -- 4. A slow worker loses its lease -------------------------------------------------------


def test_a_slow_worker_that_lost_its_lease_cannot_write(db, services):
    job_id = unsold_ferrari(db)
    slow = jobqueue.claim_job(db, job_id, "slow", 600)
    assert slow is not None
    db.run("UPDATE bat_extraction_queue SET lease_expires_at = now() - interval '1 second'")
    jobqueue.rescue_expired(db)
    assert deliver(services, job_id)["status"] == "complete"  # the second worker
    settled = snapshot(db)
    with pytest.raises(LeaseLostError):
        extract_listing(services, job_request(slow))
    assert jobqueue.complete(db, slow) is False
    assert snapshot(db) == settled
    assert job_row(db, job_id)["status"] == "complete"


# -- 5. The same job delivered three times at once ------------------------------------------


def test_three_simultaneous_deliveries_process_the_job_once(db, lambda_env):
    job_id = unsold_ferrari(db)
    barrier = threading.Barrier(3)
    reports: list[str] = []

    def worker() -> None:
        services = build_services()
        barrier.wait()
        reports.append(deliver(services, job_id)["status"])
        services.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(reports) == ["complete", "skipped", "skipped"]
    assert db.run("SELECT count(*) FROM vehicle_audit WHERE field = 'sale_price'")[0][0] == 1
    ids = db.run("SELECT comment_id FROM bat_comments")
    assert len(ids) == len({i[0] for i in ids}) > 0


# -- 7. The database restarts in the middle of a batch --------------------------------------


@pytest.fixture
def own_cluster():
    if "TEST_DATABASE_URL" in __import__("os").environ:
        pytest.skip("restarting the database needs the suite's own cluster")
    cluster = localpg.start_throwaway()
    conn = connect(cluster.url)
    migrate(conn)
    # Like every test database: the test queues its vehicles itself (see tests/conftest.py).
    name = conn.run("SELECT current_database()")[0][0]
    conn.run(f"ALTER DATABASE {name} SET bat_backfill.queue_new_vehicles = 'off'")
    conn.close()
    yield cluster
    localpg.discard(cluster)


def restart_during_the_ferrari(own_cluster, bat, monkeypatch) -> tuple[list[int], threading.Event]:
    """The Ferrari (priority 100) and the Cayman queued in a cluster of their own, which goes
    down and comes back while the Ferrari's page is being fetched; the jobs and the event set
    by the restart."""
    monkeypatch.setenv("DATABASE_URL", own_cluster.url)
    monkeypatch.setenv("BAT_BASE_URL", bat.base_url)
    monkeypatch.setenv("REQUEST_INTERVAL_SECONDS", "0.001")
    db = connect(own_cluster.url)
    add_vehicle(db, FERRARI_ID, FERRARI, sale_status="sold", sale_price=53_000)
    add_vehicle(db, CAYMAN_ID, CAYMAN)
    jobs = [add_job(db, FERRARI_ID, FERRARI, 100), add_job(db, CAYMAN_ID, CAYMAN, 75)]
    db.close()
    restarted = threading.Event()

    def restart_once(path: str) -> None:
        if FERRARI_SLUG in path and not restarted.is_set():
            restarted.set()
            own_cluster.stop()
            own_cluster.start()

    bat.on_request = restart_once
    return jobs, restarted


def test_a_database_restart_mid_batch_fails_only_the_affected_records(
    own_cluster, aws, bat, monkeypatch
):
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    jobs, restarted = restart_during_the_ferrari(own_cluster, bat, monkeypatch)
    records = [
        sqs_record(job_body(j, vid, url), f"m{j}")
        for j, vid, url in ((jobs[0], FERRARI_ID, FERRARI), (jobs[1], CAYMAN_ID, CAYMAN))
    ]
    # One warm container for both calls: its connection broke in the restart and must recover.
    processor = load_handler_module("queue_processor")
    first = processor.handler({"Records": records}, LocalContext("p"))
    assert restarted.is_set()
    assert first == {"batchItemFailures": [{"itemIdentifier": f"m{jobs[0]}"}]}
    db = connect(own_cluster.url)
    # The interrupted job was handed back over a fresh connection; nothing half-written.
    assert [r[0] for r in db.run("SELECT status FROM bat_extraction_queue ORDER BY job_no")] == [
        "pending", "complete"]  # fmt: skip
    assert db.run("SELECT count(*) FROM vehicle_audit WHERE vehicle_id = CAST(:id AS uuid)",
                  id=FERRARI_ID)[0][0] == 0  # fmt: skip
    retry = processor.handler({"Records": records[:1]}, LocalContext("p"))
    assert retry == {"batchItemFailures": []}
    assert [r[0] for r in db.run("SELECT status FROM bat_extraction_queue ORDER BY job_no")] == [
        "complete", "complete"]  # fmt: skip
    assert db.run("SELECT sale_status, sale_price FROM vehicles WHERE id = CAST(:id AS uuid)",
                  id=FERRARI_ID) == [["bid_to", None]]  # fmt: skip
    db.close()


# -- 8. Re-extraction never loses good data ------------------------------------------------


def test_process_across_a_database_restart_exits_1_and_names_the_job(
    own_cluster, aws, bat, monkeypatch, capsys
):
    from bat_backfill_tools.cli import main

    for name in ("HIGH_QUEUE_URL", "BACKFILL_QUEUE_URL", "DLQ_URL", "SNAPSHOT_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    jobs, restarted = restart_during_the_ferrari(own_cluster, bat, monkeypatch)
    assert main(["process", "--batch-size", "5"]) == 1  # not 0: the job did not finish
    assert restarted.is_set()
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    # the interrupted job is named and handed back; the batch stops there (claiming more from
    # a database in trouble would only repeat it), leaving the rest to the next run
    assert err == f"job {jobs[0]}: error (InterfaceError: network error)\n"
    assert main(["process", "--batch-size", "5"]) == 0
    db = connect(own_cluster.url)
    try:
        statuses = db.run("SELECT job_no, status FROM bat_extraction_queue ORDER BY job_no")
    finally:
        db.close()
    assert statuses == [[jobs[0], "complete"], [jobs[1], "complete"]]


def test_a_page_that_no_longer_states_a_field_keeps_the_stored_value(db, services, bat):
    unsold_ferrari(db)
    db.run("UPDATE vehicles SET color = 'Rosso Corsa'")
    silent = dataclasses.replace(FERRARI_PAGE, exterior_color=None, mileage=None)
    bat.set_listing(FERRARI_SLUG, render_page(silent))
    extract_listing(services, ExtractionRequest(FERRARI, FERRARI_ID))
    row = vehicle_row(db, FERRARI_ID)
    assert (row["color"], row["mileage"], row["mileage_unit"]) == ("Rosso Corsa", 58_000, "miles")


def test_a_different_vin_is_recorded_as_a_conflict_and_overwrites_nothing(db, services):
    unsold_ferrari(db)
    db.run("UPDATE vehicles SET vin = '1HGCM82633A004352'")
    result, _ = extract_listing(services, ExtractionRequest(FERRARI, FERRARI_ID))
    assert result.conflicts == ["vin"]
    assert vehicle_row(db, FERRARI_ID)["vin"] == "1HGCM82633A004352"
    conflict = db.run("SELECT old_value, new_value, source_url FROM vehicle_audit "
                      "WHERE action = 'conflict'")  # fmt: skip
    assert conflict == [["1HGCM82633A004352", FERRARI_PAGE.vin, FERRARI]]
    again, _ = extract_listing(services, ExtractionRequest(FERRARI, FERRARI_ID))
    assert again.conflicts == []  # the same disagreement is recorded once
    assert db.run("SELECT count(*) FROM vehicle_audit WHERE action = 'conflict'")[0][0] == 1


# -- 9. The original database's constraints and its duplicate rows --------------------------

RELISTED_ID = "0b6f6c1e-5c1a-4f4e-9a43-3f1f6d0c9a11"
SECOND_ROW_ID = "0b6f6c1e-5c1a-4f4e-9a43-3f1f6d0c9a12"
# What the Ferrari's page states, as the parser reads it.
FERRARI_FACTS = parse_listing(render_page(FERRARI_PAGE), url=FERRARI)


def candidates_after_the_hold(db: Any) -> list[str]:
    """The vehicles the selector would queue once every completed job's 24-hour hold is over."""
    db.run("UPDATE bat_extraction_queue SET completed_at = now() - interval '25 hours' "
           "WHERE status = 'complete'")  # fmt: skip
    return [
        r[0] for r in db.run("SELECT vehicle_id::text FROM queue_bat_backfill_vehicles(50, 75)")
    ]


def test_a_vin_the_unique_index_refuses_is_a_conflict_and_the_rest_of_the_repair_lands(
    db, services
):
    job_id = unsold_ferrari(db)
    # An earlier listing of the same car already holds its VIN; the index allows one holder.
    add_vehicle(db, RELISTED_ID, "https://bringatrailer.com/listing/2001-ferrari-360-spider-12/",
                vin=FERRARI_PAGE.vin, mileage=57_000, color="Giallo Modena",
                transmission="Manual", drivetrain="RWD")  # fmt: skip
    report = deliver(services, job_id)
    assert report["status"] == "complete"
    assert job_row(db, job_id)["status"] == "complete"
    row = vehicle_row(db, FERRARI_ID)
    assert row["vin"] is None and vehicle_row(db, RELISTED_ID)["vin"] == FERRARI_PAGE.vin
    # Every other field of the same repair is in.
    assert (row["sale_status"], row["auction_outcome"], row["sale_price"], row["high_bid"]) == (
        "bid_to", "reserve_not_met", None, 53_000)  # fmt: skip
    assert (row["color"], row["transmission"], row["drivetrain"]) == (
        FERRARI_FACTS.exterior_color, FERRARI_FACTS.transmission, FERRARI_FACTS.drivetrain)  # fmt: skip
    conflicts = db.run("SELECT field, old_value, new_value FROM vehicle_audit "
                       "WHERE vehicle_id = CAST(:v AS uuid) AND action = 'conflict'",
                       v=FERRARI_ID)  # fmt: skip
    assert conflicts == [["vin", None, FERRARI_PAGE.vin]]
    absences = db.run("SELECT field, reason FROM extraction_absences "
                      "WHERE vehicle_id = CAST(:v AS uuid)", v=FERRARI_ID)  # fmt: skip
    assert [a[0] for a in absences] == ["vin"]
    assert absences[0][1].startswith("refused by the database: vehicles_vin_unique_index")
    assert FERRARI_PAGE.vin not in absences[0][1]  # the reason names the rule, not the value
    # The selector stops asking for the VIN: nothing else is missing, so it is done.
    assert FERRARI_ID not in candidates_after_the_hold(db)
    # A re-extraction meets the same refusal and records nothing twice.
    audit = db.run("SELECT count(*) FROM vehicle_audit")[0][0]
    again, _ = extract_listing(services, ExtractionRequest(FERRARI, FERRARI_ID))
    assert again.conflicts == [] and "vin" not in again.filled
    assert db.run("SELECT count(*) FROM vehicle_audit")[0][0] == audit


def test_two_rows_of_one_listing_are_both_repaired_and_their_events_corrected_in_place(
    db, services
):
    # The original system stored the listing twice, under two spellings of its URL, each row
    # with a 'sold' event naming no winner (so no verified sale).
    spellings = {
        FERRARI_ID: FERRARI.rstrip("/"),
        SECOND_ROW_ID: FERRARI.replace("https://", "http://www.") + "?utm_source=feed",
    }
    for vehicle_id, url in spellings.items():
        add_vehicle(db, vehicle_id, url, sale_status="sold", auction_outcome="sold",
                    sale_price=53_000, high_bid=53_000)  # fmt: skip
        db.run("INSERT INTO auction_events (vehicle_id, source, source_url, outcome, high_bid) "
               "VALUES (CAST(:v AS uuid), 'bat', :u, 'sold', 53000)", v=vehicle_id, u=url)  # fmt: skip
    assert set(candidates_after_the_hold(db)) == set(spellings)
    job_id = add_job(db, FERRARI_ID, FERRARI)
    assert deliver(services, job_id)["status"] == "complete"

    for vehicle_id in spellings:
        row = vehicle_row(db, vehicle_id)
        assert (row["sale_status"], row["auction_outcome"], row["sale_price"]) == (
            "bid_to", "reserve_not_met", None)  # fmt: skip
        assert (row["high_bid"], row["mileage"], row["transmission"]) == (
            53_000, FERRARI_FACTS.mileage, FERRARI_FACTS.transmission)  # fmt: skip
    # The job's own row took the VIN; the other row cannot hold it too and records why.
    assert vehicle_row(db, FERRARI_ID)["vin"] == FERRARI_PAGE.vin
    assert vehicle_row(db, SECOND_ROW_ID)["vin"] is None
    assert db.run("SELECT vehicle_id::text, field FROM vehicle_audit WHERE action = 'conflict'"
                  ) == [[SECOND_ROW_ID, "vin"]]  # fmt: skip
    # Each row's event is corrected where it stands: same id, same URL, no second event.
    events = db.run("SELECT vehicle_id::text, source_url, outcome, winning_bid, "
                    "extracted_at IS NOT NULL FROM auction_events ORDER BY source_url")  # fmt: skip
    assert sorted(events) == sorted(
        [[vid, url, "reserve_not_met", None, True] for vid, url in spellings.items()]
    )
    audited = db.run("SELECT vehicle_id::text, old_value, new_value, action, job_id "
                     "FROM vehicle_audit WHERE field = 'auction_events.outcome'")  # fmt: skip
    assert sorted(audited) == sorted(
        [[vid, "sold", "reserve_not_met", "correct", job_id] for vid in spellings]
    )
    assert candidates_after_the_hold(db) == []


def test_an_event_of_the_listing_that_names_no_vehicle_is_corrected_and_given_the_vehicle(
    db, services
):
    # The original system wrote the listing's 'sold' event without its vehicle.
    job_id = unsold_ferrari(db)
    db.run("INSERT INTO auction_events (vehicle_id, source, source_url, outcome, high_bid, "
           "winning_bid) VALUES (NULL, 'bat', :u, 'sold', 53000, 53000)",
           u=FERRARI.replace("https://", "http://WWW.").rstrip("/"))  # fmt: skip
    orphan = db.run("SELECT id::text FROM auction_events WHERE vehicle_id IS NULL")[0][0]
    assert deliver(services, job_id)["status"] == "complete"

    events = db.run("SELECT id::text, vehicle_id::text, outcome, winning_bid FROM auction_events")
    assert events == [[orphan, FERRARI_ID, "reserve_not_met", None]]  # corrected, no second one
    audited = db.run("SELECT field, old_value, new_value, action FROM vehicle_audit "
                     "WHERE field LIKE 'auction_events.%' ORDER BY field")  # fmt: skip
    assert audited == [
        ["auction_events.outcome", "sold", "reserve_not_met", "correct"],
        ["auction_events.vehicle_id", None, FERRARI_ID, "fill"],
        ["auction_events.winning_bid", "53000", None, "correct"],
    ]
