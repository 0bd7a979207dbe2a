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
is loaded in a worker thread by :meth:`load` or the first request, never at import time.
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
    from anthropic import AsyncAnthropic, AsyncStream
    from anthropic.types import RawMessageStreamEvent

log = logging.getLogger("kurabe.backends.anthropic")

ANTHROPIC_DEFAULT_URL = "https://api.anthropic.com"
ANTHROPIC_MAX_TEMPERATURE = 1.0
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}
_NOT_SENT_OFFICIAL = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed")
_NOT_SENT_COMPATIBLE = ("min_p", "repeat_penalty", "seed")


def _import_sdk() -> None:
    """Load the SDK and what its first request loads lazily (best effort for the latter)."""
    importlib.import_module("anthropic.resources.messages")
    for name in (
        "anyio._backends._asyncio",
        "opentelemetry.propagate",
    ):
        # Implementation details of the SDK's dependencies: only a matter of speed.
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def finish_reason(stop_reason: str | None) -> str:
    """The kurabe finish reason for an Anthropic ``stop_reason``."""
    if stop_reason is None:
        return "unknown"
    return STOP_REASONS.get(stop_reason, stop_reason)


class AnthropicBackend(Backend):
    """Streams replies from Claude (or an Anthropic-compatible server)."""

    def __init__(self, profile: ModelProfile) -> None:
        self.profile = profile
        self._client: AsyncAnthropic | None = None
        self._client_tag: tuple[str, int] | None = None

    @property
    def is_official(self) -> bool:
        return self.profile.base_url is None

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

    # -- Backend ------------------------------------------------------------------------------

    def header(self) -> str:
        if self.profile.base_url is None:
            return f"Anthropic · {self.profile.model}"
        return f"{url_host(self.profile.base_url)} · {self.profile.model}"

    def settings_snapshot(self) -> dict[str, Any]:
        return {
            "backend": "anthropic",
            "model": self.profile.model,
            "base_url": public_url(self.profile.base_url or ANTHROPIC_DEFAULT_URL),
            "compatible_server": not self.is_official,
            "sampling": {**self.request_params(), **self.extra_body()},
            "not_sent": list(_NOT_SENT_OFFICIAL if self.is_official else _NOT_SENT_COMPATIBLE),
            "sdk": f"anthropic {sdk_version('anthropic')}",
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

    def _build_client(self, key: str) -> AsyncAnthropic:
        from anthropic import AsyncAnthropic

        kwargs: dict[str, Any] = {
            "api_key": key,
            "timeout": self.profile.timeout_s,
            "max_retries": self.profile.max_retries,
        }
        if self.profile.base_url is not None:
            kwargs["base_url"] = self.profile.base_url
        client = AsyncAnthropic(**kwargs)
        _ = client.messages  # built lazily by the SDK; build it here, off the loop
        return client

    async def _client_for(self, key: str) -> AsyncAnthropic:
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
            reason = one_line(redact(f"cannot set up the Anthropic client: {exc}", secrets))
            yield StreamError(reason=reason, retryable=False, kind="other", total_s=0.0)
            return
        url = public_url(str(client.base_url).rstrip("/"))
        clock = StreamClock()
        received = 0
        input_tokens: int | None = None
        cached_read: int | None = None
        cache_write = 0
        output_tokens: int | None = None
        stop_reason: str | None = None
        stopped = False

        def prompt_tokens() -> int | None:
            return None if input_tokens is None else input_tokens + (cached_read or 0) + cache_write

        def context() -> ErrorContext:
            return ErrorContext(
                provider="Anthropic" if self.is_official else url_host(url),
                model=self.profile.model,
                url=url,
                timeout_s=self.profile.timeout_s,
                received_chars=received,
                secrets=secrets,
                prompt_tokens=prompt_tokens(),
                completion_tokens=output_tokens,
            )

        request: dict[str, Any] = {
            "model": self.profile.model,
            "messages": self.messages(conversation),
            "stream": True,
            **self.request_params(),
        }
        if conversation.system:
            request["system"] = conversation.system
        extra = self.extra_body()
        if extra:
            request["extra_body"] = extra
        try:
            response: AsyncStream[RawMessageStreamEvent] = await client.messages.create(**request)
        except Exception as exc:  # every SDK failure becomes one StreamError
            log.debug("request to %s failed: %s", url, type(exc).__name__)
            yield map_exception(exc, context(), clock)
            return

        failure: StreamError | None = None
        try:
            async for event in response:
                if event.type == "message_start":
                    usage = event.message.usage
                    input_tokens = usage.input_tokens
                    cached_read = usage.cache_read_input_tokens
                    cache_write = usage.cache_creation_input_tokens or 0
                    output_tokens = usage.output_tokens
                elif event.type == "content_block_delta":
                    if event.delta.type == "text_delta" and event.delta.text:
                        clock.mark_token()
                        received += len(event.delta.text)
                        yield TextDelta(event.delta.text)
                elif event.type == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    delta_usage = event.usage
                    output_tokens = delta_usage.output_tokens
                    # Cumulative counts; present when the API revises them at the end.
                    if delta_usage.input_tokens is not None:
                        input_tokens = delta_usage.input_tokens
                    if delta_usage.cache_read_input_tokens is not None:
                        cached_read = delta_usage.cache_read_input_tokens
                    if delta_usage.cache_creation_input_tokens is not None:
                        cache_write = delta_usage.cache_creation_input_tokens
                elif event.type == "message_stop":
                    stopped = True
        except Exception as exc:
            log.debug("stream from %s failed: %s", url, type(exc).__name__)
            failure = map_exception(exc, context(), clock)
        finally:
            # Also on cancellation or when the consumer closes us: drop the HTTP stream now.
            await response.close()

        if failure is not None:
            yield failure
        elif not stopped:
            yield ended_early(context(), clock)
        else:
            yield StreamDone(
                finish_reason=finish_reason(stop_reason),
                prompt_tokens=prompt_tokens(),
                completion_tokens=output_tokens,
                ttft_s=clock.ttft_s,
                total_s=clock.total_s,
                cached_prompt_tokens=cached_read,
            )
