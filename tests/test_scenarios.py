"""Scenarios: the seed scripts against the seed page, round-trips, layers, ``kurabe scenarios``."""

from __future__ import annotations

import argparse
import io
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from foundation.catalog import BUILT_IN, bundled_files
from foundation.errors import KurabeError
from foundation.tomlfile import TomlDocument
from kurabe.commands import scenarios as scenarios_command
from personas.loader import load_personas, user_personas_dir
from scenarios import Scenario, Turn
from scenarios.loader import (
    load_scenarios,
    parse_scenario_file,
    parse_scenario_text,
    user_scenarios_dir,
)
from tests.tomlwriter import dumps

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
SEED_PAGE = SEEDS / "003_9f1eb28be6545c69.txt"
TRANSLATION_SOURCE = SEEDS / "004_ecece4cb0bf07619.txt"

# Seed section heading -> (scenario id, persona id)
SEED_SECTIONS = {
    "GPT-4": ("seed-gpt4", "anime-fan"),
    "GPT-3": ("seed-gpt3", "anime-fan"),
    "Claude": ("seed-claude", "anime-fan"),
    "Claude Try 2": ("seed-claude-try2", "voice-assistant"),
    "ELYZA": ("seed-elyza", "anime-fan"),
    "weblab-10": ("seed-weblab", "anime-fan"),
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(argv: list[str], *, tty: bool = False) -> tuple[int, str, str]:
    """Run ``kurabe scenarios ...`` with output captured; ``tty`` pretends stdout is a terminal."""

    class Output(io.StringIO):
        def isatty(self) -> bool:
            return tty

    parser = argparse.ArgumentParser(prog="kurabe")
    scenarios_command.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    out, err = Output(), io.StringIO()
    code: int = args.func(args, out, err)
    return code, out.getvalue(), err.getvalue()


# -- the seed page ------------------------------------------------------------------------------


def seed_sections() -> dict[str, str]:
    if not SEED_PAGE.is_file():
        pytest.skip(f"seed page not found at {SEED_PAGE} (shared/ must sit beside the checkout)")
    text = SEED_PAGE.read_text(encoding="utf-8")
    headings = list(re.finditer(r"^#{1,2} (.+)$", text, flags=re.MULTILINE))
    return {
        heading.group(1).strip(): text[heading.end() : following.start() if following else None]
        for heading, following in zip(headings, [*headings[1:], None], strict=True)
    }


def user_lines_in_section(name: str, body: str) -> list[str]:
    """The user's lines as the seed page writes them, in each section's own transcript format."""
    lines = body.split("\n")
    if name in ("GPT-4", "GPT-3"):
        return [lines[i + 1] for i, line in enumerate(lines) if line == "USER"]
    if name.startswith("Claude"):
        return [line.removeprefix("Human: ") for line in lines if line.startswith("Human: ")]
    if name == "ELYZA":
        # "**ユーザー:**" is followed by a no-break space (U+00A0): formatting, not the user's text.
        matches = (re.fullmatch(r"\*\*ユーザー:\*\*\s(.*)", line) for line in lines)
        return [match.group(1) for match in matches if match]
    if name == "weblab-10":
        return [lines[i + 1] for i, line in enumerate(lines) if line == "### 指示:"]
    raise AssertionError(f"unexpected section {name}")


def expected_turns(name: str, body: str, anime_fan: str, voice_assistant: str) -> list[str]:
    """The seed's lines after the adjustments each scenario's notes document."""
    lines = [line.replace("\\_", "_") for line in user_lines_in_section(name, body)]  # markdown
    if name == "Claude":
        # The persona is pasted in front of the first line; kurabe sends it as the system prompt.
        assert lines[0].startswith(anime_fan)
        lines[0] = lines[0].removeprefix(anime_fan)
    elif name == "Claude Try 2":
        # The first Human line *is* the persona.
        assert lines[0] == voice_assistant
        lines = lines[1:]
    elif name == "weblab-10":
        # The first 指示 repeats the opening line with the persona glued on; one 指示 is empty.
        assert lines[0] == "ねえ、アニメ好きなの？" + anime_fan
        assert lines.count("") == 1
        lines = [line for line in lines[1:] if line]
    return lines


def test_seed_page_has_the_six_sections() -> None:
    assert set(SEED_SECTIONS) <= set(seed_sections())


@pytest.mark.parametrize("section", list(SEED_SECTIONS))
def test_seed_script_is_the_seed_pages_lines_verbatim(section: str) -> None:
    scenario_id, persona_id = SEED_SECTIONS[section]
    personas = load_personas()
    scenario = load_scenarios(personas=personas).get(scenario_id)
    body = seed_sections()[section]
    expected = expected_turns(
        section, body, personas.get("anime-fan").system, personas.get("voice-assistant").system
    )
    assert [turn.text for turn in scenario.turns] == expected
    assert scenario.persona == persona_id
    assert "seed" in scenario.tags


@pytest.mark.parametrize("section", ["GPT-4", "GPT-3", "ELYZA", "weblab-10"])
def test_anime_fan_persona_is_the_prompt_of_its_sections(section: str) -> None:
    body = seed_sections()[section]
    prompt = body.split("Prompt:\n", 1)[1].split("\n", 1)[0]
    assert load_personas().get("anime-fan").system == prompt


def test_claude_script_keeps_the_emoticon_unescaped() -> None:
    # The page's markdown source writes ^\_\_^, which shows as ^__^.
    scenario = load_scenarios().get("seed-claude")
    assert scenario.turns[-1].text.endswith("『KICK BACK』です ^__^")
    assert "KICK BACK" in (scenario.turns[2].expect or "")


def test_adjusted_seed_scripts_say_so_in_their_notes() -> None:
    scenarios = load_scenarios()
    assert "システムプロンプト" in scenarios.get("seed-claude").notes
    assert "システムプロンプト" in scenarios.get("seed-claude-try2").notes
    assert "空" in scenarios.get("seed-weblab").notes


def test_translation_scenario_uses_seed_004_paragraphs_verbatim() -> None:
    if not TRANSLATION_SOURCE.is_file():
        pytest.skip(f"seed 004 not found at {TRANSLATION_SOURCE}")
    paragraphs = TRANSLATION_SOURCE.read_text(encoding="utf-8").split("\n")
    scenario = load_scenarios().get("en-ja-translation")
    assert scenario.persona == "translator"
    for turn in scenario.turns:
        assert turn.text in paragraphs
    assert "金魚のフン" in (scenario.turns[-1].expect or "")


def test_japanese_ability_scenarios_exist() -> None:
    scenarios = load_scenarios()
    knowledge = scenarios.get("ja-knowledge")
    assert "japanese-ability" in knowledge.tags
    assert all(turn.expect for turn in knowledge.turns)
    assert "japanese-ability" in scenarios.get("en-ja-translation").tags


# -- bundled ------------------------------------------------------------------------------------


def test_bundled_scenarios_load_without_problems() -> None:
    personas = load_personas()
    catalog = load_scenarios(personas=personas)
    assert catalog.problems == []
    assert catalog.ids() == [
        "seed-gpt4",
        "seed-gpt3",
        "seed-claude",
        "seed-claude-try2",
        "seed-elyza",
        "seed-weblab",
        "ja-knowledge",
        "en-ja-translation",
        "keigo-shop",
    ]
    assert all(scenario.persona in personas for scenario in catalog)


def scenario_to_toml_data(scenario: Scenario) -> dict[str, Any]:
    data = asdict(scenario)
    data.pop("source")
    data["tags"] = list(scenario.tags)
    data["turns"] = [
        {key: value for key, value in asdict(turn).items() if value is not None}
        for turn in scenario.turns
    ]
    return data


@pytest.mark.parametrize("path", bundled_files("scenarios"), ids=lambda path: path.name)
def test_bundled_file_round_trips(path: Path) -> None:
    scenario = parse_scenario_file(path, source=BUILT_IN)
    raw = TomlDocument.load(path).data
    assert [turn.text for turn in scenario.turns] == [turn["text"] for turn in raw["turns"]]
    assert [turn.expect for turn in scenario.turns] == [turn.get("expect") for turn in raw["turns"]]
    assert (scenario.id, scenario.title, scenario.persona, scenario.notes) == (
        raw["id"],
        raw["title"],
        raw["persona"],
        raw.get("notes", ""),
    )
    assert scenario.tags == tuple(raw.get("tags", ()))
    again = parse_scenario_text(dumps(scenario_to_toml_data(scenario)), path, source=BUILT_IN)
    assert again == scenario


def test_turn_text_is_kept_exactly() -> None:
    text = "　全角スペース\n改行😀 ^_^ \\_ も"
    scenario = parse_scenario_text(
        dumps(
            {
                "id": "exact",
                "title": "そのまま",
                "persona": "anime-fan",
                "turns": [{"text": text, "expect": "  空白も  "}],
            }
        )
    )
    assert scenario.turns == (Turn(text=text, expect="  空白も  "),)


# -- layers -------------------------------------------------------------------------------------

USER_SCENARIO = """\
id = "seed-gpt4"
title = "自分版 GPT-4"
persona = "anime-fan"

[[turns]]
text = "ねえ、アニメ好きなの？"
"""


def test_user_file_overrides_and_says_so() -> None:
    path = write(user_scenarios_dir() / "gpt4.toml", USER_SCENARIO)
    catalog = load_scenarios()
    assert catalog.get("seed-gpt4").source == str(path)
    assert len(catalog.get("seed-gpt4").turns) == 1
    assert catalog.overridden == {"seed-gpt4": BUILT_IN}
    assert catalog.override_label("seed-gpt4") == "overrides built-in"


def test_scenario_may_use_a_users_persona() -> None:
    write(
        user_personas_dir() / "nurse.toml",
        'id = "nurse"\ntitle = "看護師"\nsystem = "あなたは看護師です。"\n',
    )
    write(user_scenarios_dir() / "n.toml", USER_SCENARIO.replace('"anime-fan"', '"nurse"'))
    assert load_scenarios().get("seed-gpt4").persona == "nurse"


# -- command line -------------------------------------------------------------------------------


def test_list_plain_gives_id_title_persona_turns_source() -> None:
    code, out, err = run(["scenarios"])
    assert (code, err) == (0, "")
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[2] == [
        "seed-claude",
        "シード: Claude — チェンソーマンのOP",
        "anime-fan",
        "4",
        "built-in (03-seed-claude.toml)",
        "",
    ]
    assert len(rows) == 9


def test_list_on_a_terminal_is_a_table() -> None:
    code, out, _ = run(["scenarios"], tty=True)
    assert code == 0
    assert out.startswith("┏")
    assert "│ seed-claude-try2 " in out
    assert "\t" not in out


def test_list_reports_problems_of_personas_and_scenarios() -> None:
    bad_persona = write(user_personas_dir() / "p.toml", 'id = "p"\ntitle = "P"\n')
    write(user_scenarios_dir() / "s.toml", USER_SCENARIO.replace('"anime-fan"', '"p"'))
    code, out, err = run(["scenarios"])
    assert code == 1
    assert len(out.splitlines()) == 9  # the bad user scenario is left out, the rest listed
    problems = err.splitlines()
    assert problems[0] == f"kurabe: {bad_persona}:1: system: required key missing (in top level)"
    assert "s.toml:3: persona: no persona with id 'p'" in problems[1]


def test_show_prints_numbered_turns_with_expect_notes() -> None:
    code, out, _ = run(["scenarios", "show", "seed-gpt3"])
    assert code == 0
    assert out.startswith("seed-gpt3 — シード: GPT-3 — 鬼滅の刃とチェンソーマン\n")
    assert "persona: anime-fan (大のアニメファン（友達とタメ口で）)\n" in out
    assert (
        "\n3. 私もです！ テーマソングを誰が歌っているか知っていますか？ とてもキャッチーです。\n"
        in out
    )
    assert "   expect: 前の返信で挙げた作品の主題歌を正しく言う" in out
    assert "\n7. ごめんなさい、ちょっと意地悪でした。" in out


def test_show_aligns_multiline_turns(tmp_path: Path) -> None:
    extra = write(
        tmp_path / "long.toml",
        dumps(
            {
                "id": "long",
                "title": "長い",
                "persona": "anime-fan",
                "turns": [{"text": f"{n}行目\n続き"} for n in range(1, 11)],
            }
        ),
    )
    code, out, _ = run(["scenarios", "--path", str(extra), "show", "long"])
    assert code == 0
    assert "\n 1. 1行目\n    続き\n" in out
    assert "\n10. 10行目\n    続き\n" in out


def test_show_unknown_id_raises_one_line_error() -> None:
    with pytest.raises(KurabeError, match=r"unknown scenario 'seed-gpt5' \(did you mean"):
        run(["scenarios", "show", "seed-gpt5"])


def test_commands_are_registered_in_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from kurabe.cli import main

    assert main(["scenarios", "show", "nope"]) == 2
    assert capsys.readouterr().err.startswith("kurabe: unknown scenario 'nope'")
    assert main(["personas"]) == 0
    assert capsys.readouterr().out.startswith("anime-fan\t")
