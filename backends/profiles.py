"""Model profiles: which backend, which model, which prompt format and sampling.

Profiles come from three places, later ones overriding earlier ones by name: the built-ins below,
``models.toml`` in the config directory, and a file given with ``--models-file``. A profile names
the *environment variable* that holds an API key, never the key itself.

File format::

    [models.elyza-7b]
    backend = "llama_cpp"
    model = "~/models/ELYZA-japanese-Llama-2-7b-fast-instruct-q6_K.gguf"
    prompt_format = "llama2-sys"      # gguf | llama2-sys | alpaca-ja | transcript | custom |
                                       # <chat_format name>
    examples_as = "turns"              # the persona's examples: turns | system | none
    n_gpu_layers = -1                  # -1: all layers where the build supports offload
    context = "trim"                   # trim: drop the oldest turns to fit n_ctx | fail
    kv_budget_mb = 4096                # KV cache of every pane on this file (default 1 GiB)
    [models.elyza-7b.sampling]
    temperature = 0.7
    repeat_penalty = 1.18
    repeat_last_n = 256

    [models.claude-t07]
    backend = "anthropic"
    model = "claude-sonnet-4-6"
    api_key_env = "ANTHROPIC_API_KEY"
    send_sampling = ["temperature"]    # Anthropic only: which of temperature, top_p, top_k to send
    concurrency = 4                    # kurabe run: requests at once to this endpoint

What each backend sends of the sampling is decided in :mod:`backends.sent`.

``Sampling.json_schema`` (structured output: a reply that is valid JSON of one shape by
construction) has no key in the file: only the judge sets it, on its own copy of a profile
(:func:`kurabe.judge.runner.judge_profile`), so a chat pane never gets one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from backends.examples import EXAMPLES_AS
from foundation.errors import ConfigError
from foundation.tomlfile import KeyPath, TomlDocument

BackendName = Literal["llama_cpp", "openai", "anthropic"]
BACKENDS: tuple[str, ...] = ("llama_cpp", "openai", "anthropic")
ContextPolicy = Literal["trim", "fail"]
CONTEXT_POLICIES: tuple[str, ...] = ("trim", "fail")
EMBEDDED_MODEL = "embedded:gemma-3-270m-q4_k_m"

SAMPLING_FIELDS: tuple[str, ...] = (
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "repeat_penalty",
    "repeat_last_n",
    "max_tokens",
    "seed",
    "stop",
)
"""The profile's sampling settings (:class:`Sampling`, less ``json_schema``), in the order
exports list them."""
ANTHROPIC_SAMPLING = ("temperature", "top_p", "top_k")
"""What an Anthropic profile's ``send_sampling`` may name: the Messages API's sampling
parameters."""


JSON_SCHEMA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What OpenAI accepts as a ``json_schema`` name."""


