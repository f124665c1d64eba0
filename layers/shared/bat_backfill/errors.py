"""Errors that end a job, each saying whether trying again later can help."""

from __future__ import annotations


class JobError(Exception):
    """A job could not finish; `retryable` says whether a later attempt may succeed."""

    retryable: bool = False
    throttled: bool = False


class InvalidListingUrlError(JobError):
    """The URL is not a https://bringatrailer.com/listing/<slug>/ page; never fetched."""


class FetchError(JobError):
    """BaT did not give us the page."""

    def __init__(
        self, message: str, *, status: int | None = None, retryable: bool, throttled: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.throttled = throttled


class PageRejectedError(JobError):
    """The page arrived but cannot be used (too large, not HTML, not a listing)."""


class VehicleNotFoundError(JobError):
    """The job names a vehicle that no longer exists."""
