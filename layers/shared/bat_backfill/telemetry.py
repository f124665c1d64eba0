"""The numbers each function reports as CloudWatch metrics, named in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from .contracts import ExtractionReply, FailureKind

if TYPE_CHECKING:
    # Types only: the orchestrator's handler must not load the extraction pipeline.
    from .orchestrate import RunReport
    from .process import JobReport


def emit(metrics: Metrics, counts: Mapping[str, float]) -> None:
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def response_counts(status: int | None) -> dict[str, float]:
    """One count for BaT's answer to a fetch (none when a snapshot was reused).

    >>> response_counts(429), response_counts(None)
    ({'BatResponse429': 1.0}, {})
    """
    if status is None:
        return {}
    if status == 429:
        name = "BatResponse429"
    elif status >= 500:
        name = "BatResponse5xx"
    elif status >= 400:
        name = "BatResponse4xx"
    else:
        name = "BatResponse2xx"
    return {name: 1.0}


def _repair_counts(listing: Mapping[str, Any]) -> dict[str, float]:
    corrected = listing.get("corrected", [])
    counts = {"FieldsRepaired": float(len(listing.get("filled", [])) + len(corrected))}
    if {"sale_status", "sale_price"} & set(corrected):
        counts["OutcomesCorrected"] = 1.0
    return counts


_JOB_STATUS_METRIC = {
    "complete": "JobsCompleted",
    "retry": "JobsRetried",
    "failed": "JobsFailed",
    "lease_lost": "LeasesLost",
    "skipped": "MessagesSkipped",
}


def job_counts(report: JobReport) -> dict[str, float]:
    """What one processed job adds to the queue processor's metrics."""
    counts = {_JOB_STATUS_METRIC.get(report.status, "JobsErrored"): 1.0}
    if report.listing:
        counts.update(_repair_counts(report.listing))
    if report.listing or report.fetch_status:
        counts.update(response_counts(report.fetch_status))
    return counts


def extraction_counts(reply: ExtractionReply) -> dict[str, float]:
    """What one extractor call adds to its function's metrics."""
    failure = reply.failure
    if failure is not None:
        name = "BadEvents" if failure.kind is FailureKind.BAD_REQUEST else "ExtractionErrors"
        return {name: 1.0, **response_counts(failure.status)}
    result = reply.result or {}
    if "new" in result:  # the comments extractor
        return {"CommentsStored": float(result["new"])}
    return {**_repair_counts(result), **response_counts(result.get("fetch_status"))}


def run_counts(report: RunReport) -> dict[str, float]:
    """The numbers a run emits as CloudWatch metrics (the same ones its row holds)."""
    steps = report.steps
    metrics: dict[str, float] = {
        "OrchestratorRunSucceeded": 1.0 if report.status == "ok" else 0.0,
        "BackfillsQueued": float(steps.get("auto_queue", {}).get("queued", 0)),
        "LeasesRescued": float(steps.get("rescue", {}).get("rescued", 0)),
        "NewListingsQueued": float(steps.get("discover", {}).get("queued", 0)),
        "JobsDispatched": float(steps.get("dispatch", {}).get("dispatched", 0)),
        "FailedSteps": float(sum(1 for s in steps.values() if not s.get("ok"))),
        **index_counts(steps),
    }
    pending = {75: 0, 100: 0}
    processing = failed = 0
    for row in report.queue_depths:
        count = int(row["count"])
        if row["status"] == "pending" and int(row["priority"]) in pending:
            pending[int(row["priority"])] += count
        elif row["status"] == "processing":
            processing += count
        elif row["status"] == "failed":
            failed += count
    metrics["QueuePending100"] = float(pending[100])
    metrics["QueuePending75"] = float(pending[75])
    metrics["QueueProcessing"] = float(processing)
    metrics["QueueFailed"] = float(failed)
    return metrics


def index_counts(steps: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """What a run's walks over BaT's results index add: pages read, items, disagreements.

    >>> index_counts({"discover": {"requests": 2, "seen": 60}, "sweep": {"requests": 3,
    ...     "items": 90, "skipped": 1, "disagreements": 4, "corrected": 3, "conflicts": 1,
    ...     "queued_for_fetch": 7}})["IndexDisagreements"]
    4.0
    """
    discover, sweep = steps.get("discover", {}), steps.get("sweep", {})
    return {
        "IndexPagesRead": float(discover.get("requests", 0) + sweep.get("requests", 0)),
        "IndexItems": float(discover.get("seen", 0) + sweep.get("items", 0)),
        "IndexItemsSkipped": float(discover.get("skipped", 0) + sweep.get("skipped", 0)),
        "IndexDisagreements": float(sweep.get("disagreements", 0)),
        "OutcomesCorrectedFromIndex": float(sweep.get("corrected", 0)),
        "IndexConflicts": float(sweep.get("conflicts", 0)),
        "QueuedForListingFetch": float(sweep.get("queued_for_fetch", 0)),
    }
