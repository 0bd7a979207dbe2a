"""A persona and a pane's turns as the :class:`~backends.base.Conversation` a backend gets: the
system prompt, the names and the persona's example exchanges (how each backend sends those is
:mod:`backends.examples`). The session and ``kurabe prompt`` both build it here."""

from __future__ import annotations

from collections.abc import Sequence

from backends.base import ChatMessage, Conversation
from personas import Persona


def example_messages(persona: Persona) -> tuple[ChatMessage, ...]:
    """The persona's example exchanges as alternating user / assistant messages."""
    messages: list[ChatMessage] = []
    for example in persona.examples:
        messages.append(ChatMessage("user", example.user))
        messages.append(ChatMessage("assistant", example.char))
    return tuple(messages)


def persona_conversation(
    persona: Persona, turns: Sequence[ChatMessage], conversation_id: str = "default"
) -> Conversation:
    """What a pane playing ``persona`` sends for ``turns`` (its history and the new line)."""
    return Conversation(
        system=persona.system,
        turns=tuple(turns),
        char_name=persona.char_name,
        user_name=persona.user_name,
        conversation_id=conversation_id,
        examples=example_messages(persona),
    )
