"""The ``kurabe`` command line.

``kurabe`` alone opens the Textual app; subcommands work headless. Each subcommand lives in its
own module under :mod:`kurabe.commands` with ``register(subparsers)``; the module sets
``func=`` on its parser to a function ``(argparse.Namespace) -> int``, which reads the namespace
once into the command's typed options (:func:`foundation.options.options_from`). Modules
import nothing heavy at the top so ``kurabe --help`` answers fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from foundation.errors import KurabeError
from kurabe import __version__

COMMAND_MODULES: tuple[str, ...] = (
    "models",
    "prompt",
    "personas",
    "scenarios",
    "check",
    "sessions",
    "export",
    "leaderboard",
    "replay",
    "run",
    "import_questions",
    "judge",
    "agreement",
    "store",
    "study",
    "serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kurabe",
        allow_abbrev=False,
        description="比べ — compare Japanese LLMs side by side on persona conversations.",
    )
    parser.add_argument("--version", action="version", version=f"kurabe {__version__}")
    parser.add_argument(
        "--persona", metavar="ID", help="persona to start with (default: anime-fan)"
    )
    parser.add_argument("--scenario", metavar="ID", help="scenario to replay in the app")
    parser.add_argument(
        "--models",
        metavar="A,B,C",
        help="models, one pane each (1-6): profile names, .gguf paths, openai:MODEL, "
        "anthropic:MODEL, server URLs[#MODEL]",
    )
    parser.add_argument("--models-file", metavar="FILE", help="extra model profiles (TOML)")
    parser.add_argument(
        "--models-dir", metavar="DIR", action="append", help="a folder of GGUF files to offer"
    )
    parser.add_argument(
        "--db",
        metavar="DB",
        help="database: a file (SQLite) or postgresql://user@host:port/dbname "
        "(default: KURABE_DB, db in config.toml, else a file in the data dir)",
    )
    parser.add_argument("--blind", action="store_true", help="hide model names behind A, B, C")
    parser.add_argument("--rater", metavar="NAME", help="who is rating (default: from config)")
    parser.add_argument("--resume", metavar="SESSION", help="reopen a saved session")
    parser.add_argument(
        "--parallel-local", action="store_true", help="run local panes at the same time"
    )
    parser.add_argument(
        "--judge", metavar="MODEL", help="the LLM judge the j key asks (default: from config)"
    )
    # No subcommand: no func, and ``kurabe`` opens the app (``app``: which one; ``kurabe study
    # rate`` opens a rater's queue).
    parser.set_defaults(func=None, app="kurabe")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"kurabe.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = args.func
    try:
        if func is None:
            from tui.app import run_app, run_study_app

            return run_study_app(args) if args.app == "study" else run_app(args)
        result: int = func(args)
        return result
    except KurabeError as exc:
        print(f"kurabe: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kurabe: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
