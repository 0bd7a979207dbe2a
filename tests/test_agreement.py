"""Agreement figures against hand-computed cases, the pairing of human and judge ratings, and
where the figures show: ``kurabe agreement``, the leaderboard (with ``--kind``/``--rater``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kurabe.analysis.agreement import (
    MIN_FOR_INTERVAL,
    agreement_from_records,
    bootstrap_interval,
    build_agreement,
    ordinal_alpha,
    report_lines,
    spearman,
    weighted_kappa,
)
from kurabe.analysis.leaderboard import build_leaderboard
from kurabe.cli import main
from tests.judge_support import make_rated_store

# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store_engine")

NAN = math.nan


# -- the statistics against hand computation ----------------------------------------------------


def test_quadratic_weighted_kappa_by_hand() -> None:
    # human 1 2 3 4, judge 1 3 3 5; weights (i-j)^2/16 over the labels 1..5.
    # observed: (0 + 1 + 0 + 1)/16 / 4 = 1/32
    # expected: sum_i p(i) sum_j q(j) (i-j)^2 / 16 with p = 1/4 each on 1..4 and q = 1/4, 2/4,
    #   1/4 on 1, 3, 5: (6 + 3 + 2 + 3)/4 / 16 = 7/32, so kappa = 1 - (1/32)/(7/32) = 6/7
    assert weighted_kappa([1, 2, 3, 4], [1, 3, 3, 5]) == pytest.approx(6 / 7)
    assert weighted_kappa([2, 4], [2, 4]) == pytest.approx(1.0)
    assert weighted_kappa([3, 3, 3], [3, 3, 3]) is None  # no variation: undefined, not 1
    assert weighted_kappa([3], [3]) is None


def test_spearman_by_hand() -> None:
    # ranks 1 2 3 4 against 1 2.5 2.5 4: 4.5 / sqrt(5 * 4.5) = sqrt(0.9)
    assert spearman([1, 2, 3, 4], [1, 3, 3, 5]) == pytest.approx(math.sqrt(0.9))
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [4, 4, 4]) is None


def test_ordinal_alpha_by_hand() -> None:
    # two raters, units (1,1) (2,2) (3,4) (-,5): the last unit has one value and does not count.
    # n_1 = n_2 = 2, n_3 = n_4 = 1, n = 6; ordinal distance d(c,k) = (sum_{g=c..k} n_g -
    # (n_c + n_k)/2)^2: d34 = 1, d12 = 4, d13 = 12.25, d14 = 20.25, d23 = 2.25, d24 = 6.25.
    # observed: o34 + o43 = 2 (weight 1/(2-1)); sum n_c n_k d over c != k = 2 * 99 = 198.
    # alpha = 1 - (n - 1) * 2 / 198 = 94/99
    matrix = [[1, 2, 3, NAN], [1, 2, 4, 5]]
    assert ordinal_alpha(matrix) == pytest.approx(94 / 99)
    assert ordinal_alpha([[1, 2], [2, 1]]) < 0  # systematic disagreement
    assert ordinal_alpha([[3, 3], [3, 3]]) is None  # one value only: undefined
    assert ordinal_alpha([[1, 2, 3]]) is None  # one rater


def test_bootstrap_interval_needs_enough_items_and_brackets_the_estimate() -> None:
    scores_a = [1, 2, 3, 4, 5, 2, 3, 4]
    scores_b = [1, 3, 3, 4, 5, 2, 2, 5]
    interval = bootstrap_interval(
        len(scores_a),
        lambda idx: weighted_kappa([scores_a[i] for i in idx], [scores_b[i] for i in idx]),
        rounds=300,
    )
    assert interval is not None
    low, high = interval
    assert low <= weighted_kappa(scores_a, scores_b) <= high <= 1.0  # type: ignore[operator]
    few = MIN_FOR_INTERVAL - 1
    assert bootstrap_interval(few, lambda idx: 1.0) is None


# -- pairing the stored ratings -----------------------------------------------------------------


async def test_human_and_judge_scores_pair_up_per_reply_and_rater(tmp_path: Path) -> None:
    store, session_id = await make_rated_store(tmp_path)
    report = build_agreement(store, session=session_id, rounds=200)
    (scores,) = report.scores
    assert scores.judge == "judge:j"
    # pairs (person, judge): r1 hana 1/1 yuki 1/1, r2 hana 2/3 yuki 2/3, r3 hana 3/3 yuki 4/3,
    # r4 hana 4/5
    people, judged = [1, 1, 2, 2, 3, 4, 4], [1, 1, 3, 3, 3, 3, 5]
    assert (scores.pairs, scores.replies) == (7, 4)
    assert scores.kappa == pytest.approx(weighted_kappa(people, judged))
    assert scores.spearman == pytest.approx(spearman(people, judged))
    assert scores.exact == pytest.approx(3 / 7)
    assert scores.kappa_ci is not None and scores.kappa_ci[0] <= scores.kappa <= scores.kappa_ci[1]

    # picks: turn 0 hana "first" = judge "first"; yuki "second" vs judge "first";
    # turn 1 hana "tie" vs judge "second": 1 of 3 agree; without ties 1 of 2
    (picks,) = report.picks
    assert picks.pairs == 3
    assert picks.agreement == pytest.approx(1 / 3)
    assert (picks.pairs_without_ties, picks.agreement_without_ties) == (2, pytest.approx(0.5))
    assert picks.agreement_ci is None  # three pairs are too few to bootstrap

    # people among themselves: the hand case above (r4 has one score and does not count)
    assert report.humans.raters == ["hana", "yuki"]
    assert report.humans.units == 3
    assert report.humans.alpha == pytest.approx(94 / 99)

    text = "\n".join(report_lines(report))
    assert "human vs judge:j, scores (7 pairs on 4 replies)" in text
    assert "picks (3 pairs): agreement 33%" in text
    assert "Krippendorff's alpha (ordinal) 0.95" in text


async def test_a_failed_judgement_adds_no_pair(tmp_path: Path) -> None:
    store, session_id = await make_rated_store(tmp_path)
    record = store.load_record(session_id)
    run = record.judge_runs[0].id
    reply = record.latest_replies()[(0, 0)]
    store.judging.add_judgement(
        run,
        turn_id=reply.turn_id,
        reply_id=reply.id,
        status="unparseable",
        attempts=[{"raw": "よいと思います", "error": "not JSON"}],
    )
    report = agreement_from_records([store.load_record(session_id)], rounds=50)
    assert report.scores[0].pairs == 7


# -- where the figures show ----------------------------------------------------------------------


async def test_kurabe_agreement_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, session_id = await make_rated_store(tmp_path)
    store.close()
    db = str(tmp_path / "k.sqlite3")
    assert main(["agreement", "--session", "last", "--db", db, "--bootstrap", "100"]) == 0
    out = capsys.readouterr().out
    assert f"(session {session_id})" in out
    assert "weighted kappa" in out and "Spearman" in out and "alpha (ordinal)" in out
    assert main(["agreement", "--db", db, "--format", "json", "--bootstrap", "100"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scores"][0]["pairs"] == 7
    assert data["humans"]["alpha"] == pytest.approx(94 / 99)


async def test_the_leaderboard_shows_people_by_default_and_the_judge_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = await make_rated_store(tmp_path)
    people = {m.model: m for m in build_leaderboard(store, rounds=20).models}
    # hana 1 and 3, yuki 1 and 4 for alpha's replies; hana 2 and 4, yuki 2 for beta's
    assert people["secret-model-alpha"].mean_score == pytest.approx((1 + 3 + 1 + 4) / 4)
    assert people["secret-model-beta"].mean_score == pytest.approx((2 + 4 + 2) / 3)
    judged = {m.model: m for m in build_leaderboard(store, kind="judge", rounds=20).models}
    assert judged["secret-model-alpha"].mean_score == pytest.approx((1 + 3) / 2)
    assert judged["secret-model-beta"].mean_score == pytest.approx((3 + 5) / 2)
    assert judged["secret-model-alpha"].battles == 2  # the judge's two pairwise judgements
    assert judged["secret-model-alpha"].win_share == pytest.approx(0.5)
    assert judged["secret-model-alpha"].verdicts == people["secret-model-alpha"].verdicts
    one = {m.model: m for m in build_leaderboard(store, rater="judge:j", rounds=20).models}
    assert one["secret-model-beta"].mean_score == pytest.approx(4.0)
    both = {m.model: m for m in build_leaderboard(store, kind="all", rounds=20).models}
    assert both["secret-model-beta"].scores == 5

    store.close()
    db = str(tmp_path / "k.sqlite3")
    assert main(["leaderboard", "--db", db, "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "agreement" in out and "human vs judge:j, scores (7 pairs" in out
    assert main(["leaderboard", "--db", db, "--kind", "judge", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "judge"
    assert data["agreement"]["humans"]["units"] == 3
    means = {m["model"]: m["mean_score"] for m in data["models"]}
    assert means["secret-model-beta"] == pytest.approx(4.0)
