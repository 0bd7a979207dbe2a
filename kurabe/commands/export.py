"""``kurabe export (SESSION | --run RUN) --format md|jsonl|csv|html|battles [--out FILE]``: one
stored session (or every session of a run, in md, jsonl, csv or battles)
as Markdown (laid out like the hand-written comparison), JSON lines, CSV, a self-contained HTML
page, or pairwise battles for Chatbot-Arena-style tooling. Writes to standard output unless
``--out``, whose file is replaced in one step once the whole export is written
(:func:`kurabe.export.exporter.write_export`), never the database itself."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.errors import KurabeError
from foundation.options import options_from

FORMAT_CHOICES = ("md", "jsonl", "csv", "html", "battles")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a session (md, jsonl, csv, html, battles)",
        description="Export one stored session. SESSION is an id, or 'last'.",
    )
    parser.add_argument(
        "session", metavar="SESSION", nargs="?", default=None, help="session id, or 'last'"
    )
    parser.add_argument(
        "--run", metavar="RUN", type=int, default=None, help="every session of a run instead"
    )
    parser.add_argument(
        "--format", "-f", choices=FORMAT_CHOICES, default="md", help="output format (default: md)"
    )
    parser.add_argument("--out", "-o", metavar="FILE", help="write here instead of stdout")
    parser.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS, help="database file")
    parser.add_argument(
        "--no-bom",
        action="store_true",
        help="csv: leave out the UTF-8 byte order mark (kept by default for spreadsheets)",
    )
    parser.add_argument(
        "--reveal-names",
        action="store_true",
        help="show model names even if the blind session has not been revealed",
    )
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class ExportOptions:
    """``kurabe export``'s options."""

    session: str | None = None
    run: int | None = None
    format: str = "md"
    out: str | None = None
    db: str | None = None
    no_bom: bool = False
    reveal_names: bool = False


def run(args: argparse.Namespace) -> int:
    from kurabe.export.exporter import export_run, export_session, write_export
    from kurabe.store.session_number import resolve_session_id
    from kurabe.store.store import Store

    options = options_from(ExportOptions, args)
    if (options.session is None) == (options.run is None):
        raise KurabeError("name a SESSION or give --run RUN (one of them)")
    with Store.open_default(options.db) as store:
        database = Path(store.path)
        if options.run is not None:
            what = f"run {options.run}"
            text = export_run(
                store,
                options.run,
                options.format,
                reveal_names=options.reveal_names,
                bom=not options.no_bom,
            )
        else:
            session_id = resolve_session_id(options.session or "", store)
            what = f"session {session_id}"
            text = export_session(
                store,
                session_id,
                options.format,
                reveal_names=options.reveal_names,
                bom=not options.no_bom,
            )
    if options.out:
        out = write_export(Path(options.out), text, database=database)
        print(f"wrote {out} ({what}, {options.format})", file=sys.stderr)
    else:
        stream = sys.stdout
        if hasattr(stream, "buffer"):
            stream.flush()
            stream.buffer.write(text.encode("utf-8"))
            stream.buffer.flush()
        else:  # pragma: no cover - captured streams without a buffer
            stream.write(text)
    return 0
