"""Decide how an auction ended from the page's authoritative places, noting where they disagree."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bat_backfill.models import Outcome


class Signal(StrEnum):
    """What one place on the page says about the auction."""

    SOLD = "sold"
    RESERVE_NOT_MET = "reserve_not_met"
    LIVE = "live"
    WITHDRAWN = "withdrawn"
    ENDED = "ended"  # closed, without saying sold or not (e.g. "Auction Ended" and no bid row)


class Place(StrEnum):
    """The places BaT states the result; free text (comments, description) is never one."""

    RNM_ACCEPTED = "system record bat-rnm-accepted"
    SYSTEM_RECORD = "system record bat-bid-reserve"
    AUCTION_TABLE = "auction table"
    RESULT_LINE = "result line"
    STATUS_CLASS = "page status class"
    CONTENT_GROUP = "BAT_CTX contentGroup"


@dataclass(frozen=True, slots=True)
class Claim:
    """One place's statement: the signal, the amount it names and the buyer it names."""

    place: Place
    signal: Signal
    amount: int | None = None
    buyer: str | None = None


@dataclass(frozen=True, slots=True)
class AuctionFacts:
    """Everything the outcome depends on, already parsed from the page."""

    claims: tuple[Claim, ...] = ()
    live_bids: tuple[int, ...] = ()  # amounts of bat-bid records, canceled ones excluded
    canceled_bids: tuple[int, ...] = ()  # amounts of bat-bid-canceled records
    bid_count: int | None = None  # the auction table's "Bids" row


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome and the prices that go with it."""

    outcome: Outcome | None
    sale_price: int | None
    high_bid: int | None
    buyer: str | None
    warnings: tuple[str, ...] = ()


# Which place wins when places disagree: BaT's system records, then the auction table, then
# the result line; the status class and contentGroup decide only when none of those does, and
# never make a sale on their own.
_RANK = (
    Place.RNM_ACCEPTED,
    Place.SYSTEM_RECORD,
    Place.AUCTION_TABLE,
    Place.RESULT_LINE,
    Place.STATUS_CLASS,
    Place.CONTENT_GROUP,
)


def _ranked(claims: tuple[Claim, ...]) -> list[Claim]:
    return sorted(claims, key=lambda claim: _RANK.index(claim.place))


def _agrees(claim: Claim, outcome: Outcome) -> bool:
    """Whether a place's signal is consistent with the decided outcome."""
    if claim.signal is Signal.LIVE:
        return outcome is Outcome.LIVE
    if claim.signal is Signal.SOLD:
        return outcome is Outcome.SOLD
    if claim.signal is Signal.WITHDRAWN:
        return outcome is Outcome.WITHDRAWN
    if claim.signal is Signal.RESERVE_NOT_MET:
        return outcome in (Outcome.BID_TO, Outcome.NO_SALE)
    return outcome is not Outcome.LIVE  # ENDED


_RECORD_PLACES = frozenset(
    {Place.RNM_ACCEPTED, Place.SYSTEM_RECORD, Place.AUCTION_TABLE, Place.RESULT_LINE}
)


def _leading_signal(ranked: list[Claim]) -> tuple[Signal | None, list[str]]:
    """The signal that decides, and notes on why none could."""
    # A sale needs a record of the sale; "closed" without saying how is only a fallback.
    definite = [
        claim
        for claim in ranked
        if claim.signal is not Signal.ENDED
        and not (claim.signal is Signal.SOLD and claim.place not in _RECORD_PLACES)
    ]
    if definite:
        leader = definite[0].signal
        # BaT can pull an auction after bids; the table may still show the high bid then.
        if leader is not Signal.SOLD and any(c.signal is Signal.WITHDRAWN for c in definite):
            return Signal.WITHDRAWN, []
        return leader, []
    if any(claim.signal is Signal.ENDED and claim.place in _RECORD_PLACES for claim in ranked):
        return Signal.ENDED, []
    if any(claim.signal is Signal.SOLD for claim in ranked):
        return None, ["the page status says sold but no sale record was found"]
    return None, []


