"""OpenAI and OpenAI-compatible servers through the official ``openai`` SDK (async, streaming).

One backend serves two cases, told apart by ``profile.base_url``:

* ``base_url`` unset: OpenAI's own API (or ``OPENAI_BASE_URL`` if the user set it). The reply
  length goes in ``max_completion_tokens`` (newer OpenAI models reject ``max_tokens``), and only
  parameters OpenAI accepts are sent: ``temperature`` (clamped to OpenAI's 0–2), ``top_p``,
  ``seed``, ``stop``.
* ``base_url`` set: any OpenAI-compatible server (llama.cpp's ``llama-server`` or
  ``python -m llama_cpp.server``, vLLM, Ollama, LM Studio). The length goes in ``max_tokens``,
  which every such server understands, and llama.cpp's own sampling knobs (``top_k``, ``min_p``,
  ``repeat_penalty``, ``repeat_last_n``) travel in the request body where those servers read
  them; servers that do not know them ignore them. Without ``api_key_env`` a placeholder key is
  sent, so a key from the user's environment never reaches a third-party server.

Usage comes from the last chunk (``stream_options.include_usage``); servers that ignore that
option (llama-cpp-python's) end with a StreamDone whose token counts are None. A compatible server
that answers with an empty stream gets one non-streaming, one-token probe to learn why
(llama-cpp-python reports a too-long prompt only that way).

The client's life, the key, the error mapping and the stream around the chunks are
:class:`~backends.api_backend.ApiBackend`'s: the SDK is imported in a worker thread by
:meth:`load` or the first request, never at import time. The key is read from the environment
when a request is made (:meth:`ModelProfile.api_key`); it never appears in
:meth:`settings_snapshot`, :meth:`header` or an error reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from backends.api_backend import ApiBackend
from backends.api_errors import ErrorContext, map_exception
from backends.base import Conversation, StreamClock, StreamError
from backends.sent import SentRequest, openai_request

if TYPE_CHECKING:
    from openai import AsyncOpenAI, AsyncStream
    from openai.types.chat import ChatCompletionChunk

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"


class _ChunkTally:
    """Reads ``chat.completion.chunk`` events: text and finish reason of choice 0, and usage."""

    def __init__(self) -> None:
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.cached_prompt_tokens: int | None = None
        self.finish: str | None = None
        self.saw_usage = False

    @property
    def finish_reason(self) -> str:
        return self.finish or "unknown"

    @property
    def complete(self) -> bool:
        # Some compatible servers omit finish_reason; a usage chunk still marks a complete reply.
        return self.finish is not None or self.saw_usage

    def read(self, chunk: ChatCompletionChunk) -> Iterator[str]:
        usage = chunk.usage
        if usage is not None:
            self.saw_usage = True
            self.prompt_tokens = usage.prompt_tokens
            self.completion_tokens = usage.completion_tokens
            details = usage.prompt_tokens_details
            if details is not None and details.cached_tokens is not None:
                self.cached_prompt_tokens = details.cached_tokens
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            text = choice.delta.content if choice.delta is not None else None
            if text:
                yield text
            if choice.finish_reason:
                self.finish = choice.finish_reason


class OpenAIBackend(ApiBackend["AsyncOpenAI", "ChatCompletionChunk"]):
    """Streams chat completions from OpenAI or any OpenAI-compatible server."""

    provider = "OpenAI"
    backend_name = "openai"
    sdk_package = "openai"
    sdk_module = "openai.resources.chat"
    warm_modules = ("anyio._backends._asyncio",)
    default_url = OPENAI_DEFAULT_URL
    log = logging.getLogger("kurabe.backends.openai")

    # -- what is sent -------------------------------------------------------------------------

    def sent_request(self) -> SentRequest:
        """Sampling as :func:`backends.sent.openai_request` decides (see the module docstring)."""
        return openai_request(self.profile)

    @staticmethod
    def wire_messages(conversation: Conversation) -> list[dict[str, str]]:
        """The persona as the system message, then the pane's turns in order."""
        messages: list[dict[str, str]] = []
        if conversation.system:
            messages.append({"role": "system", "content": conversation.system})
        messages.extend({"role": t.role, "content": t.content} for t in conversation.turns)
        return messages

    def _sdk_fields(self, conversation: Conversation) -> dict[str, Any]:
        return {"stream_options": {"include_usage": True}}

    # -- the SDK ------------------------------------------------------------------------------

    def _new_client(self, kwargs: dict[str, Any]) -> AsyncOpenAI:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(**kwargs)
        _ = client.chat.completions  # built lazily by the SDK; build it here, off the loop
        return client

    async def _open(
        self, client: AsyncOpenAI, request: dict[str, Any]
    ) -> AsyncStream[ChatCompletionChunk]:
        response: AsyncStream[ChatCompletionChunk] = await client.chat.completions.create(**request)
        return response

    def _tally(self) -> _ChunkTally:
        return _ChunkTally()

    async def _empty_stream(
        self,
        client: AsyncOpenAI,
        request: dict[str, Any],
        ctx: ErrorContext,
        clock: StreamClock,
    ) -> StreamError | None:
        """Ask once more, without streaming, why a compatible server sent an empty stream.

        ``llama_cpp.server`` answers a prompt longer than its context with ``200 OK`` and an
        empty event stream; the same request without ``stream`` gets the real ``400``
        (``context_length_exceeded``). The probe asks for one token, so it costs next to
        nothing when the server had no complaint after all. OpenAI's own API is not probed.
        """
        if self.is_official:
            return None
        probe = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
        probe["max_tokens"] = 1
        try:
            # The server may have dropped the keep-alive connection after its broken stream;
            # one retry on a fresh connection is what it takes to hear its answer.
            await client.with_options(max_retries=1).chat.completions.create(**probe)
        except Exception as exc:
            return map_exception(exc, ctx, clock)
        return None
