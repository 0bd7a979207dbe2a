"""Read and validate persona TOML files: bundled, the user's own, and paths given directly.

A persona file::

    id = "anime-fan"
    title = "大のアニメファン"
    system = "あなたは大のアニメファンで、友達と会話しています。 …"  # verbatim
    char_name = "オタク"          # optional, default アシスタント (completion-style templates)
    user_name = "ユーザー"        # optional, default ユーザー
    language = "ja"               # optional, default ja
    register = "casual"           # casual | polite | any (default any)
    max_reply_chars = 80          # optional
    first_person = ["私", "僕"]   # optional: pronouns that fit the character
    notes = "…"                   # optional, free text

    [[examples]]                  # optional, any number: example exchanges (few-shot)
    user = "ねえ、アニメ好きなの？"
    char = "うん、毎晩なにか見てるよ！"

Examples are sent before the conversation: to a chat template or an API as prior turns (or in
the system prompt, per the model profile's ``examples_as``), and to a completion format as lines
of its dialogue (see :mod:`backends.examples`).

Text is kept exactly as written (full-width spaces, line breaks, emoji). Every problem is a
:class:`~foundation.errors.ConfigError` naming the file, the line and the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, cast

from foundation.catalog import (
    BUILT_IN,
    Catalog,
    bundled_files,
    load_catalog,
    take_choice,
    take_id,
    take_one_line,
    take_one_line_list,
)
from foundation.paths import config_dir
from foundation.tomlfile import TomlDocument
from personas import ExampleExchange, Persona, Register

DEFAULT_PERSONA_ID = "anime-fan"
REGISTERS: tuple[Register, ...] = ("casual", "polite", "any")
PERSONA_KEYS: tuple[str, ...] = (
    "id",
    "title",
    "system",
    "char_name",
    "user_name",
    "language",
    "register",
    "max_reply_chars",
    "first_person",
    "notes",
    "examples",
)
EXAMPLE_KEYS: tuple[str, ...] = ("user", "char")
_DEFAULTS: dict[str, Any] = {field.name: field.default for field in fields(Persona)}
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")


def user_personas_dir() -> Path:
    """Where a user's own persona files live."""
    return config_dir() / "personas"


def _parse_example(document: TomlDocument, entry: Any, index: int) -> ExampleExchange:
    at = ("examples", index)
    if not isinstance(entry, Mapping):
        raise document.error(
            at,
            f'each example must be a table with user = "…" and char = "…" (write [[examples]]), '
            f"got {entry!r}"[:160],
        )
    document.reject_unknown(entry, at, EXAMPLE_KEYS)
    user: str = document.take(entry, at, "user", str, non_empty=True)
    char: str = document.take(entry, at, "char", str, non_empty=True)
    return ExampleExchange(user=user, char=char)


def parse_persona_document(document: TomlDocument, source: str = BUILT_IN) -> Persona:
    """Validate a parsed persona file; raise :class:`ConfigError` at the first problem."""
    data = document.data
    if "turns" in data:
        raise document.error(("turns",), "a persona has no turns; is this a scenario file?")
    document.reject_unknown(data, (), PERSONA_KEYS)
    persona_id = take_id(document, data, (), "id")
    title = take_one_line(document, data, (), "title")
    system: str = document.take(data, (), "system", str, non_empty=True)
    char_name: str = take_one_line(
        document, data, (), "char_name", required=False, default=_DEFAULTS["char_name"]
    )
    user_name: str = take_one_line(
        document, data, (), "user_name", required=False, default=_DEFAULTS["user_name"]
    )
    language: str = document.take(data, (), "language", str, required=False, default="ja")
    if not _LANGUAGE_TAG.fullmatch(language):
        raise document.error(("language",), f"must be a language code like 'ja', got {language!r}")
    register = cast(Register, take_choice(document, data, (), "register", REGISTERS, default="any"))
    max_reply_chars: int | None = document.take(data, (), "max_reply_chars", int, required=False)
    if max_reply_chars is not None and max_reply_chars < 1:
        raise document.error(("max_reply_chars",), f"must be 1 or more, got {max_reply_chars}")
    first_person = take_one_line_list(document, data, (), "first_person")
    notes: str = document.take(data, (), "notes", str, required=False, default="")
    entries: list[Any] = document.take(data, (), "examples", list, required=False, default=[])
    examples = tuple(_parse_example(document, entry, i) for i, entry in enumerate(entries))
    return Persona(
        id=persona_id,
        title=title,
        system=system,
        char_name=char_name,
        user_name=user_name,
        language=language,
        register=register,
        max_reply_chars=max_reply_chars,
        first_person=first_person,
        notes=notes,
        examples=examples,
        source=source,
    )


def parse_persona_text(
    text: str, path: Path | str = "<persona>", *, source: str | None = None
) -> Persona:
    """Parse persona TOML given as text; ``path`` is only used in messages."""
    document = TomlDocument.parse(path, text)
    return parse_persona_document(document, source if source is not None else str(path))


def parse_persona_file(path: Path | str, *, source: str | None = None) -> Persona:
    """Read one persona file; ``source`` defaults to the file's path."""
    document = TomlDocument.load(path)
    return parse_persona_document(document, source if source is not None else str(path))


def load_personas(extra_paths: Sequence[Path] = ()) -> Catalog[Persona]:
    """Bundled personas, then the user's directory, then ``extra_paths`` (files or directories).

    A later file with the same id overrides an earlier one; bad files land in ``.problems``.
    """
    return load_catalog(
        "persona",
        parse_persona_document,
        bundled=bundled_files("personas"),
        user_dir=user_personas_dir(),
        extra_paths=extra_paths,
    )
