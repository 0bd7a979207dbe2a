"""Local GGUF models through llama-cpp-python, with GPU offload where the build supports it.

* One loaded ``Llama`` serves every pane whose profile uses the same file with the same context
  settings; a lock serialises generation on it.
* KV prefix reuse across turns and across panes: after each reply the pane's sequence state
  (KV cells and token ids, not the logits buffer, which for a 262k vocabulary would be hundreds
  of MB) is saved; when another pane used the model in between, it is restored before the next
  turn, so llama.cpp only evaluates the new suffix. ``swa_full`` keeps sliding-window models
  (Gemma 3) reusable.
* Generation runs in a worker thread and hands events to the event loop; cancelling stops it
  within one token.
* llama.cpp's native log lines go to ``llama.log`` in the data directory, never the terminal.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
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
from backends.profiles import EMBEDDED_MODEL, ModelProfile
from backends.templates import (
    Formatter,
    RenderedPrompt,
    TemplateError,
    jinja_formatter,
    render_prompt,
)
from kurabe.paths import llama_log_path

GGUF_MAGIC = b"GGUF"
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 30: "BF16",
}  # fmt: skip

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


def quantization_name(file_type: object) -> str:
    """A GGUF's ``general.file_type`` as llama.cpp names it (``Q4_K_M`` …), ``?`` if absent."""
    try:
        code = int(str(file_type))
    except ValueError:
        return "?"
    return FILE_TYPES.get(code, f"type {code}")


def offloaded_layer_count(n_layers: int, requested: int, supported: bool) -> int:
    """Layers llama.cpp puts on the GPU: the repeating layers plus the output layer, at most;
    ``requested = -1`` means all of them; none where the build has no GPU offload."""
    if not supported:
        return 0
    offloadable = n_layers + 1
    return offloadable if requested < 0 else min(requested, offloadable)


def default_threads() -> int:
    return max(os.cpu_count() or 1, 1)


# --- shared models -------------------------------------------------------------------------


@dataclass
class SavedSequence:
    data: bytes
    token_ids: Any
    n_tokens: int


@dataclass
class LoadedModel:
    """One ``Llama`` shared by every pane that uses the same file and context settings."""

    llama: Any
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
    lock: threading.Lock = field(default_factory=threading.Lock)
    owner: str | None = None
    saved: OrderedDict[str, SavedSequence] = field(default_factory=OrderedDict)
    max_saved: int = 8
    """Conversations whose KV state is kept (six panes and a little more). A 7B model's state
    is about 0.5 MB a token, so an unbounded cache would grow by gigabytes per session."""

    def save_sequence(self, conversation_id: str) -> None:
        import llama_cpp

        ctx = self.llama._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        n_tokens = int(self.llama.n_tokens)
        self.saved[conversation_id] = SavedSequence(
            ctypes.string_at(buffer, written), self.llama.input_ids[:n_tokens].copy(), n_tokens
        )
        self.saved.move_to_end(conversation_id)
        while len(self.saved) > self.max_saved:
            self.saved.popitem(last=False)
        self.owner = conversation_id

    def switch_to(self, conversation_id: str) -> None:
        """Make the KV cache hold ``conversation_id``'s tokens (empty for a new one)."""
        import llama_cpp

        if self.owner == conversation_id:
            return
        llama = self.llama
        llama._ctx.kv_cache_clear()
        llama.n_tokens = 0
        saved = self.saved.get(conversation_id)
        if saved is not None and saved.n_tokens > 0:
            buffer = (ctypes.c_uint8 * len(saved.data)).from_buffer_copy(saved.data)
            restored = llama_cpp.llama_state_seq_set_data(
                llama._ctx.ctx, buffer, len(saved.data), 0
            )
            if restored:
                llama.input_ids[: saved.n_tokens] = saved.token_ids
                llama.n_tokens = saved.n_tokens
            else:
                llama._ctx.kv_cache_clear()
        llama._requires_eval = True
        self.owner = conversation_id


_models: dict[tuple[str, int, int, int], LoadedModel] = {}
_models_lock = threading.Lock()
_loading: dict[tuple[str, int, int, int], threading.Lock] = {}


