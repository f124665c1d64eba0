"""Fetching: only BaT listing URLs, bounded size, and errors classified for retry."""

import httpx
import pytest

from bat_backfill.errors import FetchError, InvalidListingUrlError, PageRejectedError
from bat_backfill.urls import parse_listing_url
from bat_backfill.web import fetch_page

URL = "https://bringatrailer.com/listing/2009-porsche-cayman-46/"


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://bringatrailer.com/listing/x/",
        "https://bringatrailer.com.evil.example/listing/x/",
        "https://bringatrailer.com/auctions/x/",
        "https://user@bringatrailer.com/listing/x/",
        "https://bringatrailer.com:8443/listing/x/",
        "https://bringatrailer.com/listing/x/../../wp-admin/",
        "https://bringatrailer.com/listing/'; DROP TABLE vehicles;--/",
        "https://bringatrailer.com/listing/x\x00/",
        "javascript:alert(1)",
        "",
    ],
)
def test_only_listing_urls_are_accepted(bad):
    with pytest.raises(InvalidListingUrlError):
        parse_listing_url(bad)


@pytest.mark.parametrize(
    "spelling",
    [
        "http://bringatrailer.com/listing/2009-porsche-cayman-46",
        "https://www.bringatrailer.com/listing/2009-porsche-cayman-46/",
        "HTTPS://BringATrailer.COM/listing/2009-porsche-cayman-46/?utm_source=x",
        "https://bringatrailer.com:443/listing/2009-porsche-cayman-46/#comments",
    ],
)
def test_every_spelling_of_a_listing_has_the_one_canonical_url(spelling):
    # The original system stored listings under any of these; they are one listing.
    assert parse_listing_url(spelling) == URL


def client_for(handler):
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_fetch_returns_the_page():
    seen = []

    def handler(request):
        seen.append(str(request.url))
        return httpx.Response(200, html="<html>ok</html>")

    page = fetch_page(client_for(handler), URL)
    assert page.html == "<html>ok</html>"
    assert seen == [URL]


@pytest.mark.parametrize(
    ("status", "retryable", "throttled"),
    [
        (429, True, True),
        (403, True, True),
        (500, True, False),
        (503, True, False),
        (404, False, False),
        (410, False, False),
    ],
)
def test_status_codes_are_classified(status, retryable, throttled):
    with pytest.raises(FetchError) as caught:
        fetch_page(client_for(lambda r: httpx.Response(status)), URL)
    assert (caught.value.retryable, caught.value.throttled, caught.value.status) == (
        retryable,
        throttled,
        status,
    )


def test_timeouts_and_resets_are_retryable():
    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    def reset(request):
        raise httpx.RemoteProtocolError("reset", request=request)

    for handler in (timeout, reset):
        with pytest.raises(FetchError) as caught:
            fetch_page(client_for(handler), URL)
        assert caught.value.retryable


def test_redirect_off_the_site_is_refused():
    def handler(request):
        return httpx.Response(301, headers={"location": "https://evil.example/listing/x/"})

    # The redirect's path is re-checked as a BaT listing; an off-listing path is refused.
    def off_listing(request):
        return httpx.Response(302, headers={"location": "/wp-login.php"})

    with pytest.raises(InvalidListingUrlError):
        fetch_page(client_for(off_listing), URL)
    # A foreign host keeps only its path, which is then fetched from BaT itself.
    calls = []

    def recorder(request):
        calls.append(request.url.host)
        if len(calls) == 1:
            return handler(request)
        return httpx.Response(200, html="<html>x</html>")

    fetch_page(client_for(recorder), URL)
    assert calls == ["bringatrailer.com", "bringatrailer.com"]


def test_oversized_pages_are_rejected():
    big = b"<html>" + b"x" * 2000
    with pytest.raises(PageRejectedError):
        fetch_page(
            client_for(
                lambda r: httpx.Response(200, content=big, headers={"content-type": "text/html"})
            ),
            URL,
            max_bytes=1000,
        )


def test_non_html_is_rejected():
    with pytest.raises(PageRejectedError):
        fetch_page(client_for(lambda r: httpx.Response(200, json={"a": 1})), URL)
