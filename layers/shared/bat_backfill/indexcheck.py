"""Pure outcome check against BaT's results index: what an index item may repair, and what only a
listing fetch can give."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from .models import Listing, Outcome
from .repair import CRITICAL_FIELDS, RESULT_FIELDS, Action, FieldChange, RepairPlan, plan_repair
from .results import IndexItem

# The index states the auction's result, price, reserve and end with authority, the same facts
# a page's result decides (a buyer only in that it is removed from a lot proven unsold);
# anything else comes from the listing page.
# The currency the stored prices are in when nothing says otherwise.
STORED_CURRENCY = "USD"


def listing_from_index(item: IndexItem) -> Listing:
    """The index item as a Listing that states result, price, currency, reserve and end time
    only."""
    return Listing(
        url=item.url,
        outcome=item.outcome,
        no_reserve=item.no_reserve,
        sale_price=item.price if item.outcome is Outcome.SOLD else None,
        high_bid=item.price if item.outcome in (Outcome.BID_TO, Outcome.LIVE) else None,
        currency=item.currency,
        ended_at=item.ended_at,
    )


def plan_index_repair(
    vehicle: Mapping[str, Any], item: IndexItem, *, page_extracted: bool
) -> RepairPlan:
    """The changes an index item proves, by the same rules as a listing page.

    A correction becomes a conflict (recorded, not applied) when the index cannot prove it:
    the stored value was read from the listing page itself by this system (the page may hold
    an accepted offer or a voided bid the one-line index result does not show), or a stored
    price disagrees with a price in another currency than the stored prices' (it may be a
    conversion). Filling a missing value is always safe. Nothing is recorded as absent: the
    index never states VIN, mileage or colours.

    >>> from datetime import UTC, datetime
    >>> item = IndexItem("https://bringatrailer.com/listing/x-1/", None, None, Outcome.BID_TO,
    ...     89500, "USD", datetime(2026, 4, 20, tzinfo=UTC), False, 1)
    >>> plan = plan_index_repair({"sale_status": "sold", "sale_price": 89500}, item,
    ...                          page_extracted=False)
    >>> [(c.field, c.new, c.action.value) for c in plan.changes]  # doctest: +NORMALIZE_WHITESPACE
    [('sale_status', 'bid_to', 'correct'), ('auction_outcome', 'reserve_not_met', 'fill'),
     ('reserve_status', 'reserve_not_met', 'fill'), ('sale_price', None, 'correct'),
     ('high_bid', 89500, 'fill'),
     ('auction_end_date', '2026-04-20', 'fill')]
    """
    plan = plan_repair(vehicle, listing_from_index(item))
    foreign = item.currency is not None and item.currency != STORED_CURRENCY
    changes: list[FieldChange] = []
    for change in plan.changes:
        if change.field not in RESULT_FIELDS:
            continue
        if change.action is Action.CORRECT and (
            page_extracted or (foreign and change.field in ("sale_price", "high_bid"))
        ):
            change = replace(change, action=Action.CONFLICT)
        changes.append(change)
    return RepairPlan(changes=tuple(changes), absent=(), stated=())


def missing_fields(vehicle: Mapping[str, Any], known_absent: Collection[str]) -> tuple[str, ...]:
    """Critical fields the vehicle lacks that its listing page may still give.

    >>> missing_fields({"vin": None, "mileage": 6000, "color": None}, {"color"})
    ('vin', 'transmission', 'drivetrain')
    """
    return tuple(
        f for f in CRITICAL_FIELDS if vehicle.get(f) in (None, "") and f not in known_absent
    )
