"""What the judge and agreement tests share (no tests here): a stored two-pane session played by
fake backends, a judge profile pointed at a loopback OpenAI server, and judge answers as the
server streams them."""

from __future__ import annotations

import json
from typing import Any

from backends.profiles import ModelProfile, Sampling
from kurabe.session import ComparisonSession
from kurabe.store import Store
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
