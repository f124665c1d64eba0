"""Every field of every saved real BaT page matches its reviewed expected value (one test each)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bat_backfill.models import CommentKind, Listing, Outcome
from bat_backfill.parsing import parse_comments, parse_listing

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "bat"

# How fields compare, from ../shared/fixtures/bat/README.md.
EXACT = {"url", "currency", "outcome", "mileage_unit", "drivetrain", "no_reserve", "title", "model"}
NUMBERS = {
    "year",
    "sale_price",
    "high_bid",
    "mileage",
    "bid_count",
    "comment_count",
    "view_count",
    "watcher_count",
}
CASELESS = {"vin", "lot_number", "seller", "buyer", "make"}
SHARED_WORDS = {"exterior_color", "interior_color", "location"}
AS_WRITTEN = {"transmission", "engine"}
FILLER_WORDS = {"paint", "upholstery"}
SPEED_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
KINDS = ("manual", "automatic", "pdk", "f1", "dual-clutch")


def _page_names() -> list[str]:
    expected = FIXTURES / "expected"
    if not expected.is_dir():
        return []
    return sorted(path.stem for path in expected.glob("*.json"))


def _cases() -> list[Any]:
    cases: list[Any] = []
    for name in _page_names():
        expected = json.loads((FIXTURES / "expected" / f"{name}.json").read_text())
        cases.extend(pytest.param(name, key, id=f"{name}:{key}") for key in expected)
    return cases or [pytest.param(None, None, id="no-shared-fixtures")]


@cache
def _page(name: str) -> str:
    return (FIXTURES / "pages" / f"{name}.html").read_text(encoding="utf-8")


@cache
def _parsed(name: str) -> Listing:
    return parse_listing(_page(name))


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower())) - FILLER_WORDS


def _speeds(text: str) -> int | None:
    match = re.search(r"\b(\d+|[a-z]+)-speed\b", text.lower())
    if match is None:
        return None
    word = match.group(1)
    return int(word) if word.isdigit() else SPEED_WORDS.get(word)


def _kinds(text: str) -> set[str]:
    lowered = text.lower()
    return {kind for kind in KINDS if re.search(rf"\b{re.escape(kind)}\b", lowered)}


def _value(listing: Listing, key: str) -> Any:
    if key == "image_count":
        return len(listing.images)
    value = getattr(listing, key)
    return value.value if isinstance(value, Outcome) or hasattr(value, "value") else value


def check_field(listing: Listing, key: str, expected: Any) -> None:
    """Assert that one parsed field matches its reviewed value, by the field's comparison rule."""
    got = _value(listing, key)
    if key == "ended_at":
        assert got == datetime.fromisoformat(expected.replace("Z", "+00:00"))
    elif key in NUMBERS or key == "image_count":
        assert got == expected
    elif key in CASELESS:
        assert (None if got is None else str(got).lower()) == (
            None if expected is None else str(expected).lower()
        )
    elif key in SHARED_WORDS:
        assert got is not None and _words(got) == _words(expected)
    elif key in AS_WRITTEN:
        assert got is not None
        if got.lower() != expected.lower():
            assert _speeds(got) == _speeds(expected)
            assert _kinds(got) and _kinds(got) <= _kinds(expected)
    else:
        assert key in EXACT, f"no comparison rule for {key}"
        assert got == expected


@pytest.mark.parametrize(("name", "key"), _cases())
def test_field_matches_reviewed_value(name: str | None, key: str | None) -> None:
    if name is None or key is None:
        pytest.skip("../shared/fixtures/bat is absent")
    expected = json.loads((FIXTURES / "expected" / f"{name}.json").read_text())[key]
    check_field(_parsed(name), key, expected)


@pytest.mark.parametrize("name", _page_names() or [pytest.param(None, id="no-shared-fixtures")])
def test_real_page_cross_checks(name: str | None) -> None:
    if name is None:
        pytest.skip("../shared/fixtures/bat is absent")
    listing = _parsed(name)
    comments = parse_comments(_page(name))
    assert listing.warnings == ()
    assert listing.vin_valid is True
    if listing.outcome is Outcome.SOLD:
        assert listing.high_bid == listing.sale_price
    else:
        assert listing.sale_price is None and listing.buyer is None
    ids = [comment.id for comment in comments]
    assert len(ids) == len(set(ids))
    stamps = [comment.posted_at for comment in comments]
    assert stamps == sorted(stamps, key=lambda stamp: stamp.timestamp() if stamp else 0)
    kinds = [comment.kind for comment in comments]
    bids = [c for c in comments if c.kind is CommentKind.BID]
    assert len(bids) == listing.bid_count
    assert kinds.count(CommentKind.COMMENT) + kinds.count(CommentKind.SELLER_REPLY) == (
        listing.comment_count
    )
    assert all(c.is_seller and c.author == listing.seller for c in comments if c.is_seller)
    assert any(c.kind is CommentKind.SELLER_REPLY for c in comments)
    assert not any("<a " in c.text or "</p>" in c.text for c in comments)
    if listing.outcome is not Outcome.LIVE:
        assert kinds.count(CommentKind.RESULT) == 1
    assert max(bid.bid_amount or 0 for bid in bids) == listing.high_bid


def test_real_pages_images_are_full_size_and_unique() -> None:
    names = _page_names()
    if not names:
        pytest.skip("../shared/fixtures/bat is absent")
    for name in names:
        images = _parsed(name).images
        assert len(images) == len(set(images))
        assert all(
            url.startswith("https://bringatrailer.com/wp-content/uploads/") for url in images
        )
        assert not any("?" in url for url in images)
