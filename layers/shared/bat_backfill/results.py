"""BaT's results index (results, make and model pages, live boards, the listings-filter JSON) read
into validated items; json and the standard library only, so the orchestrator starts fast."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidListingUrlError
from .models import Outcome
from .urls import parse_listing_url

# The script variables BaT embeds: ended listings on results/make/model pages, running
# auctions on live boards. The listings-filter endpoint returns the same object as JSON.
_MARKERS = ("auctionsCompletedInitialData", "auctionsCurrentInitialData")

# The result line of an ended listing: "Sold for USD $42,000 <span> on 4/24/26 </span>",
# "Bid to GBP £16,000 ...", and the older wording without a code, "Sold for $42,000".
_RESULT = re.compile(
    r"^\s*(?P<verb>sold\s+for|bid\s+to)\s+(?:(?P<code>[A-Z]{3})\s*)?(?P<symbol>[$€£]|CHF|A\$|C\$)?"
    r"\s*(?P<amount>\d[\d,]*(?:\.\d\d)?)",
    re.IGNORECASE,
)
_WITHDRAWN = re.compile(r"\bwithdrawn\b", re.IGNORECASE)
_NO_BIDS = re.compile(r"\bno\s+bids\b|\bended\b|\bclosed\b", re.IGNORECASE)
_SYMBOL_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP", "CHF": "CHF", "A$": "AUD", "C$": "CAD"}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_TITLE_YEAR = re.compile(r"(?<![\d,.$])((?:18[89]|19\d|20\d)\d)(?![\d,-])")
_TAGS = re.compile(r"<[^>]*>")
MAX_PRICE = 100_000_000  # above any price ever paid on BaT: a misread, not a car


class ResultsPageError(ValueError):
    """The document holds no readable results index."""


@dataclass(frozen=True, slots=True)
class IndexItem:
    """One listing as BaT's index states it; `lot_id` is BaT's numeric id of the listing."""

    url: str
    title: str | None
    year: int | None
    outcome: Outcome | None  # None: the index line says nothing readable about the result
    price: int | None  # the sale price (sold), the high bid (bid_to) or the current bid (live)
    currency: str | None
    ended_at: datetime | None  # for a live auction, its scheduled end
    no_reserve: bool | None
    lot_id: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "title": self.title,
            "year": self.year,
            "outcome": self.outcome.value if self.outcome else None,
            "price": self.price,
            "currency": self.currency,
            "ended_at": self.ended_at.isoformat().replace("+00:00", "Z") if self.ended_at else None,
            "no_reserve": self.no_reserve,
            "lot_id": self.lot_id,
        }


@dataclass(frozen=True, slots=True)
class ResultsIndex:
    """One page of the index: its valid items (newest first, as BaT lists them) and how many
    items were skipped as unreadable, with the first few reasons."""

    items: tuple[IndexItem, ...]
    skipped: int
    page: int
    pages_total: int
    items_total: int | None
    problems: tuple[str, ...] = ()
    # Listing URLs of skipped items: still listings, so discovery queues them for a fetch.
    unread_urls: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "pages_total": self.pages_total,
            "items_total": self.items_total,
            "skipped": self.skipped,
            "problems": list(self.problems),
            "unread_urls": list(self.unread_urls),
            "items": [i.to_dict() for i in self.items],
        }


class _BadItem(ValueError):
    pass


def _index_object(text: str) -> dict[str, Any]:
    """The index object of an HTML page (its embedded variable) or of a JSON document."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise ResultsPageError(f"unreadable JSON: {exc}") from None
    else:
        for marker in _MARKERS:
            at = text.find(marker)
            start = text.find("{", at) if at >= 0 else -1
            if start >= 0:
                try:
                    data, _ = json.JSONDecoder().raw_decode(text, start)
                except ValueError as exc:
                    raise ResultsPageError(f"unreadable {marker}: {exc}") from None
                break
        else:
            raise ResultsPageError(
                "no auctionsCompletedInitialData or auctionsCurrentInitialData on the page"
            )
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ResultsPageError("the results index has no list of items")
    return data


