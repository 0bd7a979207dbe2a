"""``kurabe sessions``: the stored sessions, newest first — id, date, scenario, models, replies,
ratings, status and the run (``kurabe run``) each is part of. A rich table on a terminal,
tab-separated lines otherwise, or ``--format json``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from foundation.options import options_from


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("sessions", help="list stored sessions")
    parser.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS, help="database file")
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
    rows = []
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
    headers = ("id", "date", "scenario", "models", "replies", "ratings", "status", "run")
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, title="kurabe sessions")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:
        print("\t".join(headers))
        for row in rows:
            print("\t".join(row))
    return 0
