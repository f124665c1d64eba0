"""The global BaT request budget in Postgres: book a slot before each request, slow down on 403/429."""

from __future__ import annotations

from dataclasses import dataclass

import pg8000.native

from .queries import run_named


@dataclass(frozen=True, slots=True)
class Slot:
    """A booked request slot: start the request `wait_seconds` from now."""

    wait_seconds: float
    factor: float  # the interval multiplier in force when it was booked (1 = no slow-down)


def take_slot(
    conn: pg8000.native.Connection,
    *,
    interval_seconds: float,
    max_wait_seconds: float,
    recovery_seconds: float,
) -> Slot | None:
    """Book the next free slot if it starts within `max_wait_seconds`; None (nothing booked) if
    the budget is taken further ahead than that."""
    rows = run_named(
        conn,
        "take_request_slot",
        interval_seconds=float(interval_seconds),
        max_wait_seconds=float(max_wait_seconds),
        recovery_seconds=float(recovery_seconds),
    )
    if not rows:
        return None
    wait, factor = rows[0]
    return Slot(float(wait), float(factor))


def slow_down(
    conn: pg8000.native.Connection,
    *,
    interval_seconds: float,
    recovery_seconds: float,
    max_factor: float,
) -> float:
    """BaT asked us to slow down: double the interval for everyone (up to `max_factor`); the
    new multiplier, which halves every `recovery_seconds` from now on."""
    rows = run_named(
        conn,
        "slow_request_budget",
        interval_seconds=float(interval_seconds),
        recovery_seconds=float(recovery_seconds),
        max_factor=float(max_factor),
    )
    return float(rows[0][0]) if rows else 1.0


def budget_state(conn: pg8000.native.Connection, *, recovery_seconds: float) -> dict[str, float]:
    """Seconds until the next free slot, the multiplier now, and the totals."""
    rows = run_named(conn, "request_budget_state", recovery_seconds=float(recovery_seconds))
    if not rows:
        return {}
    return {k: float(v) for k, v in rows.dicts()[0].items()}
