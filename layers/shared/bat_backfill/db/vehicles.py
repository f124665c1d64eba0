"""Vehicle rows: locking, applying a repair plan with its audit trail, events and comments."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pg8000.native

from ..models import Comment, Listing, Outcome
from ..repair import EVENT_OUTCOME, PAGE_VALUES, Action, FieldChange, RepairPlan
from .queries import run_named

# Column names come only from this whitelist, never from input, so the one dynamic
# UPDATE below cannot be steered by page content.
_UPDATABLE = frozenset(PAGE_VALUES)

# SQLSTATEs of a value the table's own constraints refuse: unique, check, not-null violation,
# and a number too large for the column (numeric(10,2), integer).
_REFUSED = frozenset({"23505", "23514", "23502", "22003"})


def lock_vehicle(conn: pg8000.native.Connection, vehicle_id: str) -> dict[str, Any] | None:
    """The one vehicle row, locked (None: no such vehicle)."""
    rows = lock_vehicles_of_listing(conn, vehicle_id, None)
    return rows[0] if rows else None


def lock_vehicles_of_listing(
    conn: pg8000.native.Connection, vehicle_id: str, url: str | None
) -> list[dict[str, Any]]:
    """The vehicle and every other vehicle row of its listing `url` (canonical), locked."""
    return list(run_named(conn, "lock_vehicles_of_listing", vehicle_id=vehicle_id, url=url).dicts())


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


def _audit(
    conn: pg8000.native.Connection,
    vehicle_id: str,
    rows: list[tuple[str, str | None, str | None, str]],
    *,
    source_url: str,
    snapshot_key: str | None,
    job_id: int | None,
) -> None:
    """One vehicle_audit row per (field, old, new, action), all from one source."""
    if rows:
        fields, old_values, new_values, actions = (
            list(column) for column in zip(*rows, strict=True)
        )
        run_named(
            conn,
            "insert_audit",
            vehicle_id=vehicle_id,
            fields=fields,
            old_values=old_values,
            new_values=new_values,
            actions=actions,
            source_url=source_url,
            snapshot_key=snapshot_key,
            job_id=job_id,
        )


def save_repair(
    conn: pg8000.native.Connection,
    vehicle_id: str,
    plan: RepairPlan,
    *,
    source_url: str,
    snapshot_key: str | None,
    job_id: int | None,
) -> tuple[RepairPlan, tuple[FieldChange, ...]]:
    """Apply the plan's changes and write one audit row each; returns the plan as applied and
    the conflicts newly recorded. A change the table's constraints refuse (a VIN another row holds under the unique
    index) is recorded as a conflict, and its field as absent with the refusal as the reason,
    so the selector stops asking for it; the rest of the repair still lands. Call inside the
    caller's transaction, after `lock_vehicles_of_listing`."""
    refused = _apply(conn, vehicle_id, plan.applied)
    if refused:
        plan = plan.without(tuple(c for c, _ in refused))
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
    _audit(
        conn, vehicle_id, audited, source_url=source_url, snapshot_key=snapshot_key, job_id=job_id
    )
    if plan.stated:
        run_named(conn, "clear_absences", vehicle_id=vehicle_id, fields=list(plan.stated))
    absences = [(f, "not stated on the page") for f in plan.absent] + [
        (c.field, f"refused by the database: {reason}") for c, reason in refused
    ]
    if absences:
        run_named(
            conn,
            "record_absences",
            vehicle_id=vehicle_id,
            fields=[a[0] for a in absences],
            reasons=[a[1] for a in absences],
            url=source_url,
        )
    return plan, tuple(new_conflicts)


def _update(
    conn: pg8000.native.Connection, vehicle_id: str, changes: Sequence[FieldChange]
) -> None:
    columns = [c.field for c in changes]
    if not _UPDATABLE.issuperset(columns):
        raise ValueError(f"not an updatable column: {set(columns) - _UPDATABLE}")
    assignments = ", ".join(f"{col} = :v{i}" for i, col in enumerate(columns))
    params = {f"v{i}": c.new for i, c in enumerate(changes)}
    conn.run(
        f"UPDATE vehicles SET {assignments}, updated_at = now() WHERE id = CAST(:vehicle_id AS uuid)",
        vehicle_id=vehicle_id,
        **params,
    )


