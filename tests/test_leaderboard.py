"""Bradley–Terry against hand-computed cases, bootstrap intervals, and the leaderboard command."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from kurabe.analysis.leaderboard import (
    bootstrap_intervals,
    bradley_terry,
    build_leaderboard,
    fit_ratings,
    mle_exists,
    to_rating,
)
from kurabe.cli import main
from kurabe.session.comparison import ComparisonSession
from kurabe.session.events import PaneFinished, SessionEvent
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario, Turn
from tests.fake_backends import FakeBackend, Script, fake_factory, fake_profile

# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store_engine")

PERSONA = Persona(
    id="anime-fan",
    title="大のアニメファン",
    system="あなたは大のアニメファンで、友達と会話しています。 返信は短くカジュアルなものにする必要があります。",
    char_name="オタク",
    register="casual",
    max_reply_chars=40,
)
SCENARIO = Scenario(
    id="seed-elyza",
    title="シード: ELYZA",
    persona="anime-fan",
    turns=(
        Turn("ねえ、アニメ好きなの？"),
        Turn("トトロはどうでしょうか？ それを見たことがありますか？"),
    ),
)


def test_two_models_three_wins_to_one_is_a_strength_ratio_of_three() -> None:
    matches = [("gpt-4", "elyza", 1.0)] * 3 + [("gpt-4", "elyza", 0.0)]
    strength = bradley_terry(matches)
    assert strength["gpt-4"] / strength["elyza"] == pytest.approx(3.0, rel=1e-9)
    assert strength["gpt-4"] * strength["elyza"] == pytest.approx(1.0)  # geometric mean 1
    ratings = fit_ratings(matches)
    assert ratings["gpt-4"] == pytest.approx(1000 + 200 * math.log10(3))
    assert ratings["elyza"] == pytest.approx(1000 - 200 * math.log10(3))
    assert to_rating(1.0) == 1000


def test_ties_count_half() -> None:
    # one win and two ties for A: 2 points to 1, so A is twice as strong
    matches = [("A", "B", 1.0), ("A", "B", 0.5), ("B", "A", 0.5)]
    strength = bradley_terry(matches)
    assert strength["A"] / strength["B"] == pytest.approx(2.0)


def test_chain_of_three_by_hand() -> None:
    # A beats B 2:1, B beats C 2:1, A and C never meet: strengths 4 : 2 : 1, i.e. 2, 1, 0.5
    matches = [("A", "B", 1.0), ("A", "B", 1.0), ("A", "B", 0.0)]
    matches += [("B", "C", 1.0), ("C", "B", 0.0), ("B", "C", 0.0)]
    strength = bradley_terry(matches)
    assert strength["A"] == pytest.approx(2.0)
    assert strength["B"] == pytest.approx(1.0)
    assert strength["C"] == pytest.approx(0.5)


def test_a_cycle_is_a_draw_and_the_score_equations_hold() -> None:
    cycle = [("A", "B", 1.0), ("B", "C", 1.0), ("C", "A", 1.0)] * 2
    assert all(v == pytest.approx(1.0) for v in bradley_terry(cycle).values())
    uneven = [("A", "B", 1.0), ("A", "B", 1.0), ("B", "A", 1.0), ("A", "C", 1.0)]
    uneven += [("C", "A", 1.0), ("B", "C", 0.5), ("C", "B", 1.0), ("C", "A", 1.0)]
    s = bradley_terry(uneven)
    # at the MLE each model's expected wins equal its actual wins
    actual = {"A": 3.0, "B": 1.5, "C": 3.5}
    for model in "ABC":
        expected = 0.0
        for a, b, _ in uneven:
            if model in (a, b):
                other = b if model == a else a
                expected += s[model] / (s[model] + s[other])
        assert expected == pytest.approx(actual[model], rel=1e-7)


def test_unbeaten_model_gets_a_finite_top_rating() -> None:
    matches = [("claude", "weblab", 1.0)] * 3
    assert not mle_exists(matches)
    assert mle_exists([*matches, ("weblab", "claude", 0.5)])
    ratings = fit_ratings(matches)
    assert math.isfinite(ratings["claude"]) and ratings["claude"] > ratings["weblab"]


def test_bootstrap_is_repeatable_and_brackets_the_estimate() -> None:
    matches = [("A", "B", 1.0)] * 14 + [("A", "B", 0.0)] * 6 + [("B", "C", 1.0)] * 12
    matches += [("B", "C", 0.0)] * 8 + [("A", "C", 0.5)] * 4
    first = bootstrap_intervals(matches, rounds=100, seed=7)
    assert first == bootstrap_intervals(matches, rounds=100, seed=7)
    point = fit_ratings(matches)
    for model, (low, high) in first.items():
        assert low <= point[model] <= high
    assert first["A"][1] - first["A"][0] > 0


async def _session(
    store: Store, replies: dict[str, list[str]], picks: list[str | None], rater: str
) -> tuple[ComparisonSession, dict[int, list[int]]]:
    backends = {
        name: FakeBackend(name, [Script.text(t, delay_s=0.002) for t in texts])
        for name, texts in replies.items()
    }
    session = ComparisonSession.create(
        store,
        PERSONA,
        [fake_profile(n) for n in replies],
        scenario=SCENARIO,
        rater=rater,
        backend_factory=fake_factory(backends),
    )
    by_pane: dict[int, list[int]] = {p.index: [] for p in session.panes}

    def keep(event: SessionEvent) -> None:
        if isinstance(event, PaneFinished):
            by_pane[event.pane].append(event.reply_id)

    session.subscribe(keep)
    for turn, pick in enumerate(picks):
        await session.send_scenario_turn()
        if pick is not None:
            winner = next((p.index for p in session.panes if p.profile.name == pick), pick)
            session.pick_best(turn, winner)  # type: ignore[arg-type]
    return session, by_pane


async def test_leaderboard_from_stored_sessions(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.sqlite3")
    replies = {
        "gpt-4": ["うん、大好きだよ！", "トトロ最高だよね！"],
        "weblab": ["### 応答:そうだよ!", "その映画には多くの楽しい小ネタが含まれています。"],
    }
    one, ids = await _session(store, replies, ["gpt-4", "gpt-4"], "hana")
    one.rate_reply(ids[0][0], score=5)
    one.rate_reply(ids[0][1], score=3)
    one.rate_reply(ids[0][1], score=4)  # re-rated: the newest counts
    one.rate_reply(ids[1][0], score=1, tags=["template-leak"])
    one.set_verdict(0, "great")
    one.set_verdict(1, "ok")
    one.set_verdict(1, "subpar")
    two, ids2 = await _session(store, replies, ["weblab", "tie"], "ken")
    two.rate_reply(ids2[1][1], score=2)
    two.set_verdict(1, "subpar")

    board = build_leaderboard(store, rounds=50)
    assert [m.model for m in board.models] == ["gpt-4", "weblab"]
    gpt, weblab = board.models
    assert gpt.rated_replies == 2 and gpt.mean_score == pytest.approx(4.5)
    assert weblab.rated_replies == 2 and weblab.mean_score == pytest.approx(1.5)
    assert gpt.verdicts["great"] == 1 and weblab.verdicts["subpar"] == 2
    assert weblab.verdicts["ok"] == 0
    # battles: gpt won 2, weblab won 1, one tie → 2.5 : 1.5
    assert gpt.battles == weblab.battles == 4 and board.battles == 4
    assert gpt.win_share == pytest.approx(2.5 / 4)
    assert board.win_rate["gpt-4"]["weblab"] == pytest.approx(0.625)
    ratio = 10 ** ((gpt.rating - weblab.rating) / 400)  # type: ignore[operator]
    assert ratio == pytest.approx(2.5 / 1.5)
    assert gpt.ci_low is not None and gpt.ci_low <= gpt.rating <= gpt.ci_high  # type: ignore[operator]
    # the automatic checks, averaged per model
    assert gpt.replies == 4 and gpt.japanese_share == pytest.approx(1.0)
    assert weblab.flag_counts.get("template-leak") == 2
    assert weblab.flagged_share is not None and weblab.flagged_share >= 0.5
    assert gpt.chars_per_s is not None and gpt.chars_per_s > 0

    only_ken = build_leaderboard(store, rater="ken", rounds=20)
    ken = {m.model: m for m in only_ken.models}
    assert only_ken.battles == 2 and ken["weblab"].mean_score == 2.0
    assert ken["gpt-4"].rated_replies == 0 and ken["gpt-4"].mean_score is None
    assert build_leaderboard(store, scenario="nope").models == []


async def test_leaderboard_command_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "k.sqlite3"
    store = Store(db)
    replies = {"gpt-4": ["うん！", "トトロ大好き"], "=elyza": ["おうよ！", "まだ見たことない"]}
    session, ids = await _session(store, replies, ["gpt-4", "=elyza"], "hana")
    session.rate_reply(ids[1][1], score=3)
    store.close()

    assert main(["leaderboard", "--db", str(db), "--format", "json", "--bootstrap", "10"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {m["model"] for m in data["models"]} == {"gpt-4", "=elyza"}
    assert data["battles"] == 2
    assert data["win_rate"]["gpt-4"]["=elyza"] == 0.5

    assert main(["leaderboard", "--db", str(db), "--format", "csv", "--rater", "hana"]) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out.lstrip("\ufeff"))))
    # A model named like a formula stays text in a spreadsheet (kurabe/core/csvsafe.py).
    elyza = next(r for r in rows if r["model"] == "'=elyza")
    assert elyza["mean_score"] == "3.0" and elyza["vs gpt-4"] == "0.5"
    assert "vs =elyza" in rows[0]  # not at the start of its cell: no formula

    assert main(["leaderboard", "--db", str(db), "--scenario", "seed-elyza"]) == 0
    text = capsys.readouterr().out
    assert "1 sessions, 2 battles" in text and "scenario seed-elyza" in text
    assert "win rate (row vs column)" in text
