"""Choose one item from a list (a persona, a scenario, an export format).

Items that cannot be chosen are shown greyed out with the reason. Dismisses with the chosen
item's key or ``None`` when cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui.dialog_base import Dialog


@dataclass(frozen=True, slots=True)
class Choice:
    key: str
    label: str
    detail: str = ""
    unavailable: str | None = None
    """Why it cannot be chosen, or None."""


def choice_prompt(choice: Choice) -> Content:
    spans: list[tuple[str, str] | str] = [(choice.label, "bold" if not choice.unavailable else "")]
    if choice.detail:
        spans.append(("  " + choice.detail, "dim"))
    if choice.unavailable:
        spans.append(("  — " + choice.unavailable, "italic"))
    return Content.assemble(*spans)


class ChoiceDialog(Dialog[str]):
    def __init__(
        self, title: str, choices: Sequence[Choice], current: str | None = None, hint: str = ""
    ) -> None:
        super().__init__()
        self._title = title
        self._choices = list(choices)
        self._current = current
        self._hint = hint or "↑↓: move · enter: choose · esc: cancel"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(self._title, classes="dialog-title", markup=False)
            yield OptionList(
                *[
                    Option(choice_prompt(choice), id=choice.key, disabled=bool(choice.unavailable))
                    for choice in self._choices
                ]
            )
            yield Static(self._hint, classes="dialog-hint", markup=False)

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        keys = [choice.key for choice in self._choices]
        if self._current in keys:
            options.highlighted = keys.index(self._current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)
