"""The llama.cpp backend on real GGUF files: a tiny generated llama, and the embedded Gemma."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from backends.base import (
    Backend,
    ChatMessage,
    Conversation,
    StreamDone,
    StreamError,
    StreamEvent,
    TextDelta,
)
from backends.llama_cpp_backend import LlamaCppBackend, loaded_models, unload_all_models
from backends.llama_engine import LlamaEngine
from backends.profiles import BUILTIN_PROFILES, ModelProfile, Sampling
from kurabe.session.comparison import ComparisonSession
from kurabe.store.store import Store
from personas import Persona

ANIME_FAN = "あなたは大のアニメファンで、友達と会話しています。 返信は短くカジュアルなものにする必要があります。"


@pytest.fixture(autouse=True)
def fresh_models() -> Iterator[None]:
    yield
    unload_all_models()


def tiny_profile(path: Path, **changes: object) -> ModelProfile:
    profile = ModelProfile(
        name="tiny",
        backend="llama_cpp",
        model=str(path),
        prompt_format="chatml",
        n_ctx=512,
        sampling=Sampling(max_tokens=12, seed=7),
    )
    return replace(profile, **changes)  # type: ignore[arg-type]


def conv(*lines: str, cid: str = "pane-a", system: str = ANIME_FAN) -> Conversation:
    turns = []
    for index, line in enumerate(lines):
        turns.append(ChatMessage("user" if index % 2 == 0 else "assistant", line))
    return Conversation(system, tuple(turns), "オタク", "ユーザー", cid)


async def collect(backend: LlamaCppBackend, conversation: Conversation) -> tuple[str, StreamEvent]:
    text = ""
    async for event in backend.stream(conversation):
        if isinstance(event, TextDelta):
            text += event.text
        else:
            return text, event
    raise AssertionError("stream ended without a final event")


async def test_streams_text_then_figures(tiny_gguf: Path) -> None:
    backend = LlamaCppBackend(tiny_profile(tiny_gguf))
    text, final = await collect(backend, conv("ねえ、アニメ好きなの？"))
    assert isinstance(final, StreamDone)
    assert text
    assert final.finish_reason == "length"
    assert final.completion_tokens == 12
    assert final.prompt_tokens and final.prompt_tokens > 40  # byte vocabulary: one token a byte
    assert final.ttft_s is not None and 0 < final.ttft_s <= final.total_s
    assert final.context_size == 512
    assert backend.header() == "llama.cpp · F32 · CPU"


async def test_same_seed_same_reply(tiny_gguf: Path) -> None:
    first = LlamaCppBackend(tiny_profile(tiny_gguf))
    text_a, _ = await collect(first, conv("こんにちは", cid="a"))
    text_b, _ = await collect(first, conv("こんにちは", cid="b"))
    assert text_a == text_b


async def test_one_loaded_model_serves_every_profile_on_the_file(tiny_gguf: Path) -> None:
    pane_a = LlamaCppBackend(tiny_profile(tiny_gguf, name="a"))
    pane_b = LlamaCppBackend(tiny_profile(tiny_gguf, name="b", prompt_format="llama2-sys"))
    await asyncio.gather(pane_a.load(), pane_b.load())
    assert pane_a.loaded is pane_b.loaded


async def test_kv_prefix_is_reused_across_turns_and_alternating_panes(tiny_gguf: Path) -> None:
    pane_a = LlamaCppBackend(tiny_profile(tiny_gguf, name="a"))
    pane_b = LlamaCppBackend(tiny_profile(tiny_gguf, name="b"))
    history: dict[str, list[str]] = {"a": [], "b": []}
    cached: dict[str, list[int]] = {"a": [], "b": []}
    prompts: dict[str, list[int]] = {"a": [], "b": []}
    for line in (
        "ねえ、アニメ好きなの？",
        "好きなアニメは何ですか?",
        "チェンソーマンを知っていますか？",
    ):
        for name, backend in (("a", pane_a), ("b", pane_b)):
            history[name].append(line)
            reply, final = await collect(backend, conv(*history[name], cid=name))
            assert isinstance(final, StreamDone)
            history[name].append(reply)
            cached[name].append(final.cached_prompt_tokens or 0)
            prompts[name].append(final.prompt_tokens or 0)
    for name in ("a", "b"):
        assert cached[name][0] == 0
        # Everything up to the previous reply is reused although the other pane ran in between.
        for turn in (1, 2):
            assert cached[name][turn] >= prompts[name][turn - 1] - 2


async def test_cancel_stops_within_a_token_and_leaves_the_backend_usable(tiny_gguf: Path) -> None:
    backend = LlamaCppBackend(tiny_profile(tiny_gguf, sampling=Sampling(max_tokens=400, seed=1)))
    stream = backend.stream(conv("長い話をして"))
    received = ""
    async for event in stream:
        assert isinstance(event, TextDelta)
        received += event.text
        if len(received) > 3:
            break
    await stream.aclose()
    loaded = backend.loaded
    assert loaded is not None
    # The engine drops the cancelled sequence at its next step and is idle again.
    for _ in range(100):
        if not loaded.engine.busy:
            break
        await asyncio.sleep(0.01)
    assert not loaded.engine.busy
    backend.profile = tiny_profile(tiny_gguf)
    text, final = await collect(backend, conv("もう一度"))
    assert isinstance(final, StreamDone) and text


async def test_missing_file_is_one_line_in_the_pane(tmp_path: Path) -> None:
    backend = LlamaCppBackend(tiny_profile(tmp_path / "nope.gguf"))
    assert backend.unusable_reason() is not None
    _, final = await collect(backend, conv("やあ"))
    assert isinstance(final, StreamError)
    assert final.kind == "model_file" and not final.retryable
    assert "model file not found" in final.reason and "nope.gguf" in final.reason
    assert "\n" not in final.reason


async def test_a_file_that_is_not_gguf_is_named(tmp_path: Path) -> None:
    fake = tmp_path / "notes.gguf"
    fake.write_text("これはモデルではありません", encoding="utf-8")
    _, final = await collect(LlamaCppBackend(tiny_profile(fake)), conv("やあ"))
    assert isinstance(final, StreamError)
    assert final.reason == "not a GGUF file: notes.gguf"


async def test_a_corrupt_gguf_is_reported_not_raised(tiny_gguf: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(tiny_gguf.read_bytes()[:50_000])
    _, final = await collect(LlamaCppBackend(tiny_profile(broken)), conv("やあ"))
    assert isinstance(final, StreamError)
    assert final.kind == "model_file"
    assert final.reason.startswith("cannot load broken.gguf: corrupt or unsupported GGUF")
    assert "\n" not in final.reason


async def test_context_overflow_is_reported_with_the_sizes(tiny_gguf: Path) -> None:
    backend = LlamaCppBackend(tiny_profile(tiny_gguf, n_ctx=128))
    _, final = await collect(backend, conv("アニメ" * 60))
    assert isinstance(final, StreamError)
    assert final.kind == "context_overflow"
    assert "n_ctx is 128" in final.reason


async def test_persona_is_folded_when_the_chat_format_drops_it(tiny_gguf: Path) -> None:
    backend = LlamaCppBackend(tiny_profile(tiny_gguf, prompt_format="gemma"))
    await backend.load()
    rendered = backend.render(conv("ねえ、アニメ好きなの？"))
    assert rendered.persona_folded
    assert ANIME_FAN in rendered.text
    assert backend.settings_snapshot()["persona_folded_into_first_turn"] is True


async def test_settings_snapshot_describes_the_file(tiny_gguf: Path) -> None:
    backend = LlamaCppBackend(tiny_profile(tiny_gguf))
    await backend.load()
    snapshot = backend.settings_snapshot()
    assert snapshot["model_file"] == "tiny.gguf"
    assert snapshot["model_size"] == tiny_gguf.stat().st_size
    assert len(snapshot["model_fingerprint"]) == 64
    assert snapshot["n_layers"] == 2
    assert snapshot["gpu_layers_offloaded"] == 0
    assert snapshot["sampling"]["repeat_penalty"] == 1.18
    assert snapshot["sampling"]["repeat_last_n"] == 256
    assert snapshot["llama_cpp_python"]


def test_native_log_lines_go_to_the_log_file_not_the_terminal(
    tiny_gguf: Path, tmp_path: Path
) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio
        from backends.base import ChatMessage, Conversation
        from backends.llama_cpp_backend import LlamaCppBackend
        from backends.profiles import ModelProfile, Sampling
        profile = ModelProfile(name="t", backend="llama_cpp", model={str(tiny_gguf)!r},
                               prompt_format="chatml", n_ctx=256, sampling=Sampling(max_tokens=4))
        async def main():
            backend = LlamaCppBackend(profile)
            async for event in backend.stream(Conversation("", (ChatMessage("user", "hi"),))):
                pass
        asyncio.run(main())
        print("finished")
        """
    )
    env = {**os.environ, "KURABE_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "finished\n"
    assert result.stderr == ""
    log = (tmp_path / "home" / "data" / "llama.log").read_text(encoding="utf-8")
    assert "llama_model_loader" in log or "load_tensors" in log


@pytest.mark.slow
async def test_embedded_gemma_answers_in_japanese_in_both_default_formats() -> None:
    defaults = [p for p in BUILTIN_PROFILES if p.is_local and p.default]
    assert len(defaults) >= 2
    backends = [
        LlamaCppBackend(replace(p, sampling=replace(p.sampling, max_tokens=24, seed=3)))
        for p in defaults
    ]
    for index, backend in enumerate(backends):
        conversation = conv("ねえ、アニメ好きなの？", cid=f"pane-{index}")
        rendered_persona = ANIME_FAN in (await _render(backend, conversation))
        assert rendered_persona
        text, final = await collect(backend, conversation)
        assert isinstance(final, StreamDone), final
        assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in text), text
    assert backends[0].loaded is backends[1].loaded
    assert backends[0].header() == "llama.cpp · Q4_K_M · CPU"


