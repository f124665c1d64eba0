"""The queue processor: claim a job, run both extractors, complete it or fail it with backoff."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from .db import queue as jobqueue
from .errors import FetchError, JobError
from .extract import extract_comments, extract_listing
from .jobs import BackoffPolicy
from .models import Job
from .services import Services


class JobMessageError(ValueError):
    """An SQS message body that names no job: poison, left for the DLQ."""


class Extractors(Protocol):
    """Runs the two extraction steps for a claimed job (in-process or as Lambdas)."""

    def listing(self, job: Job) -> dict[str, Any]: ...

    def comments(self, job: Job, listing: dict[str, Any]) -> dict[str, Any]: ...


class InProcessExtractors:
    """Both steps in this process; the comments step reuses the page already in memory."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._pages: dict[int, str] = {}

    def listing(self, job: Job) -> dict[str, Any]:
        result, source = extract_listing(
            self.services, job.bat_url, vehicle_id=job.vehicle_id, job=job
        )
        self._pages[job.id] = source.html
        return result.to_dict()

    def comments(self, job: Job, listing: dict[str, Any]) -> dict[str, Any]:
        html = self._pages.pop(job.id, None)
        return extract_comments(
            self.services,
            job.vehicle_id,
            job.bat_url,
            snapshot_key=listing.get("snapshot_key"),
            html=html,
            job=job,
        ).to_dict()


class RemoteJobError(JobError):
    """A job error reported by an extractor Lambda, with its retry flags."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(str(payload.get("error", "extractor failed")))
        self.retryable = bool(payload.get("retryable"))
        self.throttled = bool(payload.get("throttled"))


class LambdaExtractors:
    """Both steps as synchronous invocations of the extractor functions."""

    def __init__(self, lambda_client: Any, premium_function: str, comments_function: str) -> None:
        self.client = lambda_client
        self.premium = premium_function
        self.comments_fn = comments_function

    def _invoke(self, function: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = self.client.invoke(
            FunctionName=function,
            InvocationType="RequestResponse",
            Payload=json.dumps(payload).encode(),
        )
        body = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            # A crash inside the extractor (not a job error): let SQS retry the message.
            raise RuntimeError(f"{function} failed: {body.get('errorMessage', body)}")
        if body.get("lease_lost"):
            raise jobqueue.LeaseLostError(str(body.get("error", "lease lost")))
        if not body.get("ok", False):
            raise RemoteJobError(body)
        return dict(body)

    def listing(self, job: Job) -> dict[str, Any]:
        return self._invoke(
            self.premium,
            {
                "url": job.bat_url,
                "vehicle_id": job.vehicle_id,
                "job_id": job.id,
                "lease_generation": job.lease_generation,
            },
        )

    def comments(self, job: Job, listing: dict[str, Any]) -> dict[str, Any]:
        return self._invoke(
            self.comments_fn,
            {
                "vehicle_id": job.vehicle_id,
                "url": job.bat_url,
                "snapshot_key": listing.get("snapshot_key"),
                "job_id": job.id,
                "lease_generation": job.lease_generation,
            },
        )


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
    status: str  # complete | retry | failed | skipped | lease_lost
    error: str | None = None
    listing: dict[str, Any] | None = None
    comments: dict[str, Any] | None = None
    fetch_status: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_job_message(body: str) -> int:
    """The job id carried by an SQS message.

    >>> parse_job_message('{"job_id": 7, "priority": 75}')
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


