"""Local GGUF models through llama-cpp-python, with GPU offload where the build supports it.

* One :class:`~backends.llama_engine.LlamaEngine` (one context, one decode thread) serves every
  pane whose profile uses the same file with the same context settings. Each pane keeps its own
  KV sequence in place, and panes on one file are decoded together in one batch per step.
* Every backend that loads a model holds it; :meth:`LlamaCppBackend.aclose` lets go, and the
  last one to let go frees it (the llama.cpp context and model, weights and KV pool), so a
  session that switches models does not keep the old ones. :func:`loaded_models` lists what is
  loaded now and by how many backends; :attr:`LlamaCppBackend.shared_by` says it per backend, and
  a shared model's pane header shows it.
* Before the first model loads, :func:`backends.llama_build.ensure_engine_works` has made sure
  (once per build and CPU, in a subprocess) that llama.cpp does not crash on this machine.
* The conversation is fitted to ``n_ctx`` before it is sent: with ``context = "trim"`` the oldest
  turn pairs are dropped (persona and current line kept), and the reply says so; a reply budget
  that the context forces below ``max_tokens`` is recorded too.
* llama.cpp's native log lines go to ``llama.log`` in the data directory, never the terminal.
* A profile whose sampling has a JSON schema (the judge's) sends a grammar built from it
  (:func:`json_schema_grammar`): the reply is a JSON object of that shape by construction.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import functools
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from backends.base import (
    Backend,
    Conversation,
    ProgressCallback,
    StreamDone,
    StreamError,
    StreamEvent,
    TextDelta,
    one_line,
)
from backends.examples import examples_given
from backends.gguf_meta import GGUF_MAGIC, offloaded_layer_count, quantization_name
from backends.llama_engine import (
    EngineError,
    GenerationResult,
    LlamaEngine,
    Request,
)
from backends.llama_sampling import SamplingSettings
from backends.profiles import EMBEDDED_MODEL, JsonSchema, ModelProfile
from backends.readiness import unusable_reason
from backends.sent import llama_cpp_request
from backends.templates import (
    Formatter,
    RenderedPrompt,
    TemplateError,
    jinja_formatter,
    render_prompt,
)
from backends.text_pipe import TextPipe
from foundation.paths import llama_log_path

# Gemma 3's official chat template (the system prompt becomes the first user turn's prefix).
# Used for "gguf" when a Gemma 3 file carries no template of its own, as the embedded one does.
GEMMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)
FALLBACK_TEMPLATES = {"gemma3": GEMMA3_TEMPLATE}

# llama-cpp-python's converter lets a JSON string hold raw control characters, which JSON (and
# Python's json.loads) refuses; llama.cpp's own converter excludes them, as this does.
CONVERTER_STRING_CHAR = r'char ::= [^"\\] |'
JSON_STRING_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] |'


class ModelFileError(Exception):
    """A GGUF that cannot be used: missing, not GGUF, corrupt, or too large for memory."""

    def __init__(self, reason: str, kind: str = "model_file") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


# --- native logs -------------------------------------------------------------------------

_log_lock = threading.Lock()
_log_callback: Any = None
_log_file: Any = None


def route_native_logs(path: Path | None = None) -> Path:
    """Send llama.cpp's and ggml's log lines to ``path`` (default: llama.log in the data dir).

    llama-cpp-python installs a callback that prints to stderr even with ``verbose=False``;
    Textual draws on that same terminal, so every log line must go to the file instead.
    """
    global _log_callback, _log_file
    import llama_cpp

    target = path or llama_log_path()
    with _log_lock:
        if _log_callback is not None and _log_file is not None and _log_file.name == str(target):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(target, "a", encoding="utf-8", errors="replace")  # noqa: SIM115

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def write_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            with contextlib.suppress(Exception):
                log_file.write(text.decode("utf-8", errors="replace"))
                log_file.flush()

        llama_cpp.llama_log_set(write_log, ctypes.c_void_p(0))
        if _log_file is not None:
            _log_file.close()
        # The callback must stay referenced for as long as llama.cpp may call it.
        _log_callback, _log_file = write_log, log_file
    return target


# --- file checks ---------------------------------------------------------------------------


def _available_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_model_file(path: Path) -> None:
    """Raise :class:`ModelFileError` with a one-line reason if ``path`` cannot be loaded."""
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"not a file: {path}")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path.name}: {exc.strerror}") from None
    if magic != GGUF_MAGIC:
        raise ModelFileError(f"not a GGUF file: {path.name}")
    available = _available_memory_bytes()
    size = path.stat().st_size
    if available is not None and size * 1.1 > available:
        raise ModelFileError(
            f"{path.name} needs about {size / 2**30:.1f} GiB but only "
            f"{available / 2**30:.1f} GiB of memory is free",
            kind="out_of_memory",
        )


def file_fingerprint(path: Path) -> str:
    """sha256 of the first and last MiB plus the size: cheap even for a 40 GB file."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        if size > 2 << 20:
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read(1 << 20))
    digest.update(str(size).encode())
    return digest.hexdigest()


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def default_threads() -> int:
    return max(os.cpu_count() or 1, 1)


