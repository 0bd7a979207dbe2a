"""What the judge and agreement tests share (no tests here): a stored two-pane session played by
fake backends, a judge profile pointed at a loopback OpenAI server, and judge answers as the
server streams them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from backends.profiles import ModelProfile, Sampling
from kurabe.judge.rubric import load_rubric
from kurabe.session.comparison import ComparisonSession
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario, Turn
from tests.fake_backends import FakeBackend, fake_factory, fake_profile
from tests.wire_servers import SSEReply, WireServer, openai_stream

PERSONA = Persona(
    id="anime-fan",
    title="大のアニメファン",
    system="あなたは大のアニメファンで、友達と会話しています。返信は短くカジュアルなものにする必要があります。",
    char_name="オタク",
    register="casual",
    max_reply_chars=60,
)
SCENARIO = Scenario(
    id="judge-test",
    title="審査のテスト",
    persona="anime-fan",
    turns=(
        Turn("ねえ、アニメ好きなの？", expect="短くカジュアルに「好き」と答える"),
        Turn("鬼滅の刃の主題歌、何だっけ？", expect="LiSAの「紅蓮華」"),
    ),
)
# Profile and model names the judge must never see (blind judging).
PANE_NAMES = ("secret-model-alpha", "secret-model-beta")
PANE_REPLIES = {
    "secret-model-alpha": ["うん、大好きだよ！", "「紅蓮華」だよ！LiSAの歌声が最高なんだよね〜"],
    "secret-model-beta": ["はい、アニメが好きです。", "主題歌は「炎」です。"],
}
JUDGE_KEY = "sk-judge-test-0123456789abcdef"


async def make_session(
    store: Store, *, names: tuple[str, ...] = PANE_NAMES, turns: int = 2, blind: bool = False
) -> int:
    """A finished two-turn session of ``names`` (fake backends); returns its id."""
    backends = {name: FakeBackend(name, PANE_REPLIES[name]) for name in names}
    session = ComparisonSession.create(
        store,
        PERSONA,
        [fake_profile(name) for name in names],
        scenario=SCENARIO,
        rater="hana",
        blind=blind,
        backend_factory=fake_factory(backends),
        shuffle_seed=1,
    )
    for _ in range(turns):
        await session.send_scenario_turn()
    await session.aclose()
    return session.id


def judge_profile(server: WireServer, name: str = "wire-judge", **changes: Any) -> ModelProfile:
    values: dict[str, Any] = {
        "name": name,
        "backend": "openai",
        "model": "judge-model",
        "base_url": f"{server.origin}/v1",
        "api_key_env": "OPENAI_API_KEY",
        "max_retries": 0,
        "timeout_s": 5.0,
        "sampling": Sampling(max_tokens=200),
    }
    values.update(changes)
    return ModelProfile(**values)


def answer(text: str) -> SSEReply:
    """The judge's answer streamed in a few chunks, as a server sends it."""
    return openai_stream([text[i : i + 7] for i in range(0, len(text), 7)] or [""])


def score_answer(score: int, reason: str = "キャラを保っている。") -> SSEReply:
    return answer(json.dumps({"score": score, "reason": reason}, ensure_ascii=False))


def pair_answer(winner: str, reason: str = "Aの方が自然。") -> SSEReply:
    return answer(json.dumps({"winner": winner, "reason": reason}, ensure_ascii=False))


def prompt_of(body: Any) -> str:
    """Every message's text of a recorded chat request, joined."""
    return "\n".join(str(m.get("content")) for m in body["messages"])


async def make_rated_store(tmp_path: Path) -> tuple[Store, int]:
    """Two panes × two turns; hana scores all four replies, yuki three; a judge scores all four
    and judges both turns pairwise; hana and yuki pick."""
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, turns=2)
    record = store.load_record(session_id)
    latest = record.latest_replies()
    r1, r2, r3, r4 = latest[(0, 0)], latest[(1, 0)], latest[(0, 1)], latest[(1, 1)]
    for reply, score in ((r1, 1), (r2, 2), (r3, 3), (r4, 4)):
        store.ratings.add_rating(reply.id, score=score, tags=(), note="", rater="hana", blind=False)
    for reply, score in ((r1, 1), (r2, 2), (r3, 4)):
        store.ratings.add_rating(reply.id, score=score, tags=(), note="", rater="yuki", blind=False)
    rubric = load_rubric()
    single = store.judging.add_run(
        session_id,
        judge="judge:j",
        profile_name="j",
        mode="single",
        rubric_name=rubric.name,
        rubric_hash=rubric.hash,
        rubric_text=rubric.text,
        settings={},
    )
    for reply, score in ((r1, 1), (r2, 3), (r3, 3), (r4, 5)):
        store.judging.add_judgement(
            single, turn_id=reply.turn_id, reply_id=reply.id, status="ok", score=score
        )
    pairwise = store.judging.add_run(
        session_id,
        judge="judge:j",
        profile_name="j",
        mode="pairwise",
        rubric_name=rubric.name,
        rubric_hash=rubric.hash,
        rubric_text=rubric.text,
        settings={},
    )
    # turn 0: pane 0 wins; turn 1: pane 1 wins
    store.judging.add_judgement(
        pairwise,
        turn_id=r1.turn_id,
        reply_id=r1.id,
        other_reply_id=r2.id,
        status="ok",
        winner_reply_id=r1.id,
    )
    store.judging.add_judgement(
        pairwise,
        turn_id=r3.turn_id,
        reply_id=r3.id,
        other_reply_id=r4.id,
        status="ok",
        winner_reply_id=r4.id,
    )
    panes = {p.position: p.id for p in record.panes}
    turn_ids = {t.idx: t.id for t in record.turns}
    store.ratings.add_pick(
        turn_ids[0], winner_pane_id=panes[0], outcome="pane", rater="hana", blind=False
    )
    store.ratings.add_pick(
        turn_ids[1], winner_pane_id=None, outcome="tie", rater="hana", blind=False
    )
    store.ratings.add_pick(
        turn_ids[0], winner_pane_id=panes[1], outcome="pane", rater="yuki", blind=False
    )
    return store, session_id
