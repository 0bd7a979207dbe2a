"""``kurabe import FILE --format mt-bench|elyza-tasks|jsonl``: question sets as scenario files
(``--reference FILE``: MT-Bench's reference answers with its questions). ``--format
mt-bench-answers|mt-bench-judgments``: MT-Bench's model answers and judgments into the database
(:mod:`kurabe.commands.import_mtbench`).

Writes one scenario TOML file per question into the user's scenario folder (or ``--out DIR``),
then prints one line per file written (``wrote PATH  ID  N turn(s)``) and how to replay them.
The formats and the choices behind them are in :mod:`kurabe.importing.questions`. A bad file is one
line,
``kurabe: file:line: field: reason``, with exit status 2 and nothing written.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from foundation.options import options_from
from kurabe.commands.shared_options import add_db_option

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

FORMAT_CHOICES = ("mt-bench", "elyza-tasks", "jsonl", "mt-bench-answers", "mt-bench-judgments")
INTO_DATABASE = ("mt-bench-answers", "mt-bench-judgments")
"""The formats that go into the database (:mod:`kurabe.commands.import_mtbench`), not into
scenario files."""


def register(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import a question set (Japanese MT-Bench, ELYZA-tasks-100, JSONL) as scenarios",
        description="Write scenario files from a question set you have: Japanese MT-Bench's "
        "question.jsonl, ELYZA-tasks-100 (JSONL or CSV), or kurabe's own JSONL (one scenario "
        "a line). Nothing is downloaded.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the question file")
    parser.add_argument(
        "--format", required=True, choices=FORMAT_CHOICES, help="what kind of file it is"
    )
    parser.add_argument(
        "--persona", metavar="ID", help="persona of the scenarios (default: assistant)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where to write (default: the scenarios/ folder of the config directory)",
    )
    parser.add_argument(
        "--id-prefix",
        metavar="PREFIX",
        help="scenario ids are PREFIX-<number> (default: mtbench, elyza-tasks, the file name)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite files already there")
    parser.add_argument(
        "--reference",
        type=Path,
        metavar="FILE",
        help="mt-bench: MT-Bench's reference answers (reference_answer/gpt-4.jsonl), imported"
        " beside the questions as each turn's expect note",
    )
    parser.add_argument(
        "--beside",
        choices=("imported", "latest"),
        default="imported",
        help="mt-bench-answers: add each answer to the question's imported session (default), or"
        " to its newest session of any kind (e.g. a run's)",
    )
    parser.add_argument(
        "--blind", action="store_true", help="mt-bench-answers: new sessions are blind"
    )
    add_db_option(parser)
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class ImportOptions:
    """``kurabe import``'s options."""

    file: Path
    format: str
    persona: str | None = None
    out: Path | None = None
    id_prefix: str | None = None
    force: bool = False
    reference: Path | None = None
    beside: str = "imported"
    blind: bool = False
    db: str | None = None


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from kurabe.importing.questions import DEFAULT_PERSONA, import_file
    from personas.loader import load_personas
    from scenarios.loader import user_scenarios_dir

    options = options_from(ImportOptions, args)
    out = out or sys.stdout
    if options.format in INTO_DATABASE:
        from kurabe.commands.import_mtbench import import_into_database

        return import_into_database(
            options.file.expanduser(),
            options.format,
            out,
            db=options.db,
            beside=options.beside,
            blind=options.blind,
        )
    references = None
    if options.reference is not None:
        from kurabe.importing.mtbench import read_references

        references = read_references(options.reference.expanduser())
    personas = load_personas()
    out_dir: Path = (options.out or user_scenarios_dir()).expanduser()
    result = import_file(
        options.file.expanduser(),
        options.format,
        out_dir=out_dir,
        persona=options.persona or DEFAULT_PERSONA,
        known_personas=personas.ids(),
        prefix=options.id_prefix,
        force=options.force,
        references=references,
    )
    for path, scenario in result.written:
        turns = len(scenario.turns)
        out.write(f"wrote {path}  {scenario.id}  {turns} turn{'s' if turns != 1 else ''}\n")
    count = len(result.written)
    summary = f"{count} scenario{'s' if count != 1 else ''} in {out_dir}"
    if result.replaced:
        summary += f" ({len(result.replaced)} overwritten)"
    out.write(summary + "\n")
    first = result.written[0][1].id
    hint = f"replay one: kurabe replay {first} --models A,B"
    if options.out is not None and out_dir.resolve() != user_scenarios_dir().resolve():
        hint += f" (after moving the files to {user_scenarios_dir()})"
    elif result.tag and count > 1:
        hint += f"; all of them: kurabe replay --tag {result.tag} --models A,B"
    out.write(hint + "\n")
    return 0
