"""The only code that talks to Bring a Trailer: URL checks and polite, bounded page fetches."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from .errors import FetchError, InvalidListingUrlError, PageRejectedError

BAT_ORIGIN = "https://bringatrailer.com"
_SLUG = re.compile(r"^/listing/([a-z0-9][a-z0-9-]{0,200})/?$")
MAX_REDIRECTS = 3


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


@dataclass(frozen=True)
class Page:
    url: str
    status: int
    html: str


def _classify(status: int, url: str) -> FetchError:
    if status in (403, 429):
        # BaT answers 403/429 when it wants us to slow down: back off much longer.
        return FetchError(
            f"BaT answered {status} for {url}", status=status, retryable=True, throttled=True
        )
    if status >= 500 or status == 408:
        return FetchError(f"BaT answered {status} for {url}", status=status, retryable=True)
    return FetchError(f"BaT answered {status} for {url}", status=status, retryable=False)


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


def fetch_page(
    client: httpx.Client,
    url: str,
    *,
    base_url: str = BAT_ORIGIN,
    max_bytes: int = 5_000_000,
    check: Callable[[str], str] = parse_listing_url,
) -> Page:
    """GET a BaT page that `check` accepts, following only redirects `check` also accepts,
    refusing pages above `max_bytes`. `base_url` replaces BaT's origin (local page servers)."""
    canonical = check(url)
    for _ in range(MAX_REDIRECTS + 1):
        target = base_url.rstrip("/") + canonical.removeprefix(BAT_ORIGIN)
        try:
            with client.stream("GET", target, follow_redirects=False) as response:
                if response.is_redirect:
                    location = urljoin(target, response.headers.get("location", ""))
                    # A redirect must land on another page of the same kind on BaT.
                    rest = urlsplit(location)
                    canonical = check(
                        BAT_ORIGIN + rest.path + (f"?{rest.query}" if rest.query else "")
                    )
                    continue
                if response.status_code != 200:
                    raise _classify(response.status_code, canonical)
                kind = response.headers.get("content-type", "text/html")
                if "html" not in kind:
                    raise PageRejectedError(f"{canonical} is {kind}, not HTML")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise PageRejectedError(f"{canonical} is {declared} bytes (limit {max_bytes})")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        raise PageRejectedError(f"{canonical} exceeds {max_bytes} bytes")
                html = body.decode(response.encoding or "utf-8", errors="replace")
                return Page(url=canonical, status=200, html=html)
        except httpx.TimeoutException as exc:
            raise FetchError(
                f"timeout fetching {canonical}: {type(exc).__name__}", retryable=True
            ) from exc
        except httpx.TransportError as exc:
            raise FetchError(
                f"network error fetching {canonical}: {type(exc).__name__}", retryable=True
            ) from exc
    raise FetchError(f"too many redirects for {canonical}", retryable=False)


def build_client(user_agent: str, timeout_seconds: float) -> httpx.Client:
    """One client per warm container: keep-alive to BaT, bounded timeouts, no env proxies."""
    return httpx.Client(
        headers={"User-Agent": user_agent, "Accept": "text/html"},
        timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
        trust_env=False,
    )
