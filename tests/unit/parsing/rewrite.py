"""Write one HTML page in another, equivalent way: what a browser or HTML library reads the same.

The page is read with lxml's HTML parser and written back by a small serialiser whose surface
choices (quotes, attribute order and layout, tag case, entities, whitespace and comments between
tags) are the variables; the document tree stays the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import lxml.html
from lxml import etree

_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
_RAW_TEXT = frozenset({"script", "style"})
# An attribute value may go unquoted when it is not empty and has none of these (HTML spec).
_NEEDS_QUOTES = re.compile(r"[\s\"'=<>`]")
_REFERENCE_LIKE = re.compile(r"&(?=[A-Za-z0-9#])")


@dataclass(frozen=True, slots=True)
class Writing:
    """The surface choices of one way of writing a page."""

    quote: str | None = '"'  # None: unquoted where legal, double quotes elsewhere
    reverse_attributes: bool = False
    attribute_separator: str = " "
    upper_case: bool = False
    all_entities: bool = False  # every character but letters, digits and space as &#N;
    fewest_entities: bool = False  # characters for entities wherever that is still legal
    padding: bool = False  # more whitespace and a comment between tags


def _numeric(text: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c == " ") else f"&#{ord(c)};" for c in text)


def _text(text: str, writing: Writing) -> str:
    if writing.all_entities:
        return _numeric(text)
    if writing.fewest_entities:
        return _REFERENCE_LIKE.sub("&amp;", text).replace("<", "&lt;")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attribute(name: str, value: str, writing: Writing) -> str:
    if writing.all_entities:
        return f'{name}="{_numeric(value)}"'
    if writing.quote is None and value and not _NEEDS_QUOTES.search(value) and "&" not in value:
        return f"{name}={value}"
    quote = writing.quote or '"'
    escaped = _REFERENCE_LIKE.sub("&amp;", value) if writing.fewest_entities else value
    if not writing.fewest_entities:
        escaped = escaped.replace("&", "&amp;")
    escaped = escaped.replace(quote, "&#34;" if quote == '"' else "&#39;")
    return f"{name}={quote}{escaped}{quote}"


def _write(element: etree._Element, writing: Writing, out: list[str]) -> None:
    if not isinstance(element.tag, str):  # comments and processing instructions
        if isinstance(element, etree._Comment):
            out.append(f"<!--{element.text or ''}-->")
    else:
        tag = element.tag.upper() if writing.upper_case else element.tag
        items = list(element.attrib.items())
        if writing.reverse_attributes:
            items.reverse()
        attributes = "".join(
            writing.attribute_separator
            + _attribute(name.upper() if writing.upper_case else name, value, writing)
            for name, value in items
        )
        out.append(f"<{tag}{attributes}>")
        if element.tag in _RAW_TEXT:
            out.append(element.text or "")
        elif element.tag not in _VOID:
            if element.text:
                out.append(_text(element.text, writing))
            for child in element:
                _write(child, writing, out)
        if element.tag not in _VOID:
            out.append(f"</{tag}>")
    tail = element.tail
    if writing.padding and (tail is None or not tail.strip()):
        out.append(f"\n  <!-- between tags -->  {tail or ''}")
    elif tail:
        out.append(_text(tail, writing))


def rewrite(page: str, writing: Writing) -> str:
    """The same document as `page`, written the way `writing` says."""
    root = lxml.html.document_fromstring(
        page.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8")
    )
    out: list[str] = []
    doctype = root.getroottree().docinfo.doctype
    if doctype:
        out.append(doctype + "\n")
    _write(root, writing, out)
    return "".join(out)


def rewrite_with_lxml(page: str) -> str:
    """lxml's own serialisation of the parsed page (non-ASCII as character references)."""
    root = lxml.html.document_fromstring(
        page.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8")
    )
    return lxml.html.tostring(root, doctype=root.getroottree().docinfo.doctype).decode("ascii")


WRITINGS: dict[str, Writing] = {
    "as-parsed": Writing(),
    "single-quotes": Writing(quote="'"),
    "unquoted": Writing(quote=None),
    "reversed-attributes": Writing(reverse_attributes=True),
    "attributes-on-new-lines": Writing(attribute_separator="\n\t\t"),
    "upper-case": Writing(upper_case=True),
    "entities-for-characters": Writing(all_entities=True),
    "characters-for-entities": Writing(quote="'", fewest_entities=True),
    "padded-with-comments": Writing(padding=True),
}