def _read_metadata(llama: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(llama.metadata).items()}


def _token_text(llama: Any, token_id: int) -> str:
    if token_id < 0:
        return ""
    text = llama._model.token_get_text(token_id)
    return text.decode("utf-8", errors="replace") if isinstance(text, bytes) else str(text)


def load_shared_model(
    path: Path,
    *,
    n_ctx: int,
    n_gpu_layers: int,
    n_threads: int,
    progress: ProgressCallback | None = None,
) -> LoadedModel:
    """Load ``path`` once per (file, n_ctx, GPU layers, threads); later calls share it."""
    key = (str(path.resolve()), n_ctx, n_gpu_layers, n_threads)
    with _models_lock:
        if key in _models:
            return _models[key]
        key_lock = _loading.setdefault(key, threading.Lock())
    with key_lock:
        with _models_lock:
            if key in _models:
                return _models[key]
        check_model_file(path)
        route_native_logs()
        from llama_cpp import Llama

        size_mib = path.stat().st_size >> 20
        if progress:
            progress(f"loading {path.name} ({size_mib} MiB)…")
        started = time.perf_counter()
        try:
            # verbose=True keeps llama-cpp-python from redirecting the process's stdout/stderr
            # file descriptors while loading, which would blank the TUI; the native log lines
            # go to llama.log through route_native_logs().
            with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
                llama = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_gpu_layers=n_gpu_layers,
                    n_threads=n_threads,
                    n_threads_batch=n_threads,
                    swa_full=True,
                    verbose=True,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelFileError(
                f"cannot load {path.name}: corrupt or unsupported GGUF ({one_line(str(exc), 80)});"
                f" details in {llama_log_path()}"
            ) from None
        import llama_cpp

        # verbose=True above would make generate() print to stderr; quiet it from here on.
        llama.verbose = False
        load_s = time.perf_counter() - started
        metadata = _read_metadata(llama)
        n_layers = int(llama_cpp.llama_model_n_layer(llama.model))
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
            bos = _token_text(llama, llama.token_bos())
            eos = _token_text(llama, llama.token_eos())
            formatter = jinja_formatter(template, bos, eos)
        loaded = LoadedModel(
            llama=llama,
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
                # Free models before interpreter teardown: Llama.__del__ at that point prints
                # "Exception ignored" noise to the terminal.
                atexit.register(unload_all_models)
            _models[key] = loaded
        return loaded


def unload_all_models() -> None:
    """Free every shared model (at exit, and in tests and benchmarks)."""
    atexit.unregister(unload_all_models)
    with _models_lock:
        models = list(_models.values())
        _models.clear()
    for loaded in models:
        with loaded.lock:
            loaded.llama.close()


# --- the backend ---------------------------------------------------------------------------

_END = object()


class LlamaCppBackend(Backend):
    """A pane on a local GGUF model."""

    def __init__(self, profile: ModelProfile) -> None:
        self.profile = profile
        self.loaded: LoadedModel | None = None
        self._load_error: ModelFileError | None = None
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

    def unusable_reason(self) -> str | None:
        if self.profile.model == EMBEDDED_MODEL:
            from backends.embedded import embedded_model_state

            return embedded_model_state()
        path = self.profile.model_path
        if path is None or not path.exists():
            return f"model file not found: {path}"
        return None

    def load_blocking(self, progress: ProgressCallback | None = None) -> LoadedModel:
        if self.loaded is not None:
            return self.loaded
        path = self.resolve_path(progress)
        self.loaded = load_shared_model(
            path,
            n_ctx=self.profile.n_ctx,
            n_gpu_layers=self.requested_gpu_layers,
            n_threads=self.profile.n_threads or default_threads(),
            progress=progress,
        )
        return self.loaded

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
        return snapshot

    # -- streaming --

    async def stream(self, conversation: Conversation) -> AsyncIterator[StreamEvent]:
        try:
            await self.load()
        except ModelFileError as exc:
            yield StreamError(exc.reason, retryable=False, kind=exc.kind)  # type: ignore[arg-type]
            return
        try:
            rendered = self.render(conversation)
        except TemplateError as exc:
            yield StreamError(one_line(str(exc)), retryable=False, kind="bad_request")
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        worker = loop.run_in_executor(
            None, self._generate, rendered, conversation.conversation_id, put, cancel
        )
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                yield item
        finally:
            cancel.set()
            if worker.done():
                worker.result()

    def _generate(
        self,
        rendered: RenderedPrompt,
        conversation_id: str,
        put: Callable[[object], None],
        cancel: threading.Event,
    ) -> None:
        loaded = self.loaded
        assert loaded is not None
        sampling = self.profile.sampling
        first_token: float | None = None
        completion_tokens = 0
        prompt_tokens: int | None = None
        emitted = 0
        try:
            with loaded.lock:
                # Timed from here: a pane waiting for another pane on the same model (parallel
                # panes on a GPU) must not count that wait as its own time to first token.
                started = time.perf_counter()
                llama = loaded.llama
                loaded.switch_to(conversation_id)
                tokens = llama.tokenize(
                    rendered.text.encode("utf-8"), add_bos=rendered.add_bos, special=True
                )
                prompt_tokens = len(tokens)
                cached = int(llama.n_tokens)
                if prompt_tokens >= loaded.n_ctx - 1:
                    put(
                        StreamError(
                            f"context overflow: the conversation is {prompt_tokens} tokens, "
                            f"n_ctx is {loaded.n_ctx}",
                            retryable=False,
                            kind="context_overflow",
                            prompt_tokens=prompt_tokens,
                        )
                    )
                    return
                llama.last_n_tokens_size = (
                    loaded.n_ctx if sampling.repeat_last_n < 0 else sampling.repeat_last_n
                )
                stop = list(dict.fromkeys((*rendered.stop, *sampling.stop)))
                max_tokens = min(sampling.max_tokens, loaded.n_ctx - prompt_tokens)
                finish_reason = "stop"
                chunks = llama.create_completion(
                    tokens,
                    max_tokens=max_tokens,
                    temperature=sampling.temperature,
                    top_k=sampling.top_k,
                    top_p=sampling.top_p,
                    min_p=sampling.min_p,
                    repeat_penalty=sampling.repeat_penalty,
                    seed=sampling.seed,
                    stop=stop or None,
                    stream=True,
                )
                try:
                    for chunk in chunks:
                        completion_tokens += 1
                        choice = chunk["choices"][0]
                        text = choice["text"]
                        if text:
                            if first_token is None:
                                first_token = time.perf_counter()
                                text = text.lstrip() if rendered.format_name != "gguf" else text
                            if text:
                                emitted += len(text)
                                put(TextDelta(text))
                        if choice.get("finish_reason"):
                            finish_reason = choice["finish_reason"]
                        if cancel.is_set():
                            finish_reason = "cancelled"
                            break
                finally:
                    chunks.close()
                    if completion_tokens:
                        # Each sampled token is evaluated before the next is drawn, except the
                        # last one: the KV position counts the reply exactly.
                        completion_tokens = max(int(llama.n_tokens) - prompt_tokens + 1, 1)
                    loaded.save_sequence(conversation_id)
            total = time.perf_counter() - started
            ttft = None if first_token is None else first_token - started
            if finish_reason == "cancelled":
                put(
                    StreamError(
                        f"cancelled; kept {emitted} characters",
                        retryable=True,
                        kind="cancelled",
                        partial=emitted > 0,
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                        ttft_s=ttft,
                        total_s=total,
                    )
                )
            else:
                put(
                    StreamDone(
                        finish_reason=finish_reason,
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                        ttft_s=ttft,
                        total_s=total,
                        context_size=loaded.n_ctx,
                        cached_prompt_tokens=min(cached, prompt_tokens),
                    )
                )
        except Exception as exc:  # llama.cpp surfaces failures as plain exceptions
            message = str(exc)
            kind = "context_overflow" if "context window" in message else "other"
            put(
                StreamError(
                    one_line(f"llama.cpp failed: {message}"),
                    retryable=kind != "context_overflow",
                    kind=kind,  # type: ignore[arg-type]
                    partial=emitted > 0,
                    prompt_tokens=prompt_tokens,
                )
            )
        finally:
            put(_END)
