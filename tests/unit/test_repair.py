"""Repair planning never loses good data and corrects only what the page proves wrong."""

from datetime import UTC, datetime

from bat_backfill.models import Listing, MileageUnit, Outcome
from bat_backfill.repair import Action, plan_repair

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
    vehicle = {"image_urls": ["a", "b"], "view_count": 10}
    bigger = plan_repair(vehicle, Listing(url=URL, images=("a", "b", "c"), view_count=20))
    assert changes(bigger)["image_urls"][0] is Action.CORRECT
    assert changes(bigger)["view_count"] == (Action.CORRECT, 10, 20)
    smaller = plan_repair(vehicle, Listing(url=URL, images=("a",)))
    assert "image_urls" not in changes(smaller)


def test_same_values_in_other_case_or_spacing_change_nothing():
    ended = datetime(2025, 11, 7, 20, 45, tzinfo=UTC)
    vehicle = {"make": "FERRARI", "model": "360  Spider", "auction_end_date": ended}
    listing = Listing(url=URL, make="Ferrari", model="360 Spider", ended_at=ended)
    assert plan_repair(vehicle, listing).changes == ()


def test_live_auction_sets_live_status_and_never_a_sale_price():
    plan = plan_repair({}, Listing(url=URL, outcome=Outcome.LIVE, high_bid=300000))
    got = changes(plan)
    assert got["sale_status"] == (Action.FILL, None, "live")
    assert "sale_price" not in got
