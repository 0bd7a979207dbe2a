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

The request goes through the SDK's ``client.post`` (its documented way to reach any endpoint)
with the body already in wire form, and the stream's chunks arrive as the JSON objects the server
sent (``AsyncStream[object]``): the SDK still sends, authenticates, retries, times out, decodes the
event stream, ends at ``[DONE]`` and raises its errors, but it no longer transforms the request
against its typed parameters nor builds a pydantic model per chunk. Those two cost about 6 ms of
CPU per reply and capped a run of many concurrent streams (``bench/bench_runs.py``, issue 16).

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
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from backends.api_backend import ApiBackend
from backends.api_errors import ErrorContext, map_exception
from backends.base import Conversation, StreamClock, StreamError
from backends.sent import SentRequest, openai_request

if TYPE_CHECKING:
    from openai import AsyncOpenAI, AsyncStream, RequestOptions

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"


def _mapping(value: object) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _count(value: object) -> int | None:
    # bool is an int to Python, never a token count
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _ChunkTally:
    """Reads ``chat.completion.chunk`` objects as sent: text and finish reason of choice 0, and
    usage. Fields of the wrong shape are passed over, as the SDK's loose models did."""

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

    def read(self, chunk: object) -> Iterator[str]:
        data = _mapping(chunk)
        if data is None:
            return
        usage = _mapping(data.get("usage"))
        if usage is not None:
            self.saw_usage = True
            self.prompt_tokens = _count(usage.get("prompt_tokens"))
            self.completion_tokens = _count(usage.get("completion_tokens"))
            details = _mapping(usage.get("prompt_tokens_details"))
            cached = _count(details.get("cached_tokens")) if details is not None else None
            if cached is not None:
                self.cached_prompt_tokens = cached
        choices = data.get("choices")
        if not isinstance(choices, list):
            return
        for entry in choices:
            choice = _mapping(entry)
            if choice is None or choice.get("index", 0) != 0:
                continue
            delta = _mapping(choice.get("delta"))
            text = delta.get("content") if delta is not None else None
            if isinstance(text, str) and text:
                yield text
            finish = choice.get("finish_reason")
            if isinstance(finish, str) and finish:
                self.finish = finish


class OpenAIBackend(ApiBackend["AsyncOpenAI", object]):
    """Streams chat completions from OpenAI or any OpenAI-compatible server."""

    provider = "OpenAI"
    backend_name = "openai"
    sdk_package = "openai"
    sdk_module = "openai.resources.chat"
    warm_modules = ("anyio._backends._asyncio", "httpcore2")
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

    async def _open(self, client: AsyncOpenAI, request: dict[str, Any]) -> AsyncStream[object]:
        """POST the request as the wire body; chunks come back as the JSON objects sent."""
        from openai import AsyncStream

        body = {k: v for k, v in request.items() if k not in ("extra_body", "extra_headers")}
        body.update(request.get("extra_body") or {})
        options: RequestOptions = {"security": {"bearer_auth": True}}
        if request.get("extra_headers"):
            options["headers"] = dict(request["extra_headers"])
        response: AsyncStream[object] = await client.post(
            "/chat/completions",
            body=body,
            cast_to=object,
            options=options,
            stream=True,
            stream_cls=AsyncStream[object],
        )
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