def run_job(
    services: Services, job: Job, extractors: Extractors, *, policy: BackoffPolicy | None = None
) -> JobReport:
    """Both extractors for a claimed job, then complete it; job errors fail it with backoff.

    Unexpected errors (a lost database, a bug) hand the job back and propagate, so SQS
    redelivers the message and a poison message ends in the DLQ.
    """
    settings = services.settings
    try:
        listing = extractors.listing(job)
        comments = extractors.comments(job, listing)
    except jobqueue.LeaseLostError as exc:
        return JobReport(job.id, "lease_lost", str(exc))
    except JobError as exc:
        status = jobqueue.fail(
            services.db(),
            job,
            f"{type(exc).__name__}: {exc}",
            retryable=exc.retryable,
            throttled=exc.throttled,
            policy=policy or settings.backoff,
        )
        fetch_status = exc.status if isinstance(exc, FetchError) else None
        if status is None:
            return JobReport(job.id, "lease_lost", str(exc), fetch_status=fetch_status)
        kind = "retry" if status.value == "pending" else "failed"
        return JobReport(job.id, kind, str(exc), fetch_status=fetch_status)
    if not jobqueue.complete(services.db(), job):
        return JobReport(job.id, "lease_lost", "lease expired before completion")
    return JobReport(
        job.id,
        "complete",
        listing=listing,
        comments=comments,
        fetch_status=listing.get("fetch_status"),
    )


def process_message(services: Services, body: str, extractors: Extractors) -> JobReport:
    """One SQS record: claim the job it names (a duplicate or not-yet-due job is skipped)."""
    job_id = parse_job_message(body)
    job = jobqueue.claim_job(
        services.db(), job_id, services.worker_id, services.settings.lease_seconds
    )
    if job is None:
        return JobReport(job_id, "skipped", "not claimable (done, running elsewhere or not due)")
    gave_up = _give_up_if_exhausted(services, job, services.settings.backoff)
    if gave_up is not None:
        return gave_up
    try:
        return run_job(services, job, extractors)
    except Exception as exc:
        services.reset_db()
        _hand_back(services, job, f"{type(exc).__name__}: {exc}")
        raise


def _give_up_if_exhausted(services: Services, job: Job, policy: BackoffPolicy) -> JobReport | None:
    """A claim past the last attempt means earlier attempts crashed their workers (a poison
    job): fail it for good instead of running it again."""
    if job.attempts <= policy.max_attempts:
        return None
    error = f"gave up after {job.attempts - 1} attempts that crashed the worker"
    jobqueue.fail(services.db(), job, error, retryable=False, policy=policy)
    return JobReport(job.id, "failed", error)


def _hand_back(services: Services, job: Job, error: str) -> None:
    # Best effort: if the database is gone the lease simply expires and is rescued.
    try:
        jobqueue.hand_back(services.db(), job, error)
    except Exception:
        services.reset_db()


def force_process(
    services: Services,
    extractors: Extractors,
    *,
    batch_size: int,
    max_attempts: int | None = None,
    deadline_ms: int | None = None,
    remaining_ms: Callable[[], int] | None = None,
) -> list[JobReport]:
    """The seed's force processing: claim the best due jobs directly and run them."""
    if batch_size < 1 or batch_size > 500:
        raise ValueError("batchSize must be between 1 and 500")
    if max_attempts is not None and not 1 <= max_attempts <= 50:
        raise ValueError("maxAttempts must be between 1 and 50")
    policy = services.settings.backoff
    if max_attempts is not None:
        policy = replace(policy, max_attempts=max_attempts)
    reports: list[JobReport] = []
    for _ in range(batch_size):
        if remaining_ms is not None and deadline_ms is not None and remaining_ms() < deadline_ms:
            break
        job = jobqueue.claim_next(
            services.db(), services.worker_id, services.settings.lease_seconds
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
            services.reset_db()
            _hand_back(services, job, f"{type(exc).__name__}: {exc}")
            reports.append(JobReport(job.id, "error", f"{type(exc).__name__}: {exc}"))
            # Not a job error: the database or the code is in trouble; claiming more (perhaps
            # this same job again, due at once) would only repeat it.
            break
    return reports


__all__ = [
    "Extractors",
    "InProcessExtractors",
    "JobMessageError",
    "JobReport",
    "LambdaExtractors",
    "build_extractors",
    "force_process",
    "parse_job_message",
    "process_message",
    "run_job",
]
