"""Pure repair planning: a stored vehicle plus a freshly parsed listing give the changes to make."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
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

    @property
    def outcome_corrected(self) -> bool:
        return any(c.field in ("sale_status", "sale_price") for c in self.applied)


# vehicles column <- Listing attribute
FIELD_MAP: dict[str, str] = {
    "year": "year",
    "make": "make",
    "model": "model",
    "title": "title",
    "vin": "vin",
    "mileage": "mileage",
    "mileage_unit": "mileage_unit",
    "color": "exterior_color",
    "interior_color": "interior_color",
    "transmission": "transmission",
    "drivetrain": "drivetrain",
    "engine": "engine",
    "sale_status": "outcome",
    "sale_price": "sale_price",
    "high_bid": "high_bid",
    "auction_end_date": "ended_at",
    "bat_lot_number": "lot_number",
    "bat_seller": "seller",
    "bat_buyer": "buyer",
    "bat_location": "location",
    "no_reserve": "no_reserve",
    "bid_count": "bid_count",
    "comment_count": "comment_count",
    "view_count": "view_count",
    "watcher_count": "watcher_count",
    "image_urls": "images",
}

CRITICAL_FIELDS: tuple[str, ...] = ("vin", "mileage", "color", "transmission", "drivetrain")

# The page's auction result is authoritative for these: a disagreement is a correction.
RESULT_FIELDS = frozenset(
    {"sale_status", "sale_price", "high_bid", "bat_buyer", "auction_end_date", "no_reserve"}
)
# Measurements that only grow while a listing is up; the newest reading replaces the old.
COUNTER_FIELDS = frozenset({"bid_count", "comment_count", "view_count", "watcher_count"})
# Facts that identify the car: a different value on the page is never applied silently.
IDENTITY_FIELDS = frozenset({"vin", "year", "make", "bat_lot_number"})

# A mileage unit is part of the mileage: it changes only together with the number.
_PAIRED = {"mileage_unit": "mileage"}


def _page_value(listing: Listing, column: str) -> Any:
    value = getattr(listing, FIELD_MAP[column])
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return list(value) or None
    if isinstance(value, str):
        return value.strip() or None
    return value


def _same(old: Any, new: Any) -> bool:
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
    for column in FIELD_MAP:
        old = vehicle.get(column)
        new = _page_value(listing, column)
        if column in _PAIRED and not _mileage_changes(vehicle, listing):
            continue
        if new is None:
            # A price or buyer on a lot the page proves unsold is wrong: remove it.
            if unsold and column in ("sale_price", "bat_buyer") and old is not None:
                changes.append(FieldChange(column, old, None, Action.CORRECT))
            continue
        if old is None:
            changes.append(FieldChange(column, None, new, Action.FILL))
        elif _same(old, new):
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
