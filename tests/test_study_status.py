"""A study's status: progress, agreement worked out by hand, disagreements, position bias.

The agreement study: raters a, b, c × 10 items of two panes. Everyone scores pane 0's reply and
picks a best pane: items 1–5 all score 4 and pick pane 0, items 6–9 all score 2 and pick pane 1;
on item 10 a scores 4 and picks pane 0, b scores 2 and picks pane 1, and c gives nothing (a
missing rating). Krippendorff's alpha by hand, from the coincidence matrix: each unanimous item of
three raters adds 3·2/(3−1) = 3 to its value's diagonal (o₄₄ = 15, o₂₂ = 12), item 10 adds 1 to
each off-diagonal cell (o₂₄ = o₄₂ = 1); n₄ = 16, n₂ = 13, n = 29. With two values the ordinal
distance is one constant, so alpha is the nominal one: 1 − (n − 1)·(o₂₄ + o₄₂) / (2·n₂·n₄)
= 1 − 28·2 / (2·13·16) = 1 − 56/416 = 45/52 ≈ 0.8654, for the scores and for the picks alike.
The same pick was made by 27 of the 28 rater pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from kurabe.analysis.studies import status_lines, study_leaderboard, study_status
from kurabe.store.store import Store
from tests.study_support import stored_session


def agreement_study(store: Store) -> None:
    _, turns = stored_session(store, 10)
    store.studies.create("hand", turns, per_item=3, raters=["a", "b", "c"])
    study = store.studies.get("hand")
    items = store.studies.items(study.id)
    for item in items:
        for rater in ("a", "b", "c"):
            if item.idx == 10 and rater == "c":
                continue
            store.studies.claim_item(study, item.id, rater)
            if item.idx <= 5 or (item.idx == 10 and rater == "a"):
                score, best = 4, 0
            else:
                score, best = 2, 1
            store.studies.add_score(item.id, rater, 0, score=score)
            store.studies.add_pick(item.id, rater, position=best, outcome="pane")
            store.studies.finish(item.id, rater)


def test_agreement_worked_out_by_hand(tmp_path: Path) -> None:
    with Store(tmp_path / "k.sqlite3") as store:
        agreement_study(store)
        status = study_status(store, "hand", rounds=200)
    assert status.score_units == 10 and status.pick_units == 10
    assert status.score_alpha == pytest.approx(45 / 52)
    assert status.pick_alpha == pytest.approx(45 / 52)
    assert status.pick_pair_agreement == pytest.approx(27 / 28)
    assert status.score_alpha_ci is not None
    low, high = status.score_alpha_ci
    assert low <= 45 / 52 <= high
    assert [(r.rater, r.done) for r in status.raters] == [("a", 10), ("b", 10), ("c", 9)]
    assert [i.done for i in status.item_progress] == [3] * 9 + [2]
    assert status.disagreements[0].idx == 10
    assert status.disagreements[0].score_spread == 2
    assert len(status.disagreements) == 1
    text = "\n".join(status_lines(status))
    assert "Krippendorff's alpha (ordinal) 0.87" in text
    assert "Krippendorff's alpha (nominal) 0.87" in text
    assert "same pick 96% of rater pairs" in text
    assert "ratings done 29 / 30" in text
    assert "item 10 (session" in text


def planted_study(store: Store, *, pick_left: bool) -> None:
    _, turns = stored_session(store, 20)
    store.studies.create("bias", turns, per_item=2)
    study = store.studies.get("bias")
    for rater in ("a", "b"):
        while (claim := store.studies.claim_next(study, rater)) is not None:
            # planted: this rater always takes the pane shown on the left (or always pane 0)
            best = claim.positions[0] if pick_left else 0
            store.studies.add_pick(claim.item_id, rater, position=best, outcome="pane")
            store.studies.finish(claim.item_id, rater)


def test_position_bias_planted_on_the_left_shows(tmp_path: Path) -> None:
    with Store(tmp_path / "k.sqlite3") as store:
        planted_study(store, pick_left=True)
        status = study_status(store, "bias", rounds=50)
    bias = status.position
    assert (bias.left, bias.picks) == (40, 40)
    assert bias.chance == pytest.approx(0.5)
    assert bias.p_value is not None and bias.p_value < 1e-6
    text = "\n".join(status_lines(status))
    assert "left pane was picked 40 of 40 times" in text
    assert "the left pane is favoured" in text


def test_no_position_bias_when_picks_follow_the_model(tmp_path: Path) -> None:
    with Store(tmp_path / "k.sqlite3") as store:
        planted_study(store, pick_left=False)
        status = study_status(store, "bias", rounds=50)
        board = study_leaderboard(store, "bias", rounds=50)
    bias = status.position
    assert bias.picks == 40 and 8 < bias.left < 32
    assert "favoured" not in "\n".join(status_lines(status))
    assert [m.model for m in board.models] == ["gemma-270m", "gemma-270m-transcript"]
    assert board.battles == 40
    assert board.models[0].ci_low is not None
    first, second = (m.model for m in board.models)
    assert board.win_rate[first][second] == pytest.approx(board.models[0].win_share)
