"""Read every vehicle and auction fact of one BaT listing page into a Listing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bat_backfill.models import Comment, CommentKind, Listing, MileageUnit, Outcome
from bat_backfill.outcome import AuctionFacts, Claim, Place, Signal, decide_outcome
from bat_backfill.parsing.comments import AUCTION_RECORD_TYPES, raw_comments, read_thread
from bat_backfill.parsing.normalise import (
    Money,
    check_vin,
    looks_like_bare_colour,
    looks_like_engine,
    looks_like_paint,
    looks_like_transmission,
    looks_like_upholstery,
    mentions_unknown_mileage,
    parse_bare_interior,
    parse_chassis,
    parse_colour,
    parse_count,
    parse_drivetrain,
    parse_drivetrain_implied,
    parse_drivetrain_prose,
    parse_epoch,
    parse_interior,
    parse_lot,
    parse_mileage,
    parse_model_drivetrain,
    parse_money,
    parse_title_vehicle,
    parse_transmission,
)
from bat_backfill.parsing.page import (
    Element,
    ListingParseError,
    PageRegions,
    check_listing_url,
    clean_text,
    find_epoch,
    find_with_attribute,
    find_with_class,
    has_class,
    locate_regions,
    parse_document,
    text_of,
)

_STATUS = re.compile(r"\bstatus-(paid|unsold|active|withdrawn|sold|live)\b")
_MILEAGE_BULLET = re.compile(r"^\s*(?:~|approximately\s+|approx\.?\s+)?\d", re.IGNORECASE)
_NO_RESERVE = re.compile(r"^\s*no reserve\b", re.IGNORECASE)
_TITLE_TAG_TAIL = re.compile(r"\s+for sale on BaT Auctions\b.*$", re.IGNORECASE | re.DOTALL)
_BUYER_IN_RECORD = re.compile(r"\bto\s+(?P<buyer>\S+)\s*$")
# In the Essentials box a label is a <strong> (or <b>); its value runs until the next block.
_LABEL_TAGS = ("strong", "b")
_VALUE_STOPS = frozenset({"strong", "b", "div", "ul"})


@dataclass(frozen=True, slots=True)
class _Essentials:
    """Facts from the BaT Essentials box."""

    seller: str | None = None
    location: str | None = None
    lot: int | None = None
    bullets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Auction:
    """Facts from the result line and the auction table."""

    claims: tuple[Claim, ...] = ()
    currency: str | None = None
    ended_at: datetime | None = None
    scheduled_end: datetime | None = None
    table_bids: int | None = None
    header_comments: int | None = None


def _label_value(label: Element) -> str:
    """The text after a label up to the next label or block: "<strong>Seller</strong>: <a>X</a>"."""
    parts = [label.tail or ""]
    sibling = label.getnext()
    while sibling is not None and sibling.tag not in _VALUE_STOPS:
        parts.extend((text_of(sibling), sibling.tail or ""))
        sibling = sibling.getnext()
    return clean_text(" ".join(parts)).lstrip(": ").strip()


def _details_list(fragment: Element) -> Element | None:
    """The "Listing Details" list: the first <ul> after that heading, else the first <ul>."""
    heading_seen = not any("Listing Details" in (node.text or "") for node in fragment.iter())
    for node in fragment.iter():
        if node.tag == "ul" and heading_seen:
            return node
        if "Listing Details" in (node.text or ""):
            heading_seen = True
    return None


def _read_essentials(regions: PageRegions) -> _Essentials:
    fragment = regions.essentials if regions.essentials is not None else regions.legacy_essentials
    if fragment is None:
        return _Essentials()
    seller = location = None
    lot: int | None = None
    for label_element in fragment.iter(*_LABEL_TAGS):
        label = text_of(label_element).lower().rstrip(":")
        if label == "seller" and seller is None:
            seller = _label_value(label_element) or None
        elif label == "location" and location is None:
            location = _label_value(label_element) or None
        elif label == "lot" and lot is None:
            lot = parse_lot(_label_value(label_element))
    details = _details_list(fragment)
    bullets: list[str] = []
    for item in details.iterchildren("li") if details is not None else ():
        text = text_of(item)
        lowered = text.lower()
        # The older list mixes seller, location and lot in with the vehicle bullets.
        if lowered.startswith("seller:") and seller is None:
            seller = text.split(":", 1)[1].strip() or None
        elif lowered.startswith("location:") and location is None:
            location = text.split(":", 1)[1].strip() or None
        elif lowered.startswith("lot") and lot is None and "#" in text:
            lot = parse_lot(text)
        elif text:
            bullets.append(text)
    return _Essentials(seller, location, lot, tuple(bullets))


def _money_claim(place: Place, signal: Signal, money: Money | None, buyer: str | None) -> Claim:
    return Claim(place, signal, money.amount if money else None, buyer)


def _read_result_line(line: Element) -> tuple[Claim | None, Money | None, datetime | None]:
    """The headline result ("Sold for", "Bid to", "Current Bid:") and its instant."""
    # The comment counter shares the line; the result is what comes before it.
    cut = find_with_class(line, "comments-anchor-link")
    text = text_of(line, until=cut)
    money = parse_money(text)
    instant = parse_epoch(find_epoch(line, until=cut))
    lowered = text.lower()
    if lowered.startswith("sold for"):
        signal = Signal.SOLD
    elif lowered.startswith("bid to"):
        signal = Signal.RESERVE_NOT_MET
    elif lowered.startswith("current bid"):
        signal = Signal.LIVE
    elif "withdrawn" in lowered:
        signal = Signal.WITHDRAWN
    elif "reserve not met" in lowered:
        signal = Signal.RESERVE_NOT_MET
    elif lowered.startswith("ended") or "auction ended" in lowered:
        signal = Signal.ENDED
    else:
        return None, None, instant
    return _money_claim(Place.RESULT_LINE, signal, money, None), money, instant


def _table_rows(table: Element) -> list[tuple[str, Element]]:
    """(label, value cell) of each row of the auction box."""
    rows: list[tuple[str, Element]] = []
    for row in table.iter("tr"):
        cells = [cell for cell in row if cell.tag in ("td", "th")]
        label = next((c for c in cells if has_class(c, "listing-stats-label")), None)
        value = next((c for c in cells if has_class(c, "listing-stats-value")), None)
        if label is not None and value is not None:
            rows.append((text_of(label).lower(), value))
    return rows


def _read_table(table: Element) -> tuple[Claim | None, Money | None, dict[str, Any]]:
    """The auction box: its bid row, end time and bid count."""
    ended = has_class(table, "ended")
    facts: dict[str, Any] = {}
    claim: Claim | None = None
    money: Money | None = None
    for label, cell in _table_rows(table):
        value = text_of(cell)
        epoch = find_epoch(cell)
        if "withdrawn" in label or "withdrawn" in value.lower():
            claim = Claim(Place.AUCTION_TABLE, Signal.WITHDRAWN, claim.amount if claim else None)
            if epoch:
                facts.setdefault("ended_at", parse_epoch(epoch))
        elif claim is None and ("winning bid" in label or label in {"sold", "sold for"}):
            money = parse_money(value)
            bidder = find_with_attribute(cell, "data-listing-high-bidder-link")
            buyer = text_of(bidder) if bidder is not None else None
            if buyer and buyer.lower().startswith("by "):
                buyer = buyer[3:].strip()
            claim = _money_claim(Place.AUCTION_TABLE, Signal.SOLD, money, buyer or None)
        elif claim is None and "high bid" in label:
            money = parse_money(value)
            signal = Signal.RESERVE_NOT_MET if "reserve not met" in value.lower() else Signal.ENDED
            claim = _money_claim(Place.AUCTION_TABLE, signal, money, None)
        elif claim is None and "current bid" in label:
            money = parse_money(value)
            claim = _money_claim(Place.AUCTION_TABLE, Signal.LIVE, money, None)
        elif "auction ended" in label or label == "ended":
            facts["ended_at"] = parse_epoch(epoch)
        elif label in {"time left", "ends on", "ends in"} and epoch:
            facts.setdefault("scheduled_end", parse_epoch(epoch))
        elif label == "bids":
            facts["bids"] = parse_count(value)
        elif not label and claim is None:
            # The hidden bidding widget of a live auction: data-amount is the current bid.
            widget = find_with_attribute(cell, "data-amount")
            amount = (widget.get("data-amount") or "").strip() if widget is not None else ""
            if amount.isdigit() and len(amount) <= 12 and not ended:
                claim = Claim(Place.AUCTION_TABLE, Signal.LIVE, int(amount))
    if claim is None and (ended or "ended_at" in facts):
        claim = Claim(Place.AUCTION_TABLE, Signal.ENDED)
    return claim, money, facts


def _read_auction(regions: PageRegions) -> _Auction:
    claims: list[Claim] = []
    currency: str | None = None
    ended_at = scheduled_end = None
    table_bids: int | None = None
    if regions.auction_table is not None:
        claim, money, facts = _read_table(regions.auction_table)
        if claim:
            claims.append(claim)
        currency = money.currency if money else None
        ended_at = facts.get("ended_at")
        scheduled_end = facts.get("scheduled_end")
        table_bids = facts.get("bids")
    header_comments: int | None = None
    if regions.result_line is not None:
        claim, money, instant = _read_result_line(regions.result_line)
        if claim:
            claims.append(claim)
        currency = currency or (money.currency if money else None)
        if claim is not None and claim.signal is Signal.LIVE:
            scheduled_end = scheduled_end or instant
        else:
            ended_at = ended_at or instant
        header = find_with_class(regions.result_line, "comments_header_html")
        count = find_with_class(header, "info-value") if header is not None else None
        header_comments = parse_count(text_of(count)) if count is not None else None
    return _Auction(
        claims=tuple(claims),
        currency=currency,
        ended_at=ended_at,
        scheduled_end=scheduled_end,
        table_bids=table_bids,
        header_comments=header_comments,
    )


def _status_claims(regions: PageRegions) -> list[Claim]:
    claims: list[Claim] = []
    status = _STATUS.search(regions.post_classes or "")
    if status is not None:
        signal = {
            "paid": Signal.SOLD,
            "sold": Signal.SOLD,
            "unsold": Signal.RESERVE_NOT_MET,
            "active": Signal.LIVE,
            "live": Signal.LIVE,
            "withdrawn": Signal.WITHDRAWN,
        }[status.group(1)]
        claims.append(Claim(Place.STATUS_CLASS, signal))
    group = (regions.content_group or "").lower()
    if group.endswith("-closed"):
        claims.append(Claim(Place.CONTENT_GROUP, Signal.ENDED))
    elif group.endswith("-live"):
        claims.append(Claim(Place.CONTENT_GROUP, Signal.LIVE))
    return claims


def _record_claims(thread: Sequence[Comment]) -> list[Claim]:
    """BaT's closing system records: the last result record and any accepted offer."""
    claims: list[Claim] = []
    results = [c for c in thread if c.kind is CommentKind.RESULT]
    if results:
        record = results[-1]
        lowered = record.text.lower()
        money = parse_money(record.text)
        if lowered.startswith("sold"):
            claims.append(
                _money_claim(Place.SYSTEM_RECORD, Signal.SOLD, money, _record_buyer(record))
            )
        elif "reserve not met" in lowered:
            claims.append(_money_claim(Place.SYSTEM_RECORD, Signal.RESERVE_NOT_MET, money, None))
        elif "withdrawn" in lowered:
            claims.append(Claim(Place.SYSTEM_RECORD, Signal.WITHDRAWN))
    accepted = [c for c in thread if c.kind is CommentKind.RNM_ACCEPTED]
    if accepted:
        record = accepted[-1]
        money = parse_money(record.text)
        claims.append(_money_claim(Place.RNM_ACCEPTED, Signal.SOLD, money, _record_buyer(record)))
    return claims


