"""Benchmark the llama.cpp backend against raw llama-cpp-python, side by side in one run.

1. Throughput: kurabe's stream (thread → event loop → async iterator) against raw
   ``Llama.create_completion(stream=True)`` on the same loaded model, prompt, seed and settings,
   interleaved run by run. Prints tokens/s of both and the ratio (target ≥ 0.97).
2. Prefix reuse: time to first token at turns 1, 2, 5 and 10 of a scripted conversation with two
   panes on one model file taking turns, and turn 10 with reuse switched off for comparison
   (target: turn 10 within 1.5× of turn 2).

Usage: python bench/bench_llama.py [--model PATH] [--runs N] [--tokens N]
(default model: the embedded Gemma 3 270M).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends import llama_cpp_backend
from backends.base import ChatMessage, Conversation, StreamDone, TextDelta
from backends.llama_cpp_backend import LlamaCppBackend
from backends.profiles import BUILTIN_PROFILES, ModelProfile, Sampling

PERSONA = (
    "あなたは大のアニメファンで、友達と会話しています。 "
    "返信は短くカジュアルなものにする必要があります。"
)
SCRIPT = [
    "ねえ、アニメ好きなの？",
    "好きなアニメは何ですか?",
    "私もです！ テーマソングを誰が歌っているか知っていますか？ とてもキャッチーです。",
    "チェンソーマンを知っていますか？",
    "実は今でもアニメになっています！",
    "宮崎さんの作品全部好き！",
    "ナウシカで何が起こったか忘れてしまったのですが、思い出してもらえますか？",
    "トトロはどうでしょうか？ それを見たことがありますか？",
    "ネコバスを覚えていますか？ ちょっと不気味だけど、乗ったらカッコいいだろうな。",
    "アキラはどうですか？ それを見たことがありますか？",
]


def profile_for(model: str | None, prompt_format: str, tokens: int) -> ModelProfile:
    base = BUILTIN_PROFILES[0]
    sampling = Sampling(max_tokens=tokens, seed=1234, temperature=0.7)
    if model:
        return replace(
            base, name="bench", model=model, prompt_format=prompt_format, sampling=sampling
        )
    return replace(base, prompt_format=prompt_format, sampling=sampling)


async def kurabe_run(backend: LlamaCppBackend, conversation: Conversation) -> tuple[float, int]:
    started = time.perf_counter()
    first: float | None = None
    final: StreamDone | None = None
    async for event in backend.stream(conversation):
        if isinstance(event, TextDelta) and first is None:
            first = time.perf_counter()
        elif isinstance(event, StreamDone):
            final = event
    end = time.perf_counter()
    assert final is not None and first is not None and final.completion_tokens
    del started
    return final.completion_tokens / (end - first), final.completion_tokens


def raw_run(backend: LlamaCppBackend, conversation: Conversation) -> tuple[float, int]:
    loaded = backend.loaded
    assert loaded is not None
    rendered = backend.render(conversation)
    llama = loaded.llama
    sampling = backend.profile.sampling
    with loaded.lock:
        loaded.switch_to(f"raw-{time.perf_counter()}")  # start from an empty KV cache, like ours
        tokens = llama.tokenize(rendered.text.encode(), add_bos=rendered.add_bos, special=True)
        llama.last_n_tokens_size = sampling.repeat_last_n
        first: float | None = None
        for chunk in llama.create_completion(
            tokens,
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            repeat_penalty=sampling.repeat_penalty,
            seed=sampling.seed,
            stop=list(rendered.stop),
            stream=True,
        ):
            if chunk["choices"][0]["text"] and first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        generated = int(llama.n_tokens) - len(tokens) + 1
        loaded.owner = None
    assert first is not None
    return generated / (end - first), generated


async def throughput(model: str | None, runs: int, tokens: int) -> float:
    backend = LlamaCppBackend(profile_for(model, "gguf", tokens))
    await backend.load()
    conversation = Conversation(
        PERSONA, (ChatMessage("user", "好きなアニメを三つ、理由と一緒に教えて。"),)
    )
    raw_rates: list[float] = []
    ours_rates: list[float] = []
    raw_run(backend, conversation)  # warm-up
    for index in range(runs):
        rate, raw_tokens = raw_run(backend, conversation)
        raw_rates.append(rate)
        own = replace(conversation, conversation_id=f"bench-{index}")
        rate, our_tokens = await kurabe_run(backend, own)
        ours_rates.append(rate)
        print(
            f"  run {index + 1}: raw {raw_rates[-1]:6.1f} tok/s ({raw_tokens} tokens)   "
            f"kurabe {ours_rates[-1]:6.1f} tok/s ({our_tokens} tokens)"
        )
    raw_median = statistics.median(raw_rates)
    ours_median = statistics.median(ours_rates)
    ratio = ours_median / raw_median
    print(f"throughput: raw {raw_median:.1f} tok/s, kurabe {ours_median:.1f} tok/s")
    print(f"ratio kurabe/raw = {ratio:.3f} (target >= 0.97)")
    return ratio


async def prefix_reuse(
    model: str | None, tokens: int, *, separate_contexts: bool = False, repeats: int = 3
) -> float:
    """Two panes taking turns through the script, ``repeats`` times; medians per turn and pane.

    Shared: one Llama, each pane's KV sequence saved and restored when the other pane ran.
    Separate: one Llama (model + context) per pane, nothing to swap, more memory.
    """
    panes = [
        LlamaCppBackend(profile_for(model, "gguf", tokens)),
        LlamaCppBackend(profile_for(model, "llama2-sys", tokens)),
    ]
    for pane in panes:
        await pane.load()
        if separate_contexts:
            llama_cpp_backend._models.clear()  # the next pane loads its own instance
    assert (panes[0].loaded is panes[1].loaded) != separate_contexts
    ttft: dict[tuple[int, int], list[float]] = {}
    prompt_tokens: dict[tuple[int, int], int] = {}
    evaluated: dict[tuple[int, int], int] = {}
    history_a: list[ChatMessage] = []
    for repeat in range(repeats):
        histories: list[list[ChatMessage]] = [[], []]
        for turn, line in enumerate(SCRIPT, start=1):
            for index, pane in enumerate(panes):
                histories[index].append(ChatMessage("user", line))
                conversation = Conversation(
                    PERSONA,
                    tuple(histories[index]),
                    "オタク",
                    "ユーザー",
                    f"pane-{index}-run-{repeat}",
                )
                reply = ""
                final: StreamDone | None = None
                async for event in pane.stream(conversation):
                    if isinstance(event, TextDelta):
                        reply += event.text
                    elif isinstance(event, StreamDone):
                        final = event
                assert final is not None and final.ttft_s is not None
                histories[index].append(ChatMessage("assistant", reply))
                ttft.setdefault((turn, index), []).append(final.ttft_s)
                prompt_tokens[turn, index] = final.prompt_tokens or 0
                evaluated[turn, index] = (final.prompt_tokens or 0) - (
                    final.cached_prompt_tokens or 0
                )
        history_a = histories[0]
    loaded = panes[0].loaded
    assert loaded is not None
    loaded.saved.clear()
    loaded.owner = None
    cold = Conversation(PERSONA, tuple(history_a[:-1]), "オタク", "ユーザー", "cold")
    cold_final: StreamDone | None = None
    async for event in panes[0].stream(cold):
        if isinstance(event, StreamDone):
            cold_final = event
    assert cold_final is not None and cold_final.ttft_s is not None
    median = {key: statistics.median(values) for key, values in ttft.items()}
    strategy = "one context per pane" if separate_contexts else "one shared context, KV swapped"
    print(
        f"time to first token (median of {repeats} runs), two panes on one model file, "
        f"{strategy} (gguf | llama2-sys):"
    )
    for turn in (1, 2, 5, 10):
        values = " | ".join(f"{median[turn, i] * 1000:6.0f} ms" for i in range(2))
        sizes = " | ".join(f"{prompt_tokens[turn, i]} ({evaluated[turn, i]} new)" for i in range(2))
        print(f"  turn {turn:2d}: {values}   (prompt tokens {sizes})")
    print(f"  turn 10 without reuse (pane A, cold cache): {cold_final.ttft_s * 1000:.0f} ms")
    ratio = max(median[10, i] / median[2, i] for i in range(2))
    print(f"ratio turn10/turn2 = {ratio:.2f} (target <= 1.5)")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a GGUF file (default: the embedded Gemma 3 270M)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    print("== llama.cpp stream vs raw llama-cpp-python ==")
    asyncio.run(throughput(args.model, args.runs, args.tokens))
    print("== prefix reuse ==")
    shared = asyncio.run(prefix_reuse(args.model, 48))
    llama_cpp_backend.unload_all_models()
    separate = asyncio.run(prefix_reuse(args.model, 48, separate_contexts=True))
    print(f"turn10/turn2: shared context {shared:.2f}, one context per pane {separate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
