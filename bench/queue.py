"""Job queue throughput: 8 worker processes looping claim_next + complete until the queue is empty.

Loads 100,000 pending jobs (vehicles + queue rows), starts the workers together (each its own
process and connection, so the GIL is out of the picture), and reports claims+completions per
second, per-call latencies, and whether any job was claimed twice: every claimed id is recorded
per worker, and the table is checked afterwards (every row complete exactly once, one attempt,
lease_generation 1).

    .venv/bin/python bench/queue.py [--quick] [--workers 8] [--database-url URL]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file shares its name with the standard library's `queue`, which multiprocessing imports:
# take the bench folder off the front of sys.path so that import finds the real module.
_BENCH = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _BENCH:
    sys.path.pop(0)
sys.path.append(str(_BENCH))

import multiprocessing  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

from _common import database, emit, parser, percentile, say, verdict  # noqa: E402

from bat_backfill.db import queue as jobqueue  # noqa: E402
from bat_backfill.db.connect import connect  # noqa: E402
from bat_backfill.db.queries import query  # noqa: E402

TARGET_OPS_PER_S = 2000.0
LEASE_SECONDS = 600

LOAD = """
WITH v AS (
    INSERT INTO vehicles (id, year, make, model, bat_auction_url, created_at)
    SELECT md5('bench-queue-' || g)::uuid, 1960 + g % 60, 'Porsche', '911',
           'https://bringatrailer.com/listing/bench-queue-' || g || '/',
           now() - make_interval(secs => g)
      FROM generate_series(1, CAST(:n AS int)) AS g
    RETURNING id, bat_auction_url, created_at
)
INSERT INTO bat_extraction_queue (vehicle_id, bat_url, priority, status, reason, created_at,
                                  next_attempt_at)
SELECT id, bat_auction_url,
       CASE WHEN random() < 0.1 THEN 100 ELSE 75 END, 'pending', 'bench',
       created_at, now() - interval '1 minute'
  FROM v
"""


class PreparedQueue:
    """The package's claim_next / complete_job SQL run as prepared statements (--prepared):
    what the queue would do if bat_backfill.db.queue prepared its statements once per
    connection instead of pg8000 re-converting the :param SQL text on every call."""

    def __init__(self, conn: Any) -> None:
        self.claim = conn.prepare(query("claim_next"))
        self.finish = conn.prepare(query("complete_job"))

    def claim_next(self, name: str) -> tuple[int, int] | None:
        rows = self.claim.run(worker=name, lease_seconds=LEASE_SECONDS, now=None)
        if not rows:
            return None
        names = [c["name"] for c in self.claim.columns]
        row = dict(zip(names, rows[0], strict=True))
        return int(row["id"]), int(row["lease_generation"])

    def complete(self, job: tuple[int, int]) -> bool:
        return bool(self.finish.run(job_id=job[0], lease_generation=job[1], now=None))


class PackageQueue:
    """bat_backfill.db.queue.claim_next / complete, as the queue processor calls them."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def claim_next(self, name: str) -> Any:
        return jobqueue.claim_next(self.conn, name, LEASE_SECONDS)

    def complete(self, job: Any) -> bool:
        return jobqueue.complete(self.conn, job)


def job_id(job: Any) -> int:
    return job[0] if isinstance(job, tuple) else int(job.id)


def worker(index: int, url: str, prepared: bool, start: Any, results: Any) -> None:
    """Claim and complete until claim_next finds nothing; send back ids and latencies."""
    name = f"bench-worker-{index}"
    conn = connect(url, application_name=name)
    api = PreparedQueue(conn) if prepared else PackageQueue(conn)
    claimed: list[int] = []
    claim_ms: list[float] = []
    complete_ms: list[float] = []
    done_at: list[float] = []
    lost = 0
    start.wait()
    began = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        job = api.claim_next(name)
        t1 = time.perf_counter()
        if job is None:
            break
        claimed.append(job_id(job))
        if not api.complete(job):
            lost += 1
        t2 = time.perf_counter()
        claim_ms.append((t1 - t0) * 1000)
        complete_ms.append((t2 - t1) * 1000)
        done_at.append(t2)  # CLOCK_MONOTONIC: comparable between the processes
    finished = time.perf_counter()
    conn.close()
    results.put(
        {
            "worker": index,
            "claimed": claimed,
            "lost": lost,
            "claim_ms": claim_ms,
            "complete_ms": complete_ms,
            "done_at": done_at,
            "seconds": finished - began,
            "began": began,
            "finished": finished,
        }
    )


def check_table(url: str) -> dict[str, int]:
    conn = connect(url)
    row = conn.run(
        """
        SELECT count(*),
               count(*) FILTER (WHERE status = 'complete'),
               count(*) FILTER (WHERE status <> 'complete'),
               count(*) FILTER (WHERE lease_generation <> 1),
               count(*) FILTER (WHERE attempts <> 1),
               count(*) FILTER (WHERE completed_at IS NULL),
               (SELECT autovacuum_count FROM pg_stat_user_tables
                 WHERE relname = 'bat_extraction_queue')
          FROM bat_extraction_queue
        """
    )[0]
    conn.close()
    keys = ("rows", "complete", "not_complete", "lease_generation_not_1", "attempts_not_1",
            "completed_at_missing", "autovacuums_during_run")  # fmt: skip
    return dict(zip(keys, (int(v or 0) for v in row), strict=True))


