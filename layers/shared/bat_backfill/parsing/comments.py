"""Read a listing's comment thread and bids from the BAT_VMS JSON blob."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from bat_backfill.models import Comment, CommentKind
from bat_backfill.parsing.normalise import parse_epoch, parse_money, parse_text
from bat_backfill.parsing.page import (
    ListingParseError,
    locate_site_url,
    locate_vms,
    parse_document,
)

# BaT's comment item types; anything else is kept as a plain comment so no text is lost.
_KINDS = {
    "comment": CommentKind.COMMENT,
    "bat-bid": CommentKind.BID,
    "bat-bid-reserve": CommentKind.RESULT,
    "bat-rnm-accepted": CommentKind.RNM_ACCEPTED,
    "bat-bid-canceled": CommentKind.CANCELED_BID,
}
# The item types that bear on the auction (bids and BaT's system records), not conversation.
AUCTION_RECORD_TYPES = frozenset(name for name in _KINDS if name != "comment")
# BaT appends this to the seller's name on every comment the seller writes.
_SELLER_SUFFIX = re.compile(r"\s*\(the seller\)\s*$", re.IGNORECASE)


def raw_comments(vms: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The comment items of BAT_VMS (the whole thread, not just the first page shown)."""
    items = vms.get("comments")
    if items is None:
        return []
    if not isinstance(items, list):
        raise ListingParseError("BAT_VMS.comments is not a list")
    return [item for item in items if isinstance(item, dict)]


def _as_int(value: Any) -> int | None:
    if type(value) is int:  # the usual case, checked first: this runs for every comment
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def read_comment(item: Mapping[str, Any], seller_id: int | None) -> Comment | None:
    """One thread item as a Comment; None when it has no numeric id."""
    comment_id = _as_int(item.get("id"))
    if comment_id is None or comment_id <= 0:
        return None
    raw_type = str(item.get("type") or "comment")
    kind = _KINDS.get(raw_type, CommentKind.COMMENT)
    raw_name = str(item.get("authorName") or "").strip()
    author_id = _as_int(item.get("authorId"))
    marked = raw_name.endswith(")") and _SELLER_SUFFIX.search(raw_name) is not None
    is_seller = marked or (seller_id is not None and author_id == seller_id and author_id > 0)
    author: str | None = (_SELLER_SUFFIX.sub("", raw_name) if marked else raw_name) or None
    if author_id == 0 and author == "Anonymous":
        author = None  # BaT's system records on unsold lots carry this placeholder
    if kind is CommentKind.COMMENT and is_seller:
        kind = CommentKind.SELLER_REPLY
    content = item.get("content")
    if not isinstance(content, str):
        content = item.get("markup") if isinstance(item.get("markup"), str) else ""
    text = parse_text(str(content))
    bid_amount: int | None = None
    if kind in (CommentKind.BID, CommentKind.CANCELED_BID):
        bid_amount = _as_int(item.get("bidAmount")) or None
        if bid_amount is None:
            money = parse_money(text)
            bid_amount = money.amount if money else None
    timestamp = item.get("timestamp")
    posted_at = parse_epoch(timestamp) if isinstance(timestamp, int | str) else None
    likes = _as_int(item.get("likes"))
    parent = _as_int(item.get("commentParent"))
    return Comment(
        id=comment_id,
        kind=kind,
        author=author,
        is_seller=is_seller,
        posted_at=posted_at,
        text=text,
        bid_amount=bid_amount,
        likes=likes if likes is not None and likes >= 0 else 0,
        parent_id=parent if parent else None,
    )


def read_thread(items: Iterable[Mapping[str, Any]], seller_id: int | None) -> list[Comment]:
    """Comments oldest first, one per BaT comment id (the id, never the thread position)."""
    by_id: dict[int, Comment] = {}
    for item in items:
        comment = read_comment(item, seller_id)
        if comment is not None and comment.id not in by_id:
            by_id[comment.id] = comment

    def order(comment: Comment) -> tuple[float, int]:
        stamp = comment.posted_at.timestamp() if comment.posted_at else float("-inf")
        return (stamp, comment.id)

    return sorted(by_id.values(), key=order)


def parse_comments(html: str) -> list[Comment]:
    """Every comment, bid and system record of a listing page, oldest first, de-duplicated by id."""
    root = parse_document(html)
    url = locate_site_url(root, None)
    vms = locate_vms(root)
    if vms is None:
        if url is None:
            raise ListingParseError("not a Bring a Trailer listing page: no URL and no BAT_VMS")
        return []  # older layouts render comments without the JSON blob
    return read_thread(raw_comments(vms), _as_int(vms.get("postAuthor")))
