"""``kurabe serve STUDY``: a study's rating queue (``kurabe study rate``) on a web page, through
textual-serve (:mod:`kurabe.commands.rater_server`), one app process per browser tab.

- ``--host`` / ``--port``: where to listen (127.0.0.1:8000);
- ``--db``: the shared store every rater's process opens;
- ``--rater-header NAME``: take the rater's name from this request header, which an
  authenticating reverse proxy sets (oauth2-proxy: ``X-Forwarded-User``); without it the rater
  types their name on the page. ``kurabe serve`` itself authenticates no one;
- ``--max-raters N``: at most N tabs at once (8); the next one gets a page saying so;
- ``--base-path /PREFIX``: the path a proxy serves it under, when the proxy does not send
  ``X-Forwarded-Prefix``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from foundation.errors import KurabeError
from foundation.options import options_from


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="a study's rating queue in a browser (no authentication of its own)"
    )
    parser.add_argument("study", metavar="STUDY", help="the study whose queue to serve")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument("--db", metavar="DB", default=argparse.SUPPRESS, help="the shared store")
    parser.add_argument(
        "--rater-header",
        metavar="HEADER",
        help="the rater's name comes from this header, set by an authenticating proxy",
    )
    parser.add_argument("--max-raters", type=int, default=8, metavar="N", help="raters at once (8)")
    parser.add_argument(
        "--base-path",
        default="",
        metavar="/PREFIX",
        help="path prefix behind a proxy (default: X-Forwarded-Prefix, else none)",
    )
    parser.set_defaults(func=run_serve)


@dataclass(frozen=True)
class ServeOptions:
    """``kurabe serve``'s options."""

    study: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    db: str | None = None
    rater_header: str | None = None
    max_raters: int = 8
    base_path: str = ""


def run_serve(args: argparse.Namespace) -> int:
    from kurabe.store.store import Store

    options = options_from(ServeOptions, args)
    if options.max_raters < 1:
        raise KurabeError("--max-raters takes a number of 1 or more")
    with Store.open_default(options.db) as store:
        store.studies.get(options.study)  # an unknown study fails here, not in every tab

    from kurabe.commands.rater_server import RaterServer

    RaterServer(
        options.study,
        host=options.host,
        port=options.port,
        db=options.db,
        rater_header=options.rater_header,
        max_raters=options.max_raters,
        base_path=options.base_path,
    ).serve()
    return 0
