"""A session's own tables (the session, its panes and its events) and the list of sessions, as
:class:`SessionRepository`, ``store.sessions``.

A session is one comparison: a persona (and maybe a scripted scenario) talking to several panes
at once, each pane one model behind a profile, labelled A, B, … (blind sessions show only the
labels until revealed). Its events log what happened along the way: its creation, a reveal, a
cancel, a resume, …

Never an API key or a credential: pane settings, headers and event data pass through
:func:`~kurabe.core.secret_scrub.scrub_secrets` before they are written, which also drops the user
info and secret query values of every URL in them (``https://user:pass@host/v1?api-key=…``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from foundation.errors import KurabeError
from kurabe import __version__
from kurabe.core.blind import names_hidden, shown_name
from kurabe.core.secret_scrub import scrub_secrets
from kurabe.store.database import Database, Row, from_json, now_iso, to_json
from kurabe.store.records import (
    SESSION_STATUSES,
    EventRow,
    PaneRecord,
    SessionRow,
    SessionStatus,
    SessionSummary,
    persona_to_dict,
    scenario_to_dict,
)
from personas import Persona
from scenarios import Scenario


class SessionRepository:
    """Sessions, panes and events, on one :class:`~kurabe.store.database.Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def create(
        self,
        persona: Persona,
        scenario: Scenario | None = None,
        *,
        blind: bool = False,
        rater: str = "",
        kind: str = "interactive",
        seed: int | None = None,
    ) -> int:
        stamp = now_iso()
        return self.database.insert(
            "INSERT INTO sessions (created_at, updated_at, kind, persona_id, persona_json,"
            " scenario_id, scenario_json, blind, rater, seed, kurabe_version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                stamp,
                stamp,
                kind,
                persona.id,
                to_json(persona_to_dict(persona)),
                scenario.id if scenario else None,
                to_json(scenario_to_dict(scenario)) if scenario else None,
                int(blind),
                rater,
                seed,
                __version__,
            ),
        )

    def add_pane(
        self,
        session_id: int,
        position: int,
        label: str,
        *,
        profile_name: str,
        backend: str,
        model: str,
        settings: Mapping[str, Any],
        secrets: Iterable[str] = (),
    ) -> int:
        return self.database.insert(
            "INSERT INTO panes (session_id, position, label, profile_name, backend, model,"
            " settings_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                session_id,
                position,
                label,
                profile_name,
                backend,
                scrub_secrets(model, secrets),
                to_json(scrub_secrets(dict(settings), secrets)),
            ),
        )

    def update_pane(
        self,
        pane_id: int,
        *,
        settings: Mapping[str, Any] | None = None,
        header: str | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        secret_list = list(secrets)
        if settings is not None:
            self.database.execute(
                "UPDATE panes SET settings_json = ? WHERE id = ?",
                (to_json(scrub_secrets(dict(settings), secret_list)), pane_id),
            )
        if header is not None:
            self.database.execute(
                "UPDATE panes SET header = ? WHERE id = ?",
                (scrub_secrets(header, secret_list), pane_id),
            )

    def set_status(self, session_id: int, status: SessionStatus) -> None:
        if status not in SESSION_STATUSES:
            raise KurabeError(f"session status is one of {', '.join(SESSION_STATUSES)}")
        self.database.execute(
            "UPDATE sessions SET status = ?, updated_at = ? WHERE id = ?",
            (status, now_iso(), session_id),
        )

    def set_revealed(self, session_id: int) -> None:
        with self.database.transaction():
            self.database.execute(
                "UPDATE sessions SET revealed = 1, updated_at = ? WHERE id = ?",
                (now_iso(), session_id),
            )
            self.add_event(session_id, "reveal")

    def add_event(self, session_id: int, kind: str, data: Mapping[str, Any] | None = None) -> None:
        self.database.execute(
            "INSERT INTO events (session_id, created_at, kind, data_json) VALUES (?, ?, ?, ?)",
            (session_id, now_iso(), kind, to_json(scrub_secrets(dict(data or {})))),
        )

    def exists(self, session_id: int) -> bool:
        return bool(self.database.query("SELECT 1 FROM sessions WHERE id = ?", (session_id,)))

    def get(self, session_id: int) -> SessionRow:
        rows = self.database.query("SELECT * FROM sessions WHERE id = ?", (session_id,))
        if not rows:
            raise KurabeError(f"no session {session_id} in {self.database.name}")
        return _session_row(rows[0])

    def latest_id(self) -> int | None:
        rows = self.database.query("SELECT MAX(id) FROM sessions")
        value = rows[0][0] if rows else None
        return None if value is None else int(value)

    def panes(self, session_id: int) -> list[PaneRecord]:
        rows = self.database.query(
            "SELECT * FROM panes WHERE session_id = ? ORDER BY position", (session_id,)
        )
        return [
            PaneRecord(
                id=r["id"],
                session_id=r["session_id"],
                position=r["position"],
                label=r["label"],
                profile_name=r["profile_name"],
                backend=r["backend"],
                model=r["model"],
                settings=from_json(r["settings_json"], {}),
                header=r["header"],
            )
            for r in rows
        ]

    def events(self, session_id: int) -> list[EventRow]:
        rows = self.database.query(
            "SELECT * FROM events WHERE session_id = ? ORDER BY id", (session_id,)
        )
        return [
            EventRow(
                id=r["id"],
                created_at=r["created_at"],
                kind=r["kind"],
                data=from_json(r["data_json"], {}),
            )
            for r in rows
        ]

    def ids(self, *, scenario: str | None = None, run: int | None = None) -> list[int]:
        """Every session's id, or those of one scenario and/or one run."""
        where: list[str] = []
        params: list[Any] = []
        if scenario is not None:
            where.append("scenario_id = ?")
            params.append(scenario)
        if run is not None:
            where.append("run_id = ?")
            params.append(run)
        sql = "SELECT id FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.database.query(sql + " ORDER BY id", params)
        return [int(r[0]) for r in rows]

    def summaries(self, limit: int | None = None) -> list[SessionSummary]:
        """The newest ``limit`` sessions (all of them when None), newest first, with their
        counts and models: two queries whatever the number of sessions (see
        :data:`SUMMARIES_SQL`), read in one snapshot."""
        newest = "SELECT id FROM sessions ORDER BY id DESC"
        params: tuple[Any, ...] = ()
        summaries_sql = SUMMARIES_SQL
        if limit is not None:
            newest += " LIMIT ?"
            summaries_sql += " LIMIT ?"
            params = (limit,)
        with self.database.snapshot():
            rows = self.database.query(summaries_sql, params)
            pane_rows = self.database.query(
                "SELECT session_id, label, profile_name FROM panes"
                + ("" if limit is None else f" WHERE session_id IN ({newest})")
                + " ORDER BY session_id, position",
                params,
            )
        panes: dict[int, list[Row]] = {}
        for pane in pane_rows:
            panes.setdefault(int(pane["session_id"]), []).append(pane)
        out = []
        for row in rows:
            hidden = names_hidden(blind=bool(row["blind"]), revealed=bool(row["revealed"]))
            models = tuple(
                shown_name(p["label"], p["profile_name"], hidden=hidden)
                for p in panes.get(int(row["id"]), ())
            )
            out.append(
                SessionSummary(
                    id=row["id"],
                    created_at=row["created_at"],
                    kind=row["kind"],
                    status=row["status"],
                    persona_id=row["persona_id"],
                    scenario_id=row["scenario_id"],
                    models=models,
                    blind=bool(row["blind"]),
                    revealed=bool(row["revealed"]),
                    turns=row["n_turns"],
                    replies=row["n_replies"],
                    ratings=row["n_ratings"],
                    run_id=row["run_id"],
                )
            )
        return out


SUMMARIES_SQL = (
    "SELECT s.id, s.created_at, s.kind, s.status, s.persona_id, s.scenario_id, s.blind,"
    " s.revealed, s.run_id,"
    " (SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id) AS n_turns,"
    " (SELECT COUNT(*) FROM turns t JOIN replies r ON r.turn_id = t.id"
    "   WHERE t.session_id = s.id AND r.status = 'complete') AS n_replies,"
    " (SELECT COUNT(*) FROM turns t JOIN replies r ON r.turn_id = t.id"
    "   JOIN ratings g ON g.reply_id = r.id WHERE t.session_id = s.id AND g.kind = 'human')"
    " + (SELECT COUNT(*) FROM panes p JOIN verdicts v ON v.pane_id = p.id"
    "   WHERE p.session_id = s.id)"
    " + (SELECT COUNT(*) FROM turns t JOIN picks k ON k.turn_id = t.id"
    "   WHERE t.session_id = s.id) AS n_ratings"
    " FROM sessions s ORDER BY s.id DESC"
)
"""The sessions, newest first, with their counts of turns, completed replies and people's
ratings (reply ratings, verdicts, picks). Each count is a correlated subquery that starts from
the session's own turns or panes and reaches their rows through an index on the parent's id
(``turns_session``, ``replies_turn_status``, ``ratings_reply_kind``, ``panes_session``,
``verdicts_pane``, ``picks_turn``), so listing N sessions reads only their rows: linear in N,
and ``LIMIT`` reads only the sessions shown. Standard SQL, the same on every engine."""


def _session_row(r: Row) -> SessionRow:
    scenario = from_json(r["scenario_json"], None)
    return SessionRow(
        id=r["id"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        kind=r["kind"],
        persona_id=r["persona_id"],
        persona=from_json(r["persona_json"], {}),
        scenario_id=r["scenario_id"],
        scenario=scenario if isinstance(scenario, dict) else None,
        blind=bool(r["blind"]),
        revealed=bool(r["revealed"]),
        rater=r["rater"],
        status=r["status"],
        seed=r["seed"],
        kurabe_version=r["kurabe_version"],
        run_id=r["run_id"],
        run_repeat=r["run_repeat"],
    )
