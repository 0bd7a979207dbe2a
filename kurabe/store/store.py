"""The SQLite store of comparison sessions: panes, turns, replies, ratings, verdicts, picks, events.

One database file (``kurabe.sqlite3`` in the data directory unless ``--db PATH``), opened in WAL
mode with foreign keys on. The schema is versioned with ``PRAGMA user_version`` and upgraded by
:data:`~kurabe.store.schema.MIGRATIONS`, numbered SQL scripts applied in order, each in one
transaction. Everything is committed as it happens (a completed reply, a rating, a verdict, a
pick, a streaming reply's text every half second), so a killed process loses at most the last half
second of a stream.

:class:`Store` is one :class:`~kurabe.store.database.Database` with a repository per family of
tables composed on it; each repository can also be built alone on a database:

- ``store.database`` (:mod:`kurabe.store.database`): the connection, its lock, transactions,
  the migrations (:mod:`kurabe.store.schema`);
- ``store.sessions`` (:mod:`kurabe.store.sessions`): sessions, panes and events, and the list of
  sessions;
- ``store.replies`` (:mod:`kurabe.store.replies`): turns and replies, and a reply's life from
  streaming to its end;
- ``store.ratings`` (:mod:`kurabe.store.ratings`): ratings, verdicts and picks, append-only;
- ``store.judging`` (:mod:`kurabe.store.judging`): judge runs and judgements (a judge's score is
  also a rating, written through ``store.ratings``);
- ``store.runs`` (:mod:`kurabe.store.runs`): runs (many scenarios replayed as one command),
  their sessions and every request made for a reply;
- :mod:`kurabe.store.records`: the rows read back, as dataclasses, and
  :class:`~kurabe.store.records.SessionRecord`, a whole session (:meth:`Store.load_record`);
- :mod:`kurabe.core.secret_scrub`: what keeps API keys and credentials out of every stored value.
"""

from __future__ import annotations

from pathlib import Path

from kurabe.store.database import Database
from kurabe.store.judging import JudgingRepository
from kurabe.store.ratings import RatingRepository
from kurabe.store.records import SessionRecord
from kurabe.store.replies import ReplyRepository
from kurabe.store.runs import RunRepository
from kurabe.store.sessions import SessionRepository


class Store:
    """The database and its repositories. Thread-safe for the short calls kurabe makes (one
    lock, one connection: the database's)."""

    def __init__(self, path: Path | str, *, migrate: bool = True) -> None:
        self.database = Database(path, migrate=migrate)
        self.sessions = SessionRepository(self.database)
        self.replies = ReplyRepository(self.database)
        self.ratings = RatingRepository(self.database)
        self.judging = JudgingRepository(self.database, self.ratings)
        self.runs = RunRepository(self.database)

    @classmethod
    def open_default(cls, db: str | Path | None = None) -> Store:
        """The database at ``db`` (``--db``), else ``kurabe.sqlite3`` in the data directory."""
        from foundation.paths import default_db_path

        path = Path(db).expanduser() if db else default_db_path()
        return cls(path)

    @property
    def path(self) -> Path:
        return self.database.path

    def load_record(self, session_id: int) -> SessionRecord:
        """Everything about one session, read in one snapshot (a consistent state)."""
        with self.database.snapshot():
            return SessionRecord(
                session=self.sessions.get(session_id),
                panes=self.sessions.panes(session_id),
                turns=self.replies.turns(session_id),
                replies=self.replies.replies(session_id),
                ratings=self.ratings.ratings(session_id),
                verdicts=self.ratings.verdicts(session_id),
                picks=self.ratings.picks(session_id),
                events=self.sessions.events(session_id),
                judgements=self.judging.judgements(session_id),
                judge_runs=self.judging.runs(session_id),
            )

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
