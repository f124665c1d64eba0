"""`make demo`: repair a sample broken database end to end on this machine, then report."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bat_backfill.db.queries import NamedQuery, load_queries, run_query
from bat_backfill.models import Outcome

from .localpg import LocalPostgres

DEMO_DIR = Path(".demo")
DEMO_DB = "bat_backfill_demo"
# Fixed namespace so sample vehicles have the same ids on every run (re-runs replace them).
_NAMESPACE = uuid.UUID("6f1d3b1e-8a53-4c1e-9e61-2b0c1a4d5e70")
_BASE_END = 1_762_000_000  # an instant in Nov 2025, when the sample auctions ended


@dataclass(frozen=True)
class Sample:
    """One planted defect: what the database holds and what the listing page says.

    The defects are planted the way the original system stored them: its column names and
    vocabularies (sale_status / auction_outcome), its URL spellings and its auction events."""

    slug: str
    defect: str
    stored: dict[str, Any]
    page: dict[str, Any]  # keyword arguments for samplepages.PageSpec
    serve: str = "page"  # page | 404 | throttle-once | foreign | truncated
    # The vehicle's bat_auction_url as stored (None: the canonical URL).
    stored_url: str | None = None
    # An auction event the original system stored: (outcome, source_url).
    event: tuple[str, str] | None = None

    @property
    def vehicle_id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, self.slug))

    @property
    def url(self) -> str:
        return f"https://bringatrailer.com/listing/{self.slug}/"


_CARS = [
    (1995, "Porsche", "993 Carrera", "WP0AA2995SS320001"),
    (2004, "BMW", "M3 Coupe", "WBSBL93464PN57001"),
    (1991, "Mazda", "MX-5 Miata", "JM1NA3513M0200001"),
    (2008, "Audi", "RS4 Sedan", "WUAGU78E08N900001"),
    (1987, "Toyota", "Land Cruiser FJ60", "JT3FJ60G0H1100001"),
    (2001, "Ferrari", "360 Spider", "ZFFYT53A010120001"),
    (1973, "Datsun", "240Z", "HLS30123456"),
    (2015, "Porsche", "991 GT3", "WP0AC2A94FS183001"),
    (1999, "Honda", "S2000", "JHMAP1147YT000001"),
    (2012, "Mercedes-Benz", "C63 AMG Coupe", "WDDGJ7HB8CF800001"),
    (1966, "Ford", "Mustang Fastback", "6F09C123456"),
    (2019, "Ford", "GT", "2FAGP9CW8KH200001"),
]


def _car(i: int) -> tuple[int, str, str, str]:
    year, make, model, vin = _CARS[i % len(_CARS)]
    # Every sample its own VIN (the original table holds a VIN once): the serial is the index.
    return year, make, model, _with_check_digit(vin[:-4] + f"{i:04d}")


def _with_check_digit(vin: str) -> str:
    """The sample VIN with its ISO 3779 check digit (position 9) made right."""
    from bat_backfill.parsing.normalise import check_vin

    if len(vin) != 17:
        return vin  # a pre-1981 chassis number has no check digit
    for digit in "0123456789X":
        candidate = vin[:8] + digit + vin[9:]
        if check_vin(candidate):
            return candidate
    return vin


def build_samples(count: int) -> list[Sample]:
    """`count` vehicles cycling through every defect the product exists for."""
    kinds: list[Callable[[int], Sample]] = [
        _unsold_stored_as_sold,
        _missing_fields,
        _price_equals_bid_no_buyer,
        _no_auction_event,
        _live_auction,
        _withdrawn,
        _good_data_not_repeated,
        _vin_held_by_an_earlier_listing,  # must follow _good_data_not_repeated
        _vin_conflict,
        _drivetrain_never_stated,
        _no_bids_stored_as_sold,
        _sold_after_reserve_not_met,
        _gone_404,
        _throttled_once,
        _not_a_listing_page,
    ]
    return [kinds[i % len(kinds)](i) for i in range(count)]


def _base(i: int, slug_hint: str) -> tuple[str, dict[str, Any]]:
    year, make, model, vin = _car(i)
    slug = (
        f"{year}-{make}-{model}".lower().replace(" ", "-").replace("--", "-") + f"-{slug_hint}{i}"
    )
    page = {
        "url": f"https://bringatrailer.com/listing/{slug}/",
        "year": year,
        "make": make,
        "model": model,
        "vin": vin,
        "mileage": f"{(i * 7 + 12) % 90 + 5}k Miles",
        "exterior_color": ["Guards Red", "Silver Metallic", "Black", "Giallo Modena"][i % 4],
        "interior_color": ["Black Leather", "Tan Leather", "Grey Cloth"][i % 3],
        "engine": ["3.6L Flat-Six", "3.2L Inline-Six", "1.6L Inline-Four", "4.2L V8"][i % 4],
        "transmission": ["Six-Speed Manual Transaxle", "Five-Speed Manual", "Tiptronic Automatic"][
            i % 3
        ],
        "drivetrain": ["RWD", "AWD", "RWD", "4WD"][i % 4],
        "seller": f"seller{i}",
        "location": ["Austin, Texas 78701", "Portland, Oregon 97201", "Miami, Florida 33101"][
            i % 3
        ],
        "lot": 200_000 + i,
        "post_id": 90_000_000 + i,
        "end_epoch": _BASE_END + i * 3600,
        "outcome": Outcome.SOLD,
        "price": 20_000 + i * 1_500,
        "buyer": f"buyer{i}",
    }
    return slug, page


def _unsold_stored_as_sold(i: int) -> Sample:
    # The seed's own example: "Bid to" stored as a sale, with a 'sold' event naming no winner
    # under another spelling of the listing's URL (no trailing slash).
    slug, page = _base(i, "rnm")
    page.update(outcome=Outcome.BID_TO, buyer=None)
    price = page["price"]
    stored = _stored_from(page, **_SOLD, sale_price=price, high_bid=price)
    event = ("sold", page["url"].rstrip("/"))
    return Sample(slug, "unsold lot stored as sold", stored, page, event=event)


def _missing_fields(i: int) -> Sample:
    slug, page = _base(i, "bare")
    stored = _stored_from(page, **_SOLD, sale_price=page["price"], high_bid=page["price"])
    for key in ("vin", "mileage", "color", "transmission", "drivetrain"):
        stored[key] = None
    stored["mileage_unit"] = None
    # Stored under an old spelling of its URL: http, www., no trailing slash.
    old_url = page["url"].replace("https://", "http://www.").rstrip("/")
    return Sample(slug, "missing VIN, mileage, colour, transmission, drivetrain", stored, page,
                  stored_url=old_url)  # fmt: skip


def _price_equals_bid_no_buyer(i: int) -> Sample:
    slug, page = _base(i, "nobuyer")
    page.update(outcome=Outcome.BID_TO, buyer=None)
    stored = _stored_from(page, sale_status=None, sale_price=page["price"], high_bid=page["price"])
    stored["bat_buyer"] = None
    return Sample(slug, "sale price equal to the high bid, no buyer", stored, page)


def _no_auction_event(i: int) -> Sample:
    slug, page = _base(i, "noevent")
    stored = _stored_from(page, sale_status=None, sale_price=None, high_bid=None)
    # The end date as an ISO timestamp (text), as the original system sometimes wrote it: the
    # same day as the page's, so it is left as it is.
    ended = datetime.fromtimestamp(page["end_epoch"], UTC)
    stored["auction_end_date"] = ended.isoformat()
    return Sample(slug, "no auction outcome recorded", stored, page)


def _live_auction(i: int) -> Sample:
    slug, page = _base(i, "live")
    page.update(outcome=Outcome.LIVE, buyer=None, end_epoch=int(time.time()) + 5 * 86400)
    stored = _stored_from(page, **_SOLD, sale_price=page["price"], high_bid=None)
    return Sample(slug, "live auction stored as sold", stored, page)


def _withdrawn(i: int) -> Sample:
    slug, page = _base(i, "withdrawn")
    page.update(outcome=Outcome.WITHDRAWN, buyer=None)
    stored = _stored_from(page, sale_status=None, sale_price=page["price"], high_bid=None)
    return Sample(slug, "withdrawn listing with a sale price", stored, page)


def _good_data_not_repeated(i: int) -> Sample:
    slug, page = _base(i, "quiet")
    stored = _stored_from(page, sale_status=None, sale_price=None, high_bid=None)
    # The page no longer lists mileage or paint; the stored values must survive.
    page.update(mileage=None, exterior_color=None)
    stored.update(mileage=41_000, mileage_unit="miles", color="British Racing Green")
    return Sample(slug, "good data the page does not repeat", stored, page)


def _vin_conflict(i: int) -> Sample:
    slug, page = _base(i, "vin")
    stored = _stored_from(page, sale_status=None, sale_price=None, high_bid=None)
    stored["vin"] = _with_check_digit(f"1HGCM82633A{i:06d}")
    return Sample(slug, "stored VIN differs from the page", stored, page)


def _vin_held_by_an_earlier_listing(i: int) -> Sample:
    # A relisted car: the sample before it (good data, VIN stored) is its earlier listing and
    # holds the VIN under the unique index, so this row records the page's VIN as a conflict.
    slug, page = _base(i, "relisted")
    page["vin"] = _car(i - 1)[3]
    stored = _stored_from(page, sale_status=None, sale_price=None, high_bid=None)
    stored["vin"] = None
    return Sample(slug, "VIN already held by the car's earlier listing", stored, page)


def _drivetrain_never_stated(i: int) -> Sample:
    slug, page = _base(i, "nodrive")
    page.update(drivetrain=None)
    stored = _stored_from(page, **_SOLD, sale_price=page["price"], high_bid=page["price"])
    stored["drivetrain"] = None
    return Sample(slug, "drivetrain missing and never stated by the page", stored, page)


def _no_bids_stored_as_sold(i: int) -> Sample:
    slug, page = _base(i, "nobids")
    page.update(outcome=Outcome.NO_SALE, buyer=None, price=None)
    stored = _stored_from(page, **_SOLD, sale_price=15_000, high_bid=15_000)
    return Sample(slug, "ended without bids, stored as sold", stored, page)


def _sold_after_reserve_not_met(i: int) -> Sample:
    slug, page = _base(i, "accepted")
    page.update(rnm_accepted=True)
    stored = _stored_from(page, sale_status="bid_to", auction_outcome="reserve_not_met",
                          sale_price=None, high_bid=page["price"])  # fmt: skip
    stored.update(bat_buyer=None, mileage=None, mileage_unit=None)
    event = ("reserve_not_met", page["url"])
    return Sample(slug, "sold after reserve not met, stored as unsold", stored, page, event=event)


def _gone_404(i: int) -> Sample:
    slug, page = _base(i, "gone")
    stored = _stored_from(page, **_SOLD, sale_price=page["price"], high_bid=None)
    stored["vin"] = None
    return Sample(slug, "listing page gone (404)", stored, page, serve="404")


def _throttled_once(i: int) -> Sample:
    slug, page = _base(i, "busy")
    stored = _stored_from(page, sale_status=None, sale_price=None, high_bid=None)
    stored["transmission"] = None
    return Sample(slug, "BaT answers 429 once", stored, page, serve="throttle-once")


def _not_a_listing_page(i: int) -> Sample:
    slug, page = _base(i, "foreign")
    stored = _stored_from(page, **_SOLD, sale_price=page["price"], high_bid=None)
    stored["mileage"] = None
    return Sample(
        slug, "URL answers with a page that is not a listing", stored, page, serve="foreign"
    )


# Real listings for `--live` (a polite handful; override with --pages to choose others).
REAL_LISTINGS = (
    "2009-porsche-cayman-46",
    "2001-ferrari-360-spider-89",
    "2020-porsche-911-carrera-4s-coupe-26",
    "2026-porsche-911-gt3-6",
)


def build_real_samples(slugs: list[str]) -> list[Sample]:
    """Defects planted on vehicles whose pages are real: what the page says is unknown, so
    each stores the classic mistakes (a sale at the high bid, missing details)."""
    samples = []
    for i, slug in enumerate(slugs):
        if i % 2 == 0:
            defect = "stored as sold at an unverified price"
            stored = {**_SOLD, "sale_price": 50_000, "high_bid": 50_000}
        else:
            defect = "missing VIN, mileage, colour, transmission, drivetrain"
            stored = {}
        samples.append(Sample(slug, defect, stored, page={}))
    return samples


# A sale in the original system's two vocabularies.
_SOLD = {"sale_status": "sold", "auction_outcome": "sold"}


def _stored_from(page: dict[str, Any], **result: Any) -> dict[str, Any]:
    """What the original system stored for this page (before the planted defect is applied)."""
    return {
        "year": page["year"],
        "make": page["make"],
        "model": page["model"],
        "vin": page["vin"],
        "mileage": int(page["mileage"].split("k")[0]) * 1000 if page.get("mileage") else None,
        "mileage_unit": "miles",
        "color": page.get("exterior_color"),
        "transmission": "Automatic" if "Automatic" in page["transmission"] else "Manual",
        "drivetrain": page["drivetrain"],
        "bat_buyer": page.get("buyer"),
        "auction_outcome": None,
        "auction_end_date": None,
        **result,
    }


# ---------------------------------------------------------------- database


_VEHICLE_COLUMNS = (
    "year", "make", "model", "vin", "mileage", "mileage_unit", "color", "transmission",
    "drivetrain", "bat_buyer", "sale_status", "auction_outcome", "sale_price", "high_bid",
    "auction_end_date",
)  # fmt: skip
_STATE_COLUMNS = (
    "id", "sale_status", "sale_price", "high_bid", "vin", "mileage", "color", "transmission",
    "drivetrain", "bat_buyer",
)  # fmt: skip
_QUERIES: dict[str, NamedQuery] = {}


def _run(conn: Any, name: str, **params: Any) -> list[list[Any]]:
    if not _QUERIES:
        _QUERIES.update(load_queries(Path(__file__).resolve().parent / "sql"))
    return run_query(conn, _QUERIES[name], **params)


# ---------------------------------------------------------------- whose database


class NotTheDemosDatabaseError(RuntimeError):
    """The database holds data the demo did not write; the demo changes nothing there."""


# More vehicles than any demo writes (500 samples, saved pages, discovered listings).
_MOST_DEMO_VEHICLES = 10_000


def is_demo_vehicle(vehicle_id: str | None, url: str | None) -> bool:
    """Whether the demo wrote this vehicle: a sample (its id derives from its listing's slug,
    so a real vehicle never has it) or a listing the demo's discovery found.

    >>> sample = build_samples(1)[0]
    >>> is_demo_vehicle(sample.vehicle_id, sample.url), is_demo_vehicle(str(uuid.uuid4()), sample.url)
    (True, False)
    """
    from bat_backfill.errors import InvalidListingUrlError
    from bat_backfill.urls import listing_slug, parse_listing_url

    try:
        canonical = parse_listing_url(url or "")
    except InvalidListingUrlError:
        return False
    own_id = str(uuid.uuid5(_NAMESPACE, listing_slug(canonical)))
    return vehicle_id == own_id or canonical in new_listing_urls()


def demo_vehicle_ids(conn: Any) -> list[str]:
    """The vehicles of a database that holds nothing but the demo's own data (none in an
    empty one); NotTheDemosDatabaseError naming the first row the demo did not write.
    Reads only: call before migrating, so a refused database is left exactly as it was."""
    ids: list[str] = []
    if _run(conn, "vehicles_table")[0][0]:
        rows = _run(conn, "stored_vehicles", cap=_MOST_DEMO_VEHICLES + 1)
        if len(rows) > _MOST_DEMO_VEHICLES:
            raise NotTheDemosDatabaseError(f"it holds more than {_MOST_DEMO_VEHICLES} vehicles")
        for vehicle_id, url in rows:
            if not is_demo_vehicle(vehicle_id, url):
                raise NotTheDemosDatabaseError(
                    f"vehicle {vehicle_id} ({url or 'no BaT URL'}) is not one of the demo's"
                )
            ids.append(str(vehicle_id))
    foreign = _run(conn, "rows_not_the_demos", ids=ids)
    if foreign:
        raise NotTheDemosDatabaseError(
            "it holds rows the demo did not write in " + ", ".join(str(t) for (t,) in foreign)
        )
    return ids


def load_samples(conn: Any, samples: list[Sample], earlier: list[str]) -> None:
    """Replace the demo's earlier vehicles (`earlier`, from `demo_vehicle_ids`) with the
    samples (fixed ids), so the demo can run again and again."""
    ids = sorted({*earlier, *(s.vehicle_id for s in samples)})
    _run(conn, "delete_sample_events", ids=ids)
    _run(conn, "delete_samples", ids=ids)
    _run(conn, "clear_runs")
    for s in samples:
        _run(
            conn,
            "insert_sample",
            id=s.vehicle_id,
            url=s.stored_url or s.url,
            age=len(samples) - samples.index(s),
            **{c: s.stored.get(c) for c in _VEHICLE_COLUMNS},
        )
        if s.event is not None:
            outcome, source_url = s.event
            _run(
                conn,
                "insert_sample_event",
                id=s.vehicle_id,
                url=source_url,
                outcome=outcome,
                bid=s.stored.get("high_bid"),
            )


def _plain(value: Any) -> Any:
    # sale_price is numeric(10,2): show 53000.00 as 53000
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def snapshot_vehicles(conn: Any, samples: list[Sample]) -> dict[str, dict[str, Any]]:
    rows = _run(conn, "sample_state", ids=[s.vehicle_id for s in samples])
    return {
        row[0]: {c: _plain(v) for c, v in zip(_STATE_COLUMNS, row, strict=True)} for row in rows
    }


# ---------------------------------------------------------------- pages


def build_page_server(samples: list[Sample], pages_dir: Path | None = None) -> Any:
    from .pageserver import PageServer, Reply, serve_folder

    if pages_dir is not None:
        return serve_folder(pages_dir)
    from .samplepages import PageSpec, render_page

    server = PageServer()
    for s in samples:
        html = render_page(PageSpec(**s.page))
        if s.serve == "404":
            server.set_listing(s.slug, Reply(404, b"<html><body>Page not found</body></html>"))
        elif s.serve == "foreign":
            server.set_listing(
                s.slug,
                "<!doctype html><html><head><title>Parked domain</title></head>"
                "<body><h1>This domain is for sale</h1></body></html>",
            )
        elif s.serve == "throttle-once":
            server.set_listing(s.slug, html)
            server.fail_first(f"/listing/{s.slug}/", Reply(429, b"slow down"))
        else:
            server.set_listing(s.slug, html)
    _serve_new_listings(server)
    return server


# Listings that ended on BaT but are not in the database yet: discovery queues them at 100.
NEW_LISTINGS = (
    (2003, "BMW", "Z8 Roadster", "WBAEJ13453AH60001"),
    (1994, "Toyota", "Supra Turbo", "JT2JA82J8R0020001"),
)


def new_listing_urls() -> list[str]:
    return [
        f"https://bringatrailer.com/listing/{year}-{make}-{model}-new{i}/".lower().replace(" ", "-")
        for i, (year, make, model, _) in enumerate(NEW_LISTINGS)
    ]


def _serve_new_listings(server: Any) -> None:
    from .samplepages import PageSpec, render_page

    items = []
    for i, ((year, make, model, vin), url) in enumerate(zip(NEW_LISTINGS, new_listing_urls(),
                                                            strict=True)):  # fmt: skip
        slug = url.rstrip("/").rsplit("/", 1)[1]
        spec = PageSpec(url=url, year=year, make=make, model=model,
                        vin=_with_check_digit(vin), lot=300_000 + i,
                        post_id=95_000_000 + i, end_epoch=_BASE_END + 86_400)  # fmt: skip
        server.set_listing(slug, render_page(spec))
        items.append({"url": url, "title": f"{year} {make} {model}", "year": str(year),
                      "active": False, "timestamp_end": _BASE_END + 86_400})  # fmt: skip
    data = {"items": items, "page_current": 1, "pages_total": 1}
    server.set("/auctions/results/",
               f"<script>var auctionsCompletedInitialData = {json.dumps(data)};</script>")  # fmt: skip


# ---------------------------------------------------------------- run


def _start_database(args: argparse.Namespace) -> tuple[str, LocalPostgres | None]:
    from . import localpg

    if getattr(args, "database_url", None):
        return str(args.database_url), None
    cluster = localpg.start_persistent(DEMO_DIR / "pg")
    return cluster.ensure_database(DEMO_DB), cluster


MIN_VEHICLES, MAX_VEHICLES = 1, 500


def stop_demo_database() -> int:
    """Stop the Postgres that `make demo` keeps running under .demo/ (its data stays)."""
    from . import localpg

    port_file = DEMO_DIR / "pg" / "port"
    if not port_file.exists():
        print("no demo database under .demo/", file=sys.stderr)
        return 0
    cluster = localpg.LocalPostgres(
        root=(DEMO_DIR / "pg").resolve(), port=int(port_file.read_text())
    )
    if not cluster.is_running():
        print(
            f"the demo database is not running ({cluster.data}); nothing to stop", file=sys.stderr
        )
        return 0
    cluster.stop()
    print(f"stopped the demo database ({cluster.data})", file=sys.stderr)
    return 0


@dataclass
class Progress:
    quiet: bool
    started: float = field(default_factory=time.monotonic)

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=sys.stderr, flush=True)


def run_demo(args: argparse.Namespace) -> int:
    from bat_backfill.db.connect import connect, redact
    from bat_backfill.db.migrate import migrate

    from . import localaws

    if getattr(args, "stop", False):
        return stop_demo_database()
    progress = Progress(quiet=False)
    url, _cluster = _start_database(args)
    conn = connect(url)
    try:
        earlier = demo_vehicle_ids(conn)
    except NotTheDemosDatabaseError as exc:
        conn.close()
        print(
            f"bat-backfill demo: refusing {redact(url)}: {exc}; the demo runs only on an empty "
            "database or its own, and changed nothing",
            file=sys.stderr,
        )
        return 2
    progress.say(f"database {redact(url)}")
    pages_dir = Path(args.pages) if getattr(args, "pages", None) else None
    if pages_dir is not None and not pages_dir.is_dir():
        print(f"bat-backfill demo: --pages {pages_dir} is not a folder", file=sys.stderr)
        return 2
    if pages_dir is not None or args.live:
        slugs = (
            [p.stem.removesuffix(".browser-save") for p in sorted(pages_dir.glob("*.html"))]
            if pages_dir is not None
            else list(REAL_LISTINGS)
        )
        samples = build_real_samples(slugs)
    else:
        if not MIN_VEHICLES <= args.vehicles <= MAX_VEHICLES:
            print(
                f"bat-backfill demo: --vehicles must be between {MIN_VEHICLES} and "
                f"{MAX_VEHICLES}, got {args.vehicles}",
                file=sys.stderr,
            )
            return 2
        samples = build_samples(args.vehicles)
    migrate(conn)
    load_samples(conn, samples, earlier)
    before = snapshot_vehicles(conn, samples)
    progress.say(f"loaded {len(samples)} sample vehicles with planted defects")

    server = None if args.live else build_page_server(samples, pages_dir).start()
    env = {
        "DATABASE_URL": url,
        # Metrics are CloudWatch EMF lines on stdout; locally they would only bury the report.
        "POWERTOOLS_METRICS_DISABLED": "true",
        "BAT_BASE_URL": server.base_url if server is not None else "https://bringatrailer.com",
        # Locally served pages need no politeness; bringatrailer.com gets the default rate.
        "REQUEST_INTERVAL_SECONDS": "2" if args.live else "0.001",
        "BACKOFF_BASE_SECONDS": "0.1",
        "BACKOFF_CAP_SECONDS": "1",
        "MAX_ATTEMPTS": "3",
        "BACKFILL_BATCH_SIZE": str(len(samples)),
        # Discovery reads the local results page; against bringatrailer.com it stays off.
        "DISCOVERY_ENABLED": "false" if server is None or pages_dir is not None else "true",
    }
    try:
        with localaws.scoped_environ(env), localaws.emulated_aws() as aws_local:
            stats = drive_pipeline(aws_local, progress)
    finally:
        if server is not None:
            server.stop()
    after = snapshot_vehicles(conn, samples)
    summary = summarise(conn, samples, before, after, stats)
    print(render_summary(summary))
    if args.json:
        print(json.dumps(summary, default=str, separators=(",", ":")))
    return 0


def drive_pipeline(aws_local: Any, progress: Progress, *, max_ticks: int = 20) -> dict[str, Any]:
    """Orchestrator ticks, then the queue processor draining high before backfill."""
    from bat_backfill.db import queue as jobqueue
    from bat_backfill.orchestrate import run_orchestrator
    from bat_backfill.services import build_services

    from .invoke import LocalContext, load_handler_module
    from .localaws import lambda_sqs_record

    services = build_services()
    queue_processor = load_handler_module("queue_processor")
    processed: dict[str, int] = {}
    # Where the time goes: the orchestrator's runs and the processor's batches.
    spent = {"orchestrator_s": 0.0, "queue_processor_s": 0.0, "batches": 0}
    ticks = 0
    for ticks in range(1, max_ticks + 1):
        started = time.perf_counter()
        report = run_orchestrator(services)
        spent["orchestrator_s"] += time.perf_counter() - started
        steps = report.steps
        progress.say(
            f"tick {ticks}: queued {steps['auto_queue'].get('queued', 0)}, "
            f"rescued {steps['rescue'].get('rescued', 0)}, "
            f"new listings {steps['discover'].get('queued', 0)}, "
            f"dispatched {steps['dispatch'].get('dispatched', 0)}"
        )
        drained = 0
        for name, queue_url in (
            ("high", aws_local.high_queue_url),
            ("backfill", aws_local.backfill_queue_url),
        ):
            while True:
                got = aws_local.sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=0,
                    MessageAttributeNames=["All"],
                    AttributeNames=["All"],
                ).get("Messages", [])
                if not got:
                    break
                event = {"Records": [lambda_sqs_record(m, queue_url) for m in got]}
                started = time.perf_counter()
                result = queue_processor.handler(event, LocalContext("queue_processor"))
                spent["queue_processor_s"] += time.perf_counter() - started
                spent["batches"] += 1
                # As the event source mapping does: delete what succeeded, keep the failures.
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
                done = [m for m in got if m["MessageId"] not in failed]
                if done:
                    aws_local.sqs.delete_message_batch(
                        QueueUrl=queue_url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                            for i, m in enumerate(done)
                        ],
                    )
                drained += len(got)
                processed[name] = processed.get(name, 0) + len(got)
        progress.say(f"  processed {drained} message(s) (high first, then backfill)")
        depths = {
            (r["status"], int(r["priority"])): int(r["count"])
            for r in jobqueue.queue_depths(services.db.connection())
        }
        waiting = sum(v for (status, _), v in depths.items() if status in ("pending", "processing"))
        if waiting == 0 and ticks > 1:
            break
        if drained == 0:
            time.sleep(0.2)  # retries wait out their (shortened) backoff
    new = _run(services.db.connection(), "new_listing_jobs", urls=new_listing_urls())
    services.close()
    return {
        "ticks": ticks,
        **spent,
        "messages": processed,
        "new_listings": {str(status): int(count) for status, count in new},
    }


# ---------------------------------------------------------------- summary


def summarise(
    conn: Any,
    samples: list[Sample],
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    stats: dict[str, Any],
) -> dict[str, Any]:
    ids = [s.vehicle_id for s in samples]
    audit = _run(conn, "sample_audit", ids=ids)
    absences = _run(conn, "sample_absences", ids=ids)
    jobs = _run(conn, "sample_jobs", ids=ids)
    by_vehicle: dict[str, dict[str, Any]] = {
        s.vehicle_id: {"filled": [], "corrected": [], "conflicts": [], "absent": []}
        for s in samples
    }
    for vid, fld, action, _old, _new in audit:
        key = {"fill": "filled", "correct": "corrected", "conflict": "conflicts"}[action]
        if fld not in by_vehicle[vid][key]:
            by_vehicle[vid][key].append(fld)
    for vid, fld in absences:
        # A conflict's field was stated by the page (a value kept for review, or one the
        # table's constraints refused): it is not one the page is silent on.
        if fld not in by_vehicle[vid]["conflicts"]:
            by_vehicle[vid]["absent"].append(fld)
    job_of = {vid: (status, attempts, err) for vid, status, attempts, err in jobs}
    rows = []
    for s in samples:
        info = by_vehicle[s.vehicle_id]
        status, attempts, error = job_of.get(s.vehicle_id, (None, 0, None))
        was, now = before[s.vehicle_id], after[s.vehicle_id]
        handled = status == "complete" or (status == "failed" and bool(error))
        rows.append(
            {
                "vehicle_id": s.vehicle_id,
                "slug": s.slug,
                "defect": s.defect,
                "job": status,
                "attempts": attempts,
                "outcome_before": was["sale_status"],
                "outcome_after": now["sale_status"],
                "price_before": was["sale_price"],
                "price_after": now["sale_price"],
                "filled": info["filled"],
                "corrected": info["corrected"],
                "conflicts": info["conflicts"],
                "absent": sorted(info["absent"]),
                "error": error,
                "handled": handled,
            }
        )
    totals = {
        "vehicles": len(rows),
        "handled": sum(1 for r in rows if r["handled"]),
        "outcomes_fixed": sum(1 for r in rows if r["outcome_before"] != r["outcome_after"]),
        "fields_filled": sum(len(r["filled"]) for r in rows),
        "fields_corrected": sum(len(r["corrected"]) for r in rows),
        "conflicts": sum(len(r["conflicts"]) for r in rows),
        "fields_absent": sum(len(r["absent"]) for r in rows),
        "jobs_failed": sum(1 for r in rows if r["job"] == "failed"),
        **stats,
    }
    return {"totals": totals, "vehicles": rows}


def render_summary(summary: dict[str, Any]) -> str:
    from .render import render_table

    rows = summary["vehicles"]
    table = render_table(
        [
            "defect",
            "job",
            "outcome before -> after",
            "price before -> after",
            "filled",
            "corrected",
            "conflict",
            "page silent on / error",
        ],
        [
            [
                r["defect"][:44],
                r["job"],
                f"{r['outcome_before']} -> {r['outcome_after']}",
                f"{r['price_before']} -> {r['price_after']}",
                len(r["filled"]),
                ", ".join(r["corrected"])[:40],
                ", ".join(r["conflicts"]),
                (r["error"] or ", ".join(r["absent"]))[:60],
            ]
            for r in rows
        ],
    )
    t = summary["totals"]
    lines = [
        table,
        "",
        f"{t['handled']}/{t['vehicles']} planted defects handled "
        f"({t['outcomes_fixed']} outcomes fixed, {t['fields_filled']} fields filled, "
        f"{t['fields_corrected']} corrected, {t['conflicts']} conflicts kept for review, "
        f"{t['fields_absent']} fields the pages do not state, {t['jobs_failed']} jobs failed "
        f"with their reason) in {t['ticks']} orchestrator run(s)",
        f"new listings discovered and queued at priority 100: "
        f"{sum(t['new_listings'].values())} ({t['new_listings'].get('complete', 0)} extracted); "
        f"messages processed: {t['messages'].get('high', 0)} high, "
        f"{t['messages'].get('backfill', 0)} backfill",
    ]
    return "\n".join(lines)
