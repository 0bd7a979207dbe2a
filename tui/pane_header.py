"""A pane's one-line header, which is also what takes the focus for the pane.

Focusing a one-line widget (rather than the pane's transcript) keeps a change of focus cheap
while six panes stream: only two header lines are redrawn, not two whole columns. The scroll keys
pressed on the header scroll the pane's transcript.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Static

if TYPE_CHECKING:
    from tui.transcript_view import TranscriptView


class PaneHeader(Static, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "scroll('up')", "Scroll up", show=False),
        Binding("down", "scroll('down')", "Scroll down", show=False),
        Binding("pageup", "scroll('page_up')", "Page up", show=False),
        Binding("pagedown", "scroll('page_down')", "Page down", show=False),
        Binding("home", "scroll('home')", "Top", show=False),
        Binding("end", "scroll('end')", "Bottom", show=False),
    ]

    def __init__(self, transcript: TranscriptView, *, classes: str = "") -> None:
        super().__init__("", classes=classes, markup=False)
        self.transcript = transcript

    def action_scroll(self, where: str) -> None:
        view = self.transcript
        if where == "up":
            view.scroll_up(animate=False)
        elif where == "down":
            view.scroll_down(animate=False)
        elif where == "page_up":
            view.scroll_page_up(animate=False)
        elif where == "page_down":
            view.scroll_page_down(animate=False)
        elif where == "home":
            view.scroll_home(animate=False)
        elif where == "end":
            view.scroll_end(animate=False)
