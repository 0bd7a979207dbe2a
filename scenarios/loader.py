"""Read and validate scenario TOML files: bundled, the user's own, and paths given directly.

A scenario file::

    id = "seed-claude"
    title = "シード: Claude"
    persona = "anime-fan"             # a persona id
    tags = ["seed", "anime"]          # optional
    notes = "…"                       # optional, free text

    [[turns]]
    text = "ねえ、アニメ好きなの？"      # the user's line, kept exactly
    expect = "短くカジュアルに答える"    # optional: what a good reply knows or does

    [[turns]]
    text = "…"

Every problem is a :class:`~foundation.errors.ConfigError` naming the file, the line and the key,
including a persona id that no loaded persona has.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from foundation.catalog import (
    BUILT_IN,
    Catalog,
    bundled_files,
    load_catalog,
    take_id,
    take_one_line,
    take_one_line_list,
)
from foundation.paths import config_dir
from foundation.tomlfile import TomlDocument
from personas import Persona
from scenarios import Scenario, Turn

SCENARIO_KEYS: tuple[str, ...] = ("id", "title", "persona", "tags", "notes", "turns")
TURN_KEYS: tuple[str, ...] = ("text", "expect")
_PERSONA_KEYS_HINT = frozenset({"system", "char_name", "user_name", "register", "first_person"})


def user_scenarios_dir() -> Path:
    """Where a user's own scenario files live."""
    return config_dir() / "scenarios"


def _parse_turn(document: TomlDocument, entry: Any, index: int) -> Turn:
    at = ("turns", index)
    if not isinstance(entry, Mapping):
        raise document.error(
            at, f'each turn must be a table with text = "…" (write [[turns]]), got {entry!r}'[:160]
        )
    document.reject_unknown(entry, at, TURN_KEYS)
    text: str = document.take(entry, at, "text", str, non_empty=True)
    expect: str | None = document.take(entry, at, "expect", str, required=False, non_empty=True)
    return Turn(text=text, expect=expect)


def parse_scenario_document(
    document: TomlDocument,
    source: str = BUILT_IN,
    *,
    known_personas: Collection[str] | None = None,
) -> Scenario:
    """Validate a parsed scenario file; raise :class:`ConfigError` at the first problem.

    With ``known_personas``, a ``persona`` id not among them is a problem too.
    """
    data = document.data
    persona_like = sorted(_PERSONA_KEYS_HINT & data.keys())
    if persona_like:
        raise document.error(
            (persona_like[0],), "a scenario names a persona by id; is this a persona file?"
        )
    document.reject_unknown(data, (), SCENARIO_KEYS)
    scenario_id = take_id(document, data, (), "id")
    title: str = take_one_line(document, data, (), "title")
    persona: str = take_one_line(document, data, (), "persona")
    tags = take_one_line_list(document, data, (), "tags")
    notes: str = document.take(data, (), "notes", str, required=False, default="")
    entries: list[Any] = document.take(data, (), "turns", list)
    if not entries:
        raise document.error(("turns",), "a scenario needs at least one turn")
    turns = tuple(_parse_turn(document, entry, index) for index, entry in enumerate(entries))
    if known_personas is not None and persona not in known_personas:
        hint = difflib.get_close_matches(persona, list(known_personas), n=1)
        suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
        known = ", ".join(known_personas) or "none"
        raise document.error(
            ("persona",), f"no persona with id '{persona}'{suffix}; known personas: {known}"
        )
    return Scenario(
        id=scenario_id,
        title=title,
        persona=persona,
        turns=turns,
        tags=tags,
        notes=notes,
        source=source,
    )


def parse_scenario_text(
    text: str,
    path: Path | str = "<scenario>",
    *,
    source: str | None = None,
    known_personas: Collection[str] | None = None,
) -> Scenario:
    """Parse scenario TOML given as text; ``path`` is only used in messages."""
    document = TomlDocument.parse(path, text)
    return parse_scenario_document(
        document, source if source is not None else str(path), known_personas=known_personas
    )


def parse_scenario_file(
    path: Path | str,
    *,
    source: str | None = None,
    known_personas: Collection[str] | None = None,
) -> Scenario:
    """Read one scenario file; ``source`` defaults to the file's path."""
    document = TomlDocument.load(path)
    return parse_scenario_document(
        document, source if source is not None else str(path), known_personas=known_personas
    )


def load_scenarios(
    extra_paths: Sequence[Path] = (), personas: Catalog[Persona] | None = None
) -> Catalog[Scenario]:
    """Bundled scenarios, then the user's directory, then ``extra_paths`` (files or directories).

    Each scenario's persona must be in ``personas`` (default: :func:`load_personas` with no
    extra paths). A later file with the same id overrides an earlier one; bad files, including
    those naming an unknown persona, land in ``.problems``.
    """
    if personas is None:
        from personas.loader import load_personas

        personas = load_personas()
    known = tuple(personas.ids())

    def parse(document: TomlDocument, source: str) -> Scenario:
        return parse_scenario_document(document, source, known_personas=known)

    return load_catalog(
        "scenario",
        parse,
        bundled=bundled_files("scenarios"),
        user_dir=user_scenarios_dir(),
        extra_paths=extra_paths,
    )
