"""What the OpenAI and Anthropic backends share: the SDK client's life and the stream around it.

:class:`ApiBackend` owns everything that does not depend on which SDK is talking:

* the key: read from the environment when a request is made (:meth:`ModelProfile.api_key`), a
  missing one reported as a ``missing_key`` :class:`StreamError` without any request, a
  placeholder sent to servers that need none; the key never appears in :meth:`header`,
  :meth:`settings_snapshot` or an error reason;
* the SDK: imported in a worker thread by :meth:`load` or the first request, never at import time
  (this module imports no SDK); one client per key and event loop, built off the loop, rebuilt
  when either changes, closed by :meth:`aclose`;
* the stream: open it, turn each SDK event into text through a per-stream :class:`ReplyTally`,
  map every SDK failure to one :class:`StreamError` (:func:`map_exception`), report a stream that
  closed before the API said the reply was finished (:func:`ended_early`), and close the HTTP
  stream however the iteration ends (cancellation and the consumer closing us included).

A subclass says what is particular to its API: the SDK's client class and modules
(:meth:`ApiBackend._new_client`, :attr:`ApiBackend.sdk_module`), the request
(:meth:`ApiBackend.sent_request`, one function of :mod:`backends.sent`, which the settings
snapshot records as well; :meth:`ApiBackend.wire_messages`, :meth:`ApiBackend._sdk_fields`), how
it is sent (:meth:`ApiBackend._open`), how its events read (its :class:`ReplyTally`), and optionally
what an empty stream means (:meth:`ApiBackend._empty_stream`).

The persona's example exchanges are moved into the turns or the system prompt before either of
those sees the conversation (:func:`backends.examples.for_chat`, the profile's ``examples_as``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from abc import abstractmethod
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar, Generic, Protocol, TypeVar

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
from backends.examples import examples_given, for_chat
from backends.profiles import ModelProfile
from backends.sent import SentRequest

EventT = TypeVar("EventT")
EventT_co = TypeVar("EventT_co", covariant=True)
EventT_contra = TypeVar("EventT_contra", contravariant=True)


class SdkClient(Protocol):
    """What the base needs of an SDK's async client (both SDKs' clients have it)."""

    @property
    def base_url(self) -> Any: ...

    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=SdkClient)


class EventStream(Protocol[EventT_co]):
    """An SDK's streamed response: its events, and a way to drop the HTTP stream."""

    def __aiter__(self) -> AsyncIterator[EventT_co]: ...

    async def close(self) -> None: ...


class ReplyTally(Protocol[EventT_contra]):
    """What the events of one reply have said so far; one per stream.

    :meth:`read` takes in one SDK event and yields the reply text it carries, if any, keeping the
    token counts and the finish reason up to date; the properties are read when the stream fails
    (for the error's figures) and when it ends (for :class:`StreamDone`).
    """

    @property
    def prompt_tokens(self) -> int | None: ...

    @property
    def completion_tokens(self) -> int | None: ...

    @property
    def cached_prompt_tokens(self) -> int | None: ...

    @property
    def finish_reason(self) -> str:
        """The kurabe finish reason (``unknown`` when the API gave none)."""
        ...

    @property
    def complete(self) -> bool:
        """True once the events said the reply was finished."""
        ...

    def read(self, event: EventT_contra) -> Iterator[str]: ...


