"""The queue processor: claim a job, run both extractors, complete it or fail it with backoff;
or, forced, claim the best due jobs directly and run them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from . import aws
from .contracts import ExtractionReply, ExtractionRequest, JobMessage, Lease
from .db import queue as jobqueue
from .errors import BatBackfillError, EventError, JobError, LeaseLostError
from .extract import extract_comments, extract_listing
from .jobs import BackoffPolicy
from .models import Job
from .services import Services

# Stop taking new work this long before the function's timeout; unfinished records go back.
SAFETY_MS = 30_000


class Extractors(Protocol):
    """Runs the two extraction steps (in this process or as Lambdas); both answer with replies."""

    def listing(self, request: ExtractionRequest) -> ExtractionReply: ...

    def comments(self, request: ExtractionRequest) -> ExtractionReply: ...


class InProcessExtractors:
    """Both steps in this process; the comments step reuses the page already in memory."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._pages: dict[str, str] = {}

    def listing(self, request: ExtractionRequest) -> ExtractionReply:
        try:
            result, source = extract_listing(self.services, request)
        except BatBackfillError as exc:
            return ExtractionReply.from_error(exc)
        self._pages[request.url] = source.html
        return ExtractionReply.success(result.to_dict())

    def comments(self, request: ExtractionRequest) -> ExtractionReply:
        html = self._pages.pop(request.url, None)
        try:
            result = extract_comments(self.services, request, html=html)
        except BatBackfillError as exc:
            return ExtractionReply.from_error(exc)
        return ExtractionReply.success(result.to_dict())


class LambdaExtractors:
    """Both steps as synchronous invocations of the extractor functions."""

    def __init__(self, lambda_client: Any, premium_function: str, comments_function: str) -> None:
        self.client = lambda_client
        self.premium = premium_function
        self.comments_function = comments_function

    def _call(self, function: str, request: ExtractionRequest) -> ExtractionReply:
        payload = aws.invoke_function(self.client, function, request.to_event())
        try:
            return ExtractionReply.from_payload(payload)
        except ValueError as exc:
            # Not our contract: treat as a crash, so SQS retries the message.
            raise RuntimeError(f"{function}: {exc}") from None

    def listing(self, request: ExtractionRequest) -> ExtractionReply:
        return self._call(self.premium, request)

    def comments(self, request: ExtractionRequest) -> ExtractionReply:
        return self._call(self.comments_function, request)


def build_extractors(services: Services) -> Extractors:
    s = services.settings
    if services.lambda_client and s.premium_extractor_function and s.comments_extractor_function:
        return LambdaExtractors(
            services.lambda_client, s.premium_extractor_function, s.comments_extractor_function
        )
    return InProcessExtractors(services)


@dataclass(frozen=True)
class JobReport:
    job_id: int
    status: str  # complete | retry | failed | skipped | lease_lost | error
    error: str | None = None
    listing: dict[str, Any] | None = None
    comments: dict[str, Any] | None = None
    fetch_status: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ForceRequest:
    """The seed's force processing: `{"batchSize": 20, "maxAttempts": 3}`."""

    batch_size: int = 10
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 500:
            raise EventError("batchSize must be between 1 and 500")
        if self.max_attempts is not None and not 1 <= self.max_attempts <= 50:
            raise EventError("maxAttempts must be between 1 and 50")

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ForceRequest:
        values: dict[str, int] = {}
        for key, name in (("batchSize", "batch_size"), ("maxAttempts", "max_attempts")):
            value = event.get(key)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise EventError(f"{key} must be an integer, got {value!r}")
            values[name] = value
        return cls(**values)


@dataclass(frozen=True)
class ForceReport:
    jobs: tuple[JobReport, ...]

    def by_status(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.jobs:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "processed": len(self.jobs),
            "by_status": self.by_status(),
            "jobs": [r.to_dict() for r in self.jobs],
        }


def job_request(job: Job) -> ExtractionRequest:
    """What the extractors are asked for a claimed job, fenced by its lease."""
    lease = Lease(job.id, job.lease_generation)
    return ExtractionRequest(url=job.bat_url, vehicle_id=job.vehicle_id, lease=lease)


