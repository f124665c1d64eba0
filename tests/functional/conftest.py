"""Fixtures for driving the real handlers: emulated AWS, a local BaT, the Lambda environment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bat_backfill import localaws
from bat_backfill.models import Outcome
from bat_backfill.pageserver import PageServer
from bat_backfill.samplepages import PageSpec, render_page
from bat_backfill.services import Services, build_services

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


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[localaws.LocalAws]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", localaws.REGION)
    from moto import mock_aws

    with mock_aws():
        yield localaws.create_resources()


@pytest.fixture
def bat() -> Iterator[PageServer]:
    server = PageServer()
    server.set_listing("2001-ferrari-360-spider-89", render_page(FERRARI_PAGE))
    server.set_listing("2009-porsche-cayman-46", render_page(CAYMAN_PAGE))
    with server:
        yield server


@pytest.fixture
def lambda_env(
    monkeypatch: pytest.MonkeyPatch, db_url: str, aws: localaws.LocalAws, bat: PageServer
) -> dict[str, str]:
    """The environment the template gives the functions, pointed at local stand-ins."""
    env = {
        "DATABASE_URL": db_url,
        "BAT_BASE_URL": bat.base_url,
        "REQUEST_INTERVAL_SECONDS": "0.001",
        "DISCOVERY_ENABLED": "false",
        "POWERTOOLS_METRICS_NAMESPACE": "BatBackfillTest",
        **aws.environment(),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    monkeypatch.delenv("PREMIUM_EXTRACTOR_FUNCTION", raising=False)
    monkeypatch.delenv("COMMENTS_EXTRACTOR_FUNCTION", raising=False)
    return env


@pytest.fixture
def services(lambda_env: dict[str, str]) -> Iterator[Services]:
    built = build_services()
    yield built
    built.close()


def add_vehicle(conn: Any, vehicle_id: str, url: str, **columns: Any) -> None:
    names = ", ".join(["id", "bat_auction_url", *columns])
    values = ", ".join(["CAST(:id AS uuid)", ":url", *(f":{k}" for k in columns)])
    conn.run(f"INSERT INTO vehicles ({names}) VALUES ({values})", id=vehicle_id, url=url, **columns)


def add_job(conn: Any, vehicle_id: str, url: str, priority: int = 75) -> int:
    return int(
        conn.run(
            "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, priority, status) "
            "VALUES (CAST(:v AS uuid), :u, :p, 'pending') RETURNING id",
            v=vehicle_id,
            u=url,
            p=priority,
        )[0][0]
    )


def job_row(conn: Any, job_id: int) -> dict[str, Any]:
    rows = conn.run("SELECT * FROM bat_extraction_queue WHERE id = :id", id=job_id)
    names = [c["name"] for c in conn.columns]
    return dict(zip(names, rows[0], strict=True))


def vehicle_row(conn: Any, vehicle_id: str) -> dict[str, Any]:
    rows = conn.run("SELECT * FROM vehicles WHERE id = CAST(:id AS uuid)", id=vehicle_id)
    names = [c["name"] for c in conn.columns]
    return dict(zip(names, rows[0], strict=True))


def sqs_event(messages: list[dict[str, Any]], queue_url: str) -> dict[str, Any]:
    """An SQS->Lambda event from messages received with boto3 (as the mapping builds it)."""
    from bat_backfill.aws import lambda_sqs_record

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
