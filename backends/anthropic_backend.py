"""Anthropic's Messages API through the official ``anthropic`` SDK (async, streaming).

The persona goes in ``system``; the pane's turns go in ``messages``. Events come from
``messages.create(stream=True)``: text from ``content_block_delta`` (``text_delta`` only; thinking
and tool deltas are not reply text), input tokens from ``message_start`` (plus cache reads and
writes, which the API counts apart), output tokens and the stop reason from ``message_delta``, and
``message_stop`` marks a complete reply. ``end_turn`` and ``stop_sequence`` become ``stop``,
``max_tokens`` becomes ``length``; other stop reasons (``refusal``, ``pause_turn``…) are kept.

Sampling, decided: for Anthropic's own API (no ``base_url``) only ``max_tokens`` and
``stop_sequences`` are sent. The installed SDK pins ``anthropic-version: 2026-10-21`` and no
longer has ``temperature``, ``top_p`` or ``top_k`` parameters at all; current Claude models
reject a request that sets ``temperature`` and ``top_p`` together, and some reject any
non-default sampling value, so a profile's llama.cpp-style sampling would only turn every request
into a 400. The model samples with its own defaults, and :meth:`settings_snapshot` says so
(``not_sent``), so an export never claims a temperature that was not used. For an
Anthropic-compatible server (``base_url`` set, e.g. a proxy or llama.cpp's ``/v1/messages``)
``temperature`` and ``top_k`` are sent in the request body, and ``top_p`` only when
``temperature`` is 1.0, so the two never travel together.

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

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic, AsyncStream
    from anthropic.types import RawMessageStreamEvent

ANTHROPIC_DEFAULT_URL = "https://api.anthropic.com"
ANTHROPIC_MAX_TEMPERATURE = 1.0
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}
_NOT_SENT_OFFICIAL = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed")
_NOT_SENT_COMPATIBLE = ("min_p", "repeat_penalty", "seed")


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

    def request_params(self) -> dict[str, Any]:
        """Length and stop strings, sent to every server."""
        s = self.profile.sampling
        params: dict[str, Any] = {"max_tokens": s.max_tokens}
        if s.stop:
            params["stop_sequences"] = list(s.stop)
        return params

    def extra_body(self) -> dict[str, Any]:
        """Sampling for Anthropic-compatible servers; nothing for Anthropic's own API."""
        if self.is_official:
            return {}
        s = self.profile.sampling
        body: dict[str, Any] = {}
        temperature = min(s.temperature, ANTHROPIC_MAX_TEMPERATURE)
        if temperature == 1.0 and s.top_p < 1.0:
            body["top_p"] = s.top_p
        else:
            body["temperature"] = temperature
        if s.top_k > 0:
            body["top_k"] = s.top_k
        return body

    @staticmethod
    def messages(conversation: Conversation) -> list[dict[str, str]]:
        return [{"role": t.role, "content": t.content} for t in conversation.turns]

    def _sdk_fields(self, conversation: Conversation) -> dict[str, Any]:
        """The persona goes in ``system`` (left out when empty), never among the messages."""
        return {"system": conversation.system} if conversation.system else {}

    def _snapshot_notes(self) -> dict[str, Any]:
        return {"not_sent": list(_NOT_SENT_OFFICIAL if self.is_official else _NOT_SENT_COMPATIBLE)}

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
