"""Anthropic's Messages API through the official ``anthropic`` SDK (async, streaming).

The persona goes in ``system``; the pane's turns go in ``messages``. Events come from
``messages.create(stream=True)``: text from ``content_block_delta`` (``text_delta`` only; thinking
and tool deltas are not reply text), input tokens from ``message_start`` (plus cache reads and
writes, which the API counts apart), output tokens and the stop reason from ``message_delta``, and
``message_stop`` marks a complete reply. ``end_turn`` and ``stop_sequence`` become ``stop``,
``max_tokens`` becomes ``length``; other stop reasons (``refusal``, ``pause_turn``…) are kept.

Sampling, decided in :func:`backends.sent.anthropic_request`: for Anthropic's own API (no
``base_url``) only ``max_tokens`` and ``stop_sequences`` are sent by default. The installed SDK
(2.x) sends ``anthropic-version: 2026-10-21`` and has no ``temperature``, ``top_p`` or ``top_k``
parameters; that API version answers 400 to any of them, even at their defaults, and some current
models reject them under any version, so a profile's llama.cpp-style sampling would turn every
request into a 400. A profile that wants them for a model that still honours them (the hand-written
comparison used temperature 0.7) says ``send_sampling = ["temperature"]``: the values then travel in
the body (the SDK's ``extra_body``) with ``anthropic-version: 2023-06-01`` (``extra_headers``),
the API version that still takes them. For an Anthropic-compatible server (``base_url`` set, e.g.
llama.cpp's ``/v1/messages``) ``temperature`` and ``top_k`` are sent by default, ``top_p``
instead of ``temperature`` when the temperature is 1.0. :meth:`settings_snapshot` records exactly
what went out (``request``), so an export shows a value only where it was sent and says "model
default" elsewhere.

Without ``api_key_env`` a placeholder key is sent, so the SDK never picks up a key or profile from
the user's environment and hands it to a third-party server. The SDK (about two seconds to import)
is loaded in a worker thread by :meth:`load` or the first request, never at import time. That, the
client's life, the error mapping and the stream around the events are
:class:`~backends.api_backend.ApiBackend`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from backends.api_backend import ApiBackend
from backends.base import Conversation
from backends.sent import SentRequest, anthropic_request

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic, AsyncStream
    from anthropic.types import RawMessageStreamEvent

ANTHROPIC_DEFAULT_URL = "https://api.anthropic.com"
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


def finish_reason(stop_reason: str | None) -> str:
    """The kurabe finish reason for an Anthropic ``stop_reason``."""
    if stop_reason is None:
        return "unknown"
    return STOP_REASONS.get(stop_reason, stop_reason)


class _EventTally:
    """Reads Messages API stream events: text deltas, usage, stop reason, ``message_stop``."""

    def __init__(self) -> None:
        self.input_tokens: int | None = None
        self.cached_prompt_tokens: int | None = None
        """Cache reads, which the API counts apart from ``input_tokens``."""
        self.cache_write = 0
        self.completion_tokens: int | None = None
        self.stop_reason: str | None = None
        self.complete = False

    @property
    def prompt_tokens(self) -> int | None:
        if self.input_tokens is None:
            return None
        return self.input_tokens + (self.cached_prompt_tokens or 0) + self.cache_write

    @property
    def finish_reason(self) -> str:
        return finish_reason(self.stop_reason)

    def read(self, event: RawMessageStreamEvent) -> Iterator[str]:
        if event.type == "message_start":
            usage = event.message.usage
            self.input_tokens = usage.input_tokens
            self.cached_prompt_tokens = usage.cache_read_input_tokens
            self.cache_write = usage.cache_creation_input_tokens or 0
            self.completion_tokens = usage.output_tokens
        elif event.type == "content_block_delta":
            if event.delta.type == "text_delta" and event.delta.text:
                yield event.delta.text
        elif event.type == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            delta_usage = event.usage
            self.completion_tokens = delta_usage.output_tokens
            # Cumulative counts; present when the API revises them at the end.
            if delta_usage.input_tokens is not None:
                self.input_tokens = delta_usage.input_tokens
            if delta_usage.cache_read_input_tokens is not None:
                self.cached_prompt_tokens = delta_usage.cache_read_input_tokens
            if delta_usage.cache_creation_input_tokens is not None:
                self.cache_write = delta_usage.cache_creation_input_tokens
        elif event.type == "message_stop":
            self.complete = True


class AnthropicBackend(ApiBackend["AsyncAnthropic", "RawMessageStreamEvent"]):
    """Streams replies from Claude (or an Anthropic-compatible server)."""

    provider = "Anthropic"
    backend_name = "anthropic"
    sdk_package = "anthropic"
    sdk_module = "anthropic.resources.messages"
    warm_modules = ("anyio._backends._asyncio", "opentelemetry.propagate")
    default_url = ANTHROPIC_DEFAULT_URL
    log = logging.getLogger("kurabe.backends.anthropic")

    # -- what is sent -------------------------------------------------------------------------

    def sent_request(self) -> SentRequest:
        """Sampling as :func:`backends.sent.anthropic_request` decides (see the module
        docstring): ``max_tokens`` and ``stop_sequences`` as SDK parameters; temperature, top_p
        and top_k, where the profile sends them, in the body with ``anthropic-version``."""
        return anthropic_request(self.profile)

    @staticmethod
    def wire_messages(conversation: Conversation) -> list[dict[str, str]]:
        return [{"role": t.role, "content": t.content} for t in conversation.turns]

    def _sdk_fields(self, conversation: Conversation) -> dict[str, Any]:
        """The persona goes in ``system`` (left out when empty), never among the messages."""
        return {"system": conversation.system} if conversation.system else {}

    # -- the SDK ------------------------------------------------------------------------------

    def _new_client(self, kwargs: dict[str, Any]) -> AsyncAnthropic:
        from anthropic import AsyncAnthropic

        client = AsyncAnthropic(**kwargs)
        _ = client.messages  # built lazily by the SDK; build it here, off the loop
        return client

    async def _open(
        self, client: AsyncAnthropic, request: dict[str, Any]
    ) -> AsyncStream[RawMessageStreamEvent]:
        response: AsyncStream[RawMessageStreamEvent] = await client.messages.create(**request)
        return response

    def _tally(self) -> _EventTally:
        return _EventTally()
