"""A throwaway or reusable local Postgres cluster started from the machine's server binaries."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class LocalPostgresError(RuntimeError):
    """The machine's Postgres server binaries are missing or the cluster would not start."""


def find_bindir() -> Path:
    """Folder holding initdb and pg_ctl: pg_config --bindir, PATH, then Debian's layout."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise LocalPostgresError(
        "no Postgres server binaries (initdb, pg_ctl) found; install them "
        "(Debian: apt-get install postgresql) or set TEST_DATABASE_URL / --database-url"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; drop to the postgres system user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _hand_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
        for child in path.rglob("*"):
            shutil.chown(child, "postgres", "postgres")


@dataclass
class LocalPostgres:
    """One cluster in `root` (data/ inside it) listening on 127.0.0.1:`port`."""

    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def ensure_database(self, name: str) -> str:
        """The URL of database `name` in this cluster, created first if it does not exist."""
        return create_database(self.url, name, exist_ok=True)

    @property
    def log(self) -> Path:
        """The server's log (pg_ctl appends to it on every start)."""
        return self.root / "server.log"

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(_as_server_user(argv), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LocalPostgresError(f"{Path(argv[0]).name} failed: {_one_line(done.stderr)}")

    def _did_not_start(self, reason: str) -> LocalPostgresError:
        """One line: why, as the server's log says it, and where that log is."""
        said = _last_complaint(self.log)
        where = f"its log: {self.log}" if self.log.exists() else f"no log was written ({self.log})"
        return LocalPostgresError(
            f"Postgres in {self.data} did not start ({said or reason}); {where}"
        )

    def init(self) -> None:
        bindir = find_bindir()
        self.root.mkdir(parents=True, exist_ok=True)
        _hand_to_server_user(self.root)
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "--no-sync",
                "-U",
                "postgres",
                "-E",
                "UTF8",
            ]
        )

    def is_running(self) -> bool:
        pid = self.data / "postmaster.pid"
        if not pid.exists():
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self) -> None:
        bindir = find_bindir()
        # Durability is pointless for a throwaway cluster; these settings make it ~fast.
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        try:
            self._run(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "30",
                    "start",
                ]
            )
        except LocalPostgresError as exc:
            raise self._did_not_start(str(exc)) from exc
        deadline = time.monotonic() + 30
        while not self.is_running():
            if time.monotonic() > deadline:
                raise self._did_not_start(f"nothing listens on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        bindir = find_bindir()
        with contextlib.suppress(LocalPostgresError):
            self._run([str(bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def _last_complaint(log: Path) -> str | None:
    """The last FATAL/PANIC/ERROR line of a server log (else its last line), or None."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    for line in reversed(lines[-200:]):
        # "2026-01-02 03:04:05.678 UTC [123] FATAL:  ..." -> "FATAL: ..."
        found = re.search(r"\b(FATAL|PANIC|ERROR):\s*(.*)", line)
        if found:
            return _one_line(f"{found[1]}: {found[2]}")
    return _one_line(lines[-1]) if lines else None


def _database_url(server_url: str, name: str) -> str:
    return f"{server_url.rpartition('/')[0]}/{name}"


def create_database(server_url: str, name: str, *, exist_ok: bool = False) -> str:
    """Create database `name` on the server of `server_url` (a plain identifier); its URL."""
    from bat_backfill.db.connect import connect

    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain database name: {name!r}")
    admin = connect(server_url)
    try:
        if not (exist_ok and admin.run("SELECT 1 FROM pg_database WHERE datname = :n", n=name)):
            admin.run(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    return _database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database `name` on the server of `server_url`, sessions and all, if it exists."""
    from bat_backfill.db.connect import connect

    admin = connect(server_url)
    try:
        admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def start_throwaway() -> LocalPostgres:
    """A new cluster in a fresh temp folder; call `discard` when done."""
    root = Path(tempfile.mkdtemp(prefix="bat-backfill-pg-"))
    os.chmod(root, 0o755)  # noqa: S103 - the postgres user must reach its data folder
    cluster = LocalPostgres(root=root, port=free_port())
    cluster.init()
    cluster.start()
    return cluster


def discard(cluster: LocalPostgres) -> None:
    cluster.stop()
    shutil.rmtree(cluster.root, ignore_errors=True)


def start_persistent(root: Path) -> LocalPostgres:
    """Start (or reuse) the cluster kept in `root`, remembering its port in root/port."""
    root = root.resolve()
    port_file = root / "port"
    if (root / "data" / "PG_VERSION").exists() and port_file.exists():
        cluster = LocalPostgres(root=root, port=int(port_file.read_text()))
        if cluster.is_running():
            return cluster
        # A stale pid file from a killed server would make pg_ctl refuse to start.
        stale = cluster.data / "postmaster.pid"
        if stale.exists():
            stale.unlink()
        cluster.start()
        return cluster
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # noqa: S103 - the postgres user must reach its data folder
    cluster = LocalPostgres(root=root, port=free_port())
    cluster.init()
    port_file.write_text(str(cluster.port))
    cluster.start()
    return cluster