@dataclass(frozen=True, slots=True)
class JsonSchema:
    """A JSON schema every reply must match (structured output), with the name APIs ask for.

    Only the strict subset is taken, since OpenAI's ``strict: true`` requires it and a grammar
    built from it then allows exactly the objects the schema does: an object whose properties
    are all required, with ``additionalProperties: false``.
    """

    name: str
    schema: Mapping[str, Any]

    @property
    def text(self) -> str:
        """The schema as compact JSON (what a grammar is built from)."""
        return json.dumps(self.schema, ensure_ascii=False, separators=(",", ":"))

    def __hash__(self) -> int:  # the schema is a mapping; its JSON text is not
        return hash((self.name, self.text))

    def problem(self) -> str | None:
        """What is wrong, or None."""
        if not JSON_SCHEMA_NAME.fullmatch(self.name):
            return "json_schema name must be 1-64 letters, digits, '_' or '-'"
        try:
            _ = self.text
        except (TypeError, ValueError):
            return "json_schema must be plain JSON values"
        schema = self.schema
        properties = schema.get("properties")
        if schema.get("type") != "object" or not isinstance(properties, Mapping) or not properties:
            return "json_schema must describe an object with properties"
        if sorted(schema.get("required") or ()) != sorted(properties):
            return "json_schema must require every property"
        if schema.get("additionalProperties") is not False:
            return "json_schema must set additionalProperties to false"
        return None


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling settings. Defaults are the hand-written comparison's: 0.7, 1.18 over 256 tokens,
    40, 0.95."""

    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.18
    repeat_last_n: int = 256
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json_schema: JsonSchema | None = None
    """Structured output: every reply is a JSON object matching this schema, where the backend
    can hold it to one (see :mod:`backends.sent`). Never read from a models file."""

    def validate(self) -> str | None:
        """Return what is wrong, or None. Checked up front, before any model loads."""
        if not 0.0 <= self.temperature <= 5.0:
            return "temperature must be between 0 and 5"
        if self.top_k < 0:
            return "top_k must be 0 (off) or more"
        if not 0.0 < self.top_p <= 1.0:
            return "top_p must be in (0, 1]"
        if not 0.0 <= self.min_p <= 1.0:
            return "min_p must be in [0, 1]"
        if self.repeat_penalty <= 0:
            return "repeat_penalty must be positive"
        if self.repeat_last_n < -1:
            return "repeat_last_n must be -1 (whole context), 0 (off) or more"
        if self.max_tokens < 1:
            return "max_tokens must be at least 1"
        if self.json_schema is not None:
            return self.json_schema.problem()
        return None


@dataclass(frozen=True, slots=True)
class ModelProfile:
    name: str
    backend: BackendName
    model: str
    """A GGUF path (``~`` expanded), :data:`EMBEDDED_MODEL`, or an API model id."""
    prompt_format: str = "gguf"
    template: str | None = None
    """For ``prompt_format = "custom"``: placeholders ``{{prompt}}``, ``{{history}}``,
    ``{{char}}`` and ``{{user}}``."""
    sampling: Sampling = field(default_factory=Sampling)
    n_gpu_layers: int = -1
    n_ctx: int = 4096
    n_threads: int | None = None
    context: ContextPolicy = "trim"
    """When history and the reply budget outgrow ``n_ctx``: ``trim`` drops the oldest turn pairs
    (the persona and the current line stay) and records it; ``fail`` reports an overflow."""
    kv_budget_mb: int | None = None
    """The KV cache of every pane on this model file together, in MiB (local profiles).
    Unset: 1 GiB, or one whole ``n_ctx`` where that takes more."""
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 2
    concurrency: int | None = None
    """How many requests ``kurabe run`` sends its endpoint at once (the endpoint: the base_url or
    the provider's API with this key; a local file). Unset: 4 for an API or a server, the
    engine's sequences for a local file. Lowered on a 429 and raised again after successes."""
    send_sampling: tuple[str, ...] | None = None
    """Anthropic only: which of ``temperature``, ``top_p`` and ``top_k`` to send. None: the
    backend's default (none to Anthropic's own API; see :mod:`backends.sent`)."""
    examples_as: str = "turns"
    """How a chat template or an API gets the persona's example exchanges: ``turns`` (prior
    turns), ``system`` (in the system prompt) or ``none``; completion formats write them as
    dialogue lines unless ``none`` (:mod:`backends.examples`)."""
    default: bool = False
    """Shown as a pane when kurabe starts with no --models (if usable)."""
    description: str = ""
    source: str = "built-in"

    @property
    def is_local(self) -> bool:
        return self.backend == "llama_cpp"

    @property
    def model_path(self) -> Path | None:
        """The GGUF file, for local profiles; the embedded model resolves lazily elsewhere."""
        if not self.is_local or self.model == EMBEDDED_MODEL:
            return None
        return Path(os.path.expanduser(self.model))

    def api_key(self) -> str | None:
        """Read the key from the environment at the moment it is needed; never stored."""
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env, "").strip()
        return value or None

    def missing_key_reason(self) -> str | None:
        if self.backend == "llama_cpp" or not self.api_key_env:
            return None
        if self.api_key() is None:
            return f"API key missing: set the environment variable {self.api_key_env}"
        return None


EMBEDDED_N_CTX = 2048
"""The embedded profiles' context: the hand-written comparison's scripts fit, the history is
trimmed past it, and six panes' KV cache on the one file takes 216 MiB (4096: twice that)."""

