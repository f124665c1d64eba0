"""Tiny pure parsers that turn one BaT text snippet into one typed value; they never raise."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from bat_backfill.models import MileageUnit

# Block tags break lines; inline tags (a, strong, span) join their text to its neighbours.
_BLOCK_TAG = re.compile(
    r"<(?:br|/?(?:p|div|li|ul|ol|tr|td|th|table|h[1-6]|blockquote))\b[^>]*>", re.IGNORECASE
)
_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"[ \t\f\v\xa0]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")


def parse_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, spaces collapsed.

    >>> parse_text('Sold for <strong>USD $137,000</strong>&nbsp;<span>on 12/24/25</span>')
    'Sold for USD $137,000 on 12/24/25'
    >>> parse_text('<p>Nice car.</p><p>Any &quot;service&quot; records?</p>')
    'Nice car.\\nAny "service" records?'
    >>> parse_text('<a href="/member/x/">@Seller</a>, any records?\\r\\nThanks')
    '@Seller, any records?\\nThanks'
    """
    text = fragment
    if "<" in text:
        text = _TAG.sub("", _BLOCK_TAG.sub("\n", text))
    if "&" in text:
        text = html.unescape(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "  " in text or "\t" in text or "\xa0" in text or "\f" in text or "\v" in text:
        text = _SPACES.sub(" ", text)
    if "\n" in text:
        text = _BLANK_LINES.sub("\n", text)
    return text.strip()


_INT = re.compile(r"\d[\d,]*")


def parse_count(text: str | None) -> int | None:
    """The first whole number in a label such as a views or bids counter.

    >>> parse_count('11,385 views')
    11385
    >>> parse_count('24')
    24
    >>> parse_count('no bids') is None
    True
    """
    if not text:
        return None
    match = _INT.search(text)
    if match is None:
        return None
    digits = match.group(0).replace(",", "")
    return int(digits) if digits.isdigit() and len(digits) < 16 else None


# BaT writes money as "USD $137,000" (result line), "$42,000.00" (history, system records) or
# "GBP £16,000"; the three-letter code, when present, is the currency.
_MONEY = re.compile(
    r"(?:\b(?P<code>USD|GBP|EUR|CAD|AUD|NZD|CHF|JPY|SEK|DKK|NOK|MXN|HKD|SGD|ZAR|AED)\s*)?"
    r"(?P<symbol>[$£€¥]|[A-Z]{1,2}\$|CHF)?\s*"
    r"(?P<amount>\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{1,2})?"
)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of whole currency units, with the ISO code when the page gives one."""

    amount: int
    currency: str | None


def parse_money(text: str | None) -> Money | None:
    """The first price in a snippet that carries a currency code or symbol.

    >>> parse_money('Sold for USD $137,000 on 12/24/25')
    Money(amount=137000, currency='USD')
    >>> parse_money('Sold on 4/24/26 for USD $42,000.00 to Duke280')
    Money(amount=42000, currency='USD')
    >>> parse_money('Sold on 04/11/2025 for $24,000 to nocera76')
    Money(amount=24000, currency=None)
    >>> parse_money('GBP £16,000')
    Money(amount=16000, currency='GBP')
    >>> parse_money('on 12/24/25') is None
    True
    """
    if not text:
        return None
    for match in _MONEY.finditer(text):
        code, symbol = match.group("code"), match.group("symbol")
        if code is None and symbol is None:
            continue
        digits = match.group("amount").replace(",", "")
        if len(digits) > 12:
            continue
        # A bare "$" is usually USD on BaT, but only the code says so.
        return Money(int(digits), code)
    return None


def parse_epoch(value: str | int | None) -> datetime | None:
    """A UTC instant from an epoch attribute (``data-timestamp``, ``data-until``, ``data-ends``).

    >>> parse_epoch('1766600047').isoformat()
    '2025-12-24T18:14:07+00:00'
    >>> parse_epoch('soon') is None
    True
    """
    if value is None:
        return None
    try:
        seconds = int(str(value).strip())
    except ValueError:
        return None
    # BaT started in 2007; anything outside 2000..2100 is not a real auction time.
    if not 946_684_800 <= seconds <= 4_102_444_800:
        return None
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True, slots=True)
class Mileage:
    """Odometer figure and what it means."""

    value: int
    unit: MileageUnit


_MILEAGE = re.compile(
    r"(?P<number>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(?P<k>[kK])?\s*-?\s*"
    r"(?P<unit>miles?|kilometers?|kilometres?|kms?|kilometer|km)\b",
    re.IGNORECASE,
)
# Wording that means the odometer figure is not the car's total distance.
_UNKNOWN_TOTAL = re.compile(
    r"\b(?:shown|indicated|indicates|displayed|tmu|speedometer|odometer|unknown|"
    r"replacement\s+(?:gauge|cluster|speedometer|odometer)|"
    r"(?:gauge|instrument)\s+cluster)\b",
    re.IGNORECASE,
)


def parse_mileage(text: str | None) -> Mileage | None:
    """Mileage from a Listing Details bullet; "58k" is 58,000 and "Shown" wording means TMU.

    >>> parse_mileage('6k Miles')
    Mileage(value=6000, unit=<MileageUnit.MILES: 'miles'>)
    >>> parse_mileage('61 Miles')
    Mileage(value=61, unit=<MileageUnit.MILES: 'miles'>)
    >>> parse_mileage('123k Miles Shown on Repaired Speedometer')
    Mileage(value=123000, unit=<MileageUnit.TMU: 'tmu'>)
    >>> parse_mileage('58,000 Kilometers')
    Mileage(value=58000, unit=<MileageUnit.KM: 'km'>)
    >>> parse_mileage('1.5k Miles')
    Mileage(value=1500, unit=<MileageUnit.MILES: 'miles'>)
    >>> parse_mileage('58k-Mile')
    Mileage(value=58000, unit=<MileageUnit.MILES: 'miles'>)
    >>> parse_mileage('TMU') is None
    True
    """
    if not text:
        return None
    match = _MILEAGE.search(text)
    if match is None:
        return None
    number = match.group("number").replace(",", "")
    try:
        value = float(number)
    except ValueError:
        return None
    if match.group("k"):
        value *= 1000
    if value >= 10_000_000:
        return None
    unit_word = match.group("unit").lower()
    unit = MileageUnit.KM if unit_word.startswith("k") else MileageUnit.MILES
    rest = text[: match.start()] + " " + text[match.end() :]
    if _UNKNOWN_TOTAL.search(rest):
        unit = MileageUnit.TMU
    return Mileage(round(value), unit)


_PROSE_UNKNOWN_MILEAGE = re.compile(
    r"\b(?:(?:true|total|actual|accumulated)\s+(?:mileage|miles|distance)\s+"
    r"(?:is|are|remains?)?\s*unknown|tmu|mileage\s+(?:is\s+)?unknown|"
    r"unknown\s+(?:total\s+|true\s+)?mileage)\b",
    re.IGNORECASE,
)


def mentions_unknown_mileage(text: str | None) -> bool:
    """Whether prose says the total mileage is unknown (BaT's TMU).

    >>> mentions_unknown_mileage('the odometer shows 500 miles, and total mileage is unknown.')
    True
    >>> mentions_unknown_mileage('This 360 Spider has 36k miles.')
    False
    """
    return bool(text) and _PROSE_UNKNOWN_MILEAGE.search(text or "") is not None


_WORD_NUMBERS = {
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
_SPEEDS = re.compile(
    r"\b(?P<n>\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten)[- ]speed\b", re.I
)
_GEARBOX_WORDS = re.compile(
    r"\b(?:\w+[- ]speed|transaxle|transmission|gearbox|pdk|cvt|dct|dsg|smg|tiptronic|"
    r"s\s?tronic|powerglide|hydra-?matic|turbo-hydramatic|torqueflite|f1\s+(?:sequential|gearbox))\b",
    re.IGNORECASE,
)
# Checked in order: the first kind named is the one kept ("PDK Dual-Clutch Automatic" is PDK).
_GEARBOX_KINDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bpdk\b", re.I), "PDK"),
    (re.compile(r"\bf1\b", re.I), "F1"),
    (re.compile(r"\bsmg\b", re.I), "SMG"),
    (re.compile(r"\b(?:dual[- ]clutch|dct|dsg|s\s?tronic)\b", re.I), "Dual-Clutch"),
    (re.compile(r"\bcvt\b|continuously variable", re.I), "CVT"),
    (re.compile(r"\bsequential\b", re.I), "Sequential"),
    (
        re.compile(
            r"\b(?:automatic|auto|tiptronic|powerglide|hydra-?matic|torqueflite|steptronic)\b", re.I
        ),
        "Automatic",
    ),
    (re.compile(r"\b(?:manual|stick|dog-?leg|crash\s*box)\b", re.I), "Manual"),
)


def looks_like_transmission(text: str | None) -> bool:
    """Whether a Listing Details bullet describes the gearbox.

    >>> looks_like_transmission('Six-Speed F1 Sequential Transaxle')
    True
    >>> looks_like_transmission('Automatic Climate Control')
    False
    """
    return bool(text) and _GEARBOX_WORDS.search(text or "") is not None


def parse_transmission(text: str | None) -> str | None:
    """Gearbox as "<speeds>-Speed <kind>", keeping the speed count and the kind.

    >>> parse_transmission('Six-Speed Manual Transaxle')
    '6-Speed Manual'
    >>> parse_transmission('Eight-Speed PDK Dual-Clutch Automatic Transaxle')
    '8-Speed PDK'
    >>> parse_transmission('Six-Speed F1 Sequential Transaxle')
    '6-Speed F1'
    >>> parse_transmission('Three-Speed Automatic Transmission')
    '3-Speed Automatic'
    >>> parse_transmission('Manual Transmission')
    'Manual'
    >>> parse_transmission('Five-Speed Transaxle')
    '5-Speed'
    >>> parse_transmission('Heated Seats') is None
    True
    """
    if not text or not looks_like_transmission(text):
        return None
    speeds: int | None = None
    match = _SPEEDS.search(text)
    if match is not None:
        raw = match.group("n").lower()
        speeds = int(raw) if raw.isdigit() else _WORD_NUMBERS.get(raw)
    kind = next((name for pattern, name in _GEARBOX_KINDS if pattern.search(text)), None)
    parts = [f"{speeds}-Speed"] if speeds else []
    if kind:
        parts.append(kind)
    return " ".join(parts) if parts else None


_DRIVE_NAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:4wd|4x4|four[- ]wheel[- ]drive|4-wheel[- ]drive)\b", re.I), "4WD"),
    (re.compile(r"\b(?:awd|all[- ]wheel[- ]drive|quattro|4matic|xdrive|4motion)\b", re.I), "AWD"),
    (re.compile(r"\b(?:rwd|rear[- ]wheel[- ]drive)\b", re.I), "RWD"),
    (re.compile(r"\b(?:fwd|front[- ]wheel[- ]drive)\b", re.I), "FWD"),
)


def parse_drivetrain(text: str | None) -> str | None:
    """Drivetrain named outright, as in a bullet ("All-Wheel Drive") or "4x4".

    >>> parse_drivetrain('Part-Time Four-Wheel Drive')
    '4WD'
    >>> parse_drivetrain('Quattro All-Wheel Drive')
    'AWD'
    >>> parse_drivetrain('Rear-Axle Steering') is None
    True
    """
    if not text:
        return None
    for pattern, name in _DRIVE_NAMES:
        if pattern.search(text):
            return name
    return None


# Equipment that exists only on four-wheel-drive vehicles: a low range, manual locking hubs.
_FOUR_WHEEL_DRIVE_PARTS = re.compile(
    r"\b(?:(?:two|2|dual)[- ](?:speed|range)|low[- ]range)\s+transfer\s+case\b|"
    r"\blocking\s+(?:front\s+)?hubs\b",
    re.IGNORECASE,
)


def parse_drivetrain_implied(text: str | None) -> str | None:
    """Drivetrain that a bullet implies without naming it ("Two-Speed Transfer Case" is 4WD).

    >>> parse_drivetrain_implied('Two-Speed Transfer Case')
    '4WD'
    >>> parse_drivetrain_implied('Warn Locking Hubs')
    '4WD'
    >>> parse_drivetrain_implied('Limited-Slip Differential') is None
    True
    """
    if text and _FOUR_WHEEL_DRIVE_PARTS.search(text):
        return "4WD"
    return None


# Model names that fix the driven wheels whatever the year: every Porsche "Carrera 4" and
# "Targa 4" (since the 964 of 1989) drives all four wheels, a "Carrera 2" the rear ones, and
# Lamborghini's LP codes end in the number of driven wheels ("LP640-4", "LP580-2").
_MODEL_DRIVES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("porsche", re.compile(r"\b(?:carrera|targa)\s+4s?(?![.\d])|\bc4s?\b", re.I), "AWD"),
    ("porsche", re.compile(r"\bcarrera\s+2(?![.\d])", re.I), "RWD"),
    ("lamborghini", re.compile(r"\blp\s?\d{3}-4\b", re.I), "AWD"),
    ("lamborghini", re.compile(r"\blp\s?\d{3}-2\b", re.I), "RWD"),
)


def parse_model_drivetrain(make: str | None, model: str | None) -> str | None:
    """Drivetrain that a model name fixes for its make; None when the name leaves it open.

    >>> parse_model_drivetrain('Porsche', '911 Carrera 4S Coupe')
    'AWD'
    >>> parse_model_drivetrain('Lamborghini', 'Gallardo LP550-2 Valentino Balboni')
    'RWD'
    >>> parse_model_drivetrain('Porsche', '911 Turbo') is None  # the 930 drove the rear wheels
    True
    >>> parse_model_drivetrain('Citroen', 'C4 Picasso') is None
    True
    """
    if not make or not model:
        return None
    found = {
        drive
        for name, pattern, drive in _MODEL_DRIVES
        if name == make.strip().lower() and pattern.search(model)
    }
    return found.pop() if len(found) == 1 else None


# Listing prose states the driven wheels ("sent to the rear wheels", "drives all four wheels");
# only phrases about delivering power count, not "front-axle lift" or "rear wheels are 18-inch".
_DRIVE_PROSE = re.compile(
    r"\b(?:drives?|driving|driven|sent|sends|routed|routes|delivered|delivers|directed|"
    r"transferred|transmitted|channeled|channelled|goes|power(?:s|ing)?)\b"
    r"(?:\s+\w+){0,3}?\s+(?:to\s+|through\s+)?(?:the\s+|both\s+)?"
    r"(?P<wheels>rear|front|all\s+four|all|four)\s+wheels\b",
    re.IGNORECASE,
)
_PROSE_WHEELS = {"rear": "RWD", "front": "FWD", "all four": "AWD", "all": "AWD", "four": "AWD"}


def parse_drivetrain_prose(text: str | None) -> str | None:
    """Drivetrain from description prose; None when it names none or names several.

    >>> parse_drivetrain_prose('Power is sent to the rear wheels through a six-speed manual.')
    'RWD'
    >>> parse_drivetrain_prose('a twin-turbocharged 3.0L flat-six that drives all four wheels')
    'AWD'
    >>> parse_drivetrain_prose('It has a part-time four-wheel-drive system.')
    '4WD'
    >>> parse_drivetrain_prose('The front-axle lift and rear-axle steering work.') is None
    True
    """
    if not text:
        return None
    found: set[str] = set()
    for pattern, name in _DRIVE_NAMES:
        if pattern.search(text):
            found.add(name)
    for match in _DRIVE_PROSE.finditer(text):
        wheels = re.sub(r"\s+", " ", match.group("wheels").lower())
        found.add(_PROSE_WHEELS[wheels])
    if found == {"4WD", "AWD"}:
        return "4WD"  # a four-wheel-drive system also "drives all four wheels"
    return found.pop() if len(found) == 1 else None


_ENGINE = re.compile(
    r"\b\d{1,2}(?:\.\d)?\s?-?\s?(?:l|liter|litre)\b|\b\d{2,4}\s?-?\s?(?:ci|cc|cid|cubic[- ]inch)\b|"
    r"\b[vw]-?(?:6|8|10|12|16)\b|"
    r"\b(?:flat|inline|straight|boxer|opposed)[- ](?:twin|two|three|four|five|six|eight|twelve)\b|"
    r"\b(?:inline|straight)[- ]?[3-8]\b|\brotary\b|\bv-?twin\b|\belectric\s+motors?\b|\bhemi\b",
    re.IGNORECASE,
)


def looks_like_engine(text: str | None) -> bool:
    """Whether a Listing Details bullet describes the engine.

    >>> looks_like_engine('Twin-Turbocharged 3.0L Flat-Six')
    True
    >>> looks_like_engine('Replacement 1.6-Liter Flat-Four')
    True
    >>> looks_like_engine('Six-Speed Manual Transaxle')
    False
    """
    if not text or looks_like_transmission(text):
        return False
    return _ENGINE.search(text) is not None


_PAINT_SUFFIX = re.compile(r"\s+(?:paint(?:work)?|finish)\s*$", re.IGNORECASE)
_PAINT_PREFIX = re.compile(r"^(?:repainted|refinished|resprayed)(?:\s+in)?\s+", re.IGNORECASE)


def looks_like_paint(text: str | None) -> bool:
    """Whether a bullet names the exterior colour ("... Paint", "Repainted Green").

    >>> looks_like_paint('Giallo Modena Paint')
    True
    >>> looks_like_paint('Repainted Green')
    True
    >>> looks_like_paint('Paint Protection Film')
    False
    """
    if not text:
        return False
    return bool(_PAINT_SUFFIX.search(text) or _PAINT_PREFIX.search(text))


def parse_colour(text: str | None) -> str | None:
    """Exterior colour from its bullet, without "Paint" or "Repainted".

    >>> parse_colour('Giallo Modena Paint ')
    'Giallo Modena'
    >>> parse_colour('Repainted Green')
    'Green'
    >>> parse_colour('Paint') is None
    True
    """
    if not text:
        return None
    value = _PAINT_PREFIX.sub("", _PAINT_SUFFIX.sub("", " " + text.strip()).strip()).strip()
    if not value or value.lower() in {"paint", "repainted", "refinished"}:
        return None
    return value


_UPHOLSTERY = re.compile(r"\s+(?:upholstery|interior|trim)\s*$", re.IGNORECASE)


def looks_like_upholstery(text: str | None) -> bool:
    """Whether a bullet names the interior ("Nero Leather Upholstery").

    >>> looks_like_upholstery('Black Leather and Race-Tex Upholstery')
    True
    >>> looks_like_upholstery('Leather-Wrapped Steering Wheel')
    False
    """
    return bool(text) and _UPHOLSTERY.search(text or "") is not None


def parse_interior(text: str | None) -> str | None:
    """Interior from its bullet, without the trailing "Upholstery".

    >>> parse_interior('Truffle Brown Club Leather Upholstery')
    'Truffle Brown Club Leather'
    """
    if not text:
        return None
    value = _UPHOLSTERY.sub("", " " + text.strip()).strip()
    return value or None


# Bullets that name a colour or an interior without "Paint" or "Upholstery" ("Guards Red",
# "Black Leather"), as older and simpler listings write them. Read only when nothing else in the
# bullet names another thing, and (by the caller) only when one bullet alone qualifies.
_COLOUR_WORDS = frozenset(
    {
        *("black", "white", "red", "blue", "green", "yellow", "orange", "silver", "gray"),
        *("grey", "brown", "tan", "beige", "gold", "purple", "maroon", "burgundy", "bronze"),
        *("champagne", "ivory", "cream", "copper", "teal", "turquoise", "aqua", "violet"),
        *("pink", "magenta", "charcoal", "graphite", "gunmetal", "pewter", "taupe", "khaki"),
        *("cobalt", "indigo", "crimson", "scarlet", "bordeaux", "carmine", "vermilion"),
    }
)
# Hide and fabric shades: colours only beside a material ("Saddle Leather"); alone, "Mahogany"
# is as likely a wood and "Navy" a former owner.
_INTERIOR_COLOUR_WORDS = frozenset(
    {
        *("navy", "saddle", "cognac", "chestnut", "mahogany", "oxblood", "espresso", "mocha"),
        *("parchment", "magnolia", "biscuit", "oatmeal", "cinnamon", "camel", "caramel"),
        *("olive", "slate", "sienna", "russet", "plum"),
    }
)
# Italian, German and French colour words lead their names ("Rosso Corsa", "Nero Daytona").
_LEADING_COLOUR_WORDS = frozenset(
    {
        *("rosso", "nero", "bianco", "giallo", "grigio", "blu", "azzurro", "verde", "argento"),
        *("arancio", "marrone", "avorio", "schwarz", "weiss", "rot", "blau", "silber", "grau"),
        *("noir", "blanc", "rouge", "bleu", "vert", "gris", "argent", "jaune"),
    }
)
_PAINT_FINISHES = frozenset({"metallic", "pearl", "pearlescent", "mica", "tricoat", "matte"})
_UPHOLSTERY_MATERIALS = frozenset(
    {
        *("leather", "leatherette", "vinyl", "cloth", "velour", "alcantara", "suede", "tweed"),
        *("tartan", "corduroy", "houndstooth", "nappa", "tex"),
    }
)
# Words that make a bullet about something other than the body colour or the seats.
_OTHER_THINGS = frozenset(
    {
        *("upholstery", "interior", "trim", "seat", "top", "roof", "hardtop", "soft", "wheel"),
        *("wheels", "rims", "calipers", "caliper", "stripe", "stripes", "livery", "wrap"),
        *("decals", "graphics", "accents", "badges", "badging", "mirrors", "bumpers", "grille"),
        *("carpet", "carpets", "dash", "dashboard", "headliner", "package", "edition", "tint"),
        *("tinted", "windows", "glass", "lights", "brakes", "exhaust", "engine", "hood", "cover"),
        *("tonneau", "convertible", "canvas", "bed", "liner", "market", "title", "records"),
        *("report", "award", "steering", "shift", "knob", "boot", "door", "panels", "heated"),
        *("power", "ventilated", "wrapped", "stitching", "piping", "inserts", "bag", "luggage"),
        *("case", "manual", "manuals", "pouch", "key", "tool", "kit", "paint", "anniversary"),
        *("tires", "tyres", "whitewalls"),
    }
)
# Two colours in one bullet ("Black over Tan", "Red with White Stripes") are not one colour.
_COMBINING_WORDS = frozenset({"over", "with", "and", "on", "or"})
_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")


def _bare_words(text: str | None, limit: int) -> list[str] | None:
    """The lower-case words of a short bullet with no digits or labels; None otherwise."""
    if not text or any(c.isdigit() for c in text) or ":" in text or "/" in text:
        return None
    words = [w.lower() for w in _WORD.findall(text)]
    if not 0 < len(words) <= limit or _OTHER_THINGS.intersection(words):
        return None
    return words


def looks_like_bare_colour(text: str | None) -> bool:
    """Whether a bullet is only an exterior colour's name, without the word "Paint".

    The name ends in a colour or a finish ("Guards Red", "Arctic Silver Metallic"), or starts
    with an Italian, German or French colour word ("Giallo Modena").

    >>> [looks_like_bare_colour(b) for b in ('Guards Red', 'Arctic Silver Metallic', 'Rosso Corsa')]
    [True, True, True]
    >>> [looks_like_bare_colour(b) for b in ('Red Brake Calipers', 'Black Soft Top', 'Black Leather')]
    [False, False, False]
    >>> [looks_like_bare_colour(b) for b in ('Silver Anniversary Edition', 'Black over Tan')]
    [False, False]
    >>> [looks_like_bare_colour(b) for b in ('Nardi Mahogany', 'Ex-Royal Navy')]
    [False, False]
    """
    words = _bare_words(text, 5)
    if not words or _COMBINING_WORDS.intersection(words):
        return False
    if _UPHOLSTERY_MATERIALS.intersection(words):
        return False
    last, first = words[-1], words[0]
    return last in _COLOUR_WORDS or last in _PAINT_FINISHES or first in _LEADING_COLOUR_WORDS


_SEATS = re.compile(r"\s+(?:seats|seating)\s*$", re.IGNORECASE)


def parse_bare_interior(text: str | None) -> str | None:
    """The interior a bullet names by colour and material alone, without "Upholstery".

    >>> parse_bare_interior('Black Leather')
    'Black Leather'
    >>> parse_bare_interior('Tan Leather Seats')
    'Tan Leather'
    >>> parse_bare_interior('Saddle Vinyl')
    'Saddle Vinyl'
    >>> parse_bare_interior('Nero Leather and Houndstooth Cloth')
    'Nero Leather and Houndstooth Cloth'
    >>> [parse_bare_interior(b) for b in ('Nappa Leather', 'Leather-Wrapped Steering Wheel')]
    [None, None]
    >>> [parse_bare_interior(b) for b in ('Heated Black Leather Seats', 'Black Vinyl Top')]
    [None, None]
    """
    if not text:
        return None
    value = _SEATS.sub("", text.strip())
    words = _bare_words(value, 6)
    if not words or words[-1] not in _UPHOLSTERY_MATERIALS:
        return None
    if _COMBINING_WORDS.difference({"and"}).intersection(words):
        return None
    colours = _COLOUR_WORDS | _LEADING_COLOUR_WORDS | _INTERIOR_COLOUR_WORDS
    return value if colours.intersection(words) else None


_VIN_VALUES = {
    **{str(digit): digit for digit in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def check_vin(vin: str | None) -> bool | None:
    """ISO 3779 check digit of a 17-character VIN; None for shorter chassis numbers.

    >>> check_vin('WP0AB2A91LS226645')
    True
    >>> check_vin('WP0AB2A92LS226645')
    False
    >>> check_vin('85576') is None
    True
    """
    if not vin or len(vin) != 17:
        return None
    vin = vin.upper()
    total = 0
    for char, weight in zip(vin, _VIN_WEIGHTS, strict=True):
        value = _VIN_VALUES.get(char)
        if value is None:  # I, O, Q and punctuation never appear in a valid VIN
            return False
        total += value * weight
    remainder = total % 11
    return vin[8] == ("X" if remainder == 10 else str(remainder))


_CHASSIS_LABEL = re.compile(r"^\s*(?:chassis|vin|serial)(?:\s+(?:no\.?|number|#))?\s*[:#]\s*", re.I)
_CHASSIS_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9*./-]{1,24}")


def parse_chassis(text: str | None) -> str | None:
    """VIN or chassis number from a "Chassis: ..." bullet.

    >>> parse_chassis('Chassis: WP0AB2A91LS226645')
    'WP0AB2A91LS226645'
    >>> parse_chassis('Chassis: 85576')
    '85576'
    >>> parse_chassis('Clean Carfax Report') is None
    True
    """
    if not text:
        return None
    label = _CHASSIS_LABEL.match(text)
    if label is None:
        return None
    value = _CHASSIS_VALUE.match(text, label.end())
    if value is None:
        return None
    return value.group(0).strip("./-").upper() or None


_YEAR = re.compile(r"(?<![\d,.])(?:18[89]\d|19\d\d|20\d\d)(?![\d,])")
_GEARBOX_TAG = re.compile(
    r"(?:\s+(?:\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten)-speed"
    r"(?:\s+(?:manual|automatic|transaxle|pdk))?)+\s*$",
    re.IGNORECASE,
)
# Makes of more than one word that a title can start with when no Make chip is on the page.
_MULTIWORD_MAKES = (
    "Alfa Romeo",
    "Aston Martin",
    "Land Rover",
    "Range Rover",
    "De Tomaso",
    "AM General",
    "Austin Healey",
    "Rolls Royce",
    "Mercedes Benz",
    "American Motors",
    "International Harvester",
)


@dataclass(frozen=True, slots=True)
class TitleVehicle:
    """Year, make and model read from a listing title."""

    year: int | None
    make: str | None
    model: str | None


def parse_title_vehicle(title: str | None, make_hint: str | None = None) -> TitleVehicle:
    """Year, make and model from a title; leading descriptors and trailing gearbox tags go.

    >>> parse_title_vehicle('6k-Mile 2020 Porsche 911 Carrera 4S Coupe')
    TitleVehicle(year=2020, make='Porsche', model='911 Carrera 4S Coupe')
    >>> parse_title_vehicle('2026 Porsche 911 GT3 Weissach 6-Speed')
    TitleVehicle(year=2026, make='Porsche', model='911 GT3 Weissach')
    >>> parse_title_vehicle('1967 Alfa Romeo Giulia Sprint GT', 'Alfa Romeo')
    TitleVehicle(year=1967, make='Alfa Romeo', model='Giulia Sprint GT')
    >>> parse_title_vehicle('No title here')
    TitleVehicle(year=None, make=None, model=None)
    """
    hint = (make_hint or "").strip()
    if not title:
        return TitleVehicle(None, hint or None, None)
    match = _YEAR.search(title)
    if match is None:
        return TitleVehicle(None, hint or None, None)
    year = int(match.group(0))
    rest = title[match.end() :].strip()
    make: str | None = None
    model_text = ""
    if hint and rest.lower().startswith(hint.lower()):
        make, model_text = rest[: len(hint)], rest[len(hint) :]
    else:
        for name in _MULTIWORD_MAKES:
            if rest.lower().startswith(name.lower() + " "):
                make, model_text = rest[: len(name)], rest[len(name) :]
                break
        else:
            head, _, tail = rest.partition(" ")
            make, model_text = (head or None), tail
    model = _GEARBOX_TAG.sub("", " " + model_text).strip() or None
    return TitleVehicle(year, make, model)


_LOT = re.compile(r"#?\s*(\d{1,3}(?:,\d{3})+|\d+)")


def parse_lot(text: str | None) -> int | None:
    """Lot number from "#224711" or the title's "Lot #224,711".

    >>> parse_lot('#224711')
    224711
    >>> parse_lot('(Lot #224,711)')
    224711
    """
    if not text:
        return None
    match = _LOT.search(text)
    if match is None:
        return None
    digits = match.group(1).replace(",", "")
    return int(digits) if len(digits) < 12 else None
