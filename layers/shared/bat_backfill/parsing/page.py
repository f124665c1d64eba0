"""Locate the few regions of a BaT listing page that hold facts, with str.find, not a parse."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class ListingParseError(ValueError):
    """The input is not a whole BaT listing page: empty, truncated, another site's, or garbage."""


# Escaped copies of the auction box and result line sit inside BAT_VMS / pusher JSON
# (`class=\"listing-available-info\"`); a real opening tag has no backslash before the needle.
_TAG_LOOKBACK = 600
# Upper bounds for regions; a region that does not close within them is a damaged page.
_MAX_RESULT_LINE = 20_000
_MAX_TABLE = 40_000
_MAX_ESSENTIALS = 60_000
_MAX_DESCRIPTION = 60_000
_MAX_TITLE = 2_000

_POST_ID = re.compile(r"\bpost-(\d{1,12})\b")
_BID_ID = re.compile(r'data-listing-bid-id="(\d{1,12})"')
_ATTRIBUTE = re.compile(r"""\b([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


@dataclass(frozen=True, slots=True)
class PageRegions:
    """Raw fragments of one listing page; None where the page lacks the region."""

    title_tag: str | None
    og_url: str | None
    canonical_url: str | None
    og_title: str | None
    content_group: str | None
    h1: str | None
    result_line: str | None
    make_chip: str | None
    post_classes: str | None
    description: str | None
    gallery_json: str | None
    auction_table: str | None
    views: str | None
    watchers: str | None
    essentials: str | None
    legacy_essentials: str | None
    vms: dict[str, Any] | None
    post_id: int | None = None
    noreserve_tag: bool = False


def find_open_tag(page: str, needle: str, start: int = 0, end: int | None = None) -> int:
    """Index of the '<' of the first real (not JSON-escaped) opening tag containing `needle`.

    >>> find_open_tag('x = "<div class=\\\\"a\\\\">"; <div class="a">', 'class="a"')
    25
    >>> find_open_tag('<p>class="a"</p>', 'class="a"')
    -1
    >>> find_open_tag('<head><title>x</title>', '<title')
    6
    """
    stop = len(page) if end is None else end
    position = start
    while True:
        hit = page.find(needle, position, stop)
        if hit == -1:
            return -1
        if needle.startswith("<"):
            return hit
        opening = page.rfind("<", max(0, hit - _TAG_LOOKBACK), hit)
        if opening != -1:
            between = page[opening:hit]
            if ">" not in between and "\\" not in between and between[1:2].isalpha():
                return opening
        position = hit + len(needle)


def find_element_end(page: str, opening: int, tag: str, limit: int) -> int:
    """Index just past the tag that closes the element opened at `opening`; -1 if not within limit.

    >>> html = '<div a><div>x</div><div>y</div></div><div>after</div>'
    >>> html[: find_element_end(html, 0, 'div', 1000)]
    '<div a><div>x</div><div>y</div></div>'
    >>> find_element_end('<div><div>unclosed</div>', 0, 'div', 1000)
    -1
    """
    open_token, close_token = "<" + tag, "</" + tag
    stop = min(len(page), opening + limit)
    position = page.find(">", opening, stop)
    if position == -1:
        return -1
    depth = 1
    while True:
        next_close = page.find(close_token, position, stop)
        if next_close == -1:
            return -1
        next_open = page.find(open_token, position, next_close)
        if next_open != -1:
            depth += 1
            position = next_open + len(open_token)
            continue
        depth -= 1
        position = next_close + len(close_token)
        if depth == 0:
            after = page.find(">", position, stop)
            return -1 if after == -1 else after + 1


def read_attributes(tag_html: str) -> dict[str, str]:
    """Attributes of one opening tag (values still entity-escaped).

    >>> read_attributes('<meta property="og:url" content=\\'https://x/\\'>')
    {'property': 'og:url', 'content': 'https://x/'}
    """
    attributes: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(tag_html):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        attributes.setdefault(match.group(1).lower(), value or "")
    return attributes


def _opening_tag(page: str, opening: int) -> str:
    close = page.find(">", opening, opening + 4000)
    return page[opening : close + 1] if close != -1 else ""


def _meta_content(page: str, needle: str, end: int) -> str | None:
    opening = find_open_tag(page, needle, 0, end)
    if opening == -1:
        return None
    attributes = read_attributes(_opening_tag(page, opening))
    return attributes.get("content") or attributes.get("href")


def _element_text(page: str, needle: str, tag: str, limit: int, start: int = 0) -> str | None:
    """Inner HTML of the first `tag` element whose opening tag contains `needle`."""
    opening = find_after(page, needle, start)
    if opening == -1:
        return None
    inner_start = page.find(">", opening, opening + 4000)
    inner_end = page.find("</" + tag, inner_start, inner_start + limit)
    if inner_start == -1 or inner_end == -1:
        return None
    return page[inner_start + 1 : inner_end]


def find_after(page: str, needle: str, anchor: int) -> int:
    """find_open_tag from `anchor` on, then before it: the page order is usual, not guaranteed."""
    hit = find_open_tag(page, needle, max(anchor, 0))
    if hit == -1 and anchor > 0:
        hit = find_open_tag(page, needle, 0, anchor + len(needle))
    return hit


def _element(
    page: str, needle: str, tag: str, limit: int, anchor: int = 0
) -> tuple[str | None, int]:
    """Outer HTML of the first balanced `tag` element whose opening tag contains `needle`."""
    opening = find_after(page, needle, anchor)
    if opening == -1 or not page.startswith("<" + tag, opening):
        return None, opening
    end = find_element_end(page, opening, tag, limit)
    if end == -1:
        raise ListingParseError(f"the <{tag}> holding {needle!r} never closes: truncated page?")
    return page[opening:end], opening


def _read_json_object(page: str, marker: str, start: int = 0, end: int | None = None) -> Any:
    at = page.find(marker, start, len(page) if end is None else end)
    if at == -1:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(page, at + len(marker))
    except json.JSONDecodeError as exc:
        raise ListingParseError(f"{marker.strip()} is not valid JSON: truncated page?") from exc
    return value


_LISTING_URL = re.compile(
    r"^https?://(?:www\.)?bringatrailer\.com/listing/(?P<slug>[A-Za-z0-9][A-Za-z0-9_-]*)/?(?:[?#].*)?$"
)


def check_listing_url(url: str) -> str:
    """The canonical form of a BaT listing URL; ListingParseError for any other address.

    >>> check_listing_url('https://bringatrailer.com/listing/2009-porsche-cayman-46')
    'https://bringatrailer.com/listing/2009-porsche-cayman-46/'
    >>> check_listing_url('https://example.com/listing/x/')
    Traceback (most recent call last):
    ...
    bat_backfill.parsing.page.ListingParseError: not a Bring a Trailer listing: https://example.com/listing/x/
    """
    match = _LISTING_URL.match(url.strip().replace("&#038;", "&").replace("&amp;", "&"))
    if match is None:
        raise ListingParseError(f"not a Bring a Trailer listing: {url.strip()[:200]}")
    return f"https://bringatrailer.com/listing/{match.group('slug')}/"


def _head_end(page: str) -> int:
    end = page.find("</head")
    return end if end != -1 else min(len(page), 300_000)


def locate_site_url(page: str, given: str | None) -> str | None:
    """The listing URL the page states (og:url, then canonical), else the one given; checked."""
    head_end = _head_end(page)
    stated = _meta_content(page, 'property="og:url"', head_end) or _meta_content(
        page, 'rel="canonical"', head_end
    )
    if stated:
        return check_listing_url(stated)
    return check_listing_url(given) if given else None


_CONTENT_GROUP_MARKER = "var BAT_CTX = "
VMS_MARKER = "var BAT_VMS = "


def locate_vms(page: str) -> dict[str, Any] | None:
    """The BAT_VMS object (comments, bids, system records); None on layouts without it.

    It sits in the footer scripts, so the search runs from the end. A comment quoting the marker
    cannot pass for it: a "comments" key needs quotes, which BaT escapes in comment text.

    >>> locate_vms('<script>var BAT_VMS = {"comments": []};</script><p>var BAT_VMS = {}</p>')
    {'comments': []}
    """
    decoder = json.JSONDecoder()
    position, found = len(page), False
    while (at := page.rfind(VMS_MARKER, 0, position)) != -1:
        found, position = True, at
        try:
            value, _ = decoder.raw_decode(page, at + len(VMS_MARKER))
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and isinstance(value.get("comments"), list):
            return value
    if found:
        raise ListingParseError("BAT_VMS is not valid JSON: truncated or damaged page")
    return None


def locate_regions(page: str) -> PageRegions:
    """Find every fact-bearing region; raise ListingParseError for input that is no whole page."""
    if not isinstance(page, str):
        raise ListingParseError(f"expected the page as text, got {type(page).__name__}")
    if not page.strip():
        raise ListingParseError("empty page")
    # A page cut short loses its closing tag; checked first so a half page is never half parsed.
    if page.rfind("</html") == -1 and page.rfind("</HTML") == -1:
        raise ListingParseError("truncated page: no closing </html>")

    head_end = _head_end(page)
    title_tag = _element_text(page, "<title", "title", _MAX_TITLE)
    if title_tag is not None and find_open_tag(page, "<title") >= head_end:
        title_tag = None
    og_url = _meta_content(page, 'property="og:url"', head_end)
    canonical_url = _meta_content(page, 'rel="canonical"', head_end)
    og_title = _meta_content(page, 'property="og:title"', head_end)

    content_group: str | None = None
    context = _read_json_object(page, _CONTENT_GROUP_MARKER, 0, head_end)
    if isinstance(context, dict) and isinstance(context.get("contentGroup"), str):
        content_group = context["contentGroup"]

    h1_at = find_open_tag(page, "listing-post-title")
    h1 = _element_text(page, "listing-post-title", "h1", _MAX_TITLE, h1_at) if h1_at != -1 else None
    # The "NR No Reserve" chip sits in .item-tags right under the h1.
    noreserve_tag = h1_at != -1 and page.find("item-tag-noreserve", h1_at, h1_at + 6_000) != -1
    # Regions are searched in their usual page order, each from the previous one, so the page
    # is scanned about once; find_after still looks behind the anchor when the order differs.
    anchor = max(h1_at, 0)
    result_line, result_at = _element(
        page, 'class="listing-available-info"', "div", _MAX_RESULT_LINE, anchor
    )
    anchor = max(anchor, result_at)

    make_chip: str | None = None
    chip_at = page.find('group-title-label">Make</strong>', anchor, anchor + 60_000)
    if chip_at != -1:
        chip_start = chip_at + len('group-title-label">Make</strong>')
        chip_end = page.find("<", chip_start, chip_start + 200)
        if chip_end != -1:
            make_chip = page[chip_start:chip_end]

    post_classes: str | None = None
    post_at = find_after(page, "type-bat-listing", anchor)
    if post_at != -1:
        post_classes = read_attributes(_opening_tag(page, post_at)).get("class")
        anchor = max(anchor, post_at)

    description: str | None = None
    excerpt_at = find_after(page, 'class="post-excerpt"', anchor)
    if excerpt_at != -1:
        # The excerpt's paragraphs end where the theme's templates begin.
        excerpt_end = page.find("<script", excerpt_at, excerpt_at + _MAX_DESCRIPTION)
        stop = excerpt_end if excerpt_end != -1 else excerpt_at + _MAX_DESCRIPTION
        description = page[excerpt_at:stop]
        anchor = max(anchor, excerpt_at)

    gallery_json: str | None = None
    gallery_at = find_after(page, "data-gallery-items=", anchor)
    if gallery_at != -1:
        gallery_start = page.find('data-gallery-items="', gallery_at) + len('data-gallery-items="')
        gallery_end = page.find('"', gallery_start)
        if gallery_end == -1:
            raise ListingParseError("the photo gallery attribute never closes: truncated page?")
        gallery_json = page[gallery_start:gallery_end]
        anchor = max(anchor, gallery_end)

    auction_table: str | None = None
    table_at = find_after(page, 'id="listing-bid"', anchor)
    if table_at != -1:
        table_end = page.find("</table>", table_at, table_at + _MAX_TABLE)
        if table_end == -1:
            raise ListingParseError("the auction table never closes: truncated page?")
        auction_table = page[table_at : table_end + len("</table>")]
        anchor = max(anchor, table_at)

    views = _element_text(page, 'data-stats-item="views"', "span", 200, anchor)
    watchers = _element_text(page, 'data-stats-item="watchers"', "span", 200, anchor)

    essentials, _ = _element(page, 'class="essentials"', "div", _MAX_ESSENTIALS, anchor)
    legacy_essentials: str | None = None
    if essentials is None:
        legacy_essentials, _ = _element(page, "listing-essentials-items", "ul", _MAX_ESSENTIALS)

    post_id: int | None = None
    post_match = _POST_ID.search(post_classes or "")
    if post_match is None and auction_table is not None:
        post_match = _BID_ID.search(auction_table[:400])
    if post_match is not None:
        post_id = int(post_match.group(1))

    return PageRegions(
        title_tag=title_tag,
        og_url=og_url,
        canonical_url=canonical_url,
        og_title=og_title,
        content_group=content_group,
        h1=h1,
        result_line=result_line,
        make_chip=make_chip,
        post_classes=post_classes,
        description=description,
        gallery_json=gallery_json,
        auction_table=auction_table,
        views=views,
        watchers=watchers,
        essentials=essentials,
        legacy_essentials=legacy_essentials,
        vms=locate_vms(page),
        post_id=post_id,
        noreserve_tag=noreserve_tag,
    )
