"""Clients built once per warm container (database, HTTP, AWS) and handed to the pipelines."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pg8000.native

from .db.connect import connect
from .settings import Settings, SettingsError, load_settings
from .web import build_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


def utc_now() -> datetime:
    return datetime.now(UTC)


def database_url_from_secret(secret: dict[str, Any]) -> str:
    """A connection URL from an RDS-style secret (host, port, username, password, dbname).

    >>> database_url_from_secret({"host": "db", "username": "app", "password": "p@ss"})
    'postgresql://app:p%40ss@db:5432/postgres?sslmode=require'
    """
    try:
        host, user = secret["host"], secret["username"]
    except KeyError as exc:
        raise SettingsError(f"database secret lacks {exc.args[0]!r}") from None
    password = quote(str(secret.get("password", "")), safe="")
    port = int(secret.get("port", 5432))
    name = quote(str(secret.get("dbname", "postgres")), safe="")
    # TLS unless the secret says otherwise (RDS and RDS Proxy both speak it).
    sslmode = quote(str(secret.get("sslmode", "require")), safe="")
    return f"postgresql://{quote(user, safe='')}:{password}@{host}:{port}/{name}?sslmode={sslmode}"


def resolve_database_url(settings: Settings) -> str:
    """DATABASE_URL for local runs; in AWS, the Secrets Manager secret (cached by Powertools)."""
    if settings.database_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        secret = parameters.get_secret(settings.database_secret_arn, transform="json", max_age=300)
        if not isinstance(secret, dict):
            raise SettingsError("DATABASE_SECRET_ARN must hold a JSON object")
        return database_url_from_secret(secret)
    if settings.database_url:
        return settings.database_url
    raise SettingsError(
        "no database configured: set DATABASE_URL (local) or DATABASE_SECRET_ARN (AWS), "
        "or pass --database-url"
    )


@dataclass
class Services:
    """Everything a pipeline talks to; tests build one with real Postgres and moto clients."""

    settings: Settings
    http: httpx.Client
    s3: S3Client | None = None
    sqs: SQSClient | None = None
    lambda_client: Any = None
    clock: Callable[[], datetime] = utc_now
    database_url: str | None = None
    worker_id: str = field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")
    _conn: pg8000.native.Connection | None = None

    def db(self) -> pg8000.native.Connection:
        """The container's one connection, reopened if the last one broke."""
        if self._conn is None:
            url = self.database_url or resolve_database_url(self.settings)
            self._conn = connect(url)
        return self._conn

    def reset_db(self) -> None:
        """Drop a connection that failed; the next `db()` opens a new one."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[pg8000.native.Connection]:
        conn = self.db()
        conn.run("START TRANSACTION")
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(Exception):
                conn.run("ROLLBACK")
            raise
        conn.run("COMMIT")

    def close(self) -> None:
        self.reset_db()
        self.http.close()


def build_services(environ: dict[str, str] | None = None) -> Services:
    """Services from the environment, as each Lambda container does once at start-up."""
    settings = load_settings(dict(os.environ if environ is None else environ))
    s3 = sqs = lambda_client = None
    import boto3

    if settings.snapshot_bucket:
        s3 = boto3.client("s3")
    if settings.high_queue_url or settings.backfill_queue_url:
        sqs = boto3.client("sqs")
    if settings.premium_extractor_function or settings.comments_extractor_function:
        lambda_client = boto3.client("lambda")
    return Services(
        settings=settings,
        http=build_client(settings.user_agent, settings.fetch_timeout_seconds),
        s3=s3,
        sqs=sqs,
        lambda_client=lambda_client,
    )
