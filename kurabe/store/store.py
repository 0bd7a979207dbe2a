"""The store of comparison sessions: panes, turns, replies, ratings, verdicts, picks, events.

One SQLite file (``kurabe.sqlite3`` in the data directory unless ``--db PATH``), opened in WAL
mode with foreign keys on, or a PostgreSQL database a team shares (``--db postgresql://…``, or
``KURABE_DB``, or ``db`` in ``config.toml``: :mod:`kurabe.store.target`). Both have one schema,
upgraded by :data:`~kurabe.store.schema.MIGRATIONS`, numbered SQL scripts applied in order, each
in one transaction. Everything is committed as it happens (a completed reply, a rating, a verdict, a
pick, a streaming reply's text every half second), so a killed process loses at most the last half
second of a stream.

:class:`Store` is one :class:`~kurabe.store.database.Database` with a repository per family of
tables composed on it; each repository can also be built alone on a database:

- ``store.database`` (:mod:`kurabe.store.database`, :mod:`kurabe.store.postgres`): the
  connection, its lock, transactions, the migrations (:mod:`kurabe.store.schema`);
- ``store.sessions`` (:mod:`kurabe.store.sessions`): sessions, panes and events, and the list of
  sessions;
- ``store.replies`` (:mod:`kurabe.store.replies`): turns and replies, and a reply's life from
  streaming to its end;
- ``store.ratings`` (:mod:`kurabe.store.ratings`): ratings, verdicts and picks, append-only;
- ``store.judging`` (:mod:`kurabe.store.judging`): judge runs and judgements (a judge's score is
  also a rating, written through ``store.ratings``);
- ``store.imported_judgements`` (:mod:`kurabe.store.imported_judgements`): MT-Bench judgments
  imported on their own 1–10 scale;
- ``store.studies`` (:mod:`kurabe.store.studies`): rating studies, their items, the raters'
  claims (race-free on any engine) and their append-only scores, picks, verdicts and skips;
- ``store.runs`` (:mod:`kurabe.store.runs`): runs (many scenarios replayed as one command),
  their sessions and every request made for a reply;
- :mod:`kurabe.store.records`: the rows read back, as dataclasses, and
  :class:`~kurabe.store.records.SessionRecord`, a whole session (:meth:`Store.load_record`);
- :mod:`kurabe.core.secret_scrub`: what keeps API keys and credentials out of every stored value.
"""

from __future__ import annotations

from pathlib import Path

from kurabe.store.database import Database
from kurabe.store.imported_judgements import ImportedJudgementRepository
from kurabe.store.judging import JudgingRepository
from kurabe.store.ratings import RatingRepository
from kurabe.store.records import SessionRecord
from kurabe.store.replies import ReplyRepository
from kurabe.store.runs import RunRepository
from kurabe.store.sessions import SessionRepository
from kurabe.store.studies import StudyRepository
from kurabe.store.target import open_database, resolve_target


class Store:
    """The database and its repositories. Thread-safe for the short calls kurabe makes (one
    lock, one connection: the database's)."""

    def __init__(self, target: Path | str | Database, *, migrate: bool = True) -> None:
        """``target``: an SQLite file's path, a ``postgresql://`` URL, or an open database."""
        self.database = (
            target if isinstance(target, Database) else open_database(target, migrate=migrate)
        )
        self.sessions = SessionRepository(self.database)
        self.replies = ReplyRepository(self.database)
        self.ratings = RatingRepository(self.database)
        self.judging = JudgingRepository(self.database, self.ratings)
        self.imported_judgements = ImportedJudgementRepository(self.database)
        self.studies = StudyRepository(self.database)
        self.runs = RunRepository(self.database)

    @classmethod
    def open_default(cls, db: str | Path | None = None) -> Store:
        """The database at ``db`` (``--db``), else ``$KURABE_DB``, else ``db`` in
        ``config.toml``, else ``kurabe.sqlite3`` in the data directory."""
        return cls(resolve_target(db))

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for a server."""
        return self.database.path

    @property
    def name(self) -> str:
        """The database as it may be shown: a file path, or a URL without its password."""
        return self.database.name

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
