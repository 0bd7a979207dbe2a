"""``kurabe leaderboard [--scenario ID] [--run RUN] [--rater NAME] [--kind human|judge|all]
[--study NAME] [--db PATH] [--format table|json|csv|html]``: per model the rated replies, mean
score, verdict counts, Bradley–Terry rating with bootstrap 95% intervals from the per-turn picks,
the automatic checks' averages, and a win-rate matrix; then the agreement figures of the same
sessions (judge vs human, human vs human; :mod:`kurabe.analysis.agreement`). ``html`` is a
self-contained page with the ranking and its charts (:mod:`kurabe.analysis.charts`).

People's ratings by default; ``--kind judge`` ranks by the LLM judges' scores and pairwise
judgements instead, ``--rater judge:<profile>`` by one judge's; ``--study NAME`` ranks by one
rating study's picks and scores (:func:`kurabe.analysis.studies.study_leaderboard`). The table
and JSON carry the agreement figures; the CSV stays one row per model."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from foundation.options import options_from
from kurabe.commands.shared_options import add_db_option


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "leaderboard", help="scores, verdicts and Bradley-Terry ratings per model"
    )
    parser.add_argument("--scenario", metavar="ID", default=argparse.SUPPRESS, help="one scenario")
    parser.add_argument(
        "--run", metavar="RUN", type=int, default=None, help="the sessions of one run"
    )
    parser.add_argument(
        "--rater", metavar="NAME", default=argparse.SUPPRESS, help="one rater (judge:PROFILE too)"
    )
    parser.add_argument(
        "--kind",
        choices=("human", "judge", "all"),
        default=None,
        help="whose ratings: people's (default), the LLM judges', or both",
    )
    parser.add_argument(
        "--study", metavar="NAME", default=None, help="one rating study's ratings and picks"
    )
    add_db_option(parser)
    parser.add_argument(
        "--format", choices=("table", "json", "csv", "html"), default="table", help="output format"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=200, metavar="N", help="bootstrap resamples (200)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="bootstrap seed (0)")
    parser.add_argument(
        "--mt-bench",
        action="store_true",
        help="the MT-Bench table instead: mean judge score per model, per turn and overall, and"
        " pairwise wins/losses/ties, each judge on its own scale (with --tag, default mt-bench)",
    )
    parser.add_argument(
        "--tag", metavar="TAG", default=argparse.SUPPRESS, help="--mt-bench: sessions of this tag"
    )
    parser.set_defaults(func=run)


SCALE_NOTE = "scale 1–5 (imported MT-Bench judgments, 1–10: --mt-bench)"
"""Which scale the table's scores are on: the leaderboard says so, never mixes scales."""


