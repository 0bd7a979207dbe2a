"""How a llama.cpp request picks its next token: the sampler chain built from a profile's sampling
(:class:`SamplingSettings`), and grammar-constrained sampling for structured output.

The chain matches llama.cpp's ``llama-cli`` and server, where the hand-written comparison's figures
came from: repeat penalty over the last N tokens (prompt included) → top-k → top-p → min-p →
temperature → a seeded draw (greedy at temperature 0).

A request with a grammar gets a grammar sampler of its own beside that chain, used as llama.cpp's
common sampler uses it (``common_sampler_sample``): the chain draws a token from the logits; if
the grammar refuses it, the logits are read again, the grammar masks them and the chain draws
again. The grammar sees only generated tokens (never the prompt's, which the penalties do see).

Used on the engine's thread only (:mod:`backends.llama_engine`).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SamplingSettings:
    """What the sampler chain is built from (the profile's sampling, resolved)."""

    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.18
    repeat_last_n: int = 256
    seed: int | None = None
    grammar: str | None = None
    """GBNF (root rule ``root``) that every reply must match; None: no grammar sampler."""


class TokenSampling:
    """Sampler chains and grammar sampling over one llama.cpp context."""

    def __init__(self, lib: Any, ctx: Any, n_vocab: int, n_ctx: int) -> None:
        self._lib = lib
        self.ctx = ctx
        self.n_vocab = n_vocab
        self.n_ctx = n_ctx
        self._candidates: Any = None
        """Every token's logit at one output, for grammar requests (made on first use)."""

    def chain(self, sampling: SamplingSettings, prompt: Sequence[int]) -> Any:
        """A new sampler chain for one request (the prompt's last tokens already penalised)."""
        lib = self._lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        last_n = self.n_ctx if sampling.repeat_last_n < 0 else sampling.repeat_last_n
        if sampling.repeat_penalty != 1.0 and last_n != 0:
            lib.llama_sampler_chain_add(
                chain,
                lib.llama_sampler_init_penalties(
                    self.n_vocab, last_n, sampling.repeat_penalty, 0.0, 0.0
                ),
            )
        if sampling.temperature <= 0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        else:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(sampling.top_k))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(sampling.top_p, 1))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_min_p(sampling.min_p, 1))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(sampling.temperature))
            seed = sampling.seed if sampling.seed is not None else 0xFFFFFFFF
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        if sampling.repeat_penalty != 1.0 and last_n != 0:
            # llama.cpp's own tools penalise repeats of the prompt's last tokens too.
            accept = lib.llama_sampler_accept
            for token in prompt[-last_n:]:
                accept(chain, token)
        return chain

    def _logits(self, index: int) -> Any:
        """Every token's candidate entry at output ``index``, unsorted, nothing selected."""
        import numpy as np
        from llama_cpp._internals import LlamaTokenDataArray

        if self._candidates is None:
            self._candidates = LlamaTokenDataArray(n_vocab=self.n_vocab)
        candidates = self._candidates
        logits = self._lib.llama_get_logits_ith(self.ctx, index)
        candidates.copy_logits(np.ctypeslib.as_array(logits, shape=(self.n_vocab,)))
        candidates.candidates.selected = -1
        return candidates

    def _allows(self, grammar: Any, token: int) -> bool:
        lib = self._lib
        single = lib.llama_token_data(token, 1.0, 0.0)
        array = lib.llama_token_data_array(ctypes.pointer(single), 1, -1, False)
        lib.llama_sampler_apply(grammar, ctypes.byref(array))
        return bool(single.logit != float("-inf"))

    def sample_with_grammar(self, chain: Any, grammar: Any, index: int) -> int:
        """llama.cpp's grammar-based rejection sampling; -1 when the grammar allows nothing."""
        lib = self._lib
        candidates = self._logits(index)
        lib.llama_sampler_apply(chain, ctypes.byref(candidates.candidates))
        token = int(candidates.candidates_data.id[candidates.candidates.selected])
        if not self._allows(grammar, token):
            candidates = self._logits(index)
            lib.llama_sampler_apply(grammar, ctypes.byref(candidates.candidates))
            lib.llama_sampler_apply(chain, ctypes.byref(candidates.candidates))
            selected = candidates.candidates.selected
            if candidates.candidates_data.logit[selected] == float("-inf"):
                return -1
            token = int(candidates.candidates_data.id[selected])
        lib.llama_sampler_accept(chain, token)
        lib.llama_sampler_accept(grammar, token)
        return token
