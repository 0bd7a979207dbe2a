"""What a session's raters say: ratings of replies, verdicts on panes and picks of a turn's best.

:class:`~kurabe.session.comparison.ComparisonSession` keeps its rating methods (the TUI's rating
keys and the tests call them) and hands them to :class:`SessionRatings` with the session's current
rater and whether it is still blind. Every press is a committed row; the history is kept and the
newest row of a rater counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from foundation.errors import KurabeError
from kurabe.core.scores import check_score
from kurabe.core.verdicts import normalize_verdict
from kurabe.session.pane import Pane, pane_at
from kurabe.session.turns import SessionTurns
from kurabe.session.views import PickWinner, RatingView
from kurabe.store.records import newest, newest_by
from kurabe.store.store import Store


class SessionRatings:
    """One session's ratings, verdicts and picks in the store, read back per rater."""

    def __init__(
        self, store: Store, session_id: int, panes: Sequence[Pane], turns: SessionTurns
    ) -> None:
        self._store = store
        self._session_id = session_id
        self._panes = panes
        self._turns = turns

    def rate_reply(
        self,
        reply_id: int,
        *,
        score: int | None,
        tags: Sequence[str] | None,
        note: str | None,
        rater: str,
        blind: bool,
    ) -> RatingView:
        """Store ``rater``'s rating of a reply; fields left ``None`` keep their previous value."""
        if self._store.replies.reply_session(reply_id) != self._session_id:
            raise KurabeError(f"reply {reply_id} is not in session {self._session_id}")
        check_score(score)
        previous = self.rating_of(reply_id, rater)
        merged = RatingView(
            score=previous.score if score is None else score,
            tags=previous.tags
            if tags is None
            else tuple(dict.fromkeys(t.strip() for t in tags if t.strip())),
            note=previous.note if note is None else note,
            rater=rater,
        )
        self._store.ratings.add_rating(
            reply_id,
            score=merged.score,
            tags=merged.tags,
            note=merged.note,
            rater=rater,
            blind=blind,
        )
        return merged

    def rating_of(self, reply_id: int, rater: str) -> RatingView:
        return self.ratings(rater).get(reply_id, RatingView(rater=rater))

    def ratings(self, rater: str) -> dict[int, RatingView]:
        mine = (
            r
            for r in self._store.ratings.ratings(self._session_id)
            if r.rater == rater and r.kind == "human"
        )
        return {
            reply_id: RatingView(score=row.score, tags=row.tags, note=row.note, rater=row.rater)
            for reply_id, row in newest_by(mine, lambda r: r.reply_id).items()
        }

    def set_verdict(
        self, pane: int, verdict: str, note: str, *, rater: str, blind: bool
    ) -> tuple[str, str]:
        target = pane_at(self._panes, pane)
        stored = normalize_verdict(verdict)
        self._store.ratings.add_verdict(
            target.db_id,
            verdict=stored,
            note=note,
            rater=rater,
            blind=blind,
        )
        return stored, note

    def verdict_of(self, pane: int, rater: str) -> tuple[str, str] | None:
        target = pane_at(self._panes, pane)
        row = newest(
            v
            for v in self._store.ratings.verdicts(self._session_id)
            if v.pane_id == target.db_id and v.rater == rater
        )
        return None if row is None else (row.verdict, row.note)

    def pick_best(self, turn: int, winner: PickWinner, *, rater: str, blind: bool) -> PickWinner:
        if not 0 <= turn < len(self._turns):
            raise KurabeError(f"no turn {turn} in this session")
        if winner in ("tie", "bothbad"):
            self._store.ratings.add_pick(
                self._turns.ids[turn],
                winner_pane_id=None,
                outcome=str(winner),
                rater=rater,
                blind=blind,
            )
            return winner
        if isinstance(winner, bool) or not isinstance(winner, int):
            raise KurabeError(f"pick a pane index, 'tie' or 'bothbad', not {winner!r}")
        target = pane_at(self._panes, winner)
        self._store.ratings.add_pick(
            self._turns.ids[turn],
            winner_pane_id=target.db_id,
            outcome="pane",
            rater=rater,
            blind=blind,
        )
        return winner

    def picks(self, rater: str) -> dict[int, PickWinner]:
        mine = (p for p in self._store.ratings.picks(self._session_id) if p.rater == rater)
        found: dict[int, PickWinner] = {}
        for turn, row in newest_by(mine, lambda p: p.turn).items():
            if row.outcome == "pane" and row.winner is not None:
                found[turn] = row.winner
            else:
                found[turn] = "tie" if row.outcome == "tie" else "bothbad"
        return found
