"""The only code that talks to Bring a Trailer: polite, bounded page fetches."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from .errors import FetchError, PageRejectedError
from .urls import BAT_ORIGIN, parse_listing_url

MAX_REDIRECTS = 3
# A read may stall at most this share of the fetch's deadline: the deadline is checked between
# reads, so a server dripping bytes ends the fetch no later than 1.25 x the deadline.
STALL_SHARE = 0.25


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


def _past_deadline(url: str, seconds: float) -> FetchError:
    return FetchError(
        f"timeout fetching {url}: no complete page within {seconds:g} s", retryable=True
    )


def fetch_page(
    client: httpx.Client,
    url: str,
    *,
    base_url: str = BAT_ORIGIN,
    max_bytes: int = 5_000_000,
    check: Callable[[str], str] = parse_listing_url,
    before_request: Callable[[], None] | None = None,
    deadline_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Page:
    """GET a BaT page that `check` accepts, following only redirects `check` also accepts,
    refusing pages above `max_bytes`. `base_url` replaces BaT's origin (local page servers).

    `before_request` runs before every request, redirects included (the request budget waits
    there). `deadline_seconds` bounds the whole fetch from its first request: connecting,
    redirects and every read of the body, however slowly the server sends it."""
    canonical = check(url)
    deadline: float | None = None
    for _ in range(MAX_REDIRECTS + 1):
        target = base_url.rstrip("/") + canonical.removeprefix(BAT_ORIGIN)
        if before_request is not None:
            before_request()
        timeout = client.timeout
        if deadline_seconds is not None:
            if deadline is None:
                deadline = clock() + deadline_seconds
            remaining = deadline - clock()
            if remaining <= 0:
                raise _past_deadline(canonical, deadline_seconds)
            stall = min(remaining, max(0.05, deadline_seconds * STALL_SHARE))
            timeout = httpx.Timeout(stall)
        try:
            with client.stream("GET", target, follow_redirects=False, timeout=timeout) as response:
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
                    if deadline is not None and deadline_seconds and clock() > deadline:
                        raise _past_deadline(canonical, deadline_seconds)
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
