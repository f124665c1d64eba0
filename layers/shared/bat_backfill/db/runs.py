"""Orchestrator runs: their records, the backfill auto-queue step and the dispatch guard."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pg8000.native

from .queries import run_named


def start_run(conn: pg8000.native.Connection) -> int:
    """A run row first, so a run that crashes is still visible as 'running'."""
    return int(run_named(conn, "start_run")[0][0])


def finish_run(
    conn: pg8000.native.Connection,
    run_id: int,
    *,
    status: str,
    steps: dict[str, Any],
    depths: list[dict[str, Any]],
    error: str | None = None,
) -> None:
    run_named(
        conn,
        "finish_run",
        run_id=run_id,
        status=status,
        steps=json.dumps(steps),
        depths=json.dumps(depths),
        error=error,
    )


def auto_queue_backfills(
    conn: pg8000.native.Connection, batch_size: int, priority: int
) -> tuple[int, int]:
    """(queued, skipped) of the seed's auto_queue_bat_backfills."""
    row = run_named(conn, "auto_queue", batch_size=batch_size, priority=priority)[0]
    return int(row[0]), int(row[1])


@contextlib.contextmanager
def dispatch_lock(conn: pg8000.native.Connection) -> Iterator[bool]:
    """Whether this run may dispatch: one dispatcher at a time, so two overlapping runs
    never double the request rate."""
    held = bool(run_named(conn, "try_dispatch_lock")[0][0])
    try:
        yield held
    finally:
        if held:
            run_named(conn, "release_dispatch_lock")


def jobs_in_flight(conn: pg8000.native.Connection, seconds: float) -> int:
    """Jobs sent to SQS within the last `seconds` and not yet claimed."""
    return int(run_named(conn, "in_flight", seconds=seconds)[0][0])
