"""A PostgreSQL server as kurabe's database, for a team: :class:`PostgresDatabase`, the second
engine behind :class:`~kurabe.store.database.Database`, over psycopg 3.

Everything PostgreSQL says differently from SQLite is here and nowhere else:

- placeholders: the repositories' ``?`` becomes psycopg's ``%s`` (and a literal ``%`` doubles),
  outside quoted text (:func:`pyformat`);
- a new row's id: ``INSERT … RETURNING id``;
- booleans: the schema keeps SQLite's 0/1 integers, so a Python ``bool`` parameter is sent as one;
- DDL: the one schema text (:mod:`kurabe.store.schema`) with ``INTEGER`` read as ``BIGINT``, the
  ``id INTEGER PRIMARY KEY`` as an identity column, ``REAL`` as ``DOUBLE PRECISION``
  (:meth:`PostgresDatabase.dialect_ddl`);
- the schema version: the table ``kurabe_schema`` (SQLite keeps it in ``PRAGMA user_version``);
- migrating once: ``pg_advisory_lock`` around each migration's transaction, the version read
  again inside it, so several processes starting at once against a new database migrate it
  once.

When the server goes away (restarted, a network cut) a statement raises
:class:`~kurabe.store.database.StoreUnavailable`, one line naming the server without its
password; the next statement connects again, trying for up to
:attr:`~kurabe.store.database.Database.reconnect_s` seconds, and an idempotent statement that
lost its connection runs again within that time. An ``INSERT`` that lost its connection is never
re-sent by itself (it may have been committed): whoever wrote it decides (the app keeps a rating
pending and tries again, a replay stops with a reason and can be resumed).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any, ClassVar

import psycopg
from psycopg.rows import RowMaker

from backends.api_errors import public_url, redact
from kurabe.store.database import Database, StoreUnavailable

MIGRATION_LOCK_KEY = 0x6B75726162
"""The advisory lock migrations take (``kurab`` in ASCII): one per database."""


class PgRow(tuple[Any, ...]):
    """A row read by position or by column name, like ``sqlite3.Row``."""

    names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.names)


def _row_factory(cursor: psycopg.Cursor[Any]) -> RowMaker[PgRow]:
    names = {column.name: index for index, column in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> PgRow:
        row = PgRow(values)
        row.names = names
        return row

    return make


@lru_cache(maxsize=512)
def pyformat(sql: str) -> str:
    """``sql`` with its ``?`` placeholders as ``%s`` and each literal ``%`` doubled, leaving
    quoted text ('…' and "…") alone."""
    out: list[str] = []
    quote = ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""
            out.append("%%" if char == "%" else char)
        elif char in ("'", '"'):
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


_IDENTITY = re.compile(r"\bid INTEGER PRIMARY KEY\b")
_INTEGER = re.compile(r"\bINTEGER\b")
_REAL = re.compile(r"\bREAL\b")


def _params(params: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(int(value) if isinstance(value, bool) else value for value in params)


class PostgresDatabase(Database):
    """One PostgreSQL database on a server, by URL
    (``postgresql://user[:password]@host[:port]/dbname``)."""

    dialect: ClassVar[str] = "postgresql"
    integrity_error: ClassVar[type[Exception]] = psycopg.IntegrityError
    connect_timeout_s: ClassVar[int] = 3

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        super().__init__(public_url(url), None)
        self._url = url
        self._conn: psycopg.Connection[PgRow] | None = None
        with self._lock:
            self._connect(deadline=time.monotonic())
            if migrate:
                self.migrate()

    # -- the connection -------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        reason = redact(
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        )
        if self._url in reason:
            reason = reason.replace(self._url, self.name)
        return StoreUnavailable(f"the database {self.name} is unreachable: {reason}")

    def _connect(self, deadline: float) -> psycopg.Connection[PgRow]:
        """The open connection, or a new one, tried until ``deadline``."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        while True:
            try:
                self._conn = psycopg.connect(
                    self._url,
                    autocommit=True,
                    row_factory=_row_factory,
                    connect_timeout=self.connect_timeout_s,
                    application_name="kurabe",
                    # A network cut must not hang a statement for the kernel's default of
                    # minutes: keepalives and a send timeout end it within seconds.
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=3,
                    tcp_user_timeout=10_000,
                )
                return self._conn
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise self._unavailable(exc) from None
                time.sleep(0.25)

    def _run(self, sql: str, params: Sequence[Any], *, fetch: bool, returning_id: bool) -> Any:
        """One statement. Outside a transaction, while the server is away, an idempotent
        statement (not an ``INSERT``) waits for it and runs again, for up to ``reconnect_s``;
        an ``INSERT`` whose connection broke under it is not re-sent (it may have been
        committed), nor a statement inside a transaction (the transaction is gone)."""
        deadline = time.monotonic() + self.reconnect_s
        text = pyformat(sql + " RETURNING id" if returning_id else sql)
        retriable = not returning_id and not sql.lstrip()[:6].upper().startswith("INSERT")
        while True:
            if self._depth and (self._conn is None or self._conn.broken or self._conn.closed):
                raise StoreUnavailable(f"the database {self.name} went away during a transaction")
            conn = self._connect(deadline)
            try:
                cursor = conn.execute(text, _params(params))
                if fetch:
                    return cursor.fetchall()
                if returning_id:
                    row = cursor.fetchone()
                    return row[0] if row else None
                return cursor.rowcount
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if not (conn.broken or conn.closed):
                    raise
                if self._depth or not retriable or time.monotonic() >= deadline:
                    raise self._unavailable(exc) from None
                time.sleep(0.25)

    def _begin(self, write: bool) -> None:
        self._run(
            "BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ",
            (),
            fetch=False,
            returning_id=False,
        )

    def _end(self, commit: bool) -> None:
        conn = self._conn
        if conn is None or conn.broken or conn.closed:
            if commit:
                raise StoreUnavailable(f"the database {self.name} went away before a commit")
            return
        try:
            conn.execute("COMMIT" if commit else "ROLLBACK")
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if commit:
                raise self._unavailable(exc) from None

    # -- schema ---------------------------------------------------------------------------

    def _read_version(self) -> int:
        row = self._run(
            "SELECT to_regclass('kurabe_schema') IS NOT NULL", (), fetch=True, returning_id=False
        )
        if not row or not row[0][0]:
            return 0
        rows = self._run(
            "SELECT MAX(version) FROM kurabe_schema", (), fetch=True, returning_id=False
        )
        return int(rows[0][0] or 0) if rows else 0

    def _write_version(self, number: int) -> None:
        self.execute("CREATE TABLE IF NOT EXISTS kurabe_schema (version INTEGER NOT NULL)")
        self.execute("DELETE FROM kurabe_schema")
        self.execute("INSERT INTO kurabe_schema (version) VALUES (?)", (number,))

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        # A session lock taken before the transaction begins, not pg_advisory_xact_lock inside
        # it: a transaction that waited for the lock could still read the version through a
        # catalog lookup cached before the other's commit (it ran the first migration again,
        # "relation sessions already exists", in the test of six openers at once); one that
        # begins after the lock reads what the other committed.
        self.query("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK_KEY,))
        try:
            yield
        finally:
            with suppress(StoreUnavailable):  # a lost connection has released it already
                self.query("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK_KEY,))

    def dialect_ddl(self, statement: str) -> str:
        statement = _IDENTITY.sub(
            "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", statement
        )
        statement = _INTEGER.sub("BIGINT", statement)
        return _REAL.sub("DOUBLE PRECISION", statement)

    def table_names(self) -> list[str]:
        rows = self.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename <> 'kurabe_schema' ORDER BY tablename"
        )
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
