"""Shared base of kurabe's small modal dialogs: a centred box, a title, a hint line, Esc closes.

Each dialog is its own module (tags, note, verdict, pick, confirm, choices, models, export); they
share the look in ``dialog.tcss`` beside this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, TypeVar

from textual.binding import Binding, BindingType
from textual.screen import ModalScreen

ResultT = TypeVar("ResultT")

DIALOG_CSS = Path(__file__).with_name("dialog.tcss").read_text(encoding="utf-8")


class Dialog(ModalScreen[ResultT]):
    """A modal that dismisses with ``None`` on Escape."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self) -> None:
        super().__init__(classes="kurabe-dialog")

    def action_cancel(self) -> None:
        self.dismiss(None)
