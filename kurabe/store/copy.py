"""Moving a solo store into a team store: :func:`copy_store` copies every row of one database
(an SQLite file, usually) into another (a PostgreSQL one, usually): sessions, panes, turns,
replies, ratings, verdicts, picks, events, judge runs and judgements.

Ids are remapped (the target numbers its rows itself, and every reference follows), and each
copied row is recorded in the target's ``copied_rows`` with its source store's id
(:func:`store_id`) and its id there, so copying the same store again adds nothing; it adds what
is new since. The whole copy is one transaction of the target: a copy that fails leaves nothing
behind. The counts per table say what was copied and what was already there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from foundation.errors import KurabeError
from kurabe.store.database import Database

COPIED_TABLES: tuple[tuple[str, dict[str, str]], ...] = (
    ("runs", {}),
    ("sessions", {"run_id": "runs"}),
    ("panes", {"session_id": "sessions"}),
    ("turns", {"session_id": "sessions"}),
    ("replies", {"turn_id": "turns", "pane_id": "panes"}),
    ("ratings", {"reply_id": "replies"}),
    ("verdicts", {"pane_id": "panes"}),
    ("picks", {"turn_id": "turns", "winner_pane_id": "panes"}),
    ("events", {"session_id": "sessions"}),
    ("reply_attempts", {"session_id": "sessions"}),
    ("judge_runs", {"session_id": "sessions"}),
    (
        "judgements",
        {
            "run_id": "judge_runs",
            "turn_id": "turns",
            "reply_id": "replies",
            "other_reply_id": "replies",
            "winner_reply_id": "replies",
            "rating_id": "ratings",
        },
    ),
    (
        "imported_judgements",
        {"turn_id": "turns", "reply_id": "replies", "other_reply_id": "replies"},
    ),
    ("studies", {}),
    ("study_raters", {"study_id": "studies"}),
    ("study_items", {"study_id": "studies", "turn_id": "turns"}),
    ("study_claims", {"item_id": "study_items"}),
    ("study_skips", {"item_id": "study_items"}),
    ("study_scores", {"item_id": "study_items", "reply_id": "replies"}),
    ("study_picks", {"item_id": "study_items", "winner_reply_id": "replies"}),
    ("study_verdicts", {"item_id": "study_items", "reply_id": "replies"}),
)
"""Every table of kurabe's data, parents first, with the columns that refer to another table."""

BOOKKEEPING_TABLES = ("store_meta", "copied_rows")
"""The store's own tables, never copied."""


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One table's count: rows in the source, copied now, already copied before."""

    table: str
    source_rows: int
    copied: int
    already_there: int


def store_id(database: Database) -> str:
    """The database's own id (made on first use), which names it as a copy's source."""
    with database.transaction():
        database.execute(
            "INSERT INTO store_meta (key, value) VALUES ('store_id', ?)"
            " ON CONFLICT (key) DO NOTHING",
            (uuid.uuid4().hex,),
        )
        row = database.query_one("SELECT value FROM store_meta WHERE key = 'store_id'")
    assert row is not None
    return str(row[0])


def copy_store(source: Database, target: Database) -> list[TableCopy]:
    """Copy every row of ``source`` not yet copied into ``target``; the counts per table."""
    source_id = store_id(source)
    if source_id == store_id(target):
        raise KurabeError(f"{source.name} and {target.name} are the same store")
    counts: list[TableCopy] = []
    with target.transaction():
        known: dict[tuple[str, int], int] = {
            (str(row[0]), int(row[1])): int(row[2])
            for row in target.query(
                "SELECT table_name, source_id, target_id FROM copied_rows WHERE source = ?",
                (source_id,),
            )
        }
        with source.snapshot():
            for table, references in COPIED_TABLES:
                rows = source.query(f"SELECT * FROM {table} ORDER BY id")
                copied = 0
                for row in rows:
                    old_id = int(row["id"])
                    if (table, old_id) in known:
                        continue
                    # A row iterates over its values: its column names are its keys().
                    columns = [name for name in row.keys() if name != "id"]  # noqa: SIM118
                    values = []
                    for name in columns:
                        value = row[name]
                        if name in references and value is not None:
                            mapped = known.get((references[name], int(value)))
                            if mapped is None:
                                raise KurabeError(
                                    f"{source.name}: {table} {old_id} refers to "
                                    f"{references[name]} {value}, which is not there"
                                )
                            value = mapped
                        values.append(value)
                    new_id = target.insert(
                        f"INSERT INTO {table} ({', '.join(columns)})"
                        f" VALUES ({', '.join('?' for _ in columns)})",
                        values,
                    )
                    target.execute(
                        "INSERT INTO copied_rows (source, table_name, source_id, target_id)"
                        " VALUES (?, ?, ?, ?)",
                        (source_id, table, old_id, new_id),
                    )
                    known[(table, old_id)] = new_id
                    copied += 1
                counts.append(TableCopy(table, len(rows), copied, len(rows) - copied))
    return counts
