"""A one-field dialog for a free-text note on a reply (or any short text).

Dismisses with the note (possibly empty: clearing a note is a change) or ``None`` when cancelled.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from tui.dialog_base import Dialog


class NoteDialog(Dialog[str]):
    def __init__(self, title: str, note: str = "", *, placeholder: str = "note") -> None:
        super().__init__()
        self._title = title
        self._note = note
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(self._title, classes="dialog-title", markup=False)
            yield Input(self._note, placeholder=self._placeholder, id="note")
            yield Static("enter: save · esc: cancel", classes="dialog-hint", markup=False)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())
