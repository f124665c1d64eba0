"""Ended listings on BaT's completed-auctions page (its embedded `auctionsCompletedInitialData`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import InvalidListingUrlError
from .urls import parse_listing_url

_MARKER = "auctionsCompletedInitialData"


class ResultsPageError(ValueError):
    """The page holds no readable completed-auctions data."""


@dataclass(frozen=True, slots=True)
class DiscoveredListing:
    url: str
    title: str | None
    year: int | None
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class ResultsPage:
    listings: tuple[DiscoveredListing, ...]
    page: int
    pages_total: int


def parse_results_page(html: str) -> ResultsPage:
    """Ended listings on a results or model page; items with a non-listing URL are dropped.

    >>> page = parse_results_page('var auctionsCompletedInitialData = {"items": [{"url": '
    ...     '"https://bringatrailer.com/listing/1999-bmw-m3-12/", "title": "1999 BMW M3",'
    ...     ' "year": "1999", "timestamp_end": 1776712341}], "page_current": 1, "pages_total": 9};')
    >>> page.listings[0].url, page.listings[0].year, page.pages_total
    ('https://bringatrailer.com/listing/1999-bmw-m3-12/', 1999, 9)
    """
    at = html.find(_MARKER)
    start = html.find("{", at) if at >= 0 else -1
    if start < 0:
        raise ResultsPageError("no auctionsCompletedInitialData on the page")
    try:
        data, _ = json.JSONDecoder().raw_decode(html, start)
    except ValueError as exc:
        raise ResultsPageError(f"unreadable auctionsCompletedInitialData: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ResultsPageError("auctionsCompletedInitialData has no items")
    found: dict[str, DiscoveredListing] = {}
    for item in data["items"]:
        if not isinstance(item, dict) or item.get("active"):
            continue
        try:
            url = parse_listing_url(str(item.get("url", "")))
        except InvalidListingUrlError:
            continue
        year = str(item.get("year") or "")
        end = item.get("timestamp_end")
        found.setdefault(
            url,
            DiscoveredListing(
                url=url,
                title=str(item["title"])[:300] if item.get("title") else None,
                year=int(year) if year.isdigit() else None,
                ended_at=datetime.fromtimestamp(end, UTC) if isinstance(end, int) else None,
            ),
        )
    return ResultsPage(
        listings=tuple(found.values()),
        page=_int(data.get("page_current"), 1),
        pages_total=_int(data.get("pages_total"), 1),
    )


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default
