"""Synthetic BaT pages (samplepages) for every outcome, both capture types, old layouts and bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from bat_backfill_tools.samplepages import (
    Capture,
    Layout,
    PageSpec,
    SampleBid,
    render_page,
    render_sample,
    sample_spec,
)

from bat_backfill.models import CommentKind, MileageUnit, Outcome
from bat_backfill.parsing import ListingParseError, parse_comments, parse_listing

BASE = PageSpec()
END = datetime.fromtimestamp(BASE.end_epoch, UTC)


def _bids(*amounts: int, canceled: tuple[int, ...] = ()) -> tuple[SampleBid, ...]:
    start = BASE.end_epoch - 10_000
    bids = [SampleBid(f"bidder{i}", amount, start + i * 60) for i, amount in enumerate(amounts)]
    bids += [SampleBid("shill", amount, start + 5_000, canceled=True) for amount in canceled]
    return tuple(sorted(bids, key=lambda bid: bid.at))


@pytest.mark.parametrize("capture", list(Capture))
def test_sold(capture: Capture) -> None:
    listing = parse_listing(render_page(replace(BASE, capture=capture)))
    assert listing.outcome is Outcome.SOLD
    assert (listing.sale_price, listing.high_bid, listing.buyer) == (85_000, 85_000, "CoastRunner")
    assert listing.currency == "USD"
    assert listing.ended_at == END
    assert listing.warnings == ()


@pytest.mark.parametrize("capture", list(Capture))
def test_reserve_not_met_keeps_the_high_bid_and_no_sale_price(capture: Capture) -> None:
    spec = replace(BASE, outcome=Outcome.BID_TO, price=53_000, buyer=None, capture=capture)
    listing = parse_listing(render_page(spec))
    assert listing.outcome is Outcome.BID_TO
    assert (listing.sale_price, listing.high_bid, listing.buyer) == (None, 53_000, None)
    assert listing.ended_at == END
    assert listing.warnings == ()


def test_ended_without_bids_is_no_sale() -> None:
    spec = replace(BASE, outcome=Outcome.NO_SALE, price=None, buyer=None)
    listing = parse_listing(render_page(spec))
    assert listing.outcome is Outcome.NO_SALE
    assert (listing.sale_price, listing.high_bid, listing.bid_count) == (None, None, 0)
    assert listing.ended_at == END


def test_withdrawn() -> None:
    spec = replace(BASE, outcome=Outcome.WITHDRAWN, price=40_000, buyer=None)
    listing = parse_listing(render_page(spec))
    assert listing.outcome is Outcome.WITHDRAWN
    assert (listing.sale_price, listing.buyer) == (None, None)
    assert listing.high_bid == 40_000


@pytest.mark.parametrize("capture", list(Capture))
def test_live_auction_is_never_a_sale(capture: Capture) -> None:
    spec = replace(BASE, outcome=Outcome.LIVE, price=300_000, buyer=None, capture=capture)
    listing = parse_listing(render_page(spec))
    assert listing.outcome is Outcome.LIVE
    assert (listing.sale_price, listing.high_bid, listing.buyer) == (None, 300_000, None)
    assert listing.ended_at == END  # the scheduled end
    assert listing.warnings == ()


def test_sold_after_reserve_not_met_is_sold_at_the_accepted_price() -> None:
    spec = replace(BASE, rnm_accepted=True, price=24_000, high_bid=23_000, buyer="nocera76")
    listing = parse_listing(render_page(spec))
    assert listing.outcome is Outcome.SOLD
    assert (listing.sale_price, listing.high_bid, listing.buyer) == (24_000, 24_000, "nocera76")
    # The result line and the box still say "bid to"; the system record wins and says why.
    assert any("result line says reserve_not_met" in warning for warning in listing.warnings)
    kinds = [comment.kind for comment in parse_comments(render_page(spec))]
    assert CommentKind.RNM_ACCEPTED in kinds


def test_canceled_bids_are_not_bids_and_never_the_high_bid() -> None:
    bids = _bids(30_000, 31_000, 33_000, canceled=(95_000,))
    spec = replace(BASE, outcome=Outcome.BID_TO, price=33_000, buyer=None, bids=bids)
    page = render_page(spec)
    listing = parse_listing(page)
    assert listing.outcome is Outcome.BID_TO
    assert listing.high_bid == 33_000
    assert listing.bid_count == 3
    canceled = [c for c in parse_comments(page) if c.kind is CommentKind.CANCELED_BID]
    assert [c.bid_amount for c in canceled] == [95_000]


def test_canceled_bid_shown_as_current_bid_is_replaced_by_the_highest_live_bid() -> None:
    bids = _bids(30_000, 31_000, canceled=(36_000,))
    spec = replace(BASE, outcome=Outcome.LIVE, price=36_000, buyer=None, bids=bids)
    listing = parse_listing(render_page(spec))
    assert listing.outcome is Outcome.LIVE
    assert listing.high_bid == 31_000
    assert any("canceled bid" in warning for warning in listing.warnings)


@pytest.mark.parametrize("capture", list(Capture))
def test_comments_quoting_a_sale_do_not_change_an_unsold_car(capture: Capture) -> None:
    quotes = (
        "Sold for USD $437,250 on 3/3/24 - that one had the better colour.",
        'Winning Bid USD $437,250 <div class="listing-available-info">Sold for</div>',
        "Sold on 3/3/24 for USD $437,250.00 to SomeoneElse",
    )
    spec = replace(
        BASE,
        outcome=Outcome.BID_TO,
        price=34_000,
        buyer=None,
        extra_comments=quotes,
        capture=capture,
    )
    listing = parse_listing(render_page(spec))
    assert listing.outcome is Outcome.BID_TO
    assert (listing.sale_price, listing.high_bid, listing.buyer) == (None, 34_000, None)
    assert listing.comment_count == 3 + len(quotes)


def test_no_reserve_flag_and_tmu_in_prose() -> None:
    spec = replace(BASE, no_reserve=True, mileage="500 Miles Shown", tmu_in_prose=True)
    listing = parse_listing(render_page(spec))
    assert listing.no_reserve is True
    assert (listing.mileage, listing.mileage_unit) == (500, MileageUnit.TMU)
    assert listing.title == "2004 Porsche 911 GT3"


@pytest.mark.parametrize(
    ("mileage", "value", "unit"),
    [
        ("58k Miles", 58_000, MileageUnit.MILES),
        ("61 Miles", 61, MileageUnit.MILES),
        ("123k Miles Shown on Repaired Speedometer", 123_000, MileageUnit.TMU),
        ("42k Kilometers", 42_000, MileageUnit.KM),
        ("8k Miles Indicated", 8_000, MileageUnit.TMU),
    ],
)
def test_mileage_bullets(mileage: str, value: int, unit: MileageUnit) -> None:
    listing = parse_listing(render_page(replace(BASE, mileage=mileage)))
    assert (listing.mileage, listing.mileage_unit) == (value, unit)


def test_vehicle_facts() -> None:
    spec = replace(
        BASE,
        title="15k-Mile 2004 Porsche 911 GT3 6-Speed",
        exterior_color="Repainted Green",
        interior_color="Black Leather and Race-Tex",
        engine="Twin-Turbocharged 3.0L Flat-Six",
        transmission="Seven-Speed PDK Dual-Clutch Automatic Transaxle",
        drivetrain="AWD",
        extra_bullets=("Window Sticker", "Total Price of $308k in 2026", "Fabspeed Exhaust"),
    )
    listing = parse_listing(render_page(spec))
    assert (listing.year, listing.make, listing.model) == (2004, "Porsche", "911 GT3")
    assert listing.exterior_color == "Green"
    assert listing.interior_color == "Black Leather and Race-Tex"
    assert listing.engine == "Twin-Turbocharged 3.0L Flat-Six"
    assert listing.transmission == "7-Speed PDK"
    assert listing.drivetrain == "AWD"
    assert (listing.vin, listing.vin_valid) == ("WP0AC2A914S692803", True)
    assert (listing.seller, listing.location, listing.lot_number) == (
        "FlatSixGarage",
        "Boulder, Colorado 80302",
        187_654,
    )
    assert (listing.view_count, listing.watcher_count) == (5_321, 412)
    assert len(listing.images) == 6 and not any("?" in url for url in listing.images)
    assert listing.post_id == BASE.post_id


def test_drivetrain_from_a_bullet_and_chassis_numbers() -> None:
    spec = replace(BASE, drivetrain="4WD", drivetrain_as_bullet=True, vin="85576")
    listing = parse_listing(render_page(spec))
    assert listing.drivetrain == "4WD"
    assert (listing.vin, listing.vin_valid) == ("85576", None)


def test_bad_check_digit_is_flagged_not_dropped() -> None:
    listing = parse_listing(render_page(replace(BASE, vin="WP0AC2A924S692803")))
    assert (listing.vin, listing.vin_valid) == ("WP0AC2A924S692803", False)


def test_omitted_bullets_and_drivetrain_are_none() -> None:
    omit = frozenset({"chassis", "mileage", "engine", "transmission", "paint", "upholstery"})
    spec = replace(BASE, omit_bullets=omit, drivetrain=None)
    listing = parse_listing(render_page(spec))
    assert (listing.vin, listing.mileage, listing.engine, listing.transmission) == (None,) * 4
    assert (listing.exterior_color, listing.interior_color, listing.drivetrain) == (None,) * 3
    assert listing.outcome is Outcome.SOLD


def test_legacy_layout_degrades_to_partial_results() -> None:
    listing = parse_listing(render_page(replace(BASE, layout=Layout.LEGACY)))
    assert (listing.vin, listing.mileage, listing.seller) == (
        "WP0AC2A914S692803",
        58_000,
        "FlatSixGarage",
    )
    assert (listing.location, listing.lot_number) == ("Boulder, Colorado 80302", 187_654)
    assert listing.images == ()
    assert listing.outcome is Outcome.SOLD and listing.sale_price == 85_000
    assert listing.bid_count == 5 and listing.comment_count == 3  # the table and the header
    assert parse_comments(render_page(replace(BASE, layout=Layout.LEGACY))) == []


def test_url_comes_from_the_page_or_the_caller() -> None:
    page = render_page(replace(BASE, capture=Capture.BROWSER))
    assert parse_listing(page).url == BASE.url
    stripped = page.replace(f'<meta property="og:url" content="{BASE.url}"/>', "")
    with pytest.raises(ListingParseError):
        parse_listing(stripped)
    assert parse_listing(stripped, url=BASE.url).url == BASE.url
    assert parse_listing(page, url=BASE.url.rstrip("/")).warnings == ()
    moved = parse_listing(page, url="https://bringatrailer.com/listing/another-car-2/")
    assert moved.url == BASE.url
    assert moved.warnings == (
        f"fetched as https://bringatrailer.com/listing/another-car-2/ but the page is {BASE.url}",
    )


def test_comments_of_a_synthetic_page() -> None:
    comments = parse_comments(render_page(BASE))
    kinds = [comment.kind for comment in comments]
    assert kinds.count(CommentKind.BID) == 5
    assert kinds.count(CommentKind.RESULT) == 1
    seller = [c for c in comments if c.kind is CommentKind.SELLER_REPLY]
    assert len(seller) == 1 and seller[0].is_seller and seller[0].author == "FlatSixGarage"
    question = next(c for c in comments if c.text.startswith("Are there records"))
    assert seller[0].parent_id == question.id
    assert question.likes == 2
    assert [c.posted_at for c in comments] == sorted(c.posted_at for c in comments if c.posted_at)
    assert comments[-1].kind is CommentKind.RESULT and comments[-1].author == "CoastRunner"


def test_comments_are_deduplicated_by_bat_id() -> None:
    page = render_page(BASE)
    marker = "var BAT_VMS = "
    start = page.index(marker) + len(marker)
    vms, end = json.JSONDecoder().raw_decode(page, start)
    vms["comments"] = vms["comments"] + vms["comments"][:3]
    doubled = page[:start] + json.dumps(vms) + page[end:]
    comments = parse_comments(doubled)
    assert len(comments) == len(parse_comments(page))
    assert len({c.id for c in comments}) == len(comments)


def test_render_sample_takes_plain_values() -> None:
    page = render_sample(
        {
            "outcome": "rnm_accepted",
            "price": 30_000,
            "buyer": "late_offer",
            "end_epoch": 1_762_000_000,
        }
    )
    listing = parse_listing(page)
    assert (listing.outcome, listing.sale_price, listing.buyer) == (
        Outcome.SOLD,
        30_000,
        "late_offer",
    )
    with pytest.raises(ValueError, match="unknown PageSpec fields"):
        render_sample({"colour": "red"})


def test_sample_specs_round_trip() -> None:
    for index in range(24):
        spec = sample_spec(index)
        page = render_page(spec)
        assert len(page) < 24_000
        listing = parse_listing(page)
        assert listing.outcome is spec.outcome
        assert listing.url == spec.url and listing.lot_number == spec.lot
        if spec.outcome is Outcome.SOLD:
            assert listing.sale_price == spec.price
        else:
            assert listing.sale_price is None


# ---------------------------------------------------------------- invalid input


@pytest.mark.parametrize(
    "page",
    [
        pytest.param("", id="empty"),
        pytest.param("   \n", id="blank"),
        pytest.param("\x00\xff garbage {]", id="garbage"),
        pytest.param("<html><body><p>Hello</p></body></html>", id="not-a-listing"),
        pytest.param(
            '<html><head><meta property="og:url" content="https://example.com/listing/car/"/>'
            "</head><body></body></html>",
            id="another-site",
        ),
        pytest.param(
            render_page(BASE).replace(BASE.url, "https://carsandbids.com/auctions/x/"),
            id="other-site-same-markup",
        ),
        pytest.param(
            render_page(BASE).replace(BASE.url, "https://bringatrailer.com/auctions/results/"),
            id="bat-results-page",
        ),
    ],
)
def test_foreign_or_garbage_input_raises(page: str) -> None:
    with pytest.raises(ListingParseError):
        parse_listing(page)
    with pytest.raises(ListingParseError):
        parse_comments(page)


def test_truncated_pages_raise() -> None:
    page = render_page(BASE)
    with pytest.raises(ListingParseError, match="truncated"):
        parse_listing(page[: len(page) // 2])
    with pytest.raises(ListingParseError, match="truncated"):
        parse_comments(page[: len(page) // 2])


def test_a_page_without_essentials_raises() -> None:
    page = render_page(BASE)
    start = page.index('<div class="essentials">')
    end = page.index("#187654</div></div>") + len("#187654</div></div>")
    with pytest.raises(ListingParseError, match="Essentials"):
        parse_listing(page[:start] + page[end:])


def test_an_ended_page_without_result_or_auction_table_raises() -> None:
    page = render_page(replace(BASE, outcome=Outcome.BID_TO, buyer=None))
    start = page.index('<div class="listing-available-info">')
    end = page.index("</div>", start) + len("</div>")
    page = page[:start] + page[end:]
    start = page.index('<div id="listing-bid-container"')
    end = page.index("</table>") + len("</table>")
    with pytest.raises(ListingParseError, match="result line or auction table"):
        parse_listing(page[:start] + page[end:])


def test_damaged_comment_json_raises() -> None:
    page = render_page(BASE)
    at = page.index("var BAT_VMS = ") + 40
    damaged = page[:at] + page[at + 30 :]
    with pytest.raises(ListingParseError, match="BAT_VMS"):
        parse_listing(damaged)
    with pytest.raises(ListingParseError, match="BAT_VMS"):
        parse_comments(damaged)


def test_markup_nested_thousands_deep_is_refused_or_read_never_a_crash() -> None:
    page = render_page(BASE)
    at = page.index("<p>", page.index('class="post-excerpt"'))
    deep = page[:at] + "<span>" * 5_000 + "x" + "</span>" * 5_000 + page[at:]
    try:
        listing = parse_listing(deep)
    except ListingParseError:
        return
    assert listing.outcome is Outcome.SOLD and listing.sale_price == 85_000
