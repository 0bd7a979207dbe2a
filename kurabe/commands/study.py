"""``kurabe study create|list|status|rate|close|export``: rating studies, where several people
rate the same replies blind, each in their own pane order, until every item has ``--per-item``
raters (:mod:`kurabe.store.studies`, :mod:`kurabe.analysis.studies`, the queue in
:mod:`tui.study_screen`).

- ``create NAME (--sessions 1,2 | --scenario-tag TAG) [--per-item K] [--raters a,b,c]
  [--reveal closed|finished] [--not-blind] [--claim-timeout S]``: one item per turn of the
  sessions (or of every session of a scenario with that tag) whose panes all answered it;
- ``rate NAME [--rater NAME]``: the rater's queue in the app (rater: ``--rater``, else
  ``KURABE_RATER``, else the config's ``rater``, else the login name);
- ``status NAME [--format table|json]``: progress, agreement with bootstrap intervals, the items
  raters disagree on most, position bias;
- ``close NAME``: no more rating; the model names show to everyone;
- ``export NAME [--format csv|json|battles]``: every rater's ratings with the pane order they saw,
  or the battles of their picks.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from foundation.errors import KurabeError
from foundation.options import options_from
from kurabe.commands.shared_options import add_db_option


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "study", help="rating studies: many raters, blind, each item rated K times"
    )
    commands = parser.add_subparsers(dest="study_command", metavar="ACTION", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        add_db_option(sub)

    create = commands.add_parser("create", help="a new study from stored sessions")
    create.add_argument("name", metavar="NAME")
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--sessions", metavar="1,2,3", help="these sessions' turns")
    source.add_argument("--scenario-tag", metavar="TAG", help="sessions of scenarios with TAG")
    source.add_argument("--run", metavar="ID", help="a run's sessions (not wired yet)")
    create.add_argument("--per-item", type=int, default=3, metavar="K", help="raters per item")
    create.add_argument("--raters", metavar="a,b,c", help="only these raters (default: anyone)")
    create.add_argument(
        "--reveal",
        choices=("closed", "finished"),
        default="closed",
        help="names show once the study is closed (default) or once a rater has finished",
    )
    create.add_argument("--not-blind", action="store_true", help="show model names throughout")
    create.add_argument(
        "--claim-timeout",
        type=int,
        default=1800,
        metavar="S",
        help="release an unfinished item after S seconds (1800)",
    )
    common(create)
    create.set_defaults(func=run_create)

    listing = commands.add_parser("list", help="the studies")
    common(listing)
    listing.set_defaults(func=run_list)

    status = commands.add_parser("status", help="progress, agreement, position bias")
    status.add_argument("name", metavar="NAME")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.add_argument("--bootstrap", type=int, default=1000, metavar="N")
    common(status)
    status.set_defaults(func=run_status)

    rate = commands.add_parser("rate", help="your queue of items, in the app")
    rate.add_argument("name", metavar="NAME")
    rate.add_argument("--rater", metavar="NAME", default=None)
    common(rate)
    # No func: the command line opens the app (kurabe.cli), as plain ``kurabe`` does.
    rate.set_defaults(func=None, app="study")

    close = commands.add_parser("close", help="stop rating; model names show to everyone")
    close.add_argument("name", metavar="NAME")
    common(close)
    close.set_defaults(func=run_close)

    export = commands.add_parser("export", help="every rater's ratings, or the battles")
    export.add_argument("name", metavar="NAME")
    export.add_argument("--format", choices=("csv", "json", "battles"), default="csv")
    common(export)
    export.set_defaults(func=run_export)


@dataclass(frozen=True)
class StudyOptions:
    """``kurabe study``'s options (each action reads the ones it has)."""

    name: str = ""
    sessions: str | None = None
    scenario_tag: str | None = None
    run: str | None = None
    per_item: int = 3
    raters: str | None = None
    reveal: str = "closed"
    not_blind: bool = False
    claim_timeout: int = 1800
    db: str | None = None
    format: str = "table"
    bootstrap: int = 1000
    rater: str | None = None


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def run_create(args: argparse.Namespace) -> int:
    from kurabe.store.store import Store

    options = options_from(StudyOptions, args)
    if options.run is not None:
        raise KurabeError("--run is not wired yet: name the run's sessions with --sessions")
    with Store.open_default(options.db) as store:
        if options.sessions is not None:
            try:
                session_ids = [int(part) for part in _names(options.sessions)]
            except ValueError:
                raise KurabeError("--sessions takes session ids: 1,2,3") from None
            source = "sessions " + ", ".join(str(s) for s in session_ids)
        else:
            tag = options.scenario_tag or ""
            session_ids = [
                s
                for s in store.sessions.ids()
                if (scenario := store.sessions.get(s).scenario_obj()) is not None
                and tag in scenario.tags
            ]
            source = f"scenario tag {tag} (sessions {', '.join(map(str, session_ids))})"
        turn_ids = study_turns(store, session_ids)
        store.studies.create(
            options.name,
            turn_ids,
            per_item=options.per_item,
            raters=_names(options.raters),
            blind=not options.not_blind,
            reveal=options.reveal,
            claim_timeout_s=options.claim_timeout,
            source=source,
        )
    raters = ", ".join(_names(options.raters)) or "anyone who joins"
    print(
        f"study {options.name}: {len(turn_ids)} items from {source}, {options.per_item} raters "
        f"each ({raters}); rate with: kurabe study rate {options.name} --rater NAME"
    )
    return 0