def _record_buyer(record: Comment) -> str | None:
    # The sale record's author is the buyer; its text ends "... to <buyer>" as well.
    if record.author:
        return record.author
    match = _BUYER_IN_RECORD.search(record.text)
    return match.group("buyer") if match else None


def _read_gallery(raw: str | None) -> tuple[str, ...]:
    """Full-size image URLs of the whole gallery, in page order, without repeats."""
    if not raw:
        return ()
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ListingParseError("the photo gallery JSON is damaged: truncated page?") from exc
    if not isinstance(items, list):
        return ()
    urls: dict[str, None] = {}
    for item in items:
        if type(item) is not dict:
            continue
        size = item.get("large") or item.get("small")
        url = size.get("url") if type(size) is dict else None
        if isinstance(url, str) and url.startswith("http"):
            # "?fit=2048%2C1365" asks BaT's image CDN for a resized copy; the path is the original.
            urls.setdefault(url.split("?", 1)[0], None)
    return tuple(urls)


def _read_title(regions: PageRegions) -> str:
    for candidate in (regions.h1, regions.og_title, regions.title_tag):
        if not candidate:
            continue
        text = _TITLE_TAG_TAIL.sub("", clean_text(candidate))
        text = re.sub(r"^\s*no reserve:\s*", "", text, flags=re.IGNORECASE).strip()
        if text:
            return text
    raise ListingParseError("no listing title: not a BaT listing page or truncated")


