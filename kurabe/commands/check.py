"""``kurabe check TEXT``: run the Japanese checks on any text, as they run on every reply.

``--persona ID`` judges register, length, first person and role names against that persona
(``kurabe --persona ID check TEXT`` works too); without one only the persona-free checks flag.
``TEXT`` of ``-`` reads standard input. On a terminal the report is a rich table; otherwise one
``key: value`` line per measure and one ``flag:`` line per flag, for scripts; ``--json`` prints
:meth:`kurabe.checks.report.CheckReport.to_dict`. The exit status is 0 whatever the checks find.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from foundation.errors import KurabeError
from foundation.options import options_from

if TYPE_CHECKING:
    from kurabe.checks.japanese import PersonaExpectations
    from kurabe.checks.report import CheckReport

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "check",
        help="run the Japanese checks on a text",
        description="Run kurabe's automatic Japanese checks (Japanese share, register, length, "
        "template leakage, repetition, persona breaks, empty or cut off) on TEXT.",
    )
    parser.add_argument("text", metavar="TEXT", help="the reply to check; - reads stdin")
    # A dest of its own: the top-level --persona shares the name and would be overwritten.
    parser.add_argument(
        "--persona", dest="check_persona", metavar="ID", help="judge against this persona"
    )
    parser.add_argument("--previous", metavar="TEXT", help="the pane's previous reply")
    parser.add_argument(
        "--finish-reason", metavar="REASON", help="the backend's finish reason (length: cut off)"
    )
    parser.add_argument(
        "--tokens", type=int, metavar="N", help="completion tokens, for characters per token"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def _load_persona(persona_id: str) -> PersonaExpectations:
    from personas.loader import load_personas

    return load_personas().get(persona_id)


@dataclass(frozen=True)
class CheckOptions:
    """``kurabe check``'s options."""

    text: str
    check_persona: str | None = None
    persona: str | None = None
    """The top-level ``kurabe --persona ID check``."""
    previous: str | None = None
    finish_reason: str | None = None
    tokens: int | None = None
    json: bool = False


def run(args: argparse.Namespace) -> int:
    from kurabe.checks.japanese import run_checks

    options = options_from(CheckOptions, args)
    text: str = sys.stdin.read() if options.text == "-" else options.text
    persona_id: str | None = options.check_persona or options.persona
    persona = _load_persona(persona_id) if persona_id else None
    if options.tokens is not None and options.tokens < 0:
        raise KurabeError("--tokens must be 0 or more")
    report = run_checks(
        text,
        persona,
        previous_reply=options.previous,
        finish_reason=options.finish_reason,
        completion_tokens=options.tokens,
    )
    if options.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    elif sys.stdout.isatty():
        print_table(report, persona, persona_id)
    else:
        print_plain(report, persona, persona_id, sys.stdout)
    return 0


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def report_rows(
    report: CheckReport, persona: PersonaExpectations | None, persona_id: str | None
) -> list[tuple[str, str]]:
    """(measure, value) pairs in display order."""
    limit = persona.max_reply_chars if persona is not None else None
    chars = f"{report.chars}" + (f" / {limit}" if limit is not None else "")
    per_token = "-" if report.chars_per_token is None else f"{report.chars_per_token:.2f}"
    return [
        ("persona", persona_id or "-"),
        ("japanese_share", _share(report.japanese_share)),
        ("register", report.register),
        ("polite_share", _share(report.polite_share)),
        ("chars", chars),
        ("sentences", str(report.sentences)),
        ("chars_per_token", per_token),
        ("leaks", ", ".join(report.leaks) or "-"),
        ("repeated_ngram_share", _share(report.repeated_ngram_share)),
        ("repeats_previous", "yes" if report.repeats_previous else "no"),
        ("persona_breaks", ", ".join(report.persona_breaks) or "-"),
    ]


def print_plain(
    report: CheckReport, persona: PersonaExpectations | None, persona_id: str | None, out: TextIO
) -> None:
    for name, value in report_rows(report, persona, persona_id):
        out.write(f"{name}: {value}\n")
    for flag in report.flags:
        out.write(f"flag: {flag.code}\t{flag.label}\t{flag.detail}\n")
    if not report.flags:
        out.write("flags: none\n")


def print_table(
    report: CheckReport, persona: PersonaExpectations | None, persona_id: str | None
) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title="kurabe check", show_header=False)
    table.add_column("measure", style="bold")
    table.add_column("value")
    for name, value in report_rows(report, persona, persona_id):
        table.add_row(name, escape(value))
    console.print(table)
    if not report.flags:
        console.print("[green]no flags[/green]")
    for flag in report.flags:
        console.print(
            f"[bold yellow]{escape(flag.label)}[/bold yellow]  {escape(flag.detail)}",
            highlight=False,
        )
