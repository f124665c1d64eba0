"""Lambda adapters: turn an event into one pipeline call and its result into a response."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from .errors import JobError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from .process import JobReport
    from .services import Services

# Each handler imports only its own pipeline (inside its function): the orchestrator never
# loads the HTML parser, the extractors never load the batch processor. Cold starts shrink.

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "bat-backfill")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "BatBackfill")
# Stop taking new records this long before the function's timeout; unfinished ones go back.
SAFETY_MS = 30_000


class EventError(ValueError):
    """The event is malformed; the message says which field and why."""


def new_logger() -> Logger:
    return Logger(service=SERVICE)


def new_metrics() -> Metrics:
    return Metrics(namespace=NAMESPACE, service=SERVICE)


_PIPELINES = {
    "orchestrator": ("bat_backfill.orchestrate",),
    "queue_processor": ("bat_backfill.process", "aws_lambda_powertools.utilities.batch"),
    "premium_extractor": ("bat_backfill.extract",),
    "comments_extractor": ("bat_backfill.extract",),
}


def preload(function: str) -> None:
    """Import one function's pipeline during Lambda's init phase (and nothing else)."""
    import importlib

    for module in _PIPELINES[function]:
        importlib.import_module(module)


class LazyServices:
    """Builds the container's clients on first use, so importing a handler stays cheap."""

    def __init__(self, factory: Callable[[], Services] | None = None) -> None:
        if factory is None:
            from .services import build_services

            factory = build_services
        self.factory = factory
        self._services: Services | None = None

    def get(self) -> Services:
        if self._services is None:
            self._services = self.factory()
        return self._services


def _count_response(metrics: Metrics, status: int | None, error: str | None = None) -> None:
    if status is None:
        if error:
            metrics.add_metric("BatFetchErrors", MetricUnit.Count, 1)
        return
    if status == 429:
        name = "BatResponse429"
    elif status >= 500:
        name = "BatResponse5xx"
    elif status >= 400:
        name = "BatResponse4xx"
    else:
        name = "BatResponse2xx"
    metrics.add_metric(name, MetricUnit.Count, 1)


def _count_job(metrics: Metrics, report: JobReport) -> None:
    name = {
        "complete": "JobsCompleted",
        "retry": "JobsRetried",
        "failed": "JobsFailed",
        "lease_lost": "LeasesLost",
        "skipped": "MessagesSkipped",
    }.get(report.status, "JobsErrored")
    metrics.add_metric(name, MetricUnit.Count, 1)
    if report.listing:
        filled = len(report.listing.get("filled", []))
        corrected = report.listing.get("corrected", [])
        metrics.add_metric("FieldsRepaired", MetricUnit.Count, filled + len(corrected))
        if {"sale_status", "sale_price"} & set(corrected):
            metrics.add_metric("OutcomesCorrected", MetricUnit.Count, 1)
    if report.listing or report.fetch_status:
        _count_response(metrics, report.fetch_status)


def orchestrator(
    event: dict[str, Any], context: Any, services: Services, metrics: Metrics
) -> dict[str, Any]:
    from .orchestrate import run_metrics, run_orchestrator

    report = run_orchestrator(services)
    for name, value in run_metrics(report).items():
        metrics.add_metric(name, MetricUnit.Count, value)
    return report.to_dict()


def _int_field(event: dict[str, Any], name: str, default: int | None) -> int | None:
    value = event.get(name, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise EventError(f"{name} must be an integer, got {value!r}")
    return value


def queue_processor(
    event: dict[str, Any], context: Any, services: Services, metrics: Metrics
) -> dict[str, Any]:
    """SQS batches (partial failures reported) or a direct force-process call."""
    from .process import build_extractors, force_process, process_message

    extractors = build_extractors(services)
    if "Records" not in event:
        batch_size = _int_field(event, "batchSize", 10)
        max_attempts = _int_field(event, "maxAttempts", None)
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        reports = force_process(
            services,
            extractors,
            batch_size=10 if batch_size is None else batch_size,
            max_attempts=max_attempts,
            deadline_ms=SAFETY_MS,
            remaining_ms=remaining,
        )
        for report in reports:
            _count_job(metrics, report)
        return {
            "processed": len(reports),
            "by_status": _tally(reports),
            "jobs": [r.to_dict() for r in reports],
        }

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is not None and remaining() < SAFETY_MS:
            # Not started: SQS hands it to the next invocation after the visibility timeout.
            raise TimeoutError("too close to the function timeout; record handed back")
        report = process_message(services, record.body, extractors)
        _count_job(metrics, report)
        return report.to_dict()

    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )


