"""The conversation verdict for one pane: Great / OK / subpar / Can't stay in character, a note.

Keys 1–4 choose; the note field is optional; Enter saves. Dismisses with ``(verdict, note)``
(the verdict is one of ``kurabe.core.verdicts.VERDICTS``) or ``None`` when cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from kurabe.core.verdicts import verdict_label
from tui.dialog_base import Dialog


class VerdictDialog(Dialog[tuple[str, str]]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "save", "Save", priority=True),
        *[Binding(str(number), f"choose({number - 1})", show=False) for number in range(1, 5)],
    ]

    def __init__(
        self,
        title: str,
        verdicts: Sequence[str],
        current: str | None = None,
        note: str = "",
    ) -> None:
        super().__init__()
        self._title = title
        self._verdicts = list(verdicts)
        self._current = current
        self._note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(self._title, classes="dialog-title", markup=False)
            yield OptionList(
                *[
                    Option(f"{number}  {verdict_label(verdict)}", id=verdict)
                    for number, verdict in enumerate(self._verdicts, start=1)
                ],
                id="verdicts",
            )
            yield Input(self._note, placeholder="note (optional)", id="verdict-note")
            yield Static(
                "1–4 or ↑↓: choose · tab: note · enter: save · esc: cancel",
                classes="dialog-hint",
                markup=False,
            )

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self._current in self._verdicts:
            options.highlighted = self._verdicts.index(self._current)
        else:
            options.highlighted = 0
        options.focus()

    def action_choose(self, index: int) -> None:
        if isinstance(self.focused, Input):
            self.focused.insert_text_at_cursor(str(index + 1))
            return
        if 0 <= index < len(self._verdicts):
            self.query_one(OptionList).highlighted = index

    def action_save(self) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is None:
            return
        note = self.query_one("#verdict-note", Input).value.strip()
        self.dismiss((self._verdicts[highlighted], note))
