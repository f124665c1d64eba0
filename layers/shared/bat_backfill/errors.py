"""Expected failures, each saying whether a later attempt may succeed."""

from __future__ import annotations


class BatBackfillError(Exception):
    """A failure the system expects and reports in one line; anything else is a crash."""


class EventError(BatBackfillError, ValueError):
    """A Lambda event or request is malformed; the message names the field and why."""


class LeaseLostError(BatBackfillError):
    """The job's lease was rescued or taken over: this worker must not write its results."""


class JobError(BatBackfillError):
    """A job could not finish; `retryable` says whether a later attempt may succeed and
    `throttled` that BaT asked us to slow down."""

    retryable: bool = False
    throttled: bool = False

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        throttled: bool | None = None,
        status: int | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable
        if throttled is not None:
            self.throttled = throttled
        self.status = status
        self._kind = kind

    @property
    def kind(self) -> str:
        """The error's class name, kept when the error crossed from another function."""
        return self._kind or type(self).__name__


class InvalidListingUrlError(JobError):
    """The URL is not a https://bringatrailer.com/listing/<slug>/ page; never fetched."""


class FetchError(JobError):
    """BaT did not give us the page."""


class PageRejectedError(JobError):
    """The page arrived but cannot be used (too large, not HTML, not a listing)."""


class VehicleNotFoundError(JobError):
    """The job names a vehicle that no longer exists."""


class AwsError(BatBackfillError):
    """AWS could not be used; the message says what to set or check. `unreachable` tells a
    connection that failed from missing configuration (no region, no credentials)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable
