"""Each repository of the store on a database of its own (no Store around it), the one way in
for each table, and the one score rule; on SQLite and on PostgreSQL (``db_target``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foundation.errors import KurabeError
from kurabe.core.scores import SCORES, check_score, is_score
from kurabe.store.database import Database
from kurabe.store.judging import JudgingRepository
from kurabe.store.ratings import RatingRepository
from kurabe.store.replies import ReplyRepository
from kurabe.store.sessions import SessionRepository
from kurabe.store.target import open_database
from personas import Persona

PERSONA = Persona(id="anime-fan", title="大のアニメファン", system="あなたは大のアニメファンです。")


@pytest.fixture
def database(db_target: str | Path) -> Iterator[Database]:
    with open_database(db_target) as opened:
        yield opened


def a_reply(database: Database) -> tuple[int, int]:
    """(session id, reply id) of one reply, written by the sessions' and replies' repositories."""
    sessions, replies = SessionRepository(database), ReplyRepository(database)
    session_id = sessions.create(PERSONA, rater="はな")
    pane_id = sessions.add_pane(
        session_id, 0, "A", profile_name="gemma", backend="llama_cpp", model="g.gguf", settings={}
    )
    turn_id = replies.add_turn(session_id, 0, "ねえ、アニメ好きなの？")
    reply_id, _ = replies.start_reply(turn_id, pane_id)
    return session_id, reply_id


def judge_run(database: Database, session_id: int) -> int:
    return JudgingRepository(database).add_run(
        session_id,
        judge="judge:mini",
        profile_name="mini",
        mode="single",
        rubric_name="default",
        rubric_hash="0" * 64,
        rubric_text="1〜5で採点",
        settings={},
    )


def count(database: Database, table: str) -> int:
    row = database.query_one(f"SELECT COUNT(*) FROM {table}")
    return int(row[0]) if row else 0


def test_a_ratings_repository_on_its_own_database(database: Database) -> None:
    assert database.schema_version > 0
    session_id, reply_id = a_reply(database)
    ratings = RatingRepository(database)
    rating_id = ratings.add_rating(
        reply_id, score=4, tags=["too-long"], note="長い", rater="はな", blind=True
    )
    (row,) = ratings.ratings(session_id)
    assert (row.id, row.reply_id, row.score, row.tags, row.note) == (
        rating_id,
        reply_id,
        4,
        ("too-long",),
        "長い",
    )
    assert row.kind == "human" and row.blind


def test_a_judges_rating_goes_through_the_ratings_kind_check(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id, reply_id = a_reply(database)
    run_id = judge_run(database, session_id)
    monkeypatch.setattr("kurabe.store.ratings.RATING_KINDS", ("human",))
    with pytest.raises(KurabeError) as by_rating:
        RatingRepository(database).add_rating(
            reply_id, score=4, tags=(), note="", rater="judge:mini", blind=True, kind="judge"
        )
    with pytest.raises(KurabeError) as by_judgement:
        JudgingRepository(database).add_judgement(
            run_id, turn_id=1, reply_id=reply_id, status="ok", score=4, reason="自然"
        )
    assert str(by_judgement.value) == str(by_rating.value)
    assert count(database, "ratings") == count(database, "judgements") == 0


@pytest.mark.parametrize("score", [0, 6, True, 3.5])
def test_a_judgement_with_a_bad_score_is_refused_like_a_rating(
    database: Database, score: Any
) -> None:
    session_id, reply_id = a_reply(database)
    run_id = judge_run(database, session_id)
    with pytest.raises(KurabeError) as by_rating:
        RatingRepository(database).add_rating(
            reply_id, score=score, tags=(), note="", rater="はな", blind=False
        )
    with pytest.raises(KurabeError) as by_judgement:
        JudgingRepository(database).add_judgement(
            run_id, turn_id=1, reply_id=reply_id, status="ok", score=score, reason="?"
        )
    assert str(by_judgement.value) == str(by_rating.value) == f"score must be 1 to 5, got {score!r}"
    assert count(database, "ratings") == count(database, "judgements") == 0


def test_a_judges_rating_is_written_with_its_judgement(database: Database) -> None:
    session_id, reply_id = a_reply(database)
    run_id = judge_run(database, session_id)
    judging = JudgingRepository(database)
    judging.add_judgement(run_id, turn_id=1, reply_id=reply_id, status="ok", score=5, reason="良")
    (judgement,) = judging.judgements(session_id)
    (rating,) = RatingRepository(database).ratings(session_id)
    assert judgement.rating_id == rating.id and judgement.score == rating.score == 5
    assert (rating.kind, rating.rater, rating.note) == ("judge", "judge:mini", "良")


def test_a_reveal_writes_its_event_through_add_event(database: Database) -> None:
    sessions = SessionRepository(database)
    session_id = sessions.create(PERSONA, blind=True)
    written: list[str] = []
    add_event = sessions.add_event

    def recorded(session: int, kind: str, data: Any = None) -> None:
        written.append(kind)
        add_event(session, kind, data)

    sessions.add_event = recorded  # type: ignore[method-assign]
    sessions.set_revealed(session_id)
    assert written == ["reveal"]
    assert sessions.get(session_id).revealed
    assert [event.kind for event in sessions.events(session_id)] == ["reveal"]


def test_a_nested_transaction_joins_the_outer_one(database: Database) -> None:
    sessions = SessionRepository(database)
    with pytest.raises(RuntimeError), database.transaction():
        session_id = sessions.create(PERSONA)
        sessions.set_revealed(session_id)  # a transaction of its own, inside this one
        raise RuntimeError("undo it all")
    assert count(database, "sessions") == count(database, "events") == 0
    session_id = sessions.create(PERSONA)
    sessions.set_revealed(session_id)
    assert count(database, "events") == 1


def test_the_score_rule() -> None:
    assert SCORES == (1, 2, 3, 4, 5)
    assert all(is_score(score) for score in SCORES)
    for not_a_score in (0, 6, -1, True, False, 3.0, "3", None):
        assert not is_score(not_a_score)
    check_score(None)  # not scored yet
    with pytest.raises(KurabeError, match="score must be 1 to 5, got 6"):
        check_score(6)


def test_the_schema_checks_the_score_too(database: Database) -> None:
    _, reply_id = a_reply(database)
    with pytest.raises(database.integrity_error):
        database.insert(
            "INSERT INTO ratings (reply_id, score, rater, created_at) VALUES (?, 6, 'x', 'now')",
            (reply_id,),
        )
