"""The rules of BaT's URLs: what a listing or results page address is, in one canonical form."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import InvalidListingUrlError

BAT_ORIGIN = "https://bringatrailer.com"
_SLUG = re.compile(r"^/listing/([a-z0-9][a-z0-9-]{0,200})/?$")


def parse_listing_url(url: str) -> str:
    """The canonical form of a BaT listing URL, or InvalidListingUrlError.

    >>> parse_listing_url("https://bringatrailer.com/listing/2009-porsche-cayman-46")
    'https://bringatrailer.com/listing/2009-porsche-cayman-46/'
    >>> parse_listing_url("https://www.bringatrailer.com/listing/x-1/?utm=1")
    'https://bringatrailer.com/listing/x-1/'
    >>> parse_listing_url("http://evil.example/listing/x/")
    Traceback (most recent call last):
    ...
    bat_backfill.errors.InvalidListingUrlError: not a BaT listing URL: 'http://evil.example/listing/x/'
    """
    if not isinstance(url, str) or len(url) > 400 or "\x00" in url:
        raise InvalidListingUrlError(f"not a BaT listing URL: {str(url)[:80]!r}")
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    match = _SLUG.match(parts.path)
    if (
        parts.scheme != "https"
        or host not in ("bringatrailer.com", "www.bringatrailer.com")
        or parts.port not in (None, 443)
        or parts.username
        or not match
    ):
        raise InvalidListingUrlError(f"not a BaT listing URL: {url[:200]!r}")
    return f"{BAT_ORIGIN}/listing/{match.group(1)}/"


def listing_slug(url: str) -> str:
    """The slug of a BaT listing URL.

    >>> listing_slug("https://bringatrailer.com/listing/2009-porsche-cayman-46/")
    '2009-porsche-cayman-46'
    """
    return parse_listing_url(url).rstrip("/").rsplit("/", 1)[1]


def parse_results_url(url: str) -> str:
    """The completed-auctions page of BaT (discovery reads nothing else).

    >>> parse_results_url("https://bringatrailer.com/auctions/results/?page=2")
    'https://bringatrailer.com/auctions/results/?page=2'
    """
    parts = urlsplit(url)
    page = parts.query.removeprefix("page=")
    if (
        parts.scheme != "https"
        or parts.hostname != "bringatrailer.com"
        or parts.path != "/auctions/results/"
        or (parts.query and not page.isdigit())
    ):
        raise InvalidListingUrlError(f"not the BaT results page: {url[:200]!r}")
    return f"{BAT_ORIGIN}/auctions/results/" + (f"?page={page}" if parts.query else "")


def results_url(page: int) -> str:
    return f"{BAT_ORIGIN}/auctions/results/" + (f"?page={page}" if page > 1 else "")