# --- shared models -------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """One engine shared by every pane that uses the same file and context settings."""

    engine: LlamaEngine
    path: Path
    n_ctx: int
    n_threads: int
    n_layers: int
    gpu_layers: int
    quantization: str
    architecture: str
    fingerprint: str
    load_s: float
    gguf_formatter: Formatter | None
    template_note: str

    @property
    def fully_offloaded(self) -> bool:
        """Every layer on the GPU: only then do panes on other files run beside it."""
        return self.gpu_layers >= self.n_layers + 1


@dataclass(frozen=True, slots=True)
class LoadedModelInfo:
    """One loaded model as :func:`loaded_models` lists it."""

    path: Path
    n_ctx: int
    gpu_layers: int
    holders: int
    """How many backends (panes, a judge) hold it; it is freed when the last one lets go."""


ModelKey = tuple[str, int, int, int]
"""(resolved file, n_ctx, GPU layers requested, threads): what makes two loads one model."""

_models: dict[ModelKey, LoadedModel] = {}
_holders: dict[ModelKey, int] = {}
_models_lock = threading.Lock()
_loading: dict[ModelKey, threading.Lock] = {}
_engine_checked = False


def _check_engine_once(progress: ProgressCallback | None) -> None:
    """Probe llama.cpp in a subprocess before the first in-process use (remembered per build)."""
    global _engine_checked
    if _engine_checked:
        return
    from backends.embedded import EmbeddedModelError, ensure_embedded_model
    from backends.llama_build import EngineCrashError, ensure_engine_works

    try:
        probe_model = ensure_embedded_model(progress)
    except EmbeddedModelError:
        _engine_checked = True  # nothing quantized to probe with; the model file will tell
        return
    if progress:
        progress("checking the llama.cpp engine on this CPU…")
    try:
        ensure_engine_works(probe_model)
    except EngineCrashError as exc:
        raise ModelFileError(exc.reason, kind="model_file") from None
    _engine_checked = True


def _token_text(engine: LlamaEngine, token_id: int) -> str:
    if token_id < 0:
        return ""
    return engine.token_text(token_id)


