"""The user's own database: the original system's tables and rows (../shared/fixtures/legacy),
adopted by `migrate` in place and repaired from the real pages, row by row as its README says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pg8000.native
import pytest
from bat_backfill_tools import localaws
from bat_backfill_tools.pageserver import PageServer

from bat_backfill.db.connect import connect
from bat_backfill.db.migrate import find_migrations, migrate
from bat_backfill.orchestrate import run_orchestrator
from bat_backfill.parsing import parse_listing
from bat_backfill.process import ForceRequest, build_extractors, force_process
from bat_backfill.repair import PAGE_VALUES
from bat_backfill.services import build_services
from tests.seed import SEED_NEXT_BACKFILLS, SEED_PROGRESS_TODAY, SEED_QUEUE

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
LEGACY, PAGES, EXPECTED = SHARED / "legacy", SHARED / "bat" / "pages", SHARED / "bat" / "expected"
TABLES = ("vehicles", "auction_events", "bat_extraction_queue")


def vid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


L1, L2, L3, L4, L5, L6, L7 = (vid(n) for n in range(1, 8))
FERRARI = "https://bringatrailer.com/listing/2001-ferrari-360-spider-89/"


def expected(slug: str) -> dict[str, Any]:
    """The reviewed facts of a real page; transmission and engine as this parser writes them
    (the reviewed file words them its own way)."""
    facts = dict(json.loads((EXPECTED / f"{slug}.json").read_text()))
    listing = parse_listing((PAGES / f"{slug}.html").read_text("utf-8"), url=facts["url"])
    return {**facts, "transmission": listing.transmission, "engine": listing.engine}


def dump(conn: pg8000.native.Connection) -> dict[str, dict[str, dict[str, Any]]]:
    """Every row of the original tables, by id, with the original system's columns only."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for table in TABLES:
        columns = ORIGINAL[table]
        rows = conn.run(f"SELECT {', '.join(columns)} FROM {table}")
        out[table] = {str(r[0]): dict(zip(columns, r, strict=True)) for r in rows}
    return out


def original_columns() -> dict[str, list[str]]:
    """The columns of the three tables as the fixture's schema.sql declares them."""
    found: dict[str, list[str]] = {}
    table = None
    for line in (LEGACY / "schema.sql").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("CREATE TABLE"):
            table = stripped.split()[2]
            found[table] = []
        elif table and stripped.startswith(")"):
            table = None
        elif table and stripped and not stripped.startswith(("--", "UNIQUE", "CHECK", "'")):
            name = stripped.split()[0]
            if name.isidentifier():
                found[table].append(name)
    return found


ORIGINAL: dict[str, list[str]] = original_columns() if LEGACY.is_dir() else {}


@pytest.fixture
def legacy_url(empty_db_url: str) -> Iterator[str]:
    if not (LEGACY.is_dir() and PAGES.is_dir()):
        pytest.skip("../shared/fixtures/legacy or ../shared/fixtures/bat is absent")
    conn = connect(empty_db_url)
    try:
        conn.run((LEGACY / "schema.sql").read_text())
        conn.run((LEGACY / "defects.sql").read_text())
    finally:
        conn.close()
    yield empty_db_url


@pytest.fixture
def real_bat() -> Iterator[PageServer]:
    """The real pages at /listing/<slug>/; any other listing (L5's) is a 404."""
    server = PageServer()
    for page in PAGES.glob("*.html"):
        slug = page.name.removesuffix(".html").removesuffix(".browser-save")
        server.set_listing(slug, page.read_text("utf-8"))
    with server:
        yield server


def run_pipeline(services: Any) -> dict[str, Any]:
    """One orchestrator run (auto-queue, rescue, dispatch), then the queue processor's force
    mode until no job is due."""
    report = run_orchestrator(services).to_dict()
    extractors = build_extractors(services)
    while force_process(services, extractors, ForceRequest(batch_size=10)).jobs:
        pass
    return report


