"""One pane's figures over a stored session: replies done, the scores given, best picks won,
speed and the verdict. The exports' score tables and the TUI's summary screen both read these.

``rater`` narrows ratings, picks and the verdict to one person; without it, each reply's newest
human rating, every rater's newest pick per turn and the newest verdict count.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean

from kurabe.store.records import SessionRecord, VerdictRow


@dataclass(frozen=True)
class PaneSummary:
    position: int
    label: str
    profile_name: str
    replies: int
    """Turns that have a reply (its newest version), finished or not."""
    completed: int
    """Of those, replies that finished."""
    scores: tuple[int, ...]
    """The newest score of each of the pane's replies that has one."""
    wins: int
    """Turns whose best pick is this pane."""
    tokens_per_s: float | None
    chars_per_s: float | None
    """Mean speeds of the finished replies (None when none was measured)."""
    verdict: VerdictRow | None

    @property
    def mean_score(self) -> float | None:
        return fmean(self.scores) if self.scores else None


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return fmean(present) if present else None


def pane_summaries(record: SessionRecord, rater: str | None = None) -> list[PaneSummary]:
    """One :class:`PaneSummary` per pane, in pane order."""
    latest = record.latest_replies()
    wins: dict[int, int] = {}
    for pick in record.latest_picks_by_rater():
        if rater in (None, pick.rater) and pick.outcome == "pane" and pick.winner is not None:
            wins[pick.winner] = wins.get(pick.winner, 0) + 1
    summaries = []
    for pane in record.panes:
        replies = [
            reply for (position, _turn), reply in latest.items() if position == pane.position
        ]
        done = [reply for reply in replies if reply.completed]
        scores = []
        for reply in replies:
            rating = record.latest_rating(reply.id, rater)
            if rating is not None and rating.score is not None:
                scores.append(rating.score)
        summaries.append(
            PaneSummary(
                position=pane.position,
                label=pane.label,
                profile_name=pane.profile_name,
                replies=len(replies),
                completed=len(done),
                scores=tuple(scores),
                wins=wins.get(pane.position, 0),
                tokens_per_s=_mean([reply.tokens_per_s for reply in done]),
                chars_per_s=_mean([reply.chars_per_s for reply in done]),
                verdict=record.latest_verdict(pane.position, rater),
            )
        )
    return summaries
