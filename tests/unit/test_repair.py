"""Repair planning never loses good data and corrects only what the page proves wrong."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import bat_backfill
from bat_backfill.models import Listing, MileageUnit, Outcome
from bat_backfill.repair import AUCTION_OUTCOME, EVENT_OUTCOME, SALE_STATUS, Action, plan_repair

SCHEMA = Path(bat_backfill.__file__).parent / "db" / "schema.sql"

URL = "https://bringatrailer.com/listing/2001-ferrari-360-spider-89/"


def changes(plan):
    return {c.field: (c.action, c.old, c.new) for c in plan.changes}


def test_unsold_lot_stored_as_sold_loses_its_price_and_buyer():
    vehicle = {"sale_status": "sold", "sale_price": 89500, "bat_buyer": "someone"}
    listing = Listing(url=URL, outcome=Outcome.BID_TO, high_bid=89500)
    got = changes(plan_repair(vehicle, listing))
    assert got["sale_status"] == (Action.CORRECT, "sold", "bid_to")
    assert got["sale_price"] == (Action.CORRECT, 89500, None)
    assert got["bat_buyer"] == (Action.CORRECT, "someone", None)
    assert got["high_bid"] == (Action.FILL, None, 89500)


def test_missing_fields_are_filled_and_unstated_ones_recorded_absent():
    listing = Listing(
        url=URL,
        vin="ZFFYT53A110123456",
        mileage=58000,
        mileage_unit=MileageUnit.MILES,
        transmission="6-Speed Manual",
    )
    plan = plan_repair({}, listing)
    got = changes(plan)
    assert got["vin"] == (Action.FILL, None, "ZFFYT53A110123456")
    assert got["mileage_unit"] == (Action.FILL, None, "miles")
    assert set(plan.absent) == {"color", "drivetrain"}
    assert set(plan.stated) == {"vin", "mileage", "transmission"}


def test_page_silence_keeps_good_stored_values():
    vehicle = {"mileage": 12000, "mileage_unit": "miles", "color": "Rosso Corsa"}
    plan = plan_repair(vehicle, Listing(url=URL, outcome=Outcome.SOLD, sale_price=1))
    fields = {c.field for c in plan.changes}
    assert not fields & {"mileage", "mileage_unit", "color"}
    assert "color" not in plan.absent  # stored, so nothing is missing


def test_different_vin_is_a_conflict_not_an_overwrite():
    plan = plan_repair({"vin": "AAA"}, Listing(url=URL, vin="BBB"))
    assert changes(plan)["vin"] == (Action.CONFLICT, "AAA", "BBB")
    assert not plan.applied


def test_vaguer_stored_text_is_refined_other_disagreements_conflict():
    plan = plan_repair(
        {"transmission": "Manual", "color": "Blue"},
        Listing(url=URL, transmission="6-Speed Manual", exterior_color="Giallo Modena"),
    )
    got = changes(plan)
    assert got["transmission"][0] is Action.CORRECT
    assert got["color"][0] is Action.CONFLICT


def test_mileage_unit_follows_only_its_own_number():
    plan = plan_repair(
        {"mileage": 1000}, Listing(url=URL, mileage=2000, mileage_unit=MileageUnit.KM)
    )
    got = changes(plan)
    assert got["mileage"][0] is Action.CONFLICT
    assert "mileage_unit" not in got


def test_gallery_grows_never_shrinks_and_counters_take_newest():
    vehicle = {"image_urls": ["a", "b"], "bat_views": 10}
    bigger = plan_repair(vehicle, Listing(url=URL, images=("a", "b", "c"), view_count=20))
    assert changes(bigger)["image_urls"][0] is Action.CORRECT
    assert changes(bigger)["bat_views"] == (Action.CORRECT, 10, 20)
    smaller = plan_repair(vehicle, Listing(url=URL, images=("a",)))
    assert "image_urls" not in changes(smaller)


def test_same_values_in_other_case_or_spacing_change_nothing():
    ended = datetime(2025, 11, 7, 20, 45, tzinfo=UTC)
    vehicle = {"make": "FERRARI", "model": "360  Spider", "auction_end_date": " 2025-11-07 "}
    listing = Listing(url=URL, make="Ferrari", model="360 Spider", ended_at=ended)
    assert plan_repair(vehicle, listing).changes == ()


def test_live_auction_sets_live_status_and_never_a_sale_price():
    plan = plan_repair({}, Listing(url=URL, outcome=Outcome.LIVE, high_bid=300000))
    got = changes(plan)
    assert got["sale_status"] == (Action.FILL, None, "auction_live")
    assert got["auction_outcome"] == (Action.FILL, None, "pending")
    assert got["high_bid"] == (Action.FILL, None, 300000)
    assert not {"sale_price", "winning_bid", "sale_date", "reserve_status"} & set(got)


def test_a_running_auction_stored_as_a_sale_loses_the_sale():
    # The current bid of a live auction was stored as the price it sold for.
    vehicle = {"sale_status": "sold", "auction_outcome": "sold",
               "sale_price": Decimal("300000.00"), "high_bid": 300000}  # fmt: skip
    got = changes(plan_repair(vehicle, Listing(url=URL, outcome=Outcome.LIVE, high_bid=300000)))
    assert got["sale_status"] == (Action.CORRECT, "sold", "auction_live")
    assert got["auction_outcome"] == (Action.CORRECT, "sold", "pending")
    assert got["sale_price"] == (Action.CORRECT, Decimal("300000.00"), None)
    assert "high_bid" not in got


@pytest.mark.parametrize(
    ("outcome", "sale_status", "auction_outcome"),
    [
        (Outcome.BID_TO, "bid_to", "reserve_not_met"),
        (Outcome.NO_SALE, "not_sold", "no_sale"),
        (Outcome.WITHDRAWN, "ended", "ended"),
    ],
)
def test_an_unsold_lot_stored_as_sold_gets_the_tables_unsold_words_and_loses_the_sale(
    outcome, sale_status, auction_outcome
):
    vehicle = {
        "sale_status": "sold",
        "auction_outcome": "sold",
        "sale_price": Decimal("53000.00"),  # numeric(10,2) reads back as a Decimal
        "winning_bid": 53000,
        "sale_date": date(2025, 11, 7),
        "bat_buyer": "someone",
        "high_bid": 53000,
    }
    listing = Listing(url=URL, outcome=outcome, high_bid=53000, no_reserve=False)
    got = changes(plan_repair(vehicle, listing))
    assert got["sale_status"] == (Action.CORRECT, "sold", sale_status)
    assert got["auction_outcome"] == (Action.CORRECT, "sold", auction_outcome)
    for sale_only in ("sale_price", "winning_bid", "sale_date", "bat_buyer"):
        assert got[sale_only] == (Action.CORRECT, vehicle[sale_only], None)
    assert "high_bid" not in got


def test_reserve_status_says_what_the_page_proves():
    def reserve(**facts):
        return changes(plan_repair({}, Listing(url=URL, **facts))).get("reserve_status")

    assert reserve(outcome=Outcome.BID_TO, no_reserve=False) == (
        Action.FILL, None, "reserve_not_met")  # fmt: skip
    assert reserve(outcome=Outcome.SOLD, sale_price=1, no_reserve=False) == (
        Action.FILL, None, "reserve_met")  # fmt: skip
    assert reserve(outcome=Outcome.SOLD, sale_price=1, no_reserve=True) == (
        Action.FILL, None, "no_reserve")  # fmt: skip
    # A running auction with a reserve: nobody knows yet whether it will be met.
    assert reserve(outcome=Outcome.LIVE, no_reserve=False) is None
    stored = {"reserve_status": "reserve_met"}
    got = changes(plan_repair(stored, Listing(url=URL, outcome=Outcome.BID_TO, no_reserve=False)))
    assert got["reserve_status"] == (Action.CORRECT, "reserve_met", "reserve_not_met")


def test_a_sold_lot_fills_winning_bid_and_sale_date_from_the_page():
    ended = datetime(2026, 4, 24, 19, 5, tzinfo=UTC)
    listing = Listing(url=URL, outcome=Outcome.SOLD, sale_price=42000, ended_at=ended)
    got = changes(plan_repair({"sale_status": "ended"}, listing))
    assert got["sale_status"] == (Action.CORRECT, "ended", "sold")
    assert got["winning_bid"] == (Action.FILL, None, 42000)
    assert got["sale_date"] == (Action.FILL, None, date(2026, 4, 24))
    assert got["auction_end_date"] == (Action.FILL, None, "2026-04-24")  # a text column


@pytest.mark.parametrize(
    "stored",
    [
        "2025-12-24",
        "2025-12-24T18:14:07+00:00",
        "2025-12-24T18:14:07Z",
        "2025-12-24 18:14:07",
        # the same instant written with a Pacific offset: a day earlier on its face
        "2025-12-23T22:14:07-08:00",
    ],
)
def test_a_stored_end_date_on_the_pages_day_is_not_corrected(stored):
    listing = Listing(url=URL, ended_at=datetime(2025, 12, 24, 6, 14, 7, tzinfo=UTC))
    assert "auction_end_date" not in changes(plan_repair({"auction_end_date": stored}, listing))


def test_a_stored_end_date_on_another_day_is_corrected_to_the_pages_day():
    listing = Listing(url=URL, ended_at=datetime(2025, 12, 24, 6, 14, 7, tzinfo=UTC))
    for stored in ("2025-12-20", "2025-12-20T18:14:07+00:00", "Christmas Eve"):
        got = changes(plan_repair({"auction_end_date": stored}, listing))
        assert got["auction_end_date"] == (Action.CORRECT, stored, "2025-12-24")


def test_stored_values_in_the_original_types_equal_to_the_pages_change_nothing():
    # numeric(10,2) reads back as a Decimal; the lot number is a text column.
    vehicle = {"sale_status": "sold", "auction_outcome": "sold", "reserve_status": "no_reserve",
               "sale_price": Decimal("137000.00"), "winning_bid": 137000,
               "bat_lot_number": "210003", "bid_count": 40, "bat_bids": 40}  # fmt: skip
    listing = Listing(url=URL, outcome=Outcome.SOLD, sale_price=137000, lot_number=210003,
                      no_reserve=True, bid_count=40)  # fmt: skip
    assert plan_repair(vehicle, listing).changes == ()


def test_a_price_or_lot_number_that_differs_is_still_seen():
    vehicle = {"sale_price": Decimal("136999.99"), "bat_lot_number": "210004"}
    listing = Listing(url=URL, outcome=Outcome.SOLD, sale_price=137000, lot_number=210003)
    got = changes(plan_repair(vehicle, listing))
    assert got["sale_price"] == (Action.CORRECT, Decimal("136999.99"), 137000)
    # The lot number identifies the listing: a different one is never applied silently.
    assert got["bat_lot_number"] == (Action.CONFLICT, "210004", "210003")


def test_bid_count_fills_both_of_the_original_bid_columns():
    got = changes(plan_repair({}, Listing(url=URL, bid_count=24)))
    assert got["bid_count"] == got["bat_bids"] == (Action.FILL, None, 24)


def test_a_refused_change_becomes_a_conflict_and_its_field_is_no_longer_stated():
    plan = plan_repair({}, Listing(url=URL, vin="WP0AA29829U760958", mileage=13000))
    refused = tuple(c for c in plan.changes if c.field == "vin")
    after = plan.without(refused)
    assert changes(after)["vin"] == (Action.CONFLICT, None, "WP0AA29829U760958")
    assert changes(after)["mileage"] == (Action.FILL, None, 13000)
    assert "vin" not in after.stated and "mileage" in after.stated
    assert after.absent == plan.absent


def test_the_vocabularies_are_ones_the_original_tables_allow():
    schema = SCHEMA.read_text()
    for constraint, vocabulary in (
        ("vehicles_sale_status_check", SALE_STATUS),
        ("vehicles_auction_outcome_check", AUCTION_OUTCOME),
        ("auction_events_outcome_check", EVENT_OUTCOME),
    ):
        line = next(x for x in schema.splitlines() if f"CONSTRAINT {constraint} " in x)
        allowed = set(re.findall(r"'([a-z_]+)'::text", line))
        assert set(Outcome) == set(vocabulary)
        assert set(vocabulary.values()) <= allowed, constraint
