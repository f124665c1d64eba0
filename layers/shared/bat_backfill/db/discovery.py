"""Checkpoints of the walks over BaT's results index, and the stored vehicles an index page names."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import pg8000.native

from .queries import run_named


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where one walk of the index stands; see results_index_checkpoints."""

    name: str
    high_water: datetime | None = None
    walk_top: datetime | None = None
    next_page: int = 1
    pages_total: int | None = None
    pages_read: int = 0
    items_seen: int = 0
    laps: int = 0


@dataclass(frozen=True, slots=True)
class IndexedVehicle:
    """A stored vehicle named by an index item."""

    vehicle_id: str
    url: str
    page_extracted: bool  # a listing page of it was extracted by this system
    job_status: str | None


@contextlib.contextmanager
def index_lock(conn: pg8000.native.Connection, name: str) -> Iterator[bool]:
    """Whether this run may walk the `name` checkpoint: one walker at a time."""
    held = bool(run_named(conn, "try_index_lock", walk=name)[0][0])
    try:
        yield held
    finally:
        if held:
            run_named(conn, "release_index_lock", walk=name)


def load_checkpoint(conn: pg8000.native.Connection, name: str) -> Checkpoint:
    rows = run_named(conn, "load_checkpoint", walk=name).dicts()
    return Checkpoint(**rows[0]) if rows else Checkpoint(name=name)


def save_checkpoint(
    conn: pg8000.native.Connection,
    checkpoint: Checkpoint,
    *,
    pages_read: int = 0,
    items_seen: int = 0,
    laps: int = 0,
) -> None:
    """Store the position; the counters given are added to the stored totals."""
    run_named(
        conn,
        "save_checkpoint",
        walk=checkpoint.name,
        high_water=checkpoint.high_water,
        walk_top=checkpoint.walk_top,
        next_page=checkpoint.next_page,
        pages_total=checkpoint.pages_total,
        pages_read=pages_read,
        items_seen=items_seen,
        laps=laps,
    )


def index_vehicles(conn: pg8000.native.Connection, urls: Sequence[str]) -> list[IndexedVehicle]:
    """Every stored vehicle of these listing URLs (operators' data may hold one twice)."""
    if not urls:
        return []
    return [
        IndexedVehicle(str(vid), str(url), bool(extracted), status)
        for vid, url, extracted, status in run_named(conn, "index_vehicles", urls=list(urls))
    ]


def absent_fields(conn: pg8000.native.Connection, vehicle_id: str) -> frozenset[str]:
    return frozenset(str(r[0]) for r in run_named(conn, "absent_fields", vehicle_id=vehicle_id))
