"""Rating studies' tables, as :class:`StudyRepository`, ``store.studies``.

A **study** is a named set of **items**, each one turn of one stored session (the panes' replies
to it, side by side). Every item needs ``per_item`` different raters. A rater asks for work with
:meth:`StudyRepository.claim_next`; a **claim** gives them one item in one of its ``per_item``
slots and records the order in which that rater is shown the panes (shuffled per rater and item,
so that position bias can be measured). The database's two UNIQUE constraints, (item, rater) and
(item, slot), are what make this safe when several raters ask at the same moment, on any engine:
a claim is chosen and inserted in one transaction, and a claim that lost a race to another
process (an integrity error on an engine that lets both transactions run) is chosen again. A
claim not finished within the study's ``claim_timeout_s`` is released (deleted) by the next
claim, so a rater who disappears does not hold an item for ever.

Scores, picks, verdicts and skips are append-only rows carrying their rater: amending adds a
row and the newest per (item, rater, reply) counts. A rater writes only under their own name and
only on an item they hold a claim on; there is no call that changes another rater's rows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from foundation.errors import KurabeError
from kurabe.core.scores import check_score
from kurabe.core.verdicts import normalize_verdict
from kurabe.store.database import Database, Row, from_json, now_iso, to_json
from kurabe.store.records import PICK_OUTCOMES

REVEAL_WHEN = ("closed", "finished")
"""When a blind study shows a rater the model names: once it is closed, or once they finished."""
CLAIM_ATTEMPTS = 20
"""How often a claim that lost a race is chosen again before giving up."""


@dataclass(frozen=True)
class StudyRow:
    id: int
    name: str
    created_at: str
    per_item: int
    blind: bool
    reveal: str
    """``closed`` or ``finished`` (:data:`REVEAL_WHEN`)."""
    open_to_all: bool
    """Anyone may join; otherwise only the named raters."""
    claim_timeout_s: int
    source: str
    """Where the items came from, as people read it ("sessions 1, 2", "scenario tag seed")."""
    status: str
    closed_at: str | None

    @property
    def closed(self) -> bool:
        return self.status == "closed"


@dataclass(frozen=True)
class StudyItem:
    id: int
    idx: int
    """1-based number of the item in its study."""
    session_id: int
    turn_id: int
    turn: int
    """The turn's index in its session."""


@dataclass(frozen=True)
class Claim:
    """One item held by one rater: which slot, and the pane positions in the order shown."""

    id: int
    item_id: int
    rater: str
    slot: int
    positions: tuple[int, ...]
    """``positions[i]`` is the session's pane position shown i-th (left first)."""
    claimed_at: str
    done_at: str | None

    @property
    def done(self) -> bool:
        return self.done_at is not None


@dataclass(frozen=True)
class StudyScore:
    id: int
    item_id: int
    rater: str
    reply_id: int
    shown_position: int
    score: int | None
    tags: tuple[str, ...]
    note: str
    created_at: str


@dataclass(frozen=True)
class StudyPick:
    id: int
    item_id: int
    rater: str
    winner_reply_id: int | None
    winner_shown_position: int | None
    outcome: str
    created_at: str


@dataclass(frozen=True)
class StudyVerdict:
    id: int
    item_id: int
    rater: str
    reply_id: int
    shown_position: int
    verdict: str
    note: str
    created_at: str


@dataclass(frozen=True)
class StudySkip:
    id: int
    item_id: int
    rater: str
    created_at: str


def shuffled_positions(
    study_id: int, item_id: int, rater: str, positions: Sequence[int]
) -> tuple[int, ...]:
    """The pane order one rater is shown for one item: a shuffle seeded by the three, so the same
    rater sees the same order again after a released claim (it is recorded all the same)."""
    order = list(positions)
    random.Random(f"{study_id}:{item_id}:{rater}").shuffle(order)
    return tuple(order)


def _lost_race(exc: BaseException) -> bool:
    """Whether ``exc`` is the engine's integrity error (a UNIQUE constraint another transaction
    won): ``sqlite3.IntegrityError``, or a driver's ``IntegrityError`` subclass elsewhere."""
    return any(cls.__name__ == "IntegrityError" for cls in type(exc).__mro__)


def _cutoff(seconds: int) -> str:
    moment = datetime.now(timezone.utc) - timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds")


