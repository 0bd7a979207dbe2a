"""How generated text crosses from the llama.cpp engine's thread to the event loop
(:class:`TextPipe`): in coalesced pieces, then one final result, without the engine ever waiting.

The pipe knows nothing of the engine: the final result's type is its parameter
(``TextPipe[GenerationResult]`` in :mod:`backends.llama_engine`)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

ResultT = TypeVar("ResultT")
"""What the producer sends last, once, after all its text."""

WAKE_INTERVAL_S = 0.008
"""Text waits at most this long (or one decode step) before the event loop is woken for it."""


class TextPipe(Generic[ResultT]):
    """Engine thread → event loop: text in coalesced pieces, then one final result.

    The engine never blocks on the consumer. Waking the event loop from another thread costs
    a system call and a fight for the GIL, so it happens for the first text at once and then at
    most every :data:`WAKE_INTERVAL_S` (the TUI paints every 50 ms anyway): a fast model pays
    one wake-up per batch of tokens, not per token. :meth:`flush_due` catches text that would
    otherwise wait for the next token.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._final: ResultT | None = None
        self._scheduled = False
        self._last_wake = float("-inf")
        self._ready = asyncio.Event()

    def _wake(self) -> None:
        self._last_wake = time.perf_counter()
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            self._loop.call_soon_threadsafe(self._ready.set)

    def push(self, text: str) -> None:
        with self._lock:
            self._parts.append(text)
            if self._scheduled or time.perf_counter() - self._last_wake < WAKE_INTERVAL_S:
                return
            self._scheduled = True
        self._wake()

    def flush_due(self) -> None:
        """Wake the consumer for text held back by the interval, once the interval is over."""
        with self._lock:
            if self._scheduled or not self._parts:
                return
            if time.perf_counter() - self._last_wake < WAKE_INTERVAL_S:
                return
            self._scheduled = True
        self._wake()

    def finish(self, result: ResultT) -> None:
        with self._lock:
            self._final = result
            if self._scheduled:
                return
            self._scheduled = True
        self._wake()

    async def items(self) -> AsyncIterator[str | ResultT]:
        while True:
            await self._ready.wait()
            self._ready.clear()
            with self._lock:
                parts, self._parts = self._parts, []
                final = self._final
                self._scheduled = False
            if parts:
                yield "".join(parts)
            if final is not None:
                yield final
                return
