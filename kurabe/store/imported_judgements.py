"""Judgments imported from MT-Bench (FastChat's ``model_judgment`` files), as
:class:`ImportedJudgementRepository`, ``store.imported_judgements``.

They are judge ratings under the judge's name (rater ``judge:<judge model>``, e.g.
``judge:gpt-4``) but on **their own scale**, MT-Bench's 1–10 (:data:`~kurabe.core.scores.
MT_BENCH_SCALE`), so they live in their own table rather than among ``ratings`` (1–5): no reader
of ratings can mix the two scales by accident, and none is ever rescaled.

- **single**: one reply's score; a judgment whose score FastChat wrote as -1 (the judge's answer
  had no ``[[rating]]``) is kept with status ``failed`` and no score: never a number in a mean.
- **pairwise**: ``reply_id`` is model_1's reply, ``other_reply_id`` model_2's, and the winners of
  the two position orders as FastChat wrote them (``model_1``, ``model_2``, ``tie``, ``error``).

The judge's texts are kept (``judgment``; pairwise also ``judgment_2``), and where each row came
from (``source``: file and line).
"""

from __future__ import annotations

from dataclasses import dataclass

from foundation.errors import KurabeError
from kurabe.core.scores import MT_BENCH_SCALE, check_score
from kurabe.store.database import Database, Row, now_iso

PAIR_WINNERS = ("model_1", "model_2", "tie", "error")
"""What FastChat writes as ``g1_winner`` / ``g2_winner``: already mapped back to the models."""
IMPORTED_STATUSES = ("ok", "failed")


@dataclass(frozen=True, slots=True)
class ImportedJudgementRow:
    """One imported judgment, with the session, turn and pane positions it belongs to."""

    id: int
    session_id: int
    turn_id: int
    turn: int
    """The turn's 0-based index in its session."""
    reply_id: int
    other_reply_id: int | None
    judge: str
    prompt_name: str
    mode: str
    scale: str
    status: str
    score: int | None
    g1_winner: str | None
    g2_winner: str | None
    judgment: str
    judgment_2: str
    source: str
    tstamp: float | None
    created_at: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class ImportedJudgementRepository:
    """Imported judgments, on one :class:`~kurabe.store.database.Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def add(
        self,
        *,
        turn_id: int,
        reply_id: int,
        judge: str,
        mode: str,
        prompt_name: str = "",
        other_reply_id: int | None = None,
        score: int | None = None,
        g1_winner: str | None = None,
        g2_winner: str | None = None,
        judgment: str = "",
        judgment_2: str = "",
        source: str = "",
        tstamp: float | None = None,
        scale: str = MT_BENCH_SCALE,
    ) -> int:
        """Add one imported judgment: the one way a row of ``imported_judgements`` is written.
        A single judgment without a score is stored as ``failed``."""
        check_score(score, scale)
        if mode == "single":
            if other_reply_id is not None or g1_winner is not None or g2_winner is not None:
                raise KurabeError("a single judgment has one reply and no winners")
            status = "ok" if score is not None else "failed"
        elif mode == "pairwise":
            if other_reply_id is None or score is not None:
                raise KurabeError("a pairwise judgment has two replies and no score")
            if g1_winner not in PAIR_WINNERS or g2_winner not in PAIR_WINNERS:
                raise KurabeError(f"a pairwise winner is one of {', '.join(PAIR_WINNERS)}")
            status = "failed" if "error" in (g1_winner, g2_winner) else "ok"
        else:
            raise KurabeError(f"judgment mode is single or pairwise, not {mode!r}")
        return self.database.insert(
            "INSERT INTO imported_judgements (turn_id, reply_id, other_reply_id, judge,"
            " prompt_name, mode, scale, status, score, g1_winner, g2_winner, judgment,"
            " judgment_2, source, tstamp, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                turn_id,
                reply_id,
                other_reply_id,
                judge,
                prompt_name,
                mode,
                scale,
                status,
                score,
                g1_winner,
                g2_winner,
                judgment,
                judgment_2,
                source,
                tstamp,
                now_iso(),
            ),
        )

    def judgements(self, session_ids: list[int] | None = None) -> list[ImportedJudgementRow]:
        """The imported judgments of these sessions (all when None), oldest first."""
        sql = (
            "SELECT j.*, t.session_id AS session_id, t.idx AS turn_idx FROM imported_judgements j"
            " JOIN turns t ON t.id = j.turn_id"
        )
        params: list[int] = []
        if session_ids is not None:
            if not session_ids:
                return []
            sql += f" WHERE t.session_id IN ({', '.join('?' for _ in session_ids)})"
            params = list(session_ids)
        return [_row(r) for r in self.database.query(sql + " ORDER BY j.id", params)]


def _row(r: Row) -> ImportedJudgementRow:
    return ImportedJudgementRow(
        id=r["id"],
        session_id=r["session_id"],
        turn_id=r["turn_id"],
        turn=r["turn_idx"],
        reply_id=r["reply_id"],
        other_reply_id=r["other_reply_id"],
        judge=r["judge"],
        prompt_name=r["prompt_name"],
        mode=r["mode"],
        scale=r["scale"],
        status=r["status"],
        score=r["score"],
        g1_winner=r["g1_winner"],
        g2_winner=r["g2_winner"],
        judgment=r["judgment"],
        judgment_2=r["judgment_2"],
        source=r["source"],
        tstamp=r["tstamp"],
        created_at=r["created_at"],
    )
