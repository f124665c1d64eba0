"""Parse a BaT listing page into an HTML tree (lxml) and find the elements that hold its facts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from lxml import etree

Element = etree._Element


class ListingParseError(ValueError):
    """The input is not a whole BaT listing page: empty, truncated, another site's, or garbage."""


# Tags that break text into separate words; inline tags (a, strong, span) join their neighbours.
_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt"),
        *("figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header"),
        *("hr", "li", "main", "nav", "ol", "p", "section", "table", "tbody", "td", "tfoot"),
        *("th", "thead", "tr", "ul"),
    }
)
# Elements whose content is never page text: code, styles and client-side templates.
_HIDDEN_TAGS = frozenset({"script", "style", "template"})
_EPOCH = re.compile(r"\d{9,11}")
_EPOCH_ATTRIBUTES = ("data-timestamp", "data-until", "data-ends")
_POST_ID = re.compile(r"\bpost-(\d{1,12})\b")
_CLOSING_HTML = re.compile(r"</html", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PageRegions:
    """The fact-bearing parts of one listing page: plain text where a string is all there is,
    elements where the structure matters; None where the page lacks the part."""

    title_tag: str | None
    og_url: str | None
    canonical_url: str | None
    og_title: str | None
    content_group: str | None
    h1: str | None
    result_line: Element | None
    make_chip: str | None
    post_classes: str | None
    description: str | None
    gallery_json: str | None
    auction_table: Element | None
    views: str | None
    watchers: str | None
    essentials: Element | None
    legacy_essentials: Element | None
    vms: dict[str, Any] | None
    post_id: int | None = None
    noreserve_tag: bool = False


def _live(element: Element) -> bool:
    """Whether the element is page content, not part of a client-side <template> (Knockout)."""
    return next(element.iterancestors("template"), None) is None


def _first(root: Element, tag: str, wanted: Callable[[Element], bool]) -> Element | None:
    """The first live `tag` element that `wanted` accepts, in document order.

    Walking one tag name with lxml's iterator and testing attributes in Python is several times
    faster here than the equivalent XPath, whose class tests build strings for every element.
    """
    return next((node for node in root.iter(tag) if wanted(node) and _live(node)), None)


def has_class(element: Element, name: str) -> bool:
    """Whether `name` is one of the element's classes.

    >>> has_class(etree.fromstring('<td class="listing-stats-value  current-bid-value"/>'),
    ...           'current-bid-value')
    True
    """
    return name in (element.get("class") or "").split()


def parse_document(page: str) -> Element:
    """The root element of the page's HTML tree; ListingParseError for input that is no page.

    >>> parse_document('<P CLASS=x>caf&eacute;</p></html>').findtext('body/p')
    'café'
    """
    if not isinstance(page, str):
        raise ListingParseError(f"expected the page as text, got {type(page).__name__}")
    if not page or page.isspace():
        raise ListingParseError("empty page")
    # A page cut short loses its closing tag; checked first so a half page is never half parsed.
    # rfind looks from the end, where the tag is: a forward search scans the whole page.
    closed = page.rfind("</html") != -1 or page.rfind("</HTML") != -1
    if not closed and _CLOSING_HTML.search(page) is None:
        raise ListingParseError("truncated page: no closing </html>")
    # The text is already decoded: the parser is told its encoding, so a <meta charset> in the
    # page cannot make it decode the bytes again another way.
    parser = etree.HTMLParser(
        encoding="utf-8",
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
        default_doctype=False,
        huge_tree=True,
    )
    try:
        root = etree.fromstring(page.encode("utf-8", "replace"), parser)
    except (etree.LxmlError, ValueError) as exc:
        raise ListingParseError(f"not an HTML page: {exc}") from exc
    if root is None:
        raise ListingParseError("not an HTML page")
    return root


def text_of(element: Element | None, until: Element | None = None) -> str:
    """The element's text as a reader sees it on one line: words joined by single spaces.

    Text in scripts, styles and templates is left out; with `until`, the text stops where that
    descendant begins. The walk keeps its own stack: a hostile page may nest thousands deep.

    >>> text_of(etree.fromstring('<p>Sold for <b>USD $1</b>\\n <i>on</i><br/>1/2/25</p>'))
    'Sold for USD $1 on 1/2/25'
    """
    if element is None:
        return ""
    parts: list[str] = []
    # (node, True) marks the end of a node whose start and content were already written.
    stack: list[tuple[Element, bool]] = [(element, False)]
    while stack:
        node, ended = stack.pop()
        tag = node.tag
        if not ended:
            if node is until:
                break
            if isinstance(tag, str) and tag not in _HIDDEN_TAGS:
                if tag in _BLOCK_TAGS:
                    parts.append(" ")
                if node.text:
                    parts.append(node.text)
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(node))
                continue
        elif tag in _BLOCK_TAGS:
            parts.append(" ")
        if node is not element and node.tail:
            parts.append(node.tail)
    return " ".join("".join(parts).split())


