"""``kurabe store copy SOURCE [--to TARGET]``: copy a store's sessions, replies, ratings and
judgements (every table) into another store, usually a solo SQLite file into a team's PostgreSQL
database (:mod:`kurabe.store.copy`). Ids are remapped; copying the same store twice adds nothing;
the counts per table are printed. ``--to`` defaults to the store kurabe would open (``--db``,
``KURABE_DB``, ``db`` in config.toml)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from foundation.options import options_from


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("store", help="manage stores: copy one into another")
    actions = parser.add_subparsers(dest="store_action", metavar="ACTION", required=True)
    copy = actions.add_parser(
        "copy", help="copy a store (an SQLite file) into another (a postgresql:// URL)"
    )
    copy.add_argument("source", metavar="SOURCE", help="the store to copy: a file or a URL")
    copy.add_argument(
        "--to",
        metavar="TARGET",
        default=None,
        help="the store to copy into (default: --db, KURABE_DB, or db in config.toml)",
    )
    copy.add_argument("--db", metavar="DB", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    copy.set_defaults(func=run_copy)


@dataclass(frozen=True)
class StoreCopyOptions:
    """``kurabe store copy``'s options."""

    source: str
    to: str | None = None
    db: str | None = None


def run_copy(args: argparse.Namespace) -> int:
    from pathlib import Path

    from foundation.errors import KurabeError
    from kurabe.store.copy import copy_store
    from kurabe.store.target import is_postgres_url, open_database, resolve_target

    options = options_from(StoreCopyOptions, args)
    if not is_postgres_url(options.source) and not Path(options.source).expanduser().is_file():
        raise KurabeError(f"no store at {options.source}")
    with (
        open_database(resolve_target(options.source)) as source,
        open_database(resolve_target(options.to or options.db)) as target,
    ):
        counts = copy_store(source, target)
        print(f"copied {source.name} into {target.name}", file=sys.stderr)
        print("table\tin source\tcopied\talready there")
        for count in counts:
            print(f"{count.table}\t{count.source_rows}\t{count.copied}\t{count.already_there}")
    return 0
