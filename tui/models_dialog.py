"""Choose the panes: one to six model profiles, in order, from everything ``kurabe models`` lists.

Profiles that cannot run now (no API key, no model file) are listed greyed out with the reason.
Dismisses with the chosen profile names in list order, or ``None`` when cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection

from kurabe.core.pane_labels import MAX_PANES
from tui.choice_dialog import Choice, choice_prompt
from tui.dialog_base import Dialog


class ModelsDialog(Dialog[list[str]]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "save", "Open", priority=True),
    ]

    def __init__(self, choices: Sequence[Choice], selected: Sequence[str]) -> None:
        super().__init__()
        self._choices = list(choices)
        self._selected = set(selected)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static("Panes: choose 1–6 models", classes="dialog-title", markup=False)
            yield SelectionList[str](
                *[
                    Selection(
                        choice_prompt(choice),
                        choice.key,
                        choice.key in self._selected and not choice.unavailable,
                        disabled=bool(choice.unavailable),
                    )
                    for choice in self._choices
                ]
            )
            yield Static(
                "space: toggle · enter: open a new session with these panes · esc: cancel",
                classes="dialog-hint",
                markup=False,
                id="models-hint",
            )

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_save(self) -> None:
        chosen = set(self.query_one(SelectionList).selected)
        names = [choice.key for choice in self._choices if choice.key in chosen]
        if not 1 <= len(names) <= MAX_PANES:
            self.query_one("#models-hint", Static).update(
                f"choose between 1 and {MAX_PANES} models ({len(names)} chosen)"
            )
            return
        self.dismiss(names)
