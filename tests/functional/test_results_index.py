"""Discovery through an outage and the outcome sweep, against a local BaT results index and a real
Postgres."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bat_backfill_tools.pageserver import PageServer
from bat_backfill_tools.samplepages import index_item, render_results_page

from bat_backfill.discovery import discover, sweep, sweep_slice
from bat_backfill.services import Services
from tests.functional.support import add_vehicle, vehicle_row

BASE = "https://bringatrailer.com/listing/"
T0 = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)
PER_PAGE = 3


class Index:
    """A results index that grows at the top, served page by page like BaT's."""

    def __init__(self, server: PageServer) -> None:
        self.server = server
        self.items: list[dict[str, Any]] = []  # newest first
        self.count = 0

    def end(self, n: int, *, minutes_apart: int = 10) -> None:
        """`n` more listings end, each after the newest so far."""
        for _ in range(n):
            self.count += 1
            ended = T0 + timedelta(minutes=minutes_apart * self.count)
            self.items.insert(
                0,
                index_item(
                    f"{BASE}car-{self.count}/",
                    sold_text="Sold for USD $10,000",
                    ended=int(ended.timestamp()),
                ),
            )
        self.publish()

    def publish(self) -> None:
        pages = max(1, -(-len(self.items) // PER_PAGE))
        for page in range(1, pages + 1):
            chunk = self.items[(page - 1) * PER_PAGE : page * PER_PAGE]
            path = "/auctions/results/" + (f"?page={page}" if page > 1 else "")
            self.server.set(path, render_results_page(chunk, page, pages))


def configured(services: Services, **changes: Any) -> Services:
    services.settings = replace(
        services.settings, discovery_enabled=True, discovery_overlap_minutes=0, **changes
    )
    services.clock = lambda: T0 + timedelta(days=30)
    return services


def queued_urls(db: Any) -> list[str]:
    rows = db.run(
        "SELECT v.bat_auction_url FROM bat_extraction_queue q JOIN vehicles v "
        "ON v.id = q.vehicle_id WHERE q.reason = 'new_listing' AND q.priority = 100"
    )
    return [r[0] for r in rows]


def test_discovery_catches_up_an_outage_without_missing_or_duplicating(db, services, bat):
    index = Index(bat)
    index.end(4)
    s = configured(services, discovery_max_pages=2, discovery_lookback_hours=24 * 60)
    first = discover(s, pause=lambda _: None)
    assert first["caught_up"] and first["queued"] == 4

    index.end(20)  # an outage: 20 listings end while nothing runs (7 pages behind)
    runs = []
    for _ in range(10):
        runs.append(discover(s, pause=lambda _: None))
        index.end(1)  # BaT keeps ending listings between runs, shifting every page
        if runs[-1]["caught_up"] and len(runs) > 1:
            break
    assert all(r["requests"] <= 2 for r in runs)  # the page budget holds
    assert len(runs) <= 8  # caught up, not stuck
    discover(s, pause=lambda _: None)  # the listing that ended after the last run
    urls = queued_urls(db)
    assert len(urls) == len(set(urls))  # nothing twice
    assert sorted(urls) == sorted(i["url"] for i in index.items)  # nothing missed
    vehicles = db.run(
        "SELECT bat_auction_url, count(*) FROM vehicles GROUP BY 1 HAVING count(*) > 1"
    )
    assert vehicles == []


def test_a_crash_mid_walk_resumes_from_the_checkpoint(db, services, bat):
    index = Index(bat)
    index.end(12)
    s = configured(services, discovery_max_pages=2, discovery_lookback_hours=24 * 60)
    first = discover(s, pause=lambda _: None)
    assert (first["caught_up"], first["next_page"]) == (False, 3)
    bat.set("/auctions/results/?page=3", "<html>maintenance</html>")
    try:
        discover(s, pause=lambda _: None)
    except Exception as exc:
        assert "auctionsCompletedInitialData" in str(exc)
    index.publish()
    for _ in range(3):
        discover(s, pause=lambda _: None)
    assert sorted(queued_urls(db)) == sorted(i["url"] for i in index.items)
    assert bat.hits["/auctions/results/?page=3"] >= 2
    assert bat.hits.get("/auctions/results/?page=5", 0) == 0  # never read past what it needed


SOLD_WRONG = "0b6f6c1e-5c1a-4f4e-9a43-3f1f6d0c9b01"
NO_VIN = "0b6f6c1e-5c1a-4f4e-9a43-3f1f6d0c9b02"
PAGE_READ = "0b6f6c1e-5c1a-4f4e-9a43-3f1f6d0c9b03"
COMPLETE = {
    "mileage": 6000,
    "color": "Black",
    "transmission": "Manual",
    "drivetrain": "RWD",
}


def test_sweep_repairs_a_planted_wrong_outcome_and_queues_a_missing_vin(db, services, bat):
    wrong, novin, extracted = (f"{BASE}wrong-1/", f"{BASE}novin-2/", f"{BASE}extracted-3/")
    # The original system's bug: a reserve-not-met lot stored as sold at its high bid.
    # (VINs are distinct: the original table holds each VIN once.)
    add_vehicle(db, SOLD_WRONG, wrong, sale_status="sold", sale_price=89_500,
                vin="WP0AA29879U760001", **COMPLETE)  # fmt: skip
    add_vehicle(db, NO_VIN, novin, sale_status="sold", sale_price=41_000, vin=None, **COMPLETE)
    # Read from its own listing page by this system: the index cannot overrule that.
    add_vehicle(db, PAGE_READ, extracted, sale_status="sold", sale_price=30_000,
                vin="WP0AA29879U760003", **COMPLETE)  # fmt: skip
    db.run(
        "INSERT INTO auction_events (vehicle_id, source, source_url, outcome, winning_bid, "
        "extracted_at) VALUES (CAST(:v AS uuid), 'bat', :u, 'sold', 30000, now())",
        v=PAGE_READ,
        u=extracted,
    )
    end = int(T0.timestamp())
    items = [
        index_item(wrong, sold_text="Bid to USD $89,500 <span> on 4/20/26 </span>", ended=end),
        index_item(novin, sold_text="Sold for USD $41,000", ended=end),
        index_item(extracted, sold_text="Bid to USD $30,000", ended=end),
        index_item(f"{BASE}unknown-4/", sold_text="Sold for USD $1,000", ended=end),
    ]
    bat.set("/auctions/results/", render_results_page(items))
    lines: list[str] = []
    report = sweep(configured(services), pages=1, pause=lambda _: None, progress=lines.append)

    assert (report.vehicles, report.unknown, report.corrected, report.conflicts) == (3, 1, 1, 1)
    assert report.queued_for_fetch == 1 and len(lines) == 1
    row = vehicle_row(db, SOLD_WRONG)
    assert (row["sale_status"], row["sale_price"], row["high_bid"]) == ("bid_to", None, 89_500)
    audit = db.run(
        "SELECT field, old_value, new_value, action, source_url FROM vehicle_audit "
        "WHERE vehicle_id = CAST(:v AS uuid) ORDER BY id",
        v=SOLD_WRONG,
    )
    assert [
        "sale_status",
        "sold",
        "bid_to",
        "correct",
        "https://bringatrailer.com/auctions/results/",
    ] in audit
    assert [
        "sale_price",
        "89500.00",  # the column is numeric(10,2): the audit keeps the stored value as it was
        None,
        "correct",
        "https://bringatrailer.com/auctions/results/",
    ] in audit
    # The page-read vehicle keeps its values; the disagreement is on record.
    assert vehicle_row(db, PAGE_READ)["sale_status"] == "sold"
    conflicts = db.run(
        "SELECT field FROM vehicle_audit WHERE vehicle_id = CAST(:v AS uuid) AND action = 'conflict'",
        v=PAGE_READ,
    )
    assert ["sale_status"] in conflicts
    # Only the vehicle lacking its VIN goes to a listing fetch.
    jobs = db.run("SELECT vehicle_id::text, reason, priority FROM bat_extraction_queue")
    assert jobs == [[NO_VIN, "index_missing_fields", 75]]

    again = sweep(services, pages=1, pause=lambda _: None)  # idempotent
    assert (again.corrected, again.conflicts, again.queued_for_fetch) == (0, 0, 0)


def test_the_orchestrator_slice_walks_on_and_starts_over(db, services, bat):
    index = Index(bat)
    index.end(7)  # three pages
    s = configured(services, sweep_pages_per_run=2)
    pauses: list[float] = []
    first = sweep_slice(s, pause=pauses.append)
    second = sweep_slice(s, pause=pauses.append)
    assert (first["requests"], first["next_page"]) == (2, 3)
    assert (second["requests"], second["next_page"]) == (1, None)
    assert pauses == [s.settings.request_interval_seconds]  # polite between two fetches
    third = sweep_slice(s, pause=pauses.append)
    assert third["requests"] == 2 and bat.hits["/auctions/results/"] == 2
    assert db.run(
        "SELECT laps, pages_read FROM results_index_checkpoints WHERE name = 'sweep'"
    ) == [[1, 5]]
