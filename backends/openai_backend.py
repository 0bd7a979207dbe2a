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

The SDK is imported in a worker thread by :meth:`load` or the first request, never at import
time. The key is read from the environment when a request is made
(:meth:`ModelProfile.api_key`); it never appears in :meth:`settings_snapshot`, :meth:`header` or
an error reason.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from backends.api_errors import (
    PLACEHOLDER_KEY,
    ErrorContext,
    build_off_loop,
    client_tag,
    ended_early,
    map_exception,
    public_url,
    redact,
    sdk_version,
    url_host,
)
from backends.base import (
    Backend,
    Conversation,
    ProgressCallback,
    StreamClock,
    StreamDone,
    StreamError,
    StreamEvent,
    TextDelta,
    one_line,
)
from backends.profiles import ModelProfile

if TYPE_CHECKING:
    from openai import AsyncOpenAI, AsyncStream
    from openai.types.chat import ChatCompletionChunk

log = logging.getLogger("kurabe.backends.openai")

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
OPENAI_MAX_TEMPERATURE = 2.0


def _import_sdk() -> None:
    """Load the SDK and what its first request loads lazily (best effort for the latter)."""
    importlib.import_module("openai.resources.chat")
    for name in ("anyio._backends._asyncio",):
        # Implementation details of the SDK's dependencies: only a matter of speed.
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


