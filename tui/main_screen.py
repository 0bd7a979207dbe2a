"""The comparison screen: panes side by side, one input box, replay and keyboard rating.

Session events arrive synchronously on the app's loop (the session runs in workers of this
screen). Text deltas are only buffered here; a timer flushes each pane's buffer into its
transcript every :data:`FLUSH_INTERVAL_S`, so six panes streaming hundreds of tokens a second cost
a few small appends per pane per flush. Every other event is applied at once, after flushing what
that pane had buffered, so the order on screen is the session's order.

Ratings go to the session the moment a key is pressed (the session commits them) and show as
badges under the reply. The judge key (j) asks the LLM judge (:mod:`kurabe.judge`, single mode)
about the latest turn in a worker, so the screen stays responsive; its score is a badge of its
own (⚖), kept hidden until the rater has scored that reply (no anchoring) unless config.toml
says ``judge_badge = "always"``. In a blind session nothing shown names a model until the reveal:
headers carry only the letter, and load messages and errors have model names replaced by it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.content import Content
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static, TextArea
from textual.worker import Worker

from backends import create_backend
from backends.api_errors import url_host
from backends.base import Backend, one_line
from backends.profiles import ModelProfile
from kurabe.errors import KurabeError
from kurabe.events import (
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
from kurabe.judge import ItemResult, Judge, JudgeSummary
from kurabe.session import (
    DEFAULT_TAGS,
    SCORE_LABELS_JA,
    VERDICTS,
    ComparisonSession,
    PickWinner,
    RatingView,
)
from kurabe.store import SessionRecord
from tui.confirm_dialog import ConfirmDialog
from tui.help_screen import HelpScreen
from tui.keymap import MAIN_BINDINGS, PANE_ACTIONS
from tui.model_pane import ModelPane, format_figures
from tui.note_dialog import NoteDialog
from tui.pane_row import PaneRow
from tui.pick_dialog import PickDialog
from tui.prompt_input import PromptInput
from tui.quiet_footer import QuietFooter
from tui.tag_picker import TagPicker
from tui.textflow import make_visible
from tui.textual_internals import focused_without_repaint, paint_pending_changes
from tui.transcript_view import Span
from tui.verdict_dialog import VERDICT_LABELS, VerdictDialog

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.05
"""How often streamed text is pushed into the panes (20 times a second)."""
LIVE_STATUS_INTERVAL_S = 0.25
"""How often a streaming pane's status line (characters, 字/s) is updated."""
KEY_PAINT_WINDOW_S = 0.05
"""For this long after a key, what changed is painted as soon as the screen is idle, without
waiting for Textual's next screen update (which can be up to two frames away)."""


@dataclass
class ReplyInfo:
    """What the screen knows about one reply shown in a pane."""

    pane: int
    turn: int
    status: str = "streaming"
    flags: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class JudgeBadge:
    """What the judge said about one reply."""

    status: str
    """``ok``, ``unparseable`` or ``error``."""
    score: int | None = None


class _BadgeProgress:
    """Hands each judgement of a judge run to the screen as it is made."""

    def __init__(self, screen: MainScreen) -> None:
        self.screen = screen

    def begin(self, record: SessionRecord, judge: Judge, todo: int, skipped: int) -> None:
        pass

    def result(self, record: SessionRecord, result: ItemResult, done: int, todo: int) -> None:
        (reply,) = result.item.replies
        self.screen.judge_results[reply.id] = JudgeBadge(result.status, result.score)
        self.screen._show_badges(reply.id)

    def end(self, summary: JudgeSummary) -> None:
        pass


@dataclass
class PaneState:
    """Per-pane streaming state of the screen."""

    reply_id: int | None = None
    """The pane's latest reply (what 1–5, t, n, r and g act on)."""
    pending: list[str] = field(default_factory=list)
    pending_reply: int | None = None
    started_at: float = 0.0
    first_text_at: float | None = None
    streamed_chars: int = 0
    status_shown_at: float = 0.0
    reply_status: tuple[str, str, str | None] | None = None
    """The status line of the latest reply (text, state, short), shown again after a reload."""


BACKEND_LABELS = {"llama_cpp": "llama.cpp", "openai": "OpenAI API", "anthropic": "Anthropic API"}


def backend_label(profile: ModelProfile) -> str:
    """What the header says before the backend has described itself (while loading)."""
    if profile.base_url:
        return url_host(profile.base_url)
    return BACKEND_LABELS.get(profile.backend, profile.backend)


