"""kurabe's sampling step against llama.cpp's own: the repeat penalty applied to the window's tokens
only (:class:`backends.llama_sampling.RepeatPenalty`) and the reused candidate buffer must pick
exactly what llama.cpp's chain with its penalties sampler picks, token after token, with the same
probabilities, for the same seed."""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import pytest

from backends.llama_sampling import (
    WINDOWED_PENALTY_MIN_VOCAB,
    Candidates,
    RepeatPenalty,
    SamplingSettings,
    TokenSampling,
)

llama_cpp = pytest.importorskip("llama_cpp")

N_VOCAB = 32_000  # above WINDOWED_PENALTY_MIN_VOCAB: kurabe's own penalty is what is compared


def reference_chain(settings: SamplingSettings, prompt: list[int]) -> Any:
    """The chain as llama.cpp's tools build it: penalties first, then the rest, prompt accepted."""
    lib = llama_cpp
    chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
    lib.llama_sampler_chain_add(
        chain,
        lib.llama_sampler_init_penalties(
            N_VOCAB, settings.repeat_last_n, settings.repeat_penalty, 0.0, 0.0
        ),
    )
    if settings.temperature <= 0:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
    else:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(settings.top_k))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(settings.top_p, 1))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_min_p(settings.min_p, 1))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(settings.temperature))
        assert settings.seed is not None
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(settings.seed))
    for token in prompt[-settings.repeat_last_n :]:
        lib.llama_sampler_accept(chain, token)
    return chain


def logits_favouring(rng: np.random.Generator, recent: list[int]) -> np.ndarray:
    """Random logits, positive and negative, with the recent tokens pushed to the top, so that
    the penalty decides what is drawn."""
    logits = rng.normal(0.0, 2.0, N_VOCAB).astype(np.float32)
    for token in recent[-12:]:
        logits[token] = np.float32(rng.uniform(-1.0, 9.0))
    return logits


@pytest.mark.parametrize("temperature", [0.7, 0.0])
def test_each_token_and_its_probabilities_match_llama_cpps_chain(temperature: float) -> None:
    settings = SamplingSettings(
        temperature=temperature,
        top_k=40,
        top_p=0.95,
        min_p=0.05,
        repeat_penalty=1.18,
        repeat_last_n=64,
        seed=1234,
    )
    rng = np.random.default_rng(7)
    prompt = [int(t) for t in rng.integers(0, N_VOCAB, 100)]
    sampling = TokenSampling(llama_cpp, None, N_VOCAB, 4096)
    ours = sampling.chain(settings, prompt)
    assert N_VOCAB >= WINDOWED_PENALTY_MIN_VOCAB and ours.buffered and ours.penalty is not None
    theirs = reference_chain(settings, prompt)
    mine, reference = Candidates(llama_cpp, N_VOCAB), Candidates(llama_cpp, N_VOCAB)
    drawn: list[int] = list(prompt)
    penalised_draws = 0
    try:
        for _ in range(400):
            logits = logits_favouring(rng, drawn)
            pointer = logits.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            mine.fill(pointer)
            ours.apply(mine)
            reference.fill(pointer)
            llama_cpp.llama_sampler_apply(theirs, reference.pointer)
            size = reference.array.size
            assert mine.array.size == size
            assert mine.array.selected == reference.array.selected
            assert mine.data[:size].tobytes() == reference.data[:size].tobytes()
            token = reference.selected_token()
            assert mine.selected_token() == token
            window = set(drawn[-settings.repeat_last_n :])
            if window.intersection(int(t) for t in reference.data["id"][:size]):
                penalised_draws += 1  # a penalised token was still a candidate after the chain
            ours.accept(token)
            llama_cpp.llama_sampler_accept(theirs, token)
            drawn.append(token)
    finally:
        ours.close()
        llama_cpp.llama_sampler_free(theirs)
    assert penalised_draws > 100  # the penalty was in play, not just present


def test_the_window_forgets_its_oldest_token() -> None:
    penalty = RepeatPenalty(2.0, 3)
    for token in (5, 6, 5, 7):  # 5 entered twice; the first 5 leaves when 7 comes
        penalty.accept(token)
    logits = np.array([1.0] * 10, dtype=np.float32)
    logits[6] = -1.0
    penalty.apply(logits)
    assert logits[5] == 0.5 and logits[6] == -2.0 and logits[7] == 0.5
    assert logits[4] == 1.0 and logits[8] == 1.0
    penalty.accept(8)  # now 5, 7, 8: the 6 is gone
    logits = np.ones(10, dtype=np.float32)
    penalty.apply(logits)
    assert logits[6] == 1.0 and logits[5] == 0.5 and logits[8] == 0.5
