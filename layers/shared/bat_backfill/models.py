"""Immutable records and states shared by every part of bat-backfill."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """How an auction ended (or that it has not ended yet)."""

    SOLD = "sold"
    BID_TO = "bid_to"  # reserve not met: a high bid, never a sale price
    NO_SALE = "no_sale"  # ended without bids
    WITHDRAWN = "withdrawn"
    LIVE = "live"  # still running: the current bid is not a sale


class MileageUnit(StrEnum):
    MILES = "miles"
    KM = "km"
    TMU = "tmu"  # true mileage unknown: the figure is what the odometer shows


class CommentKind(StrEnum):
    COMMENT = "comment"
    BID = "bid"
    RESULT = "result"  # BaT's closing system record (sold / reserve not met)
    RNM_ACCEPTED = "rnm_accepted"  # reserve not met, then the seller accepted: a sale
    CANCELED_BID = "canceled_bid"
    SELLER_REPLY = "seller_reply"


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETE = "complete"
    FAILED = "failed"


class Priority:
    """Queue priorities: new listings go before backfills."""

    NEW_LISTING = 100
    BACKFILL = 75


@dataclass(frozen=True, slots=True)
class Comment:
    """One item of a listing's comment thread, keyed by BaT's numeric comment id."""

    id: int
    kind: CommentKind
    author: str | None
    is_seller: bool
    posted_at: datetime | None
    text: str
    bid_amount: int | None = None
    likes: int = 0
    parent_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.kind.value,
            "author": self.author,
            "is_seller": self.is_seller,
            "posted_at": self.posted_at.isoformat() if self.posted_at else None,
            "text": self.text,
            "bid_amount": self.bid_amount,
            "likes": self.likes,
            "parent_id": self.parent_id,
        }


# The facts a listing page can state about a vehicle, in the order `parse` prints them.
LISTING_KEYS: tuple[str, ...] = (
    "url",
    "lot_number",
    "title",
    "year",
    "make",
    "model",
    "outcome",
    "sale_price",
    "high_bid",
    "currency",
    "ended_at",
    "vin",
    "vin_valid",
    "mileage",
    "mileage_unit",
    "exterior_color",
    "interior_color",
    "engine",
    "transmission",
    "drivetrain",
    "location",
    "seller",
    "buyer",
    "no_reserve",
    "bid_count",
    "comment_count",
    "view_count",
    "watcher_count",
    "images",
)


@dataclass(frozen=True, slots=True)
class Listing:
    """Everything read from one BaT listing page; None means the page does not say."""

    url: str
    lot_number: int | None = None
    title: str | None = None
    year: int | None = None
    make: str | None = None
    model: str | None = None
    outcome: Outcome | None = None
    sale_price: int | None = None
    high_bid: int | None = None
    currency: str | None = None
    ended_at: datetime | None = None
    vin: str | None = None
    vin_valid: bool | None = None
    mileage: int | None = None
    mileage_unit: MileageUnit | None = None
    exterior_color: str | None = None
    interior_color: str | None = None
    engine: str | None = None
    transmission: str | None = None
    drivetrain: str | None = None
    location: str | None = None
    seller: str | None = None
    buyer: str | None = None
    no_reserve: bool | None = None
    bid_count: int | None = None
    comment_count: int | None = None
    view_count: int | None = None
    watcher_count: int | None = None
    images: tuple[str, ...] = ()
    post_id: int | None = None
    # Disagreements between the page's authoritative places, for the operator to review.
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The `bat-backfill parse` JSON object (exact keys, in order)."""
        out: dict[str, Any] = {}
        for key in LISTING_KEYS:
            value = getattr(self, key)
            if isinstance(value, datetime):
                value = value.isoformat().replace("+00:00", "Z")
            elif isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed row of bat_extraction_queue; `lease_generation` fences late writers."""

    id: int
    vehicle_id: str
    bat_url: str
    priority: int
    status: JobStatus
    attempts: int
    lease_generation: int
    locked_by: str | None = None
    lease_expires_at: datetime | None = None
    reason: str | None = None
