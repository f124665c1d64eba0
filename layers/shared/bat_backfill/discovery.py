"""The walks over BaT's results index: discovery of new listings (checkpointed, newest first) and
the outcome sweep that checks stored vehicles against the index."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any

from .db import discovery as index_db
from .db import queue as jobqueue
from .db import vehicles
from .errors import JobError
from .indexcheck import missing_fields, plan_index_repair
from .models import Priority
from .politeness import fetch_bat_page
from .repair import Action
from .results import IndexItem, ResultsIndex, ResultsPageError, parse_results
from .services import Services
from .urls import index_url, parse_index_url

DISCOVERY = "discovery"
SWEEP = "sweep"

Pause = Callable[[float], None]
Progress = Callable[[str], None]


def fetch_index_page(services: Services, url: str) -> ResultsIndex:
    """One polite GET of an index page, parsed; an unreadable page is a JobError."""
    s = services.settings
    page = fetch_bat_page(services.db, s, services.http, url, check=parse_index_url)
    try:
        return parse_results(page.html)
    except ResultsPageError as exc:
        raise JobError(f"{page.url}: {exc}") from exc


class _Pacer:
    """One request interval between two index requests of one walk."""

    def __init__(self, interval: float, pause: Pause) -> None:
        self.interval, self.pause, self.requests = interval, pause, 0

    def next(self) -> None:
        if self.requests:
            self.pause(self.interval)
        self.requests += 1


# ------------------------------------------------------------------ discovery


def _queue_unknown(services: Services, index: ResultsIndex) -> int:
    """Create and queue (priority 100) the listings no vehicle has yet, including those whose
    index entry was unreadable (the listing page will tell); how many."""
    listed: dict[str, IndexItem | None] = {i.url: i for i in index.items}
    listed.update((url, None) for url in index.unread_urls)
    unknown = vehicles.unknown_listing_urls(services.db.connection(), list(listed))
    queued = 0
    for url, item in listed.items():
        if url not in unknown:
            continue
        with services.db.transaction() as tx:
            vid = vehicles.create_vehicle(
                tx, url, title=item.title if item else None, year=item.year if item else None
            )
            jobqueue.enqueue(tx, vid, url, Priority.NEW_LISTING, "new_listing")
        queued += 1
    return queued


def discover(services: Services, *, pause: Pause = time.sleep) -> dict[str, Any]:
    """Walk the index newest first until the listings already seen (or the page budget).

    The checkpoint keeps a high water (every listing ended at or before it was seen) and, while
    a walk is under way, the page to read next and the newest end time of that walk. New
    listings only push older ones to later pages, so resuming by page number may re-read a
    listing (it is known, so not queued twice) but never skips one. A walk ends on the first
    page that reaches back past the high water (minus an overlap for listings BaT indexes
    late); the walk's newest end time becomes the high water.
    """
    s = services.settings
    if not s.discovery_enabled or s.discovery_max_pages < 1:
        return {"enabled": False, "requests": 0, "queued": 0}
    conn = services.db.connection()
    with index_db.index_lock(conn, DISCOVERY) as held:
        if not held:
            return {"enabled": True, "requests": 0, "queued": 0, "note": "another run is walking"}
        cp = index_db.load_checkpoint(conn, DISCOVERY)
        if cp.high_water is None:
            # The first run looks back a bounded time instead of walking BaT's whole history.
            cp = replace(
                cp, high_water=services.clock() - timedelta(hours=s.discovery_lookback_hours)
            )
        pacer = _Pacer(s.request_interval_seconds, pause)
        seen = queued = skipped = 0
        caught_up = False
        resumed = cp.walk_top is not None
        while pacer.requests < s.discovery_max_pages:
            pacer.next()
            url = index_url(cp.next_page)
            index = fetch_index_page(services, url)
            seen += len(index.items)
            skipped += index.skipped
            queued += _queue_unknown(services, index)
            ends = [i.ended_at for i in index.items if i.ended_at is not None]
            top = max([*ends, cp.walk_top] if cp.walk_top else ends, default=None)
            assert cp.high_water is not None
            floor = cp.high_water - timedelta(minutes=s.discovery_overlap_minutes)
            reached = any(e < floor for e in ends)
            if reached or not index.items or cp.next_page >= index.pages_total:
                high = max(cp.high_water, top) if top else cp.high_water
                cp = replace(cp, high_water=high, walk_top=None, next_page=1,
                             pages_total=index.pages_total)  # fmt: skip
                index_db.save_checkpoint(conn, cp, pages_read=1, items_seen=len(index.items))
                if not resumed:
                    caught_up = True
                    break
                # The walk began in an earlier run: listings that ended since wait on top.
                resumed = False
                continue
            cp = replace(cp, walk_top=top, next_page=cp.next_page + 1,
                         pages_total=index.pages_total)  # fmt: skip
            index_db.save_checkpoint(conn, cp, pages_read=1, items_seen=len(index.items))
        return {
            "enabled": True,
            "requests": pacer.requests,
            "seen": seen,
            "queued": queued,
            "skipped": skipped,
            "caught_up": caught_up,
            "next_page": cp.next_page,
            "high_water": cp.high_water.isoformat() if cp.high_water else None,
        }


# ------------------------------------------------------------------ the outcome sweep


@dataclass
class SweepReport:
    requests: int = 0
    pages: list[int] = field(default_factory=list)
    items: int = 0
    skipped: int = 0
    vehicles: int = 0
    disagreements: int = 0  # vehicles whose stored result disagreed with the index
    corrected: int = 0  # vehicles repaired from the index
    conflicts: int = 0  # disagreements recorded for review, nothing overwritten
    queued_for_fetch: int = 0  # vehicles still lacking what only the listing page gives
    busy: int = 0  # an extraction held the vehicle's job: its page result wins
    unknown: int = 0  # index listings with no stored vehicle (discovery's part)
    pages_total: int | None = None
    next_page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_index_page(
    services: Services, index: ResultsIndex, source_url: str, report: SweepReport
) -> None:
    """Compare each stored vehicle named on an index page with its item; repair, audit, queue."""
    s = services.settings
    by_url = {i.url: i for i in index.items}
    found = index_db.index_vehicles(services.db.connection(), list(by_url))
    report.items += len(index.items)
    report.skipped += index.skipped
    report.unknown += len(by_url.keys() - {v.url for v in found})
    for stored in found:
        item = by_url[stored.url]
        report.vehicles += 1
        if stored.job_status == "processing":
            report.busy += 1
            continue
        with services.db.transaction() as tx:
            # The row lock serialises this repair with an extraction of the same vehicle.
            vehicle = vehicles.lock_vehicle(tx, stored.vehicle_id)
            if vehicle is None:
                continue
            plan = plan_index_repair(vehicle, item, page_extracted=stored.page_extracted)
            if any(c.old is not None for c in plan.changes):
                report.disagreements += 1
            _, new_conflicts = vehicles.save_repair(
                tx, stored.vehicle_id, plan, source_url=source_url, snapshot_key=None, job_id=None
            )
            if any(c.action is Action.CORRECT for c in plan.changes):
                report.corrected += 1
            if new_conflicts:
                report.conflicts += 1
            lacking = missing_fields(vehicle, index_db.absent_fields(tx, stored.vehicle_id))
            if lacking and stored.job_status in (None, "complete"):
                jobqueue.enqueue(
                    tx, stored.vehicle_id, item.url, s.backfill_priority, "index_missing_fields"
                )
                report.queued_for_fetch += 1


def sweep(
    services: Services,
    *,
    pages: int | None,
    start_page: int = 1,
    make: str | None = None,
    model: str | None = None,
    pause: Pause = time.sleep,
    progress: Progress | None = None,
) -> SweepReport:
    """Check stored vehicles against `pages` index pages from `start_page` (None: to the end),
    one request interval apart."""
    report = SweepReport()
    pacer = _Pacer(services.settings.request_interval_seconds, pause)
    number = start_page
    while pages is None or pacer.requests < pages:
        pacer.next()
        url = index_url(number, make=make, model=model)
        index = fetch_index_page(services, url)
        report.requests = pacer.requests
        report.pages.append(number)
        report.pages_total = index.pages_total
        check_index_page(services, index, url, report)
        if progress is not None:
            progress(
                f"page {number}/{index.pages_total}: {len(index.items)} items, "
                f"{report.vehicles} stored so far, {report.corrected} corrected, "
                f"{report.conflicts} conflicts, {report.queued_for_fetch} queued for a fetch"
            )
        if not index.items or number >= index.pages_total:
            report.next_page = None
            return report
        number += 1
    report.next_page = number
    return report


def sweep_slice(services: Services, *, pause: Pause = time.sleep) -> dict[str, Any]:
    """The orchestrator's bounded part of the sweep: SWEEP_PAGES_PER_RUN pages from where the
    last run stopped, starting over at page 1 after the last page."""
    s = services.settings
    if not s.discovery_enabled or s.sweep_pages_per_run < 1:
        # DISCOVERY_ENABLED=false keeps every run off BaT's results index.
        return {"enabled": False, "requests": 0}
    conn = services.db.connection()
    with index_db.index_lock(conn, SWEEP) as held:
        if not held:
            return {"enabled": True, "requests": 0, "note": "another run is sweeping"}
        cp = index_db.load_checkpoint(conn, SWEEP)
        report = sweep(services, pages=s.sweep_pages_per_run, start_page=cp.next_page, pause=pause)
        lap = report.next_page is None
        index_db.save_checkpoint(
            conn,
            replace(cp, next_page=report.next_page or 1, pages_total=report.pages_total),
            pages_read=report.requests,
            items_seen=report.items,
            laps=1 if lap else 0,
        )
        return {"enabled": True, **_slice_counts(report)}


def _slice_counts(report: SweepReport) -> dict[str, Any]:
    out = report.to_dict()
    out.pop("pages")
    return out