def clean_text(text: str | None) -> str:
    """Text already decoded by the parser (an attribute, a title) with its spaces collapsed.

    >>> clean_text('  No Reserve:\\n 2004\\xa0Porsche ')
    'No Reserve: 2004 Porsche'
    """
    return " ".join(text.split()) if text else ""


def iter_until(element: Element, until: Element | None = None) -> Iterator[Element]:
    """The element and its descendants in document order, stopping where `until` begins."""
    for node in element.iter():
        if node is until:
            return
        yield node


def find_epoch(element: Element | None, until: Element | None = None) -> str | None:
    """The first epoch-seconds attribute (data-timestamp, data-until, data-ends) in the element.

    >>> find_epoch(etree.fromstring('<td><span data-ends="1766600047">Wed</span></td>'))
    '1766600047'
    """
    if element is None:
        return None
    for node in iter_until(element, until):
        for name in _EPOCH_ATTRIBUTES:
            value = node.get(name)
            if value is not None and _EPOCH.fullmatch(value.strip()):
                return value.strip()
    return None


def find_with_attribute(element: Element, name: str) -> Element | None:
    """The first element (the given one included) that carries attribute `name`."""
    return next((node for node in element.iter() if node.get(name) is not None), None)


def find_with_class(element: Element, name: str) -> Element | None:
    """The first element (the given one included) with class `name`."""
    return next((node for node in element.iter() if has_class(node, name)), None)


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


def _meta(root: Element, name: str) -> str | None:
    meta = _first(root, "meta", lambda node: node.get("property") == name)
    return meta.get("content") if meta is not None else None


def _canonical(root: Element) -> str | None:
    link = _first(root, "link", lambda node: "canonical" in (node.get("rel") or "").split())
    return link.get("href") if link is not None else None


def locate_site_url(root: Element, given: str | None) -> str | None:
    """The listing URL the page states (og:url, then canonical), else the one given; checked."""
    stated = _meta(root, "og:url") or _canonical(root)
    if stated:
        return check_listing_url(stated)
    return check_listing_url(given) if given else None


_CONTENT_GROUP_MARKER = "var BAT_CTX = "
VMS_MARKER = "var BAT_VMS = "


def _script_json(root: Element, marker: str) -> Any:
    """The JSON value assigned after the first `marker` in a script; None without one."""
    for script in root.iter("script"):
        code = script.text or ""
        at = code.find(marker)
        if at == -1:
            continue
        try:
            value, _ = json.JSONDecoder().raw_decode(code, at + len(marker))
        except json.JSONDecodeError as exc:
            raise ListingParseError(f"{marker.strip()} is not valid JSON: truncated page?") from exc
        return value
    return None


def locate_vms(root: Element) -> dict[str, Any] | None:
    """The BAT_VMS object (comments, bids, system records); None on layouts without it.

    It sits in the footer scripts, so they are tried from the last; within one, the assignment
    opens the script. Only script text counts, and a comment quoting the marker cannot pass for
    it: a "comments" key needs quotes, which the JSON escapes in comment text.

    >>> locate_vms(parse_document(
    ...     '<script>var BAT_VMS = {"comments": []};</script><p>var BAT_VMS = {}</p></html>'))
    {'comments': []}
    """
    decoder = json.JSONDecoder()
    found = False
    scripts = [code for script in root.iter("script") if VMS_MARKER in (code := script.text or "")]
    for code in reversed(scripts):
        position = 0
        while (at := code.find(VMS_MARKER, position)) != -1:
            found, position = True, at + len(VMS_MARKER)
            try:
                value, _ = decoder.raw_decode(code, at + len(VMS_MARKER))
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict) and isinstance(value.get("comments"), list):
                return value
    if found:
        raise ListingParseError("BAT_VMS is not valid JSON: truncated or damaged page")
    return None


