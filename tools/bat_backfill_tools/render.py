"""Plain-text tables for the operator: `status`, `history` and the demo's summary."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return value


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table.

    >>> print(render_table(["a", "bb"], [[1, "x"]]))
    a  bb
    -  --
    1  x
    """
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def render_status(data: dict[str, Any]) -> str:
    out: list[str] = []
    out.append(f"Pending backfills (priority 75, oldest first, {len(data['pending_backfills'])})")
    out.append(
        render_table(
            ["job", "year", "make", "model", "attempts", "url"],
            [
                [r["job_no"], r["year"], r["make"], r["model"], r["attempts"], r["bat_auction_url"]]
                for r in data["pending_backfills"][:20]
            ],
        )
    )
    p = data["backfill_progress_today"]
    out.append("\nToday's backfills by status")
    out.append(
        render_table(
            ["pending", "processing", "complete", "failed"],
            [[p["pending"], p["processing"], p["complete"], p["failed"]]],
        )
    )
    out.append("\nQueue depth by priority")
    out.append(
        render_table(
            ["priority", "status", "jobs"],
            [[r["priority"], r["status"], r["jobs"]] for r in data["queue_by_priority"]],
        )
    )
    if data["processing"]:
        out.append("\nBeing processed (bat-backfill release --job N / --worker NAME frees one)")
        out.append(
            render_table(
                ["job", "worker", "lease ends", "url"],
                [
                    [r["id"], r["locked_by"] or "-", _plain(r["lease_ends"]), r["bat_url"]]
                    for r in data["processing"]
                ],
            )
        )
    out.append("\nLast orchestrator runs")
    run_rows = []
    for r in data["recent_runs"]:
        steps = r.get("steps") or {}
        if isinstance(steps, str):
            steps = json.loads(steps)
        summary = ", ".join(
            f"{name}:{'ok' if s.get('ok') else 'FAILED'}" for name, s in steps.items()
        )
        run_rows.append([r["id"], r["started_at"], r["status"], summary])
    out.append(render_table(["run", "started", "status", "steps"], run_rows))
    if data["recent_failures"]:
        out.append("\nRecent failures")
        out.append(
            render_table(
                ["job", "attempts", "url", "error"],
                [
                    [r["id"], r["attempts"], r["bat_url"], (r["error_message"] or "")[:80]]
                    for r in data["recent_failures"]
                ],
            )
        )
    if data["dlq"] is not None:
        out.append(f"\nDLQ: {data['dlq'].get('ApproximateNumberOfMessages', 0)} message(s)")
    return "\n".join(out)


def render_history(vehicle_id: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return f"vehicle {vehicle_id}: no recorded changes"
    return f"vehicle {vehicle_id}: {len(rows)} change(s)\n" + render_table(
        ["when", "field", "action", "old", "new", "source"],
        [
            [
                _plain(r["changed_at"]),
                r["field"],
                r["action"],
                (r["old_value"] or "")[:40],
                (r["new_value"] or "")[:40],
                r["source_url"],
            ]
            for r in rows
        ],
    )


def render_results(index: Any) -> str:
    """One line per listing of a parsed results index page (`parse-results`)."""
    rows = [
        [
            i.outcome.value if i.outcome else "?",
            f"{i.currency or ''} {i.price:,}".strip() if i.price is not None else "",
            i.ended_at.isoformat(timespec="minutes") if i.ended_at else "",
            "NR" if i.no_reserve else "",
            i.lot_id,
            i.url,
        ]
        for i in index.items
    ]
    head = f"page {index.page} of {index.pages_total}: {len(index.items)} listings" + (
        f", {index.skipped} skipped" if index.skipped else ""
    )
    lines = [head, render_table(["outcome", "price", "ended", "", "id", "url"], rows)]
    lines += [f"skipped {p}" for p in index.problems]
    return "\n".join(lines)


def render_migration_plan(plan: Any) -> str:
    """`migrate --plan`: what cannot be adopted, the migrations to apply, each object added."""
    out: list[str] = []
    if plan.incompatibilities:
        out.append("Cannot adopt this database (nothing would be changed):")
        out += [f"  ! {p}" for p in plan.incompatibilities]
    if not plan.pending:
        out.append("Nothing to apply: the schema is up to date.")
        return "\n".join(out)
    out.append(f"Migrations to apply: {', '.join(plan.pending)}")
    if plan.changes:
        out.append(f"Changes ({len(plan.changes)}; no column dropped, renamed or retyped):")
        out += [f"  {c}" for c in plan.changes]
    return "\n".join(out)
