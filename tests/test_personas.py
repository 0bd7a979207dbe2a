"""Personas: the bundled files, the user's overrides, extra paths, and ``kurabe personas``."""

from __future__ import annotations

import argparse
import io
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest

from foundation.catalog import BUILT_IN, bundled_files
from foundation.errors import KurabeError
from foundation.tomlfile import TomlDocument
from kurabe.commands import personas as personas_command
from personas import Persona
from personas.loader import (
    DEFAULT_PERSONA_ID,
    load_personas,
    parse_persona_file,
    parse_persona_text,
    user_personas_dir,
)
from tests.tomlwriter import dumps

# The seed page writes an ASCII space after the first 「。」.
ANIME_FAN_SYSTEM = " ".join(
    [
        "あなたは大のアニメファンで、友達と会話しています。",
        "返信は短くカジュアルなものにする必要があります。",
    ]
)
VOICE_ASSISTANT_SYSTEM = (
    "あなたは、ユーザーと自然な対話ができるように設計された会話型ボットです。"
    " この出力はテキスト読み上げに送信されるため、応答は短く簡潔にして、"
    "定型的な応答や長文の応答は避けてください。 さあ始めましょう。"
)
_DEFAULTS = {field.name: field.default for field in fields(Persona)}


def persona_to_toml_data(persona: Persona) -> dict[str, Any]:
    """The persona as a TOML table, leaving out defaults and the source (not a file key)."""
    data = asdict(persona)
    data.pop("source")
    data["first_person"] = list(persona.first_person)
    return {key: value for key, value in data.items() if value != _DEFAULTS.get(key, object())}


def file_value(value: Any) -> Any:
    """A persona's field as its file writes it (example exchanges as tables)."""
    if isinstance(value, tuple) and value and is_dataclass(value[0]):
        return tuple(asdict(item) for item in value)
    return value


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(argv: list[str], *, tty: bool = False) -> tuple[int, str, str]:
    """Run ``kurabe personas ...`` with output captured; ``tty`` pretends stdout is a terminal."""

    class Output(io.StringIO):
        def isatty(self) -> bool:
            return tty

    parser = argparse.ArgumentParser(prog="kurabe")
    personas_command.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    out, err = Output(), io.StringIO()
    code: int = args.func(args, out, err)
    return code, out.getvalue(), err.getvalue()


# -- bundled ------------------------------------------------------------------------------------


def test_bundled_personas_load_without_problems() -> None:
    catalog = load_personas()
    assert catalog.problems == []
    assert catalog.ids() == [
        "anime-fan",
        "voice-assistant",
        "keigo-clerk",
        "translator",
        "assistant",
    ]
    assert DEFAULT_PERSONA_ID in catalog
    assert all(persona.source == BUILT_IN for persona in catalog)
    assert {persona.register for persona in catalog} == {"casual", "polite", "any"}


def test_anime_fan_is_the_seed_persona_verbatim() -> None:
    persona = load_personas().get("anime-fan")
    assert persona.system == ANIME_FAN_SYSTEM
    assert (persona.char_name, persona.user_name) == ("オタク", "ユーザー")
    assert (persona.language, persona.register, persona.max_reply_chars) == ("ja", "casual", 80)
    assert "俺" not in persona.first_person


def test_voice_assistant_is_claude_try_2_verbatim() -> None:
    persona = load_personas().get("voice-assistant")
    assert persona.system == VOICE_ASSISTANT_SYSTEM
    assert persona.max_reply_chars == 80


def test_polite_persona_uses_keigo_first_person() -> None:
    persona = load_personas().get("keigo-clerk")
    assert persona.register == "polite"
    assert persona.first_person == ("私", "わたくし")


@pytest.mark.parametrize("path", bundled_files("personas"), ids=lambda path: path.name)
def test_bundled_file_round_trips(path: Path) -> None:
    persona = parse_persona_file(path, source=BUILT_IN)
    raw = TomlDocument.load(path).data
    # every key written in the file arrives unchanged
    assert {key: file_value(getattr(persona, key)) for key in raw} == {
        key: tuple(value) if isinstance(value, list) else value for key, value in raw.items()
    }
    # and writing the persona back out gives the same persona
    again = parse_persona_text(dumps(persona_to_toml_data(persona)), path, source=BUILT_IN)
    assert again == persona


def test_text_is_kept_exactly() -> None:
    system = "　全角スペースで始まる。\n改行も😀そのまま ^_^\n\t タブも。"
    text = dumps({"id": "exact", "title": "そのまま", "system": system, "notes": "  前後の空白  "})
    persona = parse_persona_text(text)
    assert persona.system == system
    assert persona.notes == "  前後の空白  "
    literal = parse_persona_text("id = 'x'\ntitle = 'x'\nsystem = '''\n一行目\u3000\n二行目'''\n")
    assert literal.system == "一行目\u3000\n二行目"


