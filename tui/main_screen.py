"""The comparison screen: panes side by side, one input box, replay, and the keys.

What the screen is made of, one module each: :class:`~tui.pane_strip.PaneStrip` shows the panes
and turns the session's events into what they show (streaming, statuses, titles);
:class:`~tui.rating_controller.RatingController` does what the rating keys do (scores, tags,
notes, verdicts, picks, the reveal, the judge) and draws the badges from the session. This
screen holds them together: it subscribes to the session and hands its events down to the strip,
runs the session's work in workers, sends what is typed, runs the replay loop, keeps the top bar
and the expect note, and maps each key to the pane it is for. When a turn ends it posts
:class:`MainScreen.TurnFinished` for the app (a good moment for a garbage collection).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.content import Content
from textual.message import Message
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static, TextArea
from textual.worker import Worker

from backends.base import Backend, one_line
from backends.profiles import ModelProfile
from foundation.errors import KurabeError
from kurabe.core.rating_config import DEFAULT_TAGS, SCORE_LABELS_JA
from kurabe.session.comparison import ComparisonSession
from kurabe.session.events import PaneDelta, SessionEvent, TurnStarted
from kurabe.session.events import TurnFinished as SessionTurnFinished
from kurabe.store.store import Store
from tui.help_screen import HelpScreen
from tui.keymap import MAIN_BINDINGS, PANE_ACTIONS
from tui.messages import PickMade, Revealed
from tui.model_pane import ModelPane
from tui.pane_strip import PaneStrip
from tui.prompt_input import PromptInput
from tui.quiet_footer import QuietFooter
from tui.rating_controller import JudgeBadge, RatingController
from tui.textflow import make_visible
from tui.textual_internals import focused_without_repaint, paint_pending_changes

log = logging.getLogger(__name__)

KEY_PAINT_WINDOW_S = 0.05
"""For this long after a key, what changed is painted as soon as the screen is idle, without
waiting for Textual's next screen update (which can be up to two frames away)."""


