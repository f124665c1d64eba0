"""The operator command against a real Postgres: parse, queue, status, history, demo."""

from __future__ import annotations

import json

import pytest
from bat_backfill_tools.cli import main
from bat_backfill_tools.samplepages import PageSpec, render_page

from bat_backfill.db import queue
from bat_backfill.models import LISTING_KEYS, Outcome

URL = "https://bringatrailer.com/listing/1995-porsche-993-carrera-7/"
VID = "11111111-2222-4333-8444-555555555555"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_parse_prints_the_contract_keys(tmp_path, capsys):
    page = tmp_path / "page.html"
    page.write_text(
        render_page(PageSpec(url=URL, outcome=Outcome.BID_TO, price=61_000, buyer=None))
    )
    code, out, _ = run(capsys, "parse", str(page), "--comments")
    data = json.loads(out)
    assert code == 0
    assert list(data) == [*LISTING_KEYS, "comments"]
    assert (data["outcome"], data["sale_price"], data["high_bid"]) == ("bid_to", None, 61_000)
    assert data["comments"] and {"id", "type", "author", "posted_at"} <= set(data["comments"][0])


@pytest.mark.parametrize(
    "content", ["", "<html><body>a parked domain</body></html>", "\x00\x01garbage"]
)
def test_parse_rejects_invalid_pages_with_exit_2_and_one_line(tmp_path, capsys, content):
    page = tmp_path / "bad.html"
    page.write_text(content)
    code, out, err = run(capsys, "parse", str(page))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "bat-backfill parse" in err


def test_parse_never_fetches_other_sites(capsys):
    code, out, err = run(capsys, "parse", "https://example.com/listing/x/")
    assert (code, out) == (2, "")
    assert "not a BaT listing URL" in err


def test_migrate_is_idempotent(db_url, capsys):
    code, out, _ = run(capsys, "migrate", "--database-url", db_url)
    assert code == 0 and out.startswith("applied 0 migration(s)")


