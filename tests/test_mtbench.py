"""MT-Bench round trip: FastChat's model answers, reference answers and judgments come in
(``kurabe import``), a set of sessions' replies goes out as model-answer files (``kurabe export
--format mt-bench-answers``), and the MT-Bench table counts as FastChat's ``show_result.py``.

Every file here is hand-made in the real formats: three questions, two models, single judgments
with one -1, pairwise judgments in both model orders."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from foundation.errors import KurabeError
from kurabe.analysis.mtbench import (
    PairGame,
    SingleScore,
    build_table,
    pair_records,
    select_sessions,
    single_means,
)
from kurabe.cli import main
from kurabe.core.mt_bench import question_id_for, scenario_id_for
from kurabe.core.scores import MT_BENCH_SCALE, check_score
from kurabe.export.mtbench_answers import collect_answers, write_answer_files
from kurabe.importing.mtbench import read_model_answers
from kurabe.judge.rubric import load_rubric
from kurabe.judge.runner import REFERENCE_NOTE, pairwise_prompt, single_prompt
from kurabe.session.comparison import ComparisonSession
from kurabe.store.records import ReplyFigures
from kurabe.store.store import Store
from personas.loader import load_personas
from scenarios.loader import load_scenarios

QUESTIONS = [
    {
        "question_id": 81,
        "category": "writing",
        "turns": ["ハワイ旅行のブログを書いて。", "全ての文を「あ」で始めて書き直して。"],
    },
    {
        "question_id": 111,
        "category": "math",
        "turns": ["頂点 (0,0), (-1,1), (3,3) の三角形の面積は？", "その外接円の面積は？"],
    },
    {
        "question_id": 121,
        "category": "coding",
        "turns": ["ファイルの単語を数えるPythonを書いて。", "並列化して。"],
    },
]
REFERENCES = [
    {
        "question_id": 111,
        "answer_id": "r111",
        "model_id": "gpt-4",
        "choices": [{"index": 0, "turns": ["面積は 3 です。", "外接円の面積は 5π です。"]}],
        "tstamp": 1.0,
    },
    {
        "question_id": 121,
        "answer_id": "r121",
        "model_id": "gpt-4",
        "choices": [
            {"index": 0, "turns": ["collections.Counter を使う。", "multiprocessing.Pool を使う。"]}
        ],
        "tstamp": 1.0,
    },
]


def answers(model: str) -> list[dict[str, Any]]:
    return [
        {
            "question_id": q["question_id"],
            "answer_id": f"{model}-{q['question_id']}",
            "model_id": model,
            "choices": [
                {"index": 0, "turns": [f"{model} の答え {q['question_id']}-{t}" for t in (1, 2)]}
            ],
            "tstamp": 1700000000.5,
        }
        for q in QUESTIONS
    ]


# Single judgments: (question, model, turn, score); one -1.
SINGLE = [
    (81, "model-a", 1, 8), (81, "model-a", 2, 6),
    (111, "model-a", 1, 4), (111, "model-a", 2, -1),
    (121, "model-a", 1, 9), (121, "model-a", 2, 7),
    (81, "model-b", 1, 5), (81, "model-b", 2, 5),
    (111, "model-b", 1, 10), (111, "model-b", 2, 2),
    (121, "model-b", 1, 3), (121, "model-b", 2, 6),
]  # fmt: skip
# Pairwise judgments: (question, turn, model_1, model_2, g1_winner, g2_winner), both model orders.
PAIRS = [
    (81, 1, "model-a", "model-b", "model_1", "model_1"),  # a wins
    (81, 2, "model-a", "model-b", "model_1", "model_2"),  # the orders disagree: a tie
    (111, 1, "model-a", "model-b", "model_2", "model_2"),  # b wins
    (111, 2, "model-a", "model-b", "model_1", "model_1"),  # a wins
    (121, 1, "model-b", "model-a", "model_1", "model_1"),  # b wins (b is model_1 here)
    (121, 2, "model-a", "model-b", "error", "model_1"),  # an error: not counted
    (121, 2, "model-b", "model-a", "model_2", "model_2"),  # a wins (a is model_2 here)
]


def jsonl(path: Path, rows: Sequence[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(
            (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows
        ),
        encoding="utf-8",
    )
    return path


def single_lines() -> list[dict[str, Any]]:
    return [
        {
            "question_id": q,
            "model": model,
            "judge": ["gpt-4", "single-math-v1" if q in (111, 121) else "single-v1"],
            "user_prompt": "[Instruction] ...",
            "judgment": f"評価: [[{score}]]" if score > 0 else "評価できません",
            "score": score,
            "turn": turn,
            "tstamp": 1700000100.0,
        }
        for q, model, turn, score in SINGLE
    ]


def pair_lines() -> list[dict[str, Any]]:
    return [
        {
            "question_id": q,
            "model_1": m1,
            "model_2": m2,
            "g1_winner": g1,
            "g2_winner": g2,
            "judge": ["gpt-4", "pair-v2"],
            "g1_user_prompt": "...",
            "g1_judgment": "[[A]]",
            "g2_user_prompt": "...",
            "g2_judgment": "[[B]]",
            "turn": turn,
            "tstamp": 1700000200.0,
        }
        for q, turn, m1, m2, g1, g2 in PAIRS
    ]


@pytest.fixture
def bench(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "japanese_mt_bench"
    files = {
        "questions": jsonl(data / "question.jsonl", QUESTIONS),
        "reference": jsonl(data / "reference_answer" / "gpt-4.jsonl", REFERENCES),
        "a": jsonl(data / "model_answer" / "model-a.jsonl", answers("model-a")),
        "b": jsonl(data / "model_answer" / "model-b.jsonl", answers("model-b")),
        "single": jsonl(data / "model_judgment" / "gpt-4_single.jsonl", single_lines()),
        "pair": jsonl(data / "model_judgment" / "gpt-4_pair.jsonl", pair_lines()),
        "db": tmp_path / "kurabe.sqlite3",
    }
    assert (
        kurabe(
            "import", files["questions"], "--format", "mt-bench", "--reference", files["reference"]
        )
        == 0
    )
    return files


def kurabe(*argv: object) -> int:
    return main([str(a) for a in argv])


def import_all(files: dict[str, Path], *extra: str) -> None:
    db = files["db"]
    assert kurabe("import", files["a"], "--format", "mt-bench-answers", "--db", db, *extra) == 0
    assert kurabe("import", files["b"], "--format", "mt-bench-answers", "--db", db) == 0
    for name in ("single", "pair"):
        assert kurabe("import", files[name], "--format", "mt-bench-judgments", "--db", db) == 0


def test_scores_keep_their_own_scale() -> None:
    check_score(10, MT_BENCH_SCALE)
    with pytest.raises(KurabeError, match="1 to 5"):
        check_score(10)
    with pytest.raises(KurabeError, match="1 to 10"):
        check_score(11, MT_BENCH_SCALE)
    assert scenario_id_for(81) == "mtbench-81" and question_id_for("mtbench-81") == 81
    assert question_id_for("seed-gpt4") is None


def test_two_answer_files_rate_side_by_side_blind(bench: dict[str, Path]) -> None:
    import_all(bench, "--blind")
    with Store(bench["db"]) as store:
        ids = store.sessions.ids()
        assert len(ids) == 3  # one session per question, both models in it
        record = store.load_record(store.sessions.ids(scenario="mtbench-111")[0])
        assert record.session.kind == "imported" and record.session.hidden
        assert [(p.label, p.profile_name, p.backend) for p in record.panes] == [
            ("A", "model-a", "imported"),
            ("B", "model-b", "imported"),
        ]
        assert [s.models for s in store.sessions.summaries()] == [("A", "B")] * 3
        reply = record.latest_replies()[(1, 1)]
        assert reply.text == "model-b の答え 111-2" and reply.finish_reason == "imported"
        # No speed figures and no sampling were invented: the pane says they were not recorded.
        assert reply.tokens_per_s is None and reply.ttft_s is None and reply.total_s is None
        assert reply.check_report is not None and reply.check_report.japanese_share is not None
        assert "not recorded" in record.panes[1].settings["sampling"]
        assert "no sampling" in record.panes[1].header
        assert record.turns[1].text == QUESTIONS[1]["turns"][1]
        # It reopens like any session, to be rated; its panes cannot generate, and say so.
        session = ComparisonSession.resume(store, record.session.id, profiles={})
        assert [p.profile.name for p in session.panes] == ["model-a", "model-b"]
        assert all("imported" in (p.backend.unusable_reason() or "") for p in session.panes)
        assert session.blind


def test_imported_answers_sit_beside_a_runs_replies(bench: dict[str, Path]) -> None:
    scenario = load_scenarios().get("mtbench-81")
    with Store(bench["db"]) as store:
        run_session = own_session(store, scenario.id, "gemma-270m", ["私の答え1", "私の答え2"])
    only_81 = jsonl(bench["a"].parent / "only-81.jsonl", answers("model-a")[:1])
    assert (
        kurabe(
            "import",
            only_81,
            "--format",
            "mt-bench-answers",
            "--db",
            bench["db"],
            "--beside",
            "latest",
        )
        == 0
    )
    with Store(bench["db"]) as store:
        assert store.sessions.ids() == [run_session]
        record = store.load_record(run_session)
        assert [p.profile_name for p in record.panes] == ["gemma-270m", "model-a"]
        latest = record.latest_replies()
        assert latest[(1, 0)].text == "model-a の答え 81-1" and latest[(0, 0)].text == "私の答え1"


def own_session(store: Store, scenario_id: str, model: str, texts: list[str]) -> int:
    """A session as a run leaves it: one pane, every turn answered."""
    scenario = load_scenarios().get(scenario_id)
    persona = load_personas().get(scenario.persona)
    session_id = store.sessions.create(persona, scenario, kind="replay")
    pane_id = store.sessions.add_pane(
        session_id, 0, "A", profile_name=model, backend="llama_cpp", model=model, settings={}
    )
    for index, text in enumerate(texts):
        turn_id = store.replies.add_turn(session_id, index, scenario.turns[index].text, index)
        reply_id, _ = store.replies.start_reply(turn_id, pane_id)
        store.replies.finish_reply(
            reply_id, text=text, finish_reason="stop", figures=ReplyFigures(chars=len(text))
        )
    return session_id


def test_the_mt_bench_table_matches_hand_computed_means(
    bench: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import_all(bench)
    with Store(bench["db"]) as store:
        failed = [j for j in store.imported_judgements.judgements() if not j.ok]
        assert [(j.mode, j.score, j.judge) for j in failed] == [
            ("single", None, "judge:gpt-4"),  # the -1: kept, without a score
            ("pairwise", None, "judge:gpt-4"),  # the "error" winner
        ]
        table = build_table(store, select_sessions(store, tag="mt-bench"))
    means = {m.model: m for m in table.singles[("judge:gpt-4", MT_BENCH_SCALE)]}
    # model-a: turn 1 (8+4+9)/3, turn 2 (6+7)/2 (the -1 left out), overall 34/5 over the rows,
    # not the mean of the two turn means (6.75), as show_result.py groups by model alone.
    assert means["model-a"].turn_means == {1: 7.0, 2: 6.5}
    assert means["model-a"].overall == pytest.approx(6.8)
    assert (means["model-a"].judged, means["model-a"].failed) == (5, 1)
    assert means["model-b"].turn_means == {1: 6.0, 2: pytest.approx(13 / 3)}
    assert means["model-b"].overall == pytest.approx(31 / 6)
    records = {r.model: r for r in table.pairs["judge:gpt-4"]}
    assert (records["model-a"].win, records["model-a"].loss, records["model-a"].tie) == (3, 2, 1)
    assert (records["model-b"].win, records["model-b"].loss, records["model-b"].tie) == (2, 3, 1)
    assert records["model-a"].win_rate_adjusted == pytest.approx(3.5 / 6)
    assert records["model-b"].loss_rate == pytest.approx(3 / 6)

    capsys.readouterr()
    assert kurabe("leaderboard", "--mt-bench", "--db", bench["db"]) == 0
    shown = capsys.readouterr().out
    assert "judge:gpt-4 (MT-Bench judgments, scale 1–10)" in shown
    row = next(line for line in shown.splitlines() if line.startswith("model-a "))
    assert row.split() == ["model-a", "7.00", "6.50", "6.80", "5", "1"]
    # The 1-5 tables say their scale, and that the 1-10 judgments are elsewhere.
    assert kurabe("leaderboard", "--db", bench["db"], "--bootstrap", "10") == 0
    assert "kurabe's scale 1–5" in capsys.readouterr().out
    assert kurabe("agreement", "--db", bench["db"], "--bootstrap", "10") == 0
    assert "kurabe's scale 1–5" in capsys.readouterr().out
    # The same judgments again are not counted twice.
    assert (
        kurabe("import", bench["single"], "--format", "mt-bench-judgments", "--db", bench["db"])
        == 0
    )
    with Store(bench["db"]) as store:
        assert len(store.imported_judgements.judgements()) == len(SINGLE) + len(PAIRS)


def test_kurabes_own_judge_shows_beside_on_its_own_scale(bench: dict[str, Path]) -> None:
    with Store(bench["db"]) as store:
        session_id = own_session(store, "mtbench-81", "gemma-270m", ["一", "二"])
        replies = store.load_record(session_id).replies
        run = store.judging.add_run(
            session_id,
            judge="judge:mini",
            profile_name="mini",
            mode="single",
            rubric_name="persona_ja",
            rubric_hash="h",
            rubric_text="",
            settings={},
        )
        for reply, score in zip(replies, (4, 2), strict=True):
            store.judging.add_judgement(
                run, turn_id=reply.turn_id, reply_id=reply.id, status="ok", score=score
            )
        store.judging.add_judgement(  # judged again: the newest counts
            run, turn_id=replies[1].turn_id, reply_id=replies[1].id, status="ok", score=3
        )
        table = build_table(store, [session_id])
    [means] = table.singles[("judge:mini", "1-5")]
    assert means.turn_means == {1: 4.0, 2: 3.0} and means.overall == 3.5


def test_fastchat_counting_rules_directly() -> None:
    scores = [SingleScore("j", MT_BENCH_SCALE, "m", 1, s) for s in (10, None, 4)]
    [only] = single_means(scores)
    assert only.overall == 7.0 and only.failed == 1
    games = [
        PairGame("j", "x", "y", "model_1", "model_1", 1),
        PairGame("j", "y", "x", "model_1", "model_1", 1),  # the other order: y wins
        PairGame("j", "x", "y", "tie", "model_1", 1),  # a tie in g1: a tie
        PairGame("j", "x", "y", "model_2", "error", 1),  # an error: dropped
    ]
    counts = {r.model: (r.win, r.loss, r.tie) for r in pair_records(games)}
    assert counts == {"x": (1, 1, 1), "y": (1, 1, 1)}


def test_answers_for_questions_never_imported_name_the_ids_and_import_nothing(
    bench: dict[str, Path],
) -> None:
    rows = answers("model-c")
    rows[1]["question_id"] = 999
    rows.append({**rows[0], "question_id": "abc"})
    bad = jsonl(bench["a"].parent / "model-c.jsonl", rows)
    with Store(bench["db"]):
        pass
    with pytest.raises(KurabeError, match=r"not among the imported questions: 999, abc"):
        import_answers_direct(bench, bad)
    assert kurabe("import", bad, "--format", "mt-bench-answers", "--db", bench["db"]) == 2
    with Store(bench["db"]) as store:
        assert store.sessions.ids() == []


def import_answers_direct(bench: dict[str, Path], path: Path) -> None:
    from kurabe.importing.mtbench import import_answers

    with Store(bench["db"]) as store:
        import_answers(store, path, dict(load_scenarios().items), dict(load_personas().items))


def test_a_second_file_that_fails_leaves_the_first_import_as_it_was(bench: dict[str, Path]) -> None:
    assert kurabe("import", bench["a"], "--format", "mt-bench-answers", "--db", bench["db"]) == 0
    # model-a again: the first question would be added, the rest refused; nothing is.
    with pytest.raises(KurabeError, match="already has a pane model-a"):
        import_answers_direct(bench, bench["a"])
    with Store(bench["db"]) as store:
        assert all(len(store.sessions.panes(i)) == 1 for i in store.sessions.ids())


def test_a_malformed_line_names_the_file_and_line(
    bench: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[Any] = answers("model-c")
    rows[1] = '{"question_id": 111, "model_id": "model-c", "choices": [{"turns": ["x"]}'
    bad = jsonl(bench["a"].parent / "broken.jsonl", rows)
    assert kurabe("import", bad, "--format", "mt-bench-answers", "--db", bench["db"]) == 2
    assert f"{bad}:2: not valid JSON" in capsys.readouterr().err
    rows[1] = {"question_id": 111, "model_id": "model-c", "choices": [{"text": "x"}]}
    bad = jsonl(bench["a"].parent / "broken.jsonl", rows)
    assert kurabe("import", bad, "--format", "mt-bench-answers", "--db", bench["db"]) == 2
    assert f"{bad}:2: choices[0].turns:" in capsys.readouterr().err
    judgments = single_lines()
    judgments[3]["score"] = 7.5
    bad = jsonl(bench["single"].parent / "bad_single.jsonl", judgments)
    assert kurabe("import", bad, "--format", "mt-bench-judgments", "--db", bench["db"]) == 2
    assert f"{bad}:4: score: 7.5 is not an integer 1-10" in capsys.readouterr().err
    with Store(bench["db"]) as store:
        assert store.sessions.ids() == [] and store.imported_judgements.judgements() == []


def test_judgments_of_models_never_imported_are_refused_whole(
    bench: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert kurabe("import", bench["a"], "--format", "mt-bench-answers", "--db", bench["db"]) == 0
    assert (
        kurabe("import", bench["single"], "--format", "mt-bench-judgments", "--db", bench["db"])
        == 2
    )
    assert "question 81 turn 1 model-b (line 7)" in capsys.readouterr().err
    with Store(bench["db"]) as store:
        assert store.imported_judgements.judgements() == []


def test_round_trip_export_reads_back_as_an_answer_file(
    bench: dict[str, Path], tmp_path: Path
) -> None:
    assert kurabe("import", bench["a"], "--format", "mt-bench-answers", "--db", bench["db"]) == 0
    with Store(bench["db"]) as store:
        own = [
            own_session(store, "mtbench-81", "openai:gpt-4.1", ["一つ目\n改行も", '二つ目 "引用"']),
            own_session(store, "mtbench-111", "openai:gpt-4.1", ["3", "5π"]),
            own_session(store, "seed-gpt4", "openai:gpt-4.1", ["x"]),
        ]
        export = collect_answers(store, own)
        assert export.not_mt_bench == [own[2]]
        written = write_answer_files(tmp_path / "model_answer", export)
    assert [p.name for p in written] == ["openai_gpt-4.1.jsonl"]
    back = read_model_answers(written[0])
    assert [(a.question_id, a.model_id, a.turns) for a in back] == [
        ("81", "openai_gpt-4.1", ("一つ目\n改行も", '二つ目 "引用"')),
        ("111", "openai_gpt-4.1", ("3", "5π")),
    ]
    line = json.loads(written[0].read_text("utf-8").splitlines()[0])
    assert line["question_id"] == 81 and isinstance(line["tstamp"], float) and line["answer_id"]

    # The command line: every mt-bench session, one file per model; imported answers go out as
    # they came in.
    out = tmp_path / "all"
    assert (
        kurabe(
            "export",
            "--format",
            "mt-bench-answers",
            "--tag",
            "mt-bench",
            "--db",
            bench["db"],
            "--out",
            out,
        )
        == 0
    )
    again = read_model_answers(out / "model-a.jsonl")
    original = read_model_answers(bench["a"])
    assert [(a.question_id, a.turns, a.answer_id, a.tstamp) for a in again] == [
        (a.question_id, a.turns, a.answer_id, a.tstamp) for a in original
    ]
    assert (
        kurabe(
            "export",
            f"{own[0]},{own[1]}",
            "--format",
            "mt-bench-answers",
            "--db",
            bench["db"],
            "--out",
            tmp_path / "two",
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["openai_gpt-4.1.jsonl"]


def test_the_judge_prompt_of_a_math_question_holds_its_reference_answer(
    bench: dict[str, Path],
) -> None:
    scenarios = load_scenarios()
    assert scenarios.get("mtbench-111").turns[1].expect == "外接円の面積は 5π です。"
    assert scenarios.get("mtbench-81").turns[0].expect is None
    import_all(bench)
    rubric = load_rubric()
    with Store(bench["db"]) as store:
        math = store.load_record(store.sessions.ids(scenario="mtbench-111")[0])
        writing = store.load_record(store.sessions.ids(scenario="mtbench-81")[0])
    turn = math.turns[0]
    reply_a, reply_b = math.latest_replies()[(0, 0)], math.latest_replies()[(1, 0)]
    prompt = single_prompt(rubric, math, turn, reply_a)
    assert "[参考回答の開始]\n面積は 3 です。\n[参考回答の終了]" in prompt
    assert REFERENCE_NOTE.split("。")[0] in prompt
    assert "面積は 3 です。" in pairwise_prompt(rubric, math, turn, reply_a, reply_b)
    plain = single_prompt(rubric, writing, writing.turns[0], writing.latest_replies()[(0, 0)])
    assert "[参考回答の開始]" not in plain


def test_reference_answers_for_unknown_questions_are_refused(tmp_path: Path) -> None:
    questions = jsonl(tmp_path / "question.jsonl", QUESTIONS)
    refs = jsonl(tmp_path / "gpt-4.jsonl", [*REFERENCES, {**REFERENCES[0], "question_id": 500}])
    assert kurabe("import", questions, "--format", "mt-bench", "--reference", refs) == 2
    assert "mtbench-81" not in load_scenarios().items
