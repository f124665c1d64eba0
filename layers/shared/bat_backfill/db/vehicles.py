"""Vehicle rows: locking, applying a repair plan with its audit trail, events and comments."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pg8000.native

from ..models import Comment, Listing
from ..repair import FIELD_MAP, Action, FieldChange, RepairPlan
from .queries import run_named

# Column names come only from this whitelist, never from input, so the one dynamic
# UPDATE below cannot be steered by page content.
_UPDATABLE = frozenset(FIELD_MAP)


def lock_vehicle(conn: pg8000.native.Connection, vehicle_id: str) -> dict[str, Any] | None:
    rows = run_named(conn, "lock_vehicle", vehicle_id=vehicle_id)
    return rows.dicts()[0] if rows else None


def find_vehicle_by_url(conn: pg8000.native.Connection, url: str) -> str | None:
    rows = run_named(conn, "find_vehicle_by_url", url=url)
    return str(rows[0][0]) if rows else None


def vehicle_listing_url(conn: pg8000.native.Connection, vehicle_id: str) -> tuple[bool, str | None]:
    """(whether the vehicle exists, its stored BaT listing URL)."""
    rows = run_named(conn, "vehicle_listing_url", vehicle_id=vehicle_id)
    return (True, rows[0][0]) if rows else (False, None)


def unknown_listing_urls(conn: pg8000.native.Connection, urls: Sequence[str]) -> set[str]:
    """The listing URLs no vehicle has yet."""
    return {str(row[0]) for row in run_named(conn, "unknown_urls", urls=list(urls))}


def create_vehicle(
    conn: pg8000.native.Connection, url: str, *, title: str | None = None, year: int | None = None
) -> str:
    return str(run_named(conn, "create_vehicle", url=url, title=title, year=year)[0][0])


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return str(value)


def save_repair(
    conn: pg8000.native.Connection,
    vehicle_id: str,
    plan: RepairPlan,
    *,
    source_url: str,
    snapshot_key: str | None,
    job_id: int | None,
) -> tuple[FieldChange, ...]:
    """Apply the plan's changes and write one audit row each; returns the conflicts newly
    recorded. Call inside the caller's transaction, after `lock_vehicle`."""
    applied = plan.applied
    if applied:
        columns = [c.field for c in applied]
        if not _UPDATABLE.issuperset(columns):
            raise ValueError(f"not an updatable column: {set(columns) - _UPDATABLE}")
        assignments = ", ".join(f"{col} = :v{i}" for i, col in enumerate(columns))
        params = {f"v{i}": c.new for i, c in enumerate(applied)}
        conn.run(
            f"UPDATE vehicles SET {assignments}, updated_at = now() "
            "WHERE id = CAST(:vehicle_id AS uuid)",
            vehicle_id=vehicle_id,
            **params,
        )
    new_conflicts: list[FieldChange] = []
    audited: list[tuple[str, str | None, str | None, str]] = []
    for change in plan.changes:
        old_text, new_text = _as_text(change.old), _as_text(change.new)
        if change.action is Action.CONFLICT:
            seen = run_named(
                conn,
                "open_conflict_exists",
                vehicle_id=vehicle_id,
                field=change.field,
                old_value=old_text,
                new_value=new_text,
            )
            if seen:
                continue
            new_conflicts.append(change)
        audited.append((change.field, old_text, new_text, change.action.value))
    if audited:
        run_named(
            conn,
            "insert_audit",
            vehicle_id=vehicle_id,
            fields=[a[0] for a in audited],
            old_values=[a[1] for a in audited],
            new_values=[a[2] for a in audited],
            actions=[a[3] for a in audited],
            source_url=source_url,
            snapshot_key=snapshot_key,
            job_id=job_id,
        )
    if plan.absent:
        run_named(
            conn,
            "record_absences",
            vehicle_id=vehicle_id,
            fields=list(plan.absent),
            url=source_url,
        )
    if plan.stated:
        run_named(conn, "clear_absences", vehicle_id=vehicle_id, fields=list(plan.stated))
    return tuple(new_conflicts)


def save_auction_event(
    conn: pg8000.native.Connection,
    vehicle_id: str,
    listing: Listing,
    *,
    snapshot_key: str | None,
) -> int:
    rows = run_named(
        conn,
        "upsert_auction_event",
        vehicle_id=vehicle_id,
        url=listing.url,
        outcome=listing.outcome.value if listing.outcome else None,
        high_bid=listing.high_bid,
        sale_price=listing.sale_price,
        currency=listing.currency,
        winning_bidder=listing.buyer,
        bid_count=listing.bid_count,
        comment_count=listing.comment_count,
        view_count=listing.view_count,
        watcher_count=listing.watcher_count,
        ended_at=listing.ended_at,
        lot_number=listing.lot_number,
        snapshot_key=snapshot_key,
    )
    return int(rows[0][0])


def latest_snapshot_key(conn: pg8000.native.Connection, vehicle_id: str, url: str) -> str | None:
    rows = run_named(conn, "latest_snapshot", vehicle_id=vehicle_id, url=url)
    return str(rows[0][0]) if rows else None


def save_comments(
    conn: pg8000.native.Connection, vehicle_id: str, url: str, comments: Sequence[Comment]
) -> int:
    """Upsert by BaT comment id; returns how many were new. Safe to repeat."""
    if not comments:
        return 0
    rows = run_named(
        conn,
        "upsert_comments",
        vehicle_id=vehicle_id,
        url=url,
        ids=[c.id for c in comments],
        kinds=[c.kind.value for c in comments],
        authors=[c.author for c in comments],
        sellers=[c.is_seller for c in comments],
        posted=[c.posted_at for c in comments],
        bodies=[c.text.replace("\x00", "") for c in comments],
        amounts=[c.bid_amount for c in comments],
        likes=[c.likes for c in comments],
        parents=[c.parent_id for c in comments],
    )
    return sum(1 for (inserted,) in rows if inserted)
