"""``kurabe scenarios``: list the scripted scenarios, ``kurabe scenarios show ID``: print one.

The list gives id, title, persona, number of turns, source file and whether the scenario
overrides another with the same id. On a terminal it is a rich table; otherwise tab-separated
lines without a header, in that column order. ``show`` prints the script: numbered user turns
with their ``expect`` notes. Problems (persona files included, since a scenario whose persona
failed to load is reported as naming an unknown persona) go to stderr, one line each; the exit
status is then 1.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from foundation.options import options_from
from kurabe.commands.personas import add_path_option, indent, write_problems, write_rows

if TYPE_CHECKING:
    from foundation.catalog import Catalog
    from personas import Persona
    from scenarios import Scenario

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "scenarios",
        help="list the scripted scenarios; 'scenarios show ID' prints one",
        description="List scenarios: id, title, persona, number of turns, source file. Your own "
        "files go in the config directory's scenarios/ folder.",
    )
    _add_options(parser, suppress_default=False)
    parser.set_defaults(func=list_scenarios)
    actions = parser.add_subparsers(dest="scenarios_action", metavar="ACTION")
    show = actions.add_parser("show", help="print one script: numbered turns and expect notes")
    show.add_argument("scenario_id", metavar="ID")
    _add_options(show, suppress_default=True)
    show.set_defaults(func=show_scenario)


def _add_options(parser: argparse.ArgumentParser, *, suppress_default: bool) -> None:
    add_path_option(parser, "--path", "scenario", suppress_default=suppress_default)
    add_path_option(parser, "--persona-path", "persona", suppress_default=suppress_default)


@dataclass(frozen=True)
class ScenariosOptions:
    """``kurabe scenarios [show ID]``'s options."""

    path: list[Path] | None = None
    """Extra scenario files or directories (``--path``, repeatable)."""
    persona_path: list[Path] | None = None
    """Extra persona files or directories (``--persona-path``, repeatable)."""
    scenario_id: str = ""


def _load(options: ScenariosOptions) -> tuple[Catalog[Persona], Catalog[Scenario]]:
    from personas.loader import load_personas
    from scenarios.loader import load_scenarios

    personas = load_personas(options.persona_path or ())
    return personas, load_scenarios(options.path or (), personas=personas)


def list_scenarios(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    personas, scenarios = _load(options_from(ScenariosOptions, args))
    rows = [
        [
            scenario.id,
            scenario.title,
            scenario.persona,
            str(len(scenario.turns)),
            scenarios.source_label(scenario.id),
            scenarios.override_label(scenario.id),
        ]
        for scenario in scenarios
    ]
    write_rows(["id", "title", "persona", "turns", "source", "overrides"], rows, out)
    return write_problems([*personas.problems, *scenarios.problems], err)


def format_script(scenario: Scenario, personas: Catalog[Persona], source_label: str) -> str:
    """The script as text: header, notes, then numbered turns with their expect notes."""
    persona = personas.items.get(scenario.persona)
    persona_line = f"persona: {scenario.persona}"
    if persona is not None:
        persona_line += f" ({persona.title})"
    lines = [f"{scenario.id} — {scenario.title}", persona_line]
    if scenario.tags:
        lines.append(f"tags: {', '.join(scenario.tags)}")
    lines.append(f"source: {source_label}")
    if scenario.notes.strip():
        lines += ["notes:", indent(scenario.notes.strip("\n"))]
    lines.append("")
    width = len(str(len(scenario.turns)))
    for number, turn in enumerate(scenario.turns, start=1):
        label = f"{number:>{width}}. "
        pad = " " * len(label)
        text_lines = turn.text.split("\n")
        lines.append(label + text_lines[0])
        lines += [pad + line for line in text_lines[1:]]
        if turn.expect:
            lines.append(indent(f"expect: {turn.expect}", pad))
    return "\n".join(lines) + "\n"


def show_scenario(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    options = options_from(ScenariosOptions, args)
    personas, scenarios = _load(options)
    if options.scenario_id not in scenarios:
        write_problems([*personas.problems, *scenarios.problems], err)
    scenario = scenarios.get(options.scenario_id)
    out.write(format_script(scenario, personas, scenarios.source_label(scenario.id)))
    return 0
