"""The same page written another way (quotes, case, entities, layout, serialiser) reads the same."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cache, partial
from pathlib import Path

import pytest
from bat_backfill_tools.samplepages import Capture, Layout, PageSpec, render_page, sample_spec

from bat_backfill.models import Comment, Listing, Outcome
from bat_backfill.parsing import ListingParseError, parse_comments, parse_listing
from tests.unit.parsing.rewrite import WRITINGS, rewrite, rewrite_with_lxml

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "bat"
SYNTHETIC = {
    "sold": PageSpec(),
    "sold-browser": replace(PageSpec(), capture=Capture.BROWSER),
    "bid_to": replace(PageSpec(), outcome=Outcome.BID_TO, price=34_000, buyer=None),
    "live": replace(PageSpec(), outcome=Outcome.LIVE, price=61_000, buyer=None),
    "unlabelled": replace(
        PageSpec(),
        title="1995 Porsche 911 Carrera 4 Coupe",
        exterior_color=None,
        interior_color=None,
        drivetrain=None,
        extra_bullets=("Guards Red", "Black Leather", "Limited-Slip Differential"),
    ),
    "no_sale": replace(PageSpec(), outcome=Outcome.NO_SALE, price=None, buyer=None),
    "withdrawn": replace(PageSpec(), outcome=Outcome.WITHDRAWN, price=20_000, buyer=None),
    "rnm_accepted": replace(PageSpec(), rnm_accepted=True, price=24_000, high_bid=23_000),
    "legacy": replace(PageSpec(), layout=Layout.LEGACY),
    # The demo's and the pipeline's pages: eight vehicles, every outcome, both captures.
    **{f"sample-{index}": sample_spec(index) for index in range(24)},
}
REWRITERS: dict[str, Callable[[str], str]] = {"lxml-serialiser": rewrite_with_lxml}
REWRITERS.update({name: partial(rewrite, writing=writing) for name, writing in WRITINGS.items()})


def _real_names() -> list[str]:
    pages = FIXTURES / "pages"
    return sorted(path.stem for path in pages.glob("*.html")) if pages.is_dir() else []


@cache
def _page(source: str) -> str:
    kind, _, name = source.partition(":")
    if kind == "synthetic":
        return render_page(SYNTHETIC[name])
    return (FIXTURES / "pages" / f"{name}.html").read_text(encoding="utf-8")


def _read(page: str) -> tuple[Listing, list[Comment]] | str:
    try:
        return parse_listing(page), parse_comments(page)
    except ListingParseError as exc:
        return f"refused: {exc}"


def _cases() -> list[object]:
    sources = [f"synthetic:{name}" for name in SYNTHETIC]
    sources += [f"real:{name}" for name in _real_names()]
    cases: list[object] = []
    for source in sources:
        cases.extend(pytest.param(source, name, id=f"{source}:{name}") for name in REWRITERS)
    return cases


@pytest.mark.parametrize(("source", "writing"), _cases())
def test_page_written_another_way_reads_the_same(source: str, writing: str) -> None:
    page = _page(source)
    original = _read(page)
    assert not isinstance(original, str), original
    assert _read(REWRITERS[writing](page)) == original


@pytest.mark.parametrize("name", sorted(set(WRITINGS) - {"as-parsed"}))
def test_each_writing_changes_the_text(name: str) -> None:
    """The rewriters are not the identity, so the test above compares two different texts."""
    page = _page("synthetic:sold")
    assert rewrite(page, WRITINGS[name]) != rewrite(page, WRITINGS["as-parsed"])
