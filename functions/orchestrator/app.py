"""Orchestrator Lambda: one scheduled run (queue backfills, rescue, discover, dispatch, record)."""

from bat_backfill.lambdas import make_handler

handler = make_handler("orchestrator")
