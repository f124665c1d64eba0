"""Named SQL queries, loaded once from every db/sql/*.sql file."""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pg8000.native

SQL_DIR = Path(__file__).resolve().parent / "sql"

_NAME_LINE = re.compile(r"^--\s*name:\s*(?P<name>\S*)\s*$")
_VALID_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_PURPOSE_PREFIX = re.compile(r"^--\s*(purpose:\s*)?", re.IGNORECASE)


class QueryFileError(ValueError):
    """A .sql file does not follow the `-- name:` / `-- purpose` / SQL layout."""


class UnknownQueryError(KeyError):
    """No .sql file defines a query of that name."""


@dataclass(frozen=True, slots=True)
class NamedQuery:
    """One query from a .sql file: its name, its one-line purpose and its SQL."""

    name: str
    purpose: str
    sql: str
    source: str


def parse_queries(text: str, source: str) -> list[NamedQuery]:
    """The queries in one file: `-- name: x`, then a one-line `-- purpose`, then the SQL.

    Comments and blank lines before the first name line are the file's own header.

    >>> [q.name for q in parse_queries("-- name: one\\n-- Says one.\\nSELECT 1;\\n", "x.sql")]
    ['one']
    >>> parse_queries("-- name: one\\n-- Says one.\\nSELECT 1;\\n", "x.sql")[0].sql
    'SELECT 1'
    """
    found: list[NamedQuery] = []
    current: str | None = None
    purpose: str | None = None
    body: list[str] = []

    def finish(line_no: int) -> None:
        if current is None:
            return
        sql = "\n".join(body).strip().removesuffix(";").rstrip()
        if not purpose:
            raise QueryFileError(f"{source}: query {current!r} lacks its one-line -- purpose")
        if not sql:
            raise QueryFileError(f"{source}:{line_no}: query {current!r} has no SQL")
        found.append(NamedQuery(current, purpose, sql, source))

    for line_no, line in enumerate(text.splitlines(), start=1):
        match = _NAME_LINE.match(line.strip())
        if match:
            finish(line_no)
            current, purpose, body = match["name"], None, []
            if not _VALID_NAME.match(current):
                raise QueryFileError(f"{source}:{line_no}: bad query name {current!r}")
        elif current is None:
            if line.strip() and not line.lstrip().startswith("--"):
                raise QueryFileError(f"{source}:{line_no}: SQL before the first -- name: line")
        elif purpose is None:
            if not line.strip():
                continue
            if not line.lstrip().startswith("--"):
                raise QueryFileError(
                    f"{source}:{line_no}: query {current!r} lacks its one-line -- purpose"
                )
            purpose = _PURPOSE_PREFIX.sub("", line.strip()).strip()
        else:
            body.append(line)
    finish(len(text.splitlines()))
    return found


def load_queries(folder: Path = SQL_DIR) -> dict[str, NamedQuery]:
    """Every named query in `folder`/*.sql; a name defined twice is an error."""
    catalogue: dict[str, NamedQuery] = {}
    for path in sorted(folder.glob("*.sql")):
        for named in parse_queries(path.read_text("utf-8"), path.name):
            if named.name in catalogue:
                first = catalogue[named.name].source
                raise QueryFileError(f"query {named.name!r} is defined in {first} and {path.name}")
            catalogue[named.name] = named
    return catalogue


@functools.cache
def all_queries() -> Mapping[str, NamedQuery]:
    """The named queries of the package, read from disk on first use only."""
    return MappingProxyType(load_queries())


def named_query(name: str) -> NamedQuery:
    try:
        return all_queries()[name]
    except KeyError:
        raise UnknownQueryError(f"no query named {name!r} in {SQL_DIR}/*.sql") from None


def query(name: str) -> str:
    """The SQL of the named query (pg8000 `:param` style)."""
    return named_query(name).sql


class Rows(list[list[Any]]):
    """Result rows of a named query, with the column names."""

    names: tuple[str, ...] = ()

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.names, row, strict=True)) for row in self]


# Statements prepared per connection: parsing the SQL text and planning it once instead of
# on every call halves the cost of a claim or completion (pg8000 re-reads `:param` SQL and
# makes three round trips for an unprepared statement).
_prepared: weakref.WeakKeyDictionary[pg8000.native.Connection, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


def run_query(conn: pg8000.native.Connection, named: NamedQuery, **params: Any) -> Rows:
    """Run a query from another catalogue (see `load_queries`) once, unprepared."""
    rows = Rows(conn.run(named.sql, **params) or [])
    rows.names = tuple(c["name"] for c in conn.columns or ())
    return rows


def run_named(conn: pg8000.native.Connection, name: str, **params: Any) -> Rows:
    """Run a named query as a statement prepared once per connection."""
    statements = _prepared.setdefault(conn, {})
    statement = statements.get(name)
    if statement is None:
        statement = conn.prepare(query(name))
        statements[name] = statement
    rows = Rows(statement.run(**params) or [])
    rows.names = tuple(c["name"] for c in statement.columns or ())
    return rows