def test_defaults_for_optional_fields() -> None:
    persona = parse_persona_text('id = "min"\ntitle = "最小"\nsystem = "システム"\n', "min.toml")
    assert persona == Persona(id="min", title="最小", system="システム", source="min.toml")


# -- layers -------------------------------------------------------------------------------------


USER_ANIME_FAN = """\
id = "anime-fan"
title = "自分用のアニメファン"
system = "あなたはアニメが大好きな高校生です。"
register = "casual"
"""


def test_user_file_overrides_the_bundled_one() -> None:
    path = write(user_personas_dir() / "my-fan.toml", USER_ANIME_FAN)
    catalog = load_personas()
    persona = catalog.get("anime-fan")
    assert persona.system == "あなたはアニメが大好きな高校生です。"
    assert persona.source == str(path)
    assert catalog.overridden == {"anime-fan": BUILT_IN}
    assert catalog.ids()[0] == "anime-fan"  # keeps the bundled one's place
    assert len(catalog) == 5


def test_extra_paths_override_the_user_directory(tmp_path: Path) -> None:
    user_file = write(user_personas_dir() / "fan.toml", USER_ANIME_FAN)
    extra_dir = tmp_path / "mine"
    write(extra_dir / "fan.toml", USER_ANIME_FAN.replace("高校生", "大学生"))
    write(extra_dir / "readme.txt", "not toml")
    extra_file = write(
        tmp_path / "nurse.toml", 'id = "nurse"\ntitle = "看護師"\nsystem = "あなたは看護師です。"\n'
    )
    catalog = load_personas([extra_dir, extra_file])
    assert catalog.get("anime-fan").system == "あなたはアニメが大好きな大学生です。"
    assert catalog.overridden["anime-fan"] == str(user_file)
    assert catalog.get("nurse").title == "看護師"
    assert catalog.problems == []


def test_the_same_file_given_twice_is_not_a_duplicate() -> None:
    path = write(user_personas_dir() / "fan.toml", USER_ANIME_FAN)
    catalog = load_personas([path, path])
    assert catalog.problems == []
    assert catalog.overridden == {"anime-fan": BUILT_IN}


def test_get_unknown_id_is_one_line_listing_known_ids() -> None:
    with pytest.raises(KurabeError) as caught:
        load_personas().get("anime-fam")
    message = str(caught.value)
    assert "\n" not in message
    assert "unknown persona 'anime-fam'" in message
    assert "did you mean 'anime-fan'?" in message
    assert "voice-assistant" in message


# -- command line -------------------------------------------------------------------------------


def test_list_plain_is_tab_separated_with_source_and_override() -> None:
    path = write(user_personas_dir() / "fan.toml", USER_ANIME_FAN)
    code, out, err = run(["personas"])
    assert (code, err) == (0, "")
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == [
        "anime-fan",
        "自分用のアニメファン",
        "casual",
        str(path),
        "overrides built-in",
    ]
    assert rows[1] == [
        "voice-assistant",
        "音声対話ボット（読み上げ向けに短く）",
        "any",
        "built-in (02-voice-assistant.toml)",
        "",
    ]


def test_list_on_a_terminal_is_a_table() -> None:
    write(user_personas_dir() / "fan.toml", USER_ANIME_FAN)
    code, out, _ = run(["personas"], tty=True)
    assert code == 0
    assert out.startswith("┏")
    assert "│ anime-fan " in out
    assert "\t" not in out
    assert "keigo-clerk" in out


def test_list_reports_bad_files_on_stderr_and_still_lists_the_good_ones() -> None:
    bad = write(user_personas_dir() / "typo.toml", 'id = "x"\ntitle = "t"\nsytem = "s"\n')
    code, out, err = run(["personas"])
    assert code == 1
    assert len(out.splitlines()) == 5
    assert err == (
        f"kurabe: {bad}:3: sytem: unknown key (did you mean 'system'?); known keys: id, title, "
        "system, char_name, user_name, language, register, max_reply_chars, first_person, notes, "
        "examples\n"
    )


def test_show_prints_the_system_prompt_verbatim(tmp_path: Path) -> None:
    extra = write(
        tmp_path / "multi.toml",
        'id = "multi"\ntitle = "複数行"\nsystem = """一行目\n　二行目 ^_^"""\n',
    )
    code, out, _ = run(["personas", "--path", str(extra), "show", "multi"])
    assert code == 0
    assert "system:\n  一行目\n  　二行目 ^_^\n" in out
    assert f"source: {extra}" in out


def test_show_with_path_after_the_action(tmp_path: Path) -> None:
    extra = write(tmp_path / "p.toml", 'id = "p"\ntitle = "P"\nsystem = "S"\n')
    code, out, _ = run(["personas", "show", "p", "--path", str(extra)])
    assert code == 0
    assert out.startswith("p — P\n")


def test_show_unknown_id_raises_one_line_error() -> None:
    with pytest.raises(KurabeError, match="unknown persona 'nobody'"):
        run(["personas", "show", "nobody"])
