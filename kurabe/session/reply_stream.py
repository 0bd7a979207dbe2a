"""One pane's reply to one turn, from its first request to its stored end.

:class:`ReplyStream` is created by :class:`~kurabe.session.comparison.ComparisonSession` for every
reply it runs. It waits for the CPU when the session says so, streams the backend's events, reports
them as :mod:`kurabe.session.events` through the session's emitter and stores the reply: started
with the request, its partial text with the first delta and then at most every
:data:`PARTIAL_FLUSH_S` seconds, and its end as complete (with figures and checks), failed,
cancelled or timed out. A watchdog cancels a stream that gives no output for the stall timeout.

Like Textual's ``Worker``, a stream owns its run: :meth:`ReplyStream.start` creates its task,
:meth:`ReplyStream.cancel` stops it (a stream not yet begun is cancelled as it begins, so every
cancel ends as a stored reply), :attr:`ReplyStream.state` says where it is
(:class:`StreamState`) and :attr:`ReplyStream.done` whether its task has ended.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from collections.abc import Callable
from typing import Any

from backends.base import Conversation, StreamDone, StreamError, TextDelta, one_line
from kurabe.session.compute_sharing import ComputeTurnstile
from kurabe.session.events import PaneDelta, PaneFailed, PaneFinished, PaneStarted, SessionEvent
from kurabe.session.pane import Pane
from kurabe.session.reply_figures import compute_figures
from kurabe.session.turns import ReplyState, SessionTurns
from kurabe.store.database import StoreUnavailable
from kurabe.store.store import Store
from personas import Persona

log = logging.getLogger(__name__)

PARTIAL_FLUSH_S = 0.5
"""How often a streaming reply's partial text is written to the database."""


class StreamState(enum.Enum):
    """Where a :class:`ReplyStream` is: created, waiting for the CPU, streaming, or ended."""

    PENDING = "pending"
    """Created; its task has not begun."""
    WAITING = "waiting"
    """Begun, waiting for its turn on the CPU."""
    STREAMING = "streaming"
    """Reading the backend's stream."""
    COMPLETE = "complete"
    FAILED = "failed"
    """Ended by an error or a stall (its partial text kept)."""
    CANCELLED = "cancelled"
    """Ended by :meth:`ReplyStream.cancel` or a cancelled task (its partial text kept)."""

    @property
    def ended(self) -> bool:
        return self in (StreamState.COMPLETE, StreamState.FAILED, StreamState.CANCELLED)


