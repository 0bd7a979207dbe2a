"""Events a comparison session emits for whoever displays it (the TUI, the headless replay).

Small frozen dataclasses, delivered in order on the session's event loop to every subscriber by
:class:`EventListeners`. ``pane`` is the pane's index in the session (0-based, display order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kurabe.checks.report import CheckReport, load_check_report
from kurabe.store.records import ReplyFigures

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PaneLoading:
    pane: int
    message: str
    """Progress of loading the model (assembling the embedded GGUF, loading weights…)."""


@dataclass(frozen=True, slots=True)
class PaneReady:
    pane: int
    header: str
    """Quantization and GPU layers offloaded, or the API host."""


@dataclass(frozen=True, slots=True)
class TurnStarted:
    turn: int
    """0-based index of the user turn."""
    text: str


@dataclass(frozen=True, slots=True)
class PaneStarted:
    pane: int
    turn: int
    reply_id: int


@dataclass(frozen=True, slots=True)
class PaneDelta:
    pane: int
    reply_id: int
    text: str


@dataclass(frozen=True, slots=True)
class PaneFinished:
    pane: int
    reply_id: int
    text: str
    finish_reason: str
    figures: ReplyFigures
    checks: dict[str, Any] = field(default_factory=dict)
    """The automatic Japanese checks' report for this reply as stored (see
    kurabe.checks.japanese)."""

    @property
    def check_report(self) -> CheckReport | None:
        """:attr:`checks`, typed; None when the checks did not run."""
        return load_check_report(self.checks)


@dataclass(frozen=True, slots=True)
class PaneFailed:
    pane: int
    reply_id: int | None
    reason: str
    """One line."""
    retryable: bool
    partial_text: str = ""
    """Text that had streamed before the failure; kept and marked incomplete."""
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class TurnFinished:
    turn: int


SessionEvent = (
    PaneLoading
    | PaneReady
    | TurnStarted
    | PaneStarted
    | PaneDelta
    | PaneFinished
    | PaneFailed
    | TurnFinished
)


class EventListeners:
    """One session's subscribers, called synchronously, in order, on the session's event loop."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[SessionEvent], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def bind_loop(self) -> None:
        """Take the running loop as the session's, the first time the session runs anything."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()

    def subscribe(self, listener: Callable[[SessionEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; returns the function that stops it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: SessionEvent) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("session listener failed on %r", type(event).__name__)

    def emit_threadsafe(self, event: SessionEvent) -> None:
        """:meth:`emit`, from any thread (a backend loading its model off the loop)."""
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self.emit, event)
        else:
            self.emit(event)
