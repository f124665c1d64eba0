"""DLQ redrive: messages back to their source queue, their jobs claimable again."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from . import aws
from .db import queue as jobqueue
from .models import Priority
from .services import Services


class RedriveError(RuntimeError):
    """The queues needed for a redrive are not configured."""


@dataclass(frozen=True)
class RedriveReport:
    moved: int
    jobs_reset: int
    method: str
    task_handle: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def redrive(services: Services) -> RedriveReport:
    s = services.settings
    if services.sqs is None or not (s.dlq_url and s.high_queue_url and s.backfill_queue_url):
        raise RedriveError("redrive needs DLQ_URL, HIGH_QUEUE_URL and BACKFILL_QUEUE_URL")
    result = aws.redrive_dlq(
        services.sqs,
        s.dlq_url,
        {Priority.NEW_LISTING: s.high_queue_url, Priority.BACKFILL: s.backfill_queue_url},
    )
    # The rows first become claimable again; the moved messages then find them pending.
    reset = jobqueue.reset_for_redrive(services.db.connection(), list(result.job_ids))
    return RedriveReport(result.moved, reset, result.method, result.task_handle)
