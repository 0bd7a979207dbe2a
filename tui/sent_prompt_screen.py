"""The focused pane's exact prompt for its latest turn: what the model was given. ``w``.

For a local pane the text is what ``kurabe prompt`` prints: the backend's own rendering of the
conversation through the profile's prompt format (:meth:`LlamaCppBackend.render
<backends.llama_cpp_backend.LlamaCppBackend.render>`, the function that command calls), so what is
shown is what the model got, special tokens and all. An API pane has no prompt text of its own
(the server applies its template): it shows the messages its backend sends. In a blind session
not yet revealed the prompt stays hidden, as a template tells a model family apart.

The text is shown literally (control characters made visible, never read as markup) and can be
selected with the mouse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from backends.base import Conversation
from backends.templates import RenderedPrompt
from kurabe.session import ComparisonSession
from tui.textflow import make_visible


class RendersPrompt(Protocol):
    """A local backend: it turns a conversation into one prompt text."""

    def render(self, conversation: Conversation) -> RenderedPrompt: ...


class SendsMessages(Protocol):
    """An API backend: it sends a conversation as chat messages."""

    def messages(self, conversation: Conversation) -> list[dict[str, str]]: ...


@dataclass(frozen=True, slots=True)
class SentPrompt:
    title: str
    text: str
    """The prompt itself, exactly (empty when there is nothing to show)."""
    note: str
    """What the text is: its format and stop strings, or why there is none."""


def sent_prompt(session: ComparisonSession, pane: int, turn: int) -> SentPrompt:
    """What pane ``pane`` was given for ``turn``."""
    target = session.panes[pane]
    title = f"Pane {target.label} · turn {turn + 1} · the exact prompt"
    if target.hidden:
        return SentPrompt(title, "", "Hidden in a blind session until the reveal (ctrl+r).")
    conversation = session.conversation_for(pane, turn)
    backend = target.backend
    if callable(getattr(backend, "render", None)):
        rendered = cast(RendersPrompt, backend).render(conversation)
        note = f"format: {rendered.format_name or target.profile.prompt_format}"
        note += f" · stop: {list(rendered.stop)}"
        if rendered.persona_folded:
            note += " · this format drops the system message: the persona is in the first turn"
        if target.status in ("loading", "unusable"):
            note += f" · the model is {target.status}: its own chat template may differ"
        return SentPrompt(title, rendered.text, note)
    if callable(getattr(backend, "messages", None)):
        messages = cast(SendsMessages, backend).messages(conversation)
        text = json.dumps(messages, ensure_ascii=False, indent=2)
        return SentPrompt(
            title, text, "An API model: its server applies the template to these messages."
        )
    return SentPrompt(title, "", "This backend does not say what it sends.")


class SentPromptScreen(ModalScreen[None]):
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
