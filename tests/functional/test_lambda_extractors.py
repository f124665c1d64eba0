"""The processor calling the extractors as Lambda functions (the AWS wiring), end to end."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from bat_backfill_tools.invoke import invoke_function
from bat_backfill_tools.pageserver import Reply

from bat_backfill.process import LambdaExtractors, process_message
from tests.functional.support import (
    FERRARI,
    FERRARI_ID,
    add_job,
    add_vehicle,
    job_body,
    job_row,
    vehicle_row,
)


class LocalLambda:
    """Answers lambda.invoke by running the named function's real handler here."""

    def __init__(self, crash: bool = False) -> None:
        self.calls: list[str] = []
        self.crash = crash

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        self.calls.append(FunctionName)
        if self.crash:
            body = {"errorMessage": "Task timed out", "errorType": "Sandbox.Timedout"}
            return {"StatusCode": 200, "FunctionError": "Unhandled",
                    "Payload": io.BytesIO(json.dumps(body).encode())}  # fmt: skip
        result = invoke_function(FunctionName, json.loads(Payload))
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}


def deliver(services: Any, client: LocalLambda, job_id: int) -> Any:
    extractors = LambdaExtractors(client, "premium_extractor", "comments_extractor")
    return process_message(services, job_body(job_id),
                           extractors)  # fmt: skip


def test_the_processor_runs_both_extractor_functions(db, services):
    add_vehicle(db, FERRARI_ID, FERRARI, sale_status="sold", sale_price=53_000)
    job_id = add_job(db, FERRARI_ID, FERRARI)
    client = LocalLambda()
    report = deliver(services, client, job_id)
    assert report.status == "complete"
    assert client.calls == ["premium_extractor", "comments_extractor"]
    assert vehicle_row(db, FERRARI_ID)["sale_status"] == "bid_to"
    assert db.run("SELECT count(*) FROM bat_comments")[0][0] > 0


def test_a_job_error_inside_the_extractor_fails_the_job_with_its_reason(db, services, bat):
    add_vehicle(db, FERRARI_ID, FERRARI)
    job_id = add_job(db, FERRARI_ID, FERRARI)
    bat.set_listing("2001-ferrari-360-spider-89", Reply(404, b"gone"))
    report = deliver(services, LocalLambda(), job_id)
    row = job_row(db, job_id)
    assert report.status == "failed"
    assert (row["status"], row["error_kind"]) == ("failed", "permanent")
    assert "404" in row["error_message"]


def test_an_extractor_crash_hands_the_job_back_for_sqs_to_retry(db, services):
    add_vehicle(db, FERRARI_ID, FERRARI)
    job_id = add_job(db, FERRARI_ID, FERRARI)
    with pytest.raises(RuntimeError, match="Task timed out"):
        deliver(services, LocalLambda(crash=True), job_id)
    row = job_row(db, job_id)
    assert (row["status"], row["attempts"], row["locked_by"]) == ("pending", 1, None)
    assert "Task timed out" in row["error_message"]
