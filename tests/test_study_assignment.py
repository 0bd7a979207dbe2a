"""Study assignment: every item reaches exactly ``per_item`` different raters, even when eight
raters in eight processes ask for work at the same moment; claims of a rater who disappeared are
released after the timeout; nobody writes under another rater's claim.

The concurrency test takes a database path (:func:`claim_race`), so a PostgreSQL fixture can
run the same race by passing its URL."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from foundation.errors import KurabeError
from kurabe.store.store import Store
from tests.study_support import stored_session

RATERS = 8
PER_ITEM = 3
ITEMS = 48


def _rater_worker(db: str, study: str, rater: str, seconds: float, ready: Any) -> None:
    with Store(db) as store:
        row = store.studies.get(study)
        ready.wait()
        deadline = time.time() + seconds
        while time.time() < deadline:
            claim = store.studies.claim_next(row, rater)
            if claim is None:
                return
            positions = claim.positions
            store.studies.add_score(claim.item_id, rater, positions[0], score=4)
            store.studies.add_pick(claim.item_id, rater, position=positions[0], outcome="pane")
            store.studies.finish(claim.item_id, rater)


def claim_race(db: str, *, raters: int = RATERS, seconds: float = 30.0) -> None:
    """Run ``raters`` processes claiming and rating the study ``race`` on ``db`` at once until
    the work runs out or ``seconds`` pass."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(raters)
    workers = [
        context.Process(target=_rater_worker, args=(db, "race", f"rater{n}", seconds, ready))
        for n in range(raters)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds + 30)
        assert worker.exitcode == 0


def race_study(db: str) -> None:
    with Store(db) as store:
        turn_ids: list[int] = []
        for _ in range(ITEMS // 4):
            turn_ids += stored_session(store, 4)[1]
        store.studies.create("race", turn_ids, per_item=PER_ITEM)


def check_race(db: str) -> None:
    with Store(db) as store:
        study = store.studies.get("race")
        claims = store.studies.claims(study.id)
        per_item = Counter(c.item_id for c in claims)
        assert len(per_item) == ITEMS
        assert set(per_item.values()) == {PER_ITEM}
        assert all(c.done for c in claims)
        pairs = Counter((c.item_id, c.rater) for c in claims)
        assert max(pairs.values()) == 1
        scored = Counter((s.item_id, s.rater) for s in store.studies.scores(study.id))
        assert set(scored) == set(pairs)
        assert max(scored.values()) == 1
        per_item_scores = Counter(item for item, _ in scored)
        assert set(per_item_scores.values()) == {PER_ITEM}


def test_eight_raters_at_once_on_sqlite_wal(tmp_path: Path) -> None:
    db = str(tmp_path / "race.sqlite3")
    race_study(db)
    claim_race(db)
    check_race(db)


def test_eight_raters_at_once_on_postgresql(postgres_url: str) -> None:
    race_study(postgres_url)
    claim_race(postgres_url)
    check_race(postgres_url)


def test_no_rater_gets_an_item_twice_and_items_fill_evenly(tmp_path: Path) -> None:
    with Store(tmp_path / "k.sqlite3") as store:
        _, turns = stored_session(store, 4)
        store.studies.create("s", turns, per_item=2, raters=["a", "b", "c"])
        study = store.studies.get("s")
        seen: dict[str, list[int]] = {}
        for _ in range(4):
            for rater in ("a", "b", "c"):
                claim = store.studies.claim_next(study, rater)
                if claim is None:
                    continue
                seen.setdefault(rater, []).append(claim.item_id)
                store.studies.add_score(claim.item_id, rater, 0, score=3)
                store.studies.finish(claim.item_id, rater)
        counts = Counter(item for items in seen.values() for item in items)
        assert sorted(counts.values()) == [2, 2, 2, 2]
        assert all(len(set(items)) == len(items) for items in seen.values())
        assert sorted(len(items) for items in seen.values()) == [2, 3, 3]
        with pytest.raises(KurabeError, match="not one of"):
            store.studies.claim_next(study, "mallory")


def test_a_claim_is_kept_until_finished_and_released_after_the_timeout(tmp_path: Path) -> None:
    with Store(tmp_path / "k.sqlite3") as store:
        _, turns = stored_session(store, 1)
        store.studies.create("s", turns, per_item=1, claim_timeout_s=1)
        study = store.studies.get("s")
        first = store.studies.claim_next(study, "gone")
        assert first is not None
        assert store.studies.claim_next(study, "gone") == first
        assert store.studies.claim_next(study, "here") is None
        time.sleep(1.05)
        taken = store.studies.claim_next(study, "here")
        assert taken is not None and taken.item_id == first.item_id
        assert store.studies.claim_of(first.item_id, "gone") is None
        with pytest.raises(KurabeError, match="holds no claim"):
            store.studies.add_score(first.item_id, "gone", 0, score=5)


def test_nobody_rates_under_another_raters_claim(tmp_path: Path) -> None:
    with Store(tmp_path / "k.sqlite3") as store:
        _, turns = stored_session(store, 1)
        store.studies.create("s", turns, per_item=1)
        study = store.studies.get("s")
        claim = store.studies.claim_next(study, "a")
        assert claim is not None
        assert store.studies.claim_next(study, "b") is None
        with pytest.raises(KurabeError, match="holds no claim"):
            store.studies.add_pick(claim.item_id, "b", position=0, outcome="pane")
        store.studies.add_score(claim.item_id, "a", 1, score=2)
        store.studies.add_score(claim.item_id, "a", 1, score=5, note="amended")
        scores = store.studies.scores(study.id)
        assert [(s.rater, s.score) for s in scores] == [("a", 2), ("a", 5)]
        assert scores[0].shown_position == claim.positions.index(1)


def test_a_skip_is_recorded_and_frees_the_slot(tmp_path: Path) -> None:
    with Store(tmp_path / "k.sqlite3") as store:
        _, turns = stored_session(store, 1)
        store.studies.create("s", turns, per_item=1)
        study = store.studies.get("s")
        claim = store.studies.claim_next(study, "a")
        assert claim is not None
        store.studies.skip(claim.item_id, "a")
        assert store.studies.claim_next(study, "a") is None
        assert [s.rater for s in store.studies.skips(study.id)] == ["a"]
        other = store.studies.claim_next(study, "b")
        assert other is not None and other.item_id == claim.item_id
