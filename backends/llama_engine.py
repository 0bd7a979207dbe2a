"""kurabe's own llama.cpp decode loop: one context per model file, one KV sequence per pane.

llama-cpp-python's ``create_completion(stream=True)`` detokenizes the whole reply again, searches
all of it for stop strings and rebuilds its bytes on every token, so its cost per token grows with
the reply; and a ``Llama`` holds one sequence, so panes on one file took turns and copied their KV
state in and out. This module drives llama.cpp's low-level API instead, the way llama.cpp's own
server drives its slots:

* **One context per loaded file** with ``n_seq_max`` sequences in one unified KV pool. Each pane
  (conversation id) owns a sequence whose cells stay in place between turns: a new turn compares
  its prompt with the tokens already in that sequence and evaluates only the rest, and
  :attr:`GenerationResult.cached_prompt_tokens` is that reused count, no estimate.
* **One decode step for every active pane**: each step puts the next token of every generating
  sequence, and prompt chunks of newly arrived ones, into one ``llama_batch``. Panes on one file
  therefore stream together, on the CPU and on a GPU.
* **Cost per token is flat**: each token's piece is decoded to UTF-8 incrementally, stop strings
  are matched on a bounded tail, text crosses to the event loop in coalesced pieces.
* **Flash Attention stays off** (see where :class:`LlamaEngine` makes its context).
* **Cancel is prompt**: cancelled sequences leave the batch at the next step; a prompt chunk in
  flight is aborted through ``llama_set_abort_callback`` when every sequence in it is cancelled.
* **An idle engine holds no thread**: the decode thread ends after :data:`IDLE_THREAD_S` without
  work and the next request starts another. llama.cpp's CPU build computes with OpenMP, and
  libgomp shortens its spin-wait at every barrier (about 100 spins instead of 300,000) once the
  process's OpenMP threads outnumber the CPUs; a thread's team lives as long as the thread. An
  idle second model kept its team alive and slowed the busy one's decoding by 15-20 %.
* **Memory is bounded in bytes**: the KV pool is sized from a per-file budget; idle panes'
  prefixes are evicted (least recently used first) when an active pane needs room, and a pane
  that cannot fit gets a one-line reason.

Sampling (llama.cpp's own chain, and grammar-constrained sampling for structured output) is
:mod:`backends.llama_sampling`.

Everything that touches the context runs on the engine's own thread. Backends never import the UI.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.llama_sampling import RequestChain, SamplingSettings, TokenSampling
from backends.text_pipe import TextPipe

log = logging.getLogger(__name__)

DEFAULT_SLOTS = 8
"""Sequences per context: six panes on one file and a little more for resumed sessions."""
PARTITION_MIN_SLOTS = 6
"""A budget that gives this many panes (the most a session has) a whole ``n_ctx`` each gets a
partitioned cache of exactly that many sequences."""
DEFAULT_BATCH = 512
IDLE_THREAD_S = 1.0
"""How long the decode thread waits for work before it ends (and its OpenMP team with it)."""
DEFAULT_KV_BUDGET_MIB = 1024
"""Without a ``kv_budget_mb``: 1 GiB, or one whole context where that is more."""


class EngineError(Exception):
    """A one-line reason a request could not run (KV budget, context creation …)."""

    def __init__(self, reason: str, kind: str = "other") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """The final figures of one request."""

    finish_reason: str
    """``stop`` (end of generation or a stop string), ``length``, ``cancelled`` or ``error``."""
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    """Prompt tokens found in the pane's KV sequence and not evaluated again."""
    ttft_s: float | None
    total_s: float
    decoded_alongside: int
    """The most other panes decoded in the same batches as this reply's tokens."""
    error: str | None = None
    error_kind: str = "other"
    emitted_chars: int = 0


@dataclass(eq=False)
class Request:
    """One reply to generate for one pane."""

    conversation_id: str
    tokens: list[int]
    max_tokens: int
    sampling: SamplingSettings
    stop: tuple[str, ...]
    pipe: TextPipe[GenerationResult]
    strip_leading_space: bool = False
    ignore_eos: bool = False
    cancelled: bool = False
    # engine-side state
    seq: int = -1
    n_done: int = 0
    """Tokens of ``tokens`` already in the sequence's KV cells."""
    cached: int = 0
    chain: RequestChain | None = None
    grammar: Any = None
    """The request's grammar sampler (when its sampling has a grammar)."""
    next_token: int = -1
    generating: bool = False
    produced: int = 0
    emitted_chars: int = 0
    held: str = ""
    decoder: Any = None
    started: float = 0.0
    first_token: float | None = None
    alongside: int = 0

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class _Slot:
    seq: int
    conversation_id: str | None = None
    tokens: list[int] = field(default_factory=list)
    busy: bool = False


