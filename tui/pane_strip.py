"""The streaming view: the row of panes, and the session's events turned into what they show.

Layout: equal-width columns, or a horizontally scrolling row when the terminal is too narrow for
all of them (each pane then keeps at least :data:`MIN_PANE_WIDTH` cells and the focused pane is
scrolled into view).

Streaming: text deltas are only buffered here; a timer flushes each pane's buffer into its
transcript every :data:`FLUSH_INTERVAL_S`, so six panes streaming hundreds of tokens a second cost
a few small appends per pane per flush. Every other event is applied at once, after flushing what
that pane had buffered, so the order on screen is the session's order. In a blind session nothing
shown names a model until the reveal: headers carry only the letter, and load messages and errors
have model names replaced by it.

The badges under a reply (scores, picks, the judge) are not this view's business: it asks
:attr:`PaneStrip.badges_for` (set by the screen) whenever a reply changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.containers import HorizontalScroll
from textual.events import Resize

from backends.api_errors import url_host
from backends.profiles import ModelProfile
from kurabe.checks.report import CheckFlag
from kurabe.core.blind import shown_name
from kurabe.session.comparison import ComparisonSession
from kurabe.session.events import (
    PaneDelta,
    PaneFailed,
    PaneFinished,
    PaneLoading,
    PaneReady,
    PaneStarted,
    SessionEvent,
    TurnFinished,
    TurnStarted,
)
from tui.model_pane import ModelPane, StatusState, format_figures
from tui.transcript_view import Span

MIN_PANE_WIDTH = 32
"""Below this a Japanese reply wraps after ~15 characters: scroll sideways instead."""
FLUSH_INTERVAL_S = 0.05
"""How often streamed text is pushed into the panes (20 times a second)."""
LIVE_STATUS_INTERVAL_S = 0.25
"""How often a streaming pane's status line (characters, 字/s) is updated."""
BACKEND_LABELS = {"llama_cpp": "llama.cpp", "openai": "OpenAI API", "anthropic": "Anthropic API"}