def rate_by_tenth(reports: list[dict[str, Any]], began: float, wall: float) -> list[int]:
    """Jobs completed per second in each tenth of the run: does throughput hold up?"""
    buckets = [0] * 10
    for r in reports:
        for t in r["done_at"]:
            buckets[min(9, int((t - began) / wall * 10))] += 1
    return [round(n / (wall / 10)) for n in buckets]


def main() -> None:
    p = parser(__doc__.split("\n", 1)[0])
    p.add_argument("--workers", type=int, default=8)
    p.add_argument(
        "--prepared",
        action="store_true",
        help="run the same SQL as prepared statements (measures the suggested fix)",
    )
    args = p.parse_args()
    jobs = 10_000 if args.quick else 100_000
    figures: dict[str, Any] = {
        "benchmark": "queue",
        "quick": args.quick,
        "jobs": jobs,
        "workers": args.workers,
        "mode": "prepared" if args.prepared else "package",
        "target_ops_per_s": TARGET_OPS_PER_S,
    }
    with database(args.database_url, "queue") as db:
        conn = connect(db.url, application_name="bench-queue")
        say(f"loading {jobs:,} vehicles and pending jobs")
        t0 = time.perf_counter()
        conn.run(LOAD, n=jobs)
        conn.run("VACUUM ANALYZE bat_extraction_queue")
        conn.run("VACUUM ANALYZE vehicles")
        figures["load_s"] = round(time.perf_counter() - t0, 2)
        conn.close()
        say(f"  loaded in {figures['load_s']} s")

        ctx = multiprocessing.get_context("fork")
        start = ctx.Barrier(args.workers + 1)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=worker, args=(i, db.url, args.prepared, start, results), daemon=True)
            for i in range(args.workers)
        ]
        for proc in procs:
            proc.start()
        mode = "prepared statements" if args.prepared else "bat_backfill.db.queue calls"
        say(f"{args.workers} worker processes ({mode}); go")
        start.wait()
        began = time.perf_counter()
        reports = [results.get() for _ in procs]
        for proc in procs:
            proc.join()
        wall = max(r["finished"] for r in reports) - began
        say(f"  queue drained in {wall:.2f} s")
        table = check_table(db.url)

    ids = [job_id for r in reports for job_id in r["claimed"]]
    per_id = Counter(ids)
    duplicates = {job_id: n for job_id, n in per_id.items() if n > 1}
    claims = len(ids)
    completions = claims - sum(r["lost"] for r in reports)
    claim_ms = [v for r in reports for v in r["claim_ms"]]
    complete_ms = [v for r in reports for v in r["complete_ms"]]
    ops_per_s = (claims + completions) / wall
    figures.update(
        {
            "seconds": round(wall, 2),
            "claims": claims,
            "completions": completions,
            "ops_per_s": round(ops_per_s, 1),
            "jobs_per_s": round(completions / wall, 1),
            "claim_ms": {
                "median": round(percentile(claim_ms, 50), 2),
                "p95": round(percentile(claim_ms, 95), 2),
                "p99": round(percentile(claim_ms, 99), 2),
            },
            "complete_ms": {
                "median": round(percentile(complete_ms, 50), 2),
                "p95": round(percentile(complete_ms, 95), 2),
                "p99": round(percentile(complete_ms, 99), 2),
            },
            "jobs_per_s_by_tenth": rate_by_tenth(reports, began, wall),
            "per_worker_claims": [
                len(r["claimed"]) for r in sorted(reports, key=lambda r: r["worker"])
            ],
            "duplicate_claims": len(duplicates),
            "duplicate_examples": dict(list(duplicates.items())[:5]),
            "distinct_claimed": len(per_id),
            "table": table,
        }
    )
    say(f"claims {claims:,}, completions {completions:,}, distinct jobs {len(per_id):,}")
    say(
        f"claims+completions per second: {ops_per_s:,.0f} ({completions / wall:,.0f} jobs/s) "
        f"- {verdict(ops_per_s, TARGET_OPS_PER_S, higher_is_better=True)} "
        f"({TARGET_OPS_PER_S:,.0f}/s)"
    )
    say(
        f"claim_next median {figures['claim_ms']['median']} ms / p95 {figures['claim_ms']['p95']} "
        f"ms; complete median {figures['complete_ms']['median']} ms / p95 "
        f"{figures['complete_ms']['p95']} ms"
    )
    say(f"jobs/s in each tenth of the run: {figures['jobs_per_s_by_tenth']}")
    say(f"per worker: {figures['per_worker_claims']}")
    say(f"duplicate claims (same id claimed by two calls): {len(duplicates)}")
    say(f"table check: {table}")
    emit(figures)


if __name__ == "__main__":
    main()
