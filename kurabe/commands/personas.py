"""``kurabe personas``: list the personas in use, ``kurabe personas show ID``: print one.

The list says where each persona comes from (``built-in (file.toml)`` or the user's file) and
whether it overrides another with the same id. On a terminal it is a rich table; otherwise
tab-separated lines without a header (id, title, register, source, override), for scripts.
Problems go to stderr, one line each, after the good personas are listed; the exit status is
then 1.

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
    if persona.notes.strip():
        lines += ["", "notes:", indent(persona.notes.strip("\n"))]
    out.write("\n".join(lines) + "\n")
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
