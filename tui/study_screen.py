"""A rater's queue in a rating study: ``kurabe study rate NAME`` opens it on their next item.

An item is one turn of one stored session: each pane's column shows the conversation up to that
turn (the user's lines and that pane's replies) with the turn's reply last, the panes in the
order this rater was dealt for this item (:mod:`kurabe.store.studies`), lettered A, B, … in that
order. Model names stay hidden while the study's blind rule says so
(:func:`kurabe.analysis.studies.rater_sees_names`). The rater sees only their own marks.

Keys (the app's, where they mean the same): ``a``–``f`` or ←/→ focus a pane, ↑↓ pgup pgdn home
end scroll it, ``1``–``5`` score it, ``t`` tags, ``n`` note, ``v`` verdict, ``p`` then a letter
picks the best pane (``=`` tie, ``x`` all bad), ``enter`` finishes the item and deals the next,
``s`` skips it (recorded), ``[`` and ``]`` go back to earlier items and forward again (a change
there appends a new rating; the old one stays in the history), ``q`` quits (everything is
already saved; an unfinished item stays held until the study's claim timeout).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from foundation.errors import KurabeError
from foundation.options import options_from
from kurabe.analysis.studies import rater_sees_names
from kurabe.core.blind import shown_name
from kurabe.core.pane_labels import PANE_LABELS
from kurabe.core.rating_config import DEFAULT_TAGS, SCORE_LABELS_JA, resolve_study_rater
from kurabe.core.verdicts import VERDICTS, verdict_label
from kurabe.store.records import newest_by
from kurabe.store.store import Store
from kurabe.store.studies import Claim, StudyItem, StudyRow
from tui.note_dialog import NoteDialog
from tui.pick_dialog import PickDialog, PickResult
from tui.tag_picker import TagPicker
from tui.transcript_view import TranscriptView
from tui.verdict_dialog import VerdictDialog

HINT = (
    "a-f ←→ pane · ↑↓ scroll · 1-5 score · t tags · n note · v verdict · p best (= tie, x bad)"
    " · y copy · enter done → next · s skip · [ back · ] forward · q quit"
)


@dataclass(frozen=True)
class Shown:
    """The item on screen: the item, this rater's claim on it (None for a skipped one), and its
    panes in the order shown: (session position, label, model)."""

    item: StudyItem
    claim: Claim | None
    panes: tuple[tuple[int, str, str], ...]


class StudyScreen(Screen[None]):
    CSS_PATH = "study_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Prev pane", show=False),
        Binding("right", "move(1)", "Next pane", show=False),
        Binding("up", "scroll(-1)", show=False),
        Binding("down", "scroll(1)", show=False),
        Binding("pageup", "scroll(-10)", show=False),
        Binding("pagedown", "scroll(10)", show=False),
        Binding("home", "scroll_edge(0)", show=False),
        Binding("end", "scroll_edge(1)", show=False),
        *[Binding(str(n), f"score({n})", show=False) for n in range(1, 6)],
        Binding("t", "tags", show=False),
        Binding("n", "note", show=False),
        Binding("v", "verdict", show=False),
        Binding("p", "pick", show=False),
        Binding("equals_sign", "pick_outcome('tie')", show=False),
        Binding("x", "pick_outcome('bothbad')", show=False),
        Binding("enter", "done", show=False),
        Binding("s", "skip", show=False),
        Binding("left_square_bracket", "back", show=False),
        Binding("right_square_bracket", "forward", show=False),
        Binding("q", "quit_queue", show=False),
        Binding("y", "copy_reply", show=False),
    ]

    class Changed(Message):
        """Posted after every stored mark or move, with what the status line says."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, store: Store, study: StudyRow, rater: str) -> None:
        super().__init__()
        self.store = store
        self.study = study
        self.rater = rater
        self.shown: Shown | None = None
        self.focused_pane = 0
        self.item_replies: dict[int, int] = {}
        """The reply being rated in each pane, by its place on screen (what ``y`` copies)."""
        self.history: list[int] = []
        """Item ids this rater finished or skipped, oldest first (where ``[`` goes back to)."""
        self.back_at: int | None = None
        """Index into :attr:`history` while looking back; None on the current item."""
        self.finished = False

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="study-box"):
            yield Static("", id="study-title", markup=False)
            yield Static("", id="study-question", markup=False)
            yield Horizontal(id="study-panes")
            yield Static("", id="study-status", markup=False)
            yield Static(HINT, id="study-hint", markup=False)

    def on_mount(self) -> None:
        self.history = self._history()
        self.deal()

    def _history(self) -> list[int]:
        claims = [
            (c.done_at or "", c.item_id)
            for c in self.store.studies.claims(self.study.id)
            if c.rater == self.rater and c.done
        ]
        skips = [
            (s.created_at, s.item_id)
            for s in self.store.studies.skips(self.study.id)
            if s.rater == self.rater
        ]
        return list(dict.fromkeys(item for _, item in sorted(claims + skips)))

    # -- what is on screen ------------------------------------------------------------------

    def deal(self) -> None:
        """Show the rater's current item: the one they hold, else a new claim, else the end."""
        self.back_at = None
        if self.study.closed:
            self.finished = True
            self.shown = None
            self._show_end()
            return
        claim = self.store.studies.claim_next(self.study, self.rater)
        if claim is None:
            self.finished = True
            self.shown = None
            self._show_end()
            return
        self.finished = False
        self._show(self.store.studies.item(claim.item_id), claim)

    def _show_item_id(self, item_id: int) -> None:
        item = self.store.studies.item(item_id)
        self._show(item, self.store.studies.claim_of(item_id, self.rater))

    def _names_visible(self) -> bool:
        return rater_sees_names(self.store, self.study, self.rater)

    def _show(self, item: StudyItem, claim: Claim | None) -> None:
        record = self.store.load_record(item.session_id)
        panes = {p.position: p for p in record.panes}
        order = claim.positions if claim else tuple(sorted(panes))
        hidden = not self._names_visible()
        self.shown = Shown(
            item,
            claim,
            tuple(
                (position, PANE_LABELS[index], panes[position].profile_name)
                for index, position in enumerate(order)
            ),
        )
        latest = record.latest_replies()
        container = self.query_one("#study-panes", Horizontal)
        container.remove_children()
        columns = []
        self.item_replies = {}
        for place, (position, label, model) in enumerate(self.shown.panes):
            item_reply = latest.get((position, item.turn))
            if item_reply is not None:
                self.item_replies[place] = item_reply.id
            view = TranscriptView(classes="study-transcript")
            for turn in record.turns:
                if turn.idx > item.turn:
                    break
                view.add_user(turn.text, turn.idx)
                reply = latest.get((position, turn.idx))
                if reply is not None:
                    view.start_reply(reply.id, turn.idx, reply.text)
            columns.append(
                Vertical(
                    Static(shown_name(label, model, hidden=hidden), classes="study-pane-title"),
                    view,
                    Static("", classes="study-marks"),
                    classes="study-pane",
                )
            )
        container.mount_all(columns)
        self.focused_pane = min(self.focused_pane, len(columns) - 1)
        self.call_after_refresh(self._scroll_all_to_end)
        question = next((t.text for t in record.turns if t.idx == item.turn), "")
        self.query_one("#study-question", Static).update(
            f"item {item.idx} · turn {item.turn + 1}: {question}"
        )
        self.refresh_marks()

    def _scroll_all_to_end(self) -> None:
        for view in self.query(TranscriptView):
            view.scroll_end(animate=False)

    def _show_end(self) -> None:
        self.query_one("#study-panes", Horizontal).remove_children()
        done = self._done_count()
        visible = self._names_visible()
        self.query_one("#study-question", Static).update(
            (
                "The study is closed. "
                if self.study.closed
                else "Nothing left for you in this study: "
            )
            + f"{done} items rated. Thank you! [ looks back."
            + (
                " Model names are shown on the items you look back at."
                if visible and self.study.blind
                else ""
            )
        )
        self.refresh_marks()

    def _done_count(self) -> int:
        return sum(
            1 for c in self.store.studies.claims(self.study.id) if c.rater == self.rater and c.done
        )

    def progress_text(self) -> str:
        """ "12 / 40": the items this rater finished, of those they finished, hold, or may still
        be dealt."""
        done = self._done_count()
        holding = 1 if self.store.studies.open_claim(self.study.id, self.rater) else 0
        total = done + holding + self.store.studies.remaining_for(self.study, self.rater)
        return f"{done} / {total}"

    def refresh_marks(self) -> None:
        title = f"study {self.study.name} · {self.rater} · {self.progress_text()}"
        if self.back_at is not None:
            title += f" · looking back ({self.back_at + 1} of {len(self.history)})"
        self.query_one("#study-title", Static).update(title)
        status = ""
        if self.shown is not None:
            item = self.shown.item
            scores = newest_by(
                (
                    s
                    for s in self.store.studies.scores(self.study.id, self.rater)
                    if s.item_id == item.id
                ),
                lambda s: s.shown_position,
            )
            verdicts = newest_by(
                (
                    v
                    for v in self.store.studies.verdicts(self.study.id, self.rater)
                    if v.item_id == item.id
                ),
                lambda v: v.shown_position,
            )
            picks = [
                p
                for p in self.store.studies.picks(self.study.id, self.rater)
                if p.item_id == item.id
            ]
            for index, marks in enumerate(self.query(".study-marks").results(Static)):
                parts = []
                if index in scores:
                    score = scores[index]
                    if score.score is not None:
                        parts.append(f"★{score.score} {SCORE_LABELS_JA.get(score.score, '')}")
                    if score.tags:
                        parts.append(" ".join(f"#{t}" for t in score.tags))
                    if score.note:
                        parts.append(f"✎ {score.note}")
                if index in verdicts:
                    parts.append(verdict_label(verdicts[index].verdict))
                if picks and picks[-1].winner_shown_position == index:
                    parts.append("◆ best")
                marks.update(" · ".join(parts) or "—")
            for index, column in enumerate(self.query(".study-pane")):
                column.set_class(index == self.focused_pane, "-focused")
            if picks and picks[-1].outcome != "pane":
                status = "your pick: " + ("tie" if picks[-1].outcome == "tie" else "all bad")
            if self.shown.claim is None:
                status = "you skipped this item; rating it takes it back if a place is free"
        self.query_one("#study-status", Static).update(status)
        self.post_message(self.Changed(title + (f" · {status}" if status else "")))

    # -- keys -------------------------------------------------------------------------------

    def on_key(self, event: events.Key) -> None:
        if event.character and event.character in "abcdef" and self.shown is not None:
            index = "abcdef".index(event.character)
            if index < len(self.shown.panes):
                event.stop()
                self.focused_pane = index
                self.refresh_marks()

    def action_move(self, step: int) -> None:
        if self.shown is not None:
            self.focused_pane = (self.focused_pane + step) % len(self.shown.panes)
            self.refresh_marks()

    def _focused_view(self) -> TranscriptView | None:
        views = list(self.query(TranscriptView))
        return views[self.focused_pane] if 0 <= self.focused_pane < len(views) else None

    def action_copy_reply(self) -> None:
        """Copy the focused pane's reply to the clipboard (OSC 52 in a terminal; the browser's
        clipboard when served)."""
        view = self._focused_view()
        reply_id = self.item_replies.get(self.focused_pane)
        text = None if view is None or reply_id is None else view.reply_text(reply_id)
        if not text:
            self.notify("this pane has no reply to copy", severity="warning", timeout=3)
            return
        self.app.copy_to_clipboard(text)
        self.notify(f"reply copied ({len(text)}字)", title="clipboard", timeout=3)

    def action_scroll(self, lines: int) -> None:
        view = self._focused_view()
        if view is not None:
            view.scroll_relative(y=lines, animate=False)

    def action_scroll_edge(self, end: int) -> None:
        view = self._focused_view()
        if view is not None:
            (view.scroll_end if end else view.scroll_home)(animate=False)

    def _claimed(self) -> Shown | None:
        """The item on screen with this rater's claim on it (taken back for a skipped item, or
        one whose claim was released while the rater was away, if a place is still free)."""
        if self.shown is None:
            return None
        held = self.store.studies.claim_of(self.shown.item.id, self.rater)
        if held is None:  # skipped, or released after the claim timeout while away
            try:
                claim = self.store.studies.claim_item(self.study, self.shown.item.id, self.rater)
            except KurabeError as exc:
                self.notify(str(exc), severity="warning")
                return None
            self.shown = Shown(self.shown.item, claim, self.shown.panes)
        return self.shown

    def _store(self, work: str, call: object) -> None:
        try:
            assert callable(call)
            call()
        except KurabeError as exc:
            self.notify(f"{work} not saved: {exc}", severity="error")
        self.refresh_marks()

    def _focused_position(self) -> int | None:
        if self.shown is None:
            return None
        return self.shown.panes[self.focused_pane][0]

    def _latest_score(self) -> tuple[int | None, tuple[str, ...], str]:
        shown = self.shown
        assert shown is not None
        rows = [
            s
            for s in self.store.studies.scores(self.study.id, self.rater)
            if s.item_id == shown.item.id and s.shown_position == self.focused_pane
        ]
        if not rows:
            return None, (), ""
        return rows[-1].score, rows[-1].tags, rows[-1].note

    def _rate(self, *, score: int | None, tags: Sequence[str], note: str) -> None:
        shown = self._claimed()
        position = self._focused_position()
        if shown is None or position is None:
            return
        self._store(
            "rating",
            lambda: self.store.studies.add_score(
                shown.item.id, self.rater, position, score=score, tags=tags, note=note
            ),
        )

    def action_score(self, score: int) -> None:
        if self.shown is None:
            return
        _, tags, note = self._latest_score()
        self._rate(score=score, tags=tags, note=note)

    def action_tags(self) -> None:
        if self.shown is None:
            return
        score, tags, note = self._latest_score()

        def chosen(result: tuple[str, ...] | None) -> None:
            if result is not None:
                self._rate(score=score, tags=result, note=note)

        label = self.shown.panes[self.focused_pane][1]
        self.app.push_screen(TagPicker(f"Tags for {label}", DEFAULT_TAGS, tags), chosen)

    def action_note(self) -> None:
        if self.shown is None:
            return
        score, tags, note = self._latest_score()

        def written(result: str | None) -> None:
            if result is not None:
                self._rate(score=score, tags=tags, note=result)

        label = self.shown.panes[self.focused_pane][1]
        self.app.push_screen(NoteDialog(f"Note on {label}", note), written)

    def action_verdict(self) -> None:
        if self.shown is None:
            return
        label = self.shown.panes[self.focused_pane][1]

        def given(result: tuple[str, str] | None) -> None:
            shown = self._claimed() if result is not None else None
            position = self._focused_position()
            if result is None or shown is None or position is None:
                return
            verdict, note = result
            self._store(
                "verdict",
                lambda: self.store.studies.add_verdict(
                    shown.item.id, self.rater, position, verdict=verdict, note=note
                ),
            )

        self.app.push_screen(VerdictDialog(f"Verdict on {label}", VERDICTS), given)

    def _pick(self, result: PickResult) -> None:
        shown = self._claimed()
        if shown is None:
            return
        if isinstance(result, int):
            position: int | None = shown.panes[result][0]
            outcome = "pane"
        else:
            position, outcome = None, result
        self._store(
            "pick",
            lambda: self.store.studies.add_pick(
                shown.item.id, self.rater, position=position, outcome=outcome
            ),
        )

    def action_pick(self) -> None:
        if self.shown is None:
            return

        def picked(result: PickResult | None) -> None:
            if result is not None:
                self._pick(result)

        labels = [label for _, label, _ in self.shown.panes]
        self.app.push_screen(PickDialog(self.shown.item.turn, labels), picked)

    def action_pick_outcome(self, outcome: str) -> None:
        if self.shown is not None:
            self._pick("tie" if outcome == "tie" else "bothbad")

    def action_done(self) -> None:
        if self.shown is None or self.shown.claim is None:
            if self.back_at is not None:
                self.action_forward()
            return
        item_id = self.shown.item.id
        marked = any(
            s.item_id == item_id for s in self.store.studies.scores(self.study.id, self.rater)
        ) or any(p.item_id == item_id for p in self.store.studies.picks(self.study.id, self.rater))
        if not marked:
            self.notify("score a pane or pick the best one first (or s to skip)")
            return
        if self.back_at is not None:
            self.action_forward()
            return
        if self._claimed() is None:
            return
        try:
            self.store.studies.finish(item_id, self.rater)
        except KurabeError as exc:
            self.notify(f"not finished: {exc}", severity="error")
            return
        if item_id not in self.history:
            self.history.append(item_id)
        self.deal()

    def action_skip(self) -> None:
        if self.shown is None or self.back_at is not None:
            return
        item_id = self.shown.item.id
        self.store.studies.skip(item_id, self.rater)
        self.history.append(item_id)
        self.deal()

    def action_back(self) -> None:
        if not self.history:
            return
        index = len(self.history) - 1 if self.back_at is None else self.back_at - 1
        if index < 0:
            return
        self.back_at = index
        self._show_item_id(self.history[index])

    def action_forward(self) -> None:
        if self.back_at is None:
            return
        if self.back_at + 1 < len(self.history):
            self.back_at += 1
            self._show_item_id(self.history[self.back_at])
        else:
            self.deal()

    def action_quit_queue(self) -> None:
        self.app.exit()


class StudyApp(App[None]):
    """The app around one rater's queue (``kurabe study rate``)."""

    TITLE = "kurabe study"

    def __init__(self, store: Store, study: StudyRow, rater: str) -> None:
        super().__init__()
        self.store = store
        self.study = study
        self.rater = rater

    def on_mount(self) -> None:
        self.push_screen(StudyScreen(self.store, self.study, self.rater))


@dataclass(frozen=True)
class StudyRateOptions:
    """``kurabe study rate``'s options."""

    name: str = ""
    rater: str | None = None
    db: str | None = None


def run_study_queue(args: argparse.Namespace) -> int:
    """``kurabe study rate NAME [--rater R] [--db PATH]``: open the rater's queue (refused before
    anything is drawn when the study is closed or does not take this rater)."""
    options = options_from(StudyRateOptions, args)
    rater = resolve_study_rater(options.rater)
    with Store.open_default(options.db) as store:
        study = store.studies.get(options.name)
        if not study.closed:  # a closed study opens to look back, with the names shown
            store.studies.join(study, rater)
        StudyApp(store, study, rater).run()
    return 0
