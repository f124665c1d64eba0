"""The only code that talks to AWS: snapshots in S3, job messages in SQS, DLQ redrive, the
database secret and synchronous calls of the extractor functions."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from .contracts import JobMessage
from .errors import AwsError

if TYPE_CHECKING:
    from boto3.session import Session
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

SNAPSHOT_PREFIX = "listings/"
SQS_BATCH_MAX = 10  # SendMessageBatch takes at most ten entries


# boto3 reads AWS_DEFAULT_REGION; AWS_REGION (which Lambda also sets) is not read by it.
NO_REGION = "no AWS region: set AWS_DEFAULT_REGION (or region in your AWS profile)"
NO_CREDENTIALS = (
    "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "or run where a role provides them"
)


def explain_aws_error(exc: Exception) -> AwsError:
    """One line for an AWS failure that says what to set or check; never a credential."""
    if isinstance(exc, NoRegionError):
        return AwsError(NO_REGION)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AwsError(NO_CREDENTIALS)
    if isinstance(exc, EndpointConnectionError):
        return AwsError(f"cannot reach AWS: {exc}", unreachable=True)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "error"), error.get("Message", "")
        return AwsError(f"AWS refused the request ({code}): {message}"[:500])
    return AwsError(f"AWS failed: {type(exc).__name__}: {exc}"[:500])


def snapshot_key(slug: str, fetched_at: datetime) -> str:
    """Keys sort by time within a listing, so the newest is the last one listed.

    >>> snapshot_key("2009-porsche-cayman-46", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    'listings/2009-porsche-cayman-46/20260102T030405Z.html.gz'
    """
    return f"{SNAPSHOT_PREFIX}{slug}/{fetched_at.astimezone(UTC):%Y%m%dT%H%M%SZ}.html.gz"


def snapshot_time(key: str) -> datetime | None:
    stamp = key.rsplit("/", 1)[-1].removesuffix(".html.gz")
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def save_snapshot(s3: S3Client, bucket: str, key: str, html: str, source_url: str) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=gzip.compress(html.encode("utf-8"), compresslevel=6),
        ContentType="text/html; charset=utf-8",
        ContentEncoding="gzip",
        Metadata={"source-url": source_url},
    )


def load_snapshot(s3: S3Client, bucket: str, key: str) -> str | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return gzip.decompress(body).decode("utf-8")


def check_configuration(session: Session) -> None:
    """Raise AwsError unless `session` has a region and credentials: a command that will use
    AWS says so in one line before it does any work, not in a traceback halfway through."""
    try:
        region = session.region_name
        credentials = session.get_credentials()
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        raise explain_aws_error(exc) from exc
    if not region:
        raise AwsError(NO_REGION)
    if credentials is None:
        raise AwsError(NO_CREDENTIALS)


def send_job_batch(
    sqs: SQSClient, queue_url: str, messages: Sequence[tuple[JobMessage, int]]
) -> list[int]:
    """Send up to ten (message, delay seconds) pairs in one call; the job ids SQS accepted.

    A call that fails as a whole (no credentials, no network, a missing queue) raises AwsError:
    none of its messages was accepted.
    """
    if len(messages) > SQS_BATCH_MAX:
        raise ValueError(f"at most {SQS_BATCH_MAX} messages per batch, got {len(messages)}")
    if not messages:
        return []
    try:
        result = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {
                    "Id": str(m.job_id),
                    "MessageBody": m.to_body(),
                    # SQS caps DelaySeconds at 15 minutes.
                    "DelaySeconds": max(0, min(900, delay)),
                    "MessageAttributes": {
                        "priority": {"DataType": "Number", "StringValue": str(m.priority)},
                        "job_id": {"DataType": "Number", "StringValue": str(m.job_id)},
                    },
                }
                for m, delay in messages
            ],
        )
    except (BotoCoreError, ClientError) as exc:
        raise explain_aws_error(exc) from exc
    return [int(entry["Id"]) for entry in result.get("Successful", [])]


def queue_arn(sqs: SQSClient, queue_url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return attrs["Attributes"]["QueueArn"]


def queue_depth(sqs: SQSClient, queue_url: str) -> dict[str, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)  # type: ignore[arg-type]
    values = cast(dict[str, str], attrs["Attributes"])
    return {name: int(values.get(name) or 0) for name in names}


@dataclass(frozen=True, slots=True)
class RedriveResult:
    moved: int
    job_ids: tuple[int, ...]
    method: str  # "move-task" or "receive-send-delete"
    task_handle: str | None = None


def _job_id_of(body: str) -> int | None:
    try:
        value = json.loads(body).get("job_id")
    except (ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) else None


def peek_dlq_job_ids(sqs: SQSClient, dlq_url: str, *, limit: int = 1000) -> list[int]:
    """Job ids of messages waiting in the DLQ (seen briefly, then visible again)."""
    seen: list[int] = []
    handles: list[str] = []
    while len(seen) < limit:
        got = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
        ).get("Messages", [])
        if not got:
            break
        for m in got:
            handles.append(m["ReceiptHandle"])
            job_id = _job_id_of(m.get("Body", ""))
            if job_id is not None:
                seen.append(job_id)
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return seen


def redrive_dlq(
    sqs: SQSClient,
    dlq_url: str,
    source_queue_for_priority: dict[int, str],
    *,
    max_messages: int = 10_000,
) -> RedriveResult:
    """Move DLQ messages back to the queue they came from.

    SQS's StartMessageMoveTask returns each message to its own source queue; where it is not
    available (emulators), receive, send to the queue named by the message's priority, delete.
    """
    job_ids = tuple(peek_dlq_job_ids(sqs, dlq_url, limit=max_messages))
    try:
        task = sqs.start_message_move_task(SourceArn=queue_arn(sqs, dlq_url))
        return RedriveResult(len(job_ids), job_ids, "move-task", task.get("TaskHandle"))
    except (NotImplementedError, ClientError) as exc:
        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") not in (
            "UnsupportedOperation",
            "InternalFailure",
            "500",
            "InvalidAction",
        ):
            raise
    moved: list[int] = []
    fallback = source_queue_for_priority.get(75) or next(iter(source_queue_for_priority.values()))
    while len(moved) < max_messages:
        got = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=60,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            break
        for m in got:
            body = m.get("Body", "")
            attributes: dict[str, Any] = m.get("MessageAttributes", {})
            priority = _priority_of(body, attributes)
            target = source_queue_for_priority.get(priority, fallback)
            sqs.send_message(QueueUrl=target, MessageBody=body, MessageAttributes=attributes)
            # Delete only after the copy is safely in the source queue: nothing is lost.
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
            job_id = _job_id_of(body)
            moved.append(job_id if job_id is not None else -1)
    ids = tuple(j for j in moved if j >= 0)
    return RedriveResult(len(moved), ids, "receive-send-delete")


def _priority_of(body: str, attributes: dict[str, Any]) -> int:
    raw = attributes.get("priority", {}).get("StringValue")
    if raw is None:
        try:
            raw = json.loads(body).get("priority")
        except (ValueError, AttributeError):
            raw = None
    try:
        return int(raw) if raw is not None else 75
    except (TypeError, ValueError):
        return 75


def read_secret_json(secret_arn: str, *, max_age_seconds: int = 300) -> dict[str, Any]:
    """A JSON secret from Secrets Manager, cached per warm container by Powertools."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_arn, transform="json", max_age=max_age_seconds)
    if not isinstance(value, dict):
        raise ValueError("the secret must hold a JSON object")
    return value


def invoke_function(lambda_client: LambdaClient, function: str, payload: dict[str, Any]) -> Any:
    """Call a function synchronously and return what it returned.

    A crash inside it (FunctionError) raises RuntimeError: the caller's own retry (SQS
    redelivery) handles it, as it would a crash in this process.
    """
    response = lambda_client.invoke(
        FunctionName=function,
        InvocationType="RequestResponse",
        Payload=json.dumps(payload).encode(),
    )
    body = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        detail = body.get("errorMessage", body) if isinstance(body, dict) else body
        raise RuntimeError(f"{function} failed: {str(detail)[:500]}")
    return body
