"""The SQLite store of comparison sessions: panes, turns, replies, ratings, verdicts, picks, events.

One database file (``kurabe.sqlite3`` in the data directory unless ``--db PATH``), opened in WAL
mode with foreign keys on. The schema is versioned with ``PRAGMA user_version`` and upgraded by
:data:`~kurabe.store.schema.MIGRATIONS`, numbered SQL scripts applied in order, each in one
transaction. Everything is committed as it happens (a completed reply, a rating, a verdict, a
pick, a streaming reply's text every half second), so a killed process loses at most the last half
second of a stream.

:class:`Store` is the database's one interface, one connection behind one lock. This module opens
the file and upgrades its schema; the tables are read and written by mixins, one module per
family of tables, each write method beside the read that returns its rows:

- :mod:`kurabe.store.connection`: the connection, its lock, the transaction helper;
- :mod:`kurabe.store.sessions`: sessions, panes and events, and the list of sessions;
- :mod:`kurabe.store.replies`: turns and replies, and a reply's life from streaming to its end;
- :mod:`kurabe.store.ratings`: ratings, verdicts and picks, append-only;
- :mod:`kurabe.store.judging`: judge runs and judgements (a judge's score is also a rating);
- :mod:`kurabe.store.schema`: the tables themselves, as the numbered migrations;
- :mod:`kurabe.store.records`: the rows read back, as dataclasses, and
  :class:`~kurabe.store.records.SessionRecord`, a whole session (:meth:`Store.load_record`);
- :mod:`kurabe.core.secret_scrub`: what keeps API keys and credentials out of every stored value.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from foundation.errors import KurabeError
from kurabe.store.connection import StoreConnection
from kurabe.store.judging import JudgeTables
from kurabe.store.ratings import RatingTables
from kurabe.store.records import SessionRecord
from kurabe.store.replies import ReplyTables
from kurabe.store.schema import MIGRATIONS, SCHEMA_VERSION
from kurabe.store.sessions import SessionTables


class Store(SessionTables, ReplyTables, RatingTables, JudgeTables, StoreConnection):
    """The database. Thread-safe for the short calls kurabe makes (one lock, one connection).

    Its reads and writes come from the table mixins it is made of; it adds the opening, the
    schema upgrade and :meth:`load_record`, which reads across all of them.
    """

    def __init__(self, path: Path | str, *, migrate: bool = True) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
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

    @classmethod
    def open_default(cls, db: str | Path | None = None) -> Store:
        """The database at ``db`` (``--db``), else ``kurabe.sqlite3`` in the data directory."""
        from foundation.paths import default_db_path

        path = Path(db).expanduser() if db else default_db_path()
        return cls(path)

    # -- schema ---------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        with self._lock:
            row = self._conn.execute("PRAGMA user_version").fetchone()
        return int(row[0])

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
                with self._transaction() as conn:
                    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
                    if found < number:
                        for statement in _statements(MIGRATIONS[number - 1]):
                            conn.execute(statement)
                        conn.execute(f"PRAGMA user_version = {number}")
            return self.schema_version

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load_record(self, session_id: int) -> SessionRecord:
        """Everything about one session, read under one lock (a consistent snapshot)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                return SessionRecord(
                    session=self.session(session_id),
                    panes=self.panes(session_id),
                    turns=self.turns(session_id),
                    replies=self.replies(session_id),
                    ratings=self.ratings(session_id),
                    verdicts=self.verdicts(session_id),
                    picks=self.picks(session_id),
                    events=self.events(session_id),
                    judgements=self.judgements(session_id),
                    judge_runs=self.judge_runs(session_id),
                )
            finally:
                self._conn.execute("COMMIT")

    def dump_text(self) -> str:
        """Every stored value as text (for tests that look for a leaked secret)."""
        parts: list[str] = []
        with self._lock:
            tables = [
                r[0]
                for r in self._conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                ).fetchall()
            ]
            for table in tables:
                for row in self._conn.execute(f'SELECT * FROM "{table}"').fetchall():
                    parts.extend(str(value) for value in row)
        return "\n".join(parts)


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
