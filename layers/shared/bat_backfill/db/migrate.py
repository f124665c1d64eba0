"""Apply the versioned schema migrations in db/sql/migrations once each, under an advisory lock.

The schema is a superset of the original system's: on a database that system left behind, the
migrations adopt its tables in place (IF NOT EXISTS, ADD COLUMN IF NOT EXISTS). Before any change,
`incompatibilities` checks what the migrations cannot adopt (a column bat-backfill reads with a
type it cannot use, ids that are not uuids, a queue without one row per vehicle) and `migrate`
refuses it; `plan` shows every change without making one."""

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


class IncompatibleSchemaError(MigrationError):
    """The database holds tables in a shape the migrations cannot adopt; nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "the database cannot be adopted, nothing was changed: " + "; ".join(problems)
        )
        self.problems = problems


# The columns of the original system's tables that bat-backfill reads or writes, by kind of
# type. An existing column of another kind is an incompatibility (never retyped); a missing
# one is added by 0002. tests/integration/test_schema.py checks this against the migrations.
_KINDS = {
    "uuid": "uuid",
    "text": "text",
    "character varying": "text",
    "integer": "integer",
    "bigint": "integer",
    "smallint": "integer",
    "numeric": "number",
    "timestamp with time zone": "instant",
    "date": "date",
    "jsonb": "json",
    "text[]": "text list",
    "boolean": "boolean",
}
ORIGINAL_COLUMNS: dict[str, dict[str, str]] = {
    "vehicles": {
        "id": "uuid",
        **dict.fromkeys(
            [
                "make",
                "model",
                "vin",
                "color",
                "interior_color",
                "transmission",
                "drivetrain",
                "engine_size",
                "bat_auction_url",
                "discovery_url",
                "listing_title",
                "auction_outcome",
                "sale_status",
                "reserve_status",
                "auction_end_date",
                "bat_seller",
                "bat_buyer",
                "bat_location",
                "bat_lot_number",
                "mileage_unit",
            ],
            "text",
        ),
        **dict.fromkeys(
            [
                "year",
                "mileage",
                "high_bid",
                "winning_bid",
                "bid_count",
                "bat_bids",
                "bat_comments",
                "bat_views",
                "bat_watchers",
            ],
            "integer",
        ),
        "sale_price": "number",
        "sale_date": "date",
        "image_urls": "text list",
        "created_at": "instant",
        "updated_at": "instant",
    },
    "auction_events": {
        "id": "uuid",
        "vehicle_id": "uuid",
        **dict.fromkeys(
            [
                "source",
                "source_url",
                "lot_number",
                "outcome",
                "winning_bidder",
                "seller_name",
                "currency",
                "snapshot_key",
            ],
            "text",
        ),
        **dict.fromkeys(["high_bid", "winning_bid"], "number"),
        **dict.fromkeys(["total_bids", "page_views", "watchers", "comments_count"], "integer"),
        **dict.fromkeys(
            ["auction_end_date", "extracted_at", "created_at", "updated_at"], "instant"
        ),
    },
    "bat_extraction_queue": {
        "vehicle_id": "uuid",
        **dict.fromkeys(
            ["bat_url", "status", "error_message", "locked_by", "reason", "error_kind"], "text"
        ),
        **dict.fromkeys(
            ["priority", "attempts", "job_no", "lease_generation", "attempts_carried"], "integer"
        ),
        **dict.fromkeys(
            [
                "created_at",
                "updated_at",
                "completed_at",
                "next_attempt_at",
                "locked_at",
                "last_attempt_at",
                "dispatched_at",
                "lease_expires_at",
            ],
            "instant",
        ),
    },
}


# The columns an existing table must already have: its key, and the queue columns that every
# row of the original system's queue was written with (the seed's claim index reads them).
_REQUIRED_COLUMNS = {
    "vehicles": ("id",),
    "auction_events": ("id",),
    "bat_extraction_queue": ("vehicle_id", "bat_url", "status", "priority", "created_at"),
}


def _kind(type_name: str) -> str:
    return _KINDS.get(type_name.split("(")[0], type_name)


def incompatibilities(conn: pg8000.native.Connection) -> list[str]:
    """What the migrations cannot adopt in this database, one sentence each (empty: none)."""
    problems: list[str] = []
    version = int(conn.run("SHOW server_version_num")[0][0])
    if version < 130000:
        problems.append(f"Postgres {version // 10000} is too old: bat-backfill needs 13 or newer")
    rows = conn.run(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), c.relkind"
        "  FROM pg_class c"
        "  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
        " WHERE c.relnamespace = current_schema()::regnamespace"
        "   AND c.relname = ANY(CAST(:tables AS text[]))",
        tables=list(ORIGINAL_COLUMNS),
    )
    for table, column, type_name, relkind in rows:
        if relkind not in ("r", "p"):
            problems.append(f"{table} is not a table (relkind {relkind!r})")
            continue
        wanted = ORIGINAL_COLUMNS[table].get(column)
        if wanted is not None and _kind(type_name) != wanted:
            problems.append(
                f"{table}.{column} is {type_name}, bat-backfill needs a {wanted} column "
                "(it never retypes a column)"
            )
    tables = {row[0] for row in rows}
    present = {(row[0], row[1]) for row in rows}
    problems += [
        f"{table} has no {column} column: bat-backfill adds nullable columns but cannot invent "
        "this one for the rows already there"
        for table, columns in _REQUIRED_COLUMNS.items()
        if table in tables
        for column in columns
        if (table, column) not in present
    ]
    if "bat_extraction_queue" in tables and not conn.run(
        "SELECT 1 FROM pg_index i"
        "  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " WHERE i.indrelid = CAST('bat_extraction_queue' AS regclass)"
        "   AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL"
        "   AND a.attname = 'vehicle_id'"
    ):
        problems.append(
            "bat_extraction_queue has no unique index on vehicle_id alone: the seed's "
            "ON CONFLICT (vehicle_id) needs one row per vehicle"
        )
    return sorted(set(problems))


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    """What `migrate` would do: the migrations to apply, each object they would add or replace,
    and what stops them."""

    pending: list[str]
    changes: list[str]
    incompatibilities: list[str]


# Every object of the schema a migration can add or replace, as (kind, name, definition).
_CATALOG = """
SELECT 'table', c.relname::text, '' FROM pg_class c
 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