def _apply(
    conn: pg8000.native.Connection, vehicle_id: str, changes: Sequence[FieldChange]
) -> list[tuple[FieldChange, str]]:
    """Apply `changes` in one UPDATE; if a constraint refuses it, each change alone, keeping
    those that pass. The refused changes, each with the database's reason."""
    if not changes:
        return []
    try:
        with _savepoint(conn):
            _update(conn, vehicle_id, changes)
        return []
    except pg8000.native.DatabaseError as exc:
        if _sqlstate(exc) not in _REFUSED:
            raise
    refused: list[tuple[FieldChange, str]] = []
    for change in changes:
        try:
            with _savepoint(conn):
                _update(conn, vehicle_id, [change])
        except pg8000.native.DatabaseError as exc:
            if _sqlstate(exc) not in _REFUSED:
                raise
            refused.append((change, _refusal(exc)))
    return refused


@contextmanager
def _savepoint(conn: pg8000.native.Connection) -> Iterator[None]:
    conn.run("SAVEPOINT bat_backfill_repair")
    try:
        yield
    except BaseException:
        conn.run("ROLLBACK TO SAVEPOINT bat_backfill_repair")
        raise
    conn.run("RELEASE SAVEPOINT bat_backfill_repair")


def _sqlstate(exc: pg8000.native.DatabaseError) -> str | None:
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    return info.get("C")


def _refusal(exc: pg8000.native.DatabaseError) -> str:
    """The constraint's name and Postgres's words, without the refused value itself."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    name = info.get("n") or info.get("t") or "a constraint"
    return f"{name} ({info.get('M', 'refused')})"[:300]


def save_auction_event(
    conn: pg8000.native.Connection,
    vehicle_id: str,
    listing: Listing,
    *,
    snapshot_key: str | None,
    job_id: int | None,
) -> str | None:
    """The vehicle's events of this listing, whatever the spelling of their URL, corrected in
    place to what the page says (each changed outcome or price audited); a new event if it has
    none. An event of the listing that names no vehicle is this vehicle's (its vehicle_id
    filled, audited). None when the page states no outcome (the original table requires one)."""
    if listing.outcome is None:
        return None
    sold = listing.outcome is Outcome.SOLD
    values: dict[str, Any] = {
        "outcome": EVENT_OUTCOME[listing.outcome],
        "high_bid": listing.high_bid,
        "winning_bid": listing.sale_price if sold else None,
        "winning_bidder": listing.buyer if sold else None,
        "seller_name": listing.seller,
        "currency": listing.currency,
        "total_bids": listing.bid_count,
        "comments_count": listing.comment_count,
        "page_views": listing.view_count,
        "watchers": listing.watcher_count,
        "ended_at": listing.ended_at,
        "lot_number": str(listing.lot_number) if listing.lot_number else None,
        "snapshot_key": snapshot_key,
    }
    events = run_named(conn, "listing_events", vehicle_id=vehicle_id, url=listing.url).dicts()
    if not events:
        rows = run_named(
            conn, "insert_auction_event", vehicle_id=vehicle_id, url=listing.url, **values
        )
        return str(rows[0][0])
    audited: list[tuple[str, str | None, str | None, str]] = []
    for event in events:
        if event["vehicle_id"] is None:
            audited.append(("auction_events.vehicle_id", None, vehicle_id, "fill"))
        for field in ("outcome", "winning_bid", "winning_bidder"):
            old, new = event[field], values[field]
            if old != new:
                action = "fill" if old is None else "correct"
                audited.append((f"auction_events.{field}", _as_text(old), _as_text(new), action))
        run_named(
            conn, "correct_auction_event", event_id=event["id"], vehicle_id=vehicle_id, **values
        )
    _audit(
        conn, vehicle_id, audited, source_url=listing.url, snapshot_key=snapshot_key, job_id=job_id
    )
    return str(events[0]["id"])


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