class ReplyStream:
    """One pane's reply in progress: :meth:`start` it once, :meth:`cancel` it, :meth:`wait` for
    it; :attr:`state` says where it is."""

    def __init__(
        self,
        pane: Pane,
        turn: int,
        *,
        store: Store,
        turns: SessionTurns,
        persona: Persona,
        emit: Callable[[SessionEvent], None],
        conversation: Callable[[], Conversation],
        stall_timeout_s: float | None,
    ) -> None:
        self.pane = pane
        self.turn = turn
        self.reply_id: int | None = None
        """The stored reply, once the request has started."""
        self.version = 0
        self._task: asyncio.Task[None] | None = None
        self._state = StreamState.PENDING
        self._cancel_requested = False
        self._timed_out = False
        self._parts: list[str] = []
        self._started = 0.0
        self._first_token: float | None = None
        self._last_activity = 0.0
        self._store = store
        self._turns = turns
        self._persona = persona
        self._emit = emit
        self._conversation = conversation
        self._stall_timeout_s = stall_timeout_s

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    @property
    def state(self) -> StreamState:
        return self._state

    @property
    def done(self) -> bool:
        """True once the task has ended: the reply is stored, its stream closed."""
        return self._task is not None and self._task.done()

    def start(self, turnstile: ComputeTurnstile | None = None, model_key: str = "") -> None:
        """Start the task that streams the reply, first waiting in ``turnstile`` for
        ``model_key``'s turn when given."""
        if self._task is not None:
            raise RuntimeError("a reply stream starts once")
        self._task = asyncio.create_task(
            self._run(turnstile, model_key), name=f"kurabe-pane-{self.pane.label}"
        )
        self._task.add_done_callback(self._task_ended)

    def cancel(self) -> bool:
        """Stop the reply: its partial text is kept and it is stored as cancelled. A stream whose
        task has not begun is cancelled as it begins. False when it had already ended."""
        if self._task is None or self._task.done():
            return False
        self._cancel_requested = True
        if self._state is not StreamState.PENDING:
            self._task.cancel()
        return True

    async def wait(self) -> None:
        """Return when the task has ended; a cancellation that :meth:`cancel` did not ask for
        (the session's own task cancelled) passes on."""
        if self._task is None:
            raise RuntimeError("the reply stream was never started")
        await self._task

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if not self._state.ended:  # cancelled before it began: nothing was stored
            self._state = StreamState.CANCELLED

    async def _run(self, turnstile: ComputeTurnstile | None, model_key: str) -> None:
        """A cancel asked for with :meth:`cancel`, or the watchdog's, ends here as a stored
        reply; any other cancellation is stored and passed on."""
        self._state = StreamState.WAITING if turnstile is not None else StreamState.STREAMING
        try:
            if self._cancel_requested:
                raise asyncio.CancelledError
            if turnstile is not None:
                async with turnstile.hold(model_key):
                    self._state = StreamState.STREAMING
                    await self._stream()
            else:
                await self._stream()
        except asyncio.CancelledError:
            if self._timed_out:
                _uncancel()
                self._end_failed(
                    StreamError(
                        reason=f"no output for {self._stall_timeout_s:g} s: timed out",
                        retryable=True,
                        kind="timeout",
                        partial=bool(self._parts),
                    ),
                )
                return
            self._end_cancelled()
            if self._cancel_requested:
                _uncancel()
                return
            raise
        except StoreUnavailable:
            # The database went away, not the backend: the reply cannot be saved either way,
            # and whoever runs the session stops with that reason (resumable).
            raise
        except Exception as exc:  # a backend that raised instead of yielding a StreamError
            log.exception("pane %s stream raised", self.pane.label)
            self._end_failed(
                StreamError(
                    reason=one_line(f"{type(exc).__name__}: {exc}"),
                    retryable=True,
                    partial=bool(self._parts),
                ),
            )

    def _begin_reply(self) -> None:
        pane = self.pane
        self.reply_id, self.version = self._store.replies.start_reply(
            self._turns.ids[self.turn], pane.db_id
        )
        pane.status = "busy"
        pane.last_reply_id = self.reply_id
        pane.last_error = None
        self._turns.set_reply(
            pane.index, self.turn, ReplyState(self.reply_id, self.version, "", "streaming")
        )
        self._emit(PaneStarted(pane.index, self.turn, self.reply_id))

    async def _stream(self) -> None:
        pane = self.pane
        conversation = self._conversation()
        self._begin_reply()
        reply_id = self.reply_id
        assert reply_id is not None
        clock = time.perf_counter
        self._started = self._last_activity = clock()
        last_flush = float("-inf")  # the first delta is saved at once, then every half second
        watchdog = None
        if self._stall_timeout_s is not None and self._stall_timeout_s > 0:
            watchdog = asyncio.create_task(self._watchdog(self._stall_timeout_s))
        pane_index = pane.index
        parts = self._parts
        emit = self._emit
        stream = pane.backend.stream(conversation)
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    if not event.text:
                        continue
                    now = clock()
                    self._last_activity = now
                    if self._first_token is None:
                        self._first_token = now
                    parts.append(event.text)
                    emit(PaneDelta(pane_index, reply_id, event.text))
                    if now - last_flush >= PARTIAL_FLUSH_S:
                        self._store.replies.update_partial(reply_id, "".join(parts))
                        last_flush = now
                elif isinstance(event, StreamDone):
                    self._end_done(event)
                    return
                elif isinstance(event, StreamError):
                    self._end_failed(event)
                    return
            self._end_failed(
                StreamError(
                    reason="the stream ended without a final event",
                    retryable=True,
                    partial=bool(parts),
                ),
            )
        finally:
            if watchdog is not None:
                watchdog.cancel()
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.exception("closing pane %s's stream failed", pane.label)

    async def _watchdog(self, timeout: float) -> None:
        interval = max(min(timeout / 4, 1.0), 0.01)
        while True:
            await asyncio.sleep(interval)
            if time.perf_counter() - self._last_activity > timeout:
                self._timed_out = True
                if self._task is not None:
                    self._task.cancel()
                return

    def _measured_ttft(self) -> float | None:
        return None if self._first_token is None else self._first_token - self._started

    def _settle(self, text: str, status: str) -> None:
        """Keep the reply as the pane's newest for this turn and rebuild the pane's history."""
        pane = self.pane
        assert self.reply_id is not None
        self._turns.set_reply(
            pane.index, self.turn, ReplyState(self.reply_id, self.version, text, status)
        )
        pane.status = "ready" if status == "complete" else "failed"
        self._state = _ENDED.get(status, StreamState.FAILED)
        pane.history = self._turns.history_before(pane.index, len(self._turns))

    def _end_done(self, done: StreamDone) -> None:
        assert self.reply_id is not None
        text = self.text
        ttft = done.ttft_s if done.ttft_s is not None else self._measured_ttft()
        total = done.total_s if done.total_s else time.perf_counter() - self._started
        figures = dataclasses.replace(
            compute_figures(
                len(text),
                prompt_tokens=done.prompt_tokens,
                completion_tokens=done.completion_tokens,
                ttft_s=ttft,
                total_s=total,
                context_size=done.context_size,
            ),
            cached_prompt_tokens=done.cached_prompt_tokens,
            decoded_alongside=done.decoded_alongside,
            history_trimmed_turns=done.history_trimmed_turns,
            max_tokens_clamped=done.max_tokens_clamped,
        )
        checks = self._checks(text, done)
        self._store.replies.finish_reply(
            self.reply_id,
            text=text,
            finish_reason=done.finish_reason,
            figures=figures,
            checks=checks,
        )
        self.pane.last_error = None
        self._settle(text, "complete")
        self._emit(
            PaneFinished(
                pane=self.pane.index,
                reply_id=self.reply_id,
                text=text,
                finish_reason=done.finish_reason,
                figures=figures,
                checks=checks,
            )
        )

    def _checks(self, text: str, done: StreamDone) -> dict[str, Any]:
        from kurabe.checks.japanese import run_checks

        previous = self._turns.reply(self.pane.index, self.turn - 1) if self.turn > 0 else None
        try:
            report = run_checks(
                text,
                self._persona,
                previous_reply=previous.text if previous is not None and previous.text else None,
                finish_reason=done.finish_reason,
                completion_tokens=done.completion_tokens,
            )
            result: dict[str, Any] = report.to_dict()
            return result
        except Exception:
            log.exception("the Japanese checks failed on reply %s", self.reply_id)
            return {}

    def _end_failed(self, error: StreamError) -> None:
        if self.reply_id is None:
            self._begin_reply()
        assert self.reply_id is not None
        text = self.text
        ttft = error.ttft_s if error.ttft_s is not None else self._measured_ttft()
        total = error.total_s if error.total_s is not None else time.perf_counter() - self._started
        figures = compute_figures(
            len(text),
            prompt_tokens=error.prompt_tokens,
            completion_tokens=error.completion_tokens,
            ttft_s=ttft,
            total_s=total if self._started else None,
        )
        reason = one_line(error.reason)
        status = "cancelled" if error.kind == "cancelled" else "failed"
        self._store.replies.fail_reply(
            self.reply_id,
            status=status,
            text=text,
            error=reason,
            error_kind=error.kind,
            retryable=error.retryable,
            figures=figures,
        )
        self.pane.last_error = reason
        self._settle(text, status)
        self._emit(
            PaneFailed(
                pane=self.pane.index,
                reply_id=self.reply_id,
                reason=reason,
                retryable=error.retryable,
                partial_text=text,
                cancelled=error.kind == "cancelled",
            )
        )

    def _end_cancelled(self) -> None:
        self._end_failed(
            StreamError(
                reason="cancelled", retryable=True, kind="cancelled", partial=bool(self._parts)
            ),
        )


_ENDED = {"complete": StreamState.COMPLETE, "cancelled": StreamState.CANCELLED}
"""A stored reply's status → the stream's end state (any other status: failed)."""


def _uncancel() -> None:
    """Clear the current task's cancel request: the cancellation ended here, as a stored reply."""
    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()