def decide_outcome(facts: AuctionFacts) -> Decision:
    """Outcome, sale price, high bid and buyer from the page's authoritative claims.

    A car that was bid to $34,000 stays unsold, whatever its comments quote:

    >>> rnm = decide_outcome(AuctionFacts(claims=(
    ...     Claim(Place.RESULT_LINE, Signal.RESERVE_NOT_MET, 34000),
    ...     Claim(Place.AUCTION_TABLE, Signal.RESERVE_NOT_MET, 34000),
    ... ), live_bids=(30000, 34000)))
    >>> rnm.outcome.value, rnm.sale_price, rnm.high_bid, rnm.warnings
    ('bid_to', None, 34000, ())

    A status class alone never makes a sale:

    >>> decide_outcome(AuctionFacts(claims=(Claim(Place.STATUS_CLASS, Signal.SOLD),))).outcome
    >>>
    """
    ranked = _ranked(facts.claims)
    live_high = max(facts.live_bids, default=None)
    signal, warnings = _leading_signal(ranked)
    if signal is None:
        return Decision(None, None, None, None, tuple(warnings))

    outcome: Outcome
    sale_price: int | None = None
    high_bid: int | None = None
    buyer: str | None = None

    if signal is Signal.SOLD:
        outcome = Outcome.SOLD
        sold = [c for c in ranked if c.signal is Signal.SOLD and c.place in _RECORD_PLACES]
        sale_price = next((c.amount for c in sold if c.amount), None)
        buyer = next((c.buyer for c in sold if c.buyer), None)
        if sale_price is None:
            warnings.append("sold, but no sale record states the price")
        high_bid = sale_price
        accepted = sold[0].place is Place.RNM_ACCEPTED
        for claim in sold:
            # After an accepted offer the box and result line may still show the auction's bid.
            if accepted and claim.place is not Place.RNM_ACCEPTED:
                continue
            if claim.amount and sale_price and claim.amount != sale_price:
                warnings.append(f"sale price: {claim.place} says {claim.amount}, kept {sale_price}")
        if not accepted and live_high is not None and sale_price and live_high > sale_price:
            warnings.append(f"a live bid of {live_high} exceeds the sale price {sale_price}")
    elif signal is Signal.LIVE:
        outcome = Outcome.LIVE
        high_bid = _stated_amount(ranked, Signal.LIVE) or live_high or None
    elif signal is Signal.WITHDRAWN:
        outcome = Outcome.WITHDRAWN
        high_bid = _stated_amount(ranked, None) or live_high or None
    else:
        high_bid = (
            _stated_amount(ranked, Signal.RESERVE_NOT_MET)
            or _stated_amount(ranked, None)
            or live_high
            or None
        )
        if high_bid is not None:
            outcome = Outcome.BID_TO
        elif facts.live_bids or facts.bid_count:
            outcome = Outcome.BID_TO
            warnings.append("closed with bids, but no place states the high bid")
        else:
            outcome = Outcome.NO_SALE

    # A voided bid is never the high bid, even where the box still shows it.
    if (
        outcome is not Outcome.SOLD
        and high_bid in facts.canceled_bids
        and high_bid not in facts.live_bids
    ):
        warnings.append(f"high bid {high_bid} is a canceled bid; kept the highest live bid")
        high_bid = live_high
    if (
        outcome in (Outcome.BID_TO, Outcome.LIVE)
        and live_high
        and high_bid
        and live_high > high_bid
    ):
        warnings.append(f"a live bid of {live_high} exceeds the stated high bid {high_bid}")

    accepted_offer = any(claim.place is Place.RNM_ACCEPTED for claim in ranked)
    for claim in ranked:
        if accepted_offer and claim.place is Place.SYSTEM_RECORD:
            continue  # "reserve not met" came first; the accepted offer is the later record
        if not _agrees(claim, outcome):
            warnings.append(f"{claim.place} says {claim.signal} but the outcome is {outcome}")
    return Decision(outcome, sale_price, high_bid, buyer, tuple(dict.fromkeys(warnings)))


def _stated_amount(ranked: list[Claim], signal: Signal | None) -> int | None:
    """The amount named by the highest-ranked place giving `signal` (any signal for None)."""
    for claim in ranked:
        if claim.amount and (signal is None or claim.signal is signal):
            return claim.amount
    return None
