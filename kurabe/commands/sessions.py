"""``kurabe sessions``: the stored sessions, newest first — id, date, scenario, models, replies,
ratings, status and the run (``kurabe run``) each is part of. A rich table on a terminal,
tab-separated lines otherwise, or ``--format json``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from foundation.options import options_from
from kurabe.commands.shared_options import add_db_option

if TYPE_CHECKING:
    from kurabe.store.records import SessionSummary


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("sessions", help="list stored sessions")
    add_db_option(parser)
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="show the newest N")
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format"
    )
    parser.set_defaults(func=run)


def _date(stamp: str) -> str:
    return stamp.replace("T", " ")[:16]


@dataclass(frozen=True)
class SessionsOptions:
    """``kurabe sessions``' options."""

    db: str | None = None
    limit: int | None = None
    format: str = "table"


HEADERS = ("id", "date", "scenario", "models", "replies", "ratings", "status", "run")


def table_rows(sessions: Sequence[SessionSummary]) -> list[tuple[str, ...]]:
    """One row of cells per session, under :data:`HEADERS`."""
    rows: list[tuple[str, ...]] = []
    for item in sessions:
        models = ", ".join(item.models)
        if item.blind:
            models += " (blind)" if not item.revealed else " (blind, revealed)"
        rows.append(
            (
                str(item.id),
                _date(item.created_at),
                item.scenario_id or "-",
                models,
                str(item.replies),
                str(item.ratings),
                item.status,
                "-" if item.run_id is None else str(item.run_id),
            )
        )
    return rows


def table_lines(sessions: Sequence[SessionSummary]) -> list[str]:
    """The listing as tab-separated lines, headers first (what a pipe or a file receives)."""
    return ["\t".join(row) for row in [HEADERS, *table_rows(sessions)]]


def run(args: argparse.Namespace) -> int:
    from kurabe.store.store import Store

    options = options_from(SessionsOptions, args)
    with Store.open_default(options.db) as store:
        sessions = store.sessions.summaries(limit=options.limit)
    if options.format == "json":
        for item in sessions:
            print(json.dumps(asdict(item), ensure_ascii=False))
        return 0
    if not sessions:
        print("no sessions yet", file=sys.stderr)
        return 0
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*HEADERS, title="kurabe sessions")
        for row in table_rows(sessions):
            table.add_row(*row)
        Console().print(table)
    else:
        for line in table_lines(sessions):
            print(line)
    return 0
