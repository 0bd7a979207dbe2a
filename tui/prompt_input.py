"""The one input box that sends a line to every pane.

A :class:`~textual.widgets.TextArea`: Enter sends, Ctrl+J (or Shift+Enter / Alt+Enter where the
terminal reports them) starts a new line, Tab moves the focus to the panes. Text typed through the
terminal's IME arrives as ordinary characters; the TextArea keeps the terminal cursor at the
insertion point so the IME's composition window opens in the right place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import TextArea

NEWLINE_KEYS = frozenset({"ctrl+j", "shift+enter", "alt+enter", "ctrl+enter"})


class PromptInput(TextArea):
    """Enter sends the text (posts :class:`PromptInput.Submitted`); Ctrl+J adds a line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit", "Send", show=True, priority=False),
        Binding("ctrl+j", "newline", "New line", show=False, key_display="^j"),
    ]

    @dataclass
    class Submitted(Message):
        """The user pressed Enter on some text."""

        prompt_input: PromptInput
        text: str

        @property
        def control(self) -> PromptInput:
            return self.prompt_input

    def __init__(self, *, id: str | None = None, placeholder: str = "") -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            compact=True,
            placeholder=placeholder,
            highlight_cursor_line=False,
        )

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_submit()
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.action_newline()
            return
        await super()._on_key(event)

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        self.insert("\n")

    def set_text(self, text: str) -> None:
        """Replace the content and put the cursor at the end."""
        self.load_text(text)
        self.move_cursor(self.document.end)
