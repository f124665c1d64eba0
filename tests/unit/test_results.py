"""BaT's results index read into items: every outcome and currency, bad items, the JSON shape,
and the real results and model pages (skipped when ../shared/fixtures is absent)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bat_backfill_tools.samplepages import index_data, index_item, render_results_page

from bat_backfill.models import Outcome
from bat_backfill.results import ResultsPageError, parse_results

BASE = "https://bringatrailer.com/listing/"
END = 1776712341  # 2026-04-20 19:12:21 UTC


def one(item: dict[str, object]) -> tuple[object, ...]:
    index = parse_results(render_results_page([item]))
    assert index.skipped == 0, index.problems
    (got,) = index.items
    return got.outcome, got.price, got.currency


@pytest.mark.parametrize(
    ("sold_text", "currency", "expected"),
    [
        ("Sold for USD $42,000 <span> on 4/24/26 </span>", "USD", (Outcome.SOLD, 42_000, "USD")),
        ("Bid to USD $53,000 <span> on 11/7/25 </span>", "USD", (Outcome.BID_TO, 53_000, "USD")),
        ("Sold for EUR €61,500 <span> on 4/20/2026 </span>", "EUR", (Outcome.SOLD, 61_500, "EUR")),
        ("Sold for GBP £16,000 <span> on 4/20/2026 </span>", "GBP", (Outcome.SOLD, 16_000, "GBP")),
        ("Bid to GBP £9,750 <span> on 4/20/2026 </span>", "GBP", (Outcome.BID_TO, 9_750, "GBP")),
        # The older wording: no currency code, and no currency key on the item.
        ("Sold for $18,500 <span> on 3/2/19 </span>", None, (Outcome.SOLD, 18_500, "USD")),
        ("Bid to $7,100 on 3/2/19", None, (Outcome.BID_TO, 7_100, "USD")),
        ("Sold for £12,000", None, (Outcome.SOLD, 12_000, "GBP")),
        ("Sold for €9,000.00", None, (Outcome.SOLD, 9_000, "EUR")),
        ("Withdrawn on 4/20/26", "USD", (Outcome.WITHDRAWN, None, "USD")),
        # Ended without a bid.
        ("Bid to USD $0 <span> on 4/20/26 </span>", "USD", (Outcome.NO_SALE, None, "USD")),
        ("Ended with no bids", "USD", (Outcome.NO_SALE, None, "USD")),
    ],
)
def test_every_outcome_and_currency(sold_text, currency, expected):
    item = index_item(f"{BASE}car-1/", sold_text=sold_text, ended=END, currency=currency)
    assert one(item) == expected


def test_a_live_board_item_is_live_and_its_bid_is_no_sale_price():
    item = index_item(f"{BASE}car-2/", active=True, current_bid=31_000, ended=END)
    page = render_results_page([item], variable="auctionsCurrentInitialData")
    (got,) = parse_results(page).items
    assert (got.outcome, got.price, got.currency) == (Outcome.LIVE, 31_000, "USD")
    assert got.ended_at == datetime.fromtimestamp(END, UTC)  # its scheduled end


def test_item_fields():
    item = index_item(
        f"{BASE}1999-bmw-m3-12/?utm=x",
        sold_text="Sold for USD $42,000 <span> on 4/20/26 </span>",
        ended=END,
        title="Original-Owner 1999 BMW M3 5-Speed",
        no_reserve=True,
        item_id=112096805,
    )
    (got,) = parse_results(render_results_page([item])).items
    assert got.to_dict() == {
        "url": f"{BASE}1999-bmw-m3-12/",
        "title": "Original-Owner 1999 BMW M3 5-Speed",
        "year": 1999,
        "outcome": "sold",
        "price": 42_000,
        "currency": "USD",
        "ended_at": "2026-04-20T19:12:21Z",
        "no_reserve": True,
        "lot_id": 112096805,
    }


def test_the_listings_filter_json_gives_the_same_items_as_the_page():
    items = [
        index_item(f"{BASE}a-1/", sold_text="Sold for USD $1,000", ended=END),
        index_item(f"{BASE}b-2/", sold_text="Bid to USD $2,000", ended=END - 60),
    ]
    from_json = parse_results(json.dumps(index_data(items, page=3, pages_total=9)))
    from_page = parse_results(render_results_page(items, page=3, pages_total=9))
    assert from_json == from_page
    assert (from_json.page, from_json.pages_total, len(from_json.items)) == (3, 9, 2)


def test_non_vehicle_listings_are_listings_too():
    item = index_item(f"{BASE}wheels-352/", sold_text="Sold for USD $2,900", title="20x9 Wheels")
    (got,) = parse_results(render_results_page([item])).items
    assert (got.url, got.year, got.outcome) == (f"{BASE}wheels-352/", None, Outcome.SOLD)


def test_bad_items_are_skipped_and_counted_and_their_listing_urls_kept():
    good = index_item(f"{BASE}good-1/", sold_text="Sold for USD $5,000", ended=END)
    items = [
        good,
        index_item("https://evil.example/listing/x/", sold_text="Sold for USD $1"),
        index_item(f"{BASE}odd-2/", sold_text="Sold for USD $5,000", currency="EUR"),
        index_item(f"{BASE}odd-3/", sold_text="Traded for a boat"),
        index_item(f"{BASE}odd-4/", sold_text="Sold for USD $999,999,999"),
        "not an object",
        good,  # BaT repeats an item when a page shifts under the reader: once is enough
    ]
    index = parse_results(render_results_page(items))  # type: ignore[arg-type]
    assert [i.url for i in index.items] == [f"{BASE}good-1/"]
    assert index.skipped == 5
    assert index.unread_urls == (f"{BASE}odd-2/", f"{BASE}odd-3/", f"{BASE}odd-4/")
    assert "currency EUR but the result says USD" in " ".join(index.problems)


def test_an_item_without_a_result_line_is_a_listing_without_an_outcome():
    (got,) = parse_results(render_results_page([index_item(f"{BASE}new-1/")])).items
    assert (got.outcome, got.price) == (None, None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<html><body>a listing page</body></html>",
        "var auctionsCompletedInitialData = {not json",
        '{"items": "none"}',
        "[1, 2]",
        "\x00\x01",
    ],
)
def test_documents_without_an_index_are_refused(text):
    with pytest.raises(ResultsPageError):
        parse_results(text)


# ------------------------------------------------------------------ real pages


def _real(shared: Path, name: str) -> str:
    return (shared / "results" / name).read_text(encoding="utf-8")


def test_real_results_page(shared_fixtures):
    index = parse_results(_real(shared_fixtures, "auctions-results.html"))
    assert (len(index.items), index.skipped, index.page, index.pages_total) == (36, 0, 1, 6632)
    by_url = {i.url: i for i in index.items}
    outcomes = [i.outcome for i in index.items]
    assert (outcomes.count(Outcome.SOLD), outcomes.count(Outcome.BID_TO)) == (27, 9)
    gbp = by_url[f"{BASE}1986-suzuki-gsx-r1100-7/"]
    assert (gbp.outcome, gbp.price, gbp.currency) == (Outcome.SOLD, 16_000, "GBP")
    datsun = by_url[f"{BASE}1974-datsun-260z-126/"]
    assert (datsun.outcome, datsun.price, datsun.year) == (Outcome.BID_TO, 18_250, 1974)
    # Newest first, as discovery relies on.
    ends = [i.ended_at for i in index.items]
    assert ends == sorted(ends, reverse=True)  # type: ignore[type-var]


def test_real_model_page_agrees_with_the_reviewed_listing(shared_fixtures):
    index = parse_results(_real(shared_fixtures, "porsche-911-model-page.html"))
    assert (len(index.items), index.skipped, index.pages_total) == (24, 0, 725)
    name = "2020-porsche-911-carrera-4s-coupe-26"
    expected = json.loads((shared_fixtures / "expected" / f"{name}.browser-save.json").read_text())
    item = {i.url: i for i in index.items}[f"{BASE}{name}/"]
    assert item.outcome == Outcome(expected["outcome"])
    assert item.price == expected["sale_price"]
    assert item.ended_at == datetime.fromisoformat(expected["ended_at"].replace("Z", "+00:00"))
    # An accepted offer after the auction: the result line's price, not the auction's high bid.
    accepted = {i.url: i for i in index.items}[f"{BASE}2022-porsche-911-carrera-4-gts-cabriolet-5/"]
    assert (accepted.outcome, accepted.price) == (Outcome.SOLD, 165_000)


def test_the_orchestrator_reads_the_index_without_the_html_parser():
    import subprocess

    code = (
        "import sys, bat_backfill.orchestrate; "
        "print(sorted(m for m in sys.modules if m.startswith(('bs4', 'bat_backfill.parsing'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