def _tally(reports: list[JobReport]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in reports:
        out[r.status] = out.get(r.status, 0) + 1
    return out


def _text_field(event: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = event.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise EventError(f"{name} must be a non-empty string")
    return value


def _uuid_field(event: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = _text_field(event, name, required=required)
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise EventError(f"{name} must be a UUID, got {value[:60]!r}") from None


def premium_extractor(
    event: dict[str, Any], context: Any, services: Services, metrics: Metrics
) -> dict[str, Any]:
    """{url, vehicle_id?, job_id?, lease_generation?} -> what changed and the snapshot key."""
    from .db.queue import LeaseLostError
    from .extract import error_payload, extract_listing, fence

    try:
        url = _text_field(event, "url", required=True) or ""
        vehicle_id = _uuid_field(event, "vehicle_id", required=False)
        job = fence(
            _int_field(event, "job_id", None),
            _int_field(event, "lease_generation", None),
            vehicle_id or "",
            url,
        )
        result, source = extract_listing(services, url, vehicle_id=vehicle_id, job=job)
    except LeaseLostError as exc:
        return {"ok": False, "lease_lost": True, "error": str(exc), "retryable": False}
    except EventError as exc:
        metrics.add_metric("BadEvents", MetricUnit.Count, 1)
        return {"ok": False, "error": str(exc), "error_type": "EventError", "retryable": False}
    except JobError as exc:
        _count_response(metrics, getattr(exc, "status", None), str(exc))
        metrics.add_metric("ExtractionErrors", MetricUnit.Count, 1)
        return error_payload(exc)
    _count_response(metrics, source.fetch_status)
    if result.filled or result.corrected:
        metrics.add_metric(
            "FieldsRepaired", MetricUnit.Count, len(result.filled) + len(result.corrected)
        )
    return {"ok": True, **result.to_dict()}


def comments_extractor(
    event: dict[str, Any], context: Any, services: Services, metrics: Metrics
) -> dict[str, Any]:
    """{vehicle_id, url, snapshot_key?, job_id?, lease_generation?} -> comments stored."""
    from .db.queue import LeaseLostError
    from .extract import error_payload, extract_comments, fence

    try:
        url = _text_field(event, "url", required=True) or ""
        vehicle_id = _uuid_field(event, "vehicle_id", required=True) or ""
        job = fence(
            _int_field(event, "job_id", None),
            _int_field(event, "lease_generation", None),
            vehicle_id,
            url,
        )
        result = extract_comments(
            services,
            vehicle_id,
            url,
            snapshot_key=_text_field(event, "snapshot_key", required=False),
            job=job,
        )
    except LeaseLostError as exc:
        return {"ok": False, "lease_lost": True, "error": str(exc), "retryable": False}
    except EventError as exc:
        metrics.add_metric("BadEvents", MetricUnit.Count, 1)
        return {"ok": False, "error": str(exc), "error_type": "EventError", "retryable": False}
    except JobError as exc:
        metrics.add_metric("ExtractionErrors", MetricUnit.Count, 1)
        return error_payload(exc)
    metrics.add_metric("CommentsStored", MetricUnit.Count, result.new)
    return {"ok": True, **result.to_dict()}


_ADAPTERS: dict[str, Callable[[dict[str, Any], Any, Services, Metrics], dict[str, Any]]] = {
    "orchestrator": orchestrator,
    "queue_processor": queue_processor,
    "premium_extractor": premium_extractor,
    "comments_extractor": comments_extractor,
}


def make_handler(function: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point of one function: Powertools logging and metrics at the edge,
    its pipeline imported now (the init phase), its clients built on first use and kept."""
    adapter = _ADAPTERS[function]
    logger = new_logger()
    metrics = new_metrics()
    services = LazyServices()
    preload(function)

    @metrics.log_metrics
    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return adapter(event, context, services.get(), metrics)

    return handler