async def _render(backend: LlamaCppBackend, conversation: Conversation) -> str:
    await backend.load()
    return backend.render(conversation).text


async def test_idle_sequences_are_reused_least_recent_first(tiny_gguf: Path) -> None:
    backend = LlamaCppBackend(tiny_profile(tiny_gguf, sampling=Sampling(max_tokens=2, seed=1)))
    await backend.load()
    loaded = backend.loaded
    assert loaded is not None
    slots = loaded.engine.n_slots
    for index in range(slots + 1):
        await collect(backend, conv("やあ", cid=f"pane-{index}"))
    # pane-0's sequence went to the newest conversation: its prompt is evaluated again ...
    _, final = await collect(backend, conv("やあ", "ok", "もう一度", cid="pane-0"))
    assert isinstance(final, StreamDone) and final.cached_prompt_tokens == 0
    # ... while pane-2's is still in place.
    _, final = await collect(backend, conv("やあ", "ok", "もう一度", cid="pane-2"))
    assert isinstance(final, StreamDone) and (final.cached_prompt_tokens or 0) > 20


def test_offloaded_layers_and_quantization_names() -> None:
    from backends.gguf_meta import offloaded_layer_count, quantization_name

    assert offloaded_layer_count(18, -1, True) == 19  # every repeating layer and the output
    assert offloaded_layer_count(18, 5, True) == 5
    assert offloaded_layer_count(18, 99, True) == 19
    assert offloaded_layer_count(18, -1, False) == 0  # a CPU-only build offloads nothing
    assert quantization_name("15") == "Q4_K_M"
    assert quantization_name(18) == "Q6_K"
    assert quantization_name(None) == "?"
    assert quantization_name(99) == "type 99"


