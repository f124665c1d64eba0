"""Every file in events/ drives its function's real handler, as `sam local invoke -e` would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bat_backfill_tools.invoke import invoke_function

from tests.functional.support import (
    CAYMAN,
    CAYMAN_ID,
    FERRARI,
    FERRARI_ID,
    add_job,
    add_vehicle,
    drain,
    job_row,
    vehicle_row,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _two_defective_vehicles(db: Any) -> None:
    # An unsold lot stored as sold, and a sold car missing its VIN.
    add_vehicle(db, FERRARI_ID, FERRARI, sale_status="sold", sale_price=53_000, high_bid=53_000)
    add_vehicle(db, CAYMAN_ID, CAYMAN, sale_status="sold", sale_price=41_000)


def _setup_jobs(db: Any) -> None:
    _two_defective_vehicles(db)
    assert add_job(db, FERRARI_ID, FERRARI, 100) == 1
    assert add_job(db, CAYMAN_ID, CAYMAN, 75) == 2


def check_orchestrator(db: Any, result: dict[str, Any], aws: Any) -> None:
    assert result["status"] == "ok"
    assert result["steps"]["auto_queue"] == {"ok": True, "queued": 2, "skipped": 0}
    assert result["steps"]["dispatch"]["dispatched"] == 2
    steps = db.run("SELECT status, steps FROM orchestrator_runs")[0]
    assert steps[0] == "ok"
    assert steps[1]["auto_queue"]["queued"] == 2
    got = drain(aws.sqs, aws.backfill_queue_url)
    assert sorted(json.loads(m["Body"])["url"] for m in got) == [FERRARI, CAYMAN]


def check_batch(db: Any, result: dict[str, Any], aws: Any) -> None:
    assert result == {"batchItemFailures": []}
    assert job_row(db, 1)["status"] == "complete"
    assert job_row(db, 2)["status"] == "complete"
    ferrari = vehicle_row(db, FERRARI_ID)
    # The comment quoting "sold for USD $437,250" must not make the unsold Ferrari sold.
    assert (ferrari["sale_status"], ferrari["sale_price"], ferrari["high_bid"]) == (
        "bid_to",
        None,
        53_000,
    )
    assert vehicle_row(db, CAYMAN_ID)["vin"] == "WP0AA29879U760001"


def check_force(db: Any, result: dict[str, Any], aws: Any) -> None:
    assert result["processed"] == 2
    assert result["by_status"] == {"complete": 2}
    assert [j["job_id"] for j in result["jobs"]] == [1, 2]  # priority 100 first


def check_premium(db: Any, result: dict[str, Any], aws: Any) -> None:
    assert result["ok"] is True
    assert result["outcome"] == "bid_to"
    assert "sale_status" in result["corrected"] and "sale_price" in result["corrected"]
    key = result["snapshot_key"]
    assert key.startswith("listings/2001-ferrari-360-spider-89/")
    assert aws.s3.head_object(Bucket=aws.bucket, Key=key)["ContentLength"] > 0
    # The table's own vocabulary: a lot bid to its high bid ended with the reserve not met.
    event = db.run(
        "SELECT outcome, high_bid, winning_bid, winning_bidder, extracted_at IS NOT NULL"
        " FROM auction_events"
    )
    assert event == [["reserve_not_met", 53_000, None, None, True]]


def check_comments(db: Any, result: dict[str, Any], aws: Any) -> None:
    assert result["ok"] is True
    stored = db.run("SELECT count(*) FROM bat_comments")[0][0]
    assert stored == result["new"] > 0
    assert result["bids"] > 0


CASES = {
    "orchestrator.scheduled.json": ("orchestrator", _two_defective_vehicles, check_orchestrator),
    "queue_processor.sqs-batch.json": ("queue_processor", _setup_jobs, check_batch),
    "queue_processor.force.json": ("queue_processor", _setup_jobs, check_force),
    "premium_extractor.listing.json": ("premium_extractor", _two_defective_vehicles,
                                       check_premium),
    "comments_extractor.listing.json": ("comments_extractor", _two_defective_vehicles,
                                        check_comments),
}  # fmt: skip


def test_every_event_file_has_a_case():
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_event_file_drives_its_handler(name, db, aws, lambda_env):
    function, setup, check = CASES[name]
    assert name.split(".")[0] == function
    setup(db)
    event = json.loads((EVENTS / name).read_text())
    result = invoke_function(function, event)
    check(db, result, aws)


def test_comments_extractor_is_idempotent(db, aws, lambda_env):
    _two_defective_vehicles(db)
    event = json.loads((EVENTS / "comments_extractor.listing.json").read_text())
    first = invoke_function("comments_extractor", event)
    again = invoke_function("comments_extractor", event)
    assert first["new"] > 0 and again["new"] == 0
    assert db.run("SELECT count(*) FROM bat_comments")[0][0] == first["new"]


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"url": "https://evil.example/listing/x/"},
        {"url": "https://bringatrailer.com/listing/x/", "vehicle_id": "not-a-uuid"},
        {"url": 42},
    ],
)
def test_bad_extractor_events_get_a_clear_error_and_change_nothing(event, db, aws, lambda_env):
    _two_defective_vehicles(db)
    before = db.run("SELECT * FROM vehicles ORDER BY id")
    result = invoke_function("premium_extractor", event)
    error = result["error"]
    assert result["ok"] is False and error["retryable"] is False and error["message"]
    # A malformed event is the caller's mistake; a foreign URL is a job that can never work.
    assert error["kind"] == ("job" if "evil" in str(event.get("url")) else "bad_request")
    assert db.run("SELECT * FROM vehicles ORDER BY id") == before
