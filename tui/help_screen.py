"""All the keys of the main screen (the footer shows only the important ones). ``?`` / F1."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.keymap import KEY_HELP, Where

SECTION_TITLES: dict[Where, str] = {
    "input": "In the input box",
    "anywhere": "Anywhere",
    "panes": "When a pane has the focus",
}


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = Path(__file__).with_name("help_screen.tcss").read_text(encoding="utf-8")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f1,question_mark", "dismiss_help", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static("比べ kurabe — keys", id="help-title", markup=False)
            for where, title in SECTION_TITLES.items():
                yield Static(title, classes="help-section", markup=False)
                width = max(len(item.keys) for item in KEY_HELP) + 2
                for item in KEY_HELP:
                    if item.where != where:
                        continue
                    yield Static(
                        Content.assemble(
                            (item.keys.ljust(width), "bold $text-accent"), item.description
                        ),
                        classes="help-line",
                    )
            yield Static("esc: close", classes="help-hint", markup=False)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
