"""What a session shows, read back from the store: per turn the user's text, each pane's latest
reply with its figures, checks and the rater's rating, and the rater's pick (:func:`turn_views`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from kurabe.checks.report import CheckReport, load_check_report
from kurabe.store.records import ReplyFigures, SessionRecord

PickWinner = int | Literal["tie", "bothbad"]
"""A turn's best pick: a pane index, a tie, or "all bad"."""


@dataclass(frozen=True, slots=True)
class RatingView:
    score: int | None = None
    tags: tuple[str, ...] = ()
    note: str = ""
    rater: str = ""


@dataclass(frozen=True, slots=True)
class ReplyView:
    reply_id: int
    pane: int
    turn: int
    version: int
    versions: int
    """How many versions this pane has for this turn (regenerations and retries)."""
    text: str
    status: str
    """``streaming`` | ``complete`` | ``failed`` | ``cancelled`` | ``interrupted``."""
    finish_reason: str | None
    error: str | None
    figures: ReplyFigures
    checks: dict[str, Any]
    rating: RatingView

    @property
    def check_report(self) -> CheckReport | None:
        """:attr:`checks`, typed; None when the checks did not run."""
        return load_check_report(self.checks)

    @property
    def incomplete(self) -> bool:
        return self.status != "complete"

    @property
    def ratings(self) -> RatingView:
        """Alias of :attr:`rating` (the latest score, tags and note of the session's rater)."""
        return self.rating


@dataclass(frozen=True, slots=True)
class TurnView:
    index: int
    text: str
    replies: dict[int, ReplyView]
    """Pane index → the latest version of that pane's reply (panes without a reply are absent)."""
    pick: PickWinner | None
    scenario_turn: int | None = None


def turn_views(record: SessionRecord, rater: str) -> list[TurnView]:
    """Per turn: the user's text, each pane's latest reply (with figures, checks and ``rater``'s
    latest rating) and ``rater``'s pick. For redraw and resume."""
    latest = record.latest_replies()
    counts: dict[tuple[int, int], int] = {}
    for row in record.replies:
        counts[(row.pane, row.turn)] = counts.get((row.pane, row.turn), 0) + 1
    views = []
    for turn in record.turns:
        replies: dict[int, ReplyView] = {}
        for pane in record.panes:
            reply = latest.get((pane.position, turn.idx))
            if reply is None:
                continue
            rating = record.latest_rating(reply.id, rater)
            replies[pane.position] = ReplyView(
                reply_id=reply.id,
                pane=pane.position,
                turn=turn.idx,
                version=reply.version,
                versions=counts[(pane.position, turn.idx)],
                text=reply.text,
                status=reply.status,
                finish_reason=reply.finish_reason,
                error=reply.error,
                figures=reply.figures,
                checks=reply.checks,
                rating=RatingView(
                    score=rating.score,
                    tags=rating.tags,
                    note=rating.note,
                    rater=rating.rater,
                )
                if rating
                else RatingView(),
            )
        pick_row = record.latest_pick(turn.idx, rater)
        pick: PickWinner | None = None
        if pick_row is not None:
            if pick_row.outcome == "pane":
                pick = pick_row.winner
            elif pick_row.outcome == "tie":
                pick = "tie"
            else:
                pick = "bothbad"
        views.append(
            TurnView(
                index=turn.idx,
                text=turn.text,
                replies=replies,
                pick=pick,
                scenario_turn=turn.scenario_turn,
            )
        )
    return views
