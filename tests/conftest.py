"""Shared fixtures: a real throwaway Postgres (one cluster per run, a fresh database per test)."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pg8000.native
import pytest
from bat_backfill_tools import localpg

from bat_backfill.db.connect import connect
from bat_backfill.db.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures" / "bat"
TEMPLATE_DB = "bat_backfill_template"
_counter = itertools.count()


def _server_url() -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    try:
        cluster = localpg.start_throwaway()
    except localpg.LocalPostgresError as exc:
        pytest.skip(f"no Postgres for tests: {exc}")
    try:
        yield cluster.url
    finally:
        localpg.discard(cluster)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a Postgres server holding a migrated template database."""
    for url in _server_url():
        admin = connect(url)
        admin.run(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        admin.run(f"CREATE DATABASE {TEMPLATE_DB}")
        template = connect(_with_database(url, TEMPLATE_DB))
        migrate(template)
        template.close()
        admin.close()
        yield url


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@contextlib.contextmanager
def _scratch_database(pg_server: str, *create: str) -> Iterator[str]:
    """A database made with the `create` statements (its name filled in), dropped afterwards."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    admin = connect(pg_server)
    for statement in create:
        admin.run(statement.format(name=name))
    try:
        yield _with_database(pg_server, name)
    finally:
        admin.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


# Tests write vehicle rows directly and queue them themselves; the trigger that queues every
# new BaT vehicle at priority 100 is turned off in their databases (its own tests turn it on).
QUIET_TRIGGER = "ALTER DATABASE {name} SET bat_backfill.queue_new_vehicles = 'off'"


@pytest.fixture
def db_url(pg_server: str) -> Iterator[str]:
    """A fresh, migrated database for one test, dropped afterwards."""
    create = f"CREATE DATABASE {{name}} TEMPLATE {TEMPLATE_DB}"
    with _scratch_database(pg_server, create, QUIET_TRIGGER) as url:
        yield url


@pytest.fixture
def empty_db_url(pg_server: str) -> Iterator[str]:
    """A database with nothing in it (not cloned from the migrated template)."""
    with _scratch_database(pg_server, "CREATE DATABASE {name}") as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[pg8000.native.Connection]:
    conn = connect(db_url)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def shared_fixtures() -> Path:
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures/bat is absent")
    return SHARED_FIXTURES
