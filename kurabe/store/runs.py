"""Runs: many scenarios replayed across the same models as one command, as
:class:`RunRepository`, ``store.runs``.

A run row keeps what the run was asked to do (scenario ids, profile names, repeats, seed) so that
``kurabe run --resume RUN`` can do what is missing; each of its sessions carries the run's id and
which repeat it is (``sessions.run_id``, ``sessions.run_repeat``). Every request a run sends for a
reply is one attempt row (``reply_attempts``): ``ok``, ``retried`` (it failed and another request
followed) or ``failed`` (the last one, which failed), so requests = replies + retries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from foundation.errors import KurabeError
from kurabe.core.secret_scrub import scrub_secrets
from kurabe.store.database import Database, from_json, now_iso, to_json


@dataclass(frozen=True)
class RunRow:
    id: int
    created_at: str
    updated_at: str
    status: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class AttemptRow:
    session_id: int
    profile_name: str
    turn: int
    attempt: int
    endpoint: str
    outcome: str
    error_kind: str | None
    reason: str
    duration_s: float | None


@dataclass(frozen=True)
class RunFigures:
    """What a run's attempts add up to."""

    requests: int
    replies_ok: int
    replies_failed: int
    retries: int

    @property
    def replies(self) -> int:
        return self.replies_ok + self.replies_failed


class RunRepository:
    """Runs, their sessions and their reply attempts, on one
    :class:`~kurabe.store.database.Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def create(self, settings: Mapping[str, Any]) -> int:
        stamp = now_iso()
        return self.database.insert(
            "INSERT INTO runs (created_at, updated_at, status, settings_json)"
            " VALUES (?, ?, 'running', ?)",
            (stamp, stamp, to_json(scrub_secrets(dict(settings)))),
        )

    def get(self, run_id: int) -> RunRow:
        row = self.database.query_one("SELECT * FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise KurabeError(f"no run {run_id} in {self.database.path}")
        return RunRow(
            id=row["id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            status=row["status"],
            settings=from_json(row["settings_json"], {}),
        )

    def latest_id(self) -> int | None:
        row = self.database.query_one("SELECT MAX(id) FROM runs")
        return None if row is None or row[0] is None else int(row[0])

    def set_status(self, run_id: int, status: str) -> None:
        self.database.execute(
            "UPDATE runs SET status = ?, updated_at = ? WHERE id = ?", (status, now_iso(), run_id)
        )

    def attach(self, session_id: int, run_id: int, repeat: int) -> None:
        """Make a session part of a run, as its ``repeat``-th (0-based) replay of its scenario."""
        self.database.execute(
            "UPDATE sessions SET run_id = ?, run_repeat = ? WHERE id = ?",
            (run_id, repeat, session_id),
        )

    def session_of(self, run_id: int, scenario_id: str, repeat: int) -> int | None:
        """The run's session for one scenario and repeat (the newest, if ever more than one)."""
        row = self.database.query_one(
            "SELECT MAX(id) FROM sessions WHERE run_id = ? AND scenario_id = ? AND run_repeat = ?",
            (run_id, scenario_id, repeat),
        )
        return None if row is None or row[0] is None else int(row[0])

    def session_ids(self, run_id: int) -> list[int]:
        rows = self.database.query(
            "SELECT id FROM sessions WHERE run_id = ? ORDER BY id", (run_id,)
        )
        return [int(r[0]) for r in rows]

    def unfinished_replies(self, session_id: int) -> int:
        """How many (turn, pane) pairs of a session have no completed newest reply."""
        row = self.database.query_one(
            "SELECT COUNT(*) FROM turns t CROSS JOIN panes p"
            " WHERE t.session_id = ? AND p.session_id = t.session_id AND NOT EXISTS ("
            "  SELECT 1 FROM replies r WHERE r.turn_id = t.id AND r.pane_id = p.id"
            "  AND r.status = 'complete' AND r.version = (SELECT MAX(v.version) FROM replies v"
            "  WHERE v.turn_id = t.id AND v.pane_id = p.id))",
            (session_id,),
        )
        return int(row[0]) if row else 0

    def remove_session(self, session_id: int) -> None:
        """Drop a session a killed run left half created (no turn was sent in it)."""
        self.database.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def add_attempt(
        self,
        session_id: int,
        *,
        profile_name: str,
        turn: int,
        attempt: int,
        endpoint: str,
        outcome: str,
        error_kind: str | None = None,
        reason: str = "",
        duration_s: float | None = None,
    ) -> None:
        self.database.execute(
            "INSERT INTO reply_attempts (session_id, profile_name, turn_idx, attempt, endpoint,"
            " outcome, error_kind, reason, started_at, duration_s)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session_id,
                profile_name,
                turn,
                attempt,
                endpoint,
                outcome,
                error_kind,
                scrub_secrets(reason),
                now_iso(),
                duration_s,
            ),
        )

    def attempts(self, run_id: int) -> list[AttemptRow]:
        rows = self.database.query(
            "SELECT a.* FROM reply_attempts a JOIN sessions s ON s.id = a.session_id"
            " WHERE s.run_id = ? ORDER BY a.id",
            (run_id,),
        )
        return [
            AttemptRow(
                session_id=r["session_id"],
                profile_name=r["profile_name"],
                turn=r["turn_idx"],
                attempt=r["attempt"],
                endpoint=r["endpoint"],
                outcome=r["outcome"],
                error_kind=r["error_kind"],
                reason=r["reason"],
                duration_s=r["duration_s"],
            )
            for r in rows
        ]

    def figures(self, run_id: int) -> RunFigures:
        row = self.database.query_one(
            "SELECT COUNT(*),"
            " SUM(CASE WHEN a.outcome = 'ok' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN a.outcome = 'failed' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN a.outcome = 'retried' THEN 1 ELSE 0 END)"
            " FROM reply_attempts a JOIN sessions s ON s.id = a.session_id WHERE s.run_id = ?",
            (run_id,),
        )
        values = [int(v or 0) for v in (row or (0, 0, 0, 0))]
        return RunFigures(*values)
