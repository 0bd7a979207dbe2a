"""The leaderboard at scale: planted strengths recovered, the bootstrap's counted resamples over
many battles, and the set-based reading giving the battles the per-session derivation gives."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from kurabe.analysis.battles import derive_battles
from kurabe.analysis.leaderboard import (
    DRAWN_ONE_BY_ONE,
    SESSIONS_PER_READ,
    Match,
    battle_score,
    bootstrap_intervals,
    build_leaderboard,
    fit_ratings,
)
from kurabe.store.database import Row
from kurabe.store.records import ReplyFigures
from kurabe.store.store import Store
from personas import Persona

PERSONA = Persona(id="anime-fan", title="大のアニメファン", system="あなたは大のアニメファンです。")
PLANTED = {"gpt-4": 1200.0, "claude-3": 1100.0, "elyza-7b": 1000.0, "weblab-10b": 850.0}
"""True ratings on the leaderboard's scale: P(a beats b) = 1 / (1 + 10^((r_b − r_a) / 400))."""


def a_wins(rng: random.Random, a: str, b: str) -> float:
    return 1.0 if rng.random() < 1 / (1 + 10 ** ((PLANTED[b] - PLANTED[a]) / 400)) else 0.0


def planted_matches(count: int, seed: int = 1) -> list[Match]:
    """``count`` battles between random pairs, won as the planted ratings say (no ties: a tie
    counts half to each side, which pulls the fitted gaps in)."""
    rng = random.Random(seed)
    names = list(PLANTED)
    matches: list[Match] = []
    for _ in range(count):
        a, b = rng.sample(names, 2)
        matches.append((a, b, a_wins(rng, a, b)))
    return matches


def centred(ratings: dict[str, float]) -> dict[str, float]:
    """Ratings shifted to the planted ones' mean (the fit centres on a geometric mean of 1)."""
    shift = sum(PLANTED.values()) / len(PLANTED) - sum(ratings.values()) / len(ratings)
    return {m: r + shift for m, r in ratings.items()}


def test_planted_strengths_are_recovered_in_order_and_gaps() -> None:
    ratings = centred(fit_ratings(planted_matches(20_000)))
    assert sorted(ratings, key=ratings.__getitem__, reverse=True) == list(PLANTED)
    for model, true in PLANTED.items():
        assert ratings[model] == pytest.approx(true, abs=15)


def test_bootstrap_over_many_battles_is_repeatable_narrow_and_brackets_the_truth() -> None:
    matches = planted_matches(50_000, seed=2)
    assert len(matches) > DRAWN_ONE_BY_ONE  # the counted (multinomial) resamples
    first = bootstrap_intervals(matches, rounds=100, seed=7)
    assert first == bootstrap_intervals(matches, rounds=100, seed=7)
    assert first != bootstrap_intervals(matches, rounds=100, seed=8)
    point = fit_ratings(matches)
    shift = sum(PLANTED.values()) / len(PLANTED) - sum(point.values()) / len(point)
    for model, (low, high) in first.items():
        assert low <= point[model] <= high
        assert 0 < high - low < 25  # about ±6 at 50,000 battles
        assert low + shift - 15 <= PLANTED[model] <= high + shift + 15
    # the width shrinks as 1/√n: 50× the battles, about 7× narrower
    few = bootstrap_intervals(planted_matches(1_000, seed=2), rounds=100, seed=7)
    ratio = (few["gpt-4"][1] - few["gpt-4"][0]) / (first["gpt-4"][1] - first["gpt-4"][0])
    assert math.sqrt(50) / 2 < ratio < math.sqrt(50) * 2


