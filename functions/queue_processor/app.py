"""Queue processor: SQS batches (each record names a job to claim and extract, failures reported
per record) or a direct force-process call `{"batchSize": 20, "maxAttempts": 3}`."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from bat_backfill.process import ForceRequest, build_extractors, force_process, process_message
from bat_backfill.services import LazyServices
from bat_backfill.telemetry import emit, job_counts

logger = Logger(service="bat-backfill")
metrics = Metrics(namespace="BatBackfill", service="bat-backfill")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
services = LazyServices()  # clients built on the first invocation, kept while warm


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> dict[str, Any]:
    # A raised error marks this record failed: SQS delivers it again, then to the DLQ.
    built = services.get()
    report = process_message(
        built,
        record.body,
        build_extractors(built),
        remaining_ms=lambda_context.get_remaining_time_in_millis,
    )
    emit(metrics, job_counts(report))
    return report.to_dict()


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )
    request = ForceRequest.from_event(event)
    built = services.get()
    report = force_process(
        built,
        build_extractors(built),
        request,
        remaining_ms=context.get_remaining_time_in_millis,
    )
    for job in report.jobs:
        emit(metrics, job_counts(job))
    return report.to_dict()
