"""Held jobs go back to pending: `bat-backfill release`, and `process` stopped by a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pg8000.native
import pytest
from bat_backfill_tools.cli import main
from bat_backfill_tools.pageserver import PageServer
from bat_backfill_tools.samplepages import PageSpec, render_page

from bat_backfill.contracts import Lease
from bat_backfill.db import queue
from bat_backfill.db.connect import connect
from bat_backfill.models import Job, Outcome

ROOT = Path(__file__).resolve().parents[2]
SLUG = "1995-porsche-993-carrera-7"
URL = f"https://bringatrailer.com/listing/{SLUG}/"
# Generous bounds on waiting for another process; nothing here measures time.
PATIENCE = 60


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def add_job(db: pg8000.native.Connection, n: int = 0) -> int:
    vid = f"00000000-0000-4000-8000-{n:012d}"
    url = f"https://bringatrailer.com/listing/car-{n}/" if n else URL
    db.run("INSERT INTO vehicles (id, bat_auction_url) VALUES (CAST(:v AS uuid), :u)", v=vid, u=url)
    return queue.enqueue(db, vid, url, 75)


def row(db: pg8000.native.Connection, job_id: int) -> dict[str, Any]:
    rows = db.run("SELECT * FROM bat_extraction_queue WHERE job_no = :id", id=job_id)
    return dict(zip([c["name"] for c in db.columns], rows[0], strict=True))


def claim(db: pg8000.native.Connection, worker: str) -> Job:
    job = queue.claim_next(db, worker, 600)
    assert job is not None
    return job


# ------------------------------------------------------------------ bat-backfill release


def test_release_by_job_puts_it_back_and_says_so(db, db_url, capsys):
    job_id = add_job(db)
    held = claim(db, "host:123")
    code, out, err = run(capsys, "release", "--job", str(job_id), "--database-url", db_url)
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    assert f"released job {job_id}" in out and "held by host:123" in out
    assert "its results are refused" in out  # the lease was still live
    after = row(db, job_id)
    assert (after["status"], after["attempts"], after["locked_by"]) == ("pending", 0, None)
    assert after["lease_generation"] == held.lease_generation + 1


def test_release_by_worker_takes_only_that_workers_jobs(db, db_url, capsys):
    mine = [add_job(db, n) for n in (1, 2)]
    other = add_job(db, 3)
    claim(db, "host:1")
    claim(db, "host:1")
    claim(db, "host:2")
    code, out, _ = run(capsys, "release", "--worker", "host:1", "--database-url", db_url)
    assert code == 0 and out.count("released job") == 2
    assert [row(db, j)["status"] for j in mine] == ["pending", "pending"]
    assert row(db, other)["status"] == "processing"


def test_release_by_vehicle(db, db_url, capsys):
    job_id = add_job(db, 5)
    claim(db, "w")
    vid = "00000000-0000-4000-8000-000000000005"
    code, out, _ = run(capsys, "--database-url", db_url, "release", "--vehicle", vid)
    assert code == 0 and f"released job {job_id}" in out
    assert row(db, job_id)["status"] == "pending"


def test_release_with_nothing_processing_changes_nothing(db, db_url, capsys):
    job_id = add_job(db)
    code, out, err = run(capsys, "release", "--job", str(job_id), "--database-url", db_url)
    assert (code, err) == (0, "")
    assert out == f"nothing to release: job {job_id} is pending, not processing\n"
    code, out, _ = run(capsys, "release", "--worker", "nobody", "--database-url", db_url)
    assert code == 0 and out.startswith("nothing to release")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--job", "999"], "no job 999"),
        (["--job", "0"], "--job must be a job number"),
        (["--vehicle", "car-1"], "not a vehicle id"),
        (["--worker", " "], "--worker must name a worker"),
    ],
)
def test_release_refuses_bad_input_with_exit_2(db_url, capsys, argv, says):
    code, out, err = run(capsys, "release", *argv, "--database-url", db_url)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and says in err and "Traceback" not in err


def test_release_needs_exactly_one_of_job_vehicle_or_worker(db_url, capsys):
    for argv in ([], ["--job", "1", "--worker", "w"]):
        with pytest.raises(SystemExit) as done:
            main(["release", *argv, "--database-url", db_url])
        assert done.value.code == 2
    capsys.readouterr()


def test_a_job_completed_while_release_waited_for_it_stays_complete(db_url, capsys):
    """The holder has locked its row to write its results; release waits, then re-checks."""
    holder, watcher = connect(db_url), connect(db_url)
    try:
        job_id = add_job(holder)
        job = claim(holder, "w")
        holder.run("START TRANSACTION")
        queue.assert_lease(holder, Lease(job.id, job.lease_generation))
        done: dict[str, int] = {}
        releaser = threading.Thread(
            target=lambda: done.update(
                code=main(["release", "--job", str(job_id), "--database-url", db_url])
            )
        )
        releaser.start()
        deadline = time.monotonic() + PATIENCE
        while not watcher.run(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        ):
            assert time.monotonic() < deadline, "release never waited for the locked row"
            time.sleep(0.02)
        assert queue.complete(holder, job)
        holder.run("COMMIT")
        releaser.join(PATIENCE)
        assert done == {"code": 1}
        _, err = capsys.readouterr()
        assert f"job {job_id} not released" in err
        assert row(watcher, job_id)["status"] == "complete"
    finally:
        holder.close()
        watcher.close()


# ------------------------------------------------------------------ process, stopped


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_process_stopped_by_a_signal_releases_the_job_it_held(db, db_url, signum):
    """A real `bat-backfill process` in its own process, stopped while BaT is slow to answer."""
    job_id = add_job(db)
    fetching, answer = threading.Event(), threading.Event()

    def hold_the_answer(path: str) -> None:
        fetching.set()
        answer.wait(PATIENCE)

    server = PageServer()
    server.set_listing(SLUG, render_page(PageSpec(url=URL, outcome=Outcome.SOLD, price=1)))
    server.on_request = hold_the_answer
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("HIGH_QUEUE_URL", "BACKFILL_QUEUE_URL", "DLQ_URL", "SNAPSHOT_BUCKET")
    }
    with server:
        env.update(
            DATABASE_URL=db_url,
            BAT_BASE_URL=server.base_url,
            REQUEST_INTERVAL_SECONDS="0.001",
            POWERTOOLS_METRICS_DISABLED="true",
        )
        command = [sys.executable, "-m", "bat_backfill_tools.cli", "process", "--batch-size", "1"]
        child = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            if not fetching.wait(PATIENCE):
                child.kill()
                pytest.fail(f"process never fetched the page: {child.communicate()[1]}")
            held = row(db, job_id)
            assert (held["status"], held["locked_by"]) == (
                "processing",
                f"{os.uname().nodename}:{child.pid}",
            )
            child.send_signal(signum)
            out, err = child.communicate(timeout=PATIENCE)
        finally:
            answer.set()
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert child.returncode == 128 + signum
    assert out == ""
    name = signal.Signals(signum).name
    assert err == (
        f"bat-backfill process: stopped by {name}; released job {job_id}: pending again, "
        "due now, the attempt not counted\n"
    )
    after = row(db, job_id)
    assert (after["status"], after["attempts"], after["locked_by"]) == ("pending", 0, None)
    assert after["lease_generation"] == held["lease_generation"] + 1
    # nothing was written for the vehicle
    assert db.run("SELECT count(*) FROM vehicle_audit") == [[0]]
