"""One meaning of "needs a backfill" for missing facts: repair.CRITICAL_FIELDS (Python) and
backfill_missing_fields (the SQL selector) name the same fields."""

from __future__ import annotations

import uuid

import pg8000.native
import pytest

from bat_backfill.repair import CRITICAL_FIELDS

COMPLETE = {
    "vin": "WP0AA29829U760958",
    "mileage": 13000,
    "color": "Arctic Silver Metallic",
    "transmission": "Six-Speed Manual",
    "drivetrain": "RWD",
}


def add_verified_vehicle(db: pg8000.native.Connection, **columns: object) -> str:
    """A sold vehicle with a sale that bat-backfill extracted: nothing is wrong but `columns`."""
    vid = str(uuid.uuid4())
    values = {**COMPLETE, **columns}
    names = ", ".join(values)
    params = ", ".join(f":{n}" for n in values)
    db.run(
        f"INSERT INTO vehicles (id, bat_auction_url, sale_status, auction_outcome, sale_price, "
        f"high_bid, {names}) VALUES (CAST(:id AS uuid), :url, 'sold', 'sold', 42000, 42000, "
        f"{params})",
        id=vid,
        url=f"https://bringatrailer.com/listing/car-{vid[:8]}/",
        **values,
    )
    db.run(
        "INSERT INTO auction_events (vehicle_id, source, source_url, outcome, winning_bid,"
        " extracted_at) VALUES (CAST(:id AS uuid), 'bat', :url, 'sold', 42000, now())",
        id=vid,
        url=f"https://bringatrailer.com/listing/car-{vid[:8]}/",
    )
    return vid


def selected(db: pg8000.native.Connection) -> dict[str, str]:
    rows = db.run("SELECT vehicle_id::text, reason FROM queue_bat_backfill_vehicles(100, 75)")
    return {str(v): str(r) for v, r in rows}


def test_a_complete_verified_vehicle_needs_nothing(db: pg8000.native.Connection) -> None:
    add_verified_vehicle(db)
    assert selected(db) == {}


@pytest.mark.parametrize("field", CRITICAL_FIELDS)
def test_each_python_critical_field_is_one_the_selector_asks_for(
    db: pg8000.native.Connection, field: str
) -> None:
    vid = add_verified_vehicle(db, **{field: None})
    assert selected(db) == {vid: f"missing_fields: {field}"}


def test_the_selector_asks_for_no_field_python_does_not_know(db: pg8000.native.Connection) -> None:
    vid = add_verified_vehicle(db, **dict.fromkeys(COMPLETE))
    named = selected(db)[vid].removeprefix("missing_fields: ").split(", ")
    assert tuple(named) == CRITICAL_FIELDS