def study_turns(store: Any, session_ids: list[int]) -> list[int]:
    """The turns of these sessions that every pane answered (its newest reply complete)."""
    turn_ids: list[int] = []
    for session_id in session_ids:
        record = store.load_record(session_id)
        if len(record.panes) < 2:
            continue
        latest = record.latest_replies()
        for turn in record.turns:
            replies = [latest.get((pane.position, turn.idx)) for pane in record.panes]
            if all(reply is not None and reply.completed for reply in replies):
                turn_ids.append(turn.id)
    if not turn_ids:
        raise KurabeError("no turn of those sessions has a complete reply from two or more panes")
    return turn_ids


def run_list(args: argparse.Namespace) -> int:
    from kurabe.store.store import Store

    options = options_from(StudyOptions, args)
    with Store.open_default(options.db) as store:
        for study in store.studies.studies():
            items = len(store.studies.items(study.id))
            print(f"{study.name}\t{study.status}\t{items} items × {study.per_item}\t{study.source}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from kurabe.analysis.studies import status_lines, study_status
    from kurabe.store.store import Store

    options = options_from(StudyOptions, args)
    with Store.open_default(options.db) as store:
        status = study_status(store, options.name, rounds=options.bootstrap)
    if options.format == "json":
        sys.stdout.write(json.dumps(status.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return 0
    for line in status_lines(status):
        print(line)
    return 0


def run_close(args: argparse.Namespace) -> int:
    from kurabe.store.store import Store

    options = options_from(StudyOptions, args)
    with Store.open_default(options.db) as store:
        store.studies.close(store.studies.get(options.name).id)
    print(f"study {options.name} closed")
    return 0


EXPORT_COLUMNS = (
    "study",
    "item",
    "session",
    "turn",
    "rater",
    "kind",
    "pane",
    "shown_position",
    "shown_order",
    "model",
    "score",
    "tags",
    "verdict",
    "outcome",
    "note",
    "created_at",
)


def study_rows(store: Any, name: str) -> list[dict[str, Any]]:
    """Every rater's marks (each amendment too), with the pane order each rater was shown."""
    study = store.studies.get(name)
    items = {item.id: item for item in store.studies.items(study.id)}
    claims = {(c.item_id, c.rater): c for c in store.studies.claims(study.id)}
    reply_rows = store.database.query(
        "SELECT r.id, p.position, p.profile_name FROM replies r JOIN panes p ON p.id = r.pane_id"
        " JOIN study_items i ON i.turn_id = r.turn_id WHERE i.study_id = ?",
        (study.id,),
    )
    pane_of = {int(r["id"]): (int(r["position"]), str(r["profile_name"])) for r in reply_rows}
    rows: list[dict[str, Any]] = []

    def base(item_id: int, rater: str, kind: str, created_at: str) -> dict[str, Any]:
        item = items[item_id]
        claim = claims.get((item_id, rater))
        return dict.fromkeys(EXPORT_COLUMNS, "") | {
            "study": study.name,
            "item": item.idx,
            "session": item.session_id,
            "turn": item.turn + 1,
            "rater": rater,
            "kind": kind,
            "shown_order": " ".join(str(p) for p in claim.positions) if claim else "",
            "created_at": created_at,
        }

    for score in store.studies.scores(study.id):
        position, model = pane_of[score.reply_id]
        rows.append(
            base(score.item_id, score.rater, "score", score.created_at)
            | {
                "pane": position,
                "shown_position": score.shown_position,
                "model": model,
                "score": "" if score.score is None else score.score,
                "tags": " ".join(score.tags),
                "note": score.note,
            }
        )
    for verdict in store.studies.verdicts(study.id):
        position, model = pane_of[verdict.reply_id]
        rows.append(
            base(verdict.item_id, verdict.rater, "verdict", verdict.created_at)
            | {
                "pane": position,
                "shown_position": verdict.shown_position,
                "model": model,
                "verdict": verdict.verdict,
                "note": verdict.note,
            }
        )
    for pick in store.studies.picks(study.id):
        winner = pane_of.get(pick.winner_reply_id) if pick.winner_reply_id else None
        rows.append(
            base(pick.item_id, pick.rater, "pick", pick.created_at)
            | {
                "pane": "" if winner is None else winner[0],
                "shown_position": ""
                if pick.winner_shown_position is None
                else pick.winner_shown_position,
                "model": "" if winner is None else winner[1],
                "outcome": pick.outcome,
            }
        )
    for skip in store.studies.skips(study.id):
        rows.append(base(skip.item_id, skip.rater, "skip", skip.created_at))
    return sorted(rows, key=lambda row: (row["created_at"], row["rater"]))


def run_export(args: argparse.Namespace) -> int:
    from kurabe.core.csvsafe import spreadsheet_safe
    from kurabe.store.store import Store

    options = options_from(StudyOptions, args)
    with Store.open_default(options.db) as store:
        if options.format == "battles":
            from kurabe.analysis.studies import study_battles

            battles = [asdict(b) for b in study_battles(store, options.name)]
            sys.stdout.write(json.dumps(battles, ensure_ascii=False, indent=2) + "\n")
            return 0
        rows = study_rows(store, options.name)
    if options.format == "json":
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return 0
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([spreadsheet_safe(row[column]) for column in EXPORT_COLUMNS])
    sys.stdout.write(buffer.getvalue())
    return 0