class StudyRepository:
    """Studies, their items, raters, claims and ratings, on one
    :class:`~kurabe.store.database.Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- studies --------------------------------------------------------------------------

    def create(
        self,
        name: str,
        turn_ids: Sequence[int],
        *,
        per_item: int,
        raters: Sequence[str] = (),
        blind: bool = True,
        reveal: str = "closed",
        claim_timeout_s: int = 1800,
        source: str = "",
    ) -> int:
        """A new study of ``turn_ids`` (in that order). With ``raters`` only they may rate;
        without, anyone who joins."""
        if not name.strip():
            raise KurabeError("a study needs a name")
        if per_item < 1:
            raise KurabeError("--per-item is at least 1")
        if raters and per_item > len(set(raters)):
            raise KurabeError(
                f"--per-item {per_item} needs at least {per_item} raters; {len(set(raters))} named"
            )
        if reveal not in REVEAL_WHEN:
            raise KurabeError(f"reveal is one of {', '.join(REVEAL_WHEN)}, not {reveal!r}")
        if not turn_ids:
            raise KurabeError("a study needs at least one item")
        if self.database.query_one("SELECT id FROM studies WHERE name = ?", (name,)):
            raise KurabeError(f"a study named {name!r} already exists")
        stamp = now_iso()
        with self.database.transaction():
            study_id = self.database.insert(
                "INSERT INTO studies (name, created_at, per_item, blind, reveal, open_to_all,"
                " claim_timeout_s, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    stamp,
                    per_item,
                    int(blind),
                    reveal,
                    int(not raters),
                    claim_timeout_s,
                    source,
                ),
            )
            for idx, turn_id in enumerate(dict.fromkeys(turn_ids), start=1):
                self.database.execute(
                    "INSERT INTO study_items (study_id, idx, turn_id) VALUES (?, ?, ?)",
                    (study_id, idx, turn_id),
                )
            for rater in dict.fromkeys(raters):
                self.database.execute(
                    "INSERT INTO study_raters (study_id, rater) VALUES (?, ?)", (study_id, rater)
                )
        return study_id

    def get(self, name: str) -> StudyRow:
        row = self.database.query_one("SELECT * FROM studies WHERE name = ?", (name,))
        if row is None:
            raise KurabeError(f"no study named {name!r} (kurabe study list)")
        return _study_row(row)

    def studies(self) -> list[StudyRow]:
        return [_study_row(r) for r in self.database.query("SELECT * FROM studies ORDER BY id")]

    def close(self, study_id: int) -> None:
        self.database.execute(
            "UPDATE studies SET status = 'closed', closed_at = ? WHERE id = ? AND status = 'open'",
            (now_iso(), study_id),
        )

    def items(self, study_id: int) -> list[StudyItem]:
        rows = self.database.query(
            "SELECT i.id, i.idx, i.turn_id, t.session_id, t.idx AS turn_idx FROM study_items i"
            " JOIN turns t ON t.id = i.turn_id WHERE i.study_id = ? ORDER BY i.idx",
            (study_id,),
        )
        return [
            StudyItem(
                id=r["id"],
                idx=r["idx"],
                session_id=r["session_id"],
                turn_id=r["turn_id"],
                turn=r["turn_idx"],
            )
            for r in rows
        ]

    def item(self, item_id: int) -> StudyItem:
        for candidate in self.items(self._study_of(item_id)):
            if candidate.id == item_id:
                return candidate
        raise KurabeError(f"no study item {item_id}")  # pragma: no cover - foreign key

    def raters(self, study_id: int) -> list[str]:
        """The named raters and everyone who joined or claimed, in order of appearance."""
        named = [
            str(r["rater"])
            for r in self.database.query(
                "SELECT rater FROM study_raters WHERE study_id = ? ORDER BY id", (study_id,)
            )
        ]
        claimed = [
            str(r["rater"])
            for r in self.database.query(
                "SELECT c.rater FROM study_claims c JOIN study_items i ON i.id = c.item_id"
                " WHERE i.study_id = ? ORDER BY c.id",
                (study_id,),
            )
        ]
        return list(dict.fromkeys(named + claimed))

    # -- assignment -----------------------------------------------------------------------

    def release_expired(self, study: StudyRow) -> int:
        """Release the unfinished claims older than the study's timeout; returns how many."""
        return self.database.execute(
            "DELETE FROM study_claims WHERE done_at IS NULL AND claimed_at < ? AND item_id IN"
            " (SELECT id FROM study_items WHERE study_id = ?)",
            (_cutoff(study.claim_timeout_s), study.id),
        )

    def join(self, study: StudyRow, rater: str) -> None:
        """Make ``rater`` one of the study's raters (refused when the study names its raters
        and not this one, or is closed)."""
        if not rater.strip():
            raise KurabeError("a rater needs a name (--rater, the config's rater, or KURABE_RATER)")
        if study.closed:
            raise KurabeError(f"study {study.name!r} is closed")
        known = self.database.query_one(
            "SELECT joined_at FROM study_raters WHERE study_id = ? AND rater = ?",
            (study.id, rater),
        )
        if known is None:
            if not study.open_to_all:
                raise KurabeError(f"{rater!r} is not one of study {study.name!r}'s raters")
            try:
                self.database.execute(
                    "INSERT INTO study_raters (study_id, rater, joined_at) VALUES (?, ?, ?)",
                    (study.id, rater, now_iso()),
                )
            except Exception as exc:  # the same rater joining from two terminals at once
                if not _lost_race(exc):
                    raise
        elif known["joined_at"] is None:
            self.database.execute(
                "UPDATE study_raters SET joined_at = ? WHERE study_id = ? AND rater = ?",
                (now_iso(), study.id, rater),
            )

    def open_claim(self, study_id: int, rater: str) -> Claim | None:
        """The rater's unfinished claim in this study, if any."""
        row = self.database.query_one(
            "SELECT c.* FROM study_claims c JOIN study_items i ON i.id = c.item_id"
            " WHERE i.study_id = ? AND c.rater = ? AND c.done_at IS NULL ORDER BY c.id",
            (study_id, rater),
        )
        return None if row is None else _claim(row)

    def claim_next(self, study: StudyRow, rater: str) -> Claim | None:
        """The rater's next item: their unfinished claim if they hold one, else a new claim on
        an item that still needs raters (the fewest raters so far first, so the items fill
        evenly), that they neither hold nor skipped. None when nothing is left for them."""
        self.join(study, rater)
        for _ in range(CLAIM_ATTEMPTS):
            try:
                with self.database.transaction():
                    self.release_expired(study)
                    held = self.open_claim(study.id, rater)
                    if held is not None:
                        return held
                    return self._claim_fresh(study, rater)
            except Exception as exc:
                if not _lost_race(exc):
                    raise
        raise KurabeError("could not claim an item: too many raters at once; try again")

    def _claim_fresh(self, study: StudyRow, rater: str) -> Claim | None:
        rows = self.database.query(
            "SELECT i.id, i.idx, COUNT(c.id) AS taken FROM study_items i"
            " LEFT JOIN study_claims c ON c.item_id = i.id"
            " WHERE i.study_id = ?"
            " AND i.id NOT IN (SELECT item_id FROM study_claims WHERE rater = ?)"
            " AND i.id NOT IN (SELECT item_id FROM study_skips WHERE rater = ?)"
            " GROUP BY i.id, i.idx HAVING COUNT(c.id) < ? ORDER BY COUNT(c.id), i.idx",
            (study.id, rater, rater, study.per_item),
        )
        if not rows:
            return None
        fewest = rows[0]["taken"]
        # Among the items with the fewest raters, each rater starts somewhere else, so raters
        # asking at once seldom reach for the same item.
        candidates = [r for r in rows if r["taken"] == fewest]
        chosen = candidates[random.Random(f"{study.id}:{rater}").randrange(len(candidates))]
        return self._insert_claim(study, chosen["id"], rater)

    def claim_item(self, study: StudyRow, item_id: int, rater: str) -> Claim:
        """A claim on this item for this rater (going back to a skipped item, or to one whose
        claim was released): their existing claim, else a free slot, else refused."""
        self.join(study, rater)
        for _ in range(CLAIM_ATTEMPTS):
            try:
                with self.database.transaction():
                    existing = self.claim_of(item_id, rater)
                    if existing is not None:
                        return existing
                    claim = self._insert_claim(study, item_id, rater)
                    if claim is None:
                        raise KurabeError("this item already has all the raters it needs")
                    return claim
            except KurabeError:
                raise
            except Exception as exc:
                if not _lost_race(exc):
                    raise
        raise KurabeError("could not claim the item: too many raters at once; try again")

    def _insert_claim(self, study: StudyRow, item_id: int, rater: str) -> Claim | None:
        taken = {
            int(r["slot"])
            for r in self.database.query(
                "SELECT slot FROM study_claims WHERE item_id = ?", (item_id,)
            )
        }
        free = [slot for slot in range(study.per_item) if slot not in taken]
        if not free:
            return None
        positions = [
            int(r["position"])
            for r in self.database.query(
                "SELECT p.position FROM panes p JOIN turns t ON t.session_id = p.session_id"
                " JOIN study_items i ON i.turn_id = t.id WHERE i.id = ? ORDER BY p.position",
                (item_id,),
            )
        ]
        order = shuffled_positions(study.id, item_id, rater, positions)
        self.database.execute(
            "INSERT INTO study_claims (item_id, rater, slot, positions_json, claimed_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (item_id, rater, free[0], to_json(list(order)), now_iso()),
        )
        claim = self.claim_of(item_id, rater)
        assert claim is not None
        return claim

    def claim_of(self, item_id: int, rater: str) -> Claim | None:
        row = self.database.query_one(
            "SELECT * FROM study_claims WHERE item_id = ? AND rater = ?", (item_id, rater)
        )
        return None if row is None else _claim(row)

    def claims(self, study_id: int) -> list[Claim]:
        rows = self.database.query(
            "SELECT c.* FROM study_claims c JOIN study_items i ON i.id = c.item_id"
            " WHERE i.study_id = ? ORDER BY c.id",
            (study_id,),
        )
        return [_claim(r) for r in rows]

    def finish(self, item_id: int, rater: str) -> None:
        """Mark the rater's claim on the item done (their ratings of it are complete)."""
        claim = self._own_claim(item_id, rater)
        if not claim.done:
            self.database.execute(
                "UPDATE study_claims SET done_at = ? WHERE id = ? AND rater = ?",
                (now_iso(), claim.id, rater),
            )

    def skip(self, item_id: int, rater: str) -> None:
        """Record that the rater skipped the item, and free its slot for someone else."""
        with self.database.transaction():
            self.database.insert(
                "INSERT INTO study_skips (item_id, rater, created_at) VALUES (?, ?, ?)",
                (item_id, rater, now_iso()),
            )
            self.database.execute(
                "DELETE FROM study_claims WHERE item_id = ? AND rater = ? AND done_at IS NULL",
                (item_id, rater),
            )

    def skips(self, study_id: int) -> list[StudySkip]:
        rows = self.database.query(
            "SELECT s.* FROM study_skips s JOIN study_items i ON i.id = s.item_id"
            " WHERE i.study_id = ? ORDER BY s.id",
            (study_id,),
        )
        return [
            StudySkip(
                id=r["id"], item_id=r["item_id"], rater=r["rater"], created_at=r["created_at"]
            )
            for r in rows
        ]

    def remaining_for(self, study: StudyRow, rater: str) -> int:
        """How many items this rater could still be given (besides any they hold)."""
        row = self.database.query_one(
            "SELECT COUNT(*) AS n FROM (SELECT i.id FROM study_items i"
            " LEFT JOIN study_claims c ON c.item_id = i.id WHERE i.study_id = ?"
            " AND i.id NOT IN (SELECT item_id FROM study_claims WHERE rater = ?)"
            " AND i.id NOT IN (SELECT item_id FROM study_skips WHERE rater = ?)"
            " GROUP BY i.id HAVING COUNT(c.id) < ?) AS open_items",
            (study.id, rater, rater, study.per_item),
        )
        return int(row["n"]) if row else 0

    # -- ratings --------------------------------------------------------------------------

    def _study_of(self, item_id: int) -> int:
        row = self.database.query_one("SELECT study_id FROM study_items WHERE id = ?", (item_id,))
        if row is None:
            raise KurabeError(f"no study item {item_id}")
        return int(row["study_id"])

    def _own_claim(self, item_id: int, rater: str) -> Claim:
        row = self.database.query_one(
            "SELECT s.status FROM studies s JOIN study_items i ON i.study_id = s.id WHERE i.id = ?",
            (item_id,),
        )
        if row is not None and row["status"] == "closed":
            raise KurabeError("the study is closed: its ratings can no longer change")
        claim = self.claim_of(item_id, rater)
        if claim is None:
            raise KurabeError(f"{rater!r} holds no claim on this item (released or never given)")
        return claim

    def _reply_at(self, item_id: int, position: int) -> int:
        row = self.database.query_one(
            "SELECT r.id FROM replies r JOIN panes p ON p.id = r.pane_id"
            " JOIN study_items i ON i.turn_id = r.turn_id"
            " WHERE i.id = ? AND p.position = ? ORDER BY r.version DESC",
            (item_id, position),
        )
        if row is None:
            raise KurabeError(f"pane {position} has no reply in this item")
        return int(row["id"])

    def add_score(
        self,
        item_id: int,
        rater: str,
        position: int,
        *,
        score: int | None,
        tags: Sequence[str] = (),
        note: str = "",
    ) -> int:
        """The rater scores the reply of the pane at session ``position`` (appended)."""
        check_score(score)
        claim = self._own_claim(item_id, rater)
        return self.database.insert(
            "INSERT INTO study_scores (item_id, rater, reply_id, shown_position, score,"
            " tags_json, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item_id,
                rater,
                self._reply_at(item_id, position),
                claim.positions.index(position),
                score,
                to_json(list(tags)),
                note,
                now_iso(),
            ),
        )

    def add_pick(self, item_id: int, rater: str, *, position: int | None, outcome: str) -> int:
        """The rater's best pane (session ``position``), or a tie / all bad (appended)."""
        if outcome not in PICK_OUTCOMES:
            raise KurabeError(f"pick must be one of {', '.join(PICK_OUTCOMES)}")
        if (outcome == "pane") != (position is not None):
            raise KurabeError("a pane pick names its pane; a tie or all-bad pick names none")
        claim = self._own_claim(item_id, rater)
        return self.database.insert(
            "INSERT INTO study_picks (item_id, rater, winner_reply_id, winner_shown_position,"
            " outcome, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                item_id,
                rater,
                None if position is None else self._reply_at(item_id, position),
                None if position is None else claim.positions.index(position),
                outcome,
                now_iso(),
            ),
        )

    def add_verdict(
        self, item_id: int, rater: str, position: int, *, verdict: str, note: str = ""
    ) -> int:
        claim = self._own_claim(item_id, rater)
        return self.database.insert(
            "INSERT INTO study_verdicts (item_id, rater, reply_id, shown_position, verdict,"
            " note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                item_id,
                rater,
                self._reply_at(item_id, position),
                claim.positions.index(position),
                normalize_verdict(verdict),
                note,
                now_iso(),
            ),
        )

    def scores(self, study_id: int, rater: str | None = None) -> list[StudyScore]:
        rows = self.database.query(
            "SELECT s.* FROM study_scores s JOIN study_items i ON i.id = s.item_id"
            " WHERE i.study_id = ?" + _rater_filter("s", rater) + " ORDER BY s.id",
            (study_id,) if rater is None else (study_id, rater),
        )
        return [
            StudyScore(
                id=r["id"],
                item_id=r["item_id"],
                rater=r["rater"],
                reply_id=r["reply_id"],
                shown_position=r["shown_position"],
                score=r["score"],
                tags=tuple(from_json(r["tags_json"], [])),
                note=r["note"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    def picks(self, study_id: int, rater: str | None = None) -> list[StudyPick]:
        rows = self.database.query(
            "SELECT k.* FROM study_picks k JOIN study_items i ON i.id = k.item_id"
            " WHERE i.study_id = ?" + _rater_filter("k", rater) + " ORDER BY k.id",
            (study_id,) if rater is None else (study_id, rater),
        )
        return [
            StudyPick(
                id=r["id"],
                item_id=r["item_id"],
                rater=r["rater"],
                winner_reply_id=r["winner_reply_id"],
                winner_shown_position=r["winner_shown_position"],
                outcome=r["outcome"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    def verdicts(self, study_id: int, rater: str | None = None) -> list[StudyVerdict]:
        rows = self.database.query(
            "SELECT v.* FROM study_verdicts v JOIN study_items i ON i.id = v.item_id"
            " WHERE i.study_id = ?" + _rater_filter("v", rater) + " ORDER BY v.id",
            (study_id,) if rater is None else (study_id, rater),
        )
        return [
            StudyVerdict(
                id=r["id"],
                item_id=r["item_id"],
                rater=r["rater"],
                reply_id=r["reply_id"],
                shown_position=r["shown_position"],
                verdict=r["verdict"],
                note=r["note"],
                created_at=r["created_at"],
            )
            for r in rows
        ]


def _rater_filter(alias: str, rater: str | None) -> str:
    """The SQL that keeps one rater's rows (no untyped NULL parameter, which some engines
    refuse)."""
    return "" if rater is None else f" AND {alias}.rater = ?"


def _study_row(r: Row) -> StudyRow:
    return StudyRow(
        id=r["id"],
        name=r["name"],
        created_at=r["created_at"],
        per_item=r["per_item"],
        blind=bool(r["blind"]),
        reveal=r["reveal"],
        open_to_all=bool(r["open_to_all"]),
        claim_timeout_s=r["claim_timeout_s"],
        source=r["source"],
        status=r["status"],
        closed_at=r["closed_at"],
    )


def _claim(r: Row) -> Claim:
    return Claim(
        id=r["id"],
        item_id=r["item_id"],
        rater=r["rater"],
        slot=r["slot"],
        positions=tuple(int(p) for p in from_json(r["positions_json"], [])),
        claimed_at=r["claimed_at"],
        done_at=r["done_at"],
    )
