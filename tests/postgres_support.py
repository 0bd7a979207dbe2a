"""A real PostgreSQL server for the tests, started by the suite itself: Debian's server binaries,
``initdb`` into a temporary directory, ``pg_ctl`` on a free loopback port (127.0.0.1 only, its
unix socket in that directory), as the ``postgres`` user when the tests run as root.

Outside CI a missing server skips the tests that need it, with one line saying how to install it;
under CI (``CI=true``) they fail instead (:func:`require_server`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from backends.api_errors import public_url

if TYPE_CHECKING:
    from kurabe.store.store import Store

INSTALL_HINT = (
    "PostgreSQL server binaries not found (initdb, pg_ctl): "
    "sudo apt-get install postgresql  (or set KURABE_PG_BIN to their directory)"
)


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None."""
    override = os.environ.get("KURABE_PG_BIN", "").strip()
    candidates = [Path(override)] if override else []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        candidates.extend(
            sorted((p / "bin" for p in root.iterdir()), key=lambda p: p.parent.name, reverse=True)
        )
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


def require_server() -> Path:
    """The binaries' directory; skips (fails under ``CI=true``) when there is none."""
    directory = find_bin_dir()
    if directory is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    return directory


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One throw-away PostgreSQL cluster on 127.0.0.1, trusted for local connections."""

    user = "kurabe"

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="kurabe-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            os.chmod(self.root, 0o755)

    def _run(self, args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def init(self, *, durable: bool = False) -> None:
        """A new cluster; ``durable``: PostgreSQL's default durability (fsync and synchronous
        commits on, for a benchmark), else the tests' faster settings."""
        self._run(
            [
                "initdb",
                "-D",
                str(self.data),
                "-U",
                self.user,
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nmax_connections = 200\n"
            )
            if not durable:
                conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")

    def start(self) -> None:
        self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._run(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new empty database's URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PathsOnPostgres:
    """While a test runs on the ``postgres`` side of ``store_engine``: each SQLite path the test
    names stands for one PostgreSQL database of ``server`` (made on first use)."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.databases: dict[str, str] = {}

    def target_for(self, path: str | Path) -> str:
        key = str(Path(path).resolve())
        if key not in self.databases:
            self.databases[key] = self.server.create_database()
        return self.databases[key]


active: list[PathsOnPostgres] = []
"""The mapping in force for the running test (empty on SQLite)."""


def engine_target(path: Path) -> str | Path:
    """What a test hands another process as ``--db``: ``path``, or its PostgreSQL database."""
    return active[-1].target_for(path) if active else path


def db_arg(store: Store) -> str:
    """What a test passes as ``--db`` to reach ``store`` again: its file, or its database's
    URL (what the store shows of a URL leaves the user out)."""
    if store.path is not None:
        return str(store.path)
    for paths in active:
        for url in paths.databases.values():
            if public_url(url) == store.name:
                return url
    raise LookupError(f"no URL known for {store.name}")
