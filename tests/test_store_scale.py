"""The list of sessions at scale: a bounded number of queries whatever the number of sessions,
counts read through indexes (the query plan), and the same output as before for blind, revealed
and failed cases."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from kurabe.cli import main
from kurabe.store.database import Row
from kurabe.store.records import ReplyFigures
from kurabe.store.sessions import SUMMARIES_SQL
from kurabe.store.store import Store
from personas import Persona

PERSONA = Persona(id="anime-fan", title="大のアニメファン", system="あなたは大のアニメファンです。")


def add_session(
    store: Store,
    models: Sequence[str],
    *,
    blind: bool = False,
    revealed: bool = False,
    turns: int = 2,
    failed: int = 0,
) -> int:
    """A session of ``models`` with ``turns`` turns, a reply per pane and turn (the first
    ``failed`` of them failed), a person's score of every completed reply and a judge's of the
    first, a verdict per pane and a pick per turn."""
    sid = store.sessions.create(PERSONA, blind=blind, rater="はな")
    panes = [
        store.sessions.add_pane(
            sid, i, "ABCD"[i], profile_name=m, backend="openai", model=m, settings={}
        )
        for i, m in enumerate(models)
    ]
    to_fail = failed
    judged = False
    for idx in range(turns):
        turn = store.replies.add_turn(sid, idx, "ねえ、アニメ好きなの？")
        for pane in panes:
            reply, _ = store.replies.start_reply(turn, pane)
            if to_fail:
                to_fail -= 1
                store.replies.fail_reply(reply, status="failed", text="う", error="reset")
                continue
            store.replies.finish_reply(
                reply,
                text="うん、大好きだよ！",
                finish_reason="stop",
                figures=ReplyFigures(chars=9),
            )
            store.ratings.add_rating(reply, score=4, tags=[], note="", rater="はな", blind=blind)
            if not judged:
                judged = True
                store.ratings.add_rating(
                    reply, score=2, tags=[], note="", rater="judge:x", blind=False, kind="judge"
                )
        if panes:
            store.ratings.add_pick(
                turn, winner_pane_id=panes[0], outcome="pane", rater="はな", blind=blind
            )
    for pane in panes:
        store.ratings.add_verdict(pane, verdict="ok", note="", rater="はな", blind=blind)
    if revealed:
        store.sessions.set_revealed(sid)
    return sid


def count_queries(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the store's database is asked to read from now on."""
    seen: list[str] = []
    query = store.database.query

    def counted(sql: str, params: Sequence[Any] = ()) -> list[Row]:
        seen.append(sql)
        return query(sql, params)

    monkeypatch.setattr(store.database, "query", counted)
    return seen


def test_listing_makes_the_same_few_queries_for_3_and_30_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    for _ in range(3):
        add_session(store, ["gpt-4", "elyza-7b"], turns=1)
    seen = count_queries(store, monkeypatch)
    assert len(store.sessions.summaries()) == 3
    few = len(seen)
    assert few <= 2
    monkeypatch.undo()
    for _ in range(27):
        add_session(store, ["gpt-4", "elyza-7b"], turns=1)
    seen = count_queries(store, monkeypatch)
    assert len(store.sessions.summaries()) == 30
    assert len(seen) == few
    seen.clear()
    assert len(store.sessions.summaries(limit=5)) == 5
    assert len(seen) == few


def test_the_counts_go_through_the_parents_indexes(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.sqlite3")
    add_session(store, ["gpt-4", "elyza-7b"])
    plan = [str(row[3]) for row in store.database.query("EXPLAIN QUERY PLAN " + SUMMARIES_SQL)]
    scans = [step for step in plan if step.startswith("SCAN")]
    assert scans == ["SCAN s"], plan  # the sessions once; every count is an index search
    counts = [step for step in plan if step.startswith("SEARCH")]
    assert len(counts) == 10, plan
    assert all(" INDEX " in step for step in counts), plan
    indexes = {str(row[0]) for row in store.database.query("SELECT name FROM sqlite_master")}
    assert {"replies_turn_status", "ratings_reply_kind", "replies_streaming"} <= indexes
    assert not {"replies_status", "ratings_kind"} & indexes


EXPECTED = [
    # id, scenario, models, replies, ratings, status, run
    ("5", "-", "", "0", "0", "open", "-"),
    ("4", "-", "gpt-4, elyza-7b, swallow-13b (blind, revealed)", "6", "11", "open", "-"),
    ("3", "-", "A, B (blind)", "4", "8", "open", "-"),
    ("2", "-", "gpt-4, elyza-7b", "1", "5", "finished", "-"),
    ("1", "-", "gpt-4, elyza-7b", "4", "8", "open", "-"),
]


def test_blind_revealed_failed_and_empty_sessions_list_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "k.sqlite3"
    with Store(db) as store:
        add_session(store, ["gpt-4", "elyza-7b"])
        add_session(store, ["gpt-4", "elyza-7b"], failed=3)  # 1 complete reply of 4
        add_session(store, ["gpt-4", "elyza-7b"], blind=True)
        add_session(store, ["gpt-4", "elyza-7b", "swallow-13b"], blind=True, revealed=True)
        add_session(store, [], turns=0)
        store.sessions.set_status(2, "finished")
    assert main(["sessions", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "id\tdate\tscenario\tmodels\treplies\tratings\tstatus\trun"
    rows = [tuple(line.split("\t")) for line in lines[1:]]
    assert [row[:1] + row[2:] for row in rows] == EXPECTED
    assert all(len(row[1]) == 16 for row in rows)  # "YYYY-MM-DD HH:MM"

    assert main(["sessions", "--db", str(db), "--format", "json", "--limit", "2"]) == 0
    items = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(i["id"], i["models"], i["turns"], i["replies"], i["ratings"]) for i in items] == [
        (5, [], 0, 0, 0),
        (4, ["gpt-4", "elyza-7b", "swallow-13b"], 2, 6, 11),
    ]
    assert (items[1]["blind"], items[1]["revealed"]) == (True, True)
