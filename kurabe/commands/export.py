"""``kurabe export (SESSION | --run RUN) --format md|jsonl|csv|html|battles [--out FILE]``: one
stored session (or every session of a run, in md, jsonl, csv or battles)
as Markdown (laid out like the hand-written comparison), JSON lines, CSV, a self-contained HTML
page, or pairwise battles for Chatbot-Arena-style tooling. Writes to standard output unless
``--out``, whose file is replaced in one step once the whole export is written
(:func:`kurabe.export.exporter.write_export`), never the database itself.

``--format mt-bench-answers --out DIR`` (SESSION ids ``a,b,c`` and/or ``--tag TAG``): a set of
sessions' replies as FastChat model-answer files, one per model
(:mod:`kurabe.export.mtbench_answers`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foundation.errors import KurabeError
from foundation.options import options_from
from kurabe.commands.shared_options import add_db_option

if TYPE_CHECKING:
    from kurabe.store.store import Store

FORMAT_CHOICES = ("md", "jsonl", "csv", "html", "battles", "mt-bench-answers")
MT_BENCH_ANSWERS = "mt-bench-answers"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a session (md, jsonl, csv, html, battles)",
        description="Export one stored session. SESSION is an id, or 'last'. "
        "--format mt-bench-answers writes a set of sessions' replies (SESSION ids a,b,c, or "
        "--tag TAG) as FastChat model-answer files, one per model, into the folder --out DIR.",
    )
    parser.add_argument(
        "session",
        metavar="SESSION",
        nargs="?",
        default=None,
        help="session id, or 'last' (mt-bench-answers: also ids a,b,c, or none with --tag)",
    )
    parser.add_argument(
        "--tag",
        metavar="TAG",
        default=argparse.SUPPRESS,
        help="mt-bench-answers: every session of a scenario with this tag (e.g. mt-bench)",
    )
    parser.add_argument(
        "--run", metavar="RUN", type=int, default=None, help="every session of a run instead"
    )
    parser.add_argument(
        "--format", "-f", choices=FORMAT_CHOICES, default="md", help="output format (default: md)"
    )
    parser.add_argument("--out", "-o", metavar="FILE", help="write here instead of stdout")
    add_db_option(parser)
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
    tag: str | None = None
    out: str | None = None
    db: str | None = None
    no_bom: bool = False
    reveal_names: bool = False


def selected_session_ids(store: Store, options: ExportOptions) -> list[int]:
    """The sessions a multi-session export covers: SESSION as ids (``12,13`` or ``last``), or
    ``--run``'s sessions, and/or ``--tag``."""
    from kurabe.analysis.mtbench import select_sessions
    from kurabe.store.session_number import resolve_session_id

    session_ids = None
    if options.session is not None:
        session_ids = [
            resolve_session_id(part.strip(), store) for part in options.session.split(",")
        ]
    elif options.run is not None:
        session_ids = store.sessions.ids(run=options.run)
    elif options.tag is None:
        raise KurabeError("name the sessions: SESSION ids (a,b,c), --run RUN or --tag TAG")
    return select_sessions(store, tag=options.tag, session_ids=session_ids)


def export_mt_bench_answers(options: ExportOptions) -> int:
    """``--format mt-bench-answers``: one FastChat model-answer file per model into ``--out``."""
    from kurabe.export.mtbench_answers import collect_answers, write_answer_files
    from kurabe.store.store import Store

    if not options.out:
        raise KurabeError("--format mt-bench-answers writes a folder of files: give --out DIR")
    with Store.open_default(options.db) as store:
        session_ids = selected_session_ids(store, options)
        export = collect_answers(store, session_ids, reveal_names=options.reveal_names)
    written = write_answer_files(Path(options.out).expanduser(), export)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    if export.not_mt_bench:
        print(f"left out {len(export.not_mt_bench)} session(s) of other scenarios", file=sys.stderr)
    for missing in export.incomplete:
        print(f"left out {missing}: a turn has no complete reply", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    from kurabe.export.exporter import export_run, export_session, write_export
    from kurabe.store.session_number import resolve_session_id
    from kurabe.store.store import Store

    options = options_from(ExportOptions, args)
    if options.format == MT_BENCH_ANSWERS:
        return export_mt_bench_answers(options)
    if (options.session is None) == (options.run is None):
        raise KurabeError("name a SESSION or give --run RUN (one of them)")
    with Store.open_default(options.db) as store:
        database = store.path
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