def test_the_legacy_database_is_adopted_and_repaired_in_place(
    legacy_url: str, real_bat: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connect(legacy_url)
    before = dump(conn)
    columns_before = conn.run(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_name = ANY(CAST(:t AS text[])) ORDER BY 1, 2",
        t=list(TABLES),
    )

    # migrate adopts the tables in place, twice without harm, and changes no original value
    assert migrate(conn) == [m.name for m in find_migrations()]
    assert migrate(conn) == []
    assert dump(conn) == before
    columns_after = conn.run(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_name = ANY(CAST(:t AS text[])) ORDER BY 1, 2",
        t=list(TABLES),
    )
    assert set(map(tuple, columns_before)) <= set(map(tuple, columns_after))

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", localaws.REGION)
    from moto import mock_aws

    with mock_aws():
        env = {
            "DATABASE_URL": legacy_url,
            "BAT_BASE_URL": real_bat.base_url,
            "REQUEST_INTERVAL_SECONDS": "0.001",
            "DISCOVERY_ENABLED": "false",
            "POWERTOOLS_METRICS_NAMESPACE": "BatBackfillTest",
            **localaws.create_resources().environment(),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        services = build_services()
        first = run_pipeline(services)
        hits_after_first = dict(real_bat.hits)
        # A second run a moment later fetches nothing: every row is repaired, held for a day,
        # or (L5) failed for good.
        run_pipeline(services)
        assert real_bat.hits == hits_after_first

    after = dump(conn)
    assert first["status"] in ("ok", "partial")
    check_rows(conn, before, after)
    check_readme_table(conn, before, after, real_bat)
    check_seed_statements(conn)
    conn.close()


def check_rows(
    conn: pg8000.native.Connection,
    before: dict[str, dict[str, dict[str, Any]]],
    after: dict[str, dict[str, dict[str, Any]]],
) -> None:
    """Nothing lost: every row is still there; columns bat-backfill does not own keep their
    values; the events and queue rows keep their identity and history."""
    for table in TABLES:
        assert before[table].keys() <= after[table].keys(), f"{table} lost rows"
    repairable = set(PAGE_VALUES) | {"updated_at"}
    for row_id, old in before["vehicles"].items():
        new = after["vehicles"][row_id]
        kept = {c: v for c, v in old.items() if c not in repairable}
        assert {c: new[c] for c in kept} == kept, row_id
    for row_id, old in before["auction_events"].items():
        new = after["auction_events"][row_id]
        for column in ("vehicle_id", "source", "source_url", "raw_data", "created_at"):
            assert new[column] == old[column], (row_id, column)
    for row_id, old in before["bat_extraction_queue"].items():
        new = after["bat_extraction_queue"][row_id]
        for column in ("vehicle_id", "created_at"):
            assert new[column] == old[column], (row_id, column)
        assert new["attempts"] >= old["attempts"]  # history counted on, never reset
    # a listing's event is corrected, never duplicated
    per_listing = conn.run(
        "SELECT vehicle_id::text, bat_listing_url(source_url), count(*) FROM auction_events"
        " GROUP BY 1, 2 HAVING count(*) > 1"
    )
    assert per_listing == []


def vehicle(after: dict[str, dict[str, dict[str, Any]]], row: str) -> dict[str, Any]:
    return after["vehicles"][row]


def job(conn: pg8000.native.Connection, row: str) -> dict[str, Any]:
    rows = conn.run(
        "SELECT status, error_kind, error_message, attempts FROM bat_extraction_queue"
        " WHERE vehicle_id = CAST(:v AS uuid)",
        v=row,
    )
    return dict(zip(("status", "error_kind", "error_message", "attempts"), rows[0], strict=True))


def conflicts(conn: pg8000.native.Connection, row: str, field: str) -> list[Any]:
    rows: list[Any] = conn.run(
        "SELECT new_value FROM vehicle_audit WHERE vehicle_id = CAST(:v AS uuid)"
        " AND field = :f AND action = 'conflict'",
        v=row,
        f=field,
    )
    return rows


UNSOLD_STATUSES = {"bid_to", "not_sold", "unsold"}


def check_readme_table(
    conn: pg8000.native.Connection,
    before: dict[str, dict[str, dict[str, Any]]],
    after: dict[str, dict[str, dict[str, Any]]],
    bat: PageServer,
) -> None:
    ferrari = expected("2001-ferrari-360-spider-89")
    cayman = expected("2009-porsche-cayman-46")
    c4s = expected("2020-porsche-911-carrera-4s-coupe-26.browser-save")
    gt3 = expected("2026-porsche-911-gt3-6")

    # L1 and L6: "Bid to" stored as a sale; both rows of the one listing repaired alike.
    for row in (L1, L6):
        v = vehicle(after, row)
        assert v["sale_price"] is None and v["winning_bid"] is None, row
        assert v["high_bid"] == ferrari["high_bid"] == 53000
        assert v["sale_status"] in UNSOLD_STATUSES and v["auction_outcome"] == "reserve_not_met"
    events = conn.run(
        "SELECT outcome FROM auction_events WHERE bat_listing_url(source_url) = :u", u=FERRARI
    )
    assert len(events) == 2 and all(outcome != "sold" for (outcome,) in events)
    for row in (L1, L6):
        corrected = conn.run(
            "SELECT old_value, new_value FROM vehicle_audit WHERE vehicle_id = CAST(:v AS uuid)"
            " AND field = 'auction_events.outcome' AND action = 'correct'",
            v=row,
        )
        assert corrected == [["sold", "reserve_not_met"]], row
    for column in ("trim", "body_style", "origin_metadata", "description"):
        assert vehicle(after, L1)[column] == vehicle(before, L1)[column]
    # the unique index lets one row hold the VIN: L1 keeps it, L6 records the conflict
    assert vehicle(after, L1)["vin"] == ferrari["vin"]
    assert vehicle(after, L6)["vin"] is None
    assert conflicts(conn, L6, "vin") == [[ferrari["vin"]]]

    # L2: re-extracted; its VIN is held by L5, so it is a conflict and the rest lands.
    v = vehicle(after, L2)
    assert (v["sale_status"], v["auction_outcome"]) == ("sold", "sold")
    assert v["sale_price"] == Decimal(cayman["sale_price"]) == Decimal(42000)
    assert v["mileage"] == cayman["mileage"] == 13000
    assert cayman["transmission"] is not None
    assert (v["color"], v["transmission"], v["drivetrain"]) == (
        cayman["exterior_color"],
        cayman["transmission"],
        cayman["drivetrain"],
    )
    assert v["vin"] is None and conflicts(conn, L2, "vin") == [[cayman["vin"]]]
    assert job(conn, L2)["status"] == "complete"

    # L3: the price in asking_price; sold, sale_price filled, transmission filled, job done.
    v = vehicle(after, L3)
    assert (v["sale_status"], v["sale_price"]) == ("sold", Decimal(137000))
    assert v["transmission"] == c4s["transmission"] is not None
    assert v["asking_price"] == vehicle(before, L3)["asking_price"]
    assert v["auction_end_date"] == vehicle(before, L3)["auction_end_date"]  # same day: kept
    assert job(conn, L3)["status"] == "complete"

    # L4: a running auction: no sale price, the current bid as high bid, a live status.
    v = vehicle(after, L4)
    assert v["sale_price"] is None and v["high_bid"] == gt3["high_bid"] == 300000
    assert v["sale_status"] == "auction_live" and v["auction_outcome"] == "pending"
    assert (v["vin"], v["mileage"]) == (gt3["vin"], gt3["mileage"])

    # L5: page gone: the 404 is the recorded reason, held for good, nothing else changed.
    assert vehicle(after, L5) == {
        **vehicle(before, L5),
        "updated_at": vehicle(after, L5)["updated_at"],
    }
    j = job(conn, L5)
    assert (j["status"], j["error_kind"]) == ("failed", "permanent")
    assert "404" in j["error_message"]
    assert bat.hits.get("/listing/2009-porsche-cayman-12/") == 1
    # still a candidate (its outcome was never read from a page), held until re-queued by hand
    held = conn.run(
        "SELECT held_until = 'infinity' FROM backfill_candidates WHERE vehicle_id = CAST(:v AS uuid)",
        v=L5,
    )
    assert held == [[True]]

    # L7: not a BaT vehicle: never selected, never fetched, unchanged, no job.
    assert vehicle(after, L7) == vehicle(before, L7)
    assert (
        conn.run("SELECT 1 FROM bat_extraction_queue WHERE vehicle_id = CAST(:v AS uuid)", v=L7)
        == []
    )
    assert all("carsandbids" not in path for path in bat.hits)


def check_seed_statements(conn: pg8000.native.Connection) -> None:
    """The seed's monitoring and manual-queue statements, verbatim, on the adopted database;
    the manual statement re-queues L5's permanent failure."""
    conn.run(
        SEED_QUEUE.format(
            vehicle_id=L5, url="https://bringatrailer.com/listing/2009-porsche-cayman-12"
        )
    )
    assert job(conn, L5)["status"] == "pending"
    waiting = conn.run(SEED_NEXT_BACKFILLS)
    names = [c["name"] for c in conn.columns]
    rows = [dict(zip(names, r, strict=True)) for r in waiting]
    assert str(rows[0]["vehicle_id"]) == L5 and rows[0]["make"] == "Porsche"
    progress = conn.run(SEED_PROGRESS_TODAY)
    assert len(progress) == 1 and len(progress[0]) == 4
