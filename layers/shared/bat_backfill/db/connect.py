"""Connections from a postgresql:// URL, and the one connection a process keeps."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeAlias
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import pg8000.exceptions
import pg8000.native

# pg8000 ships no type information, so this is `Any` to mypy; the name still says what it is.
Connection: TypeAlias = pg8000.native.Connection


# The driver's errors under our names, so code outside db/ never imports the driver: a server's
# refusal (args[0] holds its fields: C = SQLSTATE, M = message) and a connection that failed.
ServerError = pg8000.exceptions.DatabaseError
ConnectionFailedError = pg8000.exceptions.InterfaceError


class DatabaseUrlError(ValueError):
    """The database URL cannot be understood."""


def connect(url: str, *, application_name: str = "bat-backfill") -> pg8000.native.Connection:
    """A native pg8000 connection (autocommit unless a transaction is started explicitly)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise DatabaseUrlError("database URL must start with postgresql://")
    if _ambiguous(parts):
        raise DatabaseUrlError(
            "the database URL has an '@' after its host part: a password holding '/', '?', '#' "
            "or '@' must be percent-encoded (%2F, %3F, %23, %40)"
        )
    query = parse_qs(parts.query)
    database = unquote(parts.path.lstrip("/")) or "postgres"
    kwargs: dict[str, object] = {
        "user": unquote(parts.username or "postgres"),
        "database": database,
        "application_name": application_name,
        "timeout": 30,
    }
    if parts.password:
        kwargs["password"] = unquote(parts.password)
    socket_dir = query.get("host", [None])[0]
    if socket_dir and socket_dir.startswith("/"):
        kwargs["unix_sock"] = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}"
    else:
        kwargs["host"] = parts.hostname or "127.0.0.1"
        kwargs["port"] = parts.port or 5432
    sslmode = query.get("sslmode", [None])[0]
    if sslmode in ("require", "verify-ca", "verify-full"):
        import ssl

        context = ssl.create_default_context()
        if sslmode == "require":
            # libpq's meaning: encrypted, certificate not checked (RDS CAs are not in the
            # system store); verify-ca / verify-full check it against the system CAs.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif sslmode == "verify-ca":
            context.check_hostname = False
        kwargs["ssl_context"] = context
    return pg8000.native.Connection(**kwargs)


def redact(url: str) -> str:
    """The URL with its password replaced, safe for logs and error messages.

    >>> redact("postgresql://app:s3cret@db:5432/bat")
    'postgresql://app:***@db:5432/bat'
    >>> redact("postgresql://app:s3/cr@t@db:5432/bat")
    'postgresql://***'
    """
    parts = urlsplit(url)
    if _ambiguous(parts):
        # where the password ends is unknown: nothing after the scheme is safe to show
        return f"{parts.scheme}://***"
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _ambiguous(parts: SplitResult) -> bool:
    """An '@' after the host part: a raw '/', '?' or '#' in the password ended the host part
    early, so host, port and database would be read out of the password."""
    return "@" in parts.path or "@" in parts.query or "@" in parts.fragment


class Database:
    """The process's one connection, opened on first use and reopened after a failure."""

    def __init__(self, url: str | Callable[[], str]) -> None:
        self._url = url
        self._conn: Connection | None = None

    def connection(self) -> Connection:
        if self._conn is None:
            self._conn = connect(self._url if isinstance(self._url, str) else self._url())
        return self._conn

    def reset(self) -> None:
        """Drop a connection that failed; the next use opens a new one."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    close = reset

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        conn = self.connection()
        conn.run("START TRANSACTION")
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(Exception):
                conn.run("ROLLBACK")
            raise
        conn.run("COMMIT")