class MainScreen(Screen[None]):
    """One comparison session on screen."""

    CSS_PATH = "main_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = list(MAIN_BINDINGS)
    AUTO_FOCUS = "#prompt"

    focused: Reactive[Widget | None] = focused_without_repaint()
    """Textual's ``Screen.focused`` without its repaint of the whole screen
    (:mod:`tui.textual_internals`, 1)."""

    @dataclass
    class TurnFinished(Message):
        """Every pane of ``turn`` has answered (or failed, or was cancelled)."""

        turn: int

    def __init__(
        self,
        session: ComparisonSession,
        *,
        store: Store,
        score_labels: dict[int, str] | None = None,
        tags: tuple[str, ...] = (),
        load_on_mount: bool = True,
        judge_profile: ModelProfile | None = None,
        judge_badge: str = "after-rating",
        judge_factory: Callable[[ModelProfile], Backend] | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.store = store
        """The app's store: what the judge writes to and the leaderboard reads (every session)."""
        self.load_on_mount = load_on_mount
        self.strip = PaneStrip(session, id="panes")
        self.score_labels = score_labels or dict(SCORE_LABELS_JA)
        self.rating = RatingController(
            self,
            session,
            self.strip,
            store=store,
            score_labels=self.score_labels,
            tags=tags or DEFAULT_TAGS,
            judge_profile=judge_profile,
            judge_badge=judge_badge,
            judge_factory=judge_factory,
        )
        self.wait_for_pick = False
        """Replay-all waits for a pick of each turn before sending the next one."""
        self._prefilled_turn: int | None = None
        """The scenario turn whose line sits in the input (edited or not)."""
        self._replaying = False
        self._stop_replay = False
        self._pick_made: asyncio.Event | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._expect_visible = False
        self._paint_until = 0.0

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="top-bar", markup=False)
        yield self.strip
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
        return self.strip.pane_widget(index)

    @property
    def pane_widgets(self) -> list[ModelPane]:
        return [self.pane_widget(pane.index) for pane in self.session.panes]

    @property
    def judge_results(self) -> dict[int, JudgeBadge]:
        """Reply id → the judge's newest judgement of it (shown as the ⚖ badge)."""
        return self.rating.judge_results()

    @property
    def replaying(self) -> bool:
        """Send-all (ctrl+g) is playing the scenario's lines."""
        return self._replaying

    @property
    def key_paint_deadline(self) -> float:
        """Until when (``time.monotonic()``) a key's effect is painted as soon as the screen is
        idle; 0.0 when no key is waiting to be painted (see :meth:`paint_soon`)."""
        return self._paint_until

    def on_mount(self) -> None:
        # The strip (mounted first) has shown the panes and any resumed transcript.
        if self.session.user_turns:
            self.rating.show_every_badge()
        self.rating.show_verdicts()
        self._unsubscribe = self.session.subscribe(self._on_session_event)
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
            paint_pending_changes(self)  # tui.textual_internals, 2
        except AttributeError:
            # These are Textual internals (checked on 8.2.8); if another version moved them,
            # keys are painted by Textual's own frame timer instead, a frame or two later.
            log.warning("immediate key painting disabled: Textual internals changed")
            self._paint_until = 0.0
            self.paint_soon = lambda: None  # type: ignore[method-assign]

    async def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.rating.close_judge()  # the judge was opened here (the j key): closed here

    # -- the session's events ------------------------------------------------------------------

    def _on_session_event(self, event: SessionEvent) -> None:
        if isinstance(event, PaneDelta):
            self.strip.buffer(event)
            return
        try:
            self.strip.apply(event)
            if isinstance(event, TurnStarted):
                self._update_top_bar()
                self._update_expect()
            elif isinstance(event, SessionTurnFinished):
                self._update_top_bar()
                if not self._replaying:
                    self._prefill_next_line()
                self.refresh_bindings()
                self.post_message(self.TurnFinished(event.turn))
        except Exception:  # a display problem must never break the session
            log.exception("applying %r failed", event)

    @on(PickMade)
    def _on_pick_made(self, message: PickMade) -> None:
        if self._pick_made is not None:
            self._pick_made.set()

    @on(Revealed)
    def _on_revealed(self, message: Revealed) -> None:
        self._update_top_bar()
        self.refresh_bindings()

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
        if self.session.pick_of(turn) is not None:
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

    # -- rating (what each key does is the rating controller's) --------------------------------

    def action_score(self, score: int) -> None:
        pane = self.focused_pane()
        if pane is not None:
            self.rating.score(pane, score)

    def action_tags(self) -> None:
        pane = self.focused_pane()
        if pane is not None:
            self.rating.edit_tags(pane)

    def action_note(self) -> None:
        pane = self.focused_pane()
        if pane is not None:
            self.rating.edit_note(pane)

    def action_verdict(self) -> None:
        pane = self.focused_pane()
        if pane is not None:
            self.rating.edit_verdict(pane)

    def action_pick(self) -> None:
        self.rating.choose_pick()

    def action_pick_tie(self) -> None:
        self.rating.pick("tie")

    def action_pick_bad(self) -> None:
        self.rating.pick("bothbad")

    def action_reveal(self) -> None:
        self.rating.ask_reveal()

    def action_judge(self) -> None:
        self.rating.ask_judge()

    # -- retry, regenerate -----------------------------------------------------------------------

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

    # -- the focused pane's reply and prompt -------------------------------------------------------

    def action_copy_reply(self) -> None:
        """Copy the focused pane's latest reply to the clipboard (OSC 52: works over SSH)."""
        pane = self.focused_pane()
        if pane is None:
            return
        reply_id = self.strip.latest_reply(pane)
        text = None if reply_id is None else self.pane_widget(pane).transcript.reply_text(reply_id)
        if not text:
            self.notify("this pane has no reply to copy yet", severity="warning", timeout=3)
            return
        self.app.copy_to_clipboard(text)
        label = self.session.panes[pane].label
        self.notify(f"{label}'s reply copied ({len(text)}字)", title="clipboard", timeout=3)

    def action_sent_prompt(self) -> None:
        """Show the focused pane's exact prompt for its latest turn."""
        from kurabe.session.sent_prompt import sent_prompt
        from tui.sent_prompt_screen import SentPromptScreen

        pane = self.focused_pane()
        if pane is None:
            return
        reply_id = self.strip.latest_reply(pane)
        if reply_id is None or reply_id not in self.strip.replies:
            self.notify("this pane has not been sent anything yet", severity="warning", timeout=3)
            return
        turn = self.strip.replies[reply_id].turn
        try:
            prompt = sent_prompt(self.session, pane, turn)
        except Exception as exc:
            log.exception("rendering the prompt failed")
            self.notify(one_line(f"no prompt: {type(exc).__name__}: {exc}"), severity="error")
            return
        self.app.push_screen(SentPromptScreen(prompt))

    # -- top bar and expect note -------------------------------------------------------------

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
            if self.strip.running_turn is not None:
                running = self._scenario_index_of(self.strip.running_turn)
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

    # -- other screens -------------------------------------------------------------------------

    def action_toggle_wait(self) -> None:
        """Send-all (ctrl+g) waits for a pick after each turn, or no longer does."""
        self.wait_for_pick = not self.wait_for_pick
        state = "waits for a pick after each turn" if self.wait_for_pick else "does not wait"
        self.notify(f"send all (ctrl+g) {state}", timeout=4)

    def action_toggle_expect(self) -> None:
        self._expect_visible = not self._expect_visible
        self._update_expect()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_summary(self) -> None:
        from tui.summary_screen import SummaryScreen

        self.app.push_screen(SummaryScreen(self.session, self.store, self.score_labels))

    def action_pane_settings(self) -> None:
        from tui.pane_settings import PaneSettingsScreen

        pane = self.focused_pane()
        if pane is not None:
            self.app.push_screen(PaneSettingsScreen(self.session, pane))
