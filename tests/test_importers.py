"""``kurabe import``: Japanese MT-Bench and ELYZA-tasks-100 files become scenarios that load and
replay; bad files get one-line ``file:line: field: reason`` errors and nothing is written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foundation.errors import ConfigError, KurabeError
from kurabe.cli import main
from kurabe.importing.questions import (
    ELYZA_TAG,
    elyza_expect,
    import_file,
    read_scenarios,
    scenario_toml,
)
from kurabe.store.store import Store
from personas.loader import load_personas
from scenarios import Scenario, Turn
from scenarios.loader import load_scenarios, parse_scenario_text, user_scenarios_dir

MT_BENCH = [
    {
        "question_id": 81,
        "category": "writing",
        "turns": [
            "最近のハワイ旅行について、文化体験や必見の観光地を紹介する魅力的な旅行ブログ記事を書いてください。",
            "前の回答を書き直してください。ただし、全ての文を「あ」で始めてください。",
        ],
    },
    {
        "question_id": 111,
        "category": "math",
        "turns": [
            "三角形の頂点が (0, 0), (-1, 1), (3, 3) にあります。この三角形の面積は？",
            "その三角形を外接する円の面積は？",
        ],
        "reference": ["面積は 3", "5π"],
    },
    {
        "question_id": "130",
        "category": "coding",
        "turns": ['Pythonで "C:\\temp" を表示するには？\n\tタブと改行も含めて。'],
        "reference": "print('C:\\\\temp')",
    },
]

ELYZA_TASKS = [
    {
        "input": "仕事の熱意を取り戻すためのアイデアを5つ挙げてください。",
        "output": "1. 自分の仕事に対する興味を再発見するために、新しい技能や知識を学ぶこと。\n"
        "2. カンファレンスやセミナーなどで、業界の最新情報を得ること。",
        "eval_aspect": "- 熱意を取り戻すのではなく、仕事の効率化の文脈になっていたら1点減点\n"
        "- 出したアイデアが5つより多い、少ない場合は1点減点",
    },
    {
        "input": "以下の文章を要約してください。\n\n吾輩は猫である。名前はまだ無い。",
        "output": "猫が自己紹介している。",
        "eval_aspect": "",
    },
    {
        "input": 'クマが海辺に行って、アザラシと友達になる短編を書いて。"引用符"も使って。',
        "output": "クマは森を出て……",
        "eval_aspect": "- クマが海辺に行く\n- クマとアザラシが友達になる",
    },
]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def jsonl(records: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def elyza_csv(records: list[dict[str, str]], newline: str = "\n") -> str:
    def cell(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    rows = ["input,output,eval_aspect"]
    rows += [",".join(cell(r[key]) for key in ("input", "output", "eval_aspect")) for r in records]
    return newline.join(rows) + newline


def kurabe_import(*argv: str) -> int:
    return main(["import", *argv])


# -- MT-Bench -----------------------------------------------------------------------------------


def test_mt_bench_file_becomes_loadable_scenarios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path / "question.jsonl", jsonl(MT_BENCH))
    assert kurabe_import(str(source), "--format", "mt-bench") == 0
    out = capsys.readouterr().out
    folder = user_scenarios_dir()
    assert sorted(p.name for p in folder.iterdir()) == [
        "mtbench-111.toml",
        "mtbench-130.toml",
        "mtbench-81.toml",
    ]
    assert f"wrote {folder / 'mtbench-81.toml'}  mtbench-81  2 turns" in out
    assert "kurabe replay --tag mt-bench" in out

    catalog = load_scenarios()
    assert catalog.problems == []
    writing = catalog.get("mtbench-81")
    assert writing.persona == "assistant"
    assert writing.title == "MT-Bench 81: 作文（writing）"
    assert writing.tags == ("mt-bench", "writing")
    assert [t.text for t in writing.turns] == MT_BENCH[0]["turns"]
    assert all(t.expect is None for t in writing.turns)
    assert "question.jsonl, line 1" in writing.notes

    math = catalog.get("mtbench-111")
    assert [t.expect for t in math.turns] == ["参考解答:\n面積は 3", "参考解答:\n5π"]
    coding = catalog.get("mtbench-130")
    # backslashes, quotes, tabs and line breaks come back exactly
    assert coding.turns[0].text == 'Pythonで "C:\\temp" を表示するには？\n\tタブと改行も含めて。'
    assert coding.turns[0].expect == "参考解答:\nprint('C:\\\\temp')"


def test_persona_option_and_an_unknown_persona(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path / "question.jsonl", jsonl(MT_BENCH[:1]))
    assert kurabe_import(str(source), "--format", "mt-bench", "--persona", "anime-fn") == 2
    assert "unknown persona 'anime-fn' (did you mean 'anime-fan'?)" in capsys.readouterr().err
    assert not user_scenarios_dir().exists()
    assert kurabe_import(str(source), "--format", "mt-bench", "--persona", "anime-fan") == 0
    assert load_scenarios().get("mtbench-81").persona == "anime-fan"


# -- ELYZA-tasks-100 ----------------------------------------------------------------------------


def test_elyza_jsonl_and_csv_give_the_same_single_turn_scenarios(tmp_path: Path) -> None:
    known = load_personas().ids()
    from_jsonl = read_scenarios(
        write(tmp_path / "test.jsonl", jsonl(ELYZA_TASKS)), "elyza-tasks", known_personas=known
    )
    from_csv = read_scenarios(
        write(tmp_path / "test.csv", elyza_csv(ELYZA_TASKS)), "elyza-tasks", known_personas=known
    )
    # CSV with a byte order mark and CRLF line ends, as spreadsheets save it
    from_excel = read_scenarios(
        write(tmp_path / "excel.csv", elyza_csv(ELYZA_TASKS, "\r\n"), "utf-8-sig"),
        "elyza-tasks",
        known_personas=known,
    )
    for found in (from_jsonl, from_csv, from_excel):
        scenarios = [item.scenario for item in found]
        assert [s.id for s in scenarios] == [
            "elyza-tasks-001",
            "elyza-tasks-002",
            "elyza-tasks-003",
        ]
        # independent tasks: one scenario of one turn each, never turns of one conversation
        assert all(len(s.turns) == 1 for s in scenarios)
        assert [s.turns[0].text for s in scenarios] == [t["input"] for t in ELYZA_TASKS]
        assert all(s.tags == (ELYZA_TAG,) and s.persona == "assistant" for s in scenarios)
        expect = scenarios[0].turns[0].expect
        assert expect == (
            f"模範解答:\n{ELYZA_TASKS[0]['output']}\n\n採点基準:\n{ELYZA_TASKS[0]['eval_aspect']}"
        )
        assert scenarios[1].turns[0].expect == "模範解答:\n猫が自己紹介している。"
    # lines: JSONL one per record; CSV the row's first line (the first row spans 3 lines)
    assert [item.line for item in from_jsonl] == [1, 2, 3]
    assert [item.line for item in from_csv] == [2, 5, 8]


def test_elyza_expect_layout() -> None:
    assert elyza_expect("答え", "基準") == "模範解答:\n答え\n\n採点基準:\n基準"
    assert elyza_expect("", "基準") == "採点基準:\n基準"
    assert elyza_expect(" ", None) is None


# -- round trip into replay ---------------------------------------------------------------------


def _tiny_models(tmp_path: Path, gguf: Path) -> Path:
    text = ""
    for name in ("tiny-a", "tiny-b"):
        text += f"""
