"""The monitoring queries: the seed's status queries, recent runs and failures, audit history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pg8000.native

from .queries import run_named


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return str(value)


def _rows(conn: pg8000.native.Connection, name: str, **params: Any) -> list[dict[str, Any]]:
    return [
        {k: _plain(v) for k, v in row.items()} for row in run_named(conn, name, **params).dicts()
    ]


def collect_status(conn: pg8000.native.Connection) -> dict[str, Any]:
    """Everything `bat-backfill status` shows, as plain JSON-ready values."""
    return {
        "pending_backfills": _rows(conn, "pending_backfills"),
        "backfill_progress_today": _rows(conn, "backfill_progress_today")[0],
        "queue_by_priority": _rows(conn, "queue_by_priority"),
        "processing": _rows(conn, "processing_jobs"),
        "recent_runs": _rows(conn, "recent_runs", limit=5),
        "recent_failures": _rows(conn, "recent_failures"),
    }


def vehicle_history(conn: pg8000.native.Connection, vehicle_id: str) -> list[dict[str, Any]]:
    """Every recorded change of one vehicle, oldest first."""
    return run_named(conn, "vehicle_history", vehicle_id=vehicle_id).dicts()