def add_rated_session(store: Store, rng: random.Random, models: Sequence[str]) -> None:
    """Two or three panes, three turns; a regenerated reply, a failed one, picks by two raters
    (some picked again later), ties and all-bad picks; picks drawn from the planted ratings."""
    sid = store.sessions.create(PERSONA, rater="はな")
    panes = [
        store.sessions.add_pane(
            sid, i, "ABC"[i], profile_name=m, backend="openai", model=m, settings={}
        )
        for i, m in enumerate(models)
    ]
    for idx in range(3):
        turn = store.replies.add_turn(sid, idx, "ねえ、アニメ好きなの？")
        for position, pane in enumerate(panes):
            if idx == 2 and position == 2:
                continue  # the third pane has no reply at the last turn
            for _ in range(2 if rng.random() < 0.2 else 1):
                reply, _ = store.replies.start_reply(turn, pane)
                if rng.random() < 0.1:
                    store.replies.fail_reply(reply, status="failed", text="", error="reset")
                    continue
                store.replies.finish_reply(
                    reply,
                    text="うん、大好きだよ！",
                    finish_reason="stop",
                    figures=ReplyFigures(chars=9, tokens_per_s=40.0 + position),
                    checks={"japanese_share": 1.0, "flags": []},
                )
                store.ratings.add_rating(
                    reply, score=rng.randint(1, 5), tags=[], note="", rater="はな", blind=False
                )
        for rater in ("はな", "ゆき"):
            for _ in range(2 if rng.random() < 0.2 else 1):
                draw = rng.random()
                if draw < 0.1:
                    store.ratings.add_pick(
                        turn, winner_pane_id=None, outcome="tie", rater=rater, blind=False
                    )
                elif draw < 0.15:
                    store.ratings.add_pick(
                        turn, winner_pane_id=None, outcome="bothbad", rater=rater, blind=False
                    )
                else:
                    a, b = rng.sample(range(len(panes)), 2)
                    winner = a if a_wins(rng, models[a], models[b]) else b
                    store.ratings.add_pick(
                        turn, winner_pane_id=panes[winner], outcome="pane", rater=rater, blind=False
                    )
    for pane in panes:
        store.ratings.add_verdict(pane, verdict="ok", note="", rater="はな", blind=False)


@pytest.fixture
def rated_store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "k.sqlite3")
    rng = random.Random(5)
    names = list(PLANTED)
    for number in range(120):
        add_rated_session(store, rng, rng.sample(names, 3 if number % 4 == 0 else 2))
    add_rated_session(store, rng, ["gpt-4", "gpt-4"])  # the same model twice: no battle
    return store


def test_set_based_reading_gives_the_battles_of_derive_battles(rated_store: Store) -> None:
    for rater in (None, "ゆき"):
        expected: list[Match] = [
            (b.model_a, b.model_b, battle_score(b.winner))
            for sid in rated_store.sessions.ids()
            for b in derive_battles(rated_store.load_record(sid))
            if rater is None or b.judge == rater
        ]
        board = build_leaderboard(rated_store, rater=rater, rounds=0)
        assert board.battles == len(expected) > 300
        ratings = fit_ratings(expected)
        for model in board.models:
            assert model.rating == ratings[model.model]
    board = build_leaderboard(rated_store, rounds=20)
    assert [m.model for m in board.models] == list(PLANTED)  # strongest first
    assert all(m.replies > 0 and m.verdicts["ok"] > 0 for m in board.models)


def test_the_leaderboard_reads_no_reply_text_and_few_queries(
    rated_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, Sequence[Any]]] = []
    query = rated_store.database.query

    def counted(sql: str, params: Sequence[Any] = ()) -> list[Row]:
        seen.append((sql, params))
        return query(sql, params)

    monkeypatch.setattr(rated_store.database, "query", counted)
    build_leaderboard(rated_store, rounds=0)
    monkeypatch.undo()
    assert len(seen) <= 8  # the ids, then one batch: panes, replies, ratings, verdicts, picks
    replies = [sql for sql, _ in seen if "FROM replies" in sql]
    assert replies and all("text" not in sql.split("FROM")[0] for sql in replies)
    # every batch query reaches its rows through indexes, for a full batch of session ids too
    # (SQLite weighs the length of the IN list): a full scan per batch of sessions would make
    # the board quadratic in the number of sessions
    sessions = len(rated_store.sessions.ids())
    batch = "IN (" + ", ".join("?" * sessions) + ")"
    full = "IN (" + ", ".join("?" * SESSIONS_PER_READ) + ")"
    for sql, params in seen[1:]:
        assert batch in sql
        full_params = (*range(1, SESSIONS_PER_READ + 1), *params[sessions:])
        for shape, values in ((sql, params), (sql.replace(batch, full), full_params)):
            plan = [str(row[3]) for row in query("EXPLAIN QUERY PLAN " + shape, values)]
            assert not [step for step in plan if step.startswith("SCAN")], (sql, plan)
