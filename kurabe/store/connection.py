"""The connection every part of :class:`~kurabe.store.store.Store` reads and writes through.

One ``sqlite3`` connection behind one re-entrant lock, so the short calls kurabe makes from
several threads (the session's streaming workers, the app) never interleave. The connection runs
in autocommit mode: a single statement is its own transaction, and a write of several statements
goes through :meth:`StoreConnection._transaction`, one ``BEGIN IMMEDIATE`` … ``COMMIT``. With
``synchronous=NORMAL`` (set when :class:`~kurabe.store.store.Store` opens the file) a commit
survives the process being killed at any moment (it is in the WAL file); only a power cut may lose
the last transactions.

The table modules (:mod:`kurabe.store.sessions`, :mod:`kurabe.store.replies`,
:mod:`kurabe.store.ratings`, :mod:`kurabe.store.judging`) are mixins of this class;
:class:`~kurabe.store.store.Store` opens the connection and combines them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


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


class StoreConnection:
    """The connection, its lock and the three ways to use it; opened by :class:`Store`."""

    path: Path
    _lock: threading.RLock
    _conn: sqlite3.Connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Several statements as one ``BEGIN IMMEDIATE`` transaction, rolled back on any error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