UNION ALL
SELECT 'column', c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
UNION ALL
SELECT 'column default', c.relname || '.' || a.attname, pg_get_expr(d.adbin, d.adrelid)
  FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid
  JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
 WHERE c.relnamespace = current_schema()::regnamespace
UNION ALL
SELECT 'index', i.relname::text, pg_get_indexdef(i.oid) FROM pg_class i
 WHERE i.relnamespace = current_schema()::regnamespace AND i.relkind = 'i'
UNION ALL
SELECT 'sequence', s.relname::text, '' FROM pg_class s
 WHERE s.relnamespace = current_schema()::regnamespace AND s.relkind = 'S'
UNION ALL
SELECT 'function', p.oid::regprocedure::text, md5(pg_get_functiondef(p.oid)) FROM pg_proc p
 WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind = 'f'
UNION ALL
SELECT 'trigger', t.tgname || ' on ' || t.tgrelid::regclass::text, md5(pg_get_triggerdef(t.oid))
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal
"""


def _catalog(conn: pg8000.native.Connection) -> dict[tuple[str, str], str]:
    return {(str(k), str(n)): str(d) for k, n, d in conn.run(_CATALOG)}


def plan(conn: pg8000.native.Connection, folder: Path = MIGRATIONS_DIR) -> MigrationPlan:
    """What `migrate` would change, found by applying the pending migrations in one transaction
    and rolling it back: nothing is changed. Its locks and its time are those of `migrate`."""
    problems = incompatibilities(conn)
    done = _applied(conn)
    pending = [m for m in find_migrations(folder) if m.version not in done]
    if problems or not pending:
        return MigrationPlan([m.name for m in pending], [], problems)
    before = _catalog(conn)
    conn.run("START TRANSACTION")
    try:
        for migration in pending:
            conn.run(migration.sql)
        after = _catalog(conn)
    finally:
        conn.run("ROLLBACK")
    return MigrationPlan([m.name for m in pending], _changes(before, after), problems)


# The order `plan` lists changes in: new tables first, then what is added to existing ones.
_KIND_ORDER = ("table", "column", "column default", "sequence", "index", "function", "trigger")


def _changes(before: dict[tuple[str, str], str], after: dict[tuple[str, str], str]) -> list[str]:
    """One line per object added or replaced; the parts of a new table are its own line."""
    new_tables = {name for kind, name in after.keys() - before.keys() if kind == "table"}
    new_indexes = {
        name
        for (kind, name), definition in after.items()
        if kind == "index" and any(f" ON public.{t} " in definition for t in new_tables)
    }

    def part_of_new_table(kind: str, name: str) -> bool:
        if kind in ("column", "column default"):
            return name.split(".")[0] in new_tables
        return kind == "index" and name in new_indexes and name.endswith("_pkey")

    lines: list[tuple[int, str]] = []
    for (kind, name), definition in after.items():
        order = _KIND_ORDER.index(kind)
        if (kind, name) not in before:
            if part_of_new_table(kind, name):
                continue
            extra = f" {definition}" if kind == "column" else ""
            lines.append((order, f"add {kind} {name}{extra}"))
        elif before[(kind, name)] != definition:
            verb = "CHANGE" if kind == "column" else "replace"
            lines.append((order, f"{verb} {kind} {name}"))
    for kind, name in before.keys() - after.keys():
        lines.append((_KIND_ORDER.index(kind), f"DROP {kind} {name}"))
    return [line for _, line in sorted(lines)]


def _applied(conn: pg8000.native.Connection) -> set[int]:
    if not conn.run("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]:
        return set()
    return {int(row[0]) for row in conn.run("SELECT version FROM schema_migrations")}


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
    session advisory lock makes a second, concurrent migrator wait and then apply nothing. A
    database with tables the migrations cannot adopt is refused before any change
    (IncompatibleSchemaError).
    """
    migrations = find_migrations(folder)
    applied_now: list[str] = []
    conn.run("SELECT pg_advisory_lock(:key)", key=ADVISORY_LOCK_KEY)
    try:
        problems = incompatibilities(conn)
        if problems:
            raise IncompatibleSchemaError(problems)
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
