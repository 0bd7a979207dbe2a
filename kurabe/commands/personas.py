"""``kurabe personas``: list the personas in use, ``kurabe personas show ID``: print one,
``kurabe personas import FILE``: a Character Card (V2 JSON, or a PNG carrying one) as a persona.

The list says where each persona comes from (``built-in (file.toml)`` or the user's file) and
whether it overrides another with the same id. On a terminal it is a rich table; otherwise
tab-separated lines without a header (id, title, register, source, override), for scripts.
Problems go to stderr, one line each, after the good personas are listed; the exit status is
then 1. ``import`` writes the persona file into the user's persona folder (or ``--out DIR``),
prints its path, its examples and every card field that did not map; a file it cannot read is
one line, ``kurabe: FILE: what is wrong``, exit status 2 (:mod:`kurabe.importing.character_card`).

The small output helpers here are shared with :mod:`kurabe.commands.scenarios`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from foundation.errors import ConfigError
from foundation.options import options_from

if TYPE_CHECKING:
    from foundation.catalog import Catalog
    from personas import Persona

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "personas",
        help="list the personas (built-in and your own)",
        description="List personas: id, title, register, source file, and which override a "
        "built-in one. Your own files go in the config directory's personas/ folder.",
    )
    add_path_option(parser, "--path", "persona")
    parser.set_defaults(func=list_personas)
    actions = parser.add_subparsers(dest="personas_action", metavar="ACTION")
    show = actions.add_parser("show", help="print one persona, system prompt included")
    show.add_argument("persona_id", metavar="ID")
    add_path_option(show, "--path", "persona", suppress_default=True)
    show.set_defaults(func=show_persona)
    card = actions.add_parser(
        "import",
        help="a Character Card (V2 JSON or PNG) as a persona file",
        description="Read a Character Card V2 (JSON, or a PNG with a 'chara' chunk) into a "
        "persona TOML in your persona folder. Fields that do not map are listed.",
    )
    card.add_argument("file", type=Path, metavar="FILE", help="the card (.json or .png)")
    card.add_argument("--id", dest="card_id", metavar="ID", help="the persona's id")
    card.add_argument(
        "--user-name", metavar="NAME", default="ユーザー", help="who {{user}} is (default ユーザー)"
    )
    card.add_argument(
        "--out", type=Path, metavar="DIR", help="where to write (default: your persona folder)"
    )
    card.add_argument("--force", action="store_true", help="overwrite a file already there")
    card.set_defaults(func=import_card)


def add_path_option(
    parser: argparse.ArgumentParser, flag: str, kind: str, *, suppress_default: bool = False
) -> None:
    """A repeatable option for extra files or directories of ``kind`` (persona, scenario)."""
    parser.add_argument(
        flag,
        action="append",
        type=Path,
        metavar="PATH",
        # On a nested "show" parser a plain default would overwrite what the parent parsed.
        default=argparse.SUPPRESS if suppress_default else None,
        help=f"also load this {kind} file or directory of *.toml files (repeatable)",
    )


@dataclass(frozen=True)
class PersonasOptions:
    """``kurabe personas [show ID]``'s options."""

    path: list[Path] | None = None
    """Extra persona files or directories (``--path``, repeatable)."""
    persona_id: str = ""


def _load(options: PersonasOptions) -> Catalog[Persona]:
    from personas.loader import load_personas

    return load_personas(options.path or ())


def list_personas(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    catalog = _load(options_from(PersonasOptions, args))
    rows = [
        [
            persona.id,
            persona.title,
            persona.register,
            catalog.source_label(persona.id),
            catalog.override_label(persona.id),
        ]
        for persona in catalog
    ]
    write_rows(["id", "title", "register", "source", "overrides"], rows, out)
    return write_problems(catalog.problems, err)


def show_persona(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    options = options_from(PersonasOptions, args)
    catalog = _load(options)
    if options.persona_id not in catalog:
        write_problems(catalog.problems, err)
    persona = catalog.get(options.persona_id)
    limit = persona.max_reply_chars if persona.max_reply_chars is not None else "none"
    lines = [
        f"{persona.id} — {persona.title}",
        f"source: {catalog.source_label(persona.id)}",
        f"char_name: {persona.char_name}    user_name: {persona.user_name}",
        f"language: {persona.language}    register: {persona.register}    max_reply_chars: {limit}",
        f"first_person: {', '.join(persona.first_person) or 'any'}",
    ]
    override = catalog.override_label(persona.id)
    if override:
        lines.append(override)
    lines += ["", "system:", indent(persona.system)]
    if persona.examples:
        lines += ["", f"examples ({len(persona.examples)}):"]
        for example in persona.examples:
            lines += [
                indent(f"{persona.user_name}: {example.user}"),
                indent(f"{persona.char_name}: {example.char}"),
            ]
    if persona.notes.strip():
        lines += ["", "notes:", indent(persona.notes.strip("\n"))]
    out.write("\n".join(lines) + "\n")
    return 0


@dataclass(frozen=True)
class CardImportOptions:
    """``kurabe personas import FILE``'s options."""

    file: Path
    card_id: str | None = None
    user_name: str = "ユーザー"
    out: Path | None = None
    force: bool = False


def import_card(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from kurabe.importing import character_card
    from personas.loader import user_personas_dir

    out = out or sys.stdout
    options = options_from(CardImportOptions, args)
    target, imported = character_card.import_card(
        options.file.expanduser(),
        (options.out or user_personas_dir()).expanduser(),
        user_name=options.user_name,
        persona_id=options.card_id,
        force=options.force,
    )
    persona = imported.persona
    count = len(persona.examples)
    out.write(f"wrote {target}  {persona.id}  {count} example{'s' if count != 1 else ''}\n")
    out.write(f"{persona.char_name} / {persona.user_name}, language {persona.language}\n")
    if imported.unmapped:
        out.write(f"not mapped ({len(imported.unmapped)}):\n")
        for line in imported.unmapped:
            out.write(f"  {_one_line(line)}\n")
    out.write(f"try it: kurabe --persona {persona.id}\n")
    return 0


# -- output helpers shared with kurabe.commands.scenarios ---------------------------------------


def indent(text: str, prefix: str = "  ") -> str:
    """Indent every line of ``text``, keeping it otherwise exactly as written."""
    return "\n".join(prefix + line for line in text.split("\n"))


def write_rows(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """A rich table on a terminal; tab-separated lines (no header) otherwise."""
    if out.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(highlight=False)
        for index, header in enumerate(headers):
            # Japanese titles have no spaces to wrap at: fold them rather than cut them off.
            table.add_column(header, no_wrap=index == 0, overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))  # Text: no markup parsing of "[...]"
        Console(file=out, highlight=False).print(table)
        return
    for row in rows:
        out.write("\t".join(_one_line(cell) for cell in row) + "\n")


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ").replace("\t", " ")


def write_problems(problems: Sequence[ConfigError], err: TextIO) -> int:
    """One line per problem on ``err``; the exit status (1 if any)."""
    for problem in problems:
        err.write(f"kurabe: {_one_line(str(problem))}\n")
    return 1 if problems else 0
