"""``kurabe agreement [--scenario ID] [--session N|last] [--format table|json]``: how far the LLM
judges agree with people (weighted Cohen's kappa and Spearman on scores, agreement on picks) and
people with each other (Krippendorff's alpha, ordinal), with bootstrap 95% intervals; see
:mod:`kurabe.analysis.agreement`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

from foundation.options import options_from
from kurabe.commands.shared_options import add_db_option


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "agreement",
        help="judge vs human and human vs human agreement (kappa, Spearman, alpha)",
    )
    parser.add_argument("--scenario", metavar="ID", default=None, help="one scenario's sessions")
    parser.add_argument("--session", metavar="N", default=None, help="one session (or 'last')")
    add_db_option(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples (1000)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="bootstrap seed (0)")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class AgreementOptions:
    """``kurabe agreement``'s options."""

    scenario: str | None = None
    session: str | None = None
    db: str | None = None
    format: str = "table"
    bootstrap: int = 1000
    seed: int = 0


def run(args: argparse.Namespace) -> int:
    from kurabe.analysis.agreement import build_agreement, report_lines
    from kurabe.store.session_number import resolve_session_id
    from kurabe.store.store import Store

    options = options_from(AgreementOptions, args)
    with Store.open_default(options.db) as store:
        session = (
            None
            if options.session is None
            else resolve_session_id(options.session, store, "--session")
        )
        report = build_agreement(
            store,
            scenario=options.scenario,
            session=session,
            rounds=options.bootstrap,
            seed=options.seed,
        )
    if options.format == "json":
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return 0
    scope = []
    if options.scenario:
        scope.append(f"scenario {options.scenario}")
    if session is not None:
        scope.append(f"session {session}")
    title = f"kurabe agreement — {report.sessions} sessions"
    if scope:
        title += " (" + ", ".join(scope) + ")"
    title += "; scores on kurabe's scale 1–5 (imported MT-Bench judgments, 1–10, are not compared)"
    print(title)
    for line in report_lines(report):
        print(f"  {line}")
    return 0
