"""The focused pane's exact prompt for its latest turn: what the model was given. ``w``.

What is shown is :func:`kurabe.session.sent_prompt.sent_prompt`: for a local pane the text ``kurabe
prompt`` prints and its note line, for an API pane the messages its backend sends, nothing in a
blind session before the reveal.

The text is shown literally (control characters made visible, never read as markup) and can be
selected with the mouse.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from kurabe.session.sent_prompt import SentPrompt
from tui.textflow import make_visible


class SentPromptScreen(ModalScreen[None]):
    """A modal, scrollable view of one :class:`~kurabe.session.sent_prompt.SentPrompt`."""

    DEFAULT_CSS = Path(__file__).with_name("sent_prompt_screen.tcss").read_text(encoding="utf-8")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,w", "close", "Back"),
    ]

    def __init__(self, prompt: SentPrompt) -> None:
        super().__init__()
        self.prompt = prompt

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="sent-prompt-box"):
            yield Static(self.prompt.title, id="sent-prompt-title", markup=False)
            if self.prompt.text:
                yield Static(Content(make_visible(self.prompt.text)), id="sent-prompt-text")
            yield Static(self.prompt.note, classes="sent-prompt-note", markup=False)
            yield Static("esc: back", classes="sent-prompt-hint", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
