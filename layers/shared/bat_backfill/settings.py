"""The environment, parsed once into a typed, validated settings object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from .jobs import BackoffPolicy

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and the fix."""


@dataclass(frozen=True)
class Setting:
    env: str
    help: str


@dataclass(frozen=True)
class Settings:
    """Every knob bat-backfill reads; each field maps to one environment variable (SETTINGS)."""

    database_url: str | None = None
    database_secret_arn: str | None = None
    snapshot_bucket: str | None = None
    high_queue_url: str | None = None
    backfill_queue_url: str | None = None
    dlq_url: str | None = None
    premium_extractor_function: str | None = None
    comments_extractor_function: str | None = None
    bat_base_url: str = "https://bringatrailer.com"
    request_interval_seconds: float = 2.0
    schedule_minutes: int = 10
    backfill_batch_size: int = 20
    backfill_priority: int = 75
    discovery_enabled: bool = True
    discovery_max_pages: int = 5
    discovery_lookback_hours: int = 24
    discovery_overlap_minutes: int = 60
    sweep_pages_per_run: int = 12
    max_attempts: int = 5
    backoff_base_seconds: float = 60.0
    backoff_cap_seconds: float = 6 * 3600.0
    lease_seconds: int = 600
    fetch_timeout_seconds: float = 20.0
    budget_max_wait_seconds: float = 30.0
    throttle_recovery_seconds: float = 300.0
    throttle_max_factor: float = 16.0
    job_deadline_seconds: float = 80.0
    max_page_bytes: int = 5_000_000
    snapshot_max_age_seconds: int = 3600
    user_agent: str = "bat-backfill/0.1 (+vehicle data repair; polite crawler)"

    @property
    def backoff(self) -> BackoffPolicy:
        return BackoffPolicy(
            base_seconds=self.backoff_base_seconds,
            cap_seconds=self.backoff_cap_seconds,
            max_attempts=self.max_attempts,
        )

    @property
    def dispatch_per_run(self) -> int:
        """How many fetches fit in one schedule interval at the polite request rate."""
        return max(1, int(self.schedule_minutes * 60 / self.request_interval_seconds))


SETTINGS: dict[str, Setting] = {
    "database_url": Setting("DATABASE_URL", "postgresql:// URL; local runs only"),
    "database_secret_arn": Setting(
        "DATABASE_SECRET_ARN", "Secrets Manager secret with host/port/username/password/dbname"
    ),
    "snapshot_bucket": Setting("SNAPSHOT_BUCKET", "S3 bucket for gzip page snapshots"),
    "high_queue_url": Setting("HIGH_QUEUE_URL", "SQS queue for priority 100 jobs"),
    "backfill_queue_url": Setting("BACKFILL_QUEUE_URL", "SQS queue for backfill jobs"),
    "dlq_url": Setting("DLQ_URL", "the shared dead-letter queue"),
    "premium_extractor_function": Setting(
        "PREMIUM_EXTRACTOR_FUNCTION", "Lambda name; unset = run the extractor in-process"
    ),
    "comments_extractor_function": Setting(
        "COMMENTS_EXTRACTOR_FUNCTION", "Lambda name; unset = run the extractor in-process"
    ),
    "bat_base_url": Setting("BAT_BASE_URL", "where listing pages are fetched from"),
    "request_interval_seconds": Setting(
        "REQUEST_INTERVAL_SECONDS", "seconds between two requests to BaT, overall"
    ),
    "schedule_minutes": Setting("SCHEDULE_MINUTES", "orchestrator schedule interval"),
    "backfill_batch_size": Setting("BACKFILL_BATCH_SIZE", "backfills queued per run"),
    "backfill_priority": Setting("BACKFILL_PRIORITY", "priority given to backfills"),
    "discovery_enabled": Setting(
        "DISCOVERY_ENABLED", "read BaT's results index each run (discovery and the sweep)"
    ),
    "discovery_max_pages": Setting(
        "DISCOVERY_MAX_PAGES", "results index pages discovery may read per run (catch-up budget)"
    ),
    "discovery_lookback_hours": Setting(
        "DISCOVERY_LOOKBACK_HOURS", "how far back the very first discovery run looks"
    ),
    "discovery_overlap_minutes": Setting(
        "DISCOVERY_OVERLAP_MINUTES", "how far past the last seen end time a walk reads on"
    ),
    "sweep_pages_per_run": Setting(
        "SWEEP_PAGES_PER_RUN", "results index pages the outcome sweep checks per run (0 = off)"
    ),
    "max_attempts": Setting("MAX_ATTEMPTS", "attempts before a job is marked failed"),
    "backoff_base_seconds": Setting("BACKOFF_BASE_SECONDS", "first retry delay"),
    "backoff_cap_seconds": Setting("BACKOFF_CAP_SECONDS", "longest retry delay"),
    "lease_seconds": Setting("LEASE_SECONDS", "how long a claimed job is held"),
    "fetch_timeout_seconds": Setting(
        "FETCH_TIMEOUT_SECONDS", "deadline of one BaT fetch: connect, redirects and all reads"
    ),
    "budget_max_wait_seconds": Setting(
        "BUDGET_MAX_WAIT_SECONDS", "longest wait for a request slot before the job is retried later"
    ),
    "throttle_recovery_seconds": Setting(
        "THROTTLE_RECOVERY_SECONDS", "after a 403/429 the slow-down halves every this many seconds"
    ),
    "throttle_max_factor": Setting(
        "THROTTLE_MAX_FACTOR", "403/429 answers stretch the request interval up to this factor"
    ),
    "job_deadline_seconds": Setting(
        "JOB_DEADLINE_SECONDS", "a job still running after this is failed as retryable"
    ),
    "max_page_bytes": Setting("MAX_PAGE_BYTES", "largest page accepted"),
    "snapshot_max_age_seconds": Setting(
        "SNAPSHOT_MAX_AGE_SECONDS", "a snapshot younger than this is reused"
    ),
    "user_agent": Setting("USER_AGENT", "User-Agent sent to BaT"),
}


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _convert(kind: Any, text: str) -> Any:
    parsers: dict[Any, Callable[[str], Any]] = {
        "int": int,
        "float": float,
        "bool": _bool,
        "str": str,
        "str | None": str,
    }
    return parsers[kind](text)


