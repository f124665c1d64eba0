"""Premium-auction extractor Lambda: fetch or reuse the page, snapshot it, repair the vehicle."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from bat_backfill import lambdas

logger = lambdas.new_logger()
metrics = lambdas.new_metrics()
services = lambdas.LazyServices()
lambdas.preload("premium_extractor")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return lambdas.premium_extractor(event, context, services.get(), metrics)
