"""The session at a glance: per pane its scores, picks and verdict; per turn the pick; charts.

Read from the store (what is saved is what is shown). In a blind session not yet revealed the
panes are shown by letter only. Two charts follow the table (:class:`~tui.bar_chart.BarChart`):
Bradley–Terry strength with its 95% interval, and speed (tok/s and 字/s). They cover this
session's picks by this rater; ``l`` switches them to the leaderboard of every session in the
store (the same rater), and back. While a blind session is not revealed that view is refused, since
model names and speeds across sessions would tell which pane is which. ``e`` exports from here;
Esc goes back.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from kurabe.analysis.charts import (
    Line,
    SpeedBar,
    StrengthBar,
    session_speed_bars,
    session_strength_bars,
    speed_bars,
    speed_lines,
    strength_bars,
    strength_lines,
    wide_interval_note,
)
from kurabe.analysis.leaderboard import MIN_BATTLES_FOR_INTERVAL
from kurabe.core.blind import shown_name
from kurabe.core.verdicts import verdict_label
from kurabe.export.pane_summary import pane_summaries
from kurabe.session.comparison import ComparisonSession
from kurabe.store.records import SessionRecord
from kurabe.store.store import Store
from tui.bar_chart import BarChart

STRENGTH_TITLE = "Bradley–Terry strength (1000 = average) · 95% interval · {scope}"
WIDE_INTERVAL_TITLE = (
    f" · under {MIN_BATTLES_FOR_INTERVAL} battles: the win share's Wilson interval, "
    "not a bootstrap of too few"
)
SPEED_TITLE = "Speed: tok/s and 字/s, mean of completed replies · {scope}"


def _computing(width: int) -> list[Line]:
    return [[("computing…", "muted")]]


def pane_rows(record: SessionRecord, hidden: bool, rater: str) -> list[list[str]]:
    """One row per pane: letter, model, replies, rated, mean score, wins, tok/s, verdict."""
    rows = []
    for summary in pane_summaries(record, rater):
        verdict_text = ""
        if summary.verdict is not None:
            verdict_text = verdict_label(summary.verdict.verdict)
            if summary.verdict.note:
                verdict_text += f" — {summary.verdict.note}"
        rows.append(
            [
                summary.label,
                shown_name("?", summary.profile_name, hidden=hidden),
                f"{summary.completed}/{summary.replies}",
                str(len(summary.scores)),
                f"{summary.mean_score:.2f}" if summary.mean_score is not None else "–",
                str(summary.wins),
                f"{summary.tokens_per_s:.1f}" if summary.tokens_per_s else "–",
                verdict_text or "–",
            ]
        )
    return rows


def pick_line(record: SessionRecord, rater: str) -> str:
    labels = {pane.position: pane.label for pane in record.panes}
    parts = []
    for turn in record.turns:
        pick = record.latest_pick(turn.idx, rater)
        if pick is None:
            shown = "·"
        elif pick.outcome == "pane" and pick.winner is not None:
            shown = labels.get(pick.winner, "?")
        elif pick.outcome == "tie":
            shown = "="
        else:
            shown = "✗"
        parts.append(f"{turn.idx + 1}:{shown}")
    return "  ".join(parts) if parts else "no turns yet"


class SummaryScreen(ModalScreen[None]):
    DEFAULT_CSS = Path(__file__).with_name("summary_screen.tcss").read_text(encoding="utf-8")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,s", "close", "Back"),
        Binding("e", "app.export", "Export"),
        Binding("l", "toggle_scope", "All sessions"),
    ]

    def __init__(
        self, session: ComparisonSession, store: Store, score_labels: dict[int, str]
    ) -> None:
        super().__init__()
        self.session = session
        self.store = store
        """The app's store: every session in it makes the leaderboard."""
        self.score_labels = score_labels
        self.all_sessions = False
        """Charts of every session in the store (the leaderboard) instead of this one."""
        self.charts_ready = False
        """The charts show the current scope's numbers (they are computed in a thread)."""

    def compose(self) -> ComposeResult:
        session = self.session
        record = session.record()
        title = f"Session #{session.id} · {session.persona.title}"
        if session.scenario is not None:
            title += f" · {session.scenario.title}"
        with VerticalScroll(id="summary-box"):
            yield Static(title, id="summary-title", markup=False)
            table: DataTable[Text] = DataTable(id="summary-table", cursor_type="row")
            table.add_columns("", "model", "done", "rated", "mean ★", "best", "tok/s", "verdict")
            for row in pane_rows(record, session.hidden, session.rater):
                table.add_row(*[Text(cell) for cell in row])
            yield table
            yield Static(
                f"best per turn: {pick_line(record, session.rater)}",
                id="summary-picks",
                markup=False,
            )
            labels = " · ".join(f"{k} {v}" for k, v in sorted(self.score_labels.items()))
            yield Static(
                f"★ {labels}   rater: {session.rater}", classes="summary-hint", markup=False
            )
            yield Static("", id="strength-title", classes="chart-title", markup=False)
            yield BarChart(_computing, id="strength-chart")
            yield Static("", id="speed-title", classes="chart-title", markup=False)
            yield BarChart(_computing, id="speed-chart")
            yield Static(
                "e: export · l: all sessions / this one · esc: back",
                classes="summary-hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self._start_charts()

    def chart_data(self, all_sessions: bool) -> tuple[list[StrengthBar], list[SpeedBar]]:
        """The bars of this session (its rater's picks), or of the leaderboard of every session."""
        session = self.session
        if all_sessions:
            from kurabe.analysis.leaderboard import build_leaderboard

            board = build_leaderboard(self.store, rater=session.rater)
            return strength_bars(board.models), speed_bars(board.models)
        record = session.record()
        return (
            session_strength_bars(record, hide_names=session.hidden, rater=session.rater),
            session_speed_bars(record, hide_names=session.hidden),
        )

    def _start_charts(self) -> None:
        scope = "all sessions" if self.all_sessions else "this session"
        self.query_one("#strength-title", Static).update(STRENGTH_TITLE.format(scope=scope))
        self.query_one("#speed-title", Static).update(SPEED_TITLE.format(scope=scope))
        self.charts_ready = False
        self._compute_charts(self.all_sessions)

    @work(thread=True, exclusive=True, group="charts")
    def _compute_charts(self, all_sessions: bool) -> None:
        """The bootstrap (200 refits) takes a moment on a long session, and every session's
        records for the leaderboard more: off the event loop, so streams and keys go on."""
        strength, speed = self.chart_data(all_sessions)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_charts, strength, speed)

    def _show_charts(self, strength: list[StrengthBar], speed: list[SpeedBar]) -> None:
        if wide_interval_note(strength) is not None:
            scope = "all sessions" if self.all_sessions else "this session"
            self.query_one("#strength-title", Static).update(
                STRENGTH_TITLE.format(scope=scope) + WIDE_INTERVAL_TITLE
            )
        self.query_one("#strength-chart", BarChart).show(
            lambda width: strength_lines(strength, width)
        )
        self.query_one("#speed-chart", BarChart).show(lambda width: speed_lines(speed, width))
        self.charts_ready = True

    def action_toggle_scope(self) -> None:
        if not self.all_sessions and self.session.hidden:
            self.notify("reveal the models first (ctrl+r): the leaderboard names them")
            return
        self.all_sessions = not self.all_sessions
        self._start_charts()

    def action_close(self) -> None:
        self.dismiss(None)
