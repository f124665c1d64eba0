"""One orchestrator run: queue backfills, rescue leases, discover, dispatch, record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from . import aws, discovery
from .contracts import JobMessage
from .db import queue as jobqueue
from .db import runs
from .dispatch import dispatch_budget, plan_dispatch
from .errors import BatBackfillError
from .services import Services

log = logging.getLogger(__name__)

# A run without SQS reports how many jobs are due, counting up to this many.
MAX_REPORTED_DUE = 1000


@dataclass
class RunReport:
    run_id: int | None = None
    status: str = "ok"
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    queue_depths: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _step(
    report: RunReport, name: str, services: Services, fn: Callable[[], dict[str, Any]]
) -> None:
    """Run one step; a failure is recorded and the other steps still run."""
    try:
        report.steps[name] = {"ok": True, **fn()}
    except Exception as exc:
        if isinstance(exc, BatBackfillError):
            # expected (BaT unreachable, a bad page): one line, not a traceback every run
            log.warning("orchestrator step %s failed: %s", name, exc)
        else:
            log.exception("orchestrator step %s failed", name)
        services.db.reset()
        report.steps[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:500]}"}
        report.status = "partial"


def auto_queue(services: Services) -> dict[str, Any]:
    s = services.settings
    queued, skipped = runs.auto_queue_backfills(
        services.db.connection(), s.backfill_batch_size, s.backfill_priority
    )
    return {"queued": queued, "skipped": skipped}


def rescue(services: Services) -> dict[str, Any]:
    return {"rescued": jobqueue.rescue_expired(services.db.connection())}


def discover(services: Services) -> dict[str, Any]:
    return discovery.discover(services)


def sweep(services: Services) -> dict[str, Any]:
    return discovery.sweep_slice(services)


def dispatch(services: Services, *, other_requests: int) -> dict[str, Any]:
    """Send the due jobs the budget allows to SQS; a job is marked dispatched only once SQS
    has accepted its message, so a failed or refused send leaves it for the next run."""
    s = services.settings
    sqs = services.sqs
    conn = services.db.connection()
    interval = s.schedule_minutes * 60
    redispatch_after = interval * 2
    if sqs is None or not (s.high_queue_url and s.backfill_queue_url):
        # Nothing can be sent, so nothing is marked: say how much is waiting.
        due = jobqueue.select_for_dispatch(conn, MAX_REPORTED_DUE, redispatch_after)
        return {
            "dispatched": 0,
            "due": len(due),
            "note": "no SQS queues configured: nothing sent or marked "
            "(bat-backfill process runs due jobs here)",
        }
    with runs.dispatch_lock(conn) as held:
        if not held:
            # Another run is dispatching right now; sending more would break the rate.
            return {"dispatched": 0, "note": "another run holds the dispatch lock"}
        in_flight = runs.jobs_in_flight(conn, interval)
        budget = dispatch_budget(
            interval_seconds=interval,
            request_interval_seconds=s.request_interval_seconds,
            in_flight=in_flight,
            other_requests=other_requests,
        )
        # Selected without marking; the advisory lock keeps other dispatchers off them.
        jobs = jobqueue.select_for_dispatch(conn, budget, redispatch_after) if budget else []
        plan = plan_dispatch(
            jobs, request_interval_seconds=s.request_interval_seconds, first_slot=other_requests
        )
        sent = {True: 0, False: 0}
        marked = 0
        for high, url in ((True, s.high_queue_url), (False, s.backfill_queue_url)):
            batch = [d for d in plan if d.high is high]
            for start in range(0, len(batch), aws.SQS_BATCH_MAX):
                chunk = batch[start : start + aws.SQS_BATCH_MAX]
                accepted = set(
                    aws.send_job_batch(
                        sqs,
                        url,
                        [
                            (
                                JobMessage(
                                    d.job.id, d.job.vehicle_id, d.job.bat_url, d.job.priority
                                ),
                                d.delay_seconds,
                            )
                            for d in chunk
                        ],
                    )
                )
                # Marked batch by batch: if a later send fails, what SQS already holds stays
                # marked and everything after it stays unmarked for the next run.
                marked += len(
                    jobqueue.mark_dispatched(
                        conn, [d.job for d in chunk if d.job.id in accepted], redispatch_after
                    )
                )
                sent[high] += len(accepted)
        return {
            "dispatched": sent[True] + sent[False],
            "high": sent[True],
            "backfill": sent[False],
            # SQS refused these entries (or the plan ran past SQS's 15-minute delay cap)
            "not_sent": len(jobs) - sent[True] - sent[False],
            # sent but claimed or re-prioritised meanwhile: the processor skips or re-sends them
            "unmarked": sent[True] + sent[False] - marked,
            "budget": budget,
            "in_flight": in_flight,
            "last_delay_seconds": plan[-1].delay_seconds if plan else 0,
        }


def run_orchestrator(services: Services) -> RunReport:
    """Steps 0-4; each failing step is recorded and the others still run."""
    report = RunReport()
    try:
        report.run_id = runs.start_run(services.db.connection())
    except Exception as exc:
        services.db.reset()
        report.status = "failed"
        report.steps["record"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return report
    _step(report, "auto_queue", services, lambda: auto_queue(services))
    _step(report, "rescue", services, lambda: rescue(services))
    _step(report, "discover", services, lambda: discover(services))
    _step(report, "sweep", services, lambda: sweep(services))
    # The index pages this run read take their place in the request budget; a failed step
    # may have read up to its whole allowance.
    s = services.settings
    requests = 0
    for name, allowance in (("discover", s.discovery_max_pages), ("sweep", s.sweep_pages_per_run)):
        step = report.steps[name]
        requests += int(step.get("requests", 0) or 0) if step["ok"] else allowance
    _step(report, "dispatch", services, lambda: dispatch(services, other_requests=requests))
    try:
        conn = services.db.connection()
        report.queue_depths = jobqueue.queue_depths(conn)
        if all(not step["ok"] for step in report.steps.values()):
            report.status = "failed"
        runs.finish_run(
            conn,
            report.run_id,
            status=report.status,
            steps=report.steps,
            depths=report.queue_depths,
        )
    except Exception as exc:
        services.db.reset()
        report.status = "failed"
        report.steps["record"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return report
