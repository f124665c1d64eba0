"""The tiny normalisers: examples, "58k" forms, and never raising on any text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bat_backfill.models import MileageUnit
from bat_backfill.parsing import normalise

TEXT_PARSERS: list[Callable[[str], Any]] = [
    normalise.parse_text,
    normalise.parse_count,
    normalise.parse_money,
    normalise.parse_epoch,
    normalise.parse_mileage,
    normalise.mentions_unknown_mileage,
    normalise.looks_like_transmission,
    normalise.parse_transmission,
    normalise.parse_drivetrain,
    normalise.parse_drivetrain_prose,
    normalise.parse_drivetrain_implied,
    normalise.looks_like_bare_colour,
    normalise.parse_bare_interior,
    normalise.looks_like_engine,
    normalise.looks_like_paint,
    normalise.parse_colour,
    normalise.looks_like_upholstery,
    normalise.parse_interior,
    normalise.check_vin,
    normalise.parse_chassis,
    normalise.parse_title_vehicle,
    normalise.parse_lot,
]
BAT_WORDS = st.sampled_from(
    ["Six-Speed", "k", "Miles", "USD $", ",", "Shown", "Chassis:", "PDK", "wheels", "4WD", "#", "ł"]
)
BAT_LIKE_TEXT = st.lists(st.one_of(st.text(max_size=12), BAT_WORDS), max_size=12).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(st.text(), BAT_LIKE_TEXT))
def test_normalisers_never_raise(text: str) -> None:
    for parser in TEXT_PARSERS:
        parser(text)
    normalise.parse_title_vehicle(text, text[:5])
    normalise.parse_model_drivetrain(text[:9], text)
    normalise.parse_model_drivetrain("Porsche", text)


@settings(max_examples=150, deadline=None)
@given(
    thousands=st.integers(1, 999),
    form=st.sampled_from(["{n}k Miles", "{n}K miles", "{n},000 Miles", "~{n}k Miles", "{n}k-Mile"]),
)
def test_thousands_shorthand(thousands: int, form: str) -> None:
    mileage = normalise.parse_mileage(form.format(n=thousands))
    assert mileage == normalise.Mileage(thousands * 1000, MileageUnit.MILES)


@settings(max_examples=100, deadline=None)
@given(
    thousands=st.integers(1, 999),
    suffix=st.sampled_from(["Shown", "Indicated", "Shown on Repaired Speedometer", "Shown, TMU"]),
)
def test_shown_mileage_is_tmu(thousands: int, suffix: str) -> None:
    mileage = normalise.parse_mileage(f"{thousands}k Miles {suffix}")
    assert mileage == normalise.Mileage(thousands * 1000, MileageUnit.TMU)


@settings(max_examples=100, deadline=None)
@given(amount=st.integers(0, 10**9), code=st.sampled_from(["USD", "GBP", "EUR", "CAD"]))
def test_money_round_trip(amount: int, code: str) -> None:
    assert normalise.parse_money(f"Sold for {code} ${amount:,}") == normalise.Money(amount, code)
    assert normalise.parse_money(f"for ${amount:,}.00 to x") == normalise.Money(amount, None)


VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


@settings(max_examples=150, deadline=None)
@given(body=st.text(alphabet=VIN_ALPHABET, min_size=16, max_size=16))
def test_vin_check_digit(body: str) -> None:
    results = {d: normalise.check_vin(body[:8] + d + body[8:]) for d in "0123456789X"}
    assert sum(bool(ok) for ok in results.values()) == 1  # exactly one check digit fits


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Six-Speed Manual Transaxle", "6-Speed Manual"),
        ("Eight-Speed PDK Dual-Clutch Automatic Transaxle", "8-Speed PDK"),
        ("Six-Speed F1 Sequential Transaxle", "6-Speed F1"),
        ("Seven-Speed S tronic Dual-Clutch Transmission", "7-Speed Dual-Clutch"),
        ("Six-Speed SMG Transmission", "6-Speed SMG"),
        ("Five-Speed Tiptronic S Automatic Transaxle", "5-Speed Automatic"),
        ("Four-Speed Automatic Transmission", "4-Speed Automatic"),
        ("Continuously Variable Transmission", "CVT"),
        ("5-Speed Manual Gearbox", "5-Speed Manual"),
        ("Automatic Climate Control", None),
        ("Rebuilt Transmission", None),
    ],
)
def test_transmissions(text: str, expected: str | None) -> None:
    assert normalise.parse_transmission(text) == expected


@pytest.mark.parametrize(
    ("title", "make", "expected"),
    [
        ("6k-Mile 2020 Porsche 911 Carrera 4S Coupe", "Porsche", (2020, "Porsche", "911 Carrera 4S Coupe")),
        ("2009 Porsche Cayman 6-Speed", "Porsche", (2009, "Porsche", "Cayman")),
        ("2026 Porsche 911 GT3 Weissach 6-Speed", None, (2026, "Porsche", "911 GT3 Weissach")),
        ("1959 Porsche 356A Coupe", "Porsche", (1959, "Porsche", "356A Coupe")),
        ("Modified 1972 Datsun 240Z 5-Speed Manual", "Datsun", (1972, "Datsun", "240Z")),
        ("2,400-Mile 2005 Ford GT", "Ford", (2005, "Ford", "GT")),
        ("1967 Alfa Romeo Giulia Sprint GT", None, (1967, "Alfa Romeo", "Giulia Sprint GT")),
        ("2012 Mercedes-Benz C63 AMG Coupe", "Mercedes-Benz", (2012, "Mercedes-Benz", "C63 AMG Coupe")),
    ],
)  # fmt: skip
def test_titles(title: str, make: str | None, expected: tuple[int, str, str]) -> None:
    vehicle = normalise.parse_title_vehicle(title, make)
    assert (vehicle.year, vehicle.make, vehicle.model) == expected


@pytest.mark.parametrize(
    ("prose", "expected"),
    [
        ("which is sent to the rear wheels via a six-speed manual transaxle", "RWD"),
        ("Power is routed to all four wheels through an eight-speed PDK", "AWD"),
        ("a twin-turbocharged 3.0L flat-six that drives all four wheels", "AWD"),
        ("power goes to the front wheels through a five-speed manual", "FWD"),
        ("a part-time four-wheel-drive system with a two-speed transfer case", "4WD"),
        ("The car has rear-wheel drive.", "RWD"),
        ("The 17-inch front wheels are new and the rear-axle steering works.", None),
        ("Converted from rear-wheel drive to all-wheel drive.", None),
    ],
)
def test_drivetrain_prose(prose: str, expected: str | None) -> None:
    assert normalise.parse_drivetrain_prose(prose) == expected


@pytest.mark.parametrize(
    ("bullet", "engine"),
    [
        ("3.6-Liter V8", True),
        ("Replacement 1.6-Liter Flat-Four", True),
        ("Twin-Turbocharged 3.0L Flat-Six", True),
        ("289ci V8", True),
        ("Limited-Slip Differential", False),
        ('18" Five-Spoke Alloy Wheels', False),
        ("Total Price of $308k in 2026", False),
        ("Six-Speed Manual Transaxle", False),
    ],
)
def test_engine_bullets(bullet: str, engine: bool) -> None:
    assert normalise.looks_like_engine(bullet) is engine
