"""Personas: who the model plays. Bundled TOML files live beside this module.

:class:`Persona` is the validated form; the loader (``personas.loader``) reads bundled files, the
user's own directory and explicit paths, with errors that name file, line and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Register = Literal["casual", "polite", "any"]


@dataclass(frozen=True, slots=True)
class ExampleExchange:
    """One example of how the character talks: a user's line and the character's answer.

    Sent before the real conversation (few-shot); how depends on the model profile's prompt
    format and ``examples_as`` (see :mod:`backends.examples`)."""

    user: str
    char: str


@dataclass(frozen=True, slots=True)
class Persona:
    id: str
    title: str
    system: str
    """The system prompt, verbatim (full-width spaces and line breaks kept)."""
    char_name: str = "アシスタント"
    user_name: str = "ユーザー"
    language: str = "ja"
    register: Register = "any"
    max_reply_chars: int | None = None
    first_person: tuple[str, ...] = ()
    """First-person pronouns that fit the character (empty: any). 俺 in a 私 persona is a break."""
    notes: str = ""
    examples: tuple[ExampleExchange, ...] = ()
    """Example exchanges in the character's voice, sent before the conversation (few-shot)."""
    source: str = "built-in"
