"""The two extraction pipelines: a listing page repairs its vehicle; its comments are stored."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import aws
from .contracts import ExtractionRequest
from .db import queue as jobqueue
from .db import vehicles
from .errors import PageRejectedError, VehicleNotFoundError
from .models import CommentKind
from .parsing import ListingParseError, parse_comments, parse_listing
from .politeness import fetch_bat_page
from .repair import plan_repair
from .services import Services
from .urls import listing_slug, parse_listing_url


@dataclass(frozen=True)
class PageSource:
    html: str
    snapshot_key: str | None
    reused: bool
    fetch_status: int | None  # None when a fresh snapshot was reused


@dataclass(frozen=True)
class ListingResult:
    vehicle_id: str
    url: str
    outcome: str | None
    snapshot_key: str | None
    reused_snapshot: bool
    fetch_status: int | None
    filled: list[str] = field(default_factory=list)
    corrected: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CommentsResult:
    vehicle_id: str
    url: str
    comments: int
    bids: int
    new: int
    snapshot_key: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def obtain_page(
    services: Services, url: str, *, vehicle_id: str | None = None, allow_reuse: bool = True
) -> PageSource:
    """The listing's HTML: the vehicle's latest snapshot if it is fresh, else one polite
    fetch, kept in S3. The database knows the latest snapshot, so no S3 listing is needed."""
    settings, s3 = services.settings, services.s3
    slug = listing_slug(url)
    bucket = settings.snapshot_bucket
    if allow_reuse and vehicle_id and s3 is not None and bucket:
        latest = vehicles.latest_snapshot_key(services.db.connection(), vehicle_id, url)
        taken = aws.snapshot_time(latest) if latest else None
        age = (services.clock() - taken).total_seconds() if taken else None
        if latest and age is not None and age < settings.snapshot_max_age_seconds:
            html = aws.load_snapshot(s3, bucket, latest)
            if html is not None:
                return PageSource(html, latest, reused=True, fetch_status=None)
    page = fetch_bat_page(services.db, settings, services.http, url)
    key = None
    if s3 is not None and bucket:
        key = aws.snapshot_key(slug, services.clock())
        aws.save_snapshot(s3, bucket, key, page.html, url)
    return PageSource(page.html, key, reused=False, fetch_status=page.status)


def extract_listing(
    services: Services, request: ExtractionRequest
) -> tuple[ListingResult, PageSource]:
    """Fetch (or reuse) the page, parse it and repair the vehicle in one fenced transaction."""
    canonical = parse_listing_url(request.url)
    vehicle_id, lease = request.vehicle_id, request.lease
    source = obtain_page(services, canonical, vehicle_id=vehicle_id)
    try:
        listing = parse_listing(source.html, url=canonical)
    except ListingParseError as exc:
        raise PageRejectedError(f"{canonical}: {exc}") from exc
    job_id = lease.job_id if lease else None
    with services.db.transaction() as conn:
        if lease is not None:
            jobqueue.assert_lease(conn, lease)
        vid = vehicle_id or vehicles.find_vehicle_by_url(conn, canonical)
        if vid is None:
            vid = vehicles.create_vehicle(conn, canonical, title=listing.title, year=listing.year)
        # Every row of this listing is repaired from the one page, the job's vehicle first.
        rows = vehicles.lock_vehicles_of_listing(conn, vid, canonical)
        rows.sort(key=lambda row: row["id"] != vid)
        if not rows or rows[0]["id"] != vid:
            raise VehicleNotFoundError(f"vehicle {vid} does not exist")
        saved = [
            vehicles.save_repair(
                conn,
                row["id"],
                plan_repair(row, listing),
                source_url=canonical,
                snapshot_key=source.snapshot_key,
                job_id=job_id,
            )
            for row in rows
        ]
        for row in rows:
            vehicles.save_auction_event(
                conn, row["id"], listing, snapshot_key=source.snapshot_key, job_id=job_id
            )
        plan, new_conflicts = saved[0]
    result = ListingResult(
        vehicle_id=vid,
        url=canonical,
        outcome=listing.outcome.value if listing.outcome else None,
        snapshot_key=source.snapshot_key,
        reused_snapshot=source.reused,
        fetch_status=source.fetch_status,
        filled=[c.field for c in plan.applied if c.old is None],
        corrected=[c.field for c in plan.applied if c.old is not None],
        conflicts=[c.field for c in new_conflicts],
        absent=list(plan.absent),
        warnings=list(listing.warnings),
    )
    return result, source


def extract_comments(
    services: Services, request: ExtractionRequest, *, html: str | None = None
) -> CommentsResult:
    """Comments and bids from the listing's snapshot (fetching only when there is none); the
    request must name the vehicle."""
    canonical = parse_listing_url(request.url)
    vehicle_id, snapshot_key, lease = request.vehicle_id, request.snapshot_key, request.lease
    if vehicle_id is None:
        raise VehicleNotFoundError("the comments extractor needs the vehicle_id")
    s3, bucket = services.s3, services.settings.snapshot_bucket
    if html is None and snapshot_key and s3 is not None and bucket:
        html = aws.load_snapshot(s3, bucket, snapshot_key)
    if html is None:
        source = obtain_page(services, canonical, vehicle_id=vehicle_id)
        html, snapshot_key = source.html, source.snapshot_key
    try:
        comments = parse_comments(html)
    except ListingParseError as exc:
        raise PageRejectedError(f"{canonical}: {exc}") from exc
    with services.db.transaction() as conn:
        if lease is not None:
            jobqueue.assert_lease(conn, lease)
        new = vehicles.save_comments(conn, vehicle_id, canonical, comments)
    return CommentsResult(
        vehicle_id=vehicle_id,
        url=canonical,
        comments=sum(
            1 for c in comments if c.kind in (CommentKind.COMMENT, CommentKind.SELLER_REPLY)
        ),
        bids=sum(1 for c in comments if c.kind is CommentKind.BID),
        new=new,
        snapshot_key=snapshot_key,
    )