def parse_results(text: str) -> ResultsIndex:
    """The items of a results/make/model page, a live board, or a listings-filter JSON answer.

    >>> index = parse_results('var auctionsCompletedInitialData = {"items": [{"url": '
    ...     '"https://bringatrailer.com/listing/1999-bmw-m3-12/", "title": "1999 BMW M3", '
    ...     '"active": false, "currency": "USD", "current_bid": 42000, "timestamp_end": '
    ...     '1776712341, "sold_text": "Sold for USD $42,000 <span> on 4/20/26 </span>", '
    ...     '"id": 112096805}], "page_current": 1, "pages_total": 9};')
    >>> item = index.items[0]
    >>> item.outcome.value, item.price, item.currency, item.ended_at.isoformat(), index.pages_total
    ('sold', 42000, 'USD', '2026-04-20T19:12:21+00:00', 9)
    """
    data = _index_object(text)
    found: dict[str, IndexItem] = {}
    skipped = 0
    problems: list[str] = []
    unread: dict[str, None] = {}
    for position, raw in enumerate(data["items"], start=1):
        try:
            item = parse_index_item(raw)
        except _BadItem as exc:
            skipped += 1
            if len(problems) < 5:
                problems.append(f"item {position}: {exc}")
            if isinstance(raw, dict):
                with contextlib.suppress(InvalidListingUrlError):
                    unread[parse_listing_url(str(raw.get("url") or ""))] = None
            continue
        found.setdefault(item.url, item)
    total = _int(data.get("items_total"))
    return ResultsIndex(
        items=tuple(found.values()),
        skipped=skipped,
        page=_int(data.get("page_current")) or 1,
        pages_total=_int(data.get("pages_total")) or 1,
        items_total=total,
        problems=tuple(problems),
        unread_urls=tuple(u for u in unread if u not in found),
    )


def parse_index_item(raw: object) -> IndexItem:
    """One validated item; _BadItem names what is wrong with it."""
    if not isinstance(raw, dict):
        raise _BadItem("not an object")
    try:
        url = parse_listing_url(str(raw.get("url") or ""))
    except InvalidListingUrlError:
        raise _BadItem(f"not a listing URL: {str(raw.get('url'))[:80]!r}") from None
    title = _text(raw.get("title"))
    year = _int(raw.get("year"))
    if year is None and title and (found := _TITLE_YEAR.search(title)):
        year = int(found.group(1))  # BaT's index often leaves "year" empty; titles state it
    if year is not None and not 1885 <= year <= 2100:
        year = None
    listed_currency = _text(raw.get("currency"))
    if listed_currency is not None and not _CURRENCY.match(listed_currency.upper()):
        raise _BadItem(f"unknown currency {listed_currency!r}")
    listed_currency = listed_currency.upper() if listed_currency else None
    current_bid = _amount(raw.get("current_bid"))
    ended_at = _moment(raw.get("timestamp_end")) or _moment(raw.get("sold_text_timestamp"))
    no_reserve = raw.get("noreserve") if isinstance(raw.get("noreserve"), bool) else None
    lot_id = _int(raw.get("id"))
    active = raw.get("active")
    result = _TAGS.sub(" ", str(raw.get("sold_text") or "")).strip()
    currency = listed_currency
    price: int | None
    outcome: Outcome | None
    if active is True or active in (1, "1", "true"):
        outcome, price = Outcome.LIVE, current_bid
    elif match := _RESULT.match(result):
        outcome = Outcome.SOLD if match["verb"].lower().startswith("sold") else Outcome.BID_TO
        price = _amount(match["amount"].replace(",", ""))
        stated = match["code"].upper() if match["code"] else None
        if stated is None and match["symbol"]:
            stated = _SYMBOL_CURRENCY.get(match["symbol"])
        if stated and listed_currency and stated != listed_currency:
            raise _BadItem(f"currency {listed_currency} but the result says {stated}")
        currency = stated or listed_currency
        if outcome is Outcome.BID_TO and not price:
            # "Bid to $0": the auction closed without a bid.
            outcome, price = Outcome.NO_SALE, None
    elif _WITHDRAWN.search(result):
        outcome, price = Outcome.WITHDRAWN, None
    elif _NO_BIDS.search(result) and not current_bid:
        outcome, price = Outcome.NO_SALE, None
    elif result:
        raise _BadItem(f"unreadable result {result[:60]!r}")
    else:
        # No result line: still a listing (discovery needs only its URL), with no outcome.
        outcome, price = None, None
    if price is not None and not 0 < price <= MAX_PRICE:
        raise _BadItem(f"implausible price {price}")
    if outcome is Outcome.SOLD and price is None:
        raise _BadItem("sold without a price")
    return IndexItem(
        url=url,
        title=title,
        year=year,
        outcome=outcome,
        price=price,
        currency=currency if price is not None else listed_currency,
        ended_at=ended_at,
        no_reserve=no_reserve,
        lot_id=lot_id,
    )


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = " ".join(value.split())
    return cleaned[:300] or None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _amount(value: object) -> int | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        value = value.strip().removesuffix(".00")
    amount = _int(value)
    if amount is None and value not in (None, ""):
        raise _BadItem(f"unreadable amount {str(value)[:30]!r}")
    return amount or None


def _moment(value: object) -> datetime | None:
    epoch = _int(value)
    if epoch is None or epoch <= 0:
        return None
    try:
        return datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        raise _BadItem(f"unreadable end time {epoch}") from None
