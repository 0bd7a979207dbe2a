"""The database every repository of :class:`~kurabe.store.store.Store` reads and writes through.

:class:`Database` is the one seam between kurabe and a database engine. The repositories
(:mod:`kurabe.store.sessions`, :mod:`kurabe.store.replies`, :mod:`kurabe.store.ratings`,
:mod:`kurabe.store.judging`) hand it SQL text with ``?`` placeholders and read rows back by column
name; they never know the engine. Two engines implement it:

- :class:`SqliteDatabase` here, the embedded default: one ``sqlite3`` connection to one file;
- :class:`~kurabe.store.postgres.PostgresDatabase`, a PostgreSQL server a team shares (psycopg 3).

The base class owns what both share: the re-entrant lock that keeps the short calls kurabe makes
from several threads (the session's streaming workers, the app) from interleaving, nested
transactions joining the outer one, and the migrations (:mod:`kurabe.store.schema`, one history
for both engines). An engine says how it begins, commits and rolls back, where it keeps the
schema version, how it serialises two processes migrating the same new database, and how it
turns the one DDL text into its dialect (:meth:`Database.dialect_ddl`). Every other dialect
difference (placeholders, the new row's id, a boolean parameter) stays inside the engine's class.

SQLite runs in autocommit mode: a single statement is its own transaction, and a write of several
statements goes through :meth:`Database.transaction`, one ``BEGIN IMMEDIATE`` … ``COMMIT``. With
``synchronous=NORMAL`` a commit survives the process being killed at any moment (it is in the
WAL file); only a power cut may lose the last transactions. A busy timeout and a retry of the
``BEGIN`` keep SQLite's "database is locked" from ever reaching a user while other processes
write.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from foundation.errors import KurabeError
from kurabe.store.schema import MIGRATIONS, SCHEMA_VERSION

T = TypeVar("T")


class Row(Protocol):
    """One result row, read by column name (``row["id"]``) or by position (``row[0]``)."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def keys(self) -> list[str]: ...

    def __iter__(self) -> Iterator[Any]: ...


class StoreUnavailable(KurabeError):
    """The database cannot be reached (a server restarted, a network cut): what was being
    written was not saved. Said in one line; the caller keeps what it could not save or stops
    with a reason that can be resumed."""


def now_iso() -> str:
    """The current time in UTC, ISO 8601 with milliseconds (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def from_json(text: str | None, default: Any) -> Any:
    """A JSON column's value; ``default`` when it is empty or not JSON."""
    if not text:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return default