def _read_no_reserve(regions: PageRegions, noreserve_tag: bool) -> bool | None:
    stated = [t for t in (regions.title_tag, regions.og_title) if t]
    if noreserve_tag or any(_NO_RESERVE.match(t) for t in stated):
        return True
    return False if stated else None


def _first(bullets: Sequence[str], accept: Callable[[str], bool]) -> str | None:
    return next((bullet for bullet in bullets if accept(bullet)), None)


def _only(values: Iterable[str | None]) -> str | None:
    """The value when exactly one distinct value is given; None for none, or for several."""
    found = {value for value in values if value}
    return found.pop() if len(found) == 1 else None


def _read_drivetrain(
    bullets: Sequence[str], title: str, make: str | None, model: str | None, description: str
) -> str | None:
    """The driven wheels: a bullet that names them, else what the listing implies, if it agrees."""
    stated = next((d for d in map(parse_drivetrain, bullets) if d), None)
    if stated is not None:
        return stated
    # Without the usual bullet: equipment only four-wheel drives have, a drive system named in
    # the title ("quattro", "4x4"), or a model name that fixes it ("Carrera 4").
    implied = {
        drive
        for drive in (
            *map(parse_drivetrain_implied, bullets),
            parse_drivetrain(title),
            parse_model_drivetrain(make, model),
        )
        if drive
    }
    prose = parse_drivetrain_prose(description)
    if not implied:
        return prose
    if len(implied) > 1:
        return None
    drive = implied.pop()
    # Prose that "drives all four wheels" fits both kinds of four-wheel drive.
    if prose is None or prose == drive or {prose, drive} == {"4WD", "AWD"}:
        return drive
    return None


