"""The one retry layer of a run: a reply as attempts, each a fresh request.

:class:`RetryingBackend` wraps a pane's backend. Each attempt waits for a place in its endpoint's
:class:`~kurabe.runs.endpoints.AdaptiveLimit`, streams the whole reply and passes it on only when
it completed: a partial text is never handed to the session as the model's answer. A failure that
a retry can help (a 5xx, a 429, a connection dropped mid-reply, a stall past the stall timeout)
is retried as a fresh request after a backoff (the ``Retry-After`` the server asked for, else
exponential with jitter), within :attr:`RetryPolicy.retries`; a failure no retry helps (a missing
key, a bad request, an exhausted quota …) ends the reply at once, with its reason. The SDKs' own
retries are off for a run (``max_retries = 0``), so retries are not multiplied.

Every attempt is reported (:class:`AttemptReport`): ``ok``, ``retried`` or ``failed``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from backends.base import (
    Backend,
    Conversation,
    ProgressCallback,
    StreamDone,
    StreamError,
    StreamEvent,
    TextDelta,
)
from kurabe.runs.endpoints import AdaptiveLimit

FAIL_FAST_KINDS = frozenset(
    {
        "missing_key",
        "auth",
        "quota",
        "context_overflow",
        "model_not_found",
        "model_file",
        "bad_request",
        "cancelled",
    }
)
"""Error kinds no retry can help: the reply fails at once with its reason."""


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4
    """Retries per reply after its first request (the budget)."""
    backoff_s: float = 0.5
    """The first wait; doubled for each retry, with jitter."""
    max_backoff_s: float = 20.0
    stall_timeout_s: float | None = 120.0
    """An attempt with no output for this long is dropped and retried (None: never)."""

    def wait_before(self, retry: int, error: StreamError) -> float:
        """Seconds to wait before retry number ``retry`` (1-based) after ``error``."""
        if error.retry_after_s is not None:
            return float(min(max(error.retry_after_s, 0.0), self.max_backoff_s * 3))
        base: float = min(self.backoff_s * 2.0 ** (retry - 1), self.max_backoff_s)
        return base * (0.5 + random.random() / 2)

    def should_retry(self, error: StreamError, retries_done: int) -> bool:
        return error.retryable and error.kind not in FAIL_FAST_KINDS and retries_done < self.retries


@dataclass(frozen=True)
class AttemptReport:
    """One request made for a reply."""

    profile_name: str
    turn: int
    attempt: int
    """1 for the first request."""
    endpoint: str
    outcome: str
    """``ok``, ``retried`` (another request follows) or ``failed`` (the reply failed)."""
    error_kind: str | None
    reason: str
    duration_s: float


def _user_turn(conversation: Conversation) -> int:
    """Which turn of the session a conversation asks (0-based): its user lines less one."""
    return max(0, sum(1 for message in conversation.turns if message.role == "user") - 1)


class RetryingBackend(Backend):
    """A pane's backend behind its endpoint's limit and the run's retry policy."""

    def __init__(
        self,
        inner: Backend,
        *,
        profile_name: str,
        limit: AdaptiveLimit,
        policy: RetryPolicy,
        on_attempt: Callable[[AttemptReport], None],
        shared: bool = False,
    ) -> None:
        self.inner = inner
        self.profile_name = profile_name
        self.limit = limit
        self.policy = policy
        self.on_attempt = on_attempt
        self.shared = shared
        """True when ``inner`` serves other sessions too (an API backend: one client and its
        open connections for the whole run); then its owner loads and closes it."""

    async def stream(self, conversation: Conversation) -> AsyncIterator[StreamEvent]:
        turn = _user_turn(conversation)
        retries = 0
        while True:
            started = time.perf_counter()
            parts, final = await self._attempt(conversation)
            duration = time.perf_counter() - started
            if isinstance(final, StreamDone):
                self._report(turn, retries + 1, "ok", None, "", duration)
                for text in parts:
                    yield TextDelta(text)
                yield final
                return
            if self.policy.should_retry(final, retries):
                self._report(turn, retries + 1, "retried", final.kind, final.reason, duration)
                retries += 1
                await asyncio.sleep(self.policy.wait_before(retries, final))
                continue
            self._report(turn, retries + 1, "failed", final.kind, final.reason, duration)
            tries = f" after {retries + 1} requests" if retries else ""
            yield StreamError(
                reason=f"{final.reason}{tries}",
                retryable=final.retryable and final.kind not in FAIL_FAST_KINDS,
                kind=final.kind,
                partial=False,
                retry_after_s=final.retry_after_s,
                prompt_tokens=final.prompt_tokens,
                ttft_s=None,
                total_s=duration,
            )
            return

    async def _attempt(
        self, conversation: Conversation
    ) -> tuple[list[str], StreamDone | StreamError]:
        """One request: its whole text and its final event (an error for a stall or a stream
        that ended without one)."""
        stall = self.policy.stall_timeout_s
        parts: list[str] = []
        final: StreamDone | StreamError | None = None
        async with self.limit.slot():
            events = self.inner.stream(conversation)
            iterator = events.__aiter__()
            try:
                while True:
                    try:
                        event = await asyncio.wait_for(iterator.__anext__(), stall)
                    except StopAsyncIteration:
                        break
                    except asyncio.TimeoutError:
                        final = StreamError(
                            reason=f"no output for {stall:g} s: stalled",
                            retryable=True,
                            kind="timeout",
                            partial=bool(parts),
                        )
                        break
                    if isinstance(event, TextDelta):
                        parts.append(event.text)
                    else:
                        final = event
                        break
            finally:
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    await aclose()
            if final is None:
                final = StreamError(
                    reason="the stream ended without a final event",
                    retryable=True,
                    kind="connection",
                    partial=bool(parts),
                )
            if isinstance(final, StreamDone):
                self.limit.succeeded()
            elif final.kind == "rate_limit":
                self.limit.throttled(self.limit.in_flight - 1)
        return parts, final

    def _report(
        self, turn: int, attempt: int, outcome: str, kind: str | None, reason: str, duration: float
    ) -> None:
        self.on_attempt(
            AttemptReport(
                profile_name=self.profile_name,
                turn=turn,
                attempt=attempt,
                endpoint=self.limit.endpoint.label,
                outcome=outcome,
                error_kind=kind,
                reason=reason,
                duration_s=duration,
            )
        )

    # -- the rest is the inner backend's ------------------------------------------------------

    async def load(self, progress: ProgressCallback | None = None) -> None:
        if self.shared:
            return
        await self.inner.load(progress)
        capacity = self.inner.parallel_capacity
        if capacity is not None:
            self.limit.set_ceiling(capacity)

    def header(self) -> str:
        return self.inner.header()

    def settings_snapshot(self) -> dict[str, Any]:
        return self.inner.settings_snapshot()

    def unusable_reason(self) -> str | None:
        return self.inner.unusable_reason()

    @property
    def offloaded_layers(self) -> int:
        return self.inner.offloaded_layers

    @property
    def shares_compute(self) -> bool:
        return self.inner.shares_compute

    @property
    def shared_by(self) -> int:
        return self.inner.shared_by

    @property
    def parallel_capacity(self) -> int | None:
        return self.inner.parallel_capacity

    @property
    def model_key(self) -> str | None:
        return self.inner.model_key

    async def aclose(self) -> None:
        if not self.shared:
            await self.inner.aclose()
