"""The rating keys of the comparison screen: scores, tags, notes, verdicts, picks, the reveal, and
the LLM judge's badge.

Ratings go to the session the moment a key is pressed (the session commits them and returns what
it stored) and show as badges under the reply. When the database cannot be reached (a team's
server restarting), a rating, verdict or pick is kept pending (:mod:`kurabe.session.pending`):
one line says so, it is tried again every few seconds in the order given, and its badge shows
once it is saved; one the store refuses is said, never dropped silently. Nothing else is kept
here: every badge is drawn from what the session reads back from the store, so what is shown is
what was saved. The screen tells
the controller which pane a key is for (attributes down); what the screen must react to — a pick
that a waiting replay goes on after, the reveal — comes back as a message (messages up, from
:mod:`tui.messages`). The screen is known only as a :class:`RatingHost`: what the controller
needs of it.

The judge key (j) asks the LLM judge (:mod:`kurabe.judge.runner`, single mode) about the latest turn
in a worker, so the screen stays responsive; its score is a badge of its own (⚖), kept hidden until
the rater has scored that reply (no anchoring) unless config.toml says
``judge_badge = "always"``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from textual.app import App
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.timer import Timer
from textual.worker import Worker

from backends import create_backend
from backends.base import Backend, one_line
from backends.profiles import ModelProfile
from foundation.errors import KurabeError
from kurabe.core.blind import shown_name
from kurabe.core.verdicts import VERDICTS, verdict_label
from kurabe.judge.runner import ItemResult, Judge, JudgeSummary
from kurabe.session.comparison import ComparisonSession
from kurabe.session.pending import Flushed, PendingWrites
from kurabe.session.views import PickWinner, RatingView
from kurabe.store.records import SessionRecord
from kurabe.store.store import Store
from tui.confirm_dialog import ConfirmDialog
from tui.messages import PickMade, Revealed
from tui.note_dialog import NoteDialog
from tui.pane_strip import PaneStrip, ReplyInfo
from tui.pick_dialog import PickDialog
from tui.tag_picker import TagPicker
from tui.transcript_view import Span
from tui.verdict_dialog import VerdictDialog

log = logging.getLogger(__name__)

StoredT = TypeVar("StoredT")

PENDING_RETRY_S = 5.0
"""How often ratings the database could not take are tried again."""


class RatingHost(Protocol):
    """What the controller needs from the screen that owns it: to tell the rater something, to
    open a dialog (through its app), to send a message up, to run work in a worker, and a timer
    (retrying ratings the database could not take yet)."""

    @property
    def app(self) -> App[object]: ...

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...

    def post_message(self, message: Message) -> bool: ...

    def run_guarded(self, work: Awaitable[Any], name: str) -> Worker[None]: ...

    def set_interval(self, interval: float, callback: Callable[[], None]) -> Timer: ...


@dataclass(frozen=True, slots=True)
class JudgeBadge:
    """What the judge said about one reply."""

    status: str
    """``ok``, ``unparseable`` or ``error``."""
    score: int | None = None


class _BadgeProgress:
    """Hands each judgement of a judge run to the controller as it is made."""

    def __init__(self, controller: RatingController) -> None:
        self.controller = controller

    def begin(self, record: SessionRecord, judge: Judge, todo: int, skipped: int) -> None:
        pass

    def result(self, record: SessionRecord, result: ItemResult, done: int, todo: int) -> None:
        (reply,) = result.item.replies
        self.controller.strip.show_badges(reply.id)  # the judgement is stored: draw it

    def end(self, summary: JudgeSummary) -> None:
        pass


def rating_spans(rating: RatingView, score_labels: dict[int, str]) -> list[Span]:
    spans: list[Span] = []
    if rating.score is not None:
        label = score_labels.get(rating.score, "")
        spans.append((f"★{rating.score} {label}".strip(), "transcript--score"))
    spans.extend((f"#{tag}", "transcript--badge") for tag in rating.tags)
    if rating.note:
        spans.append((f"✎ {one_line(rating.note, 40)}", "transcript--badge"))
    return spans


def reply_spans(info: ReplyInfo, pick: PickWinner | None) -> tuple[list[Span], list[Span]]:
    """(how the reply ended, what the pick and the automatic checks say) as badges."""
    ended: list[Span] = []
    if info.status == "cancelled":
        ended.append(("⏹ cancelled", "transcript--error"))
    elif info.status == "failed":
        ended.append(("✗ failed", "transcript--error"))
    elif info.status == "interrupted":
        ended.append(("… interrupted", "transcript--error"))
    after: list[Span] = []
    if pick == info.pane and not isinstance(pick, str):
        after.append(("◎ best", "transcript--pick"))
    elif pick == "tie":
        after.append(("= tie", "transcript--pick"))
    elif pick == "bothbad":
        after.append(("✗ all bad", "transcript--flag"))
    for flag in info.flags:
        label = flag.label or flag.code
        if label:
            after.append((f"⚑ {label}", "transcript--flag"))
    return ended, after


class RatingController:
    """What the rating keys do, for the screen that owns it and its :class:`PaneStrip`."""

    def __init__(
        self,
        screen: RatingHost,
        session: ComparisonSession,
        strip: PaneStrip,
        *,
        store: Store,
        score_labels: dict[int, str],
        tags: tuple[str, ...],
        judge_profile: ModelProfile | None = None,
        judge_badge: str = "after-rating",
        judge_factory: Callable[[ModelProfile], Backend] | None = None,
    ) -> None:
        self.screen = screen
        self.session = session
        self.strip = strip
        self.store = store
        """The app's store, where the judge records its judgements."""
        self.score_labels = score_labels
        self.tags = tags
        self.judge_profile = judge_profile
        self.judge_badge = judge_badge
        self.judge_factory = judge_factory
        self._judge: Judge | None = None
        self._judging = False
        self.pending = PendingWrites()
        """Ratings, verdicts and picks the database could not take yet."""
        self._retry_timer: Timer | None = None
        strip.badges_for = self.badges_for

    # -- badges --------------------------------------------------------------------------------

    def badges_for(self, reply_id: int) -> list[Span]:
        info = self.strip.replies[reply_id]
        rating, pick = self.session.rating_of(reply_id), self.session.pick_of(info.turn)
        return self._badges(info, rating, pick, self.judge_results().get(reply_id))

    def _badges(
        self,
        info: ReplyInfo,
        rating: RatingView,
        pick: PickWinner | None,
        judged: JudgeBadge | None,
    ) -> list[Span]:
        ended, after = reply_spans(info, pick)
        return [
            *ended,
            *rating_spans(rating, self.score_labels),
            *self._judge_badges(judged, rating),
            *after,
        ]

    def show_every_badge(self) -> None:
        """Every reply's badges, the ratings and picks read once (a resumed session)."""
        ratings = self.session.ratings()
        picks = self.session.picks()
        judged = self.judge_results()
        for reply_id, info in self.strip.replies.items():
            rating = ratings.get(reply_id, RatingView())
            badges = self._badges(info, rating, picks.get(info.turn), judged.get(reply_id))
            self.strip.pane_widget(info.pane).transcript.set_badges(reply_id, badges)

    def _judge_badges(self, judged: JudgeBadge | None, rating: RatingView) -> list[Span]:
        if judged is None:
            return []
        if judged.status != "ok":
            return [(f"⚖ judge: {judged.status}", "transcript--error")]
        if rating.score is not None or self.judge_badge == "always":
            return [(f"⚖{judged.score} judge", "transcript--judge")]
        return [("⚖ judged · score to see", "transcript--judge")]

    def show_verdicts(self) -> None:
        for pane in self.session.panes:
            verdict = self.session.verdict_of(pane.index)
            if verdict is not None:
                self._show_verdict(pane.index, verdict[0])

    def _show_verdict(self, pane: int, verdict: str) -> None:
        self.strip.pane_widget(pane).set_verdict(verdict_label(verdict))

    # -- storing -------------------------------------------------------------------------------

    def _store(self, what: str, call: Callable[[], StoredT]) -> StoredT | None:
        """Run a session call that commits a rating; a problem is one line, never a crash."""
        try:
            return call()
        except KurabeError as exc:
            self.screen.notify(one_line(str(exc)), severity="warning")
        except Exception as exc:
            log.exception("%s failed", what)
            self.screen.notify(
                one_line(f"{what} not saved: {type(exc).__name__}: {exc}"), severity="error"
            )
        return None

    def _save(
        self, what: str, call: Callable[[], StoredT], on_saved: Callable[[StoredT], None]
    ) -> None:
        """A rater's write: saved now, or kept pending while the database is unreachable, or
        refused in one visible line."""
        had_pending = len(self.pending) > 0
        self._report(self.pending.submit(what, call, on_saved), announce=not had_pending)

    def _report(self, result: Flushed, *, announce: bool) -> None:
        for line in result.refused:
            self.screen.notify(one_line(line), severity="warning")
        if result.left:
            if announce:
                self.screen.notify(
                    one_line(
                        f"could not save — kept {result.left} pending, retrying every "
                        f"{PENDING_RETRY_S:g} s: {result.reason}"
                    ),
                    severity="error",
                    timeout=8,
                )
            if self._retry_timer is None:
                self._retry_timer = self.screen.set_interval(PENDING_RETRY_S, self.retry_pending)
        elif self._retry_timer is not None:
            self._retry_timer.stop()
            self._retry_timer = None

    def retry_pending(self) -> None:
        """Try the pending writes again (the timer's tick)."""
        if not len(self.pending):
            return
        result = self.pending.flush()
        if result.saved and not result.left:
            self.screen.notify(f"saved {result.saved} pending rating(s)", timeout=4)
        self._report(result, announce=False)

    def still_pending(self) -> int:
        """Try the pending writes once more (before the app closes); how many are left."""
        if len(self.pending):
            self.retry_pending()
        return len(self.pending)

    def _reply_of(self, pane: int) -> int | None:
        """The pane's latest reply, telling the rater if there is none."""
        reply_id = self.strip.latest_reply(pane)
        if reply_id is None:
            self.screen.notify("this pane has no reply to rate yet", severity="warning", timeout=3)
        return reply_id

    def _rate(
        self,
        reply_id: int,
        *,
        score: int | None = None,
        tags: tuple[str, ...] | None = None,
        note: str | None = None,
    ) -> None:
        self._save(
            "rating",
            lambda: self.session.rate_reply(reply_id, score=score, tags=tags, note=note),
            lambda _stored: self.strip.show_badges(reply_id),
        )

    # -- the keys ------------------------------------------------------------------------------

    def score(self, pane: int, score: int) -> None:
        reply_id = self._reply_of(pane)
        if reply_id is not None:
            self._rate(reply_id, score=score)

    def edit_tags(self, pane: int) -> None:
        reply_id = self._reply_of(pane)
        if reply_id is None:
            return
        current = self.session.rating_of(reply_id)
        label = self.session.panes[pane].label

        def done(tags: tuple[str, ...] | None) -> None:
            if tags is not None:
                self._rate(reply_id, tags=tags)

        self.screen.app.push_screen(
            TagPicker(f"Tags for {label}'s reply", self.tags, current.tags), done
        )

    def edit_note(self, pane: int) -> None:
        reply_id = self._reply_of(pane)
        if reply_id is None:
            return
        current = self.session.rating_of(reply_id)
        label = self.session.panes[pane].label

        def done(note: str | None) -> None:
            if note is not None:
                self._rate(reply_id, note=note)

        self.screen.app.push_screen(NoteDialog(f"Note on {label}'s reply", current.note), done)

    def edit_verdict(self, pane: int) -> None:
        shown = self.session.panes[pane]
        label = shown_name(shown.label, shown.profile.name, hidden=self.session.hidden)
        current = self.session.verdict_of(pane)

        def done(result: tuple[str, str] | None) -> None:
            if result is None:
                return
            verdict, note = result
            self._save(
                "verdict",
                lambda: self.session.set_verdict(pane, verdict, note),
                lambda stored: self._show_verdict(pane, stored[0]),
            )

        self.screen.app.push_screen(
            VerdictDialog(
                f"Verdict on {label}'s whole conversation",
                VERDICTS,
                current[0] if current else None,
                current[1] if current else "",
            ),
            done,
        )

    def latest_turn(self) -> int | None:
        """The latest turn sent, telling the rater if nothing was sent yet."""
        turns = len(self.session.user_turns)
        if turns == 0:
            self.screen.notify("nothing has been sent yet", severity="warning", timeout=3)
            return None
        return turns - 1

    def pick(self, winner: PickWinner) -> None:
        turn = self.latest_turn()
        if turn is None:
            return

        def picked(_stored: PickWinner) -> None:
            self.strip.show_badges_of_turn(turn)
            self.screen.post_message(PickMade(turn))

        self._save("pick", lambda: self.session.pick_best(turn, winner), picked)

    def choose_pick(self) -> None:
        turn = self.latest_turn()
        if turn is None:
            return
        labels = [pane.label for pane in self.session.panes]

        def done(result: PickWinner | None) -> None:
            if result is not None:
                self.pick(result)

        self.screen.app.push_screen(PickDialog(turn, labels), done)

    def ask_reveal(self) -> None:
        if not self.session.hidden:
            self.screen.notify("the model names are already shown", timeout=3)
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.reveal()

        self.screen.app.push_screen(
            ConfirmDialog(
                "Reveal the model names?",
                "Ratings given from now on are recorded as not blind; the reveal is recorded.",
            ),
            done,
        )

    def reveal(self) -> None:
        def reveal_and_say_so() -> bool:
            self.session.reveal()
            return True

        if self._store("reveal", reveal_and_say_so) is None:
            return
        self.strip.show_titles()
        names = ", ".join(f"{pane.label} = {pane.profile.name}" for pane in self.session.panes)
        self.screen.notify(names, title="revealed", timeout=8)
        self.screen.post_message(Revealed())

    # -- the LLM judge -------------------------------------------------------------------------

    def _judge_rater(self) -> str | None:
        from kurabe.judge.runner import judge_rater

        return None if self.judge_profile is None else judge_rater(self.judge_profile.name)

    def judge_results(self) -> dict[int, JudgeBadge]:
        """Reply id → this app's judge's newest single-mode judgement of it (the ⚖ badge), read
        from the store: earlier runs' judgements of a resumed session included."""
        rater = self._judge_rater()
        if rater is None:
            return {}
        return {
            row.reply_id: JudgeBadge(row.status, row.score)
            for row in self.session.judgements()  # oldest first
            if row.judge == rater and row.mode == "single"
        }

    def ask_judge(self) -> None:
        if self.judge_profile is None:
            self.screen.notify(
                'no judge: start kurabe with --judge PROFILE, or set judge = "PROFILE" in '
                "config.toml",
                severity="warning",
                timeout=6,
            )
            return
        turn = self.latest_turn()
        if turn is None:
            return
        if self._judging:
            self.screen.notify("the judge is still answering", timeout=3)
            return
        self._judging = True
        self.screen.run_guarded(self._judge_turn(turn), "judge")

    async def _judge_turn(self, turn: int) -> None:
        from kurabe.judge.rubric import load_rubric
        from kurabe.judge.runner import judge_session

        try:
            if self._judge is None:
                assert self.judge_profile is not None
                self._judge = Judge(
                    self.judge_profile,
                    rubric=load_rubric(),
                    mode="single",
                    backend_factory=self.judge_factory or create_backend,
                )
            self.screen.notify(f"asking the judge about turn {turn + 1}…", timeout=3)
            summary = await judge_session(
                self.store,
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
        self.screen.notify(words, timeout=5)

    async def close_judge(self) -> None:
        """Let the judge's backend go (the screen does this when it is unmounted)."""
        if self._judge is not None:
            judge, self._judge = self._judge, None
            await judge.aclose()
