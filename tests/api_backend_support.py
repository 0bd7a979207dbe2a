"""What the OpenAI and Anthropic backend tests share, on top of :mod:`tests.wire_servers`.

The wire server for a test's ``server`` fixture, profiles pointed at it, running a backend's
stream to its end, and the checks that read the same for both APIs: an API error as one line,
a missing key, two streams at once through one backend, and cancelling a stream mid-reply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from backends.api_backend import ApiBackend
from backends.base import Conversation, StreamError, TextDelta
from backends.profiles import ModelProfile
from tests.wire_servers import Collected, WireServer, collect

PERSONA = (
    "あなたは大のアニメファンで、友達と会話しています。"
    "返信は短くカジュアルなものにする必要があります。"
)

Api = ApiBackend[Any, Any]


def serve(name: str) -> Iterator[WireServer]:
    """The body of a ``server`` fixture: a running server, checked for handler errors after."""
    with WireServer(name) as wire:
        yield wire
    assert wire.errors == []


def wire_profile(values: dict[str, Any], changes: dict[str, Any]) -> ModelProfile:
    """A profile from ``values`` with no retries and a 5 s timeout; ``changes`` win over both."""
    return ModelProfile(**{"max_retries": 0, "timeout_s": 5.0, **values, **changes})


async def run_closed(backend: Api, conversation: Conversation) -> Collected:
    """The whole stream for ``conversation``; the backend is closed afterwards."""
    try:
        return await collect(backend.stream(conversation))
    finally:
        await backend.aclose()


async def two_at_once(backend: Api, conversation: Conversation) -> tuple[Collected, Collected]:
    """Two streams through one backend at the same time, both complete."""
    try:
        first, second = await asyncio.gather(
            collect(backend.stream(conversation)), collect(backend.stream(conversation))
        )
    finally:
        await backend.aclose()
    return first, second


def assert_one_line_error(
    got: Collected, kind: str, retryable: bool, starts: str, key: str
) -> None:
    """``got`` ended with an error of ``kind`` on one line, before any text, without ``key``."""
    error = got.final
    assert isinstance(error, StreamError)
    assert error.kind == kind
    assert error.retryable is retryable
    assert error.reason.startswith(starts), error.reason
    assert "\n" not in error.reason and len(error.reason) <= 200
    assert not error.partial and got.deltas == []
    assert key not in error.reason


def assert_missing_key(got: Collected, backend: Api, env: str, server: WireServer) -> None:
    """``got`` is the missing-key error naming ``env``, and no request reached ``server``."""
    error = got.final
    assert isinstance(error, StreamError)
    assert error.kind == "missing_key" and not error.retryable
    assert env in error.reason
    assert got.deltas == []
    assert server.requests == []
    assert backend.unusable_reason() == error.reason


async def cancel_after_two_deltas(
    backend: Api, conversation: Conversation, server: WireServer
) -> None:
    """Cancel the task consuming a stream at its second delta; the server sees the client go
    within a second."""
    seen: list[str] = []
    two_deltas = asyncio.Event()

    async def consume() -> None:
        async for event in backend.stream(conversation):
            if isinstance(event, TextDelta):
                seen.append(event.text)
                if len(seen) == 2:
                    two_deltas.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(two_deltas.wait(), 5)
    cancelled_at = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(server.client_gone.wait, 2.0)
    assert server.client_gone_at is not None
    assert server.client_gone_at - cancelled_at < 1.0