[models.{name}]
backend = "llama_cpp"
model = "{gguf}"
prompt_format = "chatml"
n_ctx = 2048
[models.{name}.sampling]
max_tokens = 6
"""
    return write(tmp_path / "models.toml", text)


@pytest.fixture
def unload() -> object:
    yield None
    from backends.llama_cpp_backend import unload_all_models

    unload_all_models()


def test_imported_sets_replay_headless_on_the_tiny_gguf(
    tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], unload: None
) -> None:
    assert (
        kurabe_import(str(write(tmp_path / "q.jsonl", jsonl(MT_BENCH))), "--format", "mt-bench")
        == 0
    )
    csv_file = write(tmp_path / "elyza.csv", elyza_csv(ELYZA_TASKS[:2]))
    assert kurabe_import(str(csv_file), "--format", "elyza-tasks") == 0
    capsys.readouterr()
    models = _tiny_models(tmp_path, tiny_gguf)
    db = tmp_path / "k.sqlite3"
    common = ["--models", "tiny-a,tiny-b", "--models-file", str(models), "--db", str(db)]

    assert main(["replay", "mtbench-111", *common, "--seed", "1"]) == 0
    assert main(["replay", "--tag", ELYZA_TAG, *common]) == 0
    sessions = [
        int(line.split()[1])
        for line in capsys.readouterr().out.splitlines()
        if re.fullmatch(r"session \d+", line)
    ]
    assert len(sessions) == 3
    store = Store(db)
    records = [store.load_record(session_id) for session_id in sessions]
    assert [r.session.scenario_id for r in records] == [
        "mtbench-111",
        "elyza-tasks-001",
        "elyza-tasks-002",
    ]
    math = records[0]
    assert [t.text for t in math.turns] == MT_BENCH[1]["turns"]
    assert math.session.persona_id == "assistant" and math.session.status == "finished"
    assert len(math.replies) == 4 and all(r.completed for r in math.replies)
    for record, task in zip(records[1:], ELYZA_TASKS, strict=False):
        assert [t.text for t in record.turns] == [task["input"]]
        assert len(record.replies) == 2 and all(r.completed for r in record.replies)


def test_replay_tag_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = str(tmp_path / "k.sqlite3")
    assert main(["replay", "--tag", "no-such-tag", "--db", db]) == 2
    assert "no scenario has the tag 'no-such-tag'" in capsys.readouterr().err
    assert main(["replay", "seed-gpt4", "--tag", "seed", "--db", db]) == 2
    assert "not both" in capsys.readouterr().err


# -- bad files ----------------------------------------------------------------------------------

GOOD_LINE = '{"question_id": 1, "category": "writing", "turns": ["書いて"]}'


@pytest.mark.parametrize(
    ("name", "fmt", "text", "expected"),
    [
        (
            "q.jsonl",
            "mt-bench",
            f'{GOOD_LINE}\n\n{{"question_id": 2, "category": "math", "turns": ["a", 3]}}\n',
            "q.jsonl:3: turns[1]: expected a string, got a number 3",
        ),
        (
            "q.jsonl",
            "mt-bench",
            f"{GOOD_LINE}\n{GOOD_LINE.replace('書いて', 'もう一度')}\n",
            "q.jsonl:2: question_id: duplicate question 1, already on line 1",
        ),
        (
            "q.jsonl",
            "mt-bench",
            f'{GOOD_LINE}\n{{"question_id": 2, "turns": ["a"]\n',
            "q.jsonl:2: not valid JSON: Expecting ',' delimiter (column 34)",
        ),
        (
            "q.jsonl",
            "mt-bench",
            '{"question_id": 2, "category": "math", "turns": []}\n',
            "q.jsonl:1: turns: must not be empty",
        ),
        (
            "q.jsonl",
            "mt-bench",
            '{"question_id": 2, "category": "math", "turns": ["a"], "reference": ["x", "y"]}\n',
            "q.jsonl:1: reference: 2 reference answers for 1 turn(s)",
        ),
        (
            "q.jsonl",
            "mt-bench",
            '{"question_id": "2 b", "category": "math", "turns": ["a"]}\n',
            "q.jsonl:1: question_id: gives the scenario id 'mtbench-2 b', but ids are 1-64 ASCII",
        ),
        (
            "q.jsonl",
            "mt-bench",
            '["question_id", 1]\n',
            'q.jsonl:1: each line must be a JSON object, got an array ["question_id", 1]',
        ),
        ("q.jsonl", "mt-bench", "\n\n", "q.jsonl: no questions in the file"),
        (
            "t.csv",
            "elyza-tasks",
            "input,output\nx,y\n",
            "t.csv:1: eval_aspect: column missing from the header (columns: input, output)",
        ),
        (
            "t.csv",
            "elyza-tasks",
            'input,output,eval_aspect\n"一行目\n二行目",答え,基準\n" ",答え,基準\n',
            "t.csv:4: input: must not be empty",
        ),
        (
            "t.csv",
            "elyza-tasks",
            "input,output,eval_aspect\nx,y\n",
            "t.csv:2: the row has 2 fields, the header 3",
        ),
        (
            "t.jsonl",
            "elyza-tasks",
            '{"input": "x", "output": "y"}\n',
            "t.jsonl:1: eval_aspect: required field missing",
        ),
        (
            "t.jsonl",
            "elyza-tasks",
            '{"input": "\\ud800", "output": "y", "eval_aspect": "z"}\n',
            "t.jsonl:1: input: contains a lone surrogate",
        ),
        (
            "s.jsonl",
            "jsonl",
            '{"text": "x", "titel": "y"}\n',
            "s.jsonl:1: titel: unknown field (did you mean 'title'?)",
        ),
        (
            "s.jsonl",
            "jsonl",
            '{"text": "x", "persona": "nobody"}\n',
            "s.jsonl:1: persona: no persona with id 'nobody'",
        ),
    ],
)
def test_bad_files_are_one_line_errors_and_write_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    fmt: str,
    text: str,
    expected: str,
) -> None:
    source = write(tmp_path / name, text)
    assert kurabe_import(str(source), "--format", fmt) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kurabe: {tmp_path / expected}"), err
    assert err.count("\n") == 1
    assert not user_scenarios_dir().exists()


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    source = tmp_path / "q.jsonl"
    source.write_bytes(
        GOOD_LINE.encode() + b"\n" + "{}".encode("shift_jis") + "\u3042".encode("shift_jis")
    )
    with pytest.raises(ConfigError) as caught:
        read_scenarios(source, "mt-bench")
    assert str(caught.value) == f"{source}:2: not valid UTF-8 (save the file as UTF-8)"


# -- writing ------------------------------------------------------------------------------------


def test_existing_files_are_kept_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path / "question.jsonl", jsonl(MT_BENCH))
    target = user_scenarios_dir() / "mtbench-81.toml"
    write(target, "# my own edits\n")
    assert kurabe_import(str(source), "--format", "mt-bench") == 2
    err = capsys.readouterr().err
    assert "1 file(s) already exist" in err and "nothing written" in err
    assert target.read_text(encoding="utf-8") == "# my own edits\n"
    assert not (user_scenarios_dir() / "mtbench-111.toml").exists()
    assert kurabe_import(str(source), "--format", "mt-bench", "--force") == 0
    assert "(1 overwritten)" in capsys.readouterr().out
    assert load_scenarios().get("mtbench-81").title == "MT-Bench 81: 作文（writing）"


def test_an_id_defined_in_another_file_is_refused(tmp_path: Path) -> None:
    write(
        user_scenarios_dir() / "mine.toml",
        'id = "mtbench-81"\ntitle = "自作"\npersona = "assistant"\n[[turns]]\ntext = "x"\n',
    )
    source = write(tmp_path / "question.jsonl", jsonl(MT_BENCH))
    with pytest.raises(ConfigError, match=r"question.jsonl:1: scenario id 'mtbench-81' is already"):
        import_file(
            source,
            "mt-bench",
            out_dir=user_scenarios_dir(),
            known_personas=load_personas().ids(),
            force=True,
        )
    # another prefix avoids it
    result = import_file(
        source,
        "mt-bench",
        out_dir=user_scenarios_dir(),
        known_personas=load_personas().ids(),
        prefix="jmt",
    )
    assert [s.id for _, s in result.written] == ["jmt-81", "jmt-111", "jmt-130"]
    assert load_scenarios().problems == []


def test_own_jsonl_format(tmp_path: Path) -> None:
    records = [
        {"text": "自己紹介して", "expect": "名前を言う"},
        {
            "id": "two-turns",
            "title": "二往復",
            "persona": "keigo-clerk",
            "tags": ["mine"],
            "turns": ["こんにちは", {"text": "おすすめは？", "expect": "敬語で答える"}],
        },
    ]
    source = write(tmp_path / "my set.jsonl", jsonl(records))
    result = import_file(
        source, "jsonl", out_dir=tmp_path / "out", known_personas=load_personas().ids()
    )
    first, second = (scenario for _, scenario in result.written)
    assert first.id == "my-set-001" and first.title == "自己紹介して"
    assert first.turns == (Turn("自己紹介して", "名前を言う"),)
    assert second.id == "two-turns" and second.persona == "keigo-clerk"
    assert second.turns == (Turn("こんにちは"), Turn("おすすめは？", "敬語で答える"))
    assert result.tag is None
    with pytest.raises(KurabeError, match="unknown import format"):
        read_scenarios(source, "alpaca")


text_strategy = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40
).filter(lambda value: value.strip() != "")


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(text_strategy, min_size=1, max_size=3), expect=st.none() | text_strategy)
def test_written_toml_reads_back_exactly(texts: list[str], expect: str | None) -> None:
    scenario = Scenario(
        id="rt",
        title="往復",
        persona="assistant",
        turns=tuple(Turn(text, expect) for text in texts),
        tags=("a", "b"),
        notes=texts[0],
        source="x.toml",
    )
    again = parse_scenario_text(scenario_toml(scenario, "コメント\n二行目"), "x.toml")
    assert again == scenario
