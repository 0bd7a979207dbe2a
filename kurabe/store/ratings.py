"""Ratings' tables: the scores, verdicts and picks of people and judges, as
:class:`RatingRepository`, ``store.ratings``.

A rating scores one reply (1–5, tags, a note), a verdict sums up one pane's model over the
session (great … out of character), a pick says which pane answered a turn best (or a tie, or
both bad). All three are
append-only: re-rating adds a row, the history is kept and the newest row per (target, rater)
counts (:func:`~kurabe.store.records.newest_by`).

An LLM judge's scores are ratings too, of kind ``judge`` and rater ``judge:<profile>``, written
with their judgement (:mod:`kurabe.store.judging`); what a reader means by "the rating" is the
people's unless it asks for a kind (:meth:`~kurabe.store.records.SessionRecord.latest_rating`).
"""

from __future__ import annotations

from collections.abc import Sequence

from foundation.errors import KurabeError
from kurabe.core.scores import check_score
from kurabe.store.database import Database, from_json, now_iso, to_json
from kurabe.store.records import PICK_OUTCOMES, RATING_KINDS, PickRow, RatingRow, VerdictRow


class RatingRepository:
    """Ratings, verdicts and picks, on one :class:`~kurabe.store.database.Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def add_rating(
        self,
        reply_id: int,
        *,
        score: int | None,
        tags: Sequence[str],
        note: str,
        rater: str,
        blind: bool,
        kind: str = "human",
    ) -> int:
        """Add a rating of one reply: the one way a ``ratings`` row is written, a judge's too
        (:meth:`~kurabe.store.judging.JudgingRepository.add_judgement`)."""
        check_score(score)
        if kind not in RATING_KINDS:
            raise KurabeError(f"a rating's kind is one of {', '.join(RATING_KINDS)}, not {kind!r}")
        return self.database.insert(
            "INSERT INTO ratings (reply_id, score, tags_json, note, rater, blind, created_at,"
            " kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (reply_id, score, to_json(list(tags)), note, rater, int(blind), now_iso(), kind),
        )

    def add_verdict(self, pane_id: int, *, verdict: str, note: str, rater: str, blind: bool) -> int:
        return self.database.insert(
            "INSERT INTO verdicts (pane_id, verdict, note, rater, blind, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (pane_id, verdict, note, rater, int(blind), now_iso()),
        )

    def add_pick(
        self, turn_id: int, *, winner_pane_id: int | None, outcome: str, rater: str, blind: bool
    ) -> int:
        if outcome not in PICK_OUTCOMES:
            raise KurabeError(f"pick must be one of {', '.join(PICK_OUTCOMES)}")
        if (outcome == "pane") != (winner_pane_id is not None):
            raise KurabeError("a pane pick names its pane; a tie or all-bad pick names none")
        return self.database.insert(
            "INSERT INTO picks (turn_id, winner_pane_id, outcome, rater, blind, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (turn_id, winner_pane_id, outcome, rater, int(blind), now_iso()),
        )

    def ratings(self, session_id: int) -> list[RatingRow]:
        rows = self.database.query(
            "SELECT g.* FROM ratings g JOIN replies r ON r.id = g.reply_id"
            " JOIN turns t ON t.id = r.turn_id WHERE t.session_id = ? ORDER BY g.id",
            (session_id,),
        )
        return [
            RatingRow(
                id=r["id"],
                reply_id=r["reply_id"],
                score=r["score"],
                tags=tuple(from_json(r["tags_json"], [])),
                note=r["note"],
                rater=r["rater"],
                blind=bool(r["blind"]),
                created_at=r["created_at"],
                kind=r["kind"],
            )
            for r in rows
        ]

    def verdicts(self, session_id: int) -> list[VerdictRow]:
        rows = self.database.query(
            "SELECT v.*, p.position AS pane_pos FROM verdicts v JOIN panes p ON p.id = v.pane_id"
            " WHERE p.session_id = ? ORDER BY v.id",
            (session_id,),
        )
        return [
            VerdictRow(
                id=r["id"],
                pane_id=r["pane_id"],
                pane=r["pane_pos"],
                verdict=r["verdict"],
                note=r["note"],
                rater=r["rater"],
                blind=bool(r["blind"]),
                created_at=r["created_at"],
            )
            for r in rows
        ]

    def picks(self, session_id: int) -> list[PickRow]:
        rows = self.database.query(
            "SELECT k.*, t.idx AS turn_idx, p.position AS winner_pos FROM picks k"
            " JOIN turns t ON t.id = k.turn_id LEFT JOIN panes p ON p.id = k.winner_pane_id"
            " WHERE t.session_id = ? ORDER BY k.id",
            (session_id,),
        )
        return [
            PickRow(
                id=r["id"],
                turn_id=r["turn_id"],
                turn=r["turn_idx"],
                winner_pane_id=r["winner_pane_id"],
                winner=r["winner_pos"],
                outcome=r["outcome"],
                rater=r["rater"],
                blind=bool(r["blind"]),
                created_at=r["created_at"],
            )
            for r in rows
        ]
