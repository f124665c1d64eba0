"""End to end: defective vehicles repaired through orchestrator ticks and the SQS queue processor.

Seeds N vehicles with planted defects (bat_backfill.demo.build_samples) whose listing pages are
served by a local PageServer, then runs the demo's driver (orchestrator ticks, then draining the
high and backfill queues through lambdas.queue_processor) inside the in-process AWS emulation,
with REQUEST_INTERVAL_SECONDS=0.001 so politeness does not hide the processing cost. Reports
vehicles handled per second, and the peak memory of one extract_listing of a large page (in a
fresh process: tracemalloc peak, and the growth of ru_maxrss).

    .venv/bin/python bench/pipeline.py [--quick] [--vehicles 300] [--database-url URL]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import Any

from _common import database, emit, parser, say, verdict

TARGET_PER_S = 25.0
TARGET_MB = 120.0
LARGE_COMMENTS = 4000  # a page near MAX_PAGE_BYTES (5 MB): about the largest one accepted


def settings_env(url: str, base_url: str, vehicles: int) -> dict[str, str]:
    """The demo's local settings (bat_backfill.demo.run_demo), for N vehicles."""
    return {
        "DATABASE_URL": url,
        "BAT_BASE_URL": base_url,
        "REQUEST_INTERVAL_SECONDS": "0.001",
        "BACKOFF_BASE_SECONDS": "0.1",
        "BACKOFF_CAP_SECONDS": "1",
        "MAX_ATTEMPTS": "3",
        "BACKFILL_BATCH_SIZE": str(vehicles),
        "DISCOVERY_ENABLED": "false",
    }


def large_page(slug: str) -> str:
    """A listing with thousands of comments, hundreds of bids and images."""
    from bat_backfill_tools.samplepages import PageSpec, SampleBid, SampleComment, render_page

    base = 1_767_000_000
    comments = tuple(
        SampleComment(
            author=f"member{i % 400}",
            text=f"Comment {i}: " + "Lovely example, the service records look thorough. " * 6,
            at=base + i * 60,
            likes=i % 9,
            reply_to=(i - 3) if i % 5 == 4 else None,
        )
        for i in range(LARGE_COMMENTS)
    )
    bids = tuple(
        SampleBid(bidder=f"bidder{i % 60}", amount=20_000 + i * 500, at=base + i * 300)
        for i in range(300)
    )
    spec = replace(
        PageSpec(),
        url=f"https://bringatrailer.com/listing/{slug}/",
        comments=comments,
        bids=bids,
        price=20_000 + 299 * 500,
        images=250,
        description=tuple("A long paragraph about the car's history. " * 20 for _ in range(30)),
    )
    return render_page(spec)


