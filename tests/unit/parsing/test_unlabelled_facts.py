"""Facts a listing states without the usual label: read where the page is unambiguous, else None.

Older and simpler listings name the colour in a bullet without "Paint" ("Guards Red"), the
interior without "Upholstery" ("Black Leather"), and leave the drivetrain to the title ("Carrera
4", "quattro") or to equipment ("Two-Speed Transfer Case"). A wrong value is worse than none, so
two candidates, or sources that disagree, give None.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from bat_backfill_tools.samplepages import PageSpec, render_page

from bat_backfill.models import Listing
from bat_backfill.parsing import parse_listing

# A page without the labelled colour, interior and drivetrain bullets, and without the
# description's drivetrain sentence: every such fact below comes from the bullets or title.
BARE = replace(
    PageSpec(),
    exterior_color=None,
    interior_color=None,
    drivetrain=None,
    extra_bullets=("Limited-Slip Differential", "Clean Carfax Report"),
)


def _parse(spec: PageSpec) -> Listing:
    return parse_listing(render_page(spec))


def _with_bullets(*bullets: str, base: PageSpec = BARE) -> Listing:
    return _parse(replace(base, extra_bullets=(*base.extra_bullets, *bullets)))


def test_the_bare_page_states_none_of_them() -> None:
    listing = _parse(BARE)
    assert (listing.exterior_color, listing.interior_color, listing.drivetrain) == (None,) * 3


@pytest.mark.parametrize(
    "bullet", ["Guards Red", "Arctic Silver Metallic", "Rosso Corsa", "British Racing Green"]
)
def test_a_colour_named_by_its_words_alone(bullet: str) -> None:
    assert _with_bullets(bullet, "Black Leather").exterior_color == bullet


@pytest.mark.parametrize(
    "bullet",
    [
        "Red Brake Calipers",
        "Black Soft Top",
        "Silver Anniversary Edition",
        "Gold Package",
        "Black over Tan",
        "Red with White Stripes",
        "Black 18-Inch Wheels",
        "Gray Market Import",
        "Nardi Mahogany",  # a steering wheel's wood
        "Ex-Royal Navy",
    ],
)
def test_colour_words_about_something_else_are_no_colour(bullet: str) -> None:
    assert _with_bullets(bullet).exterior_color is None


def test_two_bare_colours_are_ambiguous() -> None:
    assert _with_bullets("Guards Red", "Black").exterior_color is None


def test_the_labelled_paint_bullet_wins_over_a_bare_colour() -> None:
    listing = _with_bullets("Black", base=replace(BARE, exterior_color="Guards Red"))
    assert listing.exterior_color == "Guards Red"


@pytest.mark.parametrize(
    ("bullet", "interior"),
    [
        ("Black Leather", "Black Leather"),
        ("Tan Leather Seats", "Tan Leather"),
        ("Nero Leather and Houndstooth Cloth", "Nero Leather and Houndstooth Cloth"),
        ("Gray Cloth", "Gray Cloth"),
    ],
)
def test_an_interior_named_by_colour_and_material(bullet: str, interior: str) -> None:
    listing = _with_bullets(bullet)
    assert listing.interior_color == interior
    assert listing.exterior_color is None  # a material makes it the seats, not the body


@pytest.mark.parametrize(
    "bullet",
    [
        "Nappa Leather",  # a material, no colour
        "Heated Black Leather Seats",
        "Black Vinyl Top",
        "Leather-Wrapped Steering Wheel",
        "Black Leather with Red Stitching",
    ],
)
def test_leather_about_something_else_is_no_interior(bullet: str) -> None:
    assert _with_bullets(bullet).interior_color is None


def test_two_bare_interiors_are_ambiguous() -> None:
    assert _with_bullets("Black Leather", "Tan Leather").interior_color is None


def test_the_labelled_upholstery_bullet_wins() -> None:
    listing = _with_bullets("Tan Leather", base=replace(BARE, interior_color="Black Leather"))
    assert listing.interior_color == "Black Leather"


@pytest.mark.parametrize(
    ("title", "drivetrain"),
    [
        ("1993 Porsche 911 Carrera 4 Coupe", "AWD"),
        ("2007 Porsche 911 Targa 4S", "AWD"),
        ("1991 Porsche 911 Carrera 2 Cabriolet", "RWD"),
        ("2010 Lamborghini Gallardo LP550-2 Valentino Balboni", "RWD"),
        ("2012 Lamborghini Aventador LP700-4", "AWD"),
        ("1986 Audi 4000CS Quattro", "AWD"),
        ("1985 Toyota Pickup 4x4", "4WD"),
    ],
)
def test_a_drivetrain_the_title_fixes(title: str, drivetrain: str) -> None:
    make = title.split()[1]
    assert _parse(replace(BARE, title=title, make=make)).drivetrain == drivetrain


@pytest.mark.parametrize(
    "title",
    [
        "1987 Porsche 911 Turbo",  # the 930 drove the rear wheels, later Turbos all four
        "2012 Citroen C4 Picasso",  # "C4" names a Porsche's drive, not a Citroën's
        "1989 Porsche 911 Carrera 3.2",
    ],
)
def test_titles_that_leave_the_drivetrain_open(title: str) -> None:
    make = title.split()[1]
    assert _parse(replace(BARE, title=title, make=make)).drivetrain is None


def test_equipment_only_a_four_wheel_drive_has() -> None:
    assert _with_bullets("Two-Speed Transfer Case").drivetrain == "4WD"


def test_the_title_and_the_prose_agree() -> None:
    spec = replace(BARE, title="1995 Porsche 911 Carrera 4 Coupe", drivetrain="AWD")
    assert _parse(spec).drivetrain == "AWD"
    # "drives all four wheels" in the prose fits a 4x4 as well.
    spec = replace(BARE, title="1985 Toyota Pickup 4x4", make="Toyota", drivetrain="AWD")
    assert _parse(spec).drivetrain == "4WD"


def test_sources_that_disagree_give_none() -> None:
    # The prose sends power to the rear wheels; the title says Carrera 4.
    spec = replace(BARE, title="1995 Porsche 911 Carrera 4 Coupe", drivetrain="RWD")
    assert _parse(spec).drivetrain is None
    # quattro is all-wheel drive; a two-speed transfer case is four-wheel drive.
    spec = replace(
        BARE,
        title="1986 Audi 4000CS Quattro",
        make="Audi",
        extra_bullets=("Two-Speed Transfer Case",),
    )
    assert _parse(spec).drivetrain is None


def test_a_drivetrain_bullet_is_taken_as_stated() -> None:
    spec = replace(
        BARE, title="1995 Porsche 911 Carrera 4 Coupe", drivetrain="AWD", drivetrain_as_bullet=True
    )
    assert _parse(spec).drivetrain == "AWD"
