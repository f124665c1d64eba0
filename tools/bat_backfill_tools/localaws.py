"""In-process AWS emulation (moto) with the same queues, DLQ and bucket the template creates."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

REGION = "us-east-1"
MAX_RECEIVE_COUNT = 5
VISIBILITY_TIMEOUT = 720  # 6 x the processor's 120 s timeout, as in template.yaml


@dataclass(frozen=True)
class LocalAws:
    high_queue_url: str
    backfill_queue_url: str
    dlq_url: str
    bucket: str
    s3: Any
    sqs: Any

    def environment(self) -> dict[str, str]:
        return {
            "HIGH_QUEUE_URL": self.high_queue_url,
            "BACKFILL_QUEUE_URL": self.backfill_queue_url,
            "DLQ_URL": self.dlq_url,
            "SNAPSHOT_BUCKET": self.bucket,
        }


def create_resources(*, visibility_timeout: int = VISIBILITY_TIMEOUT) -> LocalAws:
    """Queues, DLQ (with redrive policy) and snapshot bucket; call inside an active mock."""
    import boto3

    sqs = boto3.client("sqs", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    dlq_url = sqs.create_queue(
        QueueName="bat-backfill-dlq", Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
    urls = {}
    for name in ("high", "backfill"):
        urls[name] = sqs.create_queue(
            QueueName=f"bat-backfill-{name}",
            Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": redrive},
        )["QueueUrl"]
    bucket = "bat-backfill-snapshots-local"
    s3.create_bucket(Bucket=bucket)
    return LocalAws(urls["high"], urls["backfill"], dlq_url, bucket, s3, sqs)


@contextmanager
def scoped_environ(updates: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then put every one back as it was."""
    saved = {key: os.environ.get(key) for key in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def emulated_aws(*, queues: bool = True) -> Iterator[LocalAws]:
    """moto in this process, with fake credentials so nothing can reach real AWS.

    Without `queues` only the snapshot bucket is named in the environment: messages sent to an
    emulated queue vanish with this process, so a caller that will not receive them itself must
    not send them (the orchestrator then marks nothing dispatched).
    """
    from moto import mock_aws

    fake = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    with scoped_environ(fake), mock_aws():
        resources = create_resources()
        named = resources.environment()
        if not queues:
            named = {"SNAPSHOT_BUCKET": named["SNAPSHOT_BUCKET"]}
        with scoped_environ(named):
            yield resources


def lambda_sqs_record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
    """A message received with boto3, shaped as the SQS event source mapping delivers it."""
    arn = "arn:aws:sqs:us-east-1:123456789012:" + queue_url.rsplit("/", 1)[-1]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            k: {"stringValue": v.get("StringValue"), "dataType": v.get("DataType")}
            for k, v in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "us-east-1",
    }