BUILTIN_PROFILES: tuple[ModelProfile, ...] = (
    ModelProfile(
        name="gemma-270m",
        backend="llama_cpp",
        model=EMBEDDED_MODEL,
        prompt_format="gguf",
        n_ctx=EMBEDDED_N_CTX,
        sampling=Sampling(max_tokens=160),
        default=True,
        description="Embedded Gemma 3 270M Q4_K_M (a base model) with Gemma's chat template; "
        "the persona's examples as prior turns",
    ),
    ModelProfile(
        name="gemma-270m-transcript",
        backend="llama_cpp",
        model=EMBEDDED_MODEL,
        prompt_format="transcript",
        n_ctx=EMBEDDED_N_CTX,
        sampling=Sampling(max_tokens=160),
        default=True,
        description="The same model given the persona and its examples as a few-shot "
        "transcript (ユーザー: … / オタク: …), the way to prompt a base model",
    ),
    ModelProfile(
        name="gemma-270m-llama2",
        backend="llama_cpp",
        model=EMBEDDED_MODEL,
        prompt_format="llama2-sys",
        n_ctx=EMBEDDED_N_CTX,
        sampling=Sampling(max_tokens=160),
        description="The same model in the Llama-2 <<SYS>> completion format of the "
        "hand-written comparison",
    ),
    ModelProfile(
        name="gemma-270m-alpaca",
        backend="llama_cpp",
        model=EMBEDDED_MODEL,
        prompt_format="alpaca-ja",
        n_ctx=EMBEDDED_N_CTX,
        sampling=Sampling(max_tokens=160),
        description="The same model in weblab's ### 指示: / ### 応答: format",
    ),
    ModelProfile(
        name="gpt-4.1-mini",
        backend="openai",
        model="gpt-4.1-mini",
        api_key_env="OPENAI_API_KEY",
        default=True,
        description="OpenAI API (pane appears when OPENAI_API_KEY is set)",
    ),
    ModelProfile(
        name="claude-sonnet-4-6",
        backend="anthropic",
        model="claude-sonnet-4-6",
        api_key_env="ANTHROPIC_API_KEY",
        default=True,
        description="Anthropic API (pane appears when ANTHROPIC_API_KEY is set)",
    ),
    ModelProfile(
        name="local-server",
        backend="openai",
        model="local",
        base_url="http://127.0.0.1:8080/v1",
        description="Any OpenAI-compatible server on this machine (llama-server, vLLM, Ollama…)",
    ),
)

_SAMPLING_TYPES: dict[str, type | tuple[type, ...]] = {
    "temperature": float,
    "top_k": int,
    "top_p": float,
    "min_p": float,
    "repeat_penalty": float,
    "repeat_last_n": int,
    "max_tokens": int,
    "seed": int,
    "stop": list,
}
_PROFILE_TYPES: dict[str, type | tuple[type, ...]] = {
    "backend": str,
    "model": str,
    "prompt_format": str,
    "template": str,
    "sampling": dict,
    "n_gpu_layers": int,
    "n_ctx": int,
    "n_threads": int,
    "context": str,
    "kv_budget_mb": int,
    "base_url": str,
    "api_key_env": str,
    "timeout_s": float,
    "max_retries": int,
    "concurrency": int,
    "send_sampling": list,
    "examples_as": str,
    "default": bool,
    "description": str,
}


def _parse_sampling(doc: TomlDocument, table: Mapping[str, Any], at: KeyPath) -> Sampling:
    doc.reject_unknown(table, at, _SAMPLING_TYPES)
    values: dict[str, Any] = {}
    for key, types in _SAMPLING_TYPES.items():
        value = doc.take(table, at, key, types, required=False)
        if value is None:
            continue
        if key == "stop":
            for index, item in enumerate(value):
                if not isinstance(item, str) or not item:
                    raise doc.error((*at, key, index), "stop strings must be non-empty strings")
            value = tuple(value)
        values[key] = value
    sampling = Sampling(**values)
    problem = sampling.validate()
    if problem:
        key = problem.split()[0]
        raise doc.error((*at, key), problem)
    return sampling


