"""Open pg8000 connections from a postgresql:// URL."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.native


class DatabaseUrlError(ValueError):
    """The database URL cannot be understood."""


def connect(url: str, *, application_name: str = "bat-backfill") -> pg8000.native.Connection:
    """A native pg8000 connection (autocommit unless a transaction is started explicitly)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise DatabaseUrlError("database URL must start with postgresql://")
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
    """
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
