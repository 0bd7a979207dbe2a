"""The database every repository of :class:`~kurabe.store.store.Store` reads and writes through.

:class:`Database` owns the one ``sqlite3`` connection, the re-entrant lock that keeps the short
calls kurabe makes from several threads (the session's streaming workers, the app) from
interleaving, the transactions, and the schema's migrations (:mod:`kurabe.store.schema`). It is
the one place that knows the engine: the repositories (:mod:`kurabe.store.sessions`,
:mod:`kurabe.store.replies`, :mod:`kurabe.store.ratings`, :mod:`kurabe.store.judging`) hand it
SQL text with ``?`` placeholders and read rows back by column name, so a second engine is a
second implementation of this class (its placeholders, its locking, its migrations), not a change
to the repositories.

The connection runs in autocommit mode: a single statement is its own transaction, and a write of
several statements goes through :meth:`Database.transaction`, one ``BEGIN IMMEDIATE`` …
``COMMIT``. With ``synchronous=NORMAL`` a commit survives the process being killed at any moment
(it is in the WAL file); only a power cut may lose the last transactions.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeAlias

from foundation.errors import KurabeError
from kurabe.store.schema import MIGRATIONS, SCHEMA_VERSION

Row: TypeAlias = sqlite3.Row
"""One result row, read by column name (``row["id"]``) or by position (``row[0]``)."""


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
    """One SQLite file (or ``:memory:``): its connection, lock, transactions and migrations.

    Thread-safe for short calls: every statement runs under one re-entrant lock, and a
    transaction holds that lock from its ``BEGIN`` to its ``COMMIT``.
    """

    def __init__(self, path: Path | str, *, migrate: bool = True) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0
        """How many :meth:`transaction` / :meth:`snapshot` blocks the lock's holder is inside."""
        try:
            self._conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except sqlite3.Error as exc:
            raise KurabeError(f"cannot open database {path}: {exc}") from None
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA busy_timeout=10000")
            # Switching a new file to WAL needs it to itself, and SQLite answers "locked" at once
            # (no busy wait) when another connection is opening it too: try again shortly.
            for attempt in range(50):
                try:
                    self._conn.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or attempt == 49:
                        raise
                    time.sleep(0.05)
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            if migrate:
                self.migrate()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise KurabeError(f"{path}: not a kurabe database ({exc})") from None

    # -- statements -----------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement (its own transaction unless inside one); returns the rows changed."""
        with self._lock:
            return int(self._conn.execute(sql, params).rowcount)

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one ``INSERT``; returns the new row's id."""
        with self._lock:
            return int(self._conn.execute(sql, params).lastrowid or 0)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row one ``SELECT`` (or ``PRAGMA``) returns."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row one ``SELECT`` returns, or None."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The statements of the block as one write transaction (``BEGIN IMMEDIATE``), rolled
        back on any error. Inside another transaction of the same thread it joins that one, so
        a repository's write can be part of another's."""
        with self._lock, self._begun("BEGIN IMMEDIATE"):
            yield

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """The reads of the block see one consistent state of the database (one read
        transaction under the lock), whatever other connections commit meanwhile."""
        with self._lock, self._begun("BEGIN"):
            yield

    @contextmanager
    def _begun(self, begin: str) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._conn.execute(begin)
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self._conn.execute("COMMIT")

    # -- schema ---------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """How many of :data:`~kurabe.store.schema.MIGRATIONS` this database has run."""
        row = self.query_one("PRAGMA user_version")
        return int(row[0]) if row else 0

    def migrate(self, target: int = SCHEMA_VERSION) -> int:
        """Apply the numbered migrations up to ``target``; returns the version reached."""
        with self._lock:
            current = self.schema_version
            if current > SCHEMA_VERSION:
                raise KurabeError(
                    f"{self.path}: database schema v{current} is newer than this kurabe "
                    f"(v{SCHEMA_VERSION}); upgrade kurabe"
                )
            if current >= target:
                return current
            for number in range(current + 1, target + 1):
                # Each step takes the write lock and looks at the version again inside it, so
                # two processes opening a new database at once do not both run a migration.
                with self.transaction():
                    if self.schema_version < number:
                        for statement in _statements(MIGRATIONS[number - 1]):
                            self.execute(statement)
                        self.execute(f"PRAGMA user_version = {number}")
            return self.schema_version

    def table_names(self) -> list[str]:
        """The tables of the schema, by name."""
        rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [str(row[0]) for row in rows]

    def dump_text(self) -> str:
        """Every stored value as text (for tests that look for a leaked secret)."""
        parts: list[str] = []
        with self.snapshot():
            for table in self.table_names():
                for row in self.query(f'SELECT * FROM "{table}"'):
                    parts.extend(str(value) for value in row)
        return "\n".join(parts)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
