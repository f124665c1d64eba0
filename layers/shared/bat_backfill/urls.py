"""The rules of BaT's URLs: what a listing or results page address is, in one canonical form."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import InvalidListingUrlError

BAT_ORIGIN = "https://bringatrailer.com"
# The rule of bat_listing_url (0002_backfill_columns.sql), written out rather than left to
# urlsplit, which forgives what the SQL refuses (tabs inside the URL, an empty port, ":0443",
# empty user information) and raises ValueError on a bad port: Python and SQL must agree on
# which rows are listings, or the selector queues what the extractor refuses.
_SPACE = "[ \t\n\r\f\v]"
_ORIGIN = re.compile(
    _SPACE + r"*https?://(?:www\.)?bringatrailer\.com(?::443)?(/.*)", re.IGNORECASE | re.DOTALL
)
_PATH = re.compile(r"/listing/([a-z0-9][a-z0-9-]{0,200})/?(?:[?#].*|" + _SPACE + "*)", re.DOTALL)


def parse_listing_url(url: str) -> str:
    """The canonical form of a BaT listing URL, or InvalidListingUrlError. Every spelling of
    one listing (http or https, www. or not, any case in the scheme and host, with or without
    the slash, a query or a fragment) has the one form; the SQL function bat_listing_url is the
    same rule, and a test holds them equal.

    >>> parse_listing_url("https://bringatrailer.com/listing/2009-porsche-cayman-46")
    'https://bringatrailer.com/listing/2009-porsche-cayman-46/'
    >>> parse_listing_url("http://WWW.BringATrailer.com/listing/x-1?utm=1#comments")
    'https://bringatrailer.com/listing/x-1/'
    >>> parse_listing_url("http://evil.example/listing/x/")
    Traceback (most recent call last):
    ...
    bat_backfill.errors.InvalidListingUrlError: not a BaT listing URL: 'http://evil.example/listing/x/'
    """
    if not isinstance(url, str) or len(url) > 400:
        raise InvalidListingUrlError(f"not a BaT listing URL: {str(url)[:80]!r}")
    origin = _ORIGIN.fullmatch(url)
    path = _PATH.fullmatch(origin.group(1)) if origin else None
    if not path:
        raise InvalidListingUrlError(f"not a BaT listing URL: {url[:200]!r}")
    return f"{BAT_ORIGIN}/listing/{path.group(1)}/"


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


_INDEX_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")
# First path segments that are not make pages.
_NOT_MAKES = frozenset(
    {"listing", "member", "auctions", "wp-json", "wp-admin", "wp-content", "account", "search"}
)


def parse_index_url(url: str) -> str:
    """A page of BaT's results index: the results page, the live board, or a make or model page
    (each with an optional ?page=N), in canonical form; InvalidListingUrlError otherwise.

    >>> parse_index_url("https://www.bringatrailer.com/porsche/911/?page=3")
    'https://bringatrailer.com/porsche/911/?page=3'
    >>> parse_index_url("https://bringatrailer.com/auctions/")
    'https://bringatrailer.com/auctions/'
    >>> parse_index_url("https://bringatrailer.com/listing/x-1/")
    Traceback (most recent call last):
    ...
    bat_backfill.errors.InvalidListingUrlError: not a page of BaT's results index: 'https://bringatrailer.com/listing/x-1/'
    """
    if not isinstance(url, str) or len(url) > 400 or "\x00" in url:
        raise InvalidListingUrlError(f"not a page of BaT's results index: {str(url)[:80]!r}")
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    page = parts.query.removeprefix("page=")
    segments = [s for s in parts.path.split("/") if s]
    path_ok = segments in (["auctions", "results"], ["auctions"]) or (
        1 <= len(segments) <= 2
        and segments[0] not in _NOT_MAKES
        and all(_INDEX_SEGMENT.match(s) for s in segments)
    )
    if (
        parts.scheme != "https"
        or host not in ("bringatrailer.com", "www.bringatrailer.com")
        or parts.port not in (None, 443)
        or parts.username
        or not parts.path.endswith("/")
        or not path_ok
        or (parts.query and not (page.isdigit() and 0 < int(page) < 100_000))
    ):
        raise InvalidListingUrlError(f"not a page of BaT's results index: {url[:200]!r}")
    suffix = f"?page={int(page)}" if parts.query and int(page) > 1 else ""
    return f"{BAT_ORIGIN}/{'/'.join(segments)}/{suffix}"


def index_url(page: int, *, make: str | None = None, model: str | None = None) -> str:
    """Page `page` of the results index, or of one make's or model's results.

    >>> index_url(2), index_url(1, make="Porsche", model="911")
    ('https://bringatrailer.com/auctions/results/?page=2', 'https://bringatrailer.com/porsche/911/')
    """
    if model and not make:
        raise InvalidListingUrlError("a model needs its make")
    path = "auctions/results" if not make else "/".join(_index_slug(s) for s in (make, model) if s)
    return parse_index_url(f"{BAT_ORIGIN}/{path}/" + (f"?page={page}" if page > 1 else ""))


def _index_slug(name: str) -> str:
    """BaT's slug of a make or model name ("Mercedes-Benz" -> "mercedes-benz")."""
    return re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
