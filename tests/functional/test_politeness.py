"""The global request budget and the fetch deadline, against a local page server."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace

import httpx
import pytest
from bat_backfill_tools.pageserver import PageServer
from bat_backfill_tools.samplepages import render_page

from bat_backfill.db import Database
from bat_backfill.errors import FetchError
from bat_backfill.politeness import fetch_bat_page
from bat_backfill.settings import Settings
from tests.functional.support import CAYMAN, CAYMAN_PAGE

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