def _parse_send_sampling(
    doc: TomlDocument, table: Mapping[str, Any], at: KeyPath, backend: str
) -> tuple[str, ...]:
    names = doc.take_list(table, at, "send_sampling", str)
    if backend != "anthropic":
        raise doc.error(
            (*at, "send_sampling"),
            "only anthropic profiles take send_sampling; others send "
            "what their API accepts (see kurabe's backends/sent.py)",
        )
    for index, name in enumerate(names):
        if name not in ANTHROPIC_SAMPLING:
            raise doc.error(
                (*at, "send_sampling", index), f"must be one of {', '.join(ANTHROPIC_SAMPLING)}"
            )
        if name in names[:index]:
            raise doc.error((*at, "send_sampling", index), f"{name} is listed twice")
    return tuple(names)


def _parse_profile(doc: TomlDocument, name: str, table: Mapping[str, Any]) -> ModelProfile:
    at: KeyPath = ("models", name)
    doc.reject_unknown(table, at, _PROFILE_TYPES)
    backend = doc.take(table, at, "backend", str)
    if backend not in BACKENDS:
        raise doc.error((*at, "backend"), f"must be one of {', '.join(BACKENDS)}")
    values: dict[str, Any] = {"name": name, "backend": backend, "source": str(doc.path)}
    values["model"] = doc.take(table, at, "model", str, non_empty=True)
    for key, types in _PROFILE_TYPES.items():
        if key in ("backend", "model", "sampling", "send_sampling"):
            continue
        value = doc.take(table, at, key, types, required=False)
        if value is not None:
            values[key] = value
    if "sampling" in table:
        values["sampling"] = _parse_sampling(doc, table["sampling"], (*at, "sampling"))
    if "send_sampling" in table:
        values["send_sampling"] = _parse_send_sampling(doc, table, at, backend)
    fmt = values.get("prompt_format", "gguf")
    if fmt == "custom" and not values.get("template"):
        raise doc.error((*at, "template"), 'prompt_format = "custom" needs a template')
    base_url = values.get("base_url")
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise doc.error((*at, "base_url"), "must be an http:// or https:// URL")
    if values.get("n_ctx", 4096) < 64:
        raise doc.error((*at, "n_ctx"), "n_ctx must be at least 64")
    if values.get("context", "trim") not in CONTEXT_POLICIES:
        raise doc.error((*at, "context"), f"must be one of {', '.join(CONTEXT_POLICIES)}")
    if values.get("examples_as", "turns") not in EXAMPLES_AS:
        raise doc.error((*at, "examples_as"), f"must be one of {', '.join(EXAMPLES_AS)}")
    if values.get("concurrency", 1) < 1:
        raise doc.error((*at, "concurrency"), "concurrency must be at least 1")
    if values.get("kv_budget_mb", 1) < 1:
        raise doc.error((*at, "kv_budget_mb"), "kv_budget_mb must be at least 1")
    return ModelProfile(**values)


def parse_models_file(path: Path | str) -> list[ModelProfile]:
    doc = TomlDocument.load(path)
    doc.reject_unknown(doc.data, (), ["models"])
    models = doc.take(doc.data, (), "models", dict)
    profiles = []
    for name, table in models.items():
        if not isinstance(table, dict):
            raise doc.error(("models", name), "expected a table [models.NAME]")
        profiles.append(_parse_profile(doc, name, table))
    return profiles


def user_models_file() -> Path:
    from foundation.paths import config_dir

    return config_dir() / "models.toml"


def load_profiles(models_file: Path | str | None = None) -> dict[str, ModelProfile]:
    """Built-ins, then the user's ``models.toml``, then ``models_file``; later names win."""
    profiles = {p.name: p for p in BUILTIN_PROFILES}
    user_file = user_models_file()
    if user_file.exists():
        profiles.update({p.name: p for p in parse_models_file(user_file)})
    if models_file is not None:
        if not Path(models_file).exists():
            raise ConfigError(models_file, "file not found")
        profiles.update({p.name: p for p in parse_models_file(models_file)})
    return profiles
