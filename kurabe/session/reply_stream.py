"""One pane's reply to one turn, from its first request to its stored end.

:class:`ReplyStream` is created by :class:`~kurabe.session.comparison.ComparisonSession` for every
reply it runs. It waits for the CPU when the session says so, streams the backend's events, reports
them as :mod:`kurabe.session.events` through the session's emitter and stores the reply: started
with the request, its partial text with the first delta and then at most every
:data:`PARTIAL_FLUSH_S` seconds, and its end as complete (with figures and checks), failed,
cancelled or timed out. A watchdog cancels a stream that gives no output for the stall timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
from kurabe.store.store import Store
from personas import Persona

log = logging.getLogger(__name__)

PARTIAL_FLUSH_S = 0.5
"""How often a streaming reply's partial text is written to the database."""


class ReplyStream:
    """One pane's reply in progress; :meth:`run` is the task the session starts for it."""

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
        self.task: asyncio.Task[Any] | None = None
        self.reply_id: int | None = None
        self.version = 0
        self.parts: list[str] = []
        self.started = 0.0
        self.first_token: float | None = None
        self.last_activity = 0.0
        self.timed_out = False
        self._store = store
        self._turns = turns
        self._persona = persona
        self._emit = emit
        self._conversation = conversation
        self._stall_timeout_s = stall_timeout_s

    @property
    def text(self) -> str:
        return "".join(self.parts)

    async def run(self, turnstile: ComputeTurnstile | None = None, model_key: str = "") -> None:
        """Stream the reply, first waiting in ``turnstile`` for ``model_key``'s turn when given.

        A cancel the pane asked for, or the watchdog's, ends here as a stored reply; any other
        cancellation is stored and passed on."""
        pane = self.pane
        pane._entered = True
        try:
            if pane._cancel_requested:
                raise asyncio.CancelledError
            if turnstile is not None:
                async with turnstile.hold(model_key):
                    await self._stream()
            else:
                await self._stream()
        except asyncio.CancelledError:
            if self.timed_out:
                _uncancel()
                self._end_failed(
                    StreamError(
                        reason=f"no output for {self._stall_timeout_s:g} s: timed out",
                        retryable=True,
                        kind="timeout",
                        partial=bool(self.parts),
                    ),
                )
                return
            self._end_cancelled()
            if pane._cancel_requested:
                _uncancel()
                return
            raise
        except Exception as exc:  # a backend that raised instead of yielding a StreamError
            log.exception("pane %s stream raised", pane.label)
            self._end_failed(
                StreamError(
                    reason=one_line(f"{type(exc).__name__}: {exc}"),
                    retryable=True,
                    partial=bool(self.parts),
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
        self.started = self.last_activity = clock()
        last_flush = float("-inf")  # the first delta is saved at once, then every half second
        watchdog = None
        if self._stall_timeout_s is not None and self._stall_timeout_s > 0:
            watchdog = asyncio.create_task(self._watchdog(self._stall_timeout_s))
        pane_index = pane.index
        parts = self.parts
        emit = self._emit
        stream = pane.backend.stream(conversation)
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    if not event.text:
                        continue
                    now = clock()
                    self.last_activity = now
                    if self.first_token is None:
                        self.first_token = now
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
            if time.perf_counter() - self.last_activity > timeout:
                self.timed_out = True
                if self.task is not None:
                    self.task.cancel()
                return

    def _measured_ttft(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.started

    def _settle(self, text: str, status: str) -> None:
        """Keep the reply as the pane's newest for this turn and rebuild the pane's history."""
        pane = self.pane
        assert self.reply_id is not None
        self._turns.set_reply(
            pane.index, self.turn, ReplyState(self.reply_id, self.version, text, status)
        )
        pane.status = "ready" if status == "complete" else "failed"
        pane.history = self._turns.history_before(pane.index, len(self._turns))

    def _end_done(self, done: StreamDone) -> None:
        assert self.reply_id is not None
        text = self.text
        ttft = done.ttft_s if done.ttft_s is not None else self._measured_ttft()
        total = done.total_s if done.total_s else time.perf_counter() - self.started
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
        total = error.total_s if error.total_s is not None else time.perf_counter() - self.started
        figures = compute_figures(
            len(text),
            prompt_tokens=error.prompt_tokens,
            completion_tokens=error.completion_tokens,
            ttft_s=ttft,
            total_s=total if self.started else None,
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
                reason="cancelled", retryable=True, kind="cancelled", partial=bool(self.parts)
            ),
        )


def _uncancel() -> None:
    """Clear the current task's cancel request: the cancellation ended here, as a stored reply."""
    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()
