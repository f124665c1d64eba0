"""How long a backfill backlog takes to drain with the default settings (pure computation).

Uses the orchestrator's own planning (dispatch_budget + plan_dispatch, Settings defaults):
each run may send one job per request slot of its interval (minus the discovery request and
jobs still in flight), spread one request interval apart, never beyond SQS's 900 s delay.
Compares the drain time of a queued backlog with the original system (~2,880 a day), shows
how the auto-queue's BACKFILL_BATCH_SIZE (20 a run) caps intake below that capacity, and
which batch size would match it.

    .venv/bin/python bench/backlog.py [--quick] [--backlog 100000]
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from _common import emit, parser, say

from bat_backfill.dispatch import dispatch_budget, plan_dispatch
from bat_backfill.models import Job, JobStatus, Priority
from bat_backfill.settings import Settings

ORIGINAL_PER_DAY = 2880  # 20 per 10-minute run, 144 runs a day


def jobs_per_run(
    settings: Settings, *, new_listings_per_run: int = 0, in_flight: int = 0
) -> dict[str, int]:
    """Backfill jobs one orchestrator run dispatches when the queue holds more than enough."""
    other_requests = settings.discovery_max_pages if settings.discovery_enabled else 0
    budget = dispatch_budget(
        interval_seconds=settings.schedule_minutes * 60,
        request_interval_seconds=settings.request_interval_seconds,
        in_flight=in_flight,
        other_requests=other_requests,
    )
    # Enough due jobs to fill the budget: new listings (100) first, then backfills (75).
    jobs = [
        Job(i, f"v{i}", f"https://bringatrailer.com/listing/x-{i}/",
            Priority.NEW_LISTING if i < new_listings_per_run else settings.backfill_priority,
            JobStatus.PENDING, 0, 0)
        for i in range(budget)
    ]  # fmt: skip
    plan = plan_dispatch(
        jobs, request_interval_seconds=settings.request_interval_seconds, first_slot=other_requests
    )
    backfills = sum(1 for d in plan if not d.high)
    return {
        "budget": budget,
        "planned": len(plan),
        "backfills": backfills,
        "last_delay_seconds": plan[-1].delay_seconds if plan else 0,
    }


def drain(settings: Settings, backlog: int, *, new_listings_per_day: int = 0) -> dict[str, Any]:
    runs_per_day = 24 * 60 / settings.schedule_minutes
    per_run = jobs_per_run(
        settings, new_listings_per_run=math.ceil(new_listings_per_day / runs_per_day)
    )
    runs = math.ceil(backlog / per_run["backfills"]) if per_run["backfills"] else math.inf
    hours = runs * settings.schedule_minutes / 60
    return {
        **per_run,
        "runs_per_day": runs_per_day,
        "backfills_per_day": round(per_run["backfills"] * runs_per_day),
        "runs": runs,
        "hours": round(hours, 1),
        "days": round(hours / 24, 2),
    }


INDEX_ITEMS_PER_PAGE = 36  # /auctions/results/ (the listings-filter endpoint gives up to 50)
INDEX_ITEMS_TOTAL = 238_733  # items_total of the results index, April 2026


def index_vs_fetch(settings: Settings, vehicles: int) -> dict[str, Any]:
    """Requests and hours to settle `vehicles` outcomes by listing fetches vs by index pages."""
    interval = settings.request_interval_seconds
    dense = math.ceil(vehicles / INDEX_ITEMS_PER_PAGE)
    whole = math.ceil(max(vehicles, INDEX_ITEMS_TOTAL) / INDEX_ITEMS_PER_PAGE)
    runs_per_day = 24 * 60 / settings.schedule_minutes
    return {
        "fetch_requests": vehicles,
        "fetch_hours": round(vehicles * interval / 3600, 1),
        "index_requests_dense": dense,
        "index_requests_whole": whole,
        "index_hours_dense": round(dense * interval / 3600, 1),
        "index_hours_whole": round(whole * interval / 3600, 1),
        "slice_days_whole": round(whole / settings.sweep_pages_per_run / runs_per_day, 1)
        if settings.sweep_pages_per_run
        else None,
    }


def main() -> None:
    p = parser(__doc__.split("\n", 1)[0], database=False)
    p.add_argument("--backlog", type=int, default=100_000, help="queued backfills to drain")
    args = p.parse_args()
    s = Settings()
    backlog = args.backlog
    say(
        f"defaults: REQUEST_INTERVAL_SECONDS={s.request_interval_seconds:g}, "
        f"SCHEDULE_MINUTES={s.schedule_minutes}, BACKFILL_BATCH_SIZE={s.backfill_batch_size}, "
        f"DISCOVERY_MAX_PAGES={s.discovery_max_pages} (one request a run)"
    )
    base = drain(s, backlog)
    original_days = backlog / ORIGINAL_PER_DAY
    say(
        f"one run: budget {base['budget']} request slots -> {base['planned']} jobs planned "
        f"(last DelaySeconds {base['last_delay_seconds']} s, SQS max 900 s)"
    )
    say(
        f"{backlog:,} queued backfills drain in {base['runs']} runs = {base['hours']} h = "
        f"{base['days']} days ({base['backfills_per_day']:,} a day)"
    )
    say(
        f"original system: {ORIGINAL_PER_DAY:,} a day -> {original_days:.1f} days; "
        f"dispatch is {base['backfills_per_day'] / ORIGINAL_PER_DAY:.1f}x faster"
    )

    # Intake: the auto-queue feeds the queue BACKFILL_BATCH_SIZE vehicles a run.
    intake_per_day = round(s.backfill_batch_size * base["runs_per_day"])
    intake_days = backlog / intake_per_day
    used = intake_per_day / base["backfills_per_day"]
    matching = base["backfills"]
    say(
        f"auto-queue intake: {s.backfill_batch_size} a run x {base['runs_per_day']:g} runs = "
        f"{intake_per_day:,} a day - the original system's rate again: {backlog:,} defective "
        f"vehicles found by the selector take {intake_days:.1f} days just to be queued, and "
        f"the polite fetch budget is {used:.0%} used ({1 - used:.0%} idle)"
    )
    say(
        f"BACKFILL_BATCH_SIZE matching dispatch: {matching} a run (= budget minus the discovery "
        f"request; Settings.dispatch_per_run says {s.dispatch_per_run}); minus the new listings "
        f"expected per run if discovery finds many"
    )

    say("with new listings (priority 100, first in each run's budget):")
    with_new = {}
    for per_day in (0, 300, 1000, 5000):
        r = drain(s, backlog, new_listings_per_day=per_day)
        with_new[per_day] = r
        print(
            f"      {per_day:>5} new/day: {r['backfills']:>3} backfills a run, "
            f"{r['backfills_per_day']:>6,} a day, {backlog:,} in {r['days']:>6} days"
        )

    say("sensitivity (same code, other settings):")
    sensitivity = {}
    for interval, minutes in (
        (1, 10),
        (2, 5),
        (2, 10),
        (2, 15),
        (2, 20),
        (2, 30),
        (3, 10),
        (5, 10),
    ):
        variant = replace(s, request_interval_seconds=float(interval), schedule_minutes=minutes)
        r = drain(variant, backlog)
        key = f"interval={interval}s,schedule={minutes}min"
        sensitivity[key] = r
        capped = " (capped by SQS 900 s DelaySeconds)" if r["planned"] < r["budget"] else ""
        print(
            f"      {key:<28} {r['planned']:>4}/{r['budget']:<4} a run, {r['backfills_per_day']:>6,} "
            f"a day -> {r['days']:>6} days{capped}"
        )

    # Outcomes from BaT's results index instead of one listing fetch each.
    index = index_vs_fetch(s, backlog)
    say(
        f"outcomes of {backlog:,} vehicles: by listing fetches {index['fetch_requests']:,} "
        f"requests = {index['fetch_hours']} h at one request every "
        f"{s.request_interval_seconds:g} s; by the index "
        f"{index['index_requests_dense']:,}-{index['index_requests_whole']:,} requests "
        f"({INDEX_ITEMS_PER_PAGE} items a page; {backlog:,} vehicles packed, or spread over the "
        f"whole index of {INDEX_ITEMS_TOTAL:,}) = {index['index_hours_dense']}-"
        f"{index['index_hours_whole']} h with `bat-backfill sweep`; the orchestrator's slice "
        f"({s.sweep_pages_per_run} pages a run) laps the whole index in "
        f"{index['slice_days_whole']} days"
    )

    emit(
        {
            "benchmark": "backlog",
            "outcomes_by_index": index,
            "quick": args.quick,  # no effect: the computation is instant
            "backlog": backlog,
            "defaults": {
                "request_interval_seconds": s.request_interval_seconds,
                "schedule_minutes": s.schedule_minutes,
                "backfill_batch_size": s.backfill_batch_size,
            },
            "jobs_per_run": base["backfills"],
            "budget_per_run": base["budget"],
            "runs": base["runs"],
            "hours": base["hours"],
            "days": base["days"],
            "dispatch_per_day": base["backfills_per_day"],
            "original_per_day": ORIGINAL_PER_DAY,
            "original_days": round(original_days, 1),
            "speedup_vs_original": round(base["backfills_per_day"] / ORIGINAL_PER_DAY, 1),
            "auto_queue_intake_per_day": intake_per_day,
            "auto_queue_days_to_queue_backlog": round(intake_days, 1),
            "fetch_budget_used_by_auto_queue": round(used, 3),
            "matching_backfill_batch_size": matching,
            "with_new_listings_per_day": {str(k): v["days"] for k, v in with_new.items()},
            "sensitivity_days": {k: v["days"] for k, v in sensitivity.items()},
        }
    )


if __name__ == "__main__":
    main()
