"""Premium-auction extractor: fetch (or reuse) a listing page, snapshot it, repair the vehicle.
Answers `{"ok": true, ...what changed}` or `{"ok": false, "error": {...}}`, never raises for an
expected failure."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from bat_backfill.contracts import ExtractionReply, ExtractionRequest
from bat_backfill.errors import BatBackfillError
from bat_backfill.extract import extract_listing
from bat_backfill.services import LazyServices
from bat_backfill.telemetry import emit, extraction_counts

logger = Logger(service="bat-backfill")
metrics = Metrics(namespace="BatBackfill", service="bat-backfill")
services = LazyServices()  # clients built on the first invocation, kept while warm


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = ExtractionRequest.from_event(event)
        result, _page = extract_listing(services.get(), request)
        reply = ExtractionReply.success(result.to_dict())
    except BatBackfillError as exc:
        reply = ExtractionReply.from_error(exc)
    emit(metrics, extraction_counts(reply))
    return reply.to_payload()
