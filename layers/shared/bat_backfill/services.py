"""The composition root: the clients a process needs (database, HTTP, AWS), built once and handed
to the pipelines."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from .db import Database
from .settings import Settings, SettingsError, load_settings
from .web import build_client

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


def utc_now() -> datetime:
    return datetime.now(UTC)


def database_url_from_secret(secret: Mapping[str, Any]) -> str:
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
        from .aws import read_secret_json

        try:
            secret = read_secret_json(settings.database_secret_arn)
        except ValueError as exc:
            raise SettingsError(f"DATABASE_SECRET_ARN: {exc}") from None
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
    db: Database
    http: httpx.Client
    s3: S3Client | None = None
    sqs: SQSClient | None = None
    lambda_client: LambdaClient | None = None
    clock: Callable[[], datetime] = utc_now
    worker_id: str = field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")

    def close(self) -> None:
        self.db.close()
        self.http.close()


def build_services(environ: Mapping[str, str] | None = None) -> Services:
    """Services from the environment, as each Lambda container does once at start-up."""
    settings = load_settings(dict(os.environ if environ is None else environ))
    s3 = sqs = lambda_client = None
    if (
        settings.snapshot_bucket
        or settings.high_queue_url
        or settings.backfill_queue_url
        or (settings.premium_extractor_function and settings.comments_extractor_function)
    ):
        import boto3

        if settings.snapshot_bucket:
            s3 = boto3.client("s3")
        if settings.high_queue_url or settings.backfill_queue_url:
            sqs = boto3.client("sqs")
        if settings.premium_extractor_function and settings.comments_extractor_function:
            lambda_client = boto3.client("lambda")
    return Services(
        settings=settings,
        db=Database(lambda: resolve_database_url(settings)),
        http=build_client(settings.user_agent, settings.fetch_timeout_seconds),
        s3=s3,
        sqs=sqs,
        lambda_client=lambda_client,
    )


class LazyServices:
    """A warm container's services, built on first use so importing a handler stays cheap."""

    def __init__(self, factory: Callable[[], Services] = build_services) -> None:
        self._factory = factory
        self._services: Services | None = None

    def get(self) -> Services:
        if self._services is None:
            self._services = self._factory()
        return self._services