def _status_kb(field: str) -> int:
    """VmRSS / VmHWM of this process from /proc (kB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so VmHWM measures what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_child() -> None:
    """In a fresh process: warm up on a small page, then extract two large pages (one without,
    one under tracemalloc) and print the figures as JSON."""
    from bat_backfill_tools.localaws import emulated_aws

    from bat_backfill.contracts import ExtractionRequest
    from bat_backfill.extract import extract_listing
    from bat_backfill.services import build_services

    with emulated_aws() as aws_local:
        os.environ.update(aws_local.environment())
        services = build_services()
        extract_listing(
            services, ExtractionRequest("https://bringatrailer.com/listing/bench-small/")
        )
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_before = _status_kb("VmRSS")
        reset = _reset_peak_rss()
        start = time.perf_counter()
        extract_listing(
            services, ExtractionRequest("https://bringatrailer.com/listing/bench-large-1/")
        )
        seconds = time.perf_counter() - start
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hwm = _status_kb("VmHWM")
        tracemalloc.start()
        extract_listing(
            services, ExtractionRequest("https://bringatrailer.com/listing/bench-large-2/")
        )
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        services.close()
    mb = 1 / 1024
    print(
        json.dumps(
            {
                "extract_seconds": round(seconds, 3),
                "rss_before_mb": round(rss_before * mb, 1),
                # the process's all-time peak (imports, moto) hides a smaller extraction peak
                "ru_maxrss_before_mb": round(maxrss_before * mb, 1),
                "ru_maxrss_after_mb": round(maxrss_after * mb, 1),
                "ru_maxrss_delta_mb": round((maxrss_after - maxrss_before) * mb, 1),
                # peak RSS during the extraction alone (peak mark reset just before it)
                "peak_rss_during_mb": round(hwm * mb, 1) if reset else None,
                "peak_rss_growth_mb": round((hwm - rss_before) * mb, 1) if reset else None,
                "tracemalloc_peak_mb": round(peak / 2**20, 1),
            }
        )
    )


def measure_memory(env: dict[str, str], server: Any) -> dict[str, Any]:
    from bat_backfill_tools.samplepages import PageSpec, render_page

    small = render_page(replace(PageSpec(), url="https://bringatrailer.com/listing/bench-small/"))
    server.set_listing("bench-small", small)
    sizes = []
    for slug in ("bench-large-1", "bench-large-2"):
        html = large_page(slug)
        sizes.append(len(html.encode("utf-8")))
        server.set_listing(slug, html)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--memory-child"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["page_bytes"] = sizes[0]
    return figures


def main() -> None:
    p = parser(__doc__.split("\n", 1)[0])
    p.add_argument("--vehicles", type=int, default=None, help="sample vehicles (default 300)")
    p.add_argument("--memory-child", action="store_true", help=argparse_hidden())
    args = p.parse_args()
    if args.memory_child:
        memory_child()
        return

    from bat_backfill_tools import demo, localaws

    from bat_backfill.db.connect import connect

    count = args.vehicles or (48 if args.quick else 300)
    figures: dict[str, Any] = {"benchmark": "pipeline", "quick": args.quick, "vehicles": count,
                               "target_per_s": TARGET_PER_S, "target_mb": TARGET_MB}  # fmt: skip
    with database(args.database_url, "pipeline") as db:
        conn = connect(db.url, application_name="bench-pipeline")
        samples = demo.build_samples(count)
        demo.load_samples(conn, samples, demo.demo_vehicle_ids(conn))
        before = demo.snapshot_vehicles(conn, samples)
        say(f"seeded {count} vehicles with planted defects; rendering their pages")
        server = demo.build_page_server(samples).start()
        env = settings_env(db.url, server.base_url, count)
        saved_env = dict(os.environ)
        os.environ.update(env)

        with localaws.emulated_aws() as aws_local:
            os.environ.update(aws_local.environment())
            say("driving the pipeline (orchestrator ticks + queue processor batches)")
            start = time.perf_counter()
            stats = demo.drive_pipeline(aws_local, demo.Progress(quiet=False))
            seconds = time.perf_counter() - start
        spent = {k: stats[k] for k in ("orchestrator_s", "queue_processor_s", "ticks", "batches")}
        after = demo.snapshot_vehicles(conn, samples)
        totals = demo.summarise(conn, samples, before, after, stats)["totals"]
        jobs = dict(conn.run("SELECT status, count(*) FROM bat_extraction_queue GROUP BY 1"))
        conn.close()

        say("peak memory of one extract_listing of a large page (fresh process)")
        memory = measure_memory(env, server)
        server.stop()
        os.environ.clear()
        os.environ.update(saved_env)

    complete = int(jobs.get("complete", 0))
    changed = sum(1 for s in samples if demo_changed(before[s.vehicle_id], after[s.vehicle_id]))
    figures.update(
        {
            "seconds": round(seconds, 2),
            **{k: round(v, 2) if isinstance(v, float) else v for k, v in spent.items()},
            "idle_s": round(seconds - spent["orchestrator_s"] - spent["queue_processor_s"], 2),
            "jobs": {k: int(v) for k, v in jobs.items()},
            "handled": totals["handled"],
            "handled_per_s": round(totals["handled"] / seconds, 1),
            "completed_per_s": round(complete / seconds, 1),
            "vehicles_changed": changed,
            "changed_per_s": round(changed / seconds, 1),
            "messages": stats.get("messages"),
            "memory": memory,
        }
    )
    say(
        f"{totals['handled']}/{count} vehicles handled ({complete} jobs complete, "
        f"{int(jobs.get('failed', 0))} failed with their reason, {changed} vehicle rows changed) "
        f"in {seconds:.1f} s over {stats['ticks']} ticks"
    )
    say(
        f"time: orchestrator {figures['orchestrator_s']} s ({spent['ticks']} ticks), queue "
        f"processor {figures['queue_processor_s']} s ({spent['batches']} batches), other "
        f"(SQS receive/delete, retry back-off waits) {figures['idle_s']} s"
    )
    say(
        f"vehicles handled per second: {figures['handled_per_s']} (complete jobs "
        f"{figures['completed_per_s']}/s, changed rows {figures['changed_per_s']}/s) - "
        f"{verdict(figures['handled_per_s'], TARGET_PER_S, higher_is_better=True)} "
        f"({TARGET_PER_S:g}/s)"
    )
    growth = memory["peak_rss_growth_mb"]
    worst = max(memory["tracemalloc_peak_mb"], memory["ru_maxrss_delta_mb"], growth or 0.0)
    say(
        f"one extract_listing of a {memory['page_bytes'] / 2**20:.1f} MB page: "
        f"{memory['extract_seconds']} s, tracemalloc peak {memory['tracemalloc_peak_mb']} MB, "
        f"ru_maxrss +{memory['ru_maxrss_delta_mb']} MB ({memory['ru_maxrss_before_mb']} -> "
        f"{memory['ru_maxrss_after_mb']} MB), peak RSS during it {memory['peak_rss_during_mb']} MB "
        f"(+{growth} MB over {memory['rss_before_mb']} MB) - {verdict(worst, TARGET_MB)} "
        f"({TARGET_MB:g} MB)"
    )
    emit(figures)


def demo_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return any(before[k] != after[k] for k in before if k != "id")


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
