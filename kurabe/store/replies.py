"""A session's turns and the replies each pane streamed to them, with their life cycle, as
:class:`ReplyRepository`, ``store.replies``.

A reply row is created when its stream starts (``status='streaming'``, ``incomplete=1``); while it
streams the session writes the partial text every half second
(:meth:`ReplyRepository.update_partial`, one single-statement commit); it ends as ``complete``
(``incomplete=0``), ``failed``, ``cancelled`` or — when the process died and the session was later
resumed — ``interrupted`` (:meth:`ReplyRepository.mark_interrupted`). A pane whose conversation
stopped at a failed turn is not asked the later ones: each gets a ``blocked`` row with no text
(:meth:`ReplyRepository.block_reply`). A row still
``streaming`` with no process behind it is therefore a half-streamed reply, kept and marked
incomplete. Asking a pane again adds a new version of the reply; the earlier ones are kept.

An error's text is stored with the user info and secret query values of its URLs removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backends.api_errors import scrub_urls
from foundation.errors import KurabeError
from kurabe.store.database import Database, Row, from_json, now_iso, to_json
from kurabe.store.records import ReplyFigures, ReplyRow, TurnRow

_REPLY_WITH_PLACE = (
    "SELECT r.*, t.idx AS turn_idx, p.position AS pane_pos FROM replies r"
    " JOIN turns t ON t.id = r.turn_id JOIN panes p ON p.id = r.pane_id"
)
"""A reply's row with the turn and pane it belongs to (what :func:`_reply_row` reads)."""


