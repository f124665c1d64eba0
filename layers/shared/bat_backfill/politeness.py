"""Every BaT request books its slot in the global request budget first; 403/429 slows it for all."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx

from .db import Database
from .db import budget as budget_db
from .errors import FetchError
from .settings import Settings
from .urls import parse_listing_url
from .web import Page, fetch_page

log = logging.getLogger(__name__)


class RequestBudget:
    """The shared budget as seen by one process: `wait_for_slot` before each request."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_seconds: float | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.sleep = sleep
        self.max_wait_seconds = (
            settings.budget_max_wait_seconds if max_wait_seconds is None else max_wait_seconds
        )

    def wait_for_slot(self) -> None:
        """Book the next slot and sleep until it; a budget booked further ahead than the wait
        allows is a retryable fetch error (nothing booked, nothing fetched)."""
        s = self.settings
        slot = budget_db.take_slot(
            self.db.connection(),
            interval_seconds=s.request_interval_seconds,
            max_wait_seconds=max(0.0, self.max_wait_seconds),
            recovery_seconds=s.throttle_recovery_seconds,
        )
        if slot is None:
            raise FetchError(
                f"BaT's request budget is booked more than {self.max_wait_seconds:g} s ahead; "
                "the job is retried later",
                retryable=True,
            )
        if slot.wait_seconds > 0:
            self.sleep(slot.wait_seconds)

    def slow_down(self) -> None:
        """BaT answered 403/429: every process's interval stretches (best effort)."""
        s = self.settings
        try:
            factor = budget_db.slow_down(
                self.db.connection(),
                interval_seconds=s.request_interval_seconds,
                recovery_seconds=s.throttle_recovery_seconds,
                max_factor=s.throttle_max_factor,
            )
        except Exception as exc:  # the fetch error is what the caller must see
            self.db.reset()
            log.warning("could not record the slow-down: %s", type(exc).__name__)
            return
        log.warning("BaT asked to slow down: request interval now x%.1f", factor)


def fetch_bat_page(
    db: Database,
    settings: Settings,
    client: httpx.Client,
    url: str,
    *,
    check: Callable[[str], str] = parse_listing_url,
    deadline_seconds: float | None = None,
) -> Page:
    """One page from BaT (or BAT_BASE_URL), under the global budget and the fetch deadline."""
    budget = RequestBudget(db, settings)
    total = settings.fetch_timeout_seconds
    if deadline_seconds is not None:
        total = min(total, deadline_seconds)
    try:
        return fetch_page(
            client,
            url,
            base_url=settings.bat_base_url,
            max_bytes=settings.max_page_bytes,
            check=check,
            before_request=budget.wait_for_slot,
            deadline_seconds=total,
        )
    except FetchError as exc:
        if exc.throttled:
            budget.slow_down()
        raise
