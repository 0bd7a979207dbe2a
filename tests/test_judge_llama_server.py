"""A judge session end to end against a real server: llama-server's OpenAI endpoint on the
embedded Gemma 3 270M, reached through an ``openai`` profile with ``base_url`` exactly as a user's
``local-server`` profile would.

A 270M model is a poor judge and often answers outside the format: what this exercises is the
real path — the request (temperature 0 reaching the server), streaming, strict parsing, the
bounded retry, storage (ratings of kind judge, or failures with the raw text and no score) and
the agreement figures over the result. Skipped when no llama-server binary is found
(tests/llama_server_support.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.embedded import ensure_embedded_model
from backends.profiles import ModelProfile, Sampling
from kurabe.analysis.agreement import build_agreement, report_lines
from kurabe.judge.rubric import load_rubric
from kurabe.judge.runner import Judge, judge_session
from kurabe.store.store import Store
from tests.judge_support import make_session
from tests.llama_server_support import (
    MISSING_REASON,
    get_json,
    llama_server_binary,
    running_llama_server,
)

BINARY = llama_server_binary()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(BINARY is None, reason=MISSING_REASON)]
ATTEMPTS = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert BINARY is not None
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    gguf = ensure_embedded_model()
    with running_llama_server(BINARY, gguf, log, ctx_size=4096, threads=2, alias="gemma") as url:
        yield url


def judge_profile(origin: str) -> ModelProfile:
    return ModelProfile(
        name="local-judge",
        backend="openai",
        model="gemma",
        base_url=f"{origin}/v1",
        # The SDK's own retries, as a user's profile has them. Without them about one run in
        # three on a loaded machine saw "connection failed" on a retry request that the server
        # had logged as answered (likely a kept-alive connection closed under the client).
        max_retries=2,
        timeout_s=120.0,
        sampling=Sampling(max_tokens=96, seed=0),
    )


async def test_a_judge_session_on_llama_server_is_parsed_stored_and_measured(
    server: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, turns=1)
    judge = Judge(
        judge_profile(server), rubric=load_rubric(), max_attempts=ATTEMPTS, retry_delay_s=0.0
    )
    try:
        summary = await judge_session(store, session_id, judge)
    finally:
        await judge.aclose()
    assert summary.errors == 0, [r.attempts for r in summary.results]
    assert summary.ok + summary.unparseable == summary.planned == 2

    record = store.load_record(session_id)
    (run,) = record.judge_runs
    assert run.settings["backend"]["request"]["sent"]["temperature"] == 0.0
    slots = get_json(f"{server}/slots")
    assert slots[0]["params"]["temperature"] == pytest.approx(0.0)  # it reached the sampler

    judged = {r.reply_id: r for r in record.ratings if r.kind == "judge"}
    for row in record.judgements:
        assert row.attempts and all(a["raw"] is not None for a in row.attempts)
        if row.ok:
            assert 1 <= (row.score or 0) <= 5
            assert judged[row.reply_id].score == row.score
        else:
            assert row.status == "unparseable" and row.score is None
            assert row.reply_id not in judged  # never a guessed score
            assert len(row.attempts) == ATTEMPTS  # the retry stayed within its bound

    # a person's scores beside the judge's: the figures are computed (n/a when undefined)
    for reply in record.latest_replies().values():
        store.ratings.add_rating(reply.id, score=3, tags=(), note="", rater="tester", blind=False)
    report = build_agreement(store, session=session_id, rounds=100)
    assert len(report.scores) == (1 if summary.ok else 0)
    assert report_lines(report)
    # held to the answer schema (response_format), the small model's answers parse
    assert run.settings["backend"]["request"]["sent"]["response_format"] == "json_schema"
    assert summary.ok == summary.planned, [r.attempts for r in summary.results]


async def test_held_to_the_schema_the_judge_answers_parse_and_the_figures_are_computed(
    server: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, turns=2)
    record = store.load_record(session_id)
    # A person's scores and picks that vary, so each figure is defined once the judge answers.
    latest = record.latest_replies()
    for (pane, turn), score in {(0, 0): 1, (1, 0): 5, (0, 1): 2, (1, 1): 4}.items():
        store.ratings.add_rating(
            latest[(pane, turn)].id, score=score, tags=(), note="", rater="tester", blind=False
        )
    panes = {p.position: p.id for p in record.panes}
    for turn in record.turns:
        store.ratings.add_pick(
            turn.id, winner_pane_id=panes[turn.idx], outcome="pane", rater="tester", blind=False
        )
    summaries = []
    for mode in ("single", "pairwise"):
        judge = Judge(
            judge_profile(server),
            rubric=load_rubric(),
            mode=mode,  # type: ignore[arg-type]
            max_attempts=ATTEMPTS,
            retry_delay_s=0.0,
        )
        try:
            summaries.append(await judge_session(store, session_id, judge))
        finally:
            await judge.aclose()
    single, pairwise = summaries
    assert (single.planned, pairwise.planned) == (4, 2)
    assert single.errors == pairwise.errors == 0
    assert single.ok >= 3 and pairwise.ok >= 1, [
        r.attempts for r in single.results + pairwise.results
    ]

    report = build_agreement(store, session=session_id, rounds=100)
    (scores,) = report.scores
    assert scores.pairs == single.ok
    assert scores.kappa is not None and scores.exact is not None
    (picks,) = report.picks
    assert picks.pairs == pairwise.ok and picks.agreement is not None
