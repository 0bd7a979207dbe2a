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
from collections import deque
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


WINDOWED_PENALTY_MIN_VOCAB = 16_384
"""From this vocabulary size on, :class:`RepeatPenalty` replaces llama.cpp's penalties sampler:
looking up every candidate costs more than the numpy calls that touch only the window's tokens
(Gemma 3, 262,144 tokens: about 0.6 ms a token saved; a tiny test model of a few hundred tokens
would lose about 30 µs a token)."""


class TokenSampling:
    """Sampler chains and grammar sampling over one llama.cpp context."""

    def __init__(self, lib: Any, ctx: Any, n_vocab: int, n_ctx: int) -> None:
        self._lib = lib
        self.ctx = ctx
        self.n_vocab = n_vocab
        self.n_ctx = n_ctx
        self._candidates: Candidates | None = None
        """Every token's logit at one output (made on first use)."""

    def chain(self, sampling: SamplingSettings, prompt: Sequence[int]) -> RequestChain:
        """A new sampler chain for one request (the prompt's last tokens already penalised).

        With a large vocabulary the repeat penalty is kurabe's :class:`RepeatPenalty` and the
        candidates live in one reused buffer; with a small one llama.cpp's penalties sampler
        heads the chain and ``llama_sampler_sample`` does the rest, which is cheaper there.
        """
        lib = self._lib
        windowed = self.n_vocab >= WINDOWED_PENALTY_MIN_VOCAB
        last_n = self.n_ctx if sampling.repeat_last_n < 0 else sampling.repeat_last_n
        penalised = sampling.repeat_penalty != 1.0 and last_n > 0
        native = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if penalised and not windowed:
            lib.llama_sampler_chain_add(
                native,
                lib.llama_sampler_init_penalties(
                    self.n_vocab, last_n, sampling.repeat_penalty, 0.0, 0.0
                ),
            )
        if sampling.temperature <= 0:
            lib.llama_sampler_chain_add(native, lib.llama_sampler_init_greedy())
        else:
            lib.llama_sampler_chain_add(native, lib.llama_sampler_init_top_k(sampling.top_k))
            lib.llama_sampler_chain_add(native, lib.llama_sampler_init_top_p(sampling.top_p, 1))
            lib.llama_sampler_chain_add(native, lib.llama_sampler_init_min_p(sampling.min_p, 1))
            lib.llama_sampler_chain_add(native, lib.llama_sampler_init_temp(sampling.temperature))
            seed = sampling.seed if sampling.seed is not None else 0xFFFFFFFF
            lib.llama_sampler_chain_add(native, lib.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        chain = RequestChain(
            lib,
            native,
            RepeatPenalty(sampling.repeat_penalty, last_n) if penalised and windowed else None,
            buffered=windowed,
        )
        if penalised:
            # llama.cpp's own tools penalise repeats of the prompt's last tokens too.
            for token in prompt[-last_n:]:
                chain.accept(token)
        return chain

    def _logits(self, index: int) -> Candidates:
        """Every token's candidate entry at output ``index``, unsorted, nothing selected.

        One buffer per context, filled again for each token: what ``llama_sampler_sample`` does
        with a fresh vector of the whole vocabulary every call (262,144 entries, 3 MiB, for Gemma
        3), which costs more than the sampling itself on a long reply.
        """
        if self._candidates is None:
            self._candidates = Candidates(self._lib, self.n_vocab)
        return self._candidates.fill(self._lib.llama_get_logits_ith(self.ctx, index))

    def sample(self, chain: RequestChain, index: int) -> int:
        """The chain's token at output ``index``, accepted into the chain: the steps of
        ``llama_sampler_sample`` (candidates from the logits, apply, take the selected one,
        accept) on the reused buffer, the repeat penalty first."""
        if not chain.buffered:
            return int(self._lib.llama_sampler_sample(chain.native, self.ctx, index))
        candidates = self._logits(index)
        chain.apply(candidates)
        token = candidates.selected_token()
        chain.accept(token)
        return token

    def _allows(self, grammar: Any, token: int) -> bool:
        lib = self._lib
        single = lib.llama_token_data(token, 1.0, 0.0)
        array = lib.llama_token_data_array(ctypes.pointer(single), 1, -1, False)
        lib.llama_sampler_apply(grammar, ctypes.byref(array))
        return bool(single.logit != float("-inf"))

    def sample_with_grammar(self, chain: RequestChain, grammar: Any, index: int) -> int:
        """llama.cpp's grammar-based rejection sampling; -1 when the grammar allows nothing.

        On the second pass the grammar masks first and the whole chain follows, as in llama.cpp;
        the mask and the repeat penalty commute (a refused token's -inf stays -inf)."""
        lib = self._lib
        candidates = self._logits(index)
        chain.apply(candidates)
        token = candidates.selected_token()
        if not self._allows(grammar, token):
            candidates = self._logits(index)
            lib.llama_sampler_apply(grammar, candidates.pointer)
            chain.apply(candidates)
            if candidates.selected_logit() == float("-inf"):
                return -1
            token = candidates.selected_token()
        chain.accept(token)
        lib.llama_sampler_accept(grammar, token)
        return token


class RepeatPenalty:
    """llama.cpp's penalties sampler as kurabe's profiles use it (repeat penalty over the last
    N tokens, frequency and presence 0), applied where it can change anything.

    llama.cpp looks every candidate of the vocabulary up in its window's counts (262,144 hash
    lookups a token for Gemma 3, most of the cost of sampling); the window holds at most N
    distinct tokens, so only their logits are touched here, with the same float32 arithmetic:
    a logit at or below 0 multiplied by the penalty, one above divided by it.
    """

    def __init__(self, penalty: float, last_n: int) -> None:
        import numpy as np

        self._np = np
        self.penalty = np.float32(penalty)
        self.last_n = last_n
        self._window: deque[int] = deque()
        self._counts: dict[int, int] = {}

    def accept(self, token: int) -> None:
        """The token enters the window; the oldest leaves it once the window holds N."""
        counts = self._counts
        counts[token] = counts.get(token, 0) + 1
        window = self._window
        if len(window) >= self.last_n:
            old = window.popleft()
            left = counts[old] - 1
            if left:
                counts[old] = left
            else:
                del counts[old]
        window.append(token)

    def apply(self, logits: Any) -> None:
        """Penalise the window's tokens in ``logits``, a float32 array indexed by token id."""
        if not self._counts:
            return
        np = self._np
        ids = np.fromiter(self._counts, dtype=np.intc, count=len(self._counts))
        values = logits[ids]
        logits[ids] = np.where(values <= 0, values * self.penalty, values / self.penalty)


class RequestChain:
    """One request's sampling: llama.cpp's chain (top-k → top-p → min-p → temperature → a seeded
    draw, or greedy) after the repeat penalty, which heads it as in llama.cpp's tools: applied
    first by :class:`RepeatPenalty` (a large vocabulary), or llama.cpp's penalties sampler as the
    chain's first link (a small one)."""

    def __init__(
        self, lib: Any, native: Any, penalty: RepeatPenalty | None, *, buffered: bool
    ) -> None:
        self._lib = lib
        self.native = native
        self.penalty = penalty
        self.buffered = buffered
        """True: sampled on :class:`TokenSampling`'s reused buffer; False: by
        ``llama_sampler_sample``, the penalties (if any) inside :attr:`native`."""

    def apply(self, candidates: Candidates) -> None:
        """Penalise, then run the chain over ``candidates`` (filled in token order)."""
        if self.penalty is not None:
            self.penalty.apply(candidates.logits)
        self._lib.llama_sampler_apply(self.native, candidates.pointer)

    def accept(self, token: int) -> None:
        if self.penalty is not None:
            self.penalty.accept(token)
        self._lib.llama_sampler_accept(self.native, token)

    def close(self) -> None:
        """Free the native chain (once)."""
        native, self.native = self.native, None
        if native is not None:
            self._lib.llama_sampler_free(native)


class Candidates:
    """A ``llama_token_data_array`` over a numpy buffer of the whole vocabulary, kept for reuse.

    :meth:`fill` restores every entry (id in order, probability 0) from a template with one
    contiguous copy and then writes the logits: a sampler sorts and truncates the array in place,
    so nothing of the last token's pass may remain.
    """

    def __init__(self, lib: Any, n_vocab: int) -> None:
        import numpy as np

        self._np = np
        self.n_vocab = n_vocab
        dtype = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
        if dtype.itemsize != ctypes.sizeof(lib.llama_token_data):
            raise RuntimeError("llama_token_data has an unexpected layout")
        self._template = np.zeros(n_vocab, dtype=dtype)
        self._template["id"] = np.arange(n_vocab, dtype=np.intc)
        self.data = np.zeros(n_vocab, dtype=dtype)
        self.logits = self.data["logit"]
        """The logits by token id, a view into :attr:`data` (valid right after :meth:`fill`)."""
        self._raw = self.data.view(np.uint8)
        self._template_raw = self._template.view(np.uint8)
        self.array = lib.llama_token_data_array(
            data=self.data.ctypes.data_as(lib.llama_token_data_p),
            size=n_vocab,
            selected=-1,
            sorted=False,
        )
        self.pointer = ctypes.byref(self.array)

    def fill(self, logits: Any) -> Candidates:
        np = self._np
        np.copyto(self._raw, self._template_raw)
        self.logits[:] = np.ctypeslib.as_array(logits, shape=(self.n_vocab,))
        self.array.size = self.n_vocab
        self.array.selected = -1
        self.array.sorted = False
        return self

    def selected_token(self) -> int:
        return int(self.data["id"][self.array.selected])

    def selected_logit(self) -> float:
        return float(self.logits[self.array.selected])