# -- models are held and freed -------------------------------------------------------------


@pytest.fixture
def other_gguf(tmp_path: Path) -> Path:
    """A second tiny model file (other weights), for switching a pane to another model."""
    from tests.tiny_gguf import make_tiny_gguf

    return make_tiny_gguf(tmp_path / "other.gguf", seed=1)


def held() -> list[tuple[str, int]]:
    """(file name, holders) of every model loaded in this process."""
    return sorted((info.path.name, info.holders) for info in loaded_models())


def engine_of(backend: Backend) -> LlamaEngine:
    assert isinstance(backend, LlamaCppBackend) and backend.loaded is not None
    return backend.loaded.engine


async def test_two_panes_on_one_file_hold_it_until_the_last_lets_go(tiny_gguf: Path) -> None:
    pane_a = LlamaCppBackend(tiny_profile(tiny_gguf, name="a"))
    pane_b = LlamaCppBackend(tiny_profile(tiny_gguf, name="b"))
    await asyncio.gather(pane_a.load(), pane_b.load(), pane_a.load())
    engine = engine_of(pane_a)
    assert held() == [("tiny.gguf", 2)]  # one model, held once by each pane
    assert pane_a.shared_by == pane_b.shared_by == 2
    await pane_a.aclose()
    assert pane_a.loaded is None and held() == [("tiny.gguf", 1)] and not engine.closed
    text, final = await collect(pane_b, conv("まだいる？", cid="b"))
    assert isinstance(final, StreamDone) and text
    assert pane_b.shared_by == 1
    await pane_b.aclose()
    assert held() == [] and engine.closed  # the llama.cpp context and model are freed
    await pane_b.aclose()  # closing twice is harmless


async def test_switching_panes_to_another_model_frees_the_first(
    tiny_gguf: Path, other_gguf: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "kurabe.sqlite3")
    persona = Persona(id="p", title="p", system=ANIME_FAN, char_name="オタク", user_name="ユーザー")

    def session_on(*profiles: ModelProfile) -> ComparisonSession:
        return ComparisonSession.create(store, persona, list(profiles), rater="hana")

    first = session_on(tiny_profile(tiny_gguf, name="a"), tiny_profile(tiny_gguf, name="b"))
    await first.load()
    await first.send("ねえ")
    assert held() == [("tiny.gguf", 2)]
    assert [p.header for p in first.panes] == ["llama.cpp · F32 · CPU · shared by 2"] * 2
    tiny_engine = engine_of(first.panes[0].backend)
    # The palette's "panes" command: a new session on the other model, the old one closed.
    second = session_on(tiny_profile(other_gguf, name="other"))
    await first.aclose()
    await second.load()
    assert held() == [("other.gguf", 1)] and tiny_engine.closed
    assert second.panes[0].header == "llama.cpp · F32 · CPU"
    other_engine = engine_of(second.panes[0].backend)
    third = session_on(tiny_profile(tiny_gguf, name="a"))
    await second.aclose()
    await third.load()
    assert held() == [("tiny.gguf", 1)] and other_engine.closed
    await third.aclose()
    assert held() == []
    store.close()
