"""The only code that talks to Postgres: connections, migrations, named queries, repositories."""