def load_settings(*sources: Mapping[str, Any]) -> Settings:
    """Settings from mappings of environment-style names, the first source that has one wins.

    >>> load_settings({"BACKFILL_BATCH_SIZE": "5"}).backfill_batch_size
    5
    >>> load_settings({"MAX_ATTEMPTS": "x"})
    Traceback (most recent call last):
    ...
    bat_backfill.settings.SettingsError: MAX_ATTEMPTS: expected int, got 'x'
    """
    values: dict[str, Any] = {}
    for f in fields(Settings):
        env = SETTINGS[f.name].env
        for source in sources:
            raw = source.get(env)
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = raw if not isinstance(raw, str) else _convert(f.type, raw)
            except (ValueError, KeyError):
                kind = str(f.type).replace(" | None", "")
                raise SettingsError(f"{env}: expected {kind}, got {raw!r}") from None
            break
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if settings.request_interval_seconds <= 0:
        raise SettingsError("REQUEST_INTERVAL_SECONDS must be above 0 (BaT politeness)")
    for name in ("fetch_timeout_seconds", "budget_max_wait_seconds", "job_deadline_seconds",
                 "throttle_recovery_seconds"):  # fmt: skip
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{SETTINGS[name].env} must be above 0")
    if settings.throttle_max_factor < 1:
        raise SettingsError("THROTTLE_MAX_FACTOR must be at least 1")
    if settings.max_attempts < 1:
        raise SettingsError("MAX_ATTEMPTS must be at least 1")
    if not 1 <= settings.backfill_priority <= 1000:
        raise SettingsError("BACKFILL_PRIORITY must be between 1 and 1000")
    if settings.backfill_batch_size < 0:
        raise SettingsError("BACKFILL_BATCH_SIZE must not be negative")
    if settings.discovery_max_pages < 0 or settings.sweep_pages_per_run < 0:
        raise SettingsError("DISCOVERY_MAX_PAGES and SWEEP_PAGES_PER_RUN must not be negative")
    if settings.discovery_lookback_hours < 1 or settings.discovery_overlap_minutes < 0:
        raise SettingsError(
            "DISCOVERY_LOOKBACK_HOURS must be at least 1, DISCOVERY_OVERLAP_MINUTES not negative"
        )
    if settings.database_url and not settings.database_url.startswith(
        ("postgresql://", "postgres://")
    ):
        raise SettingsError("DATABASE_URL must start with postgresql://")
