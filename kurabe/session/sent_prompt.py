"""What a pane was given for one turn: the exact prompt text, as ``kurabe prompt`` prints it.

For a local pane the text is the backend's own rendering of the conversation through the
profile's prompt format (:meth:`LlamaCppBackend.render
<backends.llama_cpp_backend.LlamaCppBackend.render>`, the function that command calls), so what is
shown is what the model got, special tokens and all, with the same note line
(:meth:`~backends.templates.RenderedPrompt.describe`). An API pane has no prompt text of its own
(the server applies its template): it gives the messages its backend sends. In a blind session
not yet revealed the prompt stays hidden, as a template tells a model family apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol, cast

from backends.base import Conversation
from backends.templates import RenderedPrompt
from kurabe.session.comparison import ComparisonSession


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
    if session.hidden:
        return SentPrompt(title, "", "Hidden in a blind session until the reveal (ctrl+r).")
    conversation = session.conversation_for(pane, turn)
    backend = target.backend
    if callable(getattr(backend, "render", None)):
        rendered = cast(RendersPrompt, backend).render(conversation)
        note = rendered.describe()
        if target.status in ("loading", "unusable"):
            note += f"; the model is {target.status}: its own chat template may differ"
        return SentPrompt(title, rendered.text, note)
    if callable(getattr(backend, "messages", None)):
        messages = cast(SendsMessages, backend).messages(conversation)
        text = json.dumps(messages, ensure_ascii=False, indent=2)
        return SentPrompt(
            title, text, "An API model: its server applies the template to these messages."
        )
    return SentPrompt(title, "", "This backend does not say what it sends.")
