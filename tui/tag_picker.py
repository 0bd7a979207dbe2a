"""Tag picker: checkboxes for the reply's tags, plus a field to add a tag of one's own.

Dismisses with the chosen tags (a tuple, possibly empty) or ``None`` when cancelled.
Space toggles, Enter (in the list) or Ctrl+S saves, Esc cancels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, SelectionList, Static

from tui.dialog_base import Dialog


class TagPicker(Dialog[tuple[str, ...]]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "enter", "Save", priority=True),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(self, title: str, tags: Sequence[str], selected: Sequence[str] = ()) -> None:
        super().__init__()
        self._title = title
        self._tags = list(dict.fromkeys([*tags, *selected]))
        self._selected = set(selected)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(self._title, classes="dialog-title", markup=False)
            yield SelectionList[str](
                *[(tag, tag, tag in self._selected) for tag in self._tags], id="tags"
            )
            yield Input(placeholder="another tag (Enter adds it)", id="new-tag")
            yield Static(
                "space: toggle · enter: save · ctrl+s: save · esc: cancel",
                classes="dialog-hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_enter(self) -> None:
        new_tag = self.query_one("#new-tag", Input)
        if self.focused is new_tag and new_tag.value.strip():
            self._add_tag(new_tag.value)
            new_tag.value = ""
            self.query_one(SelectionList).focus()
            return
        self.action_save()

    def _add_tag(self, text: str) -> None:
        tag = "-".join(text.strip().lower().split())
        selection: SelectionList[str] = self.query_one(SelectionList)
        if tag not in self._tags:
            self._tags.append(tag)
            selection.add_option((tag, tag, True))
        else:
            selection.select(tag)

    def action_save(self) -> None:
        chosen = self.query_one(SelectionList).selected
        self.dismiss(tuple(tag for tag in self._tags if tag in chosen))
