"""Constants, sample pages and small helpers shared by the functional tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bat_backfill_tools.localaws import lambda_sqs_record
from bat_backfill_tools.samplepages import PageSpec

from bat_backfill.contracts import JobMessage
from bat_backfill.models import Outcome

FERRARI = "https://bringatrailer.com/listing/2001-ferrari-360-spider-89/"
CAYMAN = "https://bringatrailer.com/listing/2009-porsche-cayman-46/"
FERRARI_ID = "0b6f6c1e-5c1a-4f4e-9a43-3f1f6d0c9a01"
CAYMAN_ID = "0b6f6c1e-5c1a-4f4e-9a43-3f1f6d0c9a02"

FERRARI_PAGE = PageSpec(
    url=FERRARI, year=2001, make="Ferrari", model="360 Spider", outcome=Outcome.BID_TO,
    price=53_000, buyer=None, vin="ZFFYT53A110123456", transmission="Six-Speed Manual",
    exterior_color="Giallo Modena", lot=210_001, post_id=91_000_001,
    extra_comments=("My neighbour's car sold for USD $437,250 last year",),
)  # fmt: skip
CAYMAN_PAGE = PageSpec(
    url=CAYMAN, year=2009, make="Porsche", model="Cayman", outcome=Outcome.SOLD, price=41_000,
    vin="WP0AA29879U760001", lot=210_002, post_id=91_000_002,
)  # fmt: skip


def add_vehicle(conn: Any, vehicle_id: str, url: str, **columns: Any) -> None:
    names = ", ".join(["id", "bat_auction_url", *columns])
    values = ", ".join(["CAST(:id AS uuid)", ":url", *(f":{k}" for k in columns)])
    conn.run(f"INSERT INTO vehicles ({names}) VALUES ({values})", id=vehicle_id, url=url, **columns)


def add_job(conn: Any, vehicle_id: str, url: str, priority: int = 75) -> int:
    return int(
        conn.run(
            "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, priority, status) "
            "VALUES (CAST(:v AS uuid), :u, :p, 'pending') RETURNING job_no",
            v=vehicle_id,
            u=url,
            p=priority,
        )[0][0]
    )


def job_row(conn: Any, job_id: int) -> dict[str, Any]:
    rows = conn.run("SELECT * FROM bat_extraction_queue WHERE job_no = :id", id=job_id)
    names = [c["name"] for c in conn.columns]
    return dict(zip(names, rows[0], strict=True))


def vehicle_row(conn: Any, vehicle_id: str) -> dict[str, Any]:
    rows = conn.run("SELECT * FROM vehicles WHERE id = CAST(:id AS uuid)", id=vehicle_id)
    names = [c["name"] for c in conn.columns]
    return dict(zip(names, rows[0], strict=True))


def sqs_event(messages: list[dict[str, Any]], queue_url: str) -> dict[str, Any]:
    """An SQS->Lambda event from messages received with boto3 (as the mapping builds it)."""
    return {"Records": [lambda_sqs_record(m, queue_url) for m in messages]}


def drain(sqs: Any, queue_url: str, *, delete: bool = True) -> list[dict[str, Any]]:
    """Every message currently receivable from a queue (moto returns few per call)."""
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            return out
        out += got
        if delete:
            for m in got:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def job_body(
    job_id: int, vehicle_id: str = FERRARI_ID, url: str = FERRARI, priority: int = 75
) -> str:
    """The SQS message body the orchestrator sends for a job."""
    return JobMessage(job_id, vehicle_id, url, priority).to_body()


def sqs_record(body: str, message_id: str = "m1") -> dict[str, Any]:
    """One record of an SQS->Lambda event, as the event source mapping delivers it."""
    return {
        "messageId": message_id,
        "receiptHandle": "r",
        "body": body,
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
        "awsRegion": "us-east-1",
    }


def forget_aws_configuration(monkeypatch: Any, tmp_path: Path, *, region: bool = True) -> None:
    """This process as on a machine with no AWS credentials anywhere (and, with `region`, no
    region): nothing in the environment or in ~/.aws, and the instance metadata service never
    asked (there is no network)."""
    names = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ]
    for key in names + (["AWS_REGION", "AWS_DEFAULT_REGION"] if region else []):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