def load_shared_model(
    path: Path,
    *,
    n_ctx: int,
    n_gpu_layers: int,
    n_threads: int,
    kv_budget_mb: int | None = None,
    progress: ProgressCallback | None = None,
) -> LoadedModel:
    """Load ``path`` once per (file, n_ctx, GPU layers, threads); later calls share it.

    Every call holds the model until a matching :func:`release_shared_model`. The first profile
    to load a file sets its KV budget; later ones share that pool.
    """
    key = (str(path.resolve()), n_ctx, n_gpu_layers, n_threads)
    with _models_lock:
        if key in _models:
            _holders[key] += 1
            return _models[key]
        key_lock = _loading.setdefault(key, threading.Lock())
    with key_lock:
        with _models_lock:
            if key in _models:
                _holders[key] += 1
                return _models[key]
        check_model_file(path)
        route_native_logs()
        _check_engine_once(progress)
        size_mib = path.stat().st_size >> 20
        if progress:
            progress(f"loading {path.name} ({size_mib} MiB)…")
        started = time.perf_counter()
        try:
            with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
                engine = LlamaEngine(
                    path,
                    n_ctx=n_ctx,
                    n_gpu_layers=n_gpu_layers,
                    n_threads=n_threads,
                    kv_budget_mib=kv_budget_mb,
                )
        except EngineError as exc:
            raise ModelFileError(exc.reason, kind=exc.kind) from None
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelFileError(
                f"cannot load {path.name}: corrupt or unsupported GGUF ({one_line(str(exc), 80)});"
                f" details in {llama_log_path()}"
            ) from None
        load_s = time.perf_counter() - started
        metadata = engine.metadata
        n_layers = engine.n_layers
        offloadable = n_layers + 1
        gpu_layers = offloaded_layer_count(n_layers, n_gpu_layers, gpu_offload_supported())
        architecture = metadata.get("general.architecture", "?")
        quantization = quantization_name(metadata.get("general.file_type"))
        template = metadata.get("tokenizer.chat_template")
        template_note = "the GGUF's own chat template"
        if not template and architecture in FALLBACK_TEMPLATES:
            template = FALLBACK_TEMPLATES[architecture]
            template_note = f"{architecture}'s official chat template (the GGUF carries none)"
        formatter = None
        if template:
            import llama_cpp

            bos = _token_text(engine, int(llama_cpp.llama_vocab_bos(engine.vocab)))
            eos = _token_text(engine, int(llama_cpp.llama_vocab_eos(engine.vocab)))
            formatter = jinja_formatter(template, bos, eos)
        loaded = LoadedModel(
            engine=engine,
            path=path,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_layers=n_layers,
            gpu_layers=gpu_layers,
            quantization=quantization,
            architecture=architecture,
            fingerprint=file_fingerprint(path),
            load_s=load_s,
            gguf_formatter=formatter,
            template_note=template_note if template else "none",
        )
        if progress:
            where = f"GPU {gpu_layers}/{offloadable} layers" if gpu_layers else "CPU"
            progress(f"loaded {path.name} in {load_s:.1f} s ({where})")
        with _models_lock:
            if not _models:
                # Free models before interpreter teardown: freeing them from a finaliser at that
                # point prints "Exception ignored" noise to the terminal.
                atexit.register(unload_all_models)
            _models[key] = loaded
            _holders[key] = 1
        return loaded


def _key_of(loaded: LoadedModel) -> ModelKey | None:
    return next((key for key, model in _models.items() if model is loaded), None)


def release_shared_model(loaded: LoadedModel) -> bool:
    """Let go of one hold on ``loaded``; the last one frees it (the engine's thread, context and
    model). True when it was freed. A model no longer registered (freed by
    :func:`unload_all_models`) is left alone."""
    with _models_lock:
        key = _key_of(loaded)
        if key is None:
            return False
        _holders[key] -= 1
        if _holders[key] > 0:
            return False
        del _models[key], _holders[key]
    loaded.engine.close()
    return True


def holders_of(loaded: LoadedModel) -> int:
    """How many backends hold ``loaded`` now (0 once it is freed)."""
    with _models_lock:
        key = _key_of(loaded)
        return 0 if key is None else _holders[key]


def loaded_models() -> list[LoadedModelInfo]:
    """Every model loaded in this process now, with how many backends hold it."""
    with _models_lock:
        return [
            LoadedModelInfo(model.path, model.n_ctx, model.gpu_layers, _holders[key])
            for key, model in _models.items()
        ]