def test_queue_by_url_and_by_id(db, db_url, capsys):
    code, out, _ = run(capsys, "queue", URL, "--priority", "100", "--database-url", db_url)
    assert code == 0 and "priority 100" in out
    vid = db.run("SELECT id::text FROM vehicles WHERE bat_auction_url = :u", u=URL)[0][0]
    code, _, _ = run(capsys, "queue", vid, "--database-url", db_url)  # never lowers priority
    assert code == 0
    assert db.run("SELECT priority, status FROM bat_extraction_queue") == [[100, "pending"]]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["queue", "https://example.com/listing/x/"], "not a BaT listing URL"),
        (["queue", "not-a-uuid"], "not a vehicle id"),
        (["queue", VID], "no vehicle"),
        (["queue", URL, "--priority", "0"], "--priority"),
        (["history", "nope"], "not a vehicle id"),
        (["process", "--batch-size", "0"], "--batch-size"),
        (["process", "--max-attempts", "0"], "--max-attempts"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(db, db_url, capsys, argv, message):
    code, _, err = run(capsys, *argv, "--database-url", db_url)
    assert code == 2 and message in err
    assert db.run("SELECT count(*) FROM bat_extraction_queue")[0][0] == 0


def test_missing_database_names_the_setting(capsys, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir("/")
    code, _, err = run(capsys, "status")
    assert code == 2 and "--database-url" in err and "DATABASE_URL" in err


def test_status_shows_the_seed_monitoring_queries(db, db_url, capsys):
    db.run(
        "INSERT INTO vehicles (id, year, make, model, bat_auction_url) VALUES "
        "(CAST(:id AS uuid), 1995, 'Porsche', '993 Carrera', :u)",
        id=VID,
        u=URL,
    )
    db.run(
        "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, priority, status) "
        "VALUES (CAST(:id AS uuid), :u, 75, 'pending')",
        id=VID,
        u=URL,
    )
    db.run(
        "INSERT INTO orchestrator_runs (started_at, finished_at, status, steps) VALUES "
        '(now(), now(), \'ok\', \'{"dispatch": {"ok": true, "dispatched": 1}}\')'
    )
    code, out, _ = run(capsys, "status", "--json", "--database-url", db_url)
    data = json.loads(out)
    assert code == 0
    assert [(r["year"], r["make"], r["bat_auction_url"]) for r in data["pending_backfills"]] == [
        (1995, "Porsche", URL)
    ]
    assert data["backfill_progress_today"] == {
        "pending": 1,
        "processing": 0,
        "complete": 0,
        "failed": 0,
    }
    assert data["queue_by_priority"] == [{"priority": 75, "status": "pending", "jobs": 1}]
    assert data["recent_runs"][0]["status"] == "ok"
    code, out, _ = run(capsys, "status", "--database-url", db_url)
    assert "Pending backfills" in out and "993 Carrera" in out and "dispatch:ok" in out
    assert "Being processed" not in out


def test_status_names_the_worker_holding_each_job(db, db_url, capsys):
    db.run(
        "INSERT INTO vehicles (id, bat_auction_url) VALUES (CAST(:id AS uuid), :u)", id=VID, u=URL
    )
    job_id = queue.enqueue(db, VID, URL, 75)
    held = queue.claim_next(db, "host-7:4242", 600)
    assert held is not None and held.id == job_id
    code, out, _ = run(capsys, "status", "--json", "--database-url", db_url)
    assert code == 0
    (row,) = json.loads(out)["processing"]
    assert (row["id"], row["locked_by"], row["bat_url"]) == (job_id, "host-7:4242", URL)
    assert row["lease_ends"] is not None
    code, out, _ = run(capsys, "status", "--database-url", db_url)
    being_processed = out.split("Being processed", 1)[1].split("\n\n", 1)[0]
    assert "host-7:4242" in being_processed and str(job_id) in being_processed


def test_history_lists_every_audited_change(db, db_url, capsys):
    db.run(
        "INSERT INTO vehicles (id, bat_auction_url, sale_status, sale_price) VALUES "
        "(CAST(:id AS uuid), :u, 'sold', 61000)",
        id=VID,
        u=URL,
    )
    db.run(
        "INSERT INTO vehicle_audit (vehicle_id, field, old_value, new_value, action, "
        "source_url) VALUES (CAST(:id AS uuid), 'sale_price', '61000', NULL, 'correct', :u)",
        id=VID,
        u=URL,
    )
    code, out, _ = run(capsys, "history", VID, "--json", "--database-url", db_url)
    rows = json.loads(out)
    assert code == 0
    assert [(r["field"], r["action"], r["old_value"], r["new_value"]) for r in rows] == [
        ("sale_price", "correct", "61000", None)
    ]
    code, out, _ = run(capsys, "history", VID, "--database-url", db_url)
    assert "sale_price" in out and "correct" in out


def test_demo_repairs_every_planted_defect(db, db_url, capsys, monkeypatch):
    from bat_backfill_tools.demo import MAX_VEHICLES, build_samples

    for key in ("HIGH_QUEUE_URL", "BACKFILL_QUEUE_URL", "DLQ_URL", "SNAPSHOT_BUCKET"):
        monkeypatch.delenv(key, raising=False)
    # One vehicle of each kind of defect the demo plants.
    kinds = len({s.defect for s in build_samples(MAX_VEHICLES)})
    samples = {s.defect: s for s in build_samples(kinds)}
    assert len(samples) == kinds
    code, out, _ = run(capsys, "demo", "--database-url", db_url, "--vehicles", str(kinds),
                       "--json")  # fmt: skip
    summary = json.loads(out.strip().splitlines()[-1])
    totals = summary["totals"]
    assert code == 0
    assert totals["vehicles"] == totals["handled"] == kinds
    by_defect = {v["defect"]: v for v in summary["vehicles"]}
    # Outcomes in the original table's own vocabulary.
    unsold = by_defect["unsold lot stored as sold"]
    assert (unsold["outcome_before"], unsold["outcome_after"]) == ("sold", "bid_to")
    assert unsold["price_after"] is None
    assert by_defect["live auction stored as sold"]["outcome_after"] == "auction_live"
    assert by_defect["ended without bids, stored as sold"]["outcome_after"] == "not_sold"
    assert by_defect["sold after reserve not met, stored as unsold"]["outcome_after"] == "sold"
    # The seed's example: its 'sold' event (no winner, another URL spelling) is corrected in
    # place, not joined by a second one.
    rnm = samples["unsold lot stored as sold"]
    events = db.run("SELECT source_url, outcome, extracted_at IS NOT NULL FROM auction_events "
                    "WHERE vehicle_id = CAST(:v AS uuid)", v=rnm.vehicle_id)  # fmt: skip
    assert rnm.event is not None
    assert events == [[rnm.event[1], "reserve_not_met", True]]
    # A vehicle stored under an old spelling of its URL is repaired like any other.
    bare = by_defect["missing VIN, mileage, colour, transmission, drivetrain"]
    assert {"vin", "mileage", "color", "transmission", "drivetrain"} <= set(bare["filled"])
    assert by_defect["stored VIN differs from the page"]["conflicts"] == ["vin"]
    relisted = by_defect["VIN already held by the car's earlier listing"]
    assert (relisted["job"], relisted["conflicts"], relisted["absent"]) == ("complete", ["vin"], [])
    assert {"sale_status", "auction_outcome"} <= set(relisted["filled"])  # the rest landed
    assert by_defect["drivetrain missing and never stated by the page"]["absent"] == ["drivetrain"]
    ended = by_defect["no auction outcome recorded"]
    assert "auction_end_date" not in ended["corrected"]  # an ISO text of the page's day
    assert by_defect["listing page gone (404)"]["job"] == "failed"
    assert by_defect["BaT answers 429 once"]["job"] == "complete"
    # A second run replaces the sample and ends the same way.
    code, out, _ = run(capsys, "demo", "--database-url", db_url, "--vehicles", str(kinds),
                       "--json")  # fmt: skip
    assert json.loads(out.strip().splitlines()[-1])["totals"]["handled"] == kinds


def test_settings_come_from_flags_then_environment_then_config_file(tmp_path, monkeypatch):
    import argparse

    from bat_backfill_tools.cli import resolve_settings

    config = tmp_path / "bat-backfill.toml"
    config.write_text(
        "[bat-backfill]\nrequest_interval_seconds = 3\nmax_attempts = 7\n"
        'database_url = "postgresql://file/db"\n'
    )
    monkeypatch.setenv("MAX_ATTEMPTS", "4")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    args = argparse.Namespace(config=str(config), database_url="postgresql://flag/db")
    settings = resolve_settings(args)
    assert settings.request_interval_seconds == 3  # only the file says it
    assert settings.max_attempts == 4  # the environment beats the file
    assert settings.database_url == "postgresql://flag/db"  # the flag beats both


def test_a_bad_config_file_names_the_setting(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[bat-backfill]\nrequest_intervall = 3\n")
    code, _, err = run(capsys, "--config", str(config), "status")
    assert code == 2 and "unknown setting 'request_intervall'" in err


def test_demo_stop_without_a_demo_database_is_harmless(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "demo", "--stop")
    assert code == 0 and "no demo database" in err


def test_parse_results_prints_items_and_refuses_what_is_not_an_index(tmp_path, capsys):
    from bat_backfill_tools.samplepages import index_item, render_results_page

    page = tmp_path / "results.html"
    url = "https://bringatrailer.com/listing/1999-bmw-m3-12/"
    page.write_text(render_results_page([index_item(url, sold_text="Bid to USD $53,000")]))
    code, out, _ = run(capsys, "parse-results", str(page), "--json")
    assert code == 0
    assert [(i["url"], i["outcome"], i["price"]) for i in json.loads(out)["items"]] == [
        (url, "bid_to", 53_000)
    ]
    code, out, _ = run(capsys, "parse-results", str(page))
    assert code == 0 and "bid_to" in out and "USD 53,000" in out
    listing = tmp_path / "listing.html"
    listing.write_text(render_page(PageSpec(url=URL, outcome=Outcome.SOLD, price=1_000)))
    for target, message in (
        (str(listing), "no auctionsCompletedInitialData"),
        (str(tmp_path / "missing.html"), "no such file"),
        ("https://example.com/auctions/results/", "not a page of BaT's results index"),
    ):
        code, out, err = run(capsys, "parse-results", target)
        assert (code, out) == (2, "")
        assert err.count("\n") == 1 and message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pages", "0"], "--pages must be at least 1"),
        (["--model", "911"], "--model needs --make"),
        (["--start-page", "0"], "--start-page must be at least 1"),
    ],
)
def test_sweep_refuses_bad_options(db_url, capsys, argv, message):
    code, out, err = run(capsys, "sweep", *argv, "--database-url", db_url)
    assert (code, out) == (2, "")
    assert message in err
