"""Every kind of bad persona or scenario file gives one line naming the file, the line and the key.

Also: a directory with one bad file still offers the good ones, and no TOML document, however
odd, makes the loaders fail with anything but their own :class:`ConfigError`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foundation.errors import ConfigError
from personas.loader import PERSONA_KEYS, load_personas, parse_persona_text, user_personas_dir
from scenarios.loader import SCENARIO_KEYS, load_scenarios, parse_scenario_text, user_scenarios_dir

PERSONA = """\
id = "fan"
title = "アニメファン"
system = "あなたは大のアニメファンです。"
register = "casual"
"""

SCENARIO = """\
id = "talk"
title = "会話"
persona = "anime-fan"
tags = ["anime"]

[[turns]]
text = "ねえ、アニメ好きなの？"

[[turns]]
text = "好きなアニメは何ですか?"
expect = "作品名を挙げる"
"""

KNOWN_PERSONAS = ("anime-fan", "voice-assistant")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def persona_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_persona_text(text, "persona.toml")
    return caught.value


def scenario_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_scenario_text(text, "scenario.toml", known_personas=KNOWN_PERSONAS)
    return caught.value


def assert_names(error: ConfigError, file: str, line: int, key: str) -> None:
    """The message is one line that starts with ``file:line: key:`` (and says so in fields)."""
    assert (error.path, error.line, error.key) == (Path(file), line, key)
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{file}:{line}: {key}: "), message


def test_the_good_samples_are_good() -> None:
    assert parse_persona_text(PERSONA).id == "fan"
    assert len(parse_scenario_text(SCENARIO, known_personas=KNOWN_PERSONAS).turns) == 2


# -- TOML syntax ---------------------------------------------------------------------------------


def test_syntax_error_in_a_persona() -> None:
    error = persona_error(PERSONA.replace('"あなたは大のアニメファンです。"', '"閉じていない'))
    assert_names(error, "persona.toml", 3, "system")
    assert "TOML syntax error" in error.message


def test_syntax_error_inside_a_turn_names_the_turn() -> None:
    error = scenario_error(SCENARIO.replace('expect = "作品名を挙げる"', "expect = 作品名を挙げる"))
    assert_names(error, "scenario.toml", 11, "turns[1].expect")
    assert "TOML syntax error" in error.message


# -- unknown keys ---------------------------------------------------------------------------------


def test_unknown_key_in_a_persona_suggests_the_right_one() -> None:
    error = persona_error(PERSONA.replace("system =", "sytem ="))
    assert_names(error, "persona.toml", 3, "sytem")
    assert "did you mean 'system'?" in error.message


def test_unknown_key_in_a_turn() -> None:
    error = scenario_error(SCENARIO.replace("expect =", "expext ="))
    assert_names(error, "scenario.toml", 11, "turns[1].expext")
    assert "did you mean 'expect'?" in error.message


def test_unknown_table_in_a_scenario() -> None:
    error = scenario_error(SCENARIO + '\n[meta]\nauthor = "me"\n')
    assert_names(error, "scenario.toml", 13, "meta")


def test_a_scenario_file_in_the_personas_directory_is_recognised() -> None:
    error = persona_error(SCENARIO)
    assert_names(error, "persona.toml", 6, "turns")
    assert "scenario file" in error.message


# -- missing required fields ---------------------------------------------------------------------


def test_missing_system_prompt() -> None:
    error = persona_error(PERSONA.replace('system = "あなたは大のアニメファンです。"\n', ""))
    assert_names(error, "persona.toml", 1, "system")
    assert "required key missing" in error.message


def test_missing_turns() -> None:
    error = scenario_error(SCENARIO.split("[[turns]]")[0])
    assert_names(error, "scenario.toml", 1, "turns")


def test_turn_without_text_points_at_its_header() -> None:
    error = scenario_error(SCENARIO.replace('text = "好きなアニメは何ですか?"\n', ""))
    assert_names(error, "scenario.toml", 9, "turns[1].text")
    assert "required key missing (in turns[1])" in error.message


# -- wrong types ----------------------------------------------------------------------------------


def test_max_reply_chars_written_as_a_string() -> None:
    error = persona_error(PERSONA + 'max_reply_chars = "80"\n')
    assert_names(error, "persona.toml", 5, "max_reply_chars")
    assert error.message == "expected an integer, got a string '80'"


def test_register_outside_its_choices() -> None:
    error = persona_error(PERSONA.replace('"casual"', '"casul"'))
    assert_names(error, "persona.toml", 4, "register")
    assert "did you mean 'casual'?" in error.message


def test_negative_reply_limit() -> None:
    error = persona_error(PERSONA + "max_reply_chars = 0\n")
    assert_names(error, "persona.toml", 5, "max_reply_chars")


def test_tags_written_as_a_string() -> None:
    error = scenario_error(SCENARIO.replace('tags = ["anime"]', 'tags = "anime"'))
    assert_names(error, "scenario.toml", 4, "tags")
    assert error.message.startswith("expected an array")


def test_turn_text_written_as_a_number() -> None:
    error = scenario_error(SCENARIO.replace('text = "好きなアニメは何ですか?"', "text = 42"))
    assert_names(error, "scenario.toml", 10, "turns[1].text")


def test_turns_written_as_plain_strings() -> None:
    text = SCENARIO.split("[[turns]]")[0] + 'turns = [\n  "ねえ",\n  "好き？",\n]\n'
    error = scenario_error(text)
    assert_names(error, "scenario.toml", 7, "turns[0]")
    assert "write [[turns]]" in error.message


def test_id_that_is_hard_to_type() -> None:
    error = persona_error(PERSONA.replace('id = "fan"', 'id = "アニメ ファン"'))
    assert_names(error, "persona.toml", 1, "id")


def test_title_with_a_line_break() -> None:
    error = persona_error(PERSONA.replace('"アニメファン"', '"""アニメ\nファン"""'))
    assert_names(error, "persona.toml", 2, "title")
    assert error.message == "must be one line"


# -- empty turns ----------------------------------------------------------------------------------


def test_no_turns_at_all() -> None:
    error = scenario_error(SCENARIO.split("[[turns]]")[0] + "turns = []\n")
    assert_names(error, "scenario.toml", 6, "turns")
    assert "at least one turn" in error.message


def test_turn_of_only_full_width_spaces() -> None:
    error = scenario_error(SCENARIO.replace('"ねえ、アニメ好きなの？"', '"\u3000\u3000"'))
    assert_names(error, "scenario.toml", 7, "turns[0].text")
    assert error.message == "must not be empty"


def test_empty_expect_note() -> None:
    error = scenario_error(SCENARIO.replace('"作品名を挙げる"', '""'))
    assert_names(error, "scenario.toml", 11, "turns[1].expect")


# -- references and duplicates --------------------------------------------------------------------


def test_scenario_whose_persona_does_not_exist() -> None:
    error = scenario_error(SCENARIO.replace('"anime-fan"', '"anime-fn"'))
    assert_names(error, "scenario.toml", 3, "persona")
    assert "no persona with id 'anime-fn' (did you mean 'anime-fan'?)" in error.message


def test_duplicate_ids_in_the_users_directory() -> None:
    first = write(user_personas_dir() / "a.toml", PERSONA)
    second = write(user_personas_dir() / "b.toml", "# the same id again\n" + PERSONA)
    catalog = load_personas()
    assert catalog.get("fan").source == str(first)
    [problem] = catalog.problems
    assert_names(problem, str(second), 2, "id")
    assert problem.message == f"duplicate persona id 'fan', already in {first}:1"


def test_duplicate_scenario_ids_among_extra_paths(tmp_path: Path) -> None:
    first = write(tmp_path / "one.toml", SCENARIO)
    second = write(tmp_path / "two.toml", SCENARIO)
    catalog = load_scenarios([first, second])
    [problem] = catalog.problems
    assert_names(problem, str(second), 1, "id")
    assert "duplicate scenario id 'talk'" in problem.message


def test_a_missing_extra_path_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    catalog = load_personas([tmp_path / "nowhere.toml"])
    [problem] = catalog.problems
    assert problem.path == tmp_path / "nowhere.toml"
    assert problem.message == "file not found"
    assert "anime-fan" in catalog


# -- a directory with one bad file ----------------------------------------------------------------


def test_directory_with_one_bad_file_still_offers_the_good_ones() -> None:
    write(user_scenarios_dir() / "a-good.toml", SCENARIO)
    broken = SCENARIO.replace('id = "talk"', 'id = "x"\nid = "y"')  # a key written twice
    bad = write(user_scenarios_dir() / "b-bad.toml", broken)
    write(user_scenarios_dir() / "c-good.toml", SCENARIO.replace('"talk"', '"talk2"'))
    catalog = load_scenarios()
    assert "talk" in catalog
    assert "talk2" in catalog
    assert "seed-gpt4" in catalog
    [problem] = catalog.problems
    assert_names(problem, str(bad), 2, "id")


# -- property: nothing but ConfigError ------------------------------------------------------------

_VALUES = st.one_of(
    st.text(max_size=12).map(lambda text: '"' + text.replace("\\", "").replace('"', "") + '"'),
    st.sampled_from(
        [
            '""',
            '"　"',
            '"anime-fan"',
            '"casual"',
            "'''\n複数行\n'''",
            '"""\n[[turns]]\n"""',
            "0",
            "-1",
            "80",
            "1.5",
            "true",
            "[]",
            '["私", 1]',
            '[{text = "a"}, {text = ""}]',
            "{text = 1}",
            "1979-05-27",
            "inf",
        ]
    ),
    st.text(max_size=8),  # usually not TOML at all
)
_KEYS = st.sampled_from(
    [*PERSONA_KEYS, *SCENARIO_KEYS, "text", "expect", "sytem", "turn", "a.b", '"引用"', "1"]
)
_LINES = st.one_of(
    st.builds(lambda key, value: f"{key} = {value}", _KEYS, _VALUES),
    st.sampled_from(["[[turns]]", "[turns]", "[[turns.extra]]", "[meta]", "# コメント", ""]),
    st.text(max_size=15),
)
_DOCUMENTS = st.one_of(
    st.lists(_LINES, max_size=14).map("\n".join),
    st.text(max_size=80),
)


def _check(error: ConfigError, text: str, name: str) -> None:
    assert error.path == Path(name)
    assert error.line is not None, str(error)
    assert 1 <= error.line <= len(text.split("\n")), str(error)
    if not error.message.startswith("TOML syntax error"):
        assert error.key, str(error)
    assert "\n" not in str(error).replace(repr("\n")[1:-1], "")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DOCUMENTS)
def test_random_documents_raise_only_config_errors(text: str) -> None:
    for name, parse in (
        ("p.toml", lambda: parse_persona_text(text, "p.toml")),
        ("s.toml", lambda: parse_scenario_text(text, "s.toml", known_personas=KNOWN_PERSONAS)),
    ):
        try:
            parse()
        except ConfigError as error:
            _check(error, text, name)


def test_error_message_format_is_file_line_key() -> None:
    error = persona_error(PERSONA.replace("system =", "sytem ="))
    assert re.fullmatch(r"persona\.toml:3: sytem: unknown key .+", str(error))