def _listing_url(regions: PageRegions, given: str | None) -> str:
    stated = regions.og_url or regions.canonical_url
    if stated:
        return check_listing_url(stated)
    if given:
        return check_listing_url(given)
    raise ListingParseError("the page states no listing URL and none was given")


def _checked_or_none(url: str) -> str | None:
    try:
        return check_listing_url(url)
    except ListingParseError:
        return None


def _latest_end(items: Sequence[Mapping[str, Any]]) -> datetime | None:
    # Every bat-bid item carries the auction's end at that moment; the last one is final.
    ends = [item.get("end_timestamp") for item in items if item.get("type") == "bat-bid"]
    instants = [parse_epoch(end) for end in ends if isinstance(end, int | str)]
    known = [instant for instant in instants if instant is not None]
    return max(known, default=None)


def parse_listing(html: str, url: str | None = None) -> Listing:
    """Every fact of a BaT listing page; ListingParseError if the page is not a whole listing."""
    regions = locate_regions(parse_document(html))
    listing_url = _listing_url(regions, url)
    if regions.essentials is None and regions.legacy_essentials is None:
        raise ListingParseError("no BaT Essentials block: truncated page or not a listing page")
    title = _read_title(regions)
    modern = regions.essentials is not None
    if modern and regions.result_line is None and regions.auction_table is None:
        raise ListingParseError("no result line or auction table: truncated page?")

    warnings: list[str] = []
    if url and (regions.og_url or regions.canonical_url):
        given = _checked_or_none(url)
        if given != listing_url:
            warnings.append(f"fetched as {url.strip()[:200]} but the page is {listing_url}")
    essentials = _read_essentials(regions)
    auction = _read_auction(regions)

    items: list[dict[str, Any]] = []
    thread: list[Comment] = []
    vms = regions.vms
    if vms is not None:
        items = raw_comments(vms)
        seller_id = vms.get("postAuthor")
        # Only bids and system records decide the outcome; ordinary comments are just counted.
        records = [item for item in items if item.get("type") in AUCTION_RECORD_TYPES]
        thread = read_thread(records, seller_id if isinstance(seller_id, int) else None)

    live_bids = tuple(c.bid_amount for c in thread if c.kind is CommentKind.BID and c.bid_amount)
    canceled = tuple(
        c.bid_amount for c in thread if c.kind is CommentKind.CANCELED_BID and c.bid_amount
    )
    bid_records = sum(1 for c in thread if c.kind is CommentKind.BID)
    facts = AuctionFacts(
        claims=(*_record_claims(thread), *auction.claims, *_status_claims(regions)),
        live_bids=live_bids,
        canceled_bids=canceled,
        bid_count=auction.table_bids,
    )
    decision = decide_outcome(facts)
    warnings.extend(decision.warnings)

    if vms is not None:
        bid_count: int | None = bid_records
        comment_count: int | None = sum(1 for item in items if item.get("type") == "comment")
        if auction.table_bids is not None and auction.table_bids not in (
            bid_records,
            bid_records + len(canceled),
        ):
            warnings.append(
                f"the auction table counts {auction.table_bids} bids, the thread has {bid_records}"
            )
        if auction.header_comments is not None and auction.header_comments != comment_count:
            warnings.append(
                f"the header counts {auction.header_comments} comments, "
                f"the thread has {comment_count}"
            )
    else:
        bid_count, comment_count = auction.table_bids, auction.header_comments

    outcome = decision.outcome
    if outcome is Outcome.LIVE:
        ended_at = auction.scheduled_end or _latest_end(items)
    else:
        ended_at = auction.ended_at or _latest_end(items)

    make_hint = regions.make_chip
    vehicle = parse_title_vehicle(title, make_hint)

    vin = next((v for v in map(parse_chassis, essentials.bullets) if v), None)
    # The chassis bullet can hold engine-like tokens ("...V8..."); it is never the engine.
    bullets = tuple(b for b in essentials.bullets if parse_chassis(b) is None)
    mileage = next(
        (m for b in bullets if _MILEAGE_BULLET.match(b) and (m := parse_mileage(b))), None
    )
    description = regions.description or ""
    mileage_unit = mileage.unit if mileage else None
    if mileage is not None and mentions_unknown_mileage(description):
        mileage_unit = MileageUnit.TMU
    transmission = next(
        (t for b in bullets if looks_like_transmission(b) and (t := parse_transmission(b))), None
    )
    exterior = parse_colour(_first(bullets, looks_like_paint)) or _only(
        b for b in bullets if looks_like_bare_colour(b)
    )
    interior = parse_interior(_first(bullets, looks_like_upholstery)) or _only(
        map(parse_bare_interior, bullets)
    )

    return Listing(
        url=listing_url,
        lot_number=essentials.lot or parse_lot(_lot_in_title(regions.title_tag)),
        title=title,
        year=vehicle.year,
        make=vehicle.make,
        model=vehicle.model,
        outcome=outcome,
        sale_price=decision.sale_price,
        high_bid=decision.high_bid,
        currency=auction.currency,
        ended_at=ended_at,
        vin=vin,
        vin_valid=check_vin(vin),
        mileage=mileage.value if mileage else None,
        mileage_unit=mileage_unit,
        exterior_color=exterior,
        interior_color=interior,
        engine=_first(bullets, looks_like_engine),
        transmission=transmission,
        drivetrain=_read_drivetrain(bullets, title, vehicle.make, vehicle.model, description),
        location=essentials.location,
        seller=essentials.seller,
        buyer=decision.buyer if outcome is Outcome.SOLD else None,
        no_reserve=_read_no_reserve(regions, regions.noreserve_tag),
        bid_count=bid_count,
        comment_count=comment_count,
        view_count=parse_count(regions.views),
        watcher_count=parse_count(regions.watchers),
        images=_read_gallery(regions.gallery_json),
        post_id=regions.post_id,
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _lot_in_title(title_tag: str | None) -> str | None:
    if not title_tag:
        return None
    at = title_tag.find("Lot #")
    return title_tag[at:] if at != -1 else None