class OpenAIBackend(Backend):
    """Streams chat completions from OpenAI or any OpenAI-compatible server."""

    def __init__(self, profile: ModelProfile) -> None:
        self.profile = profile
        self._client: AsyncOpenAI | None = None
        self._client_tag: tuple[str, int] | None = None

    # -- what is sent -------------------------------------------------------------------------

    @property
    def is_official(self) -> bool:
        """True for OpenAI's own API (no ``base_url`` in the profile)."""
        return self.profile.base_url is None

    def request_params(self) -> dict[str, Any]:
        """The sampling part of the request body, exactly as it is sent."""
        s = self.profile.sampling
        params: dict[str, Any] = {"temperature": s.temperature, "top_p": s.top_p}
        if self.is_official:
            params["temperature"] = min(s.temperature, OPENAI_MAX_TEMPERATURE)
            params["max_completion_tokens"] = s.max_tokens
        else:
            params["max_tokens"] = s.max_tokens
        if s.seed is not None:
            params["seed"] = s.seed
        if s.stop:
            params["stop"] = list(s.stop)
        return params

    def extra_body(self) -> dict[str, Any]:
        """llama.cpp-style sampling fields for compatible servers; nothing for OpenAI itself."""
        if self.is_official:
            return {}
        s = self.profile.sampling
        return {
            "top_k": s.top_k,
            "min_p": s.min_p,
            "repeat_penalty": s.repeat_penalty,
            "repeat_last_n": s.repeat_last_n,
        }

    @staticmethod
    def messages(conversation: Conversation) -> list[dict[str, str]]:
        """The persona as the system message, then the pane's turns in order."""
        messages: list[dict[str, str]] = []
        if conversation.system:
            messages.append({"role": "system", "content": conversation.system})
        messages.extend({"role": t.role, "content": t.content} for t in conversation.turns)
        return messages

    # -- Backend ------------------------------------------------------------------------------

    def header(self) -> str:
        if self.profile.base_url is None:
            return f"OpenAI · {self.profile.model}"
        return f"{url_host(self.profile.base_url)} · {self.profile.model}"

    def settings_snapshot(self) -> dict[str, Any]:
        sent = self.request_params()
        extra = self.extra_body()
        return {
            "backend": "openai",
            "model": self.profile.model,
            "base_url": public_url(self.profile.base_url or OPENAI_DEFAULT_URL),
            "compatible_server": not self.is_official,
            "sampling": {**sent, **extra},
            "sdk": f"openai {sdk_version('openai')}",
            "timeout_s": self.profile.timeout_s,
            "max_retries": self.profile.max_retries,
            "api_key_env": self.profile.api_key_env,
        }

    def unusable_reason(self) -> str | None:
        return self.profile.missing_key_reason()

    async def load(self, progress: ProgressCallback | None = None) -> None:
        """Import the SDK in a worker thread, so the first request does not stall the loop."""
        await build_off_loop(_import_sdk)

    async def aclose(self) -> None:
        client, self._client, self._client_tag = self._client, None, None
        if client is not None:
            await client.close()

    def _build_client(self, key: str) -> AsyncOpenAI:
        from openai import AsyncOpenAI

        kwargs: dict[str, Any] = {
            "api_key": key,
            "timeout": self.profile.timeout_s,
            "max_retries": self.profile.max_retries,
        }
        if self.profile.base_url is not None:
            kwargs["base_url"] = self.profile.base_url
        client = AsyncOpenAI(**kwargs)
        _ = client.chat.completions  # built lazily by the SDK; build it here, off the loop
        return client

    async def _client_for(self, key: str) -> AsyncOpenAI:
        """The SDK client for ``key`` on the running loop; rebuilt when either changes."""
        tag = client_tag(key)
        if self._client is not None and self._client_tag == tag:
            return self._client
        client = await build_off_loop(lambda: self._build_client(key))
        if self._client is not None and self._client_tag == tag:
            await client.close()  # a concurrent stream built one first
            return self._client
        # A client for another key or loop is dropped, not closed: a stream may still use it.
        self._client, self._client_tag = client, tag
        return client

    async def _diagnose_empty_stream(
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
        nothing when the server had no complaint after all.
        """
        probe = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
        probe["max_tokens"] = 1
        try:
            # The server may have dropped the keep-alive connection after its broken stream;
            # one retry on a fresh connection is what it takes to hear its answer.
            await client.with_options(max_retries=1).chat.completions.create(**probe)
        except Exception as exc:
            return map_exception(exc, ctx, clock)
        return None

    async def stream(self, conversation: Conversation) -> AsyncIterator[StreamEvent]:
        missing = self.profile.missing_key_reason()
        if missing is not None:
            yield StreamError(reason=missing, retryable=False, kind="missing_key", total_s=0.0)
            return
        key = self.profile.api_key() or PLACEHOLDER_KEY
        secrets = (key,) if key != PLACEHOLDER_KEY else ()
        try:
            client = await self._client_for(key)
        except Exception as exc:  # the SDK missing or refusing its settings
            reason = one_line(redact(f"cannot set up the OpenAI client: {exc}", secrets))
            yield StreamError(reason=reason, retryable=False, kind="other", total_s=0.0)
            return
        url = public_url(str(client.base_url).rstrip("/"))
        clock = StreamClock()
        received = 0
        prompt_tokens: int | None = None
        completion_tokens: int | None = None
        cached_tokens: int | None = None
        finish_reason: str | None = None
        saw_usage = False

        def context() -> ErrorContext:
            return ErrorContext(
                provider="OpenAI" if self.is_official else url_host(url),
                model=self.profile.model,
                url=url,
                timeout_s=self.profile.timeout_s,
                received_chars=received,
                secrets=secrets,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )

        request: dict[str, Any] = {
            "model": self.profile.model,
            "messages": self.messages(conversation),
            "stream": True,
            "stream_options": {"include_usage": True},
            **self.request_params(),
        }
        extra = self.extra_body()
        if extra:
            request["extra_body"] = extra
        try:
            response: AsyncStream[ChatCompletionChunk] = await client.chat.completions.create(
                **request
            )
        except Exception as exc:  # every SDK failure becomes one StreamError
            log.debug("request to %s failed: %s", url, type(exc).__name__)
            yield map_exception(exc, context(), clock)
            return

        failure: StreamError | None = None
        chunks = 0
        try:
            async for chunk in response:
                chunks += 1
                usage = chunk.usage
                if usage is not None:
                    saw_usage = True
                    prompt_tokens = usage.prompt_tokens
                    completion_tokens = usage.completion_tokens
                    details = usage.prompt_tokens_details
                    if details is not None and details.cached_tokens is not None:
                        cached_tokens = details.cached_tokens
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        clock.mark_token()
                        received += len(text)
                        yield TextDelta(text)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        except Exception as exc:
            log.debug("stream from %s failed: %s", url, type(exc).__name__)
            failure = map_exception(exc, context(), clock)
        finally:
            # Also on cancellation or when the consumer closes us: drop the HTTP stream now.
            await response.close()

        if failure is None and chunks == 0 and not self.is_official:
            failure = await self._diagnose_empty_stream(client, request, context(), clock)
        if failure is not None:
            yield failure
        elif finish_reason is None and not saw_usage:
            yield ended_early(context(), clock)
        else:
            yield StreamDone(
                finish_reason=finish_reason or "unknown",
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                ttft_s=clock.ttft_s,
                total_s=clock.total_s,
                cached_prompt_tokens=cached_tokens,
            )
