"""The global request budget and the fetch deadline, against a local page server."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from bat_backfill_tools.pageserver import PageServer
from bat_backfill_tools.samplepages import PageSpec, index_item, render_page, render_results_page

from bat_backfill.db import Database
from bat_backfill.errors import FetchError
from bat_backfill.models import Outcome
from bat_backfill.politeness import fetch_bat_page
from bat_backfill.settings import Settings
from tests.functional.support import CAYMAN, CAYMAN_PAGE, add_job, add_vehicle

INTERVAL = 0.2
# Arrival times are taken in the server thread; loopback and thread scheduling add a few ms.
JITTER = 0.03


def test_concurrent_fetchers_never_hit_bat_closer_than_the_interval(db_url):
    arrivals: list[float] = []
    server = PageServer()
    server.set_listing("2009-porsche-cayman-46", render_page(CAYMAN_PAGE))
    server.on_request = lambda path: arrivals.append(time.monotonic())
    settings = Settings(bat_base_url="", request_interval_seconds=INTERVAL)
    errors: list[BaseException] = []

    def worker() -> None:
        db = Database(db_url)
        try:
            with httpx.Client() as client:
                for _ in range(3):
                    fetch_bat_page(
                        db, replace(settings, bat_base_url=server.base_url), client, CAYMAN
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            db.close()

    with server:
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert len(arrivals) == 12
    gaps = [b - a for a, b in zip(sorted(arrivals), sorted(arrivals)[1:], strict=False)]
    assert min(gaps) >= INTERVAL - JITTER, gaps


def test_a_throttled_answer_slows_the_budget_for_everyone(db, db_url):
    from bat_backfill_tools.pageserver import Reply

    from bat_backfill.db.budget import budget_state

    server = PageServer({"/listing/2009-porsche-cayman-46/": Reply(429, b"slow down")})
    settings = Settings(request_interval_seconds=0.01)
    with server, httpx.Client() as client:
        settings = replace(settings, bat_base_url=server.base_url)
        with pytest.raises(FetchError) as caught:
            fetch_bat_page(Database(db_url), settings, client, CAYMAN)
    assert caught.value.throttled and caught.value.retryable
    state = budget_state(db, recovery_seconds=300)
    assert state["factor"] > 1.9 and state["throttles"] == 1


def _drip_server(delay: float) -> tuple[socket.socket, threading.Event]:
    """Answers 200 and then one byte of body every `delay` seconds, forever."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n"
        )
        while not stop.is_set():
            try:
                conn.sendall(b"x")
            except OSError:
                return
            time.sleep(delay)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener, stop


def test_a_server_dripping_bytes_ends_within_the_deadline_as_retryable(db_url):
    listener, stop = _drip_server(0.2)
    host, port = listener.getsockname()[:2]
    settings = Settings(
        bat_base_url=f"http://{host}:{port}", request_interval_seconds=0.01,
        fetch_timeout_seconds=1.0,
    )  # fmt: skip
    started = time.monotonic()
    try:
        with httpx.Client() as client, pytest.raises(FetchError) as caught:
            fetch_bat_page(Database(db_url), settings, client, CAYMAN)
    finally:
        stop.set()
        listener.close()
    elapsed = time.monotonic() - started
    assert caught.value.retryable and "timeout" in str(caught.value)
    # the deadline, plus at most one stalled read (a quarter of it)
    assert elapsed < settings.fetch_timeout_seconds * 1.25 + 0.5


def test_a_job_past_its_deadline_is_failed_as_retryable_not_left_processing(db, services):
    from bat_backfill.process import ForceRequest, InProcessExtractors, force_process
    from tests.functional.support import CAYMAN_ID, add_job, add_vehicle, job_row

    add_vehicle(db, CAYMAN_ID, CAYMAN)
    job_id = add_job(db, CAYMAN_ID, CAYMAN)
    services.settings = replace(services.settings, job_deadline_seconds=1e-9)
    report = force_process(services, InProcessExtractors(services), ForceRequest(batch_size=1))
    assert [(r.job_id, r.status) for r in report.jobs] == [(job_id, "retry")]
    row = job_row(db, job_id)
    assert row["status"] == "pending" and row["error_kind"] == "retryable"
    assert "deadline" in row["error_message"] and row["locked_by"] is None


# Separate processes are scheduled less evenly than threads: a process that booked its slot can
# be a few tens of ms late to send, bringing its request closer to the next one. Without the
# budget the gaps would be 0 ms.
PROCESS_INTERVAL = 0.25
PROCESS_JITTER = 0.08
ROOT = Path(__file__).resolve().parents[2]


def test_process_runs_and_a_tick_at_once_never_hit_bat_closer_than_the_interval(db, db_url):
    """Three `bat-backfill process` runs and a `tick` (discovery and the outcome sweep read the
    results index), each its own operating-system process, against one local BaT."""
    arrivals: list[tuple[float, str]] = []
    server = PageServer()
    server.on_request = lambda path: arrivals.append((time.monotonic(), path))
    jobs = []
    for n in range(1, 10):
        url = f"https://bringatrailer.com/listing/car-{n}/"
        server.set_listing(
            f"car-{n}", render_page(PageSpec(url=url, outcome=Outcome.SOLD, price=n))
        )
        vehicle_id = f"00000000-0000-4000-8000-{n:012d}"
        add_vehicle(db, vehicle_id, url)
        jobs.append(add_job(db, vehicle_id, url))
    server.set("/auctions/results/", render_results_page(
        [index_item("https://bringatrailer.com/listing/car-1/", sold_text="Sold for USD $1")]))  # fmt: skip
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("HIGH_QUEUE_URL", "BACKFILL_QUEUE_URL", "DLQ_URL", "SNAPSHOT_BUCKET")
    }
    commands = [["process", "--batch-size", "3"]] * 3 + [["tick"]]
    with server:
        env.update(
            DATABASE_URL=db_url,
            BAT_BASE_URL=server.base_url,
            REQUEST_INTERVAL_SECONDS=str(PROCESS_INTERVAL),
            POWERTOOLS_METRICS_DISABLED="true",
        )
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "bat_backfill_tools.cli", *argv],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for argv in commands
        ]
        results = [child.communicate(timeout=120) for child in children]
    codes = [child.returncode for child in children]
    assert codes[:3] == [0, 0, 0], results
    assert codes[3] in (0, 1), results  # the tick's sweep may call its run partial
    statuses = db.run("SELECT status FROM bat_extraction_queue WHERE job_no = ANY(:j)", j=jobs)
    assert [r[0] for r in statuses] == ["complete"] * 9
    paths = [path for _, path in arrivals]
    assert sum(p.startswith("/listing/") for p in paths) == 9
    assert any(p.startswith("/auctions/results/") for p in paths), paths  # the tick fetched too
    ordered = sorted(arrivals)
    gaps = [(b[0] - a[0], b[1]) for a, b in itertools.pairwise(ordered)]
    assert min(gap for gap, _ in gaps) >= PROCESS_INTERVAL - PROCESS_JITTER, gaps