class MainScreen(Screen[None]):
    """One comparison session on screen."""

    CSS_PATH = "main_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = list(MAIN_BINDINGS)
    AUTO_FOCUS = "#prompt"

    focused: Reactive[Widget | None] = focused_without_repaint()
    """Textual's ``Screen.focused`` without its repaint of the whole screen
    (:mod:`tui.textual_internals`, 1)."""

    def __init__(
        self,
        session: ComparisonSession,
        *,
        score_labels: dict[int, str] | None = None,
        tags: tuple[str, ...] = (),
        load_on_mount: bool = True,
        judge_profile: ModelProfile | None = None,
        judge_badge: str = "after-rating",
        judge_factory: Callable[[ModelProfile], Backend] | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.judge_profile = judge_profile
        self.judge_badge = judge_badge
        self.judge_factory = judge_factory
        self.judge_results: dict[int, JudgeBadge] = {}
        """Reply id → the judge's newest judgement of it (shown as the ⚖ badge)."""
        self._judge: Judge | None = None
        self._judging = False
        self.score_labels = score_labels or dict(SCORE_LABELS_JA)
        self.tags = tags or DEFAULT_TAGS
        self.load_on_mount = load_on_mount
        self.pane_states = [PaneState() for _ in session.panes]
        self.replies: dict[int, ReplyInfo] = {}
        self.ratings: dict[int, RatingView] = {}
        self.picks: dict[int, PickWinner] = {}
        self.verdicts: dict[int, tuple[str, str]] = {}
        self.wait_for_pick = False
        """Replay-all waits for a pick of each turn before sending the next one."""
        self._prefilled_turn: int | None = None
        """The scenario turn whose line sits in the input (edited or not)."""
        self._running_turn: int | None = None
        self._replaying = False
        self._stop_replay = False
        self._pick_made: asyncio.Event | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._expect_visible = False
        self._paint_until = 0.0

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="top-bar", markup=False)
        with PaneRow(id="panes"):
            for pane in self.session.panes:
                yield ModelPane(pane.index, pane.label, id=f"pane-{pane.index}")
        yield Static(id="expect", markup=False)
        yield PromptInput(
            id="prompt",
            placeholder="すべてのペインに送る… (enter: send · ctrl+j: new line · tab: panes)",
        )
        yield QuietFooter()

    @property
    def prompt(self) -> PromptInput:
        return self.query_one("#prompt", PromptInput)

    def pane_widget(self, index: int) -> ModelPane:
        return self.query_one(f"#pane-{index}", ModelPane)

    @property
    def pane_widgets(self) -> list[ModelPane]:
        return [self.pane_widget(pane.index) for pane in self.session.panes]

    def on_mount(self) -> None:
        for pane in self.session.panes:
            self._show_title(pane.index)
            widget = self.pane_widget(pane.index)
            if pane.status == "unusable":
                widget.set_status(f"✗ {self._redact(pane.last_error or 'unusable')}", "unusable")
            elif pane.status == "loading":
                widget.set_status("loading…", "loading")
            else:
                widget.set_status("ready", "ready")
        if self.session.user_turns:
            self._restore_transcript()
            self._restore_judge_results()
        self._unsubscribe = self.session.subscribe(self._on_session_event)
        self.set_interval(FLUSH_INTERVAL_S, self.flush_pending, name="kurabe-flush")
        self._prefill_next_line()
        self._update_top_bar()
        self._update_expect()
        if self.load_on_mount:
            self.run_guarded(self.session.load(), "load")

    def paint_soon(self) -> None:
        """A key arrived: paint its effect as soon as it is made, not at the next frame."""
        self._paint_until = time.monotonic() + KEY_PAINT_WINDOW_S

    def on_idle(self, event: events.Idle) -> None:
        # Runs before Screen._on_idle, which would otherwise resume Textual's update timer. That
        # timer ticks on a fixed grid and skips ahead when a tick was late, so after a long update
        # (six panes streaming) the next can be up to two frames (33 ms) away; for a key's effect
        # the screen update is run here, at once (the same call the timer makes).
        if not self._paint_until:
            return
        if time.monotonic() > self._paint_until:
            self._paint_until = 0.0
            return
        try:
            self._paint_pending_changes()
        except AttributeError:
            # These are Textual internals (checked on 8.2.8); if another version moved them,
            # keys are painted by Textual's own frame timer instead, a frame or two later.
            log.warning("immediate key painting disabled: Textual internals changed")
            self._paint_until = 0.0
            self.paint_soon = lambda: None  # type: ignore[method-assign]

    def _paint_pending_changes(self) -> None:
        """Run Textual's screen update now if anything is waiting for it
        (:mod:`tui.textual_internals`, 2)."""
        paint_pending_changes(self)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- the session's events ------------------------------------------------------------------

    def _on_session_event(self, event: SessionEvent) -> None:
        if isinstance(event, PaneDelta):
            state = self.pane_states[event.pane]
            if state.pending_reply is not None and state.pending_reply != event.reply_id:
                self._flush_pane(event.pane)
            state.pending_reply = event.reply_id
            state.pending.append(event.text)
            return
        try:
            self._apply_event(event)
        except Exception:  # a display problem must never break the session
            log.exception("applying %r failed", event)

    def _apply_event(self, event: SessionEvent) -> None:
        if isinstance(event, PaneLoading):
            self.pane_widget(event.pane).set_status(
                f"loading… {self._redact(event.message)}", "loading"
            )
        elif isinstance(event, PaneReady):
            self._show_title(event.pane)
            last = self.pane_states[event.pane].reply_status
            if last is None:
                self.pane_widget(event.pane).set_status("ready", "ready")
            else:
                self.pane_widget(event.pane).set_status(last[0], last[1], short=last[2])
        elif isinstance(event, TurnStarted):
            self._running_turn = event.turn
            for index, widget in enumerate(self.pane_widgets):
                widget.transcript.add_user(event.text, turn=event.turn)
                if self.session.panes[index].status == "ready":
                    # Local CPU panes take turns; until PaneStarted this one is queued.
                    widget.set_status("waiting for its turn…", "busy")
            self._update_top_bar()
            self._update_expect()
        elif isinstance(event, PaneStarted):
            self._on_pane_started(event)
        elif isinstance(event, PaneFinished):
            self._flush_pane(event.pane)
            self._on_pane_finished(event)
        elif isinstance(event, PaneFailed):
            self._flush_pane(event.pane)
            self._on_pane_failed(event)
        elif isinstance(event, TurnFinished):
            self._running_turn = None
            self._update_top_bar()
            if not self._replaying:
                self._prefill_next_line()
            self.refresh_bindings()
            turn_finished = getattr(self.app, "turn_finished", None)
            if callable(turn_finished):
                self.set_timer(0.3, turn_finished)

    def _on_pane_started(self, event: PaneStarted) -> None:
        state = self.pane_states[event.pane]
        transcript = self.pane_widget(event.pane).transcript
        old = state.reply_id
        old_info = self.replies.get(old) if old is not None else None
        if old is not None and old_info is not None and old_info.turn == event.turn:
            transcript.replace_reply(old, event.reply_id)  # a retry or a regeneration
        else:
            transcript.start_reply(event.reply_id, turn=event.turn)
        self.replies[event.reply_id] = ReplyInfo(pane=event.pane, turn=event.turn)
        state.reply_id = event.reply_id
        state.pending = []
        state.pending_reply = event.reply_id
        state.started_at = time.perf_counter()
        state.first_text_at = None
        state.streamed_chars = 0
        state.status_shown_at = 0.0
        self.pane_widget(event.pane).set_status("waiting for the first token…", "busy")
        self._show_badges(event.reply_id)

    def _on_pane_finished(self, event: PaneFinished) -> None:
        widget = self.pane_widget(event.pane)
        widget.transcript.set_reply_text(event.reply_id, event.text)
        info = self.replies.setdefault(
            event.reply_id, ReplyInfo(pane=event.pane, turn=self._running_turn or 0)
        )
        info.status = "complete"
        info.finish_reason = event.finish_reason
        info.flags = list(event.checks.get("flags", ()) or ())
        status = format_figures(event.figures)
        short = format_figures(event.figures, compact=True)
        if event.finish_reason == "length":
            status += " · cut at max_tokens"
        self._set_reply_status(event.pane, status, "done", short)
        self._show_badges(event.reply_id)

    def _on_pane_failed(self, event: PaneFailed) -> None:
        widget = self.pane_widget(event.pane)
        reason = self._redact(event.reason)
        if event.reply_id is None:  # could not load: the pane is unusable
            widget.set_status(f"✗ {reason}", "unusable")
            return
        info = self.replies.setdefault(
            event.reply_id, ReplyInfo(pane=event.pane, turn=self._running_turn or 0)
        )
        info.status = "cancelled" if event.cancelled else "failed"
        transcript = widget.transcript
        if event.partial_text and transcript.reply_text(event.reply_id) != event.partial_text:
            transcript.set_reply_text(event.reply_id, event.partial_text)
        transcript.set_reply_style(event.reply_id, "transcript--reply-cut")
        if event.cancelled:
            self._set_reply_status(event.pane, "⏹ cancelled · r: retry", "cancelled")
        elif event.retryable:
            self._set_reply_status(event.pane, f"✗ {reason} · r: retry", "failed")
        else:
            self._set_reply_status(event.pane, f"✗ {reason}", "failed")
        self._show_badges(event.reply_id)

    def _set_reply_status(self, pane: int, text: str, state: str, short: str | None = None) -> None:
        self.pane_states[pane].reply_status = (text, state, short)
        self.pane_widget(pane).set_status(text, state, short=short)

    # -- streaming flush -------------------------------------------------------------------------

    def flush_pending(self) -> None:
        """Push every pane's buffered text into its transcript (the timer calls this)."""
        for index, state in enumerate(self.pane_states):
            if state.pending:
                self._flush_pane(index)

    def _flush_pane(self, index: int) -> None:
        state = self.pane_states[index]
        if not state.pending or state.pending_reply is None:
            state.pending = []
            return
        text = "".join(state.pending)
        state.pending = []
        widget = self.pane_widget(index)
        widget.transcript.append(state.pending_reply, text)
        now = time.perf_counter()
        if state.first_text_at is None:
            state.first_text_at = now
        state.streamed_chars += len(text)
        if now - state.status_shown_at < LIVE_STATUS_INTERVAL_S:
            return
        state.status_shown_at = now
        elapsed = now - state.first_text_at
        ttft = state.first_text_at - state.started_at
        live = f"streaming · ttft {ttft:.2f}s · {state.streamed_chars}字"
        short = f"… ttft {ttft:.2f}s {state.streamed_chars}字"
        if elapsed > 0.2:
            live += f" · {state.streamed_chars / elapsed:.0f}字/s"
            short += f" {state.streamed_chars / elapsed:.0f}字/s"
        widget.set_status(live, "busy", short=short)

    # -- titles, badges, bars ----------------------------------------------------------------------

    def _show_title(self, index: int) -> None:
        pane = self.session.panes[index]
        widget = self.pane_widget(index)
        if pane.hidden:
            widget.set_title(pane.label)
            return
        detail = pane.header if pane.header and pane.header != pane.profile.name else ""
        widget.set_title(pane.profile.name, detail or backend_label(pane.profile))

    def _redact(self, text: str) -> str:
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

    def _show_badges(self, reply_id: int) -> None:
        info = self.replies.get(reply_id)
        if info is None:
            return
        self.pane_widget(info.pane).transcript.set_badges(reply_id, self.badges_for(reply_id))

    def badges_for(self, reply_id: int) -> list[Span]:
        info = self.replies[reply_id]
        spans: list[Span] = []
        if info.status == "cancelled":
            spans.append(("⏹ cancelled", "transcript--error"))
        elif info.status == "failed":
            spans.append(("✗ failed", "transcript--error"))
        elif info.status == "interrupted":
            spans.append(("… interrupted", "transcript--error"))
        rating = self.ratings.get(reply_id)
        if rating is not None:
            if rating.score is not None:
                label = self.score_labels.get(rating.score, "")
                spans.append((f"★{rating.score} {label}".strip(), "transcript--score"))
            spans.extend((f"#{tag}", "transcript--badge") for tag in rating.tags)
            if rating.note:
                spans.append((f"✎ {one_line(rating.note, 40)}", "transcript--badge"))
        spans.extend(self._judge_badges(reply_id, rating))
        pick = self.picks.get(info.turn)
        if pick == info.pane and not isinstance(pick, str):
            spans.append(("◎ best", "transcript--pick"))
        elif pick == "tie":
            spans.append(("= tie", "transcript--pick"))
        elif pick == "bothbad":
            spans.append(("✗ all bad", "transcript--flag"))
        for flag in info.flags:
            label = str(flag.get("label") or flag.get("code") or "")
            if label:
                spans.append((f"⚑ {label}", "transcript--flag"))
        return spans

    def _judge_badges(self, reply_id: int, rating: RatingView | None) -> list[Span]:
        judged = self.judge_results.get(reply_id)
        if judged is None:
            return []
        if judged.status != "ok":
            return [(f"⚖ judge: {judged.status}", "transcript--error")]
        rated = rating is not None and rating.score is not None
        if rated or self.judge_badge == "always":
            return [(f"⚖{judged.score} judge", "transcript--judge")]
        return [("⚖ judged · score to see", "transcript--judge")]

    def _update_top_bar(self) -> None:
        """Brand, session, blind state, replay progress, scenario, persona — most useful first
        so that what a narrow terminal cuts off is the least needed."""
        session = self.session
        parts: list[tuple[str, str]] = [("比べ", "bold $text-accent"), (f" #{session.id}", "dim")]
        if session.blind:
            parts.append(("  BLIND" if session.hidden else "  revealed", "bold $text-warning"))
        scenario = session.scenario
        if scenario is not None:
            total = len(scenario.turns)
            upcoming = session.next_scenario_turn()
            if self._running_turn is not None:
                running = self._scenario_index_of(self._running_turn)
                where = f"turn {running + 1}/{total} …" if running is not None else "off script"
            elif upcoming is None:
                where = f"turn {total}/{total} ✓"
            else:
                where = f"turn {upcoming + 1}/{total}"
            parts.append((f"  {where}", "bold"))
            if self._replaying:
                parts.append(("  replaying", "$text-warning"))
            parts.append((f"  {scenario.title}", ""))
        parts.append(("  ·  ", "dim"))
        parts.append((session.persona.title, ""))
        self.query_one("#top-bar", Static).update(
            Content.assemble(*[(make_visible(text), style) for text, style in parts]),
            layout=False,
        )

    def _scenario_index_of(self, turn: int) -> int | None:
        return self.session.scenario_turn_of(turn)

    def _expect_turn(self) -> int | None:
        """The scenario turn whose expect note is relevant now: the one being answered or
        rated (the latest sent), else the one about to be sent."""
        for turn in range(len(self.session.user_turns) - 1, -1, -1):
            index = self._scenario_index_of(turn)
            if index is not None:
                return index
        return self.session.next_scenario_turn()

    def _update_expect(self) -> None:
        note = self.query_one("#expect", Static)
        scenario = self.session.scenario
        index = self._expect_turn()
        text = ""
        if scenario is not None and index is not None and index < len(scenario.turns):
            expect = scenario.turns[index].expect
            text = f"expect (turn {index + 1}): {expect}" if expect else ""
        if not text and scenario is not None:
            text = "expect: (no note for this turn)"
        note.update(Content(make_visible(text)))
        note.display = self._expect_visible and bool(text)

    # -- restoring a resumed session -------------------------------------------------------------

    def _restore_transcript(self) -> None:
        for turn in self.session.transcript():
            if turn.pick is not None:
                self.picks[turn.index] = turn.pick
            for widget in self.pane_widgets:
                widget.transcript.add_user(turn.text, turn=turn.index)
            for pane_index, reply in turn.replies.items():
                widget = self.pane_widget(pane_index)
                widget.transcript.start_reply(reply.reply_id, turn=turn.index, text=reply.text)
                info = ReplyInfo(
                    pane=pane_index,
                    turn=turn.index,
                    status=reply.status,
                    flags=list((reply.checks or {}).get("flags", ()) or ()),
                    finish_reason=reply.finish_reason,
                )
                self.replies[reply.reply_id] = info
                if reply.rating.score is not None or reply.rating.tags or reply.rating.note:
                    self.ratings[reply.reply_id] = reply.rating
                if reply.status != "complete":
                    widget.transcript.set_reply_style(reply.reply_id, "transcript--reply-cut")
                self.pane_states[pane_index].reply_id = reply.reply_id
                self._show_badges(reply.reply_id)
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
                    reason = self._redact(reply.error or reply.status)
                    self._set_reply_status(pane_index, f"✗ {reason} · r: retry", "failed")
        for index in range(len(self.session.panes)):
            verdict = self.session.verdict_of(index)
            if verdict is not None:
                self.verdicts[index] = verdict
                self.pane_widget(index).set_verdict(VERDICT_LABELS.get(verdict[0], verdict[0]))

    # -- workers -----------------------------------------------------------------------------------

    def run_guarded(self, work: Awaitable[Any], name: str) -> Worker[None]:
        """Run session work in a worker; problems become a one-line notification."""

        async def guarded() -> None:
            try:
                await work
            except KurabeError as exc:
                self.notify(one_line(str(exc)), severity="warning")
            except Exception as exc:
                log.exception("%s failed", name)
                self.notify(
                    one_line(f"{name} failed: {type(exc).__name__}: {exc}"),
                    severity="error",
                    timeout=10,
                )
            finally:
                self.refresh_bindings()

        return self.run_worker(guarded(), name=name, group=name, exit_on_error=False)

    # -- sending -----------------------------------------------------------------------------------

    @on(PromptInput.Submitted)
    def _on_submitted(self, message: PromptInput.Submitted) -> None:
        message.stop()
        self.send_prompt()

    @on(TextArea.Changed, "#prompt")
    def _on_prompt_changed(self, message: TextArea.Changed) -> None:
        if not message.text_area.text.strip():
            self._prefilled_turn = None  # cleared: what comes next is off script

    def send_prompt(self) -> bool:
        """Send what is in the input to every pane. False when nothing was sent."""
        text = self.prompt.text.strip()
        if not text:
            return False
        if self.session.busy or self._replaying:
            self.notify("the panes are still answering (esc cancels)", severity="warning")
            return False
        scenario_turn = self._prefilled_turn
        self.prompt.set_text("")
        self._prefilled_turn = None
        self.run_guarded(self.session.send(text, scenario_turn=scenario_turn), "send")
        return True

    def _prefill_next_line(self) -> None:
        scenario = self.session.scenario
        upcoming = self.session.next_scenario_turn()
        if scenario is None or upcoming is None or self.prompt.text.strip():
            return
        self.prompt.set_text(scenario.turns[upcoming].text)
        self._prefilled_turn = upcoming

    def action_send_next(self) -> None:
        if self.session.scenario is None:
            self.notify("no scenario: choose one with ctrl+p", severity="warning")
            return
        if self._pick_made is not None:
            self._pick_made.set()  # replay-all waiting for a pick: go on
            return
        if self._prefilled_turn is None and not self.prompt.text.strip():
            self._prefill_next_line()
        if self._prefilled_turn is not None:
            self.send_prompt()  # the scripted line, as the rater may have edited it
            return
        # The input holds a line of the rater's own: keep it, send the scripted line.
        upcoming = self.session.next_scenario_turn()
        scenario = self.session.scenario
        if upcoming is None:
            self.notify("the scenario is finished", severity="information")
            return
        if self.session.busy or self._replaying:
            self.notify("the panes are still answering (esc cancels)", severity="warning")
            return
        line = scenario.turns[upcoming].text
        self.run_guarded(self.session.send(line, scenario_turn=upcoming), "send")

    def action_send_all(self) -> None:
        if self.session.scenario is None:
            self.notify("no scenario: choose one with ctrl+p", severity="warning")
            return
        if self.session.busy or self._replaying:
            self.notify("the panes are still answering (esc cancels)", severity="warning")
            return
        if self.session.next_scenario_turn() is None:
            self.notify("the scenario is finished", severity="information")
            return
        self.run_guarded(self._replay_all(), "replay")

    async def _replay_all(self) -> None:
        scenario = self.session.scenario
        assert scenario is not None
        self._replaying = True
        self._stop_replay = False
        self._update_top_bar()
        try:
            while not self._stop_replay:
                upcoming = self.session.next_scenario_turn()
                if upcoming is None:
                    break
                if self._prefilled_turn == upcoming and self.prompt.text.strip():
                    text = self.prompt.text.strip()  # the rater may have edited it
                else:
                    text = scenario.turns[upcoming].text
                self._prefilled_turn = None
                self.prompt.set_text("")
                self._prefilled_turn = None
                turn = await self.session.send(text, scenario_turn=upcoming)
                if self._stop_replay:
                    break
                if self.wait_for_pick and self.session.next_scenario_turn() is not None:
                    await self._wait_for_pick(turn)
        finally:
            self._replaying = False
            self._pick_made = None
            self._update_top_bar()
            self._prefill_next_line()
        if self.session.next_scenario_turn() is None:
            self.notify("scenario finished: v gives each pane its verdict, s shows the summary")

    async def _wait_for_pick(self, turn: int) -> None:
        if turn in self.picks:
            return
        self._pick_made = asyncio.Event()
        self.notify("pick the best reply (p, =, x) to go on; ctrl+n skips", timeout=6)
        await self._pick_made.wait()
        self._pick_made = None

    def action_cancel_turn(self) -> None:
        if self._replaying:
            self._stop_replay = True
            if self._pick_made is not None:
                self._pick_made.set()
        if self.session.busy:
            self.session.cancel()
        elif not self._replaying:
            self.notify("nothing is streaming", timeout=2)

    # -- focus ------------------------------------------------------------------------------------

    def focused_pane(self) -> int | None:
        node = self.focused
        while node is not None:
            if isinstance(node, ModelPane):
                return node.index
            node = node.parent  # type: ignore[assignment]
        return None

    def action_focus_pane(self, index: int) -> None:
        if 0 <= index < len(self.session.panes):
            self.pane_widget(index).focus_pane()

    def action_move_focus(self, step: int) -> None:
        current = self.focused_pane()
        count = len(self.session.panes)
        target = 0 if current is None else (current + step) % count
        self.action_focus_pane(target)

    def action_focus_input(self) -> None:
        self.prompt.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in PANE_ACTIONS and self.focused_pane() is None:
            return False
        if action == "focus_pane" and parameters:
            index = parameters[0]
            return isinstance(index, int) and index < len(self.session.panes)
        if action == "reveal":
            return self.session.hidden
        if action in ("send_next", "send_all", "toggle_expect"):
            return self.session.scenario is not None
        return True

    # -- rating ------------------------------------------------------------------------------------

    def _focused_reply(self) -> tuple[int, int] | None:
        """(pane, reply id) of the focused pane's latest reply, telling the rater if none."""
        pane = self.focused_pane()
        if pane is None:
            return None
        reply_id = self.pane_states[pane].reply_id
        if reply_id is None:
            self.notify("this pane has no reply to rate yet", severity="warning", timeout=3)
            return None
        return pane, reply_id

    def _store_rating(self, what: str, call: Callable[[], None]) -> bool:
        """Run a session call that commits a rating; a problem is one line, never a crash."""
        try:
            call()
        except KurabeError as exc:
            self.notify(one_line(str(exc)), severity="warning")
            return False
        except Exception as exc:
            log.exception("%s failed", what)
            self.notify(
                one_line(f"{what} not saved: {type(exc).__name__}: {exc}"), severity="error"
            )
            return False
        return True

    def _rate(self, reply_id: int, **changes: Any) -> None:
        if not self._store_rating("rating", lambda: self.session.rate_reply(reply_id, **changes)):
            return
        current = self.ratings.get(reply_id, RatingView(rater=self.session.rater))
        score = changes.get("score")
        tags = changes.get("tags")
        note = changes.get("note")
        self.ratings[reply_id] = RatingView(
            score=current.score if score is None else score,
            tags=current.tags if tags is None else tuple(tags),
            note=current.note if note is None else note,
            rater=self.session.rater,
        )
        self._show_badges(reply_id)

    def action_score(self, score: int) -> None:
        target = self._focused_reply()
        if target is not None:
            self._rate(target[1], score=score)

    def action_tags(self) -> None:
        target = self._focused_reply()
        if target is None:
            return
        pane, reply_id = target
        current = self.ratings.get(reply_id)
        label = self.session.panes[pane].label

        def done(tags: tuple[str, ...] | None) -> None:
            if tags is not None:
                self._rate(reply_id, tags=list(tags))

        self.app.push_screen(
            TagPicker(f"Tags for {label}'s reply", self.tags, current.tags if current else ()),
            done,
        )

    def action_note(self) -> None:
        target = self._focused_reply()
        if target is None:
            return
        pane, reply_id = target
        current = self.ratings.get(reply_id)

        def done(note: str | None) -> None:
            if note is not None:
                self._rate(reply_id, note=note)

        label = self.session.panes[pane].label
        self.app.push_screen(
            NoteDialog(f"Note on {label}'s reply", current.note if current else ""), done
        )

    def action_verdict(self) -> None:
        pane = self.focused_pane()
        if pane is None:
            return
        label = self.session.panes[pane].display_name
        current = self.verdicts.get(pane)

        def done(result: tuple[str, str] | None) -> None:
            if result is None:
                return
            verdict, note = result
            if not self._store_rating(
                "verdict", lambda: self.session.set_verdict(pane, verdict, note)
            ):
                return
            self.verdicts[pane] = (verdict, note)
            self.pane_widget(pane).set_verdict(VERDICT_LABELS.get(verdict, verdict))

        self.app.push_screen(
            VerdictDialog(
                f"Verdict on {label}'s whole conversation",
                VERDICTS,
                current[0] if current else None,
                current[1] if current else "",
            ),
            done,
        )

    def _latest_turn(self) -> int | None:
        turns = len(self.session.user_turns)
        if turns == 0:
            self.notify("nothing has been sent yet", severity="warning", timeout=3)
            return None
        return turns - 1

    def pick(self, winner: PickWinner) -> None:
        turn = self._latest_turn()
        if turn is None:
            return
        if not self._store_rating("pick", lambda: self.session.pick_best(turn, winner)):
            return
        self.picks[turn] = winner
        for reply_id, info in self.replies.items():
            if info.turn == turn:
                self._show_badges(reply_id)
        if self._pick_made is not None:
            self._pick_made.set()

    def action_pick(self) -> None:
        turn = self._latest_turn()
        if turn is None:
            return
        labels = [pane.label for pane in self.session.panes]

        def done(result: PickWinner | None) -> None:
            if result is not None:
                self.pick(result)

        self.app.push_screen(PickDialog(turn, labels), done)

    def action_pick_tie(self) -> None:
        self.pick("tie")

    def action_pick_bad(self) -> None:
        self.pick("bothbad")

    # -- retry, regenerate, reveal -------------------------------------------------------------

    def action_retry(self) -> None:
        self._rerun_focused_pane(self.session.retry, "retry")

    def action_regenerate(self) -> None:
        self._rerun_focused_pane(self.session.regenerate, "regenerate")

    def _rerun_focused_pane(self, rerun: Callable[[int], Awaitable[None]], name: str) -> None:
        pane = self.focused_pane()
        if pane is None:
            return
        if self.session.panes[pane].busy:
            self.notify("this pane is still streaming", severity="warning", timeout=3)
            return
        self.run_guarded(rerun(pane), f"{name}-{pane}")

    def action_cancel_pane(self) -> None:
        pane = self.focused_pane()
        if pane is None:
            return
        if not self.session.panes[pane].busy:
            self.notify("this pane is not streaming", timeout=2)
            return
        self.session.cancel(pane)

    def action_reveal(self) -> None:
        if not self.session.hidden:
            self.notify("the model names are already shown", timeout=3)
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.reveal()

        self.app.push_screen(
            ConfirmDialog(
                "Reveal the model names?",
                "Ratings given from now on are recorded as not blind; the reveal is recorded.",
            ),
            done,
        )

    def reveal(self) -> None:
        if not self._store_rating("reveal", self.session.reveal):
            return
        for pane in self.session.panes:
            self._show_title(pane.index)
        self._update_top_bar()
        self.refresh_bindings()
        names = ", ".join(f"{pane.label} = {pane.profile.name}" for pane in self.session.panes)
        self.notify(names, title="revealed", timeout=8)

    # -- other screens -------------------------------------------------------------------------

    def action_toggle_expect(self) -> None:
        self._expect_visible = not self._expect_visible
        self._update_expect()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_summary(self) -> None:
        from tui.summary_screen import SummaryScreen

        self.app.push_screen(SummaryScreen(self.session, self.score_labels))

    def action_pane_settings(self) -> None:
        from tui.pane_settings import PaneSettingsScreen

        pane = self.focused_pane()
        if pane is not None:
            self.app.push_screen(PaneSettingsScreen(self.session, pane))

    # -- the LLM judge ---------------------------------------------------------------------------

    def _judge_rater(self) -> str | None:
        from kurabe.judge import judge_rater

        return None if self.judge_profile is None else judge_rater(self.judge_profile.name)

    def _restore_judge_results(self) -> None:
        """The judge's earlier single-mode judgements of this session (a resumed session)."""
        rater = self._judge_rater()
        if rater is None:
            return
        record = self.session.store.load_record(self.session.id)
        for row in record.judgements:
            if row.judge == rater and row.mode == "single":
                self.judge_results[row.reply_id] = JudgeBadge(row.status, row.score)
        for reply_id in self.judge_results:
            self._show_badges(reply_id)

    def action_judge(self) -> None:
        if self.judge_profile is None:
            self.notify(
                'no judge: start kurabe with --judge PROFILE, or set judge = "PROFILE" in '
                "config.toml",
                severity="warning",
                timeout=6,
            )
            return
        turn = self._latest_turn()
        if turn is None:
            return
        if self._judging:
            self.notify("the judge is still answering", timeout=3)
            return
        self._judging = True
        self.run_guarded(self._judge_turn(turn), "judge")

    async def _judge_turn(self, turn: int) -> None:
        from kurabe.judge import Judge, judge_session
        from kurabe.rubric import load_rubric

        try:
            if self._judge is None:
                assert self.judge_profile is not None
                self._judge = Judge(
                    self.judge_profile,
                    rubric=load_rubric(),
                    mode="single",
                    backend_factory=self.judge_factory or create_backend,
                )
            self.notify(f"asking the judge about turn {turn + 1}…", timeout=3)
            summary = await judge_session(
                self.session.store,
                self.session.id,
                self._judge,
                turns=[turn],
                progress=_BadgeProgress(self),
            )
        finally:
            self._judging = False
        failed = summary.unparseable + summary.errors
        words = f"judge: {summary.ok} judged"
        if failed:
            words += f", {failed} failed"
        if summary.skipped:
            words += f", {summary.skipped} judged before"
        if summary.ok and self.judge_badge != "always":
            words += " · scores show once you have scored a reply"
        self.notify(words, timeout=5)

    async def close_judge(self) -> None:
        if self._judge is not None:
            judge, self._judge = self._judge, None
            await judge.aclose()