def _make_chip(root: Element) -> str | None:
    # <strong class="group-title-label">Make</strong>Porsche (a link, or a button once JS ran)
    label = _first(
        root,
        "strong",
        lambda node: has_class(node, "group-title-label") and text_of(node) == "Make",
    )
    return (clean_text(label.tail) or None) if label is not None else None


def _stats_item(root: Element, name: str) -> str | None:
    # "11,385 views": under the auction box and again in the sidebar; the first is taken.
    item = _first(root, "span", lambda node: node.get("data-stats-item") == name)
    return text_of(item) if item is not None else None


# The <div>s that hold facts, by class; the first live one of each is the page's.
_DIV_CLASSES = ("listing-available-info", "type-bat-listing", "post-excerpt", "essentials")


def _fact_divs(root: Element) -> dict[str, Element]:
    """The first live <div> of each class in _DIV_CLASSES, and of the photo gallery; one walk."""
    found: dict[str, Element] = {}
    for div in root.iter("div"):
        if "gallery" not in found and div.get("data-gallery-items") is not None and _live(div):
            found["gallery"] = div
        classes = div.get("class")
        if not classes:
            continue
        for name in _DIV_CLASSES:
            # The substring test first: splitting every div's classes costs more than the walk.
            if name in classes and name not in found and name in classes.split() and _live(div):
                found[name] = div
    return found


def locate_regions(root: Element) -> PageRegions:
    """Find every fact-bearing part of a parsed listing page."""
    title = next(
        (node for node in root.iter("title") if next(node.iterancestors("svg"), None) is None), None
    )
    context = _script_json(root, _CONTENT_GROUP_MARKER)
    content_group = context.get("contentGroup") if isinstance(context, dict) else None

    h1 = _first(root, "h1", lambda node: has_class(node, "listing-post-title"))
    # The "NR No Reserve" chip sits in .item-tags beside the h1.
    parent = h1.getparent() if h1 is not None else None
    noreserve_tag = parent is not None and find_with_class(parent, "item-tag-noreserve") is not None

    divs = _fact_divs(root)
    post = divs.get("type-bat-listing")
    post_classes = post.get("class") if post is not None else None
    excerpt = divs.get("post-excerpt")
    gallery = divs.get("gallery")
    auction_table = _first(root, "table", lambda node: node.get("id") == "listing-bid")
    essentials = divs.get("essentials")
    legacy = (
        _first(root, "ul", lambda node: has_class(node, "listing-essentials-items"))
        if essentials is None
        else None
    )

    post_id: int | None = None
    post_match = _POST_ID.search(post_classes or "")
    if post_match is not None:
        post_id = int(post_match.group(1))
    elif auction_table is not None:
        bid_id = (auction_table.get("data-listing-bid-id") or "").strip()
        post_id = int(bid_id) if bid_id.isdigit() and len(bid_id) <= 12 else None

    return PageRegions(
        title_tag=text_of(title) if title is not None else None,
        og_url=_meta(root, "og:url"),
        canonical_url=_canonical(root),
        og_title=_meta(root, "og:title"),
        content_group=content_group if isinstance(content_group, str) else None,
        h1=text_of(h1) if h1 is not None else None,
        result_line=divs.get("listing-available-info"),
        make_chip=_make_chip(root),
        post_classes=post_classes,
        description=text_of(excerpt) if excerpt is not None else None,
        gallery_json=gallery.get("data-gallery-items") if gallery is not None else None,
        auction_table=auction_table,
        views=_stats_item(root, "views"),
        watchers=_stats_item(root, "watchers"),
        essentials=essentials,
        legacy_essentials=legacy,
        vms=locate_vms(root),
        post_id=post_id,
        noreserve_tag=noreserve_tag,
    )