def to_json(value: Any) -> str:
    """A value as a JSON column stores it (keys sorted, Japanese kept as it is)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class Database:
    """The seam every repository writes through: statements with ``?`` placeholders, rows read
    by column name, transactions, migrations. Thread-safe for short calls: every statement runs
    under one re-entrant lock, and a transaction holds that lock from its ``BEGIN`` to its
    ``COMMIT``. An engine implements the ``_`` hooks below; build one with
    :func:`kurabe.store.target.open_database`."""

    dialect: ClassVar[str] = ""
    """``sqlite`` or ``postgresql``."""
    integrity_error: ClassVar[type[Exception]] = Exception
    """The engine's error for a broken constraint (a foreign key, a CHECK, a UNIQUE)."""

    def __init__(self, name: str, path: Path | None) -> None:
        self.name = name
        """The database as it may be shown: a file path, or a server URL without its secrets."""
        self.path = path
        """The SQLite file, or None for a server."""
        self._lock = threading.RLock()
        self._depth = 0
        """How many :meth:`transaction` / :meth:`snapshot` blocks the lock's holder is inside."""
        self.reconnect_s = 2.0
        """How long a statement waits for a server that went away to come back before it
        raises :class:`StoreUnavailable` (short in the app, which keeps a rating pending
        instead; a replay waits longer). SQLite has no server."""

    # -- the engine's hooks ---------------------------------------------------------------

    def _run(self, sql: str, params: Sequence[Any], *, fetch: bool, returning_id: bool) -> Any:
        """Run one statement: its rows (``fetch``), the new row's id (``returning_id``), or the
        number of rows changed."""
        raise NotImplementedError

    def _begin(self, write: bool) -> None:
        raise NotImplementedError

    def _end(self, commit: bool) -> None:
        raise NotImplementedError

    def _read_version(self) -> int:
        raise NotImplementedError

    def _write_version(self, number: int) -> None:
        raise NotImplementedError

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Around a migration's transaction: any other process migrating the same database
        waits until it ends (SQLite's ``BEGIN IMMEDIATE`` already does that)."""
        yield

    def dialect_ddl(self, statement: str) -> str:
        """One schema statement, written once for both engines, in this engine's dialect."""
        return statement

    def table_names(self) -> list[str]:
        """The tables of the schema, by name."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- statements -----------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement (its own transaction unless inside one); returns the rows changed."""
        with self._lock:
            return int(self._run(sql, params, fetch=False, returning_id=False))

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one ``INSERT`` into a table with an ``id`` key; returns the new row's id."""
        with self._lock:
            return int(self._run(sql, params, fetch=False, returning_id=True) or 0)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row one ``SELECT`` returns."""
        with self._lock:
            rows: list[Row] = self._run(sql, params, fetch=True, returning_id=False)
            return rows

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row one ``SELECT`` returns, or None."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The statements of the block as one write transaction, rolled back on any error.
        Inside another transaction of the same thread it joins that one, so a repository's
        write can be part of another's."""
        with self._lock, self._begun(write=True):
            yield

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """The reads of the block see one consistent state of the database (one read
        transaction under the lock), whatever other connections commit meanwhile."""
        with self._lock, self._begun(write=False):
            yield

    @contextmanager
    def _begun(self, *, write: bool) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin(write)
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._end(commit=False)
            raise
        self._depth = 0
        self._end(commit=True)

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    # -- schema ---------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """How many of :data:`~kurabe.store.schema.MIGRATIONS` this database has run."""
        with self._lock:
            return self._read_version()

    def migrate(self, target: int = SCHEMA_VERSION) -> int:
        """Apply the numbered migrations up to ``target``; returns the version reached."""
        with self._lock:
            current = self.schema_version
            if current > SCHEMA_VERSION:
                raise KurabeError(
                    f"{self.name}: database schema v{current} is newer than this kurabe "
                    f"(v{SCHEMA_VERSION}); upgrade kurabe"
                )
            if current >= target:
                return current
            for number in range(current + 1, target + 1):
                # Each step takes the engine's migration lock and looks at the version again
                # inside it, so two processes opening a new database at once do not both run a
                # migration.
                with self._migration_lock(), self.transaction():
                    if self._read_version() < number:
                        for statement in _statements(MIGRATIONS[number - 1]):
                            self.execute(self.dialect_ddl(statement))
                        self._write_version(number)
            return self.schema_version

    def dump_text(self) -> str:
        """Every stored value as text (for tests that look for a leaked secret)."""
        parts: list[str] = []
        with self.snapshot():
            for table in self.table_names():
                for row in self.query(f'SELECT * FROM "{table}"'):
                    parts.extend(str(value) for value in row)
        return "\n".join(parts)

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqliteDatabase(Database):
    """One SQLite file (or ``:memory:``): the embedded default, no server, no setup."""

    dialect: ClassVar[str] = "sqlite"
    integrity_error: ClassVar[type[Exception]] = sqlite3.IntegrityError
    busy_wait_s: ClassVar[float] = 30.0
    """How long a write waits for another process's write before it gives up (SQLite's busy
    timeout, then retries of a ``BEGIN`` that still answered "locked")."""

    def __init__(self, path: Path | str, *, migrate: bool = True) -> None:
        super().__init__(str(path), Path(path))
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=self.busy_wait_s
            )
        except sqlite3.Error as exc:
            raise KurabeError(f"cannot open database {path}: {exc}") from None
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute(f"PRAGMA busy_timeout={int(self.busy_wait_s * 1000)}")
            # Switching a new file to WAL needs it to itself, and SQLite answers "locked" at once
            # (no busy wait) when another connection is opening it too: try again shortly.
            self._retry_locked(lambda: self._conn.execute("PRAGMA journal_mode=WAL"))
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            if migrate:
                self.migrate()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise KurabeError(f"{path}: not a kurabe database ({exc})") from None

    def _retry_locked(self, action: Callable[[], T]) -> T:
        """``action``, tried again while SQLite answers "locked" without waiting (a WAL switch,
        a read transaction upgraded to a write), for up to :attr:`busy_wait_s`."""
        deadline = time.monotonic() + self.busy_wait_s
        delay = 0.005
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise StoreUnavailable(
                        f"{self.name}: another process kept the database busy for "
                        f"{self.busy_wait_s:.0f} s"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    def _run(self, sql: str, params: Sequence[Any], *, fetch: bool, returning_id: bool) -> Any:
        cursor = self._retry_locked(lambda: self._conn.execute(sql, params))
        if fetch:
            return cursor.fetchall()
        if returning_id:
            return cursor.lastrowid
        return cursor.rowcount

    def _begin(self, write: bool) -> None:
        self._retry_locked(lambda: self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN"))

    def _end(self, commit: bool) -> None:
        self._conn.execute("COMMIT" if commit else "ROLLBACK")

    def _read_version(self) -> int:
        row = self._conn.execute("PRAGMA user_version").fetchone()
        return int(row[0]) if row else 0

    def _write_version(self, number: int) -> None:
        self._conn.execute(f"PRAGMA user_version = {int(number)}")

    def table_names(self) -> list[str]:
        rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _statements(script: str) -> list[str]:
    """Split a migration script into complete SQL statements."""
    statements = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