class ApiBackend(Backend, Generic[ClientT, EventT]):
    """A backend that streams from an HTTP API through its official async SDK."""

    provider: ClassVar[str]
    """The API's name in the header and in messages (``OpenAI``, ``Anthropic``)."""
    backend_name: ClassVar[str]
    """The profile's ``backend`` value, as recorded in :meth:`settings_snapshot`."""
    sdk_package: ClassVar[str]
    """The SDK's distribution name, for its version."""
    sdk_module: ClassVar[str]
    """The SDK module a request needs, imported by :meth:`load`."""
    warm_modules: ClassVar[tuple[str, ...]]
    """What the SDK's first request would import lazily; imported by :meth:`load` if present
    (implementation details of the SDK's dependencies: only a matter of speed)."""
    default_url: ClassVar[str]
    """Where the SDK sends requests when the profile has no ``base_url``."""
    log: ClassVar[logging.Logger]
    """Where failed requests are noted (debug level; never with the key)."""

    def __init__(self, profile: ModelProfile) -> None:
        self.profile = profile
        self._client: ClientT | None = None
        self._client_tag: tuple[str, int] | None = None
        self._building: dict[tuple[str, int], asyncio.Future[ClientT]] = {}
        """Builds in flight, by tag: streams that start together share one build."""

    # -- what is sent -------------------------------------------------------------------------

    @property
    def is_official(self) -> bool:
        """True for the provider's own API (no ``base_url`` in the profile)."""
        return self.profile.base_url is None

    @abstractmethod
    def sent_request(self) -> SentRequest:
        """The sampling part of every request, from :mod:`backends.sent`: SDK parameters, body
        fields and headers. Requests are built from it and the settings snapshot records it."""

    def messages(self, conversation: Conversation) -> list[dict[str, str]]:
        """The API's ``messages`` for ``conversation``, the persona's examples included where
        the profile's ``examples_as`` puts them."""
        return self.wire_messages(for_chat(conversation, self.profile.examples_as))

    @staticmethod
    @abstractmethod
    def wire_messages(conversation: Conversation) -> list[dict[str, str]]:
        """A conversation without examples (:func:`backends.examples.for_chat` has placed them)
        as the API's ``messages``."""

    def _sdk_fields(self, conversation: Conversation) -> dict[str, Any]:
        """Further request fields only this API takes. Default: none."""
        return {}

    def _request(self, conversation: Conversation) -> dict[str, Any]:
        """The keyword arguments of the SDK's streaming ``create`` call."""
        sent = self.sent_request()
        chat = for_chat(conversation, self.profile.examples_as)
        request: dict[str, Any] = {
            "model": self.profile.model,
            "messages": self.wire_messages(chat),
            "stream": True,
            **self._sdk_fields(chat),
            **sent.params,
        }
        if sent.body:
            request["extra_body"] = dict(sent.body)
        if sent.headers:
            request["extra_headers"] = dict(sent.headers)
        return request

    # -- the SDK ------------------------------------------------------------------------------

    @abstractmethod
    def _new_client(self, kwargs: dict[str, Any]) -> ClientT:
        """Import the SDK and build its client from ``kwargs``, with what it builds lazily."""

    @abstractmethod
    async def _open(self, client: ClientT, request: dict[str, Any]) -> EventStream[EventT]:
        """Send ``request`` and return the streamed response."""

    @abstractmethod
    def _tally(self) -> ReplyTally[EventT]:
        """A fresh reader for one stream's events."""

    async def _empty_stream(
        self,
        client: ClientT,
        request: dict[str, Any],
        ctx: ErrorContext,
        clock: StreamClock,
    ) -> StreamError | None:
        """Why the server answered with a stream without a single event, if it can tell.

        Default: no idea; the stream is reported as ended early.
        """
        return None

    @classmethod
    def _import_sdk(cls) -> None:
        """Load the SDK and what its first request loads lazily (best effort for the latter)."""
        importlib.import_module(cls.sdk_module)
        for name in cls.warm_modules:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)

    def _build_client(self, key: str) -> ClientT:
        kwargs: dict[str, Any] = {
            "api_key": key,
            "timeout": self.profile.timeout_s,
            "max_retries": self.profile.max_retries,
        }
        if self.profile.base_url is not None:
            kwargs["base_url"] = self.profile.base_url
        return self._new_client(kwargs)

    async def _client_for(self, key: str) -> ClientT:
        """The SDK client for ``key`` on the running loop; rebuilt when either changes.

        Streams that start together (a run opens a dozen at once) wait for one build instead of
        each building a client in a thread and throwing all but one away. The build is a task of
        its own, so a stream cancelled while it waits does not cancel it for the others.
        """
        tag = client_tag(key)
        if self._client is not None and self._client_tag == tag:
            return self._client
        build = self._building.get(tag)
        if build is None:
            build = asyncio.ensure_future(build_off_loop(lambda: self._build_client(key)))
            self._building[tag] = build
            build.add_done_callback(lambda done: self._built(tag, done))
        return await asyncio.shield(build)

    def _built(self, tag: tuple[str, int], build: asyncio.Future[ClientT]) -> None:
        self._building.pop(tag, None)
        if build.cancelled() or build.exception() is not None:
            return  # the streams that waited report it; a later stream builds again
        # A client for another key or loop is dropped, not closed: a stream may still use it.
        self._client, self._client_tag = build.result(), tag

    # -- Backend ------------------------------------------------------------------------------

    def header(self) -> str:
        if self.profile.base_url is None:
            return f"{self.provider} · {self.profile.model}"
        return f"{url_host(self.profile.base_url)} · {self.profile.model}"

    def settings_snapshot(self) -> dict[str, Any]:
        return {
            "backend": self.backend_name,
            "model": self.profile.model,
            "base_url": public_url(self.profile.base_url or self.default_url),
            "compatible_server": not self.is_official,
            "request": self.sent_request().record(),
            "sdk": f"{self.sdk_package} {sdk_version(self.sdk_package)}",
            "timeout_s": self.profile.timeout_s,
            "max_retries": self.profile.max_retries,
            "api_key_env": self.profile.api_key_env,
            "examples": examples_given(self.profile.examples_as),
        }

    def unusable_reason(self) -> str | None:
        return self.profile.missing_key_reason()

    async def load(self, progress: ProgressCallback | None = None) -> None:
        """Import the SDK in a worker thread, so the first request does not stall the loop; with
        the key at hand, build the client for this loop as well."""
        await build_off_loop(self._import_sdk)
        if self.profile.missing_key_reason() is None:
            await self._client_for(self.profile.api_key() or PLACEHOLDER_KEY)

    async def aclose(self) -> None:
        for build in list(self._building.values()):
            build.cancel()  # a client built after the close would never be closed
        client, self._client, self._client_tag = self._client, None, None
        if client is not None:
            await client.close()

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
            reason = one_line(redact(f"cannot set up the {self.provider} client: {exc}", secrets))
            yield StreamError(reason=reason, retryable=False, kind="other", total_s=0.0)
            return
        url = public_url(str(client.base_url).rstrip("/"))
        clock = StreamClock()
        tally = self._tally()
        received = 0

        def context() -> ErrorContext:
            return ErrorContext(
                provider=self.provider if self.is_official else url_host(url),
                model=self.profile.model,
                url=url,
                timeout_s=self.profile.timeout_s,
                received_chars=received,
                secrets=secrets,
                prompt_tokens=tally.prompt_tokens,
                completion_tokens=tally.completion_tokens,
            )

        request = self._request(conversation)
        try:
            response = await self._open(client, request)
        except Exception as exc:  # every SDK failure becomes one StreamError
            self.log.debug("request to %s failed: %s", url, type(exc).__name__)
            yield map_exception(exc, context(), clock)
            return

        failure: StreamError | None = None
        events = 0
        try:
            async for event in response:
                events += 1
                for text in tally.read(event):
                    clock.mark_token()
                    received += len(text)
                    yield TextDelta(text)
        except Exception as exc:
            self.log.debug("stream from %s failed: %s", url, type(exc).__name__)
            failure = map_exception(exc, context(), clock)
        finally:
            # Also on cancellation or when the consumer closes us: drop the HTTP stream now.
            await response.close()

        if failure is None and events == 0:
            failure = await self._empty_stream(client, request, context(), clock)
        if failure is not None:
            yield failure
        elif not tally.complete:
            yield ended_early(context(), clock)
        else:
            yield StreamDone(
                finish_reason=tally.finish_reason,
                prompt_tokens=tally.prompt_tokens,
                completion_tokens=tally.completion_tokens,
                ttft_s=clock.ttft_s,
                total_s=clock.total_s,
                cached_prompt_tokens=tally.cached_prompt_tokens,
            )
