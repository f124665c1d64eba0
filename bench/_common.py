"""Shared helpers for the benchmarks: arguments, a Postgres to run against, timing, output.

Each benchmark prints readable progress and, as its last line, one JSON object with its figures.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bat_backfill_tools import localpg

from bat_backfill.db.connect import connect, redact
from bat_backfill.db.migrate import migrate

# bench/queue.py shares its name with the standard library's `queue` (imported by urllib3,
# multiprocessing, concurrent.futures): keep this folder behind the standard library.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH] + [str(_BENCH)]
if str(getattr(sys.modules.get("queue"), "__file__", "")).startswith(str(_BENCH)):
    del sys.modules["queue"]

ROOT = _BENCH.parent

_STARTED = time.monotonic()


def parser(description: str, *, database: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check")
    if database:
        p.add_argument(
            "--database-url",
            default=os.environ.get("TEST_DATABASE_URL") or None,
            help="an existing server to use (a scratch database is created in it and dropped); "
            "default TEST_DATABASE_URL, else a throwaway cluster",
        )
    return p


def say(text: str) -> None:
    """One progress line, stamped with the seconds since the benchmark started."""
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {text}", flush=True)


def code_version() -> dict[str, Any]:
    """Which code was measured: git HEAD, whether the package differs from it, and a digest
    of the package's files (the tree changes while people work in it)."""
    package = ROOT / "layers" / "shared" / "bat_backfill"
    digest = hashlib.sha1()  # a fingerprint, not security
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".sql") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "git_head": git("rev-parse", "--short", "HEAD"),
        "package_modified": bool(git("status", "--porcelain", "--", str(package))),
        "package_digest": digest.hexdigest()[:12],
    }


def emit(figures: dict[str, Any]) -> None:
    """The benchmark's figures as one JSON object: always the last line printed."""
    figures = {
        **figures,
        "code": code_version(),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(figures, default=str, separators=(",", ":")), flush=True)


def connect_unbounded(url: str, application_name: str) -> Any:
    """connect(), minus its 30 s socket timeout: bulk loads of a million rows take longer."""
    conn = connect(url, application_name=application_name)
    sock = getattr(conn, "_usock", None)  # pg8000's socket; the timeout is set on it
    if sock is not None:
        sock.settimeout(None)
    return conn


@dataclass
class Database:
    url: str  # a database of our own, migrated
    cluster: localpg.LocalPostgres | None  # set when we started a throwaway cluster

    @property
    def server_log(self) -> Path | None:
        return self.cluster.root / "server.log" if self.cluster else None


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@contextlib.contextmanager
def database(url: str | None, label: str, *, run_migrations: bool = True) -> Iterator[Database]:
    """A fresh database for one benchmark, dropped (or its throwaway cluster discarded) after.

    With `url`, a scratch database is created on that server, so existing data is never
    touched; without, a throwaway cluster is started from the machine's Postgres binaries.
    """
    cluster = None
    scratch = None
    if url:
        scratch = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        admin = connect(url)
        admin.run(f'CREATE DATABASE "{scratch}"')
        admin.close()
        db_url = _with_database(url, scratch)
        say(f"scratch database {scratch} on {redact(url)}")
    else:
        say("starting a throwaway Postgres cluster")
        cluster = localpg.start_throwaway()
        db_url = cluster.url
        say(f"throwaway cluster on port {cluster.port} ({cluster.root})")
    try:
        if run_migrations:
            conn = connect(db_url)
            migrate(conn)
            conn.close()
        yield Database(db_url, cluster)
    finally:
        if cluster is not None:
            localpg.discard(cluster)
            say("throwaway cluster discarded")
        elif url and scratch:
            admin = connect(url)
            admin.run(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
            admin.close()
            say(f"scratch database {scratch} dropped")


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def stats_ms(values: list[float]) -> dict[str, float]:
    """Median, p95, min and max of timings already in milliseconds, rounded for reading."""
    return {
        "runs": len(values),
        "median_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 95), 2),
        "min_ms": round(min(values), 2),
        "max_ms": round(max(values), 2),
    }


def time_ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of one call in milliseconds, and its result."""
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def verdict(value: float, target: float, *, higher_is_better: bool = False) -> str:
    """'meets' or 'misses' the target, for the readable report (never an assertion)."""
    ok = value >= target if higher_is_better else value <= target
    return "meets target" if ok else "MISSES target"