def run_job(
    services: Services, job: Job, extractors: Extractors, *, policy: BackoffPolicy | None = None
) -> JobReport:
    """Both extractors for a claimed job, then complete it; job errors fail it with backoff.

    Unexpected errors (a lost database, a bug) propagate, so SQS redelivers the message and a
    poison message ends in the DLQ.
    """
    request = job_request(job)
    started = time.monotonic()
    deadline = services.settings.job_deadline_seconds
    try:
        listing = extractors.listing(request).unwrap()
        _check_deadline(started, deadline)
        snapshot = listing.get("snapshot_key")
        comments = extractors.comments(replace(request, snapshot_key=snapshot)).unwrap()
        _check_deadline(started, deadline)
    except LeaseLostError as exc:
        return JobReport(job.id, "lease_lost", str(exc))
    except JobError as exc:
        status = jobqueue.fail(
            services.db.connection(),
            job,
            f"{exc.kind}: {exc}",
            retryable=exc.retryable,
            throttled=exc.throttled,
            policy=policy or services.settings.backoff,
        )
        if status is None:
            return JobReport(job.id, "lease_lost", str(exc), fetch_status=exc.status)
        kind = "retry" if status.value == "pending" else "failed"
        return JobReport(job.id, kind, str(exc), fetch_status=exc.status)
    if not jobqueue.complete(services.db.connection(), job):
        return JobReport(job.id, "lease_lost", "lease expired before completion")
    return JobReport(
        job.id,
        "complete",
        listing=listing,
        comments=comments,
        fetch_status=listing.get("fetch_status"),
    )


def _check_deadline(started: float, deadline_seconds: float) -> None:
    """A job past its deadline is failed as retryable, so it never waits out its lease."""
    if time.monotonic() - started > deadline_seconds:
        raise JobError(
            f"job ran past its {deadline_seconds:g} s deadline; retried later",
            retryable=True,
            kind="JobDeadlineError",
        )


def process_message(
    services: Services,
    body: str,
    extractors: Extractors,
    *,
    remaining_ms: Callable[[], int] | None = None,
) -> JobReport:
    """One SQS record: claim the job it names (a duplicate or not-yet-due job is skipped).

    Too close to the function's timeout, the record is not started: TimeoutError hands it back
    to SQS, which delivers it again after the visibility timeout.
    """
    if remaining_ms is not None and remaining_ms() < SAFETY_MS:
        raise TimeoutError("too close to the function timeout; record handed back")
    job_id = JobMessage.job_id_of(body)
    job = jobqueue.claim_job(
        services.db.connection(), job_id, services.worker_id, services.settings.lease_seconds
    )
    if job is None:
        return JobReport(job_id, "skipped", "not claimable (done, running elsewhere or not due)")
    gave_up = _give_up_if_exhausted(services, job, services.settings.backoff)
    if gave_up is not None:
        return gave_up
    try:
        return run_job(services, job, extractors)
    except Exception as exc:
        _hand_back(services, job, f"{type(exc).__name__}: {exc}")
        raise


def force_process(
    services: Services,
    extractors: Extractors,
    request: ForceRequest,
    *,
    remaining_ms: Callable[[], int] | None = None,
) -> ForceReport:
    """Claim the best due jobs directly and run them, up to `request.batch_size`."""
    policy = services.settings.backoff
    if request.max_attempts is not None:
        policy = replace(policy, max_attempts=request.max_attempts)
    reports: list[JobReport] = []
    for _ in range(request.batch_size):
        if remaining_ms is not None and remaining_ms() < SAFETY_MS:
            break
        job = jobqueue.claim_next(
            services.db.connection(), services.worker_id, services.settings.lease_seconds
        )
        if job is None:
            break
        gave_up = _give_up_if_exhausted(services, job, policy)
        if gave_up is not None:
            reports.append(gave_up)
            continue
        try:
            reports.append(run_job(services, job, extractors, policy=policy))
        except Exception as exc:
            _hand_back(services, job, f"{type(exc).__name__}: {exc}")
            reports.append(JobReport(job.id, "error", f"{type(exc).__name__}: {exc}"))
            # Not a job error: the database or the code is in trouble; claiming more (perhaps
            # this same job again, due at once) would only repeat it.
            break
    return ForceReport(tuple(reports))


def _give_up_if_exhausted(services: Services, job: Job, policy: BackoffPolicy) -> JobReport | None:
    """A claim past the last attempt means earlier attempts crashed their workers (a poison
    job): fail it for good instead of running it again."""
    if job.attempts <= policy.max_attempts:
        return None
    error = f"gave up after {job.attempts - 1} attempts that crashed the worker"
    jobqueue.fail(services.db.connection(), job, error, retryable=False, policy=policy)
    return JobReport(job.id, "failed", error)


def _hand_back(services: Services, job: Job, error: str) -> None:
    # Best effort: if the database is gone the lease simply expires and is rescued.
    services.db.reset()
    try:
        jobqueue.hand_back(services.db.connection(), job, error)
    except Exception:
        services.db.reset()


def release_claims(services: Services) -> list[Job]:
    """Put every job this worker holds back to pending (a run stopped by the operator); the
    jobs released. The attempt is not counted: the job did not fail, it was stopped. Releasing
    by worker also catches a claim whose reply the interruption cut off."""
    # The interruption may have cut a statement short, leaving the connection mid-reply.
    services.db.reset()
    conn = services.db.connection()
    return jobqueue.release(conn, jobqueue.held_jobs(conn, worker=services.worker_id))
