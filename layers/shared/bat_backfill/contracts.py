"""What passes between the functions: job messages on SQS, extraction requests with their
lease, and the extractors' replies (a result or an error, never a raised exception)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import BatBackfillError, EventError, JobError, LeaseLostError

# Stored and returned error texts are for operators; a whole HTML page is not.
MAX_MESSAGE_CHARS = 1000


class JobMessageError(EventError):
    """An SQS message body that names no job: poison, left for the DLQ."""


def _int(event: Mapping[str, Any], name: str) -> int | None:
    value = event.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise EventError(f"{name} must be an integer, got {value!r}")
    return value


def _text(event: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = event.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise EventError(f"{name} must be a non-empty string")
    return value.strip()


def _uuid(event: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = _text(event, name, required=required)
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise EventError(f"{name} must be a UUID, got {value[:60]!r}") from None


@dataclass(frozen=True, slots=True)
class JobMessage:
    """The body of an SQS wake-up message: which job to claim (Postgres holds the rest)."""

    job_id: int
    vehicle_id: str
    url: str
    priority: int

    def to_body(self) -> str:
        return json.dumps(
            {
                "job_id": self.job_id,
                "vehicle_id": self.vehicle_id,
                "url": self.url,
                "priority": self.priority,
            },
            separators=(",", ":"),
        )

    @classmethod
    def job_id_of(cls, body: str) -> int:
        """The job id a message names; JobMessageError for anything else.

        >>> JobMessage.job_id_of('{"job_id": 7, "priority": 75}')
        7
        """
        try:
            data = json.loads(body)
            job_id = data["job_id"]
        except (ValueError, TypeError, KeyError):
            raise JobMessageError(f"message names no job: {body[:120]!r}") from None
        if not isinstance(job_id, int) or isinstance(job_id, bool) or job_id <= 0:
            raise JobMessageError(f"message names no job: {body[:120]!r}")
        return job_id


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim on a job row: writes are accepted only while this generation holds it."""

    job_id: int
    generation: int


@dataclass(frozen=True, slots=True)
class ExtractionRequest:
    """What the queue processor asks an extractor to do (the same for both extractors)."""

    url: str
    vehicle_id: str | None = None
    lease: Lease | None = None
    snapshot_key: str | None = None

    def to_event(self) -> dict[str, Any]:
        event: dict[str, Any] = {"url": self.url}
        if self.vehicle_id is not None:
            event["vehicle_id"] = self.vehicle_id
        if self.lease is not None:
            event["job_id"] = self.lease.job_id
            event["lease_generation"] = self.lease.generation
        if self.snapshot_key is not None:
            event["snapshot_key"] = self.snapshot_key
        return event

    @classmethod
    def from_event(
        cls, event: Mapping[str, Any], *, vehicle_required: bool = False
    ) -> ExtractionRequest:
        """The request an event states; EventError names the first bad field.

        >>> ExtractionRequest.from_event({"url": "u", "job_id": 3, "lease_generation": 1}).lease
        Lease(job_id=3, generation=1)
        """
        if not isinstance(event, Mapping):
            raise EventError("the event must be a JSON object")
        job_id, generation = _int(event, "job_id"), _int(event, "lease_generation")
        if (job_id is None) != (generation is None):
            raise EventError("job_id and lease_generation come together")
        return cls(
            url=_text(event, "url", required=True) or "",
            vehicle_id=_uuid(event, "vehicle_id", required=vehicle_required),
            lease=Lease(job_id, generation)
            if job_id is not None and generation is not None
            else None,
            snapshot_key=_text(event, "snapshot_key"),
        )


class FailureKind(StrEnum):
    BAD_REQUEST = "bad_request"  # the request itself is wrong: never retried
    LEASE_LOST = "lease_lost"  # another worker owns the job now: write nothing
    JOB = "job"  # the job failed; `retryable` / `throttled` say what to do next


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    error_type: str
    message: str
    retryable: bool = False
    throttled: bool = False
    status: int | None = None


@dataclass(frozen=True, slots=True)
class ExtractionReply:
    """An extractor's answer: its result, or the failure that ended it."""

    result: Mapping[str, Any] | None = None
    failure: Failure | None = None

    @classmethod
    def success(cls, result: Mapping[str, Any]) -> ExtractionReply:
        return cls(result=dict(result))

    @classmethod
    def from_error(cls, exc: BatBackfillError) -> ExtractionReply:
        """The one mapping of an expected error to a reply (in-process or across Lambdas)."""
        message = str(exc)[:MAX_MESSAGE_CHARS]
        if isinstance(exc, LeaseLostError):
            failure = Failure(FailureKind.LEASE_LOST, type(exc).__name__, message)
        elif isinstance(exc, JobError):
            failure = Failure(
                FailureKind.JOB, exc.kind, message, exc.retryable, exc.throttled, exc.status
            )
        else:
            failure = Failure(FailureKind.BAD_REQUEST, type(exc).__name__, message)
        return cls(failure=failure)

    def to_payload(self) -> dict[str, Any]:
        if self.failure is None:
            return {"ok": True, **(self.result or {})}
        f = self.failure
        return {
            "ok": False,
            "error": {
                "kind": f.kind.value,
                "type": f.error_type,
                "message": f.message,
                "retryable": f.retryable,
                "throttled": f.throttled,
                "status": f.status,
            },
        }

    @classmethod
    def from_payload(cls, payload: Any) -> ExtractionReply:
        """The reply an extractor function returned; ValueError if it is not one."""
        if not isinstance(payload, Mapping) or not isinstance(payload.get("ok"), bool):
            raise ValueError(f"not an extractor reply: {str(payload)[:200]!r}")
        if payload["ok"]:
            return cls.success({k: v for k, v in payload.items() if k != "ok"})
        error = payload.get("error")
        if not isinstance(error, Mapping):
            raise ValueError(f"extractor reply without its error: {str(payload)[:200]!r}")
        status = error.get("status")
        return cls(
            failure=Failure(
                kind=FailureKind(error.get("kind", FailureKind.JOB.value)),
                error_type=str(error.get("type", "JobError")),
                message=str(error.get("message", "extractor failed")),
                retryable=bool(error.get("retryable")),
                throttled=bool(error.get("throttled")),
                status=status if isinstance(status, int) else None,
            )
        )

    def unwrap(self) -> dict[str, Any]:
        """The result, or the failure raised again as the error it was."""
        if self.failure is None:
            return dict(self.result or {})
        f = self.failure
        if f.kind is FailureKind.LEASE_LOST:
            raise LeaseLostError(f.message)
        retryable = f.retryable if f.kind is FailureKind.JOB else False
        raise JobError(
            f.message,
            retryable=retryable,
            throttled=f.throttled,
            status=f.status,
            kind=f.error_type,
        )