def _num(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


@dataclass(frozen=True)
class LeaderboardOptions:
    """``kurabe leaderboard``'s options."""

    scenario: str | None = None
    run: int | None = None
    rater: str | None = None
    kind: str | None = None
    study: str | None = None
    db: str | None = None
    format: str = "table"
    bootstrap: int = 200
    seed: int = 0
    mt_bench: bool = False
    tag: str | None = None


def mt_bench_table(options: LeaderboardOptions) -> int:
    """``--mt-bench``: :mod:`kurabe.analysis.mtbench`'s tables over the tag's sessions. The hook
    for a run: once ``store.runs`` exists, ``--run ID`` passes its session ids to
    ``select_sessions(store, session_ids=...)`` here."""
    from kurabe.analysis.mtbench import build_table, select_sessions, table_lines
    from kurabe.core.mt_bench import MT_BENCH_TAG
    from kurabe.store.store import Store

    with Store.open_default(options.db) as store:
        session_ids = select_sessions(store, tag=options.tag or MT_BENCH_TAG)
        lines = table_lines(build_table(store, session_ids))
    if not lines:
        print("no judgments of MT-Bench sessions yet", file=sys.stderr)
        return 0
    sys.stdout.write("\n".join(lines))
    return 0


def run(args: argparse.Namespace) -> int:
    from kurabe.analysis.agreement import report_lines
    from kurabe.analysis.leaderboard import build_leaderboard, interval_note
    from kurabe.store.store import Store

    options = options_from(LeaderboardOptions, args)
    if options.mt_bench:
        return mt_bench_table(options)
    with Store.open_default(options.db) as store:
        if options.study is not None:
            from kurabe.analysis.studies import study_leaderboard

            board = study_leaderboard(
                store, options.study, rounds=options.bootstrap, seed=options.seed
            )
        else:
            board = build_leaderboard(
                store,
                scenario=options.scenario,
                rater=options.rater,
                kind=options.kind,
                rounds=options.bootstrap,
                seed=options.seed,
                run=options.run,
            )
        agreement = None
        if options.format != "csv" and options.study is None:
            from kurabe.analysis.agreement import build_agreement

            agreement = build_agreement(
                store,
                scenario=options.scenario,
                rounds=options.bootstrap,
                seed=options.seed,
                run=options.run,
            )
            board.agreement = agreement.to_dict()
    if options.format == "json":
        sys.stdout.write(board.to_json())
        return 0
    if options.format == "csv":
        sys.stdout.write(board.to_csv())
        return 0
    if options.format == "html":
        from kurabe.analysis.charts import leaderboard_page

        sys.stdout.write(leaderboard_page(board))
        return 0
    if not board.models:
        print("no sessions yet", file=sys.stderr)
        return 0
    headers = (
        "model",
        "rating",
        "95% CI",
        "battles",
        "win%",
        "rated",
        "mean",
        "great/ok/subpar/ooc",
        "tok/s",
        "chars/s",
        "日本語",
        "丁寧",
        "chars/tok",
        "flagged",
    )
    rows = []
    for m in board.models:
        ci = "-" if m.ci_low is None else f"{m.ci_low:.0f}–{m.ci_high:.0f}"
        if m.rating is not None and interval_note(m.battles):
            ci += " *"
        verdicts = "/".join(
            str(m.verdicts.get(k, 0)) for k in ("great", "ok", "subpar", "out-of-character")
        )
        rows.append(
            (
                m.model,
                _num(m.rating, 0),
                ci,
                str(m.battles),
                _pct(m.win_share),
                str(m.rated_replies),
                _num(m.mean_score, 2),
                verdicts,
                _num(m.tokens_per_s),
                _num(m.chars_per_s),
                _pct(m.japanese_share),
                _pct(m.polite_share),
                _num(m.chars_per_token, 2),
                _pct(m.flagged_share),
            )
        )
    notes = {interval_note(m.battles) for m in board.models if m.rating is not None}
    footnotes = [f"* {note}" for note in sorted(n for n in notes if n)]
    names = [m.model for m in board.models]
    matrix = [
        (a, *("·" if a == b else _pct(board.win_rate[a].get(b)) for b in names)) for a in names
    ]
    scope = [f"study {options.study}"] if options.study else []
    if board.scenario:
        scope.append(f"scenario {board.scenario}")
    if board.run is not None:
        scope.append(f"run {board.run}")
    if board.rater:
        scope.append(f"rater {board.rater}")
    elif board.kind != "human":
        scope.append("judges' ratings" if board.kind == "judge" else "people's and judges' ratings")
    title = f"kurabe leaderboard — {board.sessions} sessions, {board.battles} battles"
    if scope:
        title += " (" + ", ".join(scope) + ")"
    title += f"; mean on kurabe's {SCALE_NOTE}"
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        console = Console()
        table = Table(*headers, title=title)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        for footnote in footnotes:
            console.print(footnote, markup=False)
        grid = Table("win rate (row vs column)", *names)
        for cells in matrix:
            grid.add_row(*cells)
        console.print(grid)
        if agreement is not None:
            from rich.text import Text

            console.print(Text("agreement", style="bold"))
            for line in report_lines(agreement):
                console.print(Text(f"  {line}"))
    else:
        print(title)
        print("\t".join(headers))
        for row in rows:
            print("\t".join(row))
        for footnote in footnotes:
            print(footnote)
        print()
        print("\t".join(("win rate (row vs column)", *names)))
        for cells in matrix:
            print("\t".join(cells))
        if agreement is not None:
            print()
            print("agreement")
            for line in report_lines(agreement):
                print(f"  {line}")
    return 0
