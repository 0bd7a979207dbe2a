"""Pick the best pane of a turn: its letter, ``=`` for a tie, ``x`` when all are bad.

Dismisses with the pane index, ``"tie"``, ``"bothbad"``, or ``None`` when cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Static

from tui.dialog_base import Dialog

PickResult = int | Literal["tie", "bothbad"]


class PickDialog(Dialog[PickResult]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("equals_sign", "pick_tie", "Tie"),
        Binding("x", "pick_bad", "All bad"),
    ]

    def __init__(self, turn: int, labels: Sequence[str]) -> None:
        super().__init__()
        self._turn = turn
        self._labels = [label.lower() for label in labels]

    def compose(self) -> ComposeResult:
        letters = " / ".join(self._labels)
        with Vertical(classes="dialog-box"):
            yield Static(
                f"Best reply of turn {self._turn + 1}?", classes="dialog-title", markup=False
            )
            yield Static(f"{letters}: that pane · =: tie · x: all bad · esc: cancel", markup=False)

    def on_key(self, event: events.Key) -> None:
        if event.character and event.character.lower() in self._labels:
            event.stop()
            self.dismiss(self._labels.index(event.character.lower()))

    def action_pick_tie(self) -> None:
        self.dismiss("tie")

    def action_pick_bad(self) -> None:
        self.dismiss("bothbad")
