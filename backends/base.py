"""The one streaming interface every backend speaks.

A backend turns a :class:`Conversation` (the persona's system prompt and example exchanges, then
alternating user and assistant turns ending with a user turn) into an async stream of events:

* :class:`TextDelta` — text as it arrives, in order;
* then exactly one of :class:`StreamDone` (figures: tokens, time to first token, duration, finish
  reason) or :class:`StreamError` (a one-line reason, whether a retry can help, and whether text had
  already arrived, which the consumer keeps).

Cancelling the task that iterates the stream, or closing the iterator, stops generation promptly
(local: within a token; API: the HTTP stream is closed) and leaves the backend usable.

Backends never import the UI, and never raise out of :meth:`Backend.stream` for an expected
failure: they yield a :class:`StreamError` instead.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant"]
ErrorKind = Literal[
    "missing_key",
    "auth",
    "rate_limit",
    "quota",
    "connection",
    "timeout",
    "context_overflow",
    "model_not_found",
    "model_file",
    "out_of_memory",
    "bad_request",
    "server",
    "cancelled",
    "other",
]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Conversation:
    """What a pane sends: its persona and its own history, ending with the user's new line."""

    system: str
    turns: tuple[ChatMessage, ...]
    char_name: str = "アシスタント"
    user_name: str = "ユーザー"
    conversation_id: str = "default"
    """Stable per pane: local backends key their KV-cache reuse on it."""
    examples: tuple[ChatMessage, ...] = ()
    """The persona's example exchanges (user, assistant, user, assistant …), sent before
    ``turns``; how is each backend's choice, shared in :mod:`backends.examples`."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamDone:
    finish_reason: str
    """``stop`` (natural end or stop string), ``length`` (max_tokens), or the API's own word."""
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_s: float | None
    total_s: float
    context_size: int | None = None
    cached_prompt_tokens: int | None = None
    """Prompt tokens that were not evaluated again (local: the KV prefix actually reused)."""
    history_trimmed_turns: int = 0
    """Oldest turn pairs left out so that the conversation fit the context (local)."""
    max_tokens_clamped: int | None = None
    """The reply budget actually used when the context forced it below ``max_tokens``."""
    decoded_alongside: int | None = None
    """Local: the most other panes decoded in the same batches as this reply (0: alone)."""


@dataclass(frozen=True, slots=True)
class StreamError:
    reason: str
    """One line, meant for the pane's status line."""
    retryable: bool
    kind: ErrorKind = "other"
    partial: bool = False
    """True when text had already streamed; the consumer keeps it and marks it cut off."""
    retry_after_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    total_s: float | None = None


StreamEvent = TextDelta | StreamDone | StreamError
ProgressCallback = Callable[[str], None]


def one_line(text: str, limit: int = 200) -> str:
    """Collapse whitespace so a reason always fits on one status line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass
class StreamClock:
    """Measures time to first token and total time of one stream."""

    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None

    def mark_token(self) -> None:
        if self.first_token is None:
            self.first_token = time.perf_counter()

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.started

    @property
    def total_s(self) -> float:
        return time.perf_counter() - self.started


class Backend(ABC):
    """A model behind one pane. Subclasses implement :meth:`stream`; the rest has defaults.

    Defaults: :meth:`load` does nothing (API backends have nothing to load), :meth:`aclose` does
    nothing, :meth:`header` is empty (the pane shows the profile name), :meth:`settings_snapshot`
    is empty. Where the model computes, which the session schedules local panes by, is declared
    by :attr:`offloaded_layers`, :attr:`shares_compute` and :attr:`model_key`: by default no
    layer is on a GPU, the model competes for the CPU, and the profile's model names it;
    :attr:`shared_by` says how many backends hold one loaded model (default 1).
    """

    async def load(self, progress: ProgressCallback | None = None) -> None:  # noqa: B027
        """Prepare the model (local: load weights once). Safe to call more than once."""

    @abstractmethod
    def stream(self, conversation: Conversation) -> AsyncIterator[StreamEvent]:
        """Yield deltas then one final :class:`StreamDone` or :class:`StreamError`."""

    def header(self) -> str:
        """A short description for the pane header (quantization and GPU layers, or API host)."""
        return ""

    def settings_snapshot(self) -> dict[str, Any]:
        """What the store records so a run can be reproduced. Never contains an API key."""
        return {}

    def unusable_reason(self) -> str | None:
        """Why this backend cannot run right now (missing file, unset key), or None."""
        return None

    @property
    def offloaded_layers(self) -> int:
        """How many of the model's layers run on a GPU. Default 0: none (an API model, or a
        local one on the CPU)."""
        return 0

    @property
    def shares_compute(self) -> bool:
        """True when the model computes on this machine's CPU, so that a local pane on it takes
        turns with the other local panes. Default: True while no layer is offloaded; a backend
        that knows better says so (llama.cpp: False only when every layer is on the GPU)."""
        return self.offloaded_layers == 0

    @property
    def shared_by(self) -> int:
        """How many backends (panes, a judge) hold this backend's loaded model, this one
        included; more than 1 shows in the pane header. Default 1: its own."""
        return 1

    @property
    def parallel_capacity(self) -> int | None:
        """How many requests the model decodes together (local: its engine's sequences, once
        loaded). Default None: not known here (an API or server says so by its limits)."""
        return None

    @property
    def model_key(self) -> str | None:
        """What names the model this backend decodes: panes with the same key share one engine
        and are decoded together. Default None: the profile's ``model`` names it."""
        return None

    async def aclose(self) -> None:  # noqa: B027
        """Release connections or models. Default: nothing to release."""
