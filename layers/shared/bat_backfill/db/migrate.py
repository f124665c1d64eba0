"""Apply the versioned schema migrations in db/sql/migrations once each, under an advisory lock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pg8000.native

MIGRATIONS_DIR = Path(__file__).resolve().parent / "sql" / "migrations"

# pg_advisory_lock key shared by every migrator of this schema ("batbkfil" in ASCII, as a bigint).
ADVISORY_LOCK_KEY = 0x626174626B66696C

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<slug>[a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The migration files are malformed or one of them failed to apply."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One `NNNN_name.sql` file; `name` is the file name without `.sql`."""

    version: int
    name: str
    sql: str


def find_migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in `folder`, ordered by version; other files are an error."""
    found: list[Migration] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name == "__pycache__":
            continue
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match["version"]), path.stem, path.read_text("utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number in {folder}")
    return sorted(found, key=lambda m: m.version)


def migrate(conn: pg8000.native.Connection, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations not yet recorded in schema_migrations; the names applied, in order.

    Each migration runs in its own transaction together with its schema_migrations row. A
    session advisory lock makes a second, concurrent migrator wait and then apply nothing.
    """
    migrations = find_migrations(folder)
    applied_now: list[str] = []
    conn.run("SELECT pg_advisory_lock(:key)", key=ADVISORY_LOCK_KEY)
    try:
        conn.run(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {int(row[0]) for row in conn.run("SELECT version FROM schema_migrations")}
        for migration in migrations:
            if migration.version in done:
                continue
            _apply(conn, migration)
            applied_now.append(migration.name)
    finally:
        conn.run("SELECT pg_advisory_unlock(:key)", key=ADVISORY_LOCK_KEY)
    return applied_now


def _apply(conn: pg8000.native.Connection, migration: Migration) -> None:
    conn.run("START TRANSACTION")
    try:
        # No parameters: pg8000 sends the file with the simple query protocol, so it may hold
        # many statements and dollar-quoted function bodies.
        conn.run(migration.sql)
        conn.run(
            "INSERT INTO schema_migrations (version, name) VALUES (:version, :name)",
            version=migration.version,
            name=migration.name,
        )
        conn.run("COMMIT")
    except Exception as exc:
        conn.run("ROLLBACK")
        raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