class ReplyRepository:
    """Turns and replies, on one :class:`~kurabe.store.database.Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def add_turn(
        self, session_id: int, idx: int, text: str, scenario_turn: int | None = None
    ) -> int:
        stamp = now_iso()
        with self.database.transaction():
            turn_id = self.database.insert(
                "INSERT INTO turns (session_id, idx, text, scenario_turn, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, idx, text, scenario_turn, stamp),
            )
            self.database.execute(
                "UPDATE sessions SET updated_at = ? WHERE id = ?", (stamp, session_id)
            )
        return turn_id

    def start_reply(self, turn_id: int, pane_id: int) -> tuple[int, int]:
        """Create a streaming reply row; returns (reply id, version)."""
        with self.database.transaction():
            row = self.database.query_one(
                "SELECT COALESCE(MAX(version), 0) FROM replies WHERE turn_id = ? AND pane_id = ?",
                (turn_id, pane_id),
            )
            version = (int(row[0]) if row else 0) + 1
            reply_id = self.database.insert(
                "INSERT INTO replies (turn_id, pane_id, version, status, incomplete, started_at)"
                " VALUES (?, ?, ?, 'streaming', 1, ?)",
                (turn_id, pane_id, version, now_iso()),
            )
        return reply_id, version

    def block_reply(self, turn_id: int, pane_id: int, reason: str) -> tuple[int, int]:
        """Record that a pane was not asked this turn because its conversation stopped at an
        earlier failed turn: a new version, ``blocked``, with no text. Returns (id, version)."""
        with self.database.transaction():
            row = self.database.query_one(
                "SELECT COALESCE(MAX(version), 0) FROM replies WHERE turn_id = ? AND pane_id = ?",
                (turn_id, pane_id),
            )
            version = (int(row[0]) if row else 0) + 1
            stamp = now_iso()
            reply_id = self.database.insert(
                "INSERT INTO replies (turn_id, pane_id, version, status, incomplete, error,"
                " error_kind, retryable, started_at, finished_at)"
                " VALUES (?, ?, ?, 'blocked', 1, ?, 'blocked', 1, ?, ?)",
                (turn_id, pane_id, version, reason, stamp, stamp),
            )
        return reply_id, version

    def update_partial(self, reply_id: int, text: str) -> None:
        """Save the text streamed so far (the row stays ``streaming`` and incomplete)."""
        self.database.execute(
            "UPDATE replies SET text = ?, chars = ? WHERE id = ? AND status = 'streaming'",
            (text, len(text), reply_id),
        )

    def finish_reply(
        self,
        reply_id: int,
        *,
        text: str,
        finish_reason: str,
        figures: ReplyFigures,
        checks: Mapping[str, Any] | None = None,
    ) -> None:
        self.database.execute(
            "UPDATE replies SET status = 'complete', incomplete = 0, text = ?, finish_reason = ?,"
            " error = NULL, error_kind = NULL, retryable = NULL, prompt_tokens = ?,"
            " completion_tokens = ?, ttft_s = ?, total_s = ?, chars = ?, chars_per_s = ?,"
            " tokens_per_s = ?, context_size = ?, cached_prompt_tokens = ?,"
            " decoded_alongside = ?, history_trimmed_turns = ?, max_tokens_clamped = ?,"
            " checks_json = ?, finished_at = ? WHERE id = ?",
            (
                text,
                finish_reason,
                figures.prompt_tokens,
                figures.completion_tokens,
                figures.ttft_s,
                figures.total_s,
                figures.chars,
                figures.chars_per_s,
                figures.tokens_per_s,
                figures.context_size,
                figures.cached_prompt_tokens,
                figures.decoded_alongside,
                figures.history_trimmed_turns,
                figures.max_tokens_clamped,
                to_json(dict(checks or {})),
                now_iso(),
                reply_id,
            ),
        )

    def fail_reply(
        self,
        reply_id: int,
        *,
        status: str,
        text: str,
        error: str,
        error_kind: str | None = None,
        retryable: bool = True,
        figures: ReplyFigures | None = None,
    ) -> None:
        """End a reply as ``failed``, ``cancelled`` or ``interrupted``, keeping its partial text."""
        if status not in ("failed", "cancelled", "interrupted"):
            raise ValueError(f"not a failure status: {status}")
        figs = figures or ReplyFigures(chars=len(text))
        self.database.execute(
            "UPDATE replies SET status = ?, incomplete = 1, text = ?, error = ?, error_kind = ?,"
            " retryable = ?, prompt_tokens = ?, completion_tokens = ?, ttft_s = ?, total_s = ?,"
            " chars = ?, chars_per_s = ?, tokens_per_s = ?, finished_at = ? WHERE id = ?",
            (
                status,
                text,
                scrub_urls(error),
                error_kind,
                int(retryable),
                figs.prompt_tokens,
                figs.completion_tokens,
                figs.ttft_s,
                figs.total_s,
                len(text),
                figs.chars_per_s,
                figs.tokens_per_s,
                now_iso(),
                reply_id,
            ),
        )

    def mark_interrupted(self, session_id: int) -> int:
        """Mark this session's replies left ``streaming`` by a dead process as ``interrupted``."""
        return self.database.execute(
            "UPDATE replies SET status = 'interrupted', incomplete = 1,"
            " error = COALESCE(error, 'interrupted: the process stopped while streaming'),"
            " retryable = 1, finished_at = COALESCE(finished_at, ?)"
            " WHERE status = 'streaming'"
            " AND pane_id IN (SELECT id FROM panes WHERE session_id = ?)",
            (now_iso(), session_id),
        )

    def turns(self, session_id: int) -> list[TurnRow]:
        rows = self.database.query(
            "SELECT * FROM turns WHERE session_id = ? ORDER BY idx", (session_id,)
        )
        return [
            TurnRow(
                id=r["id"],
                session_id=r["session_id"],
                idx=r["idx"],
                text=r["text"],
                scenario_turn=r["scenario_turn"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    def replies(self, session_id: int) -> list[ReplyRow]:
        rows = self.database.query(
            _REPLY_WITH_PLACE + " WHERE t.session_id = ? ORDER BY t.idx, p.position, r.version",
            (session_id,),
        )
        return [_reply_row(r) for r in rows]

    def reply(self, reply_id: int) -> ReplyRow:
        rows = self.database.query(_REPLY_WITH_PLACE + " WHERE r.id = ?", (reply_id,))
        if not rows:
            raise KurabeError(f"no reply {reply_id}")
        return _reply_row(rows[0])

    def reply_session(self, reply_id: int) -> int | None:
        rows = self.database.query(
            "SELECT t.session_id FROM replies r JOIN turns t ON t.id = r.turn_id WHERE r.id = ?",
            (reply_id,),
        )
        return int(rows[0][0]) if rows else None


def _reply_row(r: Row) -> ReplyRow:
    retryable = r["retryable"]
    return ReplyRow(
        id=r["id"],
        turn_id=r["turn_id"],
        pane_id=r["pane_id"],
        turn=r["turn_idx"],
        pane=r["pane_pos"],
        version=r["version"],
        status=r["status"],
        incomplete=bool(r["incomplete"]),
        text=r["text"],
        finish_reason=r["finish_reason"],
        error=r["error"],
        error_kind=r["error_kind"],
        retryable=None if retryable is None else bool(retryable),
        prompt_tokens=r["prompt_tokens"],
        completion_tokens=r["completion_tokens"],
        ttft_s=r["ttft_s"],
        total_s=r["total_s"],
        chars=r["chars"],
        chars_per_s=r["chars_per_s"],
        tokens_per_s=r["tokens_per_s"],
        context_size=r["context_size"],
        checks=from_json(r["checks_json"], {}),
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        cached_prompt_tokens=r["cached_prompt_tokens"],
        decoded_alongside=r["decoded_alongside"],
        history_trimmed_turns=r["history_trimmed_turns"] or 0,
        max_tokens_clamped=r["max_tokens_clamped"],
    )
