"""Queue processor, orchestrator and redrive against real Postgres and emulated SQS/S3."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from bat_backfill_tools.invoke import LocalContext, load_handler_module
from bat_backfill_tools.pageserver import Reply
from botocore.stub import Stubber

from bat_backfill import aws as awsio
from bat_backfill.contracts import ExtractionRequest, JobMessage
from bat_backfill.orchestrate import run_orchestrator
from bat_backfill.redrive import redrive
from tests.functional.support import (
    CAYMAN,
    CAYMAN_ID,
    FERRARI,
    FERRARI_ID,
    add_job,
    add_vehicle,
    drain,
    job_row,
    sqs_event,
    vehicle_row,
)


def process(event: dict[str, Any], timeout_ms: int = 900_000) -> dict[str, Any]:
    """The queue processor's real handler, configured by the test's environment."""
    handler = load_handler_module("queue_processor").handler
    result: dict[str, Any] = handler(event, LocalContext("queue_processor", timeout_ms))
    return result


def message(job_id: int, vehicle_id: str = "v", url: str = "u", priority: int = 75) -> Any:
    """A job message to send now (no delay)."""
    return (JobMessage(job_id, vehicle_id, url, priority), 0)


def two_jobs(db: Any) -> tuple[int, int]:
    add_vehicle(db, FERRARI_ID, FERRARI, sale_status="sold", sale_price=53_000)
    add_vehicle(db, CAYMAN_ID, CAYMAN)
    return add_job(db, FERRARI_ID, FERRARI, 100), add_job(db, CAYMAN_ID, CAYMAN, 75)


def test_one_failing_record_is_reported_alone(db, aws, services):
    high, backfill = two_jobs(db)
    for job_id in (high, backfill):
        awsio.send_job_batch(aws.sqs, aws.backfill_queue_url, [message(job_id, "v", "u", 75)])
    aws.sqs.send_message(QueueUrl=aws.backfill_queue_url, MessageBody='{"not": "a job"}')
    messages = drain(aws.sqs, aws.backfill_queue_url)
    poison = next(m["MessageId"] for m in messages if "not" in m["Body"])
    result = process(sqs_event(messages, aws.backfill_queue_url))
    assert result == {"batchItemFailures": [{"itemIdentifier": poison}]}
    assert job_row(db, high)["status"] == job_row(db, backfill)["status"] == "complete"


def test_orchestrator_sends_priority_100_first_and_spaces_the_rest(db, aws, services, monkeypatch):
    two_jobs(db)
    # With the default politeness rate the second fetch waits one interval (2 s).
    services.settings = type(services.settings)(
        **{**services.settings.__dict__, "request_interval_seconds": 2.0}
    )
    report = run_orchestrator(services)
    dispatch = report.steps["dispatch"]
    assert (dispatch["high"], dispatch["backfill"], dispatch["last_delay_seconds"]) == (1, 1, 2)
    high = drain(aws.sqs, aws.high_queue_url)
    assert [json.loads(m["Body"])["priority"] for m in high] == [100]
    # The backfill message is still delayed by SQS: nothing receivable yet.
    assert drain(aws.sqs, aws.backfill_queue_url) == []


def test_run_row_holds_step_counts_and_a_failing_step_does_not_stop_the_others(
    db, aws, services, bat
):
    two_jobs(db)
    services.settings = type(services.settings)(
        **{**services.settings.__dict__, "discovery_enabled": True}
    )
    bat.set("/auctions/results/", Reply(500, b"oops"))
    report = run_orchestrator(services)
    assert report.status == "partial"
    assert report.steps["discover"]["ok"] is False
    assert report.steps["dispatch"]["dispatched"] == 2
    row = db.run("SELECT status, steps, queue_depths FROM orchestrator_runs")[0]
    assert row[0] == "partial"
    assert row[1]["dispatch"]["dispatched"] == 2
    assert "500" in row[1]["discover"]["error"]
    assert {"status": "pending", "priority": 100, "count": 1} in row[2]


def test_discovery_queues_unknown_listings_at_priority_100(db, aws, services, bat):
    add_vehicle(db, CAYMAN_ID, CAYMAN)
    items = [
        {"url": CAYMAN, "title": "2009 Porsche Cayman", "year": "2009", "active": False},
        {
            "url": "https://bringatrailer.com/listing/1999-bmw-m3-12/",
            "title": "1999 BMW M3",
            "year": "1999",
            "active": False,
            "timestamp_end": 1776712341,
        },
        {"url": "https://evil.example/listing/x/", "title": "x", "active": False},
    ]
    data = {"items": items, "page_current": 1, "pages_total": 1}
    bat.set(
        "/auctions/results/",
        f"<script>var auctionsCompletedInitialData = {json.dumps(data)};</script>",
    )
    services.settings = type(services.settings)(
        **{**services.settings.__dict__, "discovery_enabled": True}
    )
    report = run_orchestrator(services)
    discover = report.steps["discover"]
    assert {k: discover[k] for k in ("ok", "enabled", "requests", "seen", "queued", "skipped")} == {
        "ok": True,
        "enabled": True,
        "requests": 1,
        "seen": 2,
        "queued": 1,
        "skipped": 1,
    }
    rows = db.run(
        "SELECT q.priority, v.bat_auction_url, v.year FROM bat_extraction_queue q "
        "JOIN vehicles v ON v.id = q.vehicle_id WHERE q.reason = 'new_listing'"
    )
    assert rows == [[100, "https://bringatrailer.com/listing/1999-bmw-m3-12/", 1999]]
    assert [json.loads(m["Body"])["priority"] for m in drain(aws.sqs, aws.high_queue_url)] == [100]


def test_two_orchestrators_at_once_dispatch_each_job_once(db, aws, lambda_env):
    from bat_backfill.services import build_services

    for i in range(30):
        vid = f"00000000-0000-4000-8000-{i:012d}"
        url = f"https://bringatrailer.com/listing/car-{i}/"
        add_vehicle(db, vid, url)
        add_job(db, vid, url, 75)
    barrier = threading.Barrier(2)
    reports = []

    def run() -> None:
        services = build_services()
        barrier.wait()
        reports.append(run_orchestrator(services))
        services.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = drain(aws.sqs, aws.backfill_queue_url)
    ids = [json.loads(m["Body"])["job_id"] for m in sent]
    assert len(ids) == len(set(ids)) == 30
    assert sum(r.steps["dispatch"]["dispatched"] for r in reports) == 30


def dlq_depth(aws: Any) -> int:
    return awsio.queue_depth(aws.sqs, aws.dlq_url)["ApproximateNumberOfMessages"]


def test_poison_message_reaches_the_dlq_and_redrive_brings_it_back_to_complete(
    db, aws, services, monkeypatch, lambda_env
):
    high, _ = two_jobs(db)
    db.run("UPDATE bat_extraction_queue SET dispatched_at = now() WHERE job_no = :id", id=high)
    awsio.send_job_batch(aws.sqs, aws.high_queue_url, [message(high, FERRARI_ID, FERRARI, 100)])
    # Every delivery crashes the processor: its database cannot be reached.
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    for _ in range(5):
        got = aws.sqs.receive_message(
            QueueUrl=aws.high_queue_url, VisibilityTimeout=0, AttributeNames=["All"]
        )["Messages"]
        result = process(sqs_event(got, aws.high_queue_url))
        assert result["batchItemFailures"] == [{"itemIdentifier": got[0]["MessageId"]}]
    # The receive past maxReceiveCount moves the message to the DLQ.
    assert aws.sqs.receive_message(QueueUrl=aws.high_queue_url).get("Messages") is None
    assert dlq_depth(aws) == 1
    monkeypatch.setenv("DATABASE_URL", lambda_env["DATABASE_URL"])

    report = redrive(services)
    assert (report.moved, report.jobs_reset, report.method) == (1, 1, "receive-send-delete")
    assert dlq_depth(aws) == 0
    back = drain(aws.sqs, aws.high_queue_url, delete=False)
    assert [json.loads(m["Body"])["job_id"] for m in back] == [high]
    assert process(sqs_event(back, aws.high_queue_url)) == {"batchItemFailures": []}
    assert job_row(db, high)["status"] == "complete"
    assert vehicle_row(db, FERRARI_ID)["sale_status"] == "bid_to"


def test_redrive_uses_the_sqs_move_task_where_available(db, aws, services):
    high, _ = two_jobs(db)
    db.run(
        "UPDATE bat_extraction_queue SET status = 'failed', attempts = 5 WHERE job_no = :id",
        id=high,
    )
    body = JobMessage(high, FERRARI_ID, FERRARI, 100).to_body()
    aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=body)
    dlq_arn = awsio.queue_arn(aws.sqs, aws.dlq_url)
    with Stubber(services.sqs) as stub:
        # Peeking at the DLQ and the move task are stubbed; moto lacks the move-task API.
        stub.add_response(
            "receive_message",
            {"Messages": [{"MessageId": "m1", "ReceiptHandle": "r1", "Body": body}]},
        )
        stub.add_response("receive_message", {"Messages": []})
        stub.add_response("change_message_visibility", {})
        stub.add_response("get_queue_attributes", {"Attributes": {"QueueArn": dlq_arn}})
        stub.add_response(
            "start_message_move_task", {"TaskHandle": "task-1"}, {"SourceArn": dlq_arn}
        )
        report = redrive(services)
        stub.assert_no_pending_responses()
    assert (report.method, report.task_handle, report.moved, report.jobs_reset) == (
        "move-task",
        "task-1",
        1,
        1,
    )
    row = job_row(db, high)
    assert (row["status"], row["attempts"]) == ("pending", 0)


def test_force_process_claims_best_jobs_and_honours_max_attempts(db, aws, services, bat):
    high, backfill = two_jobs(db)
    bat.set_listing("2009-porsche-cayman-46", Reply(503, b"busy"))
    event = {"batchSize": 5, "maxAttempts": 1}
    result = process(event)
    assert [j["job_id"] for j in result["jobs"]] == [high, backfill]
    assert result["by_status"] == {"complete": 1, "failed": 1}
    failed = job_row(db, backfill)
    assert failed["status"] == "failed" and "503" in failed["error_message"]


@pytest.mark.parametrize(
    "event", [{"batchSize": "ten"}, {"batchSize": 0}, {"batchSize": 5, "maxAttempts": -1}]
)
def test_force_process_rejects_bad_parameters(db, aws, services, event):
    two_jobs(db)
    with pytest.raises(ValueError, match=r"batchSize|maxAttempts"):
        process(event)
    assert {r[0] for r in db.run("SELECT status FROM bat_extraction_queue")} == {"pending"}


def test_a_fresh_snapshot_is_reused_instead_of_fetching_again(db, aws, services, bat):
    from bat_backfill.extract import extract_listing

    add_vehicle(db, FERRARI_ID, FERRARI)
    first, _ = extract_listing(services, ExtractionRequest(FERRARI, FERRARI_ID))
    again, _ = extract_listing(services, ExtractionRequest(FERRARI, FERRARI_ID))
    assert (first.reused_snapshot, again.reused_snapshot) == (False, True)
    assert again.snapshot_key == first.snapshot_key
    assert bat.hits == {"/listing/2001-ferrari-360-spider-89/": 1}
    # Once the snapshot is older than SNAPSHOT_MAX_AGE_SECONDS the page is fetched again.
    services.settings = type(services.settings)(
        **{**services.settings.__dict__, "snapshot_max_age_seconds": 0}
    )
    late, _ = extract_listing(services, ExtractionRequest(FERRARI, FERRARI_ID))
    assert late.reused_snapshot is False
    assert bat.hits == {"/listing/2001-ferrari-360-spider-89/": 2}


def test_records_are_handed_back_untouched_when_the_timeout_is_near(db, aws, services):
    high, backfill = two_jobs(db)
    awsio.send_job_batch(
        aws.sqs,
        aws.backfill_queue_url,
        [message(j, "v", "u", 75) for j in (high, backfill)],
    )
    messages = drain(aws.sqs, aws.backfill_queue_url)
    # Ten seconds left, under the 30 s safety margin: nothing is started.
    result = process(sqs_event(messages, aws.backfill_queue_url), timeout_ms=10_000)
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(
        m["MessageId"] for m in messages
    )
    assert {job_row(db, j)["status"] for j in (high, backfill)} == {"pending"}
    assert {job_row(db, j)["attempts"] for j in (high, backfill)} == {0}