def unload_all_models() -> None:
    """Free every shared model, held or not (at exit, and in tests and benchmarks)."""
    atexit.unregister(unload_all_models)
    with _models_lock:
        models = list(_models.values())
        _models.clear()
        _holders.clear()
    for loaded in models:
        loaded.engine.close()


@functools.lru_cache(maxsize=8)
def json_schema_grammar(schema: JsonSchema) -> str:
    """GBNF that allows exactly the JSON texts ``schema`` allows (llama-cpp-python's converter,
    with JSON's own string characters)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    grammar = str(json_schema_to_gbnf(schema.text))
    return grammar.replace(CONVERTER_STRING_CHAR, JSON_STRING_CHAR)


# --- the backend ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FittedPrompt:
    """A conversation's prompt made to fit the context, and what fitting it cost."""

    rendered: RenderedPrompt
    tokens: list[int]
    max_tokens: int
    trimmed_turns: int
    clamped: bool


class ContextOverflow(Exception):
    def __init__(self, reason: str, prompt_tokens: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.prompt_tokens = prompt_tokens


class LlamaCppBackend(Backend):
    """A pane on a local GGUF model."""

    ignore_eos = False
    """Benchmarks set this to generate a fixed number of tokens."""

    def __init__(self, profile: ModelProfile) -> None:
        self.profile = profile
        self.loaded: LoadedModel | None = None
        """The shared model this backend holds, from its load until :meth:`aclose`."""
        self._hold_lock = threading.Lock()
        self._last_render: RenderedPrompt | None = None

    # -- paths and loading --

    def resolve_path(self, progress: ProgressCallback | None = None) -> Path:
        if self.profile.model == EMBEDDED_MODEL:
            from backends.embedded import EmbeddedModelError, ensure_embedded_model

            try:
                return ensure_embedded_model(progress)
            except EmbeddedModelError as exc:
                raise ModelFileError(str(exc)) from None
        path = self.profile.model_path
        assert path is not None
        return path

    @property
    def requested_gpu_layers(self) -> int:
        if self.profile.n_gpu_layers < 0:
            return -1 if gpu_offload_supported() else 0
        return self.profile.n_gpu_layers

    @property
    def offloaded_layers(self) -> int:
        return self.loaded.gpu_layers if self.loaded else 0

    @property
    def shares_compute(self) -> bool:
        """True when this pane competes for the CPU (not every layer on the GPU)."""
        return self.loaded is None or not self.loaded.fully_offloaded

    @property
    def shared_by(self) -> int:
        """How many backends hold this one's model now (1 before it loads)."""
        return holders_of(self.loaded) if self.loaded is not None else 1

    @property
    def parallel_capacity(self) -> int | None:
        """The engine's sequences: how many replies it decodes in one batch (once loaded)."""
        return self.loaded.engine.n_slots if self.loaded is not None else None

    @property
    def model_key(self) -> str:
        """Panes with the same key share one engine and are decoded together."""
        if self.loaded is not None:
            return str(self.loaded.path.resolve())
        return self.profile.model

    def unusable_reason(self) -> str | None:
        return unusable_reason(self.profile)

    def load_blocking(self, progress: ProgressCallback | None = None) -> LoadedModel:
        """Load (or share) the model and hold it, once however often it is called."""
        with self._hold_lock:
            if self.loaded is not None:
                return self.loaded
            path = self.resolve_path(progress)
            self.loaded = load_shared_model(
                path,
                n_ctx=self.profile.n_ctx,
                n_gpu_layers=self.requested_gpu_layers,
                n_threads=self.profile.n_threads or default_threads(),
                kv_budget_mb=self.profile.kv_budget_mb,
                progress=progress,
            )
            return self.loaded

    def release_blocking(self) -> None:
        """Let go of the model; it is freed when no other backend holds it. A later load
        holds it (or loads it) again."""
        with self._hold_lock:
            loaded, self.loaded = self.loaded, None
        if loaded is not None:
            release_shared_model(loaded)

    async def aclose(self) -> None:
        """Let go of the model (off the loop: freeing it waits for its decode thread)."""
        await asyncio.to_thread(self.release_blocking)

    async def load(self, progress: ProgressCallback | None = None) -> None:
        if self.loaded is not None:
            return
        loop = asyncio.get_running_loop()

        def report(message: str) -> None:
            if progress is not None:
                loop.call_soon_threadsafe(progress, message)

        await asyncio.to_thread(self.load_blocking, report)

    # -- prompts --

    def render(self, conversation: Conversation) -> RenderedPrompt:
        formatter = self.loaded.gguf_formatter if self.loaded else None
        rendered = render_prompt(
            self.profile.prompt_format,
            conversation,
            custom_template=self.profile.template,
            gguf_formatter=formatter,
            examples_as=self.profile.examples_as,
        )
        self._last_render = rendered
        return rendered

    # -- description --

    def header(self) -> str:
        if self.loaded is None:
            return "llama.cpp"
        loaded = self.loaded
        where = f"GPU {loaded.gpu_layers}/{loaded.n_layers + 1}" if loaded.gpu_layers else "CPU"
        return f"llama.cpp · {loaded.quantization} · {where}"

    def settings_snapshot(self) -> dict[str, Any]:
        import llama_cpp

        profile = self.profile
        snapshot: dict[str, Any] = {
            "backend": "llama_cpp",
            "prompt_format": profile.prompt_format,
            "examples": examples_given(profile.examples_as, profile.prompt_format),
            "sampling": asdict(profile.sampling),
            "n_ctx": profile.n_ctx,
            "n_gpu_layers_requested": profile.n_gpu_layers,
            "gpu_offload_supported": gpu_offload_supported(),
            "llama_cpp_python": llama_cpp.__version__,
        }
        if profile.template:
            snapshot["template"] = profile.template
        if self.loaded is not None:
            loaded = self.loaded
            snapshot.update(
                model_file=loaded.path.name,
                model_size=loaded.path.stat().st_size,
                model_fingerprint=loaded.fingerprint,
                architecture=loaded.architecture,
                quantization=loaded.quantization,
                n_layers=loaded.n_layers,
                gpu_layers_offloaded=loaded.gpu_layers,
                n_threads=loaded.n_threads,
                chat_template=loaded.template_note,
            )
        if self._last_render is not None:
            snapshot["persona_folded_into_first_turn"] = self._last_render.persona_folded
        record = llama_cpp_request(profile.sampling).record()
        if self._last_render is not None and self._last_render.stop:
            # The prompt format's own stop strings (the next speaker's tag) are sent too.
            record["sent"]["stop"] = list(
                dict.fromkeys((*self._last_render.stop, *record["sent"].get("stop", [])))
            )
            record["model_default"] = [n for n in record["model_default"] if n != "stop"]
        snapshot["request"] = record
        return snapshot

    # -- streaming --

    def fit(self, conversation: Conversation) -> FittedPrompt:
        """Render and tokenize ``conversation`` so that prompt + reply budget fit ``n_ctx``.

        ``trim`` drops the oldest user/assistant pairs (the persona and the current line stay);
        when even the current line alone leaves less room than ``max_tokens``, the budget is
        clamped and that is recorded. ``fail`` never drops turns.
        """
        loaded = self.loaded
        assert loaded is not None
        engine = loaded.engine
        n_ctx = loaded.n_ctx
        budget = self.profile.sampling.max_tokens
        history = conversation.turns[:-1]
        dropped = 0
        while True:
            candidate = replace(conversation, turns=history[dropped:] + conversation.turns[-1:])
            rendered = self.render(candidate)
            tokens = engine.tokenize(rendered.text, add_bos=rendered.add_bos)
            fits = len(tokens) + budget <= n_ctx
            if fits or self.profile.context == "fail" or dropped >= len(history):
                break
            dropped += 2
        room = n_ctx - len(tokens)
        if room < 1:
            where = "the current line alone" if dropped else "the conversation"
            raise ContextOverflow(
                f"context overflow: {where} is {len(tokens)} tokens, n_ctx is {n_ctx}",
                len(tokens),
            )
        max_tokens = min(budget, room)
        return FittedPrompt(rendered, tokens, max_tokens, dropped // 2, max_tokens < budget)

    def engine_request(
        self, fitted: FittedPrompt, conversation_id: str, pipe: TextPipe[GenerationResult]
    ) -> Request:
        """The engine's request for a fitted prompt: sampling, stop strings and grammar as the
        profile says (also what tests and the benchmark submit to the engine directly)."""
        # What goes to the engine comes from the one function that also writes the snapshot's
        # record of what was sent (backends/sent.py), so the two cannot drift.
        params = dict(llama_cpp_request(self.profile.sampling).params)
        stop = params.pop("stop", [])
        params.pop("max_tokens")  # fitted to the context: the reply records a clamp
        schema: JsonSchema | None = params.pop("grammar", None)
        if schema is not None:
            params["grammar"] = json_schema_grammar(schema)
        return Request(
            conversation_id=conversation_id,
            tokens=fitted.tokens,
            max_tokens=fitted.max_tokens,
            sampling=SamplingSettings(**params),
            stop=tuple(dict.fromkeys((*fitted.rendered.stop, *stop))),
            pipe=pipe,
            strip_leading_space=fitted.rendered.format_name != "gguf",
            ignore_eos=self.ignore_eos,
        )

    async def stream(self, conversation: Conversation) -> AsyncIterator[StreamEvent]:
        try:
            await self.load()
        except ModelFileError as exc:
            yield StreamError(exc.reason, retryable=False, kind=exc.kind)  # type: ignore[arg-type]
            return
        loaded = self.loaded
        assert loaded is not None
        try:
            fitted = await asyncio.to_thread(self.fit, conversation)
        except TemplateError as exc:
            yield StreamError(one_line(str(exc)), retryable=False, kind="bad_request")
            return
        except ContextOverflow as exc:
            yield StreamError(
                exc.reason,
                retryable=False,
                kind="context_overflow",
                prompt_tokens=exc.prompt_tokens,
            )
            return
        pipe: TextPipe[GenerationResult] = TextPipe(asyncio.get_running_loop())
        request = self.engine_request(fitted, conversation.conversation_id, pipe)
        engine = loaded.engine
        try:
            engine.submit(request)
        except EngineError as exc:
            yield StreamError(exc.reason, retryable=True, kind="other")
            return
        try:
            async for item in pipe.items():
                if isinstance(item, str):
                    yield TextDelta(item)
                else:
                    yield self._final_event(item, fitted, loaded)
        finally:
            if not request.cancelled:
                request.cancel()
                engine.wake()

    def _final_event(
        self, result: GenerationResult, fitted: FittedPrompt, loaded: LoadedModel
    ) -> StreamEvent:
        if result.finish_reason in ("stop", "length"):
            return StreamDone(
                finish_reason=result.finish_reason,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                ttft_s=result.ttft_s,
                total_s=result.total_s,
                context_size=loaded.n_ctx,
                cached_prompt_tokens=result.cached_prompt_tokens,
                history_trimmed_turns=fitted.trimmed_turns,
                max_tokens_clamped=fitted.max_tokens if fitted.clamped else None,
                decoded_alongside=result.decoded_alongside,
            )
        emitted = result.emitted_chars
        if result.finish_reason == "cancelled":
            reason = f"cancelled; kept {emitted} characters"
            kind = "cancelled"
        else:
            reason = one_line(result.error or "llama.cpp failed")
            kind = result.error_kind
        return StreamError(
            reason,
            retryable=kind != "context_overflow",
            kind=kind,  # type: ignore[arg-type]
            partial=emitted > 0,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            ttft_s=result.ttft_s,
            total_s=result.total_s,
        )
