"""Pairwise battles from the per-turn best picks, in FastChat's ``clean_battle`` shape: what the
leaderboard fits, the agreement compares and ``kurabe export --format battles`` writes
(:mod:`kurabe.export.battles`). A pick of one pane among N gives N−1 battles; a tie or "all bad"
gives one for every pair; only the newest pick per (turn, rater) counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kurabe.core.blind import shown_name
from kurabe.core.languages import LANGUAGE_NAMES
from kurabe.store.records import SessionRecord


@dataclass(frozen=True, slots=True)
class Battle:
    """One pairwise result derived from a per-turn pick."""

    session_id: int
    turn: int
    pane_a: int
    pane_b: int
    model_a: str
    model_b: str
    winner: str
    """``model_a``, ``model_b``, ``tie`` or ``tie (bothbad)``."""
    judge: str
    anony: bool
    tstamp: float
    scenario_id: str | None
    language: str


def pick_pairs(
    outcome: str, winner: int | None, present: Sequence[int]
) -> list[tuple[int, int, str]]:
    """The battles one pick gives, as (pane a, pane b, winner) with a < b by position: the
    picked pane against each other pane ``present`` (those with a reply at the pick's turn), or
    every pair of them for a tie or "all bad"; none for a pick of a pane not present."""
    pairs: list[tuple[int, int, str]] = []
    if outcome == "pane":
        if winner is None or winner not in present:
            return []
        for other in present:
            if other == winner:
                continue
            a, b = sorted((winner, other))
            pairs.append((a, b, "model_a" if a == winner else "model_b"))
    else:
        result = "tie" if outcome == "tie" else "tie (bothbad)"
        for i, a in enumerate(present):
            for b in present[i + 1 :]:
                pairs.append((a, b, result))
    return pairs


def derive_battles(record: SessionRecord, *, hide_names: bool = False) -> list[Battle]:
    """Pairwise results from the newest pick per (turn, rater); see the module docstring."""
    latest = record.latest_replies()
    language = LANGUAGE_NAMES.get(
        str(record.session.persona.get("language", "ja")),
        str(record.session.persona.get("language")),
    )
    panes = {p.position: p for p in record.panes}
    battles = []
    for pick in record.latest_picks_by_rater():
        present = sorted(pos for (pos, turn) in latest if turn == pick.turn)
        if len(present) < 2:
            continue
        pairs = pick_pairs(pick.outcome, pick.winner, present)
        if not pairs:
            continue
        stamp = datetime.fromisoformat(pick.created_at).timestamp()
        for a, b, winner in pairs:
            name_a = shown_name(panes[a].label, panes[a].profile_name, hidden=hide_names)
            name_b = shown_name(panes[b].label, panes[b].profile_name, hidden=hide_names)
            if name_a == name_b:
                continue
            battles.append(
                Battle(
                    session_id=record.session.id,
                    turn=pick.turn,
                    pane_a=a,
                    pane_b=b,
                    model_a=name_a,
                    model_b=name_b,
                    winner=winner,
                    judge=pick.rater,
                    anony=pick.blind,
                    tstamp=stamp,
                    scenario_id=record.session.scenario_id,
                    language=language,
                )
            )
    return battles