def columns_that_fit(width: int, panes: int) -> int:
    """How many panes are shown side by side in ``width`` cells."""
    return max(1, min(panes, width // MIN_PANE_WIDTH))


def backend_label(profile: ModelProfile) -> str:
    """What the header says before the backend has described itself (while loading)."""
    if profile.base_url:
        return url_host(profile.base_url)
    return BACKEND_LABELS.get(profile.backend, profile.backend)


@dataclass
class ReplyInfo:
    """What the view shows about one reply besides its text: where it is and how it ended."""

    pane: int
    turn: int
    status: str = "streaming"
    flags: list[CheckFlag] = field(default_factory=list)
    finish_reason: str | None = None


@dataclass
class PaneStream:
    """Per-pane streaming state of the view."""

    reply_id: int | None = None
    """The pane's latest reply (what 1–5, t, n, r, g and y act on)."""
    pending: list[str] = field(default_factory=list)
    pending_reply: int | None = None
    started_at: float = 0.0
    first_text_at: float | None = None
    streamed_chars: int = 0
    status_shown_at: float = 0.0
    reply_status: tuple[str, StatusState, str | None] | None = None
    """The status line of the latest reply (text, state, short), shown again after a reload."""


def no_badges(reply_id: int) -> list[Span]:
    return []


class PaneStrip(HorizontalScroll, can_focus=False, inherit_bindings=False):
    """Every pane of a session, kept up to date from the session's events."""

    DEFAULT_CSS = """
    PaneStrip {
        height: 1fr;
        overflow-x: auto;
        overflow-y: hidden;
        scrollbar-size-horizontal: 1;
    }
    """

    def __init__(self, session: ComparisonSession, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.streams = [PaneStream() for _ in session.panes]
        self.replies: dict[int, ReplyInfo] = {}
        """Reply id → where it is shown and how it ended."""
        self.running_turn: int | None = None
        self.badges_for: Callable[[int], list[Span]] = no_badges
        """Reply id → its badges; the screen sets this (the rating controller's)."""

    def compose(self) -> ComposeResult:
        for pane in self.session.panes:
            yield ModelPane(pane.index, pane.label, id=f"pane-{pane.index}")

    # -- layout --------------------------------------------------------------------------------

    @property
    def panes(self) -> list[ModelPane]:
        return list(self.query_children(ModelPane))

    def pane_widget(self, index: int) -> ModelPane:
        return self.query_one(f"#pane-{index}", ModelPane)

    def on_resize(self, event: Resize) -> None:
        self.fit_columns(event.size.width)

    def on_mount(self) -> None:
        self.call_after_refresh(lambda: self.fit_columns(self.size.width))
        for pane in self.session.panes:
            self.show_title(pane.index)
            widget = self.pane_widget(pane.index)
            if pane.unusable:
                widget.set_status(f"✗ {self.redact(pane.last_error or 'unusable')}", "unusable")
            elif pane.status == "loading":
                widget.set_status("loading…", "loading")
            else:
                widget.set_status("ready", "ready")
        if self.session.user_turns:
            self._restore_transcript()
        self.set_interval(FLUSH_INTERVAL_S, self.flush_pending, name="kurabe-flush")

    def fit_columns(self, width: int) -> None:
        panes = self.panes
        if not panes or width <= 0:
            return
        shown = columns_that_fit(width, len(panes))
        narrow = shown < len(panes)
        self.set_class(narrow, "-narrow")
        for pane in panes:
            if narrow:
                pane.styles.width = width // shown
            else:
                pane.styles.width = "1fr"

    def on_descendant_focus(self) -> None:
        focused = self.screen.focused
        for pane in self.panes:
            if focused is not None and pane in focused.ancestors_with_self:
                self.scroll_to_widget(pane, animate=False)
                break

    # -- the session's events ------------------------------------------------------------------

    def buffer(self, event: PaneDelta) -> None:
        """Keep a delta until the next flush (the cheap path, called per token)."""
        stream = self.streams[event.pane]
        if stream.pending_reply is not None and stream.pending_reply != event.reply_id:
            self._flush_pane(event.pane)
        stream.pending_reply = event.reply_id
        stream.pending.append(event.text)

    def apply(self, event: SessionEvent) -> None:
        """Show any other session event at once (after the pane's buffered text)."""
        if isinstance(event, PaneLoading):
            self.pane_widget(event.pane).set_status(
                f"loading… {self.redact(event.message)}", "loading"
            )
        elif isinstance(event, PaneReady):
            self.show_title(event.pane)
            last = self.streams[event.pane].reply_status
            if last is None:
                self.pane_widget(event.pane).set_status("ready", "ready")
            else:
                self.pane_widget(event.pane).set_status(last[0], last[1], short=last[2])
        elif isinstance(event, TurnStarted):
            self.running_turn = event.turn
            for pane in self.session.panes:
                widget = self.pane_widget(pane.index)
                widget.transcript.add_user(event.text, turn=event.turn)
                if pane.status == "ready":
                    # Local CPU panes take turns; until PaneStarted this one is queued.
                    widget.set_status("waiting for its turn…", "busy")
        elif isinstance(event, PaneStarted):
            self._on_pane_started(event)
        elif isinstance(event, PaneFinished):
            self._flush_pane(event.pane)
            self._on_pane_finished(event)
        elif isinstance(event, PaneFailed):
            self._flush_pane(event.pane)
            self._on_pane_failed(event)
        elif isinstance(event, TurnFinished):
            self.running_turn = None

    def _on_pane_started(self, event: PaneStarted) -> None:
        stream = self.streams[event.pane]
        transcript = self.pane_widget(event.pane).transcript
        old = stream.reply_id
        old_info = self.replies.get(old) if old is not None else None
        if old is not None and old_info is not None and old_info.turn == event.turn:
            transcript.replace_reply(old, event.reply_id)  # a retry or a regeneration
        else:
            transcript.start_reply(event.reply_id, turn=event.turn)
        self.replies[event.reply_id] = ReplyInfo(pane=event.pane, turn=event.turn)
        stream.reply_id = event.reply_id
        stream.pending = []
        stream.pending_reply = event.reply_id
        stream.started_at = time.perf_counter()
        stream.first_text_at = None
        stream.streamed_chars = 0
        stream.status_shown_at = 0.0
        self.pane_widget(event.pane).set_status("waiting for the first token…", "busy")
        self.show_badges(event.reply_id)

    def _on_pane_finished(self, event: PaneFinished) -> None:
        widget = self.pane_widget(event.pane)
        widget.transcript.set_reply_text(event.reply_id, event.text)
        info = self.replies.setdefault(
            event.reply_id, ReplyInfo(pane=event.pane, turn=self.running_turn or 0)
        )
        info.status = "complete"
        info.finish_reason = event.finish_reason
        info.flags = list(report.flags) if (report := event.check_report) else []
        status = format_figures(event.figures)
        short = format_figures(event.figures, compact=True)
        if event.finish_reason == "length":
            status += " · cut at max_tokens"
        self._set_reply_status(event.pane, status, "done", short)
        self.show_badges(event.reply_id)

    def _on_pane_failed(self, event: PaneFailed) -> None:
        widget = self.pane_widget(event.pane)
        reason = self.redact(event.reason)
        if event.reply_id is None:  # could not load: the pane is unusable
            widget.set_status(f"✗ {reason}", "unusable")
            return
        info = self.replies.setdefault(
            event.reply_id, ReplyInfo(pane=event.pane, turn=self.running_turn or 0)
        )
        info.status = "cancelled" if event.cancelled else "failed"
        transcript = widget.transcript
        if event.partial_text and transcript.reply_text(event.reply_id) != event.partial_text:
            transcript.set_reply_text(event.reply_id, event.partial_text)
        elif not transcript.has_reply(event.reply_id):
            # never started: the pane's conversation stopped at an earlier failed turn
            transcript.set_reply_text(event.reply_id, f"({reason})")
        transcript.set_reply_style(event.reply_id, "transcript--reply-cut")
        if event.cancelled:
            self._set_reply_status(event.pane, "⏹ cancelled · r: retry", "cancelled")
        elif event.retryable:
            self._set_reply_status(event.pane, f"✗ {reason} · r: retry", "failed")
        else:
            self._set_reply_status(event.pane, f"✗ {reason}", "failed")
        self.show_badges(event.reply_id)

    def _set_reply_status(
        self, pane: int, text: str, state: StatusState, short: str | None = None
    ) -> None:
        self.streams[pane].reply_status = (text, state, short)
        self.pane_widget(pane).set_status(text, state, short=short)

    # -- streaming flush -----------------------------------------------------------------------

    def flush_pending(self) -> None:
        """Push every pane's buffered text into its transcript (the timer calls this)."""
        for index, stream in enumerate(self.streams):
            if stream.pending:
                self._flush_pane(index)

    def _flush_pane(self, index: int) -> None:
        stream = self.streams[index]
        if not stream.pending or stream.pending_reply is None:
            stream.pending = []
            return
        text = "".join(stream.pending)
        stream.pending = []
        widget = self.pane_widget(index)
        widget.transcript.append(stream.pending_reply, text)
        now = time.perf_counter()
        if stream.first_text_at is None:
            stream.first_text_at = now
        stream.streamed_chars += len(text)
        if now - stream.status_shown_at < LIVE_STATUS_INTERVAL_S:
            return
        stream.status_shown_at = now
        elapsed = now - stream.first_text_at
        ttft = stream.first_text_at - stream.started_at
        live = f"streaming · ttft {ttft:.2f}s · {stream.streamed_chars}字"
        short = f"… ttft {ttft:.2f}s {stream.streamed_chars}字"
        if elapsed > 0.2:
            live += f" · {stream.streamed_chars / elapsed:.0f}字/s"
            short += f" {stream.streamed_chars / elapsed:.0f}字/s"
        widget.set_status(live, "busy", short=short)

    # -- titles and badges ---------------------------------------------------------------------

    def show_title(self, index: int) -> None:
        pane = self.session.panes[index]
        widget = self.pane_widget(index)
        name = shown_name(pane.label, pane.profile.name, hidden=self.session.hidden)
        if self.session.hidden:
            widget.set_title(name)
            return
        detail = pane.header if pane.header and pane.header != pane.profile.name else ""
        widget.set_title(name, detail or backend_label(pane.profile))

    def show_titles(self) -> None:
        for pane in self.session.panes:
            self.show_title(pane.index)

    def redact(self, text: str) -> str:
        """In a blind session, replace anything that names a model by the pane's letter."""
        if not self.session.hidden:
            return text
        for pane in self.session.panes:
            names = {pane.profile.name, pane.profile.model}
            if pane.profile.model_path is not None:
                names.add(pane.profile.model_path.name)
            for name in sorted(names, key=len, reverse=True):
                if len(name) >= 3:
                    text = text.replace(name, f"model {pane.label}")
        return text

    def show_badges(self, reply_id: int) -> None:
        info = self.replies.get(reply_id)
        if info is None:
            return
        self.pane_widget(info.pane).transcript.set_badges(reply_id, self.badges_for(reply_id))

    def show_badges_of_turn(self, turn: int) -> None:
        for reply_id, info in self.replies.items():
            if info.turn == turn:
                self.show_badges(reply_id)

    def show_all_badges(self) -> None:
        for reply_id in self.replies:
            self.show_badges(reply_id)

    def latest_reply(self, pane: int) -> int | None:
        """The pane's latest reply on screen (what the rating keys act on), or None."""
        return self.streams[pane].reply_id

    # -- restoring a resumed session -----------------------------------------------------------

    def _restore_transcript(self) -> None:
        for turn in self.session.transcript():
            for widget in self.panes:
                widget.transcript.add_user(turn.text, turn=turn.index)
            for pane_index, reply in turn.replies.items():
                widget = self.pane_widget(pane_index)
                widget.transcript.start_reply(reply.reply_id, turn=turn.index, text=reply.text)
                self.replies[reply.reply_id] = ReplyInfo(
                    pane=pane_index,
                    turn=turn.index,
                    status=reply.status,
                    flags=list(report.flags) if (report := reply.check_report) else [],
                    finish_reason=reply.finish_reason,
                )
                if reply.status != "complete":
                    widget.transcript.set_reply_style(reply.reply_id, "transcript--reply-cut")
                self.streams[pane_index].reply_id = reply.reply_id
                if reply.status == "complete":
                    self._set_reply_status(
                        pane_index,
                        format_figures(reply.figures),
                        "done",
                        format_figures(reply.figures, compact=True),
                    )
                elif reply.status == "cancelled":
                    self._set_reply_status(pane_index, "⏹ cancelled · r: retry", "cancelled")
                else:
                    reason = self.redact(reply.error or reply.status)
                    self._set_reply_status(pane_index, f"✗ {reason} · r: retry", "failed")