def kv_bytes_per_token(metadata: dict[str, str], n_layers: int, n_head_kv: int) -> int:
    """f16 K and V for every layer: ``n_layer × n_head_kv × (key_length + value_length) × 2``."""
    arch = metadata.get("general.architecture", "")
    n_embd = _int(metadata.get(f"{arch}.embedding_length"), 4096)
    n_head = _int(metadata.get(f"{arch}.attention.head_count"), 32)
    head_dim = n_embd // max(n_head, 1)
    key = _int(metadata.get(f"{arch}.attention.key_length"), head_dim)
    value = _int(metadata.get(f"{arch}.attention.value_length"), head_dim)
    return max(n_layers * max(n_head_kv, 1) * (key + value) * 2, 1)


def _int(value: str | None, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


class LlamaEngine:
    """A loaded GGUF with one context and a decode thread serving every pane on the file."""

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int,
        n_gpu_layers: int,
        n_threads: int,
        n_slots: int = DEFAULT_SLOTS,
        kv_budget_mib: int | None = None,
        n_batch: int = DEFAULT_BATCH,
        flash_attn: bool = False,
    ) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaModel

        self.path = path
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self._lib = llama_cpp
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = n_gpu_layers
        # verbose=True: llama-cpp-python's quiet mode redirects the process's stdout/stderr file
        # descriptors while loading, which would blank the TUI; log lines go to llama.log.
        model: Any = LlamaModel(path_model=str(path), params=model_params, verbose=True)
        self.model = model
        self.metadata: dict[str, str] = {str(k): str(v) for k, v in self.model.metadata().items()}
        self.vocab = self.model.vocab
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.n_layers = int(llama_cpp.llama_model_n_layer(self.model.model))
        n_head_kv = int(llama_cpp.llama_model_n_head_kv(self.model.model))
        self.kv_bytes_per_token = kv_bytes_per_token(self.metadata, self.n_layers, n_head_kv)
        per_context = n_ctx * self.kv_bytes_per_token
        if kv_budget_mib is None:
            kv_budget_mib = max(DEFAULT_KV_BUDGET_MIB, -(-per_context >> 20))
        budget_tokens = (kv_budget_mib << 20) // self.kv_bytes_per_token
        if budget_tokens < n_ctx:
            self.model.close()
            raise EngineError(
                f"KV budget {kv_budget_mib} MiB holds {budget_tokens} tokens of {path.name}, "
                f"less than n_ctx {n_ctx}: raise kv_budget_mb or lower n_ctx",
                kind="out_of_memory",
            )
        # Partitioned: each pane attends over its own n_ctx cells only, so a pane's cost per
        # token does not grow with its neighbours' conversations. Where the budget cannot give
        # six panes a whole context each, one pool shared by every pane (llama.cpp's unified KV)
        # lets short conversations share what long ones would have reserved.
        self.partitioned = budget_tokens // n_ctx >= PARTITION_MIN_SLOTS
        if self.partitioned:  # one sequence per pane: llama.cpp allocates every cell up front
            n_slots = min(n_slots, PARTITION_MIN_SLOTS)
            cells = n_slots * n_ctx
        else:
            cells = budget_tokens
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = cells
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_slots
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.swa_full = True  # keeps sliding-window models (Gemma 3) reusable by prefix
        params.kv_unified = not self.partitioned
        params.no_perf = True
        # Off unless asked. llama-server's default ``-fa auto`` turns it on on the CPU, where it
        # decodes faster at depth (llama-bench, embedded Gemma, 128 tokens after 1,000: 67.9
        # against 60.8 tok/s), but then a pane's greedy text changes when another pane is decoded
        # in the same batch, and a comparison must not depend on what ran beside it.
        params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if flash_attn
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        ctx = llama_cpp.llama_init_from_model(self.model.model, params)
        if ctx is None:
            self.model.close()
            raise EngineError(f"cannot create a context of {cells} tokens for {path.name}")
        self.ctx = ctx
        self.memory = llama_cpp.llama_get_memory(ctx)
        self.kv_cells = int(llama_cpp.llama_n_ctx(ctx))
        self.kv_budget_mib = kv_budget_mib
        self.n_slots = n_slots
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._slots = [_Slot(seq) for seq in range(n_slots)]
        self._lru: OrderedDict[int, None] = OrderedDict((s, None) for s in range(n_slots))
        self._pieces: dict[int, bytes] = {}
        self._sampling = TokenSampling(llama_cpp, ctx, self.n_vocab, n_ctx)
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._cond = threading.Condition()
        self._incoming: list[Request] = []
        self._active: list[Request] = []
        self._batch_requests: list[Request] = []
        self._closing = False
        self.tokens_evaluated = 0
        """Every token decoded on this context (prompt and reply): the cancel tests read it."""
        self._abort_cb = llama_cpp.ggml_abort_callback(self._should_abort)
        self._no_abort = llama_cpp.ggml_abort_callback()  # a NULL function pointer
        self._thread: threading.Thread | None = None
        """The decode thread while there is work (or was, less than IDLE_THREAD_S ago)."""

    # -- the outside ---------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while any request is queued or running."""
        with self._cond:
            return bool(self._incoming or self._active)

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]:
        return list(self.model.tokenize(text.encode("utf-8"), add_bos, True))

    def token_text(self, token: int) -> str:
        return str(self.model.token_get_text(token)) if token >= 0 else ""

    def submit(self, request: Request) -> None:
        with self._cond:
            if self._closing:
                raise EngineError("the model is closed")
            self._incoming.append(request)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"llama:{self.path.name}", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def wake(self) -> None:
        """Make the loop look at its requests now (after a cancel)."""
        with self._cond:
            self._cond.notify()

    @property
    def decoding_thread(self) -> threading.Thread | None:
        """The decode thread, or None while the engine is idle and holds none."""
        with self._cond:
            return self._thread

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has freed the context and the model."""
        return self.ctx is None and self.model.model is None

    def close(self) -> None:
        """Stop the decode thread (pending requests end cancelled), then free the context, its
        batch and the model. Safe to call twice."""
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify()
        if thread is not None:
            thread.join(timeout=30)
        lib = self._lib
        if self.ctx is not None:
            lib.llama_batch_free(self._batch)
            lib.llama_free(self.ctx)
            self.ctx = None
        self.model.close()

    # -- the loop ------------------------------------------------------------------------

    def _should_abort(self, _data: ctypes.c_void_p) -> bool:
        requests = self._batch_requests
        return self._closing or (bool(requests) and all(r.cancelled for r in requests))

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._incoming and not self._active and not self._closing:
                    if not self._cond.wait(IDLE_THREAD_S) and not (self._incoming or self._closing):
                        self._thread = None
                        return
                if self._closing:
                    pending = self._incoming + self._active
                    self._incoming, self._active = [], []
                    for request in pending:
                        self._finish(request, "cancelled")
                    return
                incoming, self._incoming = self._incoming, []
            for request in incoming:
                self._admit(request)
            try:
                self._step()
            except Exception as exc:  # llama.cpp failures surface as plain exceptions
                log.exception("decode step failed on %s", self.path.name)
                for request in list(self._active):
                    self._finish(request, "error", f"llama.cpp failed: {exc}")

    def _slot_for(self, request: Request) -> _Slot | None:
        slot = next((s for s in self._slots if s.conversation_id == request.conversation_id), None)
        if slot is not None:
            return None if slot.busy else slot
        for seq in self._lru:  # least recently used idle sequence
            candidate = self._slots[seq]
            if not candidate.busy:
                self._clear(candidate)
                candidate.conversation_id = request.conversation_id
                return candidate
        return None

    def _clear(self, slot: _Slot) -> None:
        self._lib.llama_memory_seq_rm(self.memory, slot.seq, -1, -1)
        slot.tokens = []
        slot.conversation_id = None

    def _cells_used(self) -> int:
        return sum(len(s.tokens) for s in self._slots)

    def _cells_promised(self) -> int:
        """Cells the running requests will still take up to their ``max_tokens``."""
        return sum((len(r.tokens) - r.n_done) + (r.max_tokens - r.produced) for r in self._active)

    def _admit(self, request: Request) -> None:
        request.started = time.perf_counter()
        if request.cancelled:
            self._finish(request, "cancelled")
            return
        if request.sampling.grammar is not None:
            request.grammar = self._lib.llama_sampler_init_grammar(
                self.vocab, request.sampling.grammar.encode("utf-8"), b"root"
            )
            if not request.grammar:  # a NULL sampler: llama.cpp logged why
                request.grammar = None
                self._finish(
                    request, "error", "llama.cpp cannot parse the reply's grammar", "bad_request"
                )
                return
        slot = self._slot_for(request)
        if slot is None:
            self._finish(
                request,
                "error",
                f"all {self.n_slots} sequences of {self.path.name} are busy",
                "out_of_memory",
            )
            return
        tokens = request.tokens
        common = 0
        for cached, new in zip(slot.tokens, tokens, strict=False):
            if cached != new:
                break
            common += 1
        if common >= len(tokens):
            common = len(tokens) - 1  # the last prompt token is evaluated again for its logits
        if common < len(slot.tokens):
            self._lib.llama_memory_seq_rm(self.memory, slot.seq, common, -1)
            del slot.tokens[common:]
        if not self.partitioned and not self._make_room(request, slot, common):
            return
        slot.busy = True
        self._lru.move_to_end(slot.seq)
        request.seq = slot.seq
        request.n_done = common
        request.cached = common
        request.chain = self._sampling.chain(request.sampling, tokens)
        request.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._active.append(request)

    def _make_room(self, request: Request, slot: _Slot, common: int) -> bool:
        """Shared pool: evict idle panes' prefixes (oldest first) until the reply fits, or
        refuse it with a one-line reason. (A partitioned cache needs none of this: the reply
        was fitted to the pane's own n_ctx cells.)"""
        needed = len(request.tokens) - common + request.max_tokens
        free = self.kv_cells - self._cells_used() - self._cells_promised()
        for seq in list(self._lru):
            if free >= needed:
                break
            idle = self._slots[seq]
            if idle is not slot and not idle.busy and idle.tokens:
                free += len(idle.tokens)
                self._clear(idle)
        if free >= needed:
            return True
        mib = needed * self.kv_bytes_per_token / 2**20
        self._finish(
            request,
            "error",
            f"KV budget full: this reply needs {needed} tokens ({mib:.0f} MiB) but "
            f"{max(free, 0)} of {self.kv_cells} are free on {self.path.name} "
            f"(kv_budget_mb = {self.kv_budget_mib}; fewer panes or a larger budget help)",
            "out_of_memory",
        )
        return False

    def _step(self) -> None:
        lib = self._lib
        batch = self._batch
        active = [r for r in self._active if not r.cancelled]
        for request in self._active:
            if request.cancelled:
                self._finish(request, "cancelled")
        if not active:
            return
        for request in active:
            request.pipe.flush_due()
        n = 0
        outputs: list[tuple[Request, int]] = []
        generating = [r for r in active if r.generating]
        prompting = [r for r in active if not r.generating]
        token_arr, pos_arr, nseq_arr = batch.token, batch.pos, batch.n_seq_id
        seq_arr, logits_arr = batch.seq_id, batch.logits
        for request in generating:
            token_arr[n] = request.next_token
            pos_arr[n] = request.n_done
            nseq_arr[n] = 1
            seq_arr[n][0] = request.seq
            logits_arr[n] = 1
            outputs.append((request, n))
            n += 1
        in_batch = list(generating)
        taken: dict[int, int] = {}
        for request in prompting:
            room = self.n_batch - n
            if room <= 0:
                break
            tokens = request.tokens
            take = min(room, len(tokens) - request.n_done)
            start = request.n_done
            for offset in range(take):
                token_arr[n] = tokens[start + offset]
                pos_arr[n] = start + offset
                nseq_arr[n] = 1
                seq_arr[n][0] = request.seq
                logits_arr[n] = 0
                n += 1
            if start + take == len(tokens):
                logits_arr[n - 1] = 1
                outputs.append((request, n - 1))
            taken[id(request)] = take
            in_batch.append(request)
        batch.n_tokens = n
        self._batch_requests = in_batch
        abortable = bool(prompting)
        if abortable:
            lib.llama_set_abort_callback(self.ctx, self._abort_cb, None)
        try:
            status = lib.llama_decode(self.ctx, batch)
        finally:
            if abortable:
                lib.llama_set_abort_callback(self.ctx, self._no_abort, None)
            self._batch_requests = []
        if status != 0:
            self._after_failed_decode(status, in_batch)
            return
        self.tokens_evaluated += n
        for request in in_batch:
            slot = self._slots[request.seq]
            if request.generating:
                slot.tokens.append(request.next_token)
            else:
                start = request.n_done
                slot.tokens.extend(request.tokens[start : start + taken[id(request)]])
            request.n_done = len(slot.tokens)
        peers = len(outputs) - 1
        for request, index in outputs:
            request.alongside = max(request.alongside, peers)
            self._sample(request, index)

    def _after_failed_decode(self, status: int, in_batch: list[Request]) -> None:
        lib = self._lib
        # Resynchronise what each sequence holds: an abort keeps the micro-batches it finished.
        for request in in_batch:
            slot = self._slots[request.seq]
            kept = int(lib.llama_memory_seq_pos_max(self.memory, request.seq)) + 1
            base = len(slot.tokens)
            if kept > base:
                added = [request.next_token] if request.generating else request.tokens[base:kept]
                slot.tokens.extend(added[: kept - base])
            elif kept < base:
                del slot.tokens[max(kept, 0) :]
            request.n_done = len(slot.tokens)
        if status == 2:  # aborted: every request in the batch was cancelled (or we are closing)
            for request in in_batch:
                self._finish(request, "cancelled")
            return
        if status == 1:  # no free KV cells: evict idle prefixes, else give up the newest reply
            evicted = False
            for seq in list(self._lru):
                idle = self._slots[seq]
                if not idle.busy and idle.tokens:
                    self._clear(idle)
                    evicted = True
            if evicted:
                return
            victim = max(in_batch, key=lambda r: r.started)
            self._finish(
                victim,
                "error",
                f"KV budget full on {self.path.name}: no free cells for this reply "
                f"(kv_budget_mb = {self.kv_budget_mib}; fewer panes or a larger budget help)",
                "out_of_memory",
            )
            self._clear(self._slots[victim.seq])
            return
        for request in in_batch:
            self._finish(request, "error", f"llama_decode failed with status {status}")

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            buffer = self._piece_buffer
            size = self._lib.llama_token_to_piece(self.vocab, token, buffer, 256, 0, False)
            piece = buffer.raw[: max(size, 0)]
            self._pieces[token] = piece
        return piece

    def _sample(self, request: Request, index: int) -> None:
        lib = self._lib
        assert request.chain is not None, "a request is sampled only while it is active"
        if request.grammar is None:
            token = self._sampling.sample(request.chain, index)
        else:
            token = self._sampling.sample_with_grammar(request.chain, request.grammar, index)
            if token < 0:
                self._emit_held(request)
                self._finish(request, "error", "the grammar allows no next token", "bad_request")
                return
        request.generating = True
        if not request.ignore_eos and lib.llama_vocab_is_eog(self.vocab, token):
            self._emit_held(request)
            self._finish(request, "stop")
            return
        request.produced += 1
        request.next_token = token
        text = request.decoder.decode(self._piece(token))
        if text:
            if request.first_token is None:
                if request.strip_leading_space:
                    text = text.lstrip()
                if text:
                    request.first_token = time.perf_counter()
            if text and self._emit(request, text):
                return
        if request.produced >= request.max_tokens:
            self._emit_held(request)
            self._finish(request, "length")

    def _emit(self, request: Request, text: str) -> bool:
        """Send ``text`` unless it completes a stop string; True when the request ended."""
        stops = request.stop
        if not stops:
            request.emitted_chars += len(text)
            request.pipe.push(text)
            return False
        pending = request.held + text
        for stop in stops:
            at = pending.find(stop)
            if at >= 0:
                if at:
                    request.emitted_chars += at
                    request.pipe.push(pending[:at])
                request.held = ""
                self._finish(request, "stop")
                return True
        # Hold back the longest tail that could still grow into a stop string.
        keep = 0
        for stop in stops:
            for length in range(min(len(stop) - 1, len(pending)), keep, -1):
                if stop.startswith(pending[-length:]):
                    keep = length
                    break
        ready = pending[: len(pending) - keep]
        request.held = pending[len(pending) - keep :]
        if ready:
            request.emitted_chars += len(ready)
            request.pipe.push(ready)
        return False

    def _emit_held(self, request: Request) -> None:
        tail = request.held + request.decoder.decode(b"", final=True)
        request.held = ""
        if tail:
            request.emitted_chars += len(tail)
            request.pipe.push(tail)

    def _finish(
        self, request: Request, reason: str, error: str | None = None, kind: str = "other"
    ) -> None:
        with contextlib.suppress(ValueError):
            self._active.remove(request)
        if 0 <= request.seq < len(self._slots):
            self._slots[request.seq].busy = False
        if request.chain is not None:
            request.chain.close()
            request.chain = None
        if request.grammar is not None:
            self._lib.llama_sampler_free(request.grammar)
            request.grammar = None
        now = time.perf_counter()
        started = request.started or now
        request.pipe.finish(
            GenerationResult(
                finish_reason=reason,
                prompt_tokens=len(request.tokens),
                completion_tokens=request.produced,
                cached_prompt_tokens=request.cached,
                ttft_s=None if request.first_token is None else request.first_token - started,
                total_s=now - started,
                decoded_alongside=request.alongside,
                error=error,
                error_kind=kind,
                emitted_chars=request.emitted_chars,
            )
        )
