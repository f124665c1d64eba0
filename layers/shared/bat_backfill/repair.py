"""Pure repair planning: a stored vehicle plus a freshly parsed listing give the changes to make."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .models import Listing, Outcome


class Action(StrEnum):
    FILL = "fill"  # the stored value was missing
    CORRECT = "correct"  # the stored value is proven wrong or is a vaguer form of the page's
    CONFLICT = "conflict"  # the page disagrees; kept for review, nothing overwritten


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    old: Any
    new: Any
    action: Action


@dataclass(frozen=True, slots=True)
class RepairPlan:
    changes: tuple[FieldChange, ...]
    # Critical fields the page does not state (and the vehicle lacks): stop asking for them.
    absent: tuple[str, ...]
    # Critical fields the page states: forget any earlier absence record.
    stated: tuple[str, ...]

    @property
    def applied(self) -> tuple[FieldChange, ...]:
        return tuple(c for c in self.changes if c.action is not Action.CONFLICT)

    @property
    def conflicts(self) -> tuple[FieldChange, ...]:
        return tuple(c for c in self.changes if c.action is Action.CONFLICT)

    def without(self, refused: tuple[FieldChange, ...]) -> RepairPlan:
        """This plan with `refused` changes turned into conflicts (the database would not
        take them) and their fields neither stated nor absent."""
        fields = {c.field for c in refused}
        return RepairPlan(
            changes=tuple(
                replace(c, action=Action.CONFLICT) if c in refused else c for c in self.changes
            ),
            absent=self.absent,
            stated=tuple(f for f in self.stated if f not in fields),
        )


# The original system's vocabularies (its CHECK constraints) for an outcome: vehicles.sale_status,
# vehicles.auction_outcome and auction_events.outcome. A withdrawn lot ended without a sale.
SALE_STATUS: dict[Outcome, str] = {
    Outcome.SOLD: "sold",
    Outcome.BID_TO: "bid_to",
    Outcome.NO_SALE: "not_sold",
    Outcome.WITHDRAWN: "ended",
    Outcome.LIVE: "auction_live",
}
AUCTION_OUTCOME: dict[Outcome, str] = {
    Outcome.SOLD: "sold",
    Outcome.BID_TO: "reserve_not_met",
    Outcome.NO_SALE: "no_sale",
    Outcome.WITHDRAWN: "ended",
    Outcome.LIVE: "pending",
}
EVENT_OUTCOME: dict[Outcome, str] = {
    Outcome.SOLD: "sold",
    Outcome.BID_TO: "reserve_not_met",
    Outcome.NO_SALE: "no_sale",
    Outcome.WITHDRAWN: "cancelled",
    Outcome.LIVE: "live",
}


def _sold(listing: Listing) -> bool:
    return listing.outcome is Outcome.SOLD


def _reserve_status(listing: Listing) -> str | None:
    if listing.no_reserve:
        return "no_reserve"
    if listing.outcome is Outcome.SOLD and listing.no_reserve is False:
        return "reserve_met"
    if listing.outcome is Outcome.BID_TO:
        return "reserve_not_met"
    return None


def _mapped(table: Mapping[Outcome, str]) -> Callable[[Listing], str | None]:
    return lambda listing: table[listing.outcome] if listing.outcome is not None else None


def _attr(name: str) -> Callable[[Listing], Any]:
    return lambda listing: getattr(listing, name)


# vehicles column <- the page's value for it, in the original system's columns, types and
# vocabularies (README: "Where each fact goes"). Only these columns are ever written.
PAGE_VALUES: dict[str, Callable[[Listing], Any]] = {
    "year": _attr("year"),
    "make": _attr("make"),
    "model": _attr("model"),
    "listing_title": _attr("title"),
    "vin": _attr("vin"),
    "mileage": _attr("mileage"),
    "mileage_unit": _attr("mileage_unit"),
    "color": _attr("exterior_color"),
    "interior_color": _attr("interior_color"),
    "transmission": _attr("transmission"),
    "drivetrain": _attr("drivetrain"),
    "engine_size": _attr("engine"),
    "sale_status": _mapped(SALE_STATUS),
    "auction_outcome": _mapped(AUCTION_OUTCOME),
    "reserve_status": _reserve_status,
    "sale_price": _attr("sale_price"),
    "winning_bid": lambda listing: listing.sale_price if _sold(listing) else None,
    "high_bid": _attr("high_bid"),
    # a text column: 'YYYY-MM-DD', the form the original system wrote most
    "auction_end_date": lambda listing: (
        listing.ended_at.date().isoformat() if listing.ended_at else None
    ),
    "sale_date": lambda listing: (
        listing.ended_at.date() if listing.ended_at and _sold(listing) else None
    ),
    "bat_lot_number": lambda listing: str(listing.lot_number) if listing.lot_number else None,
    "bat_seller": _attr("seller"),
    "bat_buyer": _attr("buyer"),
    "bat_location": _attr("location"),
    "bid_count": _attr("bid_count"),
    "bat_bids": _attr("bid_count"),
    "bat_comments": _attr("comment_count"),
    "bat_views": _attr("view_count"),
    "bat_watchers": _attr("watcher_count"),
    "image_urls": _attr("images"),
}

CRITICAL_FIELDS: tuple[str, ...] = ("vin", "mileage", "color", "transmission", "drivetrain")

# The page's auction result is authoritative for these: a disagreement is a correction.
RESULT_FIELDS = frozenset(
    {
        "sale_status",
        "auction_outcome",
        "reserve_status",
        "sale_price",
        "winning_bid",
        "high_bid",
        "bat_buyer",
        "auction_end_date",
        "sale_date",
    }
)
# A lot the page proves unsold has none of these: a stored one is removed.
SALE_ONLY_FIELDS = frozenset({"sale_price", "winning_bid", "bat_buyer", "sale_date"})
# Measurements that only grow while a listing is up; the newest reading replaces the old.
COUNTER_FIELDS = frozenset({"bid_count", "bat_bids", "bat_comments", "bat_views", "bat_watchers"})
# Facts that identify the car: a different value on the page is never applied silently.
IDENTITY_FIELDS = frozenset({"vin", "year", "make", "bat_lot_number"})

# A mileage unit is part of the mileage: it changes only together with the number.
_PAIRED = {"mileage_unit": "mileage"}


def _page_value(listing: Listing, column: str) -> Any:
    value = PAGE_VALUES[column](listing)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return list(value) or None
    if isinstance(value, str):
        return value.strip() or None
    return value


def _end_day(text: str) -> str:
    """The UTC day of a stored end date ('YYYY-MM-DD' as is; an ISO timestamp with an offset
    on its UTC day, the day the page's end time gives).

    >>> _end_day("2025-11-07"), _end_day("2025-11-07T17:00:00-08:00"), _end_day("Nov 7")
    ('2025-11-07', '2025-11-08', 'Nov 7')
    """
    text = text.strip()
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return text
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC)
    return stamp.date().isoformat()


def _same(column: str, old: Any, new: Any) -> bool:
    if column == "auction_end_date" and isinstance(old, str) and isinstance(new, str):
        # the original system also wrote ISO timestamps here: the same day is the same end
        return _end_day(old) == new
    if isinstance(old, str) and isinstance(new, str):
        return " ".join(old.split()).casefold() == " ".join(new.split()).casefold()
    if isinstance(old, datetime) and isinstance(new, datetime):
        return abs((old - new).total_seconds()) < 1
    return bool(old == new)


def _refines(old: Any, new: Any) -> bool:
    """The page's text says the same thing more precisely ("Manual" -> "6-Speed Manual").

    >>> _refines("Manual", "6-Speed Manual")
    True
    >>> _refines("Automatic", "6-Speed Manual")
    False
    """
    if not isinstance(old, str) or not isinstance(new, str):
        return False
    return old.strip().casefold() in new.casefold() and len(new) > len(old.strip())


def plan_repair(vehicle: Mapping[str, Any], listing: Listing) -> RepairPlan:
    """Changes that make `vehicle` agree with `listing` without ever losing good data.

    Missing values are filled; result fields follow the page's authoritative outcome (an
    unsold lot loses its sale price and buyer); counters take the newest reading; a gallery
    grows but never shrinks; any other disagreement is a conflict and changes nothing.
    """
    changes: list[FieldChange] = []
    outcome = listing.outcome
    unsold = outcome is not None and outcome is not Outcome.SOLD
    for column in PAGE_VALUES:
        old = vehicle.get(column)
        new = _page_value(listing, column)
        if column in _PAIRED and not _mileage_changes(vehicle, listing):
            continue
        if new is None:
            # A price or buyer on a lot the page proves unsold is wrong: remove it.
            if unsold and column in SALE_ONLY_FIELDS and old is not None:
                changes.append(FieldChange(column, old, None, Action.CORRECT))
            continue
        if old is None:
            changes.append(FieldChange(column, None, new, Action.FILL))
        elif _same(column, old, new):
            continue
        elif column == "image_urls":
            if len(new) > len(old):
                changes.append(FieldChange(column, old, new, Action.CORRECT))
        elif column in RESULT_FIELDS or column in COUNTER_FIELDS:
            if outcome is Outcome.LIVE and column in COUNTER_FIELDS and new < old:
                continue
            changes.append(FieldChange(column, old, new, Action.CORRECT))
        elif column not in IDENTITY_FIELDS and _refines(old, new):
            changes.append(FieldChange(column, old, new, Action.CORRECT))
        else:
            changes.append(FieldChange(column, old, new, Action.CONFLICT))
    absent = tuple(
        c for c in CRITICAL_FIELDS if _page_value(listing, c) is None and vehicle.get(c) is None
    )
    stated = tuple(c for c in CRITICAL_FIELDS if _page_value(listing, c) is not None)
    return RepairPlan(changes=tuple(changes), absent=absent, stated=stated)


def _mileage_changes(vehicle: Mapping[str, Any], listing: Listing) -> bool:
    # The unit follows the number: fill it when the number is filled or already agrees.
    return listing.mileage is not None and (
        vehicle.get("mileage") is None or vehicle.get("mileage") == listing.mileage
    )
