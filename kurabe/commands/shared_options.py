"""Options several subcommands take alike: where the store is (``--db``), which models play
(``--models``) and where model profiles come from besides the built-in ones (``--models-file``,
``--models-dir``)."""

from __future__ import annotations

import argparse


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """``--db``: an SQLite file or a ``postgresql://`` URL (else ``KURABE_DB``, then config)."""
    parser.add_argument(
        "--db", metavar="DB", default=argparse.SUPPRESS, help="database file or postgresql:// URL"
    )


def add_models_option(parser: argparse.ArgumentParser) -> None:
    """``--models``: the panes' models, by any name ``kurabe`` itself takes."""
    parser.add_argument(
        "--models",
        metavar="A,B,C",
        default=argparse.SUPPRESS,
        help="models (1-6): profile names, .gguf paths, openai:MODEL, anthropic:MODEL, URLs",
    )


def add_model_source_options(parser: argparse.ArgumentParser) -> None:
    """``--models-file`` (extra profiles) and ``--models-dir`` (a folder of GGUF files,
    repeatable)."""
    parser.add_argument(
        "--models-file", metavar="FILE", default=argparse.SUPPRESS, help="extra model profiles"
    )
    parser.add_argument(
        "--models-dir",
        metavar="DIR",
        action="append",
        default=argparse.SUPPRESS,
        help="a folder of GGUF files (named by file name)",
    )
