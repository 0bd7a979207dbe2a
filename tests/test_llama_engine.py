"""kurabe's own decode loop on the tiny GGUF: batching, prefix reuse, cancel, context, memory."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from backends import llama_engine
from backends.base import Conversation, StreamDone, StreamError, TextDelta
from backends.llama_cpp_backend import LlamaCppBackend, json_schema_grammar, unload_all_models
from backends.llama_engine import Request
from backends.llama_sampling import SamplingSettings
from backends.profiles import ModelProfile, Sampling
from backends.text_pipe import TextPipe
from kurabe.judge.answers import (
    SCHEMA_REASON_CHARS,
    AnswerError,
    answer_schema,
    parse_single_answer,
)
from tests.test_llama_backend import collect, conv, tiny_profile

CLERK = "あなたは丁寧な店員です。敬語で短く答えてください。"
GREEDY = Sampling(temperature=0.0, max_tokens=24, seed=1)


@pytest.fixture(autouse=True)
def fresh_models() -> Iterator[None]:
    yield
    unload_all_models()


async def loaded_backend(profile: ModelProfile) -> LlamaCppBackend:
    backend = LlamaCppBackend(profile)
    await backend.load()
    return backend


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


async def test_cached_prompt_tokens_is_the_prefix_actually_reused(tiny_gguf: Path) -> None:
    backend = await loaded_backend(tiny_profile(tiny_gguf, sampling=GREEDY))
    assert backend.loaded is not None
    engine = backend.loaded.engine

    async def turn(conversation: Conversation) -> tuple[str, StreamDone, int]:
        before = engine.tokens_evaluated
        text, done = await collect(backend, conversation)
        assert isinstance(done, StreamDone)
        return text, done, engine.tokens_evaluated - before

    first = conv("ねえ、アニメ好きなの？", cid="a")
    reply, done, evaluated = await turn(first)
    assert done.cached_prompt_tokens == 0
    generated = (done.completion_tokens or 0) - 1  # the last sampled token is never evaluated
    assert evaluated == done.prompt_tokens + generated
    second = conv("ねえ、アニメ好きなの？", reply, "好きなアニメは？", cid="a")
    _, done, evaluated = await turn(second)
    cached = done.cached_prompt_tokens or 0
    # What it claims to have reused is exactly what it did not evaluate again ...
    assert evaluated == (done.prompt_tokens or 0) - cached + (done.completion_tokens or 0) - 1
    # ... and that is the first prompt and more (the reply's tokens stayed in place too).
    assert len(backend.fit(first).tokens) < cached < (done.prompt_tokens or 0)
    # Another persona on the same pane shares only the template's first tokens.
    other = Conversation(CLERK, second.turns, "店員", "客", "a")
    _, done, evaluated = await turn(other)
    shared = common_prefix(backend.fit(second).tokens, backend.fit(other).tokens)
    assert shared < 40  # "<|im_start|>system\nあなたは" and no more
    assert done.cached_prompt_tokens == shared


async def test_two_panes_on_one_file_are_decoded_together_and_stay_apart(
    tiny_gguf: Path,
) -> None:
    # Replies long enough to overlap: 24 tokens of the tiny model take a few milliseconds, less
    # than the second pane may need to fit its prompt and reach the engine.
    greedy = replace(GREEDY, max_tokens=200)
    fan = await loaded_backend(tiny_profile(tiny_gguf, name="fan", sampling=greedy))
    clerk = await loaded_backend(tiny_profile(tiny_gguf, name="clerk", sampling=greedy))
    assert fan.loaded is clerk.loaded

    def fan_turn(cid: str) -> Conversation:
        return conv("ねえ、アニメ好きなの？", cid=cid)

    def clerk_turn(cid: str) -> Conversation:
        return conv("この服はいくらですか？", cid=cid, system=CLERK)

    alone_fan, done = await collect(fan, fan_turn("fan-alone"))
    assert isinstance(done, StreamDone) and done.decoded_alongside == 0
    alone_clerk, _ = await collect(clerk, clerk_turn("clerk-alone"))
    (both_fan, fan_done), (both_clerk, clerk_done) = await asyncio.gather(
        collect(fan, fan_turn("fan-batched")), collect(clerk, clerk_turn("clerk-batched"))
    )
    assert isinstance(fan_done, StreamDone) and isinstance(clerk_done, StreamDone)
    assert fan_done.decoded_alongside == 1 and clerk_done.decoded_alongside == 1
    # Greedy on F32: each pane's reply batched equals its reply alone, so neither saw the
    # other's tokens (a shared sequence or a crossed persona would change the text).
    assert both_fan == alone_fan
    assert both_clerk == alone_clerk
    assert alone_fan != alone_clerk


async def test_cancel_during_a_long_prompt_evaluation_frees_the_model(tiny_gguf: Path) -> None:
    backend = await loaded_backend(tiny_profile(tiny_gguf, n_ctx=4096, n_threads=1))
    loaded = backend.loaded
    assert loaded is not None
    engine = loaded.engine
    long_line = "ナウシカで何が起こったか忘れてしまったのですが、思い出してもらえますか？" * 28
    fitted = backend.fit(conv(long_line, cid="long"))
    assert len(fitted.tokens) > 3000
    pipe = TextPipe(asyncio.get_running_loop())
    request = backend.engine_request(fitted, "long", pipe)
    before = engine.tokens_evaluated
    engine.submit(request)
    deadline = time.monotonic() + 10
    while engine.tokens_evaluated == before and time.monotonic() < deadline:
        time.sleep(0.0005)  # the first prompt chunk is in; cancel in the middle of the prompt
    request.cancel()
    at_cancel = engine.tokens_evaluated
    engine.wake()
    cancelled_at = time.monotonic()
    items = [item async for item in pipe.items()]
    freed_after = time.monotonic() - cancelled_at
    result = items[-1]
    assert not isinstance(result, str)
    assert result.finish_reason == "cancelled"
    assert at_cancel - before < len(fitted.tokens)  # it was cancelled mid-prompt
    # At most the chunk in flight completes (an abort keeps none of it); the rest never runs.
    assert engine.tokens_evaluated - at_cancel <= engine.n_batch
    assert not engine.busy
    assert freed_after < 0.2
    # The model is usable at once, and the sequence kept only what was really evaluated.
    _, done = await collect(backend, conv(long_line, cid="long"))
    assert isinstance(done, StreamDone)
    assert (done.cached_prompt_tokens or 0) <= engine.tokens_evaluated


async def test_an_idle_engine_lets_its_thread_go_and_the_next_turn_starts_another(
    tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An idle engine must not keep a decode thread: under OpenMP that thread's team stays alive
    # with it and slows every other model's decoding (see backends.llama_engine).
    monkeypatch.setattr(llama_engine, "IDLE_THREAD_S", 0.1)
    backend = await loaded_backend(tiny_profile(tiny_gguf, sampling=GREEDY))
    assert backend.loaded is not None
    engine = backend.loaded.engine
    assert engine.decoding_thread is None  # loading starts none

    async def turn(conversation: Conversation) -> tuple[str, StreamDone, threading.Thread]:
        text, thread = "", None
        async for event in backend.stream(conversation):
            if isinstance(event, TextDelta):
                text += event.text
                thread = thread or engine.decoding_thread
            else:
                assert isinstance(event, StreamDone), event
                assert thread is not None and thread.name.startswith("llama:")
                thread.join(timeout=5)
                assert not thread.is_alive()
                return text, event, thread
        raise AssertionError("stream ended without a final event")

    first, _, first_thread = await turn(conv("ねえ、アニメ好きなの？", cid="a"))
    assert engine.decoding_thread is None
    assert not [t for t in threading.enumerate() if t.name.startswith("llama:")]
    # The next turn runs on a new thread over the same context: the pane's cells stayed.
    _, done, second_thread = await turn(conv("ねえ、アニメ好きなの？", first, "本当？", cid="a"))
    assert second_thread is not first_thread
    assert (done.cached_prompt_tokens or 0) > len(backend.fit(conv("ねえ")).tokens)
    again, _, _ = await turn(conv("ねえ、アニメ好きなの？", cid="b"))
    assert again == first
    unload_all_models()
    assert engine.closed


async def test_history_is_trimmed_and_a_20_turn_replay_completes_at_n_ctx_512(
    tiny_gguf: Path,
) -> None:
    profile = tiny_profile(tiny_gguf, n_ctx=512, sampling=Sampling(max_tokens=40, seed=3))
    backend = await loaded_backend(profile)
    history: list[str] = []
    trimmed: list[int] = []
    for turn in range(20):
        history.append(f"{turn + 1}回目: 好きなアニメの話をしよう！")
        reply, done = await collect(backend, conv(*history, cid="long-replay"))
        assert isinstance(done, StreamDone), f"turn {turn + 1}: {done}"
        assert (done.prompt_tokens or 0) + 40 <= 512
        history.append(reply)
        trimmed.append(done.history_trimmed_turns)
    assert trimmed[0] == 0
    assert max(trimmed) > 0
    assert trimmed[-1] >= trimmed[5]  # the older the conversation, the more is left out


async def test_fail_policy_reports_the_overflow_and_a_clamped_budget_is_recorded(
    tiny_gguf: Path,
) -> None:
    lines = [f"{n}回目: アニメの話をしようよ、ねえねえ！" for n in range(12)]
    failing = await loaded_backend(
        tiny_profile(tiny_gguf, n_ctx=256, context="fail", sampling=Sampling(max_tokens=8))
    )
    _, final = await collect(failing, conv(*lines[:-1], "最後", cid="fail"))
    assert isinstance(final, StreamError) and final.kind == "context_overflow"
    assert "n_ctx is 256" in final.reason
    unload_all_models()
    trimming = await loaded_backend(
        tiny_profile(tiny_gguf, n_ctx=320, sampling=Sampling(max_tokens=200, seed=1))
    )
    _, done = await collect(trimming, conv("短い", cid="clamp"))
    assert isinstance(done, StreamDone)
    prompt = done.prompt_tokens or 0
    assert 200 > 320 - prompt > 0  # 200 asked, less room left
    assert done.max_tokens_clamped == 320 - prompt
    assert (done.completion_tokens or 0) <= 320 - prompt
    assert done.history_trimmed_turns == 0


async def test_the_kv_budget_is_enforced_with_a_one_line_reason(tiny_gguf: Path) -> None:
    # The tiny model's KV takes 512 bytes a token: 1 MiB holds 2,048 tokens for every pane.
    sampling = Sampling(max_tokens=400, seed=1)
    backends = [
        await loaded_backend(
            tiny_profile(tiny_gguf, name=f"p{i}", kv_budget_mb=1, n_ctx=1024, sampling=sampling)
        )
        for i in range(6)
    ]
    loaded = backends[0].loaded
    assert loaded is not None
    assert loaded.engine.kv_cells == 2048
    long_line = "アニメ" * 40  # about 370 prompt tokens + 400 reply tokens a pane
    results = await asyncio.gather(
        *(collect(b, conv(long_line, cid=f"kv-{i}")) for i, b in enumerate(backends))
    )
    finals = [final for _, final in results]
    refused = [f for f in finals if isinstance(f, StreamError)]
    assert any(isinstance(f, StreamDone) for f in finals)
    assert refused, "six panes of ~770 tokens cannot share 2,048 cells"
    for error in refused:
        assert error.kind == "out_of_memory"
        assert error.reason.startswith("KV budget full") and "kv_budget_mb = 1" in error.reason
        assert "\n" not in error.reason
    # Once the others are done, the refused pane fits: idle panes' prefixes make room.
    index = finals.index(refused[0])
    _, final = await collect(backends[index], conv(long_line, cid=f"kv-{index}"))
    assert isinstance(final, StreamDone)


async def test_stop_strings_end_the_reply_and_are_not_shown(tiny_gguf: Path) -> None:
    backend = await loaded_backend(tiny_profile(tiny_gguf, sampling=GREEDY))
    reply, _ = await collect(backend, conv("ねえ", cid="free"))
    assert len(reply) > 6
    stop = reply[3:6]
    stopping = LlamaCppBackend(replace(backend.profile, sampling=replace(GREEDY, stop=(stop,))))
    await stopping.load()
    text, done = await collect(stopping, conv("ねえ", cid="stopped"))
    assert isinstance(done, StreamDone) and done.finish_reason == "stop"
    assert text == reply[: reply.index(stop)]


async def test_text_arrives_as_it_is_generated_not_at_the_end(tiny_gguf: Path) -> None:
    backend = await loaded_backend(
        tiny_profile(tiny_gguf, sampling=Sampling(max_tokens=300, seed=2))
    )
    deltas = 0
    async for event in backend.stream(conv("長い話をして", cid="stream")):
        if isinstance(event, TextDelta):
            deltas += 1
    assert deltas > 3


def test_the_engine_request_defaults_match_the_seed_settings() -> None:
    settings = SamplingSettings()
    assert (settings.temperature, settings.repeat_penalty, settings.repeat_last_n) == (
        0.7,
        1.18,
        256,
    )
    assert (settings.top_k, settings.top_p) == (40, 0.95)
    assert Request.__dataclass_fields__["ignore_eos"].default is False


# -- structured output ---------------------------------------------------------------------------

SINGLE = answer_schema("single")
JUDGED_LINE = "この返信を1から5で採点して"


def held_profiles(tiny_gguf: Path) -> tuple[ModelProfile, ModelProfile]:
    """The same greedy profile without and with the judge's single-mode schema: room for the
    longest reason in byte tokens (four a character at most), one thread (a tiny model decodes
    no faster on more, and two threads wait on each other on a busy machine)."""
    budget = SCHEMA_REASON_CHARS * 4 + 40
    plain = tiny_profile(
        tiny_gguf, n_ctx=1024, n_threads=1, sampling=replace(GREEDY, max_tokens=budget)
    )
    held = replace(plain, name="held", sampling=replace(plain.sampling, json_schema=SINGLE))
    return plain, held


async def test_a_json_schema_holds_random_weights_to_the_answer_format(tiny_gguf: Path) -> None:
    plain, held = held_profiles(tiny_gguf)
    free, done = await collect(await loaded_backend(plain), conv(JUDGED_LINE, cid="free"))
    assert isinstance(done, StreamDone)
    with pytest.raises(AnswerError):
        parse_single_answer(free)  # random weights write bytes, not JSON
    backend = await loaded_backend(held)
    text, done = await collect(backend, conv(JUDGED_LINE, cid="held"))
    assert isinstance(done, StreamDone) and done.finish_reason == "stop", text  # EOS, not length
    answer = parse_single_answer(text)
    assert 1 <= answer.score <= 5 and answer.reason
    # Drawn at a temperature rather than greedy, the answer is held to the format too.
    seeded = replace(held, sampling=replace(held.sampling, temperature=0.9, seed=3))
    drawn, _ = await collect(await loaded_backend(seeded), conv(JUDGED_LINE, cid="drawn"))
    assert parse_single_answer(drawn).reason
    # Only the schema's profile gets a grammar sampler: a plain request samples as before.
    pipe = TextPipe(asyncio.get_running_loop())
    fitted = backend.fit(conv(JUDGED_LINE, cid="held"))
    assert backend.engine_request(fitted, "held", pipe).sampling.grammar == json_schema_grammar(
        SINGLE
    )
    plain_backend = await loaded_backend(plain)
    assert plain_backend.engine_request(fitted, "free", pipe).sampling.grammar is None


async def test_a_held_and_a_free_reply_decoded_together_each_keep_their_own_rules(
    tiny_gguf: Path,
) -> None:
    plain, held = held_profiles(tiny_gguf)
    free_backend, held_backend = await loaded_backend(plain), await loaded_backend(held)
    alone_free, _ = await collect(free_backend, conv(JUDGED_LINE, cid="free-alone"))
    alone_held, _ = await collect(held_backend, conv(JUDGED_LINE, cid="held-alone"))
    (both_free, free_done), (both_held, held_done) = await asyncio.gather(
        collect(free_backend, conv(JUDGED_LINE, cid="free-batched")),
        collect(held_backend, conv(JUDGED_LINE, cid="held-batched")),
    )
    assert isinstance(free_done, StreamDone) and isinstance(held_done, StreamDone)
    assert free_done.decoded_alongside == 1 and held_done.decoded_alongside == 1
    # Greedy on F32: batched equals alone, so neither sequence's sampler saw the other's logits.
    assert (both_free, both_held) == (alone_free, alone_held)
    assert parse_single_answer(both_held).reason
    with pytest.raises(AnswerError):
        parse_single_answer(both_free)


async def test_a_stop_string_still_ends_a_held_reply(tiny_gguf: Path) -> None:
    _, held = held_profiles(tiny_gguf)
    text, _ = await collect(await loaded_backend(held), conv(JUDGED_LINE, cid="held"))
    stopping = replace(held, sampling=replace(held.sampling, stop=('"reason"',)))
    cut, done = await collect(await loaded_backend(stopping), conv(JUDGED_LINE, cid="cut"))
    assert isinstance(done, StreamDone) and done.finish_reason == "stop"
    assert cut == text[: text.index('"reason"')]


def test_the_grammar_keeps_json_strings_free_of_control_characters() -> None:
    grammar = json_schema_grammar(SINGLE)
    assert r'char ::= [^"\\\x7F\x00-\x1F] |' in grammar
    assert '"\\"score\\""' in grammar or '"score"' in grammar
