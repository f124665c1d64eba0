"""Queue processor Lambda: SQS batches with partial failures, or a direct force-process call."""

from bat_backfill.lambdas import make_handler

handler = make_handler("queue_processor")
