"""The only code that talks to Postgres: connections and transactions, migrations, named queries."""

from bat_backfill.db.connect import Connection, Database

__all__ = ["Connection", "Database"]
