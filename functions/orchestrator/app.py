"""Orchestrator Lambda: one scheduled run (queue backfills, rescue, discover, dispatch, record)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from bat_backfill import lambdas

logger = lambdas.new_logger()
metrics = lambdas.new_metrics()
services = lambdas.LazyServices()
lambdas.preload("orchestrator")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return lambdas.orchestrator(event, context, services.get(), metrics)
